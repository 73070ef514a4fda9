"""``bl832 discover`` over historic scans on the beamline's raw storage (local backend).

The 5,000-file case runs on an in-memory Dagster instance: Dagster's SQLite event log writes
100-140 events/s on 2 cores (a new engine and two connections per event), which would make this
test about behaviour take minutes; ``benchmarks/bench_discover.py`` measures SQLite itself.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from ledger_support import copy_facts

from bl832_assets import keys
from bl832_assets.cli.main import main
from bl832_assets.definitions import build_definitions
from bl832_assets.discovery import CHUNK, POOL_MIN, DiscoverOptions, DiscoverySummary, discover
from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.resources.wiring import build_resources
from bl832_assets.retention.resource import open_ledger
from bl832_assets.science.synth import write_synthetic_scan
from bl832_assets.settings import Settings

ENDPOINT = "data832_raw"
FOLDERS = ("2024-01", "2024-02", "2024-03", "2024-04", "2024-05")
PER_FOLDER = 300
"""The full run registers 4 x 300 + 1 keys: more than one CHUNK, and enough to validate in
worker processes (POOL_MIN); the rate at scale is benchmarks/bench_discover.py's."""
SAMPLE = f"scan_{2 * PER_FOLDER + 45:05d}"  # one scan in 2024-03
BAD_NAMES = ("2024-02/notes.txt", "2024-02/a,b.h5", "2024-03/ leading.h5")
TRUNCATED = "2024-04/truncated_0001.h5"
NOT_HDF5 = "2024-04/text_0001.h5"
CONTROLLED = "2024-05/controlled_0001.h5"


def _scan(root: Path, relative: str, source: Path) -> Path:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(source, target)
    return target


def _transfer(settings: Settings) -> TransferResource:
    transfer = build_resources(settings)["transfer"]
    assert isinstance(transfer, TransferResource)
    return transfer


@dataclass
class Historic:
    settings: Settings
    instance: dg.DagsterInstance
    first: DiscoverySummary  # the subset registered beforehand
    full: DiscoverySummary
    again: DiscoverySummary


@pytest.fixture(scope="module")
def historic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Historic]:
    tmp = tmp_path_factory.mktemp("historic")
    settings = Settings(home=tmp / "site")
    root = settings.root(ENDPOINT)
    valid = write_synthetic_scan(tmp / "valid.h5", columns=16, rows=2, angles=11, noise=False)
    for f, folder in enumerate(FOLDERS):
        for i in range(PER_FOLDER):
            _scan(root, f"{folder}/scan_{f * PER_FOLDER + i:05d}.h5", valid)
    for name in BAD_NAMES:
        _scan(root, name, valid)
    (root / TRUNCATED).write_bytes(valid.read_bytes()[:2000])
    (root / NOT_HDF5).write_text("scan notes, not a scan\n")
    write_synthetic_scan(root / CONTROLLED, columns=16, rows=2, angles=11, export_control=True)
    # Not scans: retention's trash, and a copy in flight.
    _scan(root, ".trash/scan_99999.h5", valid)
    _scan(root, "2024-01/.scan_99998.h5.partial-1234", valid)
    transfer = _transfer(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        first = discover(settings, instance, transfer, DiscoverOptions(ENDPOINT, match="2024-01/*"))
        full = discover(settings, instance, transfer, DiscoverOptions(ENDPOINT))
        again = discover(settings, instance, transfer, DiscoverOptions(ENDPOINT))
        yield Historic(settings, instance, first, full, again)


def test_counts_are_exact(historic: Historic) -> None:
    assert 4 * PER_FOLDER + 1 > CHUNK and PER_FOLDER >= POOL_MIN  # what the sizes are for
    assert (len(historic.first.registered), historic.first.already_known) == (PER_FOLDER, 0)
    assert historic.first.refused == []
    full = historic.full
    assert len(full.registered) == 4 * PER_FOLDER + 1  # four folders and the controlled scan
    assert full.already_known == PER_FOLDER
    assert len(full.refused) == len(BAD_NAMES) + 2
    assert full.layout_checked and not full.dry_run


def test_registered_scans_are_partitions_with_a_location_record(historic: Historic) -> None:
    partitions = set(historic.instance.get_dynamic_partitions("scans"))
    registered = set(historic.first.registered) | set(historic.full.registered)
    assert partitions == registered and len(partitions) == 5 * PER_FOLDER + 1
    assert "scan_99999" not in partitions and "scan_99998" not in partitions
    result = historic.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=keys.BEAMLINE_RAW), limit=10_000
    )
    by_scan = {}
    for record in result.records:
        event = record.asset_materialization
        assert event is not None and event.partition is not None
        by_scan[event.partition] = {k: v.value for k, v in event.metadata.items()}
    assert set(by_scan) == partitions
    root = historic.settings.root(ENDPOINT)
    scan = by_scan[SAMPLE]
    assert scan == {
        "endpoint": ENDPOINT,
        "relative_path": f"2024-03/{SAMPLE}.h5",
        "path": str(root / f"2024-03/{SAMPLE}.h5"),
        "size_bytes": (root / f"2024-03/{SAMPLE}.h5").stat().st_size,
        "export_control": False,
        "discovered": True,
    }
    ledger = open_ledger(historic.settings.ledger_url)
    copies = {c.scan: c for c in ledger.at(ENDPOINT)}
    assert set(copies) == partitions
    copy = copies[SAMPLE]
    assert (copy.asset_key, copy.dataset, copy.relative_path) == (
        "data832/raw_scan",
        "raw_scan",
        f"2024-03/{SAMPLE}.h5",
    )
    assert (copy.made_by, copy.sha256, copy.files) == ("discovered", None, 1)
    assert copy.size_bytes == scan["size_bytes"] and not copy.export_controlled
    assert time.time() - copy.made_at < 600  # when it was learnt, not the file's time


