"""The verified single-file copy: right bytes, right hash, nothing half-written left behind."""

from __future__ import annotations

import errno
import hashlib
import os
import re
from pathlib import Path

import pytest
from resource_support import files_in, write

from bl832_assets.resources.transfer import ChecksumMismatch
from bl832_assets.resources.transfer.copying import (
    COPY_CHUNK,
    copy_verified,
    is_partial,
    partial_name,
    sync_file,
)


@pytest.mark.parametrize("size", [0, 1, 4097, COPY_CHUNK, COPY_CHUNK + 1])
def test_copy_verified_reproduces_the_file_and_its_sha256(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    source = write(tmp_path / "src" / "scan.h5", data)
    destination = tmp_path / "scan.h5"

    outcome = copy_verified(source, destination, tag="t1")

    assert destination.read_bytes() == data
    assert outcome.sha256 == hashlib.sha256(data).hexdigest()
    assert (outcome.size, outcome.copied) == (size, True)
    assert files_in(tmp_path) == ["scan.h5", "src/scan.h5"]


@pytest.mark.parametrize("kernel_copy", ["refused", "absent"])
def test_copies_through_user_space_without_a_kernel_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel_copy: str
) -> None:
    def refuse(*args: object) -> int:
        raise OSError(errno.EXDEV, "cross-device")

    if kernel_copy == "refused":
        monkeypatch.setattr(os, "copy_file_range", refuse)
    else:
        monkeypatch.delattr(os, "copy_file_range")
    data = os.urandom(3 * (1 << 20) + 7)
    source = write(tmp_path / "src" / "scan.h5", data)

    outcome = copy_verified(source, tmp_path / "scan.h5", tag="t1")

    assert (tmp_path / "scan.h5").read_bytes() == data
    assert outcome.sha256 == hashlib.sha256(data).hexdigest()


def test_bytes_corrupted_on_the_way_are_refused_and_the_old_file_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def corrupting_copy(src: int, dst: int, count: int, offset_src: int, offset_dst: int) -> int:
        data = bytearray(os.pread(src, count, offset_src))
        if data:
            data[0] ^= 0xFF  # storage flips a bit
        return os.pwrite(dst, data, offset_dst)

    monkeypatch.setattr(os, "copy_file_range", corrupting_copy)
    source = write(tmp_path / "src" / "scan.h5", os.urandom(10_000))
    destination = write(tmp_path / "scan.h5", b"previous good copy")

    with pytest.raises(ChecksumMismatch, match=re.escape("scan.h5")):
        copy_verified(source, destination, tag="t1")

    assert destination.read_bytes() == b"previous good copy"
    assert files_in(tmp_path) == ["scan.h5", "src/scan.h5"]


def test_sync_file_skips_an_identical_destination(tmp_path: Path) -> None:
    data = os.urandom(2000)
    source = write(tmp_path / "src" / "scan.h5", data)
    destination = write(tmp_path / "scan.h5", data)

    outcome = sync_file(source, destination, tag="t1")

    assert (outcome.copied, outcome.size) == (False, 2000)
    assert outcome.sha256 == hashlib.sha256(data).hexdigest()


def test_temporary_names_are_hidden_tagged_and_recognised() -> None:
    name = partial_name("scan.h5", "task-1")

    assert name.startswith(".") and "task-1" in name and not name.endswith(".h5")
    assert is_partial(name)
    assert not is_partial("scan.h5")
    assert not is_partial(".zattrs")
