"""The shared core serving 7.3.3, 7.0.1.2 and a move-only beamline on the embedded backends:
pairs arriving one file at a time, a pair whose image never comes, export control per
beamline, each graph end to end with its science checked against the truth, the copies in the
ledger file by file, and a beamline made from a settings file alone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import h5py
import numpy as np
import pytest
import yaml

from bl832_assets.beamlines.bl733.synth import Calibrant, write_calibrant_pair
from bl832_assets.beamlines.bl7012.accuracy import object_error
from bl832_assets.beamlines.bl7012.cxi import read_image
from bl832_assets.beamlines.bl7012.grid import well_lit
from bl832_assets.beamlines.bl7012.params import PieParams
from bl832_assets.beamlines.bl7012.synth import SyntheticScan, write_synthetic_scan
from bl832_assets.core.codes import code_for
from bl832_assets.core.decision import ExportControlRefused, decide_dataset
from bl832_assets.core.intake import dataset_intake
from bl832_assets.core.keys import BeamlineKeys
from bl832_assets.core.location import build_beamline_definitions
from bl832_assets.dispatch import register
from bl832_assets.execution import RunReport, execute
from bl832_assets.resources.catalog.local import LocalCatalogResource
from bl832_assets.retention.resource import open_ledger
from bl832_assets.sensors import run_tick
from bl832_assets.settings import Settings, load_settings
from bl832_assets.watch import WatchCursor

World = tuple[Settings, dg.DagsterInstance]
SETTLED = 60e9  # ns: a tick this far ahead sees every file written before it as settled


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str) -> None:
        self.lines.append(msg)

    def warning(self, msg: str) -> None:
        self.lines.append(msg)


SaxsRun = tuple[Calibrant, dg.SensorResult, dg.SensorResult, RunReport, Log]
PtychoRun = tuple[SyntheticScan, RunReport]


def _quick(site: Settings) -> Settings:
    """The site with the 7.0.1.2 engine cut to a quick, still accurate run."""
    bl7012 = site.beamlines["bl7012"]
    assert bl7012.ptychography is not None
    fast = bl7012.ptychography.model_copy(update={"pie": PieParams(iterations=60)})
    sections = {**site.beamlines, "bl7012": bl7012.model_copy(update={"ptychography": fast})}
    return site.model_copy(update={"beamlines": sections})


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    home = tmp_path_factory.mktemp("beamlines")
    (home / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
        yield _quick(Settings(home=home / "site")), instance


def _tick(
    settings: Settings, name: str, instance: dg.DagsterInstance, cursor: str | None, log: Log
) -> dg.SensorResult:
    keys = BeamlineKeys(name, settings.beamlines[name])
    intake = dataset_intake(settings, keys, code_for(keys.section))
    return run_tick(intake, instance, cursor, log, now_ns=time.time_ns() + int(SETTLED))


def _run(
    settings: Settings, name: str, instance: dg.DagsterInstance, result: dg.SensorResult
) -> RunReport:
    register(instance, result)
    [request] = result.run_requests or []
    report = execute(build_beamline_definitions(settings, name), instance, request)
    assert report.succeeded, report.failures()
    return report


@pytest.fixture(scope="module")
def saxs(world: World) -> SaxsRun:
    """A pair arriving one file at a time: the header first, the image a tick later."""
    settings, instance = world
    folder = settings.root("data733") / "2026" / "BLS-0042"
    staging = folder.parent / ".writing"
    calibrant = write_calibrant_pair(
        staging, "agbh_cal_2m", proposal="ALS-09876", pi="Dr. Ada Byron <ada@lbl.gov>"
    )
    folder.mkdir(parents=True)
    (folder / "quicklook.png").write_bytes(b"not data: the pair's folder holds other files")
    log = Log()
    assert calibrant.pair.text is not None and calibrant.pair.image is not None
    calibrant.pair.text.replace(folder / calibrant.pair.text.name)
    first = _tick(settings, "bl733", instance, None, log)
    calibrant.pair.image.replace(folder / calibrant.pair.image.name)
    second = _tick(settings, "bl733", instance, first.cursor, log)
    return calibrant, first, second, _run(settings, "bl733", instance, second), log


def test_a_pair_is_held_until_its_image_settles(saxs: SaxsRun) -> None:
    _, first, second, _, _ = saxs
    assert not first.run_requests
    assert list(WatchCursor.from_json(first.cursor).held) == ["2026/BLS-0042/agbh_cal_2m.txt"]
    [request] = second.run_requests or []
    assert request.partition_key == "agbh_cal_2m"
    assert WatchCursor.from_json(second.cursor).held == {}


def test_the_pair_goes_everywhere_its_beamline_decides(saxs: SaxsRun) -> None:
    *_, report, _ = saxs
    assert {o.asset for o in report.outcomes} == {
        "beegfs733/dataset",
        "nersc733/dataset",
        "catalog733/raw_dataset",
        "nersc733_scratch/profile",
        "beegfs733_analysis/profile",
        "catalog733/derived_dataset",
    }
    checks = {o.asset: o.checks for o in report.outcomes}
    assert checks["beegfs733/dataset"] == {"copy_matches_source": True}
    assert checks["beegfs733_analysis/profile"] == {
        "copy_matches_source": True,
        "profile_is_sound": True,
    }


def test_copies_move_exactly_the_pair_and_record_each_file(world: World, saxs: SaxsRun) -> None:
    settings, _ = world
    for endpoint in ("beegfs733", "nersc733"):
        copied = sorted(
            p.relative_to(settings.root(endpoint)).as_posix()
            for p in settings.root(endpoint).rglob("*")
            if p.is_file()
        )
        assert copied == ["2026/BLS-0042/agbh_cal_2m.edf", "2026/BLS-0042/agbh_cal_2m.txt"]
    ledger = open_ledger(settings.ledger_url)
    for dataset in ("dataset.txt", "dataset.edf"):
        record = ledger.get("agbh_cal_2m", "nersc733", dataset)
        assert record is not None and record.sha256 and record.relative_path.endswith(dataset[7:])


def test_the_profile_finds_the_calibrant_rings(world: World, saxs: SaxsRun) -> None:
    settings, instance = world
    calibrant, *_ = saxs
    keys = BeamlineKeys("bl733", settings.beamlines["bl733"])
    from bl832_assets.assets.records import latest_record

    record = latest_record(instance, keys.product, "agbh_cal_2m")
    assert record is not None
    peaks = np.array(record.metadata["peaks_q"])
    for ring in calibrant.rings_q[:3]:
        assert np.min(np.abs(peaks - ring)) < 0.005, (ring, peaks)


def test_catalog_records_proposal_and_pi_from_the_header_and_link_the_profile(
    world: World, saxs: SaxsRun
) -> None:
    settings, _ = world
    catalog = LocalCatalogResource(database=str(settings.catalog_db))
    raw = catalog.find_dataset("7.3.3", "agbh_cal_2m", "raw")
    derived = catalog.find_dataset("7.3.3", "agbh_cal_2m", "derived")
    assert raw is not None and derived is not None
    assert raw.record["proposalId"] == "ALS-09876"
    assert raw.record["ownerGroup"] == "ALS-09876"
    assert raw.record["principalInvestigator"] == "Dr. Ada Byron"
    assert raw.record["contactEmail"] == "ada@lbl.gov"
    assert derived.record["inputDatasets"] == [raw.pid]
    assert str(settings.root("beegfs733_analysis")) in derived.record["sourceFolder"]


def test_a_pair_whose_image_never_comes_is_reported_once_and_not_copied(world: World) -> None:
    settings, instance = world
    folder = settings.root("data733") / "2026" / "lonely"
    write_calibrant_pair(folder.parent / ".staging", "lonely_header").pair.text.replace(  # type: ignore[union-attr]
        (folder.mkdir(parents=True), folder / "lonely_header.txt")[1]
    )
    log = Log()
    patience = settings.beamlines["bl733"].sensor.incomplete_after_minutes * 60e9
    keys = BeamlineKeys("bl733", settings.beamlines["bl733"])
    intake = dataset_intake(settings, keys, code_for(keys.section))
    now = time.time_ns() + int(SETTLED)
    first = run_tick(intake, instance, None, log, now_ns=now)
    later = run_tick(intake, instance, first.cursor, log, now_ns=now + int(patience) + 1)
    again = run_tick(intake, instance, later.cursor, log, now_ns=now + 2 * int(patience))
    reports = [line for line in log.lines if "lonely_header.edf has not arrived" in line]
    assert len(reports) == 1 and "nothing of it is registered or copied" in reports[0]
    assert not (first.run_requests or later.run_requests or again.run_requests)
    assert not list(settings.root("beegfs733").rglob("lonely_header*"))


def test_7_3_3_refuses_an_export_controlled_pair_outright(world: World) -> None:
    settings, instance = world
    folder = settings.root("data733") / "controlled"
    calibrant = write_calibrant_pair(folder, "secret_sample")
    assert calibrant.pair.text is not None
    calibrant.pair.text.write_text(calibrant.pair.text.read_text() + "Export Control: yes\n")
    log = Log()
    result = _tick(settings, "bl733", instance, None, log)
    assert "secret_sample" not in {r.partition_key for r in result.run_requests or []}
    assert any("secret_sample" in line and "refuses such datasets" in line for line in log.lines)
    assert not instance.has_dynamic_partition("datasets_bl733", "secret_sample")


def test_7_0_1_2_keeps_an_export_controlled_scan_on_site(world: World) -> None:
    settings, _ = world
    keys = BeamlineKeys("bl7012", settings.beamlines["bl7012"])
    everything = decide_dataset(settings, keys, export_control=False)
    assert {k.to_user_string() for k in everything} >= {
        "nersc7012/dataset",
        "nersc7012_scratch/ptycho",
    }
    # NERSC is off site and the catalog is shared: nothing is left for a controlled scan.
    assert decide_dataset(settings, keys, export_control=True) == frozenset()
    with pytest.raises(ExportControlRefused):
        decide_dataset(
            settings, BeamlineKeys("bl733", settings.beamlines["bl733"]), export_control=True
        )


@pytest.fixture(scope="module")
def ptycho(world: World) -> PtychoRun:
    settings, instance = world
    scan = write_synthetic_scan(
        settings.root("data7012") / "2026/12/261204" / "NS_261204001_ccdframes_0_0.cxi"
    )
    result = _tick(settings, "bl7012", instance, None, Log())
    return scan, _run(settings, "bl7012", instance, result)


def test_the_reconstruction_matches_the_known_object(world: World, ptycho: PtychoRun) -> None:
    settings, _ = world
    scan, report = ptycho
    assert {o.asset: o.checks for o in report.outcomes}["data7012_recon/ptycho"] == {
        "copy_matches_source": True,
        "reconstruction_is_sound": True,
    }
    [home] = settings.root("data7012_recon").rglob("NS_261204001_ccdframes_0_0_recon.cxi")
    error = object_error(read_image(home), scan.object, well_lit(scan.illumination(), 0.25))
    assert error < 0.05, error  # the payload's own test reaches ~0.014 at 100 iterations


def test_the_reconstruction_is_catalogued_from_its_home_copy(
    world: World, ptycho: PtychoRun
) -> None:
    settings, _ = world
    catalog = LocalCatalogResource(database=str(settings.catalog_db))
    raw = catalog.find_dataset("7.0.1.2", "NS_261204001_ccdframes_0_0", "raw")
    derived = catalog.find_dataset("7.0.1.2", "NS_261204001_ccdframes_0_0", "derived")
    assert raw is not None and derived is not None
    assert derived.record["inputDatasets"] == [raw.pid]
    assert derived.record["usedSoftware"] == ["mPIE"]


def test_a_move_only_beamline_needs_only_a_settings_section(tmp_path: Path) -> None:
    """5.3.1, written only in YAML: copies, a catalog record and a prune job, no Python."""
    config = tmp_path / "site.yaml"
    home = tmp_path / "site"
    endpoints = {
        "data531": {"facility": "als", "root": "data531", "onsite": True},
        "nersc531": {"facility": "nersc", "root": "nersc/cfs531", "onsite": False},
    }
    config.write_text(
        yaml.safe_dump(
            {
                "home": str(home),
                "endpoints": {**_default_endpoints(), **endpoints},
                "beamlines": {
                    "bl531": {
                        "id": "5.3.1",
                        "source": "data531",
                        "suffixes": [".h5", ".tiff"],
                        "copies": ["nersc531"],
                        "retention_days": {"data531": 180},
                        "safe_copies": {"data531": ["nersc531"]},
                        "catalog": {"owner_group": "bl531staff", "keywords": ["spectroscopy"]},
                    }
                },
            }
        )
    )
    settings = load_settings(config)
    assert list(settings.beamlines) == ["bl531"]
    defs = build_beamline_definitions(settings, "bl531")
    assert {j.name for j in defs.jobs} >= {"prune_data531", "bl531_transfer_flight_check"}
    settings.root("data531").mkdir(parents=True)
    with h5py.File(settings.root("data531") / "run7.h5", "w") as f:
        f["counts"] = np.arange(10)
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        report = _run(settings, "bl531", instance, _tick(settings, "bl531", instance, None, Log()))
    assert {o.asset for o in report.outcomes} == {"nersc531/dataset", "catalog531/raw_dataset"}
    assert (settings.root("nersc531") / "run7.h5").read_bytes() == (
        settings.root("data531") / "run7.h5"
    ).read_bytes()
    record = LocalCatalogResource(database=str(settings.catalog_db)).find_dataset(
        "5.3.1", "run7", "raw"
    )
    assert record is not None and record.record["ownerGroup"] == "bl531staff"


def _default_endpoints() -> dict[str, dict[str, object]]:
    from bl832_assets.settings import DEFAULT_LAYOUT

    return {
        name: {"facility": facility, "root": folder, "onsite": facility == "als"}
        for name, (facility, folder) in DEFAULT_LAYOUT.items()
        if not name.endswith(("733", "7012", "931")) and "733_" not in name and "7012_" not in name
    }


def test_each_flight_check_writes_a_probe_never_seen_before(world: World) -> None:
    settings, instance = world
    defs = build_beamline_definitions(settings, "bl733")
    job = defs.resolve_job_def("bl733_transfer_flight_check")
    probes = []
    for _ in range(2):
        result = job.execute_in_process(instance=instance, raise_on_error=True)
        probes.append(result.output_for_node("launch_probe").relative_path)
    assert probes[0] != probes[1]
    for endpoint in ("data733", "beegfs733", "nersc733"):
        assert not list(settings.root(endpoint).rglob("*.probe"))


def test_home_copies_show_the_product_previews(
    world: World, saxs: SaxsRun, ptycho: PtychoRun
) -> None:
    from bl832_assets.assets.records import latest_record

    _, instance = world
    shown = {
        "beegfs733_analysis/profile": ("agbh_cal_2m", {"preview_profile", "peaks_q"}),
        "data7012_recon/ptycho": (
            "NS_261204001_ccdframes_0_0",
            {"preview_amplitude", "preview_phase", "engine"},
        ),
    }
    for asset, (key, names) in shown.items():
        record = latest_record(instance, dg.AssetKey.from_user_string(asset), key)
        assert record is not None and names <= set(record.metadata), asset
        previews = [v for n, v in record.metadata.items() if n.startswith("preview_")]
        assert all(str(v).startswith("![") and "data:image/png;base64," in str(v) for v in previews)


def _with_bl531(tmp_path: Path, endpoint: str = "data531") -> dict[str, object]:
    defaults = Settings(home=tmp_path).model_dump(mode="json")
    defaults["endpoints"]["data531"] = {"facility": "als", "root": "data531", "onsite": True}
    defaults["endpoints"]["nersc531"] = {"facility": "nersc", "root": "n531", "onsite": False}
    defaults["beamlines"]["bl531"] = {"id": "5.3.1", "source": endpoint, "copies": ["nersc531"]}
    return defaults


def test_move_only_beamlines_share_one_location(tmp_path: Path) -> None:
    from bl832_assets.core.location import location_definitions

    settings = Settings.model_validate(_with_bl531(tmp_path))
    defs = location_definitions(settings, "bl931", "bl531")
    assert {s.name for s in defs.sensors} == {"bl931_new_datasets", "bl531_new_datasets"}
    assert "transfer" in defs.resources
    graph = defs.resolve_asset_graph()  # one set of resources, two beamlines
    assert dg.AssetKey(["data531", "dataset"]) in graph.get_all_asset_keys()


def test_two_beamlines_cannot_own_one_endpoint(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"endpoint 'data931' is already beamlines\.bl931's"):
        Settings.model_validate(_with_bl531(tmp_path, endpoint="data931"))


def test_each_endpoint_is_pruned_from_one_location_only(world: World) -> None:
    from bl832_assets.definitions import build_definitions

    settings, _ = world
    names = [
        {j.name for j in defs.jobs if j.name.startswith("prune_")}
        for defs in [
            build_definitions(settings),
            *(build_beamline_definitions(settings, n) for n in settings.beamlines),
        ]
    ]
    every = [name for jobs in names for name in jobs]
    assert len(every) == len(set(every))
    assert set(every) == {f"prune_{e}" for e in settings.retention_days}


def test_names_are_unique_across_the_code_locations(world: World) -> None:
    """One instance holds every location: an asset key, job, sensor or schedule name used by
    two of them would make one shadow the other in the UI."""
    from bl832_assets.core.location import location_definitions
    from bl832_assets.definitions import build_definitions

    settings, _ = world
    movers = [n for n, s in settings.beamlines.items() if s.kind == "move_only"]
    locations = [
        build_definitions(settings),
        location_definitions(settings, "bl733"),
        location_definitions(settings, "bl7012"),
        location_definitions(settings, *movers),
    ]
    kinds = {
        "asset": [
            k.to_user_string()
            for d in locations
            for k in d.resolve_asset_graph().get_all_asset_keys()
        ],
        "job": [j.name for d in locations for j in d.jobs if not j.name.startswith("__")],
        "sensor": [s.name for d in locations for s in d.sensors],
        "schedule": [s.name for d in locations for s in d.schedules],
    }
    for kind, names in kinds.items():
        repeated = sorted({n for n in names if names.count(n) > 1})
        assert not repeated, f"{kind} names in two locations: {repeated}"
    # and a stem names one dataset per beamline: each has its own dynamic partitions
    partitions = [
        {
            a.partitions_def.name
            for a in d.assets
            if isinstance(a, dg.AssetsDefinition) and a.partitions_def is not None
        }
        for d in locations
    ]
    assert partitions[:3] == [{"scans"}, {"datasets_bl733"}, {"datasets_bl7012"}]
    assert partitions[3] == {f"datasets_{n}" for n in movers}