def test_the_export_controlled_scan_is_flagged(historic: Historic) -> None:
    result = historic.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=keys.BEAMLINE_RAW, asset_partitions=["controlled_0001"]),
        limit=1,
    )
    assert result.records[0].asset_materialization.metadata["export_control"].value is True
    ledger = open_ledger(historic.settings.ledger_url)
    record = ledger.get("controlled_0001", ENDPOINT, "raw_scan")
    assert record is not None and record.export_controlled


def test_bad_files_are_listed_with_their_reasons(historic: Historic) -> None:
    reasons = {r.relative_path: r.reason for r in historic.full.refused}
    assert reasons["2024-02/notes.txt"] == "not a .h5 scan"
    assert reasons["2024-02/a,b.h5"] == "'|' or ',' in the scan name"
    assert reasons["2024-03/ leading.h5"] == "leading or trailing whitespace in the scan name"
    assert reasons[TRUNCATED].startswith("file: not a readable HDF5 file")
    assert reasons[NOT_HDF5].startswith("file: not a readable HDF5 file")
    partitions = set(historic.instance.get_dynamic_partitions("scans"))
    assert not {"truncated_0001", "text_0001", "a,b", " leading"} & partitions


def test_a_second_run_registers_nothing(historic: Historic) -> None:
    again = historic.again
    assert again.registered == []
    assert again.already_known == 5 * PER_FOLDER + 1
    assert [r.relative_path for r in again.refused] == [
        r.relative_path for r in historic.full.refused
    ]


# -- small sites on Dagster's SQLite storage -----------------------------------------------------


@pytest.fixture
def raw(site: Settings, tmp_path: Path) -> Path:
    """Three valid scans on the beamline's raw storage, modified in March, April and May."""
    valid = write_synthetic_scan(tmp_path / "valid.h5", columns=16, rows=2, angles=11)
    root = site.root(ENDPOINT)
    for relative, day in (
        ("p1/march.h5", date(2024, 3, 15)),
        ("p1/april.h5", date(2024, 4, 1)),
        ("p2/may.h5", date(2024, 5, 31)),
    ):
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(valid, target)
        stamp = time.mktime(day.timetuple()) + 12 * 3600
        os.utime(target, (stamp, stamp))
    return root


def _run(site: Settings, instance: dg.DagsterInstance, **options: object) -> DiscoverySummary:
    return discover(site, instance, _transfer(site), DiscoverOptions(ENDPOINT, **options))  # type: ignore[arg-type]


def test_date_and_glob_filters_choose_the_files(
    site: Settings, instance: dg.DagsterInstance, raw: Path
) -> None:
    april_on = _run(site, instance, since=date(2024, 4, 1), dry_run=True)
    assert sorted(april_on.registered) == ["april", "may"]
    to_april = _run(site, instance, until=date(2024, 4, 1), dry_run=True)
    assert sorted(to_april.registered) == ["april", "march"]
    assert _run(site, instance, match="p2/*", dry_run=True).registered == ["may"]
    assert _run(site, instance, prefix="p1", dry_run=True).registered == ["april", "march"]


def test_dry_run_changes_nothing(
    site: Settings, instance: dg.DagsterInstance, raw: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = _run(site, instance, dry_run=True)
    assert len(summary.registered) == 3 and summary.dry_run
    assert instance.get_dynamic_partitions("scans") == []
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=keys.BEAMLINE_RAW), limit=10
    )
    assert records.records == []
    assert open_ledger(site.ledger_url).at(ENDPOINT) == []


