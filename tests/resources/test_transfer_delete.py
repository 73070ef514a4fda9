"""Deleting through the transfer interface: the local backend removes files and folders like a
Globus delete task with recursive and ignore_missing, and refuses what could leave a root."""

import errno
from pathlib import Path

import pytest
from resource_support import FOLDER, SCAN, files_in, root, write

from bl832_assets.resources.transfer import (
    LocalTransferResource,
    TaskStatus,
    TransferFailed,
    TransferResource,
    UnknownEndpoint,
    UnsafePath,
)
from bl832_assets.resources.transfer.globus import GlobusTransferResource
from bl832_assets.resources.transfer.tasks import TaskLog


def task_status(transfer: LocalTransferResource, task_id: str) -> tuple[TaskStatus, int | None]:
    task = TaskLog(transfer.database).get(task_id)
    assert task is not None
    return task.status, task.files


def test_every_backend_implements_delete() -> None:
    assert "delete" in TransferResource.__abstractmethods__
    assert not LocalTransferResource.__abstractmethods__
    assert not GlobusTransferResource.__abstractmethods__


def test_delete_removes_a_file_and_records_a_task(transfer: LocalTransferResource) -> None:
    write(root(transfer, "data832_raw") / SCAN, b"scan")
    kept = write(root(transfer, "data832_raw") / FOLDER / "other.h5", b"other")

    task_id = transfer.delete("data832_raw", SCAN, label="prune raw")

    assert files_in(root(transfer, "data832_raw")) == [f"{FOLDER}/other.h5"]
    assert kept.read_bytes() == b"other"
    assert task_status(transfer, task_id) == (TaskStatus.SUCCEEDED, 1)
    task = TaskLog(transfer.database).get(task_id)
    assert task is not None
    assert (task.label, task.source, task.destination, task.path) == (
        "prune raw",
        "data832_raw",
        "data832_raw",
        SCAN,
    )


def test_delete_removes_a_folder_recursively_with_copies_in_flight(
    transfer: LocalTransferResource,
) -> None:
    stack = root(transfer, "nersc_cfs") / FOLDER / "recstem"
    write(stack / "stem_00000.tiff", b"a")
    write(stack / "nested" / "zarr.json", b"{}")
    write(stack / ".stem_00001.tiff.partial-123", b"half")

    task_id = transfer.delete("nersc_cfs", f"{FOLDER}/recstem", label="prune recon")

    assert not stack.exists()
    assert (root(transfer, "nersc_cfs") / FOLDER).is_dir()
    assert task_status(transfer, task_id) == (TaskStatus.SUCCEEDED, 3)


def test_deleting_what_is_already_gone_succeeds(transfer: LocalTransferResource) -> None:
    first = transfer.delete("spot832", SCAN, label="prune")
    second = transfer.delete("spot832", SCAN, label="prune")

    assert first != second
    assert task_status(transfer, second) == (TaskStatus.SUCCEEDED, 0)


@pytest.mark.parametrize("relative", ["", ".", "/etc/passwd", f"../{FOLDER}", f"{FOLDER}/../.."])
def test_delete_refuses_unsafe_paths_before_any_task(
    transfer: LocalTransferResource, relative: str
) -> None:
    kept = write(root(transfer, "spot832") / SCAN, b"scan")

    with pytest.raises(UnsafePath):
        transfer.delete("spot832", relative, label="escape")

    assert kept.exists()
    assert not Path(transfer.database).exists()


def test_delete_refuses_a_symbolic_link_leading_outside_the_root(
    transfer: LocalTransferResource, tmp_path: Path
) -> None:
    secret = write(tmp_path / "secret" / "key.h5", b"secret")
    (root(transfer, "spot832") / "link").symlink_to(secret.parent)

    with pytest.raises(UnsafePath, match="symbolic link"):
        transfer.delete("spot832", "link/key.h5", label="escape")

    assert secret.read_bytes() == b"secret"


def test_delete_removes_a_link_inside_the_root_but_not_its_target(
    transfer: LocalTransferResource,
) -> None:
    target = write(root(transfer, "spot832") / FOLDER / "scan.h5", b"scan")
    (root(transfer, "spot832") / "latest").symlink_to(target.parent)

    transfer.delete("spot832", "latest", label="drop link")

    assert not (root(transfer, "spot832") / "latest").is_symlink()
    assert target.read_bytes() == b"scan"


def test_delete_on_an_unknown_endpoint_is_refused(transfer: LocalTransferResource) -> None:
    with pytest.raises(UnknownEndpoint, match="alcf_raw"):
        transfer.delete("alcf_raw", SCAN, label="nowhere")


def test_failed_delete_raises_and_records_a_failed_task(
    transfer: LocalTransferResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    scan = write(root(transfer, "data832_raw") / SCAN, b"scan")

    def read_only(path: Path, missing_ok: bool = False) -> None:
        # What the kernel answers on a read-only mount; chmod cannot stop root, who runs CI.
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(TransferFailed, match=r"delete.*Read-only file system") as failure:
        transfer.delete("data832_raw", SCAN, label="prune raw")
    monkeypatch.undo()

    assert scan.exists()
    assert task_status(transfer, failure.value.task_id) == (TaskStatus.FAILED, None)
