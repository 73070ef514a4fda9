"""Export control in depth: each guard holds alone, with the guards before it bypassed.

(a) ``decide()`` selects nothing off site, for every combination of the decision switches;
(b) the transfer layer refuses the off-site copy of a run that bypasses ``decide()``;
(c) the SciCat catalog refuses the scan when its asset is materialized directly;
(d) retention never prunes an export-controlled copy behind an off-site copy: already proved
    alone by ``tests/retention/test_prune_rules.py::
    test_export_controlled_raw_is_never_pruned_behind_an_offsite_copy_even_if_present``
    (the policy lists nersc_cfs first, a copy is recorded and present there, and the prune
    refuses naming only the on-site data832_tape), so it is not repeated here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from scan_support import detector_scan

from bl832_assets import keys
from bl832_assets.decision import decide
from bl832_assets.definitions import build_definitions
from bl832_assets.dispatch import register
from bl832_assets.execution import RunReport, execute
from bl832_assets.fakes.scicat import FakeSciCat
from bl832_assets.sensors import evaluate_tick
from bl832_assets.settings import Decision, SensorSettings, Settings

SWITCHES = ("new_file_832", "nersc_recon", "alcf_recon", "olcf_recon")
RAW_NERSC = keys.key("nersc", keys.RAW_SCAN)
PASSWORD = "ingestor-password"


# -- (a) decide() alone ---------------------------------------------------------------------------


@pytest.mark.parametrize("catalog_onsite", [False, True], ids=["catalog-offsite", "catalog-onsite"])
@pytest.mark.parametrize(
    "switches",
    list(itertools.product([False, True], repeat=len(SWITCHES))),
    ids=lambda values: "-".join(n for n, on in zip(SWITCHES, values, strict=True) if on) or "off",
)
def test_decide_selects_nothing_off_site_for_any_switches(
    tmp_path: Path, switches: tuple[bool, ...], catalog_onsite: bool
) -> None:
    settings = Settings(
        home=tmp_path,
        decision=Decision(**dict(zip(SWITCHES, switches, strict=True))),
        catalog={"onsite": catalog_onsite},
    )
    open_ = decide(settings, export_control=False)
    controlled = decide(settings, export_control=True)

    # Independent of settings.location_is_onsite: the only on-site places of the default site
    # are the beamline's storage and, when the site says so, the catalog.
    onsite = {keys.BEAMLINE} | ({keys.CATALOG} if catalog_onsite else set())
    assert {keys.location_of(k) for k in controlled} <= onsite
    assert not {keys.BEAMLINE_TIFF, keys.BEAMLINE_ZARR} & controlled  # results come from off site
    # What stays is what the same switches give an open scan, on site: the on-site copy is
    # still made whenever the open scan would get one.
    assert controlled <= open_
    assert (keys.BEAMLINE_RAW in controlled) == (keys.BEAMLINE_RAW in open_)
    assert (keys.CATALOG_RAW in controlled) == (catalog_onsite and keys.CATALOG_RAW in open_)


# -- shared: one export-controlled scan announced by the sensor ----------------------------------


def _announce(site: Settings, instance: dg.DagsterInstance, relative: str) -> dg.RunRequest:
    detector_scan(site, relative, export_control=True)
    tick = evaluate_tick(site, instance, None)
    register(instance, tick)
    [request] = tick.run_requests or []
    # decide() kept the scan on site; the tests below bypass that.
    assert set(request.asset_selection or []) == {keys.BEAMLINE_RAW}
    return request


def _outcome(report: RunReport, asset: dg.AssetKey) -> tuple[str, str]:
    [found] = [o for o in report.outcomes if o.asset == asset.to_user_string()]
    return found.status, found.error


def _off_site_bytes(settings: Settings) -> dict[str, int]:
    """Bytes of every file (hidden partial files included) under each off-site endpoint root."""
    return {
        name: sum(p.stat().st_size for p in ep.root.rglob("*") if p.is_file())
        if ep.root is not None and ep.root.exists()
        else 0
        for name, ep in settings.endpoints.items()
        if not ep.onsite
    }


# -- (b) the transfer layer alone -----------------------------------------------------------------


@pytest.fixture(scope="module")
def bypassed_copy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, RunReport]]:
    """A run request built by hand, selecting the NERSC copy of an export-controlled scan."""
    base = tmp_path_factory.mktemp("transfer_alone")
    site = Settings(
        home=base / "site",
        sensor=SensorSettings(settle_seconds=1.0, lookback_hours=24),
        decision=Decision(nersc_recon=True, alcf_recon=True, olcf_recon=True),
    )
    (base / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(base / "dagster")) as instance:
        request = _announce(site, instance, "ITAR/20260105_090000_itar_bypass.h5")
        forced = request.with_replaced_attrs(asset_selection=[keys.BEAMLINE_RAW, RAW_NERSC])
        yield site, execute(build_definitions(site), instance, forced)


def test_transfer_layer_alone_fails_the_off_site_copy_naming_export_control(
    bypassed_copy: tuple[Settings, RunReport],
) -> None:
    _, report = bypassed_copy
    status, error = _outcome(report, RAW_NERSC)
    assert status == "failed"
    assert "ExportControlled" in error and "export controlled" in error
    assert "nersc_cfs" in error and "outside the ALS site" in error


def test_transfer_layer_alone_leaves_zero_bytes_off_site(
    bypassed_copy: tuple[Settings, RunReport],
) -> None:
    site, _ = bypassed_copy
    assert _off_site_bytes(site) == dict.fromkeys(_off_site_bytes(site), 0)
    assert len(_off_site_bytes(site)) >= 3  # nersc, alcf and olcf storage were all looked at


def test_transfer_layer_alone_still_makes_the_on_site_copy(
    bypassed_copy: tuple[Settings, RunReport],
) -> None:
    site, report = bypassed_copy
    assert _outcome(report, keys.BEAMLINE_RAW) == ("materialized", "")
    relative = "ITAR/20260105_090000_itar_bypass.h5"
    home = site.root("data832_raw") / relative
    assert home.read_bytes() == (site.root("spot832") / relative).read_bytes()


# -- (c) the catalog alone ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scicat() -> Iterator[tuple[FakeSciCat, str]]:
    fake = FakeSciCat(users={"ingestor": PASSWORD})
    with fake.serve() as url:
        yield fake, url


def test_scicat_alone_refuses_an_export_controlled_scan_materialized_directly(
    scicat: tuple[FakeSciCat, str],
    tmp_path: Path,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, url = scicat
    monkeypatch.setenv("SCICAT_PASSWORD", PASSWORD)
    site = Settings(
        home=tmp_path / "site",
        sensor=SensorSettings(settle_seconds=1.0, lookback_hours=24),
        backends={"catalog": "scicat"},
        catalog={"url": url, "username": "ingestor", "onsite": False},
    )
    assert site.catalog.onsite is False  # decide() would drop the catalog; it is bypassed here
    request = _announce(site, instance, "ITAR/20260105_090001_itar_catalog.h5")
    forced = request.with_replaced_attrs(asset_selection=[keys.BEAMLINE_RAW, keys.CATALOG_RAW])

    report = execute(build_definitions(site), instance, forced)

    assert _outcome(report, keys.BEAMLINE_RAW) == ("materialized", "")
    status, error = _outcome(report, keys.CATALOG_RAW)
    assert status == "failed"
    assert "export controlled" in error and "not sent to SciCat" in error
    assert fake.datasets == {} and fake.origdatablocks == {} and fake.attachments == {}
    assert fake.requests == []  # refused before any request, the login included
    assert not instance.fetch_materializations(
        dg.AssetRecordsFilter(keys.CATALOG_RAW, [request.partition_key]), limit=1
    ).records
