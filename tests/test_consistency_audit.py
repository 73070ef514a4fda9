"""The consistency audit on real files of a temporary site, with the local transfer backend and
a real ledger: what it marks lost, what it reports dark, and when it refuses to act."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from ledger_support import copy_facts
from resource_support import write

from bl832_assets import keys
from bl832_assets.resources.wiring import build_resources
from bl832_assets.retention.audit import AuditLog
from bl832_assets.retention.consistency import build_consistency_audits
from bl832_assets.retention.ledger import CopyLedger, CopyState
from bl832_assets.retention.reporting import RETENTION_CHECK
from bl832_assets.settings import Settings

ENDPOINT = "data832_raw"
FOLDER = "BLS-00564_dyparkinson"


@pytest.fixture
def ledger(site: Settings) -> CopyLedger:
    return CopyLedger(site.ledger_url)


def record(
    site: Settings, ledger: CopyLedger, scan: str, relative_path: str, inside: str = ""
) -> Path:
    """A copy at ``relative_path`` of the endpoint, recorded PRESENT in the ledger: a real file,
    or a folder holding the file ``inside`` it."""
    path = write(site.root(ENDPOINT) / relative_path / inside, b"x" * 10)
    ledger.record_made(
        copy_facts(scan, endpoint=ENDPOINT, relative_path=relative_path, made_by="test")
    )
    return path


def scans(site: Settings, ledger: CopyLedger, count: int) -> list[Path]:
    return [record(site, ledger, f"scan{i}", f"{FOLDER}/scan{i}.h5") for i in range(count)]


def audit(site: Settings, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    jobs, _ = build_consistency_audits(site)
    job = next(j for j in jobs if j.name == f"audit_{ENDPOINT}")
    return job.execute_in_process(
        instance=instance, resources=build_resources(site), raise_on_error=False
    )


def output_metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    [output] = [e for e in result.all_events if e.is_successful_output]
    return {k: v.value for k, v in output.event_specific_data.metadata.items()}


def test_one_job_and_running_weekly_schedule_per_endpoint(site: Settings) -> None:
    jobs, schedules = build_consistency_audits(site)

    assert sorted(j.name for j in jobs) == sorted(f"audit_{e}" for e in site.endpoints)
    assert {s.cron_schedule for s in schedules} == {site.retention.consistency_cron}
    assert {s.default_status for s in schedules} == {dg.DefaultScheduleStatus.RUNNING}
    assert len({j.graph.node_defs[0].name for j in jobs}) == len(jobs)


def test_deleted_file_becomes_lost_with_a_warn_check_and_an_audit_line(
    site: Settings, ledger: CopyLedger, instance: dg.DagsterInstance
) -> None:
    files = scans(site, ledger, 10)
    files[3].unlink()

    result = audit(site, instance)

    assert result.success
    lost = ledger.get("scan3", ENDPOINT, keys.RAW_SCAN)
    assert lost is not None and lost.state is CopyState.LOST
    assert lost.note is not None
    assert f"bl832 restore scan3 --location {ENDPOINT}" in lost.note
    assert {c.scan for c in ledger.at(ENDPOINT)} == {f"scan{i}" for i in range(10)} - {"scan3"}
    [check] = result.get_asset_check_evaluations()
    assert (check.check_name, check.partition, check.passed) == (RETENTION_CHECK, "scan3", False)
    assert check.severity is dg.AssetCheckSeverity.WARN
    assert check.asset_key == keys.BEAMLINE_RAW
    [entry] = AuditLog(site.audit_log).entries()
    assert (entry["event"], entry["scan"], entry["location"]) == ("lost", "scan3", ENDPOINT)
    assert output_metadata(result) | {"dark_paths": None} == {
        "recorded": 10,
        "listed": 9,
        "lost": 1,
        "dark": 0,
        "dark_paths": None,
    }


def test_unrecorded_file_is_reported_dark_and_left_alone(
    site: Settings, ledger: CopyLedger, instance: dg.DagsterInstance
) -> None:
    scans(site, ledger, 10)
    stray = write(site.root(ENDPOINT) / FOLDER / "stray.h5", b"nobody recorded me")
    hidden = write(site.root(ENDPOINT) / FOLDER / ".notes", b"hidden, not data")

    result = audit(site, instance)

    assert result.success
    metadata = output_metadata(result)
    assert (metadata["lost"], metadata["dark"]) == (0, 1)
    assert metadata["dark_paths"] == [f"{FOLDER}/stray.h5"]
    assert stray.exists() and hidden.exists()
    assert len(ledger.at(ENDPOINT)) == 10
    assert result.get_asset_check_evaluations() == []


def test_recorded_folder_copy_and_a_pruned_path_are_not_dark(
    site: Settings, ledger: CopyLedger, instance: dg.DagsterInstance
) -> None:
    scans(site, ledger, 10)
    record(site, ledger, "recon0", f"{FOLDER}/rec20230606", inside="slice_0001.tiff")
    reused = record(site, ledger, "old", f"{FOLDER}/old.h5")
    pruned = ledger.get("old", ENDPOINT, keys.RAW_SCAN)
    assert pruned is not None
    ledger.move(pruned, CopyState.PRUNED, expect=(CopyState.PRESENT,))
    assert reused.exists()

    result = audit(site, instance)

    assert result.success
    metadata = output_metadata(result)
    assert (metadata["lost"], metadata["dark"], metadata["recorded"]) == (0, 0, 11)


def test_more_than_the_threshold_differing_stops_without_marking(
    site: Settings, ledger: CopyLedger, instance: dg.DagsterInstance
) -> None:
    files = scans(site, ledger, 10)
    for file in files[:3]:
        file.unlink()

    result = audit(site, instance)

    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "listing of data832_raw looks wrong" in message
    assert "3 lost and 0 dark of 10 recorded" in message
    assert "10%" in message
    assert {c.scan for c in ledger.at(ENDPOINT)} == {f"scan{i}" for i in range(10)}
    assert ledger.at(ENDPOINT, (CopyState.LOST,)) == []
    assert list(AuditLog(site.audit_log).entries()) == []


def test_nothing_differs_means_zero(
    site: Settings, ledger: CopyLedger, instance: dg.DagsterInstance
) -> None:
    scans(site, ledger, 4)

    result = audit(site, instance)

    assert result.success
    metadata = output_metadata(result)
    assert (metadata["recorded"], metadata["listed"]) == (4, 4)
    assert (metadata["lost"], metadata["dark"], metadata["dark_paths"]) == (0, 0, [])


def test_copy_at_the_endpoint_root_is_looked_up_itself(
    site: Settings, ledger: CopyLedger, instance: dg.DagsterInstance
) -> None:
    scans(site, ledger, 10)
    record(site, ledger, "kept", "kept.h5")
    record(site, ledger, "gone", "gone.h5").unlink()

    result = audit(site, instance)

    assert result.success
    assert [c.scan for c in ledger.at(ENDPOINT, (CopyState.LOST,))] == ["gone"]
    assert output_metadata(result)["recorded"] == 12
