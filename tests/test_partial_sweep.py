"""The partial-file sweep on real files of a temporary site: which files go is decided by their
names, their type and the times the filesystem itself keeps."""

import os
import time
from pathlib import Path

import dagster as dg
import pytest
from resource_support import files_in, write

from bl832_assets.resources.transfer.copying import partial_name
from bl832_assets.retention.partials import CRON, build_partial_sweep, sweep_endpoint
from bl832_assets.settings import Settings

DAY = 24 * 3600
PARTIAL = f"F/{partial_name('20260102_090000_scan.h5', 'task-1')}"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An endpoint holding one partial among things a sweep must never touch."""
    root = tmp_path / "endpoint"
    outside = tmp_path / "outside"
    write(root / PARTIAL, b"0123456789")
    write(root / "F" / ".notes", b"a hidden file that is no partial")
    write(root / "F" / "scan.h5.partial-task-2", b"not hidden, so not ours")
    write(outside / partial_name("elsewhere.h5", "task-3"), b"outside the root")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "F" / partial_name("link.h5", "task-4")).symlink_to(
        outside / partial_name("elsewhere.h5", "task-3")
    )
    return root


def test_stale_partial_goes_and_nothing_else_is_touched(root: Path, tmp_path: Path) -> None:
    untouched = sorted({*files_in(root), *files_in(tmp_path / "outside")} - {PARTIAL})

    swept = sweep_endpoint("data832_raw", root, cutoff=time.time() + 1)

    assert swept.removed == (root / PARTIAL,)
    assert (swept.files, swept.bytes, swept.errors) == (1, 10, ())
    assert sorted({*files_in(root), *files_in(tmp_path / "outside")}) == untouched
    assert (root / "F" / partial_name("link.h5", "task-4")).is_symlink()
    assert (tmp_path / "outside" / partial_name("elsewhere.h5", "task-3")).exists()


def test_partial_in_use_stays_even_when_stamped_with_an_old_mtime(root: Path) -> None:
    # sync_file gives the partial its source's mtime just before the rename.
    stamped = write(root / "F" / partial_name("stamped.h5", "task-5"), b"almost done")
    os.utime(stamped, (time.time() - 3 * DAY, time.time() - 3 * DAY))
    before = files_in(root)

    swept = sweep_endpoint("data832_raw", root, cutoff=time.time() - 3600)

    assert (swept.files, swept.bytes) == (0, 0)
    assert files_in(root) == before


def test_missing_endpoint_folder_is_nothing_to_sweep(tmp_path: Path) -> None:
    swept = sweep_endpoint("nersc_cfs", tmp_path / "not-yet-created", cutoff=time.time() + 1)

    assert (swept.files, swept.bytes, swept.errors) == (0, 0, ())


def test_job_sweeps_every_visible_endpoint_and_reports_counts_and_bytes(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    raw, detector = site.root("data832_raw"), site.root("spot832")
    write(raw / PARTIAL, b"x" * 100)
    write(raw / "G" / partial_name("b.h5", "task-6"), b"x" * 23)
    write(detector / partial_name("c.h5", "task-7"), b"x" * 7)
    time.sleep(2.5)  # older than the two-second limit below; ctime cannot be set back
    fresh = write(detector / partial_name("d.h5", "task-8"), b"still being written")
    hidden = write(detector / ".keep", b"no partial")

    job, _ = build_partial_sweep(site, max_age_hours=2 / 3600)
    result = job.execute_in_process(instance=instance)

    assert result.success
    [output] = [e for e in result.events_for_node("sweep_partials") if e.is_successful_output]
    metadata = {k: v.value for k, v in output.step_output_data.metadata.items()}
    assert metadata["files_removed"] == 3
    assert metadata["bytes_removed"] == 130
    by_endpoint = metadata["by_endpoint"]
    assert by_endpoint["data832_raw"] == {"files": 2, "bytes": 123}
    assert by_endpoint["spot832"] == {"files": 1, "bytes": 7}
    assert set(by_endpoint) == set(site.endpoints)
    assert files_in(raw) == []
    assert files_in(detector) == sorted([fresh.name, hidden.name])


def test_schedule_runs_daily_and_is_on_by_default(site: Settings) -> None:
    job, schedule = build_partial_sweep(site)

    assert schedule.job_name == job.name == "sweep_partial_files"
    assert schedule.cron_schedule == CRON == "45 4 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    with pytest.raises(ValueError, match="kills live copies"):
        build_partial_sweep(site, max_age_hours=0)