def test_a_name_taken_by_another_file_is_refused(
    site: Settings, instance: dg.DagsterInstance, raw: Path
) -> None:
    assert len(_run(site, instance).registered) == 3
    for folder in ("p3", "p4"):
        (raw / folder).mkdir()
    shutil.copy(raw / "p1/march.h5", raw / "p3/march.h5")
    shutil.copy(raw / "p1/march.h5", raw / "p3/june.h5")
    shutil.copy(raw / "p1/march.h5", raw / "p4/june.h5")
    summary = _run(site, instance)
    assert summary.registered == ["june"]  # p3's: the first of the two in this run
    assert summary.already_known == 3
    assert {(r.relative_path, r.reason) for r in summary.refused} == {
        ("p3/march.h5", f"name already registered for {raw / 'p1/march.h5'}"),
        ("p4/june.h5", f"name already registered for {raw / 'p3/june.h5'}"),
    }
    recorded = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=keys.BEAMLINE_RAW, asset_partitions=["march"]), limit=5
    )
    assert [r.asset_materialization.metadata["relative_path"].value for r in recorded.records] == [
        "p1/march.h5"
    ]


def _recorded_by_an_interrupted_run(site: Settings, scan: str, relative_path: str) -> None:
    open_ledger(site.ledger_url).record_seen(
        copy_facts(scan, endpoint=ENDPOINT, relative_path=relative_path, size_bytes=1)
    )


def test_a_name_recorded_by_an_interrupted_discovery_stays_with_its_file(
    site: Settings, instance: dg.DagsterInstance, raw: Path
) -> None:
    """A crash between the ledger's records and the partitions leaves keys recorded but not
    registered: a rerun registers them for the same files and refuses them to any other."""
    shutil.copy(raw / "p1/april.h5", raw / "p2/march.h5")
    _recorded_by_an_interrupted_run(site, "march", "p2/march.h5")
    _recorded_by_an_interrupted_run(site, "april", "p1/april.h5")

    summary = _run(site, instance)

    assert sorted(summary.registered) == ["april", "march", "may"]
    assert [(r.relative_path, r.reason) for r in summary.refused] == [
        ("p1/march.h5", f"name already recorded for {raw / 'p2/march.h5'}")
    ]
    recorded = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=keys.BEAMLINE_RAW, asset_partitions=["march"]), limit=5
    )
    assert [r.asset_materialization.metadata["relative_path"].value for r in recorded.records] == [
        "p2/march.h5"
    ]
    march = open_ledger(site.ledger_url).get("march", ENDPOINT, keys.RAW_SCAN)
    assert march is not None and march.relative_path == "p2/march.h5"


def test_cli_prints_refusals_and_one_summary_line(
    site: Settings,
    raw: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BL832_HOME", str(site.home))
    monkeypatch.setenv("DAGSTER_HOME", str(site.home / "dagster"))
    monkeypatch.delenv("BL832_CONFIG", raising=False)
    (raw / "p2" / "bad,name.h5").write_bytes(b"")
    assert main(["discover", ENDPOINT, "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"refused {ENDPOINT}:p2/bad,name.h5: '|' or ',' in the scan name"
    assert lines[1].startswith("discover: 3 would be registered, 0 already known, 1 refused (")
    assert lines[1].endswith("files/s); dry run: nothing was registered or recorded")
    assert len(lines) == 2


def test_an_unreadable_endpoint_exits_1_saying_what_to_check(
    site: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BL832_HOME", str(site.home))
    monkeypatch.setenv("DAGSTER_HOME", str(site.home / "dagster"))
    monkeypatch.delenv("BL832_CONFIG", raising=False)
    assert main(["discover", ENDPOINT, "no/such/folder"]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert "no/such/folder" in error[0] and "check that the storage is mounted" in error[0]


def test_a_discovered_scan_travels_on_with_the_export_control_its_file_declares(
    site: Settings, instance: dg.DagsterInstance, raw: Path, tmp_path: Path
) -> None:
    """A historic scan has no detector record: its copies take the flag discovery read from
    the file, so an open scan reaches the archive and a controlled one stays on site."""
    write_synthetic_scan(raw / "p2/secret.h5", columns=16, rows=2, angles=11, export_control=True)
    _run(site, instance)
    defs = build_definitions(site)
    archive = keys.key("nersc", keys.RAW_SCAN)
    job = defs.resolve_implicit_global_asset_job_def()

    open_scan = job.execute_in_process(
        instance=instance, partition_key="may", asset_selection=[archive], raise_on_error=False
    )
    assert open_scan.success
    assert (site.root("nersc_cfs") / "p2/may.h5").read_bytes() == (raw / "p2/may.h5").read_bytes()

    controlled = job.execute_in_process(
        instance=instance, partition_key="secret", asset_selection=[archive], raise_on_error=False
    )
    assert not controlled.success
    assert not (site.root("nersc_cfs") / "p2/secret.h5").exists()
