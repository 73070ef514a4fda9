"""``bl832 hash``: what a facility job prints must be what ``hashlib`` says, keyed as the
transfer resources key ``checksums``, or retention would compare two copies by different
names."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bl832_assets.cli.main import main
from bl832_assets.resources.transfer import LocalTransferResource

CONTENTS = {
    "a.tif": b"first slice",
    "nested/b.tif": b"\x00" * 70_000,
    "nested/deeper/c.json": b"{}",
    "nested/.hidden": b"a hidden file is still data",
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "data" / "rec_scan"
    for name, data in CONTENTS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "nested" / ".b.tif.partial-task1").write_bytes(b"half a copy")
    return root


def printed(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["hash", *argv]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1  # one JSON object on one line: what the facility wrappers read
    return json.loads(out[0])


def test_a_folder_hashes_to_hashlib_digests_keyed_relative_without_partial_files(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = printed(capsys, str(folder))

    assert answer["files"] == {
        name: hashlib.sha256(data).hexdigest() for name, data in sorted(CONTENTS.items())
    }
    assert list(answer["files"]) == sorted(CONTENTS)
    assert answer["sizes"] == {name: len(data) for name, data in sorted(CONTENTS.items())}


def test_keys_and_digests_equal_the_transfer_resources_checksums(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    transfer = LocalTransferResource(
        endpoints={"here": str(tmp_path / "data")}, database=str(tmp_path / "t.sqlite")
    )

    answer = printed(capsys, str(folder))

    assert answer["files"] == transfer.checksums("here", "rec_scan")
    assert answer["sizes"] == transfer.listing("here", "rec_scan")


def test_a_file_is_keyed_by_its_name(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answer = printed(capsys, str(folder / "nested" / "b.tif"))

    assert answer == {
        "files": {"b.tif": hashlib.sha256(CONTENTS["nested/b.tif"]).hexdigest()},
        "sizes": {"b.tif": 70_000},
    }


def test_a_missing_path_exits_1_with_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "rec_scan"

    done = subprocess.run(
        [sys.executable, "-m", "bl832_assets", "hash", str(missing)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"bl832 hash: error: {missing}: No such file or directory"
    ]
