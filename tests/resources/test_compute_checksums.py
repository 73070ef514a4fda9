"""The embedded facility hashes its endpoints with the ``bl832 hash`` payload, run as a real
process from a real op (retention's prune is an op, not an asset)."""

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pytest

from bl832_assets.resources.compute.base import ComputeFailed, RemoteChecksums
from bl832_assets.resources.compute.local import LocalComputeResource
from bl832_assets.resources.transfer import UnknownEndpoint, UnsafePath
from bl832_assets.resources.wiring import build_resources
from bl832_assets.settings import Settings

T = TypeVar("T")
FOLDER = "proposal/rec20260101_120000_sample"
CONTENTS = {"slice_0000.tif": b"\x01" * 4096, "zarr/0/.zarray": b"{}", "zarr/.zattrs": b"{}"}


def in_an_op(step: Callable[[dg.OpExecutionContext], T]) -> T:
    """Run ``step`` as the body of an op in a real run; what it raises is raised here."""
    done: list[T] = []

    @dg.op
    def prune_step(context: dg.OpExecutionContext) -> None:
        done.append(step(context))

    @dg.job
    def prune() -> None:
        prune_step()

    prune.execute_in_process()
    return done[0]


def write_folder(root: Path) -> Path:
    for name, data in CONTENTS.items():
        (root / FOLDER / name).parent.mkdir(parents=True, exist_ok=True)
        (root / FOLDER / name).write_bytes(data)
    return root / FOLDER


@pytest.fixture
def nersc(tmp_path: Path) -> LocalComputeResource:
    return LocalComputeResource(
        facility="nersc",
        raw_root=str(tmp_path / "cfs"),
        scratch_root=str(tmp_path / "pscratch"),
        jobs_root=str(tmp_path / "jobs"),
        endpoint_roots={"nersc_pscratch": str(tmp_path / "pscratch")},
        python=sys.executable,
    )


def test_a_folder_is_hashed_by_a_logged_payload_process(
    nersc: LocalComputeResource, tmp_path: Path
) -> None:
    write_folder(tmp_path / "pscratch")

    answer = in_an_op(lambda c: nersc.checksums(c, "nersc_pscratch", FOLDER))

    assert answer.files == {n: hashlib.sha256(d).hexdigest() for n, d in sorted(CONTENTS.items())}
    assert answer.sizes == {n: len(d) for n, d in sorted(CONTENTS.items())}
    assert answer.how == f"sha256 by nersc hash job {answer.job_id}"
    job_dir = tmp_path / "jobs" / "nersc" / answer.job_id
    assert (job_dir / "stdout.log").read_text().strip().startswith('{"files"')


def test_a_changed_byte_changes_that_files_digest_only(
    nersc: LocalComputeResource, tmp_path: Path
) -> None:
    folder = write_folder(tmp_path / "pscratch")
    before = in_an_op(lambda c: nersc.checksums(c, "nersc_pscratch", FOLDER))
    data = bytearray(CONTENTS["slice_0000.tif"])
    data[2048] ^= 0x01
    (folder / "slice_0000.tif").write_bytes(bytes(data))

    after = in_an_op(lambda c: nersc.checksums(c, "nersc_pscratch", FOLDER))

    assert after.files["slice_0000.tif"] == hashlib.sha256(data).hexdigest()
    assert after.files["slice_0000.tif"] != before.files["slice_0000.tif"]
    assert {k: v for k, v in after.files.items() if k != "slice_0000.tif"} == {
        k: v for k, v in before.files.items() if k != "slice_0000.tif"
    }


def test_a_missing_path_fails_naming_it(nersc: LocalComputeResource) -> None:
    with pytest.raises(ComputeFailed, match="exited with code 1") as failure:
        in_an_op(lambda c: nersc.checksums(c, "nersc_pscratch", "proposal/rec_gone"))

    assert "proposal/rec_gone: No such file or directory" in str(failure.value.description)


def test_an_endpoint_its_jobs_cannot_see_is_refused_before_any_job(
    nersc: LocalComputeResource, tmp_path: Path
) -> None:
    with pytest.raises(UnknownEndpoint, match="'alcf_raw' \\(known: nersc_pscratch\\)"):
        in_an_op(lambda c: nersc.checksums(c, "alcf_raw", FOLDER))

    assert not (tmp_path / "jobs").exists()


@pytest.mark.parametrize("path", ["/etc/passwd", "proposal/../../etc"])
def test_a_path_that_could_leave_the_root_is_refused(
    nersc: LocalComputeResource, path: str
) -> None:
    with pytest.raises(UnsafePath):
        in_an_op(lambda c: nersc.checksums(c, "nersc_pscratch", path))


def test_wiring_gives_each_local_facility_the_roots_of_its_own_endpoints(site: Settings) -> None:
    nersc = build_resources(site)["nersc"]
    assert isinstance(nersc, LocalComputeResource)
    assert nersc.endpoint_roots == {
        name: str(site.root(name))
        for name, endpoint in site.endpoints.items()
        if endpoint.facility == "nersc"
    }
    assert {"nersc_cfs", "nersc_pscratch"} <= set(nersc.endpoint_roots)
    write_folder(site.root("nersc_cfs"))

    answer: RemoteChecksums = in_an_op(lambda c: nersc.checksums(c, "nersc_cfs", FOLDER))

    assert answer.files["slice_0000.tif"] == hashlib.sha256(CONTENTS["slice_0000.tif"]).hexdigest()
