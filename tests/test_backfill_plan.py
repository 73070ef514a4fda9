"""How ``bl832 backfill`` turns a selection and filters into Dagster backfills, before anything
is launched: which assets, which scans, split by export control, with the parents a historic
scan lacks; and the errors an operator gets for a request that cannot be one."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from ledger_support import copy_facts

from bl832_assets import keys
from bl832_assets.backfill.plan import (
    CONTROLLED,
    BackfillRefused,
    Choice,
    SiteRecords,
    parents_of,
    plan,
    selected_assets,
)
from bl832_assets.cli.backfill import _recon_config
from bl832_assets.definitions import build_definitions
from bl832_assets.retention.resource import open_ledger
from bl832_assets.settings import Settings

DAY = 86400.0


def _names(assets: list[dg.AssetKey]) -> list[str]:
    return [k.to_user_string() for k in assets]


def _record(site: Settings, scan: str, *, controlled: bool, made_at: float | None = None) -> None:
    facts = copy_facts(
        scan,
        endpoint=site.beamline_raw,
        relative_path=f"BLS-1/{scan}.h5",
        made_at=made_at or time.time(),
        export_controlled=controlled,
    )
    open_ledger(site.ledger_url).record_seen(facts)


def _records(site: Settings, scans: list[str], has: dict[str, set[str]] | None = None):
    defs = build_definitions(site)
    return SiteRecords(
        registered=scans,
        ledger=open_ledger(site.ledger_url),
        parents=parents_of(defs),
        materialized=lambda key: (has or {}).get(key.to_user_string(), set(scans)),
    )


def test_a_bare_key_with_plus_takes_what_depends_on_it(site: Settings) -> None:
    defs = build_definitions(site)
    assert _names(selected_assets(defs, "nersc/recon_zarr+")) == [
        "archive/recon_zarr",
        "catalog/derived_dataset",
        "data832/recon_zarr",
        "nersc/recon_zarr",
    ]
    assert _names(selected_assets(defs, "group:catalog")) == [
        "catalog/derived_dataset",
        "catalog/raw_dataset",
    ]


@pytest.mark.parametrize(
    ("selection", "says"),
    [
        ("nersc/no_such_asset", "names no asset that can be materialized"),
        ("spot832/raw_scan", "names no asset that can be materialized"),
        ("key:(", "selection 'key:('"),
    ],
)
def test_a_selection_of_nothing_is_refused_with_the_reason(
    site: Settings, selection: str, says: str
) -> None:
    with pytest.raises(BackfillRefused, match=says.replace("(", r"\(")):
        selected_assets(build_definitions(site), selection)


def test_export_controlled_scans_get_only_on_site_assets_in_a_backfill_of_their_own(
    site: Settings,
) -> None:
    _record(site, "20240301_100000_open", controlled=False)
    _record(site, "20240301_110000_secret", controlled=True)
    scans = ["20240301_100000_open", "20240301_110000_secret", "20240301_120000_unknown"]
    assets = selected_assets(build_definitions(site), "data832/raw_scan+")

    made = plan(site, _records(site, scans), assets, Choice())

    open_part, held = made.parts
    assert open_part.scans == ["20240301_100000_open"]
    assert "nersc/recon_tiff" in _names(open_part.assets)
    assert held.label == CONTROLLED
    # A scan with no recorded flag is treated as controlled, as the copy assets treat it.
    assert held.scans == ["20240301_110000_secret", "20240301_120000_unknown"]
    assert made.controlled == 2 and made.unflagged == 1
    for key in held.assets:
        assert site.location_is_onsite(keys.location_of(key)), key
    assert "nersc/raw_scan" in made.withheld and "data832/recon_tiff" in made.withheld


def test_dates_come_from_the_scan_name_else_from_when_its_copy_was_recorded(
    site: Settings,
) -> None:
    march, june = "20240315_080000_a", "20240620_080000_b"
    nameless_old, nameless_new, nameless_never = "tomo_old", "tomo_new", "tomo_unrecorded"
    for scan in (march, june):
        _record(site, scan, controlled=False)
    _record(site, nameless_old, controlled=False, made_at=time.time() - 400 * DAY)
    _record(site, nameless_new, controlled=False)
    scans = [march, june, nameless_old, nameless_new, nameless_never]
    assets = selected_assets(build_definitions(site), "nersc/recon_tiff")
    records = _records(site, scans)

    spring = plan(site, records, assets, Choice(since=date(2024, 3, 1), until=date(2024, 3, 31)))
    assert [p.scans for p in spring.parts] == [[march]]
    assert spring.undated == 1  # never recorded anywhere, so no date to compare

    recent = plan(site, records, assets, Choice(since=date.today()))
    assert [p.scans for p in recent.parts] == [[nameless_new]]


def test_a_scan_list_names_its_unknown_scans_and_skips_comments(
    site: Settings, tmp_path: Path
) -> None:
    for scan in ("s1", "s2", "s3"):
        _record(site, scan, controlled=False)
    listed = tmp_path / "scans.txt"
    listed.write_text("# reprocess after the filter fix\ns3\n\ns1\n")
    assets = selected_assets(build_definitions(site), "nersc/recon_tiff")
    records = _records(site, ["s1", "s2", "s3"])

    made = plan(site, records, assets, Choice(scans_file=listed, match="s[13]"))
    assert [p.scans for p in made.parts] == [["s1", "s3"]]

    listed.write_text("s1\nghost_1\nghost_2\n")
    with pytest.raises(
        BackfillRefused, match=r"2 scan\(s\) are not registered \(ghost_1, ghost_2\)"
    ):
        plan(site, records, assets, Choice(scans_file=listed))
    with pytest.raises(BackfillRefused, match="cannot read the scan list"):
        plan(site, records, assets, Choice(scans_file=tmp_path / "missing.txt"))


def test_parents_a_historic_scan_never_had_are_added_but_not_switched_off_facilities(
    site: Settings,
) -> None:
    """A discovered scan has a beamline copy but no raw catalog record (which the derived
    record links to) and no NERSC copy; the home copies could read from ALCF or OLCF too,
    but those are switched off, so they are no missing input."""
    _record(site, "old", controlled=False)
    _record(site, "done", controlled=False)
    has = {
        "catalog/raw_dataset": {"done"},
        "nersc/raw_scan": {"done"},
        "nersc/recon_tiff": {"done"},
        "data832/raw_scan": {"old", "done"},
    }
    assets = selected_assets(build_definitions(site), "nersc/recon_tiff+")

    made = plan(site, _records(site, ["old", "done"], has), assets, Choice())

    (part,) = made.parts
    assert part.added == ["catalog/raw_dataset", "nersc/raw_scan"]
    assert "alcf/recon_tiff" not in _names(part.assets)
    assert "data832/raw_scan" not in _names(part.assets)  # every scan has it

    everyone = {name: {"old", "done"} for name in has}
    assert (
        plan(site, _records(site, ["old", "done"], everyone), assets, Choice()).parts[0].added == []
    )


def test_reconstruction_options_become_run_config_checked_before_launch(site: Settings) -> None:
    defs = build_definitions(site)
    tiffs = selected_assets(defs, "nersc/recon_tiff+")
    config = _recon_config(site, tiffs, ["filter_name=hann", "centre=60.5"])
    assert config == {
        "ops": {"nersc__recon_tiff": {"config": {"filter_name": "hann", "centre": 60.5}}}
    }
    with pytest.raises(BackfillRefused, match="filter_name"):
        _recon_config(site, tiffs, ["filter_name=sharpest"])
    with pytest.raises(BackfillRefused, match="NAME=VALUE"):
        _recon_config(site, tiffs, ["hann"])
    with pytest.raises(BackfillRefused, match="the selection has none"):
        _recon_config(site, selected_assets(defs, "group:catalog"), ["filter_name=hann"])
