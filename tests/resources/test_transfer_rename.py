"""Renaming through the transfer interface on the local backend: a copy moves into the
endpoint's trash and back without a byte copied, a repeated rename after a crash finishes
quietly, and nothing is ever overwritten or moved across the endpoint root."""

from pathlib import Path

import pytest
from resource_support import FOLDER, SCAN, files_in, root, write

from bl832_assets.resources.transfer import (
    LocalTransferResource,
    PathNotFound,
    RenameConflict,
    TransferResource,
    UnknownEndpoint,
    UnsafePath,
)

TRASH = f".trash/{SCAN}"


def test_every_backend_implements_rename() -> None:
    assert "rename" in TransferResource.__abstractmethods__
    assert not LocalTransferResource.__abstractmethods__


def test_a_file_moves_into_trash_folders_that_did_not_exist(
    transfer: LocalTransferResource,
) -> None:
    scan = write(root(transfer, "data832_raw") / SCAN, b"scan")
    inode = scan.stat().st_ino

    transfer.rename("data832_raw", SCAN, TRASH, label="retention")

    moved = root(transfer, "data832_raw") / TRASH
    assert files_in(root(transfer, "data832_raw")) == [TRASH]
    assert moved.read_bytes() == b"scan"
    assert moved.stat().st_ino == inode  # moved, not copied
    assert (root(transfer, "data832_raw") / FOLDER).is_dir()  # only the file left


def test_a_folder_moves_with_everything_in_it(transfer: LocalTransferResource) -> None:
    stack = root(transfer, "nersc_cfs") / FOLDER / "recstem"
    write(stack / "stem_00000.tiff", b"a")
    write(stack / "nested" / ".zarray", b"{}")

    transfer.rename("nersc_cfs", f"{FOLDER}/recstem", f".trash/1/{FOLDER}/recstem", label="r")

    assert not stack.exists()
    assert files_in(root(transfer, "nersc_cfs") / ".trash") == [
        f"1/{FOLDER}/recstem/nested/.zarray",
        f"1/{FOLDER}/recstem/stem_00000.tiff",
    ]


def test_moving_back_out_of_the_trash_restores_the_copy(transfer: LocalTransferResource) -> None:
    write(root(transfer, "data832_raw") / SCAN, b"scan")

    transfer.rename("data832_raw", SCAN, TRASH, label="retention")
    transfer.rename("data832_raw", TRASH, SCAN, label="undo retention")

    assert (root(transfer, "data832_raw") / SCAN).read_bytes() == b"scan"
    assert not (root(transfer, "data832_raw") / TRASH).exists()


def test_a_rename_already_done_by_a_crashed_attempt_succeeds(
    transfer: LocalTransferResource,
) -> None:
    write(root(transfer, "data832_raw") / SCAN, b"scan")
    transfer.rename("data832_raw", SCAN, TRASH, label="retention")

    transfer.rename("data832_raw", SCAN, TRASH, label="retention, retried")

    assert files_in(root(transfer, "data832_raw")) == [TRASH]


def test_neither_path_existing_is_path_not_found_and_creates_nothing(
    transfer: LocalTransferResource,
) -> None:
    with pytest.raises(PathNotFound) as missing:
        transfer.rename("data832_raw", SCAN, TRASH, label="retention")

    assert (missing.value.endpoint, missing.value.relative_path) == ("data832_raw", SCAN)
    assert not any(root(transfer, "data832_raw").iterdir())


def test_an_existing_file_at_the_new_path_is_never_overwritten(
    transfer: LocalTransferResource,
) -> None:
    write(root(transfer, "data832_raw") / SCAN, b"new scan")
    write(root(transfer, "data832_raw") / TRASH, b"older scan")

    with pytest.raises(RenameConflict, match=r"retention.*both exist") as conflict:
        transfer.rename("data832_raw", SCAN, TRASH, label="retention")

    assert conflict.value.new_relative_path == TRASH
    assert (root(transfer, "data832_raw") / SCAN).read_bytes() == b"new scan"
    assert (root(transfer, "data832_raw") / TRASH).read_bytes() == b"older scan"


def test_an_existing_empty_folder_at_the_new_path_is_not_replaced(
    transfer: LocalTransferResource,
) -> None:
    write(root(transfer, "nersc_cfs") / FOLDER / "recstem" / "stem.tiff", b"a")
    (root(transfer, "nersc_cfs") / ".trash" / "recstem").mkdir(parents=True)

    with pytest.raises(RenameConflict):
        transfer.rename("nersc_cfs", f"{FOLDER}/recstem", ".trash/recstem", label="retention")

    assert files_in(root(transfer, "nersc_cfs")) == [f"{FOLDER}/recstem/stem.tiff"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (f"../spot832/{SCAN}", TRASH),
        (SCAN, f"../spot832/{SCAN}"),
        (SCAN, "/tmp/scan.h5"),
        (SCAN, "."),
        (".", TRASH),
    ],
)
def test_paths_that_could_leave_the_root_are_refused_before_anything_moves(
    transfer: LocalTransferResource, old: str, new: str
) -> None:
    write(root(transfer, "data832_raw") / SCAN, b"scan")
    write(root(transfer, "spot832") / SCAN, b"detector")

    with pytest.raises(UnsafePath):
        transfer.rename("data832_raw", old, new, label="escape")

    assert files_in(root(transfer, "data832_raw")) == [SCAN]
    assert files_in(root(transfer, "spot832")) == [SCAN]


def test_a_symbolic_link_leading_outside_is_refused_on_either_side(
    transfer: LocalTransferResource, tmp_path: Path
) -> None:
    secret = write(tmp_path / "outside" / "key.h5", b"secret")
    (root(transfer, "data832_raw") / "link").symlink_to(secret.parent)
    write(root(transfer, "data832_raw") / SCAN, b"scan")

    with pytest.raises(UnsafePath, match="symbolic link"):
        transfer.rename("data832_raw", "link/key.h5", TRASH, label="escape")
    with pytest.raises(UnsafePath, match="symbolic link"):
        transfer.rename("data832_raw", SCAN, "link/scan.h5", label="escape")

    assert files_in(secret.parent) == ["key.h5"]
    assert (root(transfer, "data832_raw") / SCAN).read_bytes() == b"scan"
    assert not (root(transfer, "data832_raw") / ".trash").exists()


def test_rename_on_an_unknown_endpoint_is_refused(transfer: LocalTransferResource) -> None:
    with pytest.raises(UnknownEndpoint, match="alcf_raw"):
        transfer.rename("alcf_raw", SCAN, TRASH, label="nowhere")
