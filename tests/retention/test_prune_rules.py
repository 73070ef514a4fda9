"""What the prune engine deletes, keeps and refuses when nothing goes wrong, what it reports for
each, and the same through a real scan and the ``prune_spot832`` job on a Dagster instance."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import pytest
from scan_support import detector_scan

from bl832_assets import keys
from bl832_assets.definitions import build_definitions
from bl832_assets.dispatch import register
from bl832_assets.execution import execute
from bl832_assets.resources.transfer.copying import sha256_file
from bl832_assets.resources.wiring import build_resources
from bl832_assets.retention.audit import AuditLog
from bl832_assets.retention.ledger import CopyLedger, CopyState
from bl832_assets.retention.plan import Action
from bl832_assets.retention.reporting import RETENTION_CHECK
from bl832_assets.retention.resource import open_ledger
from bl832_assets.sensors import evaluate_tick
from bl832_assets.settings import (
    Decision,
    Endpoint,
    RetentionSettings,
    SensorSettings,
    Settings,
)

if TYPE_CHECKING:
    from conftest import World

FOLDER = "BLS-00564_dyparkinson"  # where the world's files lie (conftest)
DAY = 86400.0


def spot(world: World, scan: str) -> Path:
    return world.path("spot832", f"{FOLDER}/{scan}.h5")


# -- what is due ------------------------------------------------------------------------------


def test_nothing_is_deleted_when_nothing_is_due(world: World) -> None:
    scans = [f"20260102_0902{i:02d}_young" for i in range(4)]
    for scan in scans:
        world.scan(scan, made_at=time.time() - 0.5 * DAY)

    outcomes = world.prune("spot832")

    assert {o.action for o in outcomes.values()} == {Action.KEEP}
    assert all("due in" in o.reason for o in outcomes.values())
    assert all(spot(world, scan).exists() for scan in scans)
    assert not world.settings.audit_log.exists()
    assert world.events == []
    world.no_scan_lost()


def test_exactly_the_due_copies_are_deleted(world: World) -> None:
    due = [f"20260102_0903{i:02d}_old" for i in range(3)]
    young = [f"20260102_0904{i:02d}_new" for i in range(2)]
    for scan in due:
        world.scan(scan, made_at=time.time() - 1.5 * DAY)
    for scan in young:
        world.scan(scan, made_at=time.time() - 0.5 * DAY)

    outcomes = world.prune("spot832")

    assert sorted(s for s, o in outcomes.items() if o.action is Action.DELETE) == due
    assert sorted(s for s, o in outcomes.items() if o.action is Action.KEEP) == young
    assert [s for s in due + young if spot(world, s).exists()] == young
    assert sorted(e["scan"] for e in world.audited("pruned")) == due
    assert all(world.state(s) is CopyState.PRUNED for s in due)
    assert all(world.state(s, "data832_raw") is CopyState.PRESENT for s in due)
    world.no_scan_lost()


def test_a_location_without_retention_keeps_everything(world: World) -> None:
    world.scan("20260102_090500_archived")

    [outcome] = world.pruner().prune("nersc_cfs")

    assert outcome.action is Action.KEEP
    assert "for ever" in outcome.reason
    world.no_scan_lost()


def test_due_copy_with_no_recorded_safe_copy_is_refused(world: World) -> None:
    scan = "20260102_090501_alone"
    world.put(scan, "spot832")
    world.catalogue(scan)

    [outcome] = world.pruner().prune("spot832")

    assert outcome.action is Action.REFUSE
    assert "no copy is recorded at data832_raw" in outcome.reason
    assert spot(world, scan).exists()
    world.no_scan_lost()


# -- export control ---------------------------------------------------------------------------


def test_export_controlled_raw_is_never_pruned_from_data832_raw_without_an_onsite_safe_copy(
    world: World,
) -> None:
    scan = "20260102_090600_itar"
    world.put(scan, "data832_raw", export_controlled=True)
    world.put(scan, "spot832", export_controlled=True)
    world.catalogue(scan)

    [outcome] = world.pruner().prune("data832_raw")

    assert outcome.action is Action.KEEP
    assert outcome.reason.startswith("export controlled")
    assert world.path("data832_raw", f"{FOLDER}/{scan}.h5").exists()
    assert world.audited("pruned") == []
    world.no_scan_lost()


def test_export_controlled_raw_is_pruned_behind_an_onsite_copy_the_policy_names(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    world = make_world(
        days={"data832_raw": 1},
        extra_endpoints={
            "data832_tape": Endpoint(facility="als", root=tmp_path / "tape", onsite=True)
        },
        safe_copies={"data832_raw": {keys.RAW_SCAN: ["nersc_cfs", "data832_tape"]}},
    )
    scan = "20260102_090601_itar"
    world.put(scan, "data832_raw", export_controlled=True)
    world.put(scan, "data832_tape", export_controlled=True, asset_key="tape/raw_scan")
    world.catalogue(scan)

    [outcome] = world.pruner().prune("data832_raw")

    assert outcome.action is Action.DELETE
    assert outcome.behind is not None and outcome.behind.startswith("data832_tape:")
    assert not world.path("data832_raw", f"{FOLDER}/{scan}.h5").exists()
    world.no_scan_lost()


def test_export_controlled_raw_is_never_pruned_behind_an_offsite_copy_even_if_present(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    world = make_world(
        days={"data832_raw": 1},
        extra_endpoints={
            "data832_tape": Endpoint(facility="als", root=tmp_path / "tape", onsite=True)
        },
        safe_copies={"data832_raw": {keys.RAW_SCAN: ["nersc_cfs", "data832_tape"]}},
    )
    scan = "20260102_090602_itar"
    world.put(scan, "data832_raw", export_controlled=True)
    world.put(scan, "nersc_cfs", export_controlled=True)  # should never exist; not a reference
    world.catalogue(scan)

    [outcome] = world.pruner().prune("data832_raw")

    assert outcome.action is Action.REFUSE
    assert "data832_tape" in outcome.reason and "nersc_cfs" not in outcome.reason
    assert world.path("data832_raw", f"{FOLDER}/{scan}.h5").exists()
    world.no_scan_lost()


# -- what is reported -------------------------------------------------------------------------


def refusals(world: World) -> list[str]:
    """Four copies refused for four reasons; returns their scans."""
    world.scan("20260102_090700_uncatalogued", catalogued=False)
    world.scan("20260102_090701_future", made_at=time.time() + 2 * DAY)
    world.put("20260102_090702_alone", "spot832")
    world.catalogue("20260102_090702_alone")
    world.scan("20260102_090703_gone")
    world.path("data832_raw", f"{FOLDER}/20260102_090703_gone.h5").unlink()
    return [
        "20260102_090700_uncatalogued",
        "20260102_090701_future",
        "20260102_090702_alone",
        "20260102_090703_gone",
    ]


def test_every_refusal_has_a_reason_and_an_audit_line(world: World) -> None:
    scans = refusals(world)

    outcomes = world.prune("spot832")

    entries = {e["id"]: e for e in world.audit.entries()}
    for scan in scans:
        outcome = outcomes[scan]
        assert outcome.action is Action.REFUSE
        assert outcome.reason.strip()
        assert outcome.audit_id in entries, scan
        entry = entries[outcome.audit_id]
        assert (entry["event"], entry["scan"], entry["reason"]) == (
            "refused",
            scan,
            outcome.reason,
        )
        record = world.ledger.get(scan, "spot832", keys.RAW_SCAN)
        assert record is not None and record.note == outcome.reason
    assert len(entries) == len(scans)
    world.no_scan_lost()


def test_a_refusal_is_a_warn_check_on_the_copy_asset(world: World) -> None:
    scans = refusals(world)

    world.prune("spot832")

    checks = {c.partition: c for c in world.checks()}
    assert sorted(checks) == scans
    for check in checks.values():
        assert check.check_name == RETENTION_CHECK
        assert check.asset_key == keys.DETECTOR_RAW
        assert check.severity is dg.AssetCheckSeverity.WARN and not check.passed
        assert check.description and "audit_entry" in check.metadata


def test_the_same_refusal_again_is_not_audited_twice(world: World) -> None:
    refusals(world)
    world.prune("spot832")
    audited = len(world.audited())
    world.events.clear()

    outcomes = world.prune("spot832")

    assert {o.action for o in outcomes.values()} == {Action.REFUSE}
    assert len(world.audited()) == audited
    assert world.checks() == []


def test_a_deletion_is_an_observation_with_state_pruned(world: World) -> None:
    scan = "20260102_090800_due"
    data = world.scan(scan)

    [outcome] = world.pruner().prune("spot832")

    assert outcome.action is Action.DELETE
    [observation] = world.observations()
    assert observation.asset_key == keys.DETECTOR_RAW and observation.partition == scan
    metadata = {k: getattr(v, "value", v) for k, v in observation.metadata.items()}
    assert metadata["state"] == "pruned"
    assert metadata["endpoint"] == "spot832"
    assert str(metadata["behind"]).startswith("data832_raw:")
    assert metadata["sha256"] == sha256_file_of(data)
    assert metadata["audit_id"] == outcome.audit_id
    assert world.checks() == []


def test_a_copy_refused_before_then_pruned_turns_its_check_back_to_passed(world: World) -> None:
    scan = "20260102_090801_late"
    world.scan(scan, catalogued=False)
    world.prune("spot832")
    world.catalogue(scan)
    world.events.clear()

    [outcome] = world.pruner().prune("spot832")

    assert outcome.action is Action.DELETE
    [check] = world.checks()
    assert check.passed and check.partition == scan
    world.no_scan_lost()


def sha256_file_of(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# -- end to end: a real scan, then the prune job ----------------------------------------------


@dataclass
class EndToEnd:
    settings: Settings
    instance: dg.DagsterInstance
    kept: str  # a scan whose data832_raw copy was damaged after the run
    pruned: str
    first: dg.ExecuteInProcessResult
    second: dg.ExecuteInProcessResult
    spot_files: dict[str, bytes]

    @property
    def ledger(self) -> CopyLedger:
        return open_ledger(self.settings.ledger_url)


def _run_scan(settings: Settings, instance: dg.DagsterInstance, relative: str) -> None:
    detector_scan(settings, relative, rows=4)
    tick = evaluate_tick(settings, instance, None)
    register(instance, tick)
    [request] = tick.run_requests
    report = execute(build_definitions(settings), instance, request)
    assert report.succeeded, report.failures()


def _prune_spot832(settings: Settings, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = build_definitions(settings).resolve_job_def("prune_spot832")
    return job.execute_in_process(
        instance=instance,
        run_config={"ops": {"prune_spot832_copies": {"config": {"dry_run": False}}}},
        resources=build_resources(settings),
    )


@pytest.fixture(scope="module")
def end_to_end(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EndToEnd]:
    home = tmp_path_factory.mktemp("e2e")
    settings = Settings(
        home=home / "site",
        sensor=SensorSettings(settle_seconds=1.0, lookback_hours=24),
        decision=Decision(),
        retention_days={"spot832": 0},
        retention=RetentionSettings(grace_days=0),
    )
    (home / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
        pruned, kept = "20260102_090900_e2e", "20260102_090901_e2e"
        _run_scan(settings, instance, f"{FOLDER}/{pruned}.h5")
        _run_scan(settings, instance, f"{FOLDER}/{kept}.h5")
        spot_files = {
            scan: (settings.root("spot832") / FOLDER / f"{scan}.h5").read_bytes()
            for scan in (pruned, kept)
        }
        damaged = settings.root("data832_raw") / FOLDER / f"{kept}.h5"
        flipped = bytearray(damaged.read_bytes())
        flipped[len(flipped) // 2] ^= 0xFF
        damaged.write_bytes(bytes(flipped))
        first = _prune_spot832(settings, instance)
        second = _prune_spot832(settings, instance)
        yield EndToEnd(settings, instance, kept, pruned, first, second, spot_files)


def test_prune_job_deletes_the_scan_behind_its_verified_raw_copy(end_to_end: EndToEnd) -> None:
    e = end_to_end
    assert e.first.success
    assert not (e.settings.root("spot832") / FOLDER / f"{e.pruned}.h5").exists()
    raw = e.settings.root("data832_raw") / FOLDER / f"{e.pruned}.h5"
    assert raw.read_bytes() == e.spot_files[e.pruned]
    record = e.ledger.get(e.pruned, "spot832", keys.RAW_SCAN)
    assert record is not None and record.state is CopyState.PRUNED
    [entry] = e.ledger.trash_of(e.pruned, "spot832")
    assert entry.sha256 == sha256_file(raw)


def test_prune_job_refuses_the_scan_whose_raw_copy_is_damaged(end_to_end: EndToEnd) -> None:
    e = end_to_end
    assert (e.settings.root("spot832") / FOLDER / f"{e.kept}.h5").read_bytes() == (
        e.spot_files[e.kept]
    )
    record = e.ledger.get(e.kept, "spot832", keys.RAW_SCAN)
    assert record is not None and record.state is CopyState.PRESENT
    assert record.note is not None and "corrupt" in record.note


def test_prune_job_reports_what_it_did_in_its_output_metadata(end_to_end: EndToEnd) -> None:
    [output] = [e for e in end_to_end.first.all_events if e.is_successful_output]
    metadata = {k: v.value for k, v in output.event_specific_data.metadata.items()}
    assert (metadata["deleted"], metadata["refused"], metadata["dry_run"]) == (1, 1, False)
    assert metadata["bytes_freed"] == len(end_to_end.spot_files[end_to_end.pruned])


def test_prune_job_observes_the_pruned_copy_and_warns_on_the_refused_one(
    end_to_end: EndToEnd,
) -> None:
    e = end_to_end
    observations = e.first.asset_observations_for_node("prune_spot832_copies")
    [pruned] = [o for o in observations if o.partition == e.pruned]
    assert pruned.asset_key == keys.DETECTOR_RAW
    assert pruned.metadata["state"].value == "pruned"
    [check] = e.first.get_asset_check_evaluations()
    assert (check.partition, check.passed, check.severity) == (
        e.kept,
        False,
        dg.AssetCheckSeverity.WARN,
    )
    assert check.check_name == RETENTION_CHECK
    stored = e.instance.fetch_observations(
        dg.AssetRecordsFilter(keys.DETECTOR_RAW, [e.pruned]), 1
    ).records
    assert stored and stored[0].asset_observation is not None


def test_second_prune_job_changes_nothing_and_audits_nothing_new(end_to_end: EndToEnd) -> None:
    e = end_to_end
    assert e.second.success
    assert e.second.get_asset_check_evaluations() == []
    events = [entry["event"] for entry in AuditLog(e.settings.audit_log).entries()]
    assert sorted(events) == ["pruned", "purged", "refused"]


def test_no_scan_is_lost_end_to_end(
    end_to_end: EndToEnd, no_scan_lost: Callable[[Settings, CopyLedger], None]
) -> None:
    no_scan_lost(end_to_end.settings, end_to_end.ledger)
