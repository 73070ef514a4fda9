"""The local transfer backend behaves like a Globus transfer with sync_level=checksum."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from pathlib import Path

import dagster as dg
import pytest
from resource_support import FOLDER, SCAN, files_in, root, write

from bl832_assets.resources.transfer import (
    LocalTransferResource,
    PathNotFound,
    TaskStatus,
    TransferFailed,
    TransferResource,
    UnknownEndpoint,
    UnsafePath,
)
from bl832_assets.resources.transfer.tasks import TaskLog


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def task_count(transfer: LocalTransferResource) -> int:
    if not Path(transfer.database).exists():
        return 0
    with sqlite3.connect(transfer.database) as db:
        return db.execute("SELECT count(*) FROM tasks").fetchone()[0]


def recon_folder(transfer: LocalTransferResource, endpoint: str) -> dict[str, bytes]:
    contents = {
        "stem_00000.tiff": os.urandom(5000),
        "stem_00001.tiff": os.urandom(5000),
        "nested/zarr.json": b'{"zarr_format": 3}',
    }
    for name, data in contents.items():
        write(root(transfer, endpoint) / FOLDER / "recstem" / name, data)
    return contents


def test_copies_a_file_and_reports_its_sha256(transfer: LocalTransferResource) -> None:
    data = os.urandom(100_000)
    write(root(transfer, "spot832") / SCAN, data)

    result = transfer.copy(
        "spot832", "data832_raw", SCAN, label="raw 20230606", export_controlled=False
    )

    assert (root(transfer, "data832_raw") / SCAN).read_bytes() == data
    name = Path(SCAN).name
    assert result.sha256 == {name: sha256(data)}
    assert result.status is TaskStatus.SUCCEEDED
    assert (result.files_transferred, result.files_skipped) == (1, 0)
    assert result.bytes_transferred == result.bytes_total == len(data)
    assert transfer.checksums("data832_raw", SCAN) == {name: sha256(data)}


def test_copies_a_folder_recursively_with_a_checksum_per_file(
    transfer: LocalTransferResource,
) -> None:
    contents = recon_folder(transfer, "nersc_cfs")
    relative = f"{FOLDER}/recstem"

    result = transfer.copy(
        "nersc_cfs", "data832_raw", relative, label="tiff home", export_controlled=False
    )

    expected = {name: sha256(data) for name, data in sorted(contents.items())}
    assert result.sha256 == expected
    assert result.files_transferred == 3
    assert result.bytes_transferred == sum(len(d) for d in contents.values())
    assert transfer.checksums("data832_raw", relative) == expected
    assert files_in(root(transfer, "data832_raw") / relative) == sorted(contents)


def test_second_copy_skips_files_already_identical(transfer: LocalTransferResource) -> None:
    recon_folder(transfer, "nersc_cfs")
    relative = f"{FOLDER}/recstem"
    first = transfer.copy(
        "nersc_cfs", "data832_raw", relative, label="first", export_controlled=False
    )

    again = transfer.copy(
        "nersc_cfs", "data832_raw", relative, label="again", export_controlled=False
    )

    assert (again.files_transferred, again.files_skipped) == (0, 3)
    assert again.bytes_transferred == 0
    assert again.bytes_total == first.bytes_total
    assert again.sha256 == first.sha256
    assert again.task_id != first.task_id


def test_a_changed_source_of_the_same_size_is_copied_again(
    transfer: LocalTransferResource,
) -> None:
    source = write(root(transfer, "spot832") / SCAN, b"a" * 1000)
    transfer.copy("spot832", "data832_raw", SCAN, label="first", export_controlled=False)
    source.write_bytes(b"b" * 1000)

    result = transfer.copy("spot832", "data832_raw", SCAN, label="second", export_controlled=False)

    assert result.files_transferred == 1
    assert (root(transfer, "data832_raw") / SCAN).read_bytes() == b"b" * 1000


def test_corrupted_copy_is_detected_by_checksums_and_repaired_by_the_next_copy(
    transfer: LocalTransferResource,
) -> None:
    write(root(transfer, "spot832") / SCAN, os.urandom(50_000))
    transfer.copy("spot832", "data832_raw", SCAN, label="first", export_controlled=False)
    copy = root(transfer, "data832_raw") / SCAN
    corrupted = bytearray(copy.read_bytes())
    corrupted[12_345] ^= 0x01
    copy.write_bytes(corrupted)

    assert transfer.checksums("data832_raw", SCAN) != transfer.checksums("spot832", SCAN)
    repair = transfer.copy("spot832", "data832_raw", SCAN, label="repair", export_controlled=False)

    assert (repair.files_transferred, repair.files_skipped) == (1, 0)
    assert transfer.checksums("data832_raw", SCAN) == transfer.checksums("spot832", SCAN)


def test_missing_source_fails_the_task_and_leaves_nothing_at_the_destination(
    transfer: LocalTransferResource,
) -> None:
    with pytest.raises(TransferFailed) as failed:
        transfer.copy("spot832", "data832_raw", SCAN, label="missing", export_controlled=False)

    error = failed.value
    assert error.relative_path == SCAN
    assert "spot832" in str(error) and SCAN in str(error) and "does not exist" in str(error)
    task = TaskLog(transfer.database).get(error.task_id)
    assert task is not None
    assert task.status is TaskStatus.FAILED
    assert task.error == error.reason
    assert task.completion_time is not None
    assert files_in(root(transfer, "data832_raw")) == []


def test_a_failure_part_way_through_a_folder_leaves_no_temporary_file(
    transfer: LocalTransferResource,
) -> None:
    recon_folder(transfer, "nersc_cfs")
    relative = f"{FOLDER}/recstem"
    # A folder where a file must go: the rename into place fails for that file only.
    (root(transfer, "data832_raw") / relative / "stem_00001.tiff").mkdir(parents=True)

    with pytest.raises(TransferFailed) as failed:
        transfer.copy(
            "nersc_cfs", "data832_raw", relative, label="blocked", export_controlled=False
        )

    assert "stem_00001.tiff" in failed.value.reason
    left = files_in(root(transfer, "data832_raw"))
    assert not [name for name in left if ".partial-" in name]
    task = TaskLog(transfer.database).get(failed.value.task_id)
    assert task is not None and task.status is TaskStatus.FAILED


@pytest.mark.parametrize(
    "relative_path",
    ["/etc/passwd", "../spot832/x.h5", f"{FOLDER}/../../outside.h5", "", ".", "a\x00b"],
)
def test_refuses_paths_that_could_leave_the_endpoint_root(
    transfer: LocalTransferResource, relative_path: str
) -> None:
    with pytest.raises(UnsafePath):
        transfer.copy(
            "spot832", "data832_raw", relative_path, label="escape", export_controlled=False
        )
    with pytest.raises(UnsafePath):
        transfer.checksums("spot832", relative_path)
    assert task_count(transfer) == 0


def test_refuses_a_symbolic_link_leading_out_of_the_root(
    transfer: LocalTransferResource, tmp_path: Path
) -> None:
    write(tmp_path / "secret" / "key.h5", b"secret")
    (root(transfer, "spot832") / "link").symlink_to(tmp_path / "secret")

    with pytest.raises(UnsafePath, match="symbolic link"):
        transfer.copy(
            "spot832", "data832_raw", "link/key.h5", label="escape", export_controlled=False
        )


def test_unknown_endpoint_is_refused_before_any_task(transfer: LocalTransferResource) -> None:
    write(root(transfer, "spot832") / SCAN, b"x")

    with pytest.raises(UnknownEndpoint, match="alcf_raw"):
        transfer.copy("spot832", "alcf_raw", SCAN, label="nowhere", export_controlled=False)
    assert task_count(transfer) == 0


def test_task_row_records_a_successful_copy_with_its_counts(
    transfer: LocalTransferResource,
) -> None:
    contents = recon_folder(transfer, "nersc_cfs")

    result = transfer.copy(
        "nersc_cfs", "data832_raw", f"{FOLDER}/recstem", label="tiff home", export_controlled=False
    )

    task = TaskLog(transfer.database).get(result.task_id)
    assert task is not None
    assert task.status is TaskStatus.SUCCEEDED
    assert (task.label, task.source, task.destination) == ("tiff home", "nersc_cfs", "data832_raw")
    assert task.path == f"{FOLDER}/recstem"
    assert (task.files, task.files_transferred, task.files_skipped) == (3, 3, 0)
    assert task.bytes_transferred == sum(len(d) for d in contents.values())
    assert task.error is None
    assert task.request_time <= task.completion_time


def test_files_only_at_the_destination_are_kept(transfer: LocalTransferResource) -> None:
    recon_folder(transfer, "nersc_cfs")
    relative = f"{FOLDER}/recstem"
    extra = write(root(transfer, "data832_raw") / relative / "stem_09999.tiff", b"older run")

    transfer.copy("nersc_cfs", "data832_raw", relative, label="tiff home", export_controlled=False)

    assert extra.read_bytes() == b"older run"
    assert "stem_09999.tiff" in transfer.checksums("data832_raw", relative)


def test_temporary_files_of_copies_in_flight_are_not_data(
    transfer: LocalTransferResource,
) -> None:
    recon_folder(transfer, "nersc_cfs")
    relative = f"{FOLDER}/recstem"
    write(root(transfer, "nersc_cfs") / relative / ".stem_00002.tiff.partial-123", b"half")

    result = transfer.copy(
        "nersc_cfs", "data832_raw", relative, label="tiff home", export_controlled=False
    )

    assert not [name for name in result.sha256 if "partial" in name]
    assert not [name for name in transfer.checksums("nersc_cfs", relative) if "partial" in name]


def test_copy_keeps_the_source_modification_time(transfer: LocalTransferResource) -> None:
    source = write(root(transfer, "spot832") / SCAN, b"scan")
    os.utime(source, (1_686_064_284, 1_686_064_284))

    transfer.copy("spot832", "data832_raw", SCAN, label="raw", export_controlled=False)

    assert (root(transfer, "data832_raw") / SCAN).stat().st_mtime == 1_686_064_284


def test_checksums_and_exists_of_a_missing_path(transfer: LocalTransferResource) -> None:
    assert not transfer.exists("spot832", SCAN)
    with pytest.raises(PathNotFound, match=re.escape(SCAN)):
        transfer.checksums("spot832", SCAN)
    write(root(transfer, "spot832") / SCAN, b"x")
    assert transfer.exists("spot832", SCAN)


def test_runs_as_the_transfer_resource_of_an_asset(transfer: LocalTransferResource) -> None:
    write(root(transfer, "spot832") / SCAN, b"scan bytes")

    @dg.asset
    def raw_scan_copy(transfer: TransferResource) -> dg.MaterializeResult:
        result = transfer.copy(
            "spot832", "data832_raw", SCAN, label="asset", export_controlled=False
        )
        return dg.MaterializeResult(metadata={"task_id": result.task_id})

    assert dg.materialize([raw_scan_copy], resources={"transfer": transfer}).success
    assert transfer.exists("data832_raw", SCAN)
