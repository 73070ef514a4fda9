"""The task log shows a task ACTIVE while it runs and how it ended afterwards."""

from __future__ import annotations

from pathlib import Path

from bl832_assets.resources.transfer import TaskStatus
from bl832_assets.resources.transfer.tasks import TaskCounts, TaskLog


def test_a_task_is_active_until_it_is_finished(tmp_path: Path) -> None:
    log = TaskLog(tmp_path / "site" / "transfers.sqlite")

    task_id = log.start(label="raw", source="spot832", destination="data832_raw", path="a/b.h5")
    running = log.get(task_id)
    log.finish(task_id, TaskStatus.SUCCEEDED, TaskCounts(2, 1, 1, 4096))
    done = log.get(task_id)

    assert running is not None and done is not None
    assert running.status is TaskStatus.ACTIVE
    assert running.completion_time is None
    assert done.status is TaskStatus.SUCCEEDED
    assert (done.files, done.files_transferred, done.files_skipped) == (2, 1, 1)
    assert done.bytes_transferred == 4096
    assert done.completion_time is not None


def test_a_failed_task_keeps_its_reason_and_what_it_moved(tmp_path: Path) -> None:
    log = TaskLog(tmp_path / "transfers.sqlite")
    task_id = log.start(label="raw", source="spot832", destination="data832_raw", path="a")

    log.finish(task_id, TaskStatus.FAILED, TaskCounts(3, 1, 0, 100), "disk full")

    failed = log.get(task_id)
    assert failed is not None
    assert (failed.status, failed.error, failed.bytes_transferred) == (
        TaskStatus.FAILED,
        "disk full",
        100,
    )


def test_an_unknown_task_is_none(tmp_path: Path) -> None:
    assert TaskLog(tmp_path / "transfers.sqlite").get("no-such-task") is None
