"""ALCF and OLCF through Globus Compute: the real SDK client, unpatched, against the fake
service on 127.0.0.1, whose endpoint really runs the payload on local folders."""

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pytest

from bl832_assets.fakes.globus_compute import FakeGlobusCompute
from bl832_assets.resources.compute.base import ComputeFailed
from bl832_assets.resources.compute.globus_compute import GlobusComputeResource
from bl832_assets.science.options import ReconOptions
from bl832_assets.science.synth import write_synthetic_scan

ALCF_ENDPOINT, OLCF_ENDPOINT = str(uuid.uuid4()), str(uuid.uuid4())
SCAN = "proposal/20260101_120000_sample.h5"
T = TypeVar("T")
TOKEN = "compute-test-token"


@pytest.fixture
def service() -> Iterator[FakeGlobusCompute]:
    fake = FakeGlobusCompute([ALCF_ENDPOINT, OLCF_ENDPOINT], token=TOKEN)
    with fake.serve():
        yield fake


def _facility(
    tmp_path: Path, service: FakeGlobusCompute, name: str, endpoint: str
) -> GlobusComputeResource:
    root = tmp_path / name
    write_synthetic_scan(root / "raw" / SCAN, columns=64, rows=4, angles=91)
    return GlobusComputeResource(
        facility=name,
        endpoint_id=endpoint,
        raw_root=str(root / "raw"),
        scratch_root=str(root / "scratch"),
        environment_setup=f"source {Path(sys.executable).parent / 'activate'}",
        timeout_seconds=60,
        poll_seconds=0.2,
        access_token=TOKEN,
        compute_url=service.url,
    )


def in_a_step(step: Callable[[dg.AssetExecutionContext], T]) -> T:
    """Run ``step`` as the body of a real Dagster step (its run records the task id for a
    retry to find); what it raises is raised here."""
    done: list[T] = []

    @dg.asset
    def facility_step(context: dg.AssetExecutionContext) -> None:
        done.append(step(context))

    dg.materialize([facility_step])
    return done[0]


@pytest.fixture
def alcf(tmp_path: Path, service: FakeGlobusCompute) -> GlobusComputeResource:
    return _facility(tmp_path, service, "alcf", ALCF_ENDPOINT)


def test_recon_runs_the_payload_on_the_endpoint_and_reports_its_metadata(
    alcf: GlobusComputeResource, tmp_path: Path
) -> None:
    outcome = in_a_step(lambda c: alcf.reconstruct(c, SCAN, ReconOptions()))

    assert outcome.output == "proposal/rec20260101_120000_sample"
    tiffs = sorted((tmp_path / "alcf" / "scratch" / outcome.output).glob("*.tif*"))
    assert len(tiffs) == 4
    assert outcome.reported["output_listing"].value == [t.name for t in tiffs]
    assert outcome.reported["host"].value
    assert outcome.reported["slices"].value == 4  # the payload's own metadata came back
    # The UI's small previews cross the endpoint as Markdown; the full gallery does not.
    for name in ("preview_xy", "preview_xz", "preview_yz", "histogram"):
        preview = outcome.reported[name]
        assert isinstance(preview, dg.MarkdownMetadataValue), name
        assert "data:image/png;base64," in preview.value and len(preview.value) < 1000
    assert "preview" not in outcome.reported and "markdown" not in outcome.reported


def test_pyramid_follows_the_recon_on_the_same_endpoint(
    alcf: GlobusComputeResource, tmp_path: Path
) -> None:
    recon = in_a_step(lambda c: alcf.reconstruct(c, SCAN, ReconOptions()))
    pyramid = in_a_step(lambda c: alcf.build_pyramid(c, recon.output))

    assert (tmp_path / "alcf" / "scratch" / pyramid.output / ".zattrs").exists()
    assert isinstance(pyramid.reported["preview_xy"], dg.MarkdownMetadataValue)


def test_non_zero_exit_fails_with_the_stderr_tail(
    alcf: GlobusComputeResource, tmp_path: Path
) -> None:
    (tmp_path / "alcf" / "raw" / SCAN).write_bytes(b"not hdf5")

    with pytest.raises(ComputeFailed) as failure:
        in_a_step(lambda c: alcf.reconstruct(c, SCAN, ReconOptions()))

    assert "exited with code" in str(failure.value.description)
    assert "20260101_120000_sample.h5" in str(failure.value.description)
    assert failure.value.metadata["exit_code"].value != 0


def test_walltime_kills_the_payload_and_fails(alcf: GlobusComputeResource) -> None:
    slow = alcf.model_copy(update={"environment_setup": "sleep 30", "timeout_seconds": 1})

    with pytest.raises(ComputeFailed, match="timed out after 1 s"):
        in_a_step(lambda c: slow.build_pyramid(c, "proposal/rec_missing"))


def test_a_failed_task_fails_with_the_remote_reason(
    alcf: GlobusComputeResource, service: FakeGlobusCompute
) -> None:
    service.fail_next_task("worker lost")

    with pytest.raises(ComputeFailed, match="worker lost"):
        in_a_step(lambda c: alcf.reconstruct(c, SCAN, ReconOptions()))


def test_service_errors_fail_clearly_and_transient_ones_are_retried(
    alcf: GlobusComputeResource, service: FakeGlobusCompute
) -> None:
    service.fail_next_requests(503, count=20)
    with pytest.raises(ComputeFailed, match="answered 503"):
        in_a_step(lambda c: alcf.build_pyramid(c, "proposal/rec_missing"))

    service.fail_next_requests(403, count=1)
    with pytest.raises(ComputeFailed, match="answered 403"):
        in_a_step(lambda c: alcf.build_pyramid(c, "proposal/rec_missing"))

    service.fail_next_requests(503, count=1)
    outcome = in_a_step(lambda c: alcf.reconstruct(c, SCAN, ReconOptions()))
    assert outcome.reported["output_listing"].value


def test_olcf_is_the_same_mechanism_on_its_own_endpoint_and_folders(
    tmp_path: Path, service: FakeGlobusCompute
) -> None:
    olcf = _facility(tmp_path, service, "olcf", OLCF_ENDPOINT)

    outcome = in_a_step(lambda c: olcf.reconstruct(c, SCAN, ReconOptions()))

    assert (tmp_path / "olcf" / "scratch" / outcome.output).is_dir()
    assert [t.endpoint_id for t in service.tasks.values()] == [OLCF_ENDPOINT]


def test_an_unknown_endpoint_is_refused(alcf: GlobusComputeResource) -> None:
    stranger = alcf.model_copy(update={"endpoint_id": str(uuid.uuid4())})

    with pytest.raises(ComputeFailed, match="answered 404"):
        in_a_step(lambda c: stranger.build_pyramid(c, "proposal/rec_missing"))


def test_a_token_the_service_did_not_issue_is_refused(alcf: GlobusComputeResource) -> None:
    stranger = alcf.model_copy(update={"access_token": "someone-elses-token"})

    with pytest.raises(ComputeFailed, match="answered 401") as failure:
        in_a_step(lambda c: stranger.reconstruct(c, SCAN, ReconOptions()))

    assert "someone-elses-token" not in str(failure.value.description)
