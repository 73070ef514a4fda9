"""The NERSC compute resource drives the real sfapi_client against the SF API fake on 127.0.0.1.

Jobs really run: the fake executes the rendered batch script with bash, so the payload writes
its outputs and Pipes messages on "pscratch" (a temporary folder) and the resource reads them
back through the SF API download call. The fake only lets in the client its test registered,
with the key it registered, so a wrong client id or key fails here as it would at NERSC.
"""

import json
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sfapi_client._sync.compute
import sfapi_client._sync.jobs

from bl832_assets.fakes.sfapi import FakeSfApi
from bl832_assets.resources.compute.base import ComputeFailed
from bl832_assets.resources.compute.nersc import NerscComputeResource, SlurmJobFailed
from bl832_assets.resources.compute.slurm_script import DEFAULT_TEMPLATE, render
from bl832_assets.science.options import ReconOptions
from bl832_assets.science.synth import write_synthetic_scan

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey

CFS, PSCRATCH = "/global/cfs/cdirs/als/raw", "/pscratch/sd/a/als"
CLIENT_ID = "bl832testclnt"
# The default template minus the container: the fake runs the payload from this checkout.
BARE_TEMPLATE = """#!/bin/bash
#SBATCH --output=$jobs_root/$tag-%j.out
#SBATCH --error=$jobs_root/$tag-%j.err
set -euo pipefail
cd $jobs_root
$pipes_env
$command
"""


@pytest.fixture(autouse=True)
def quick_sfapi_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """sfapi_client sleeps a second between task polls; these tests need not."""
    for module in (sfapi_client._sync.jobs, sfapi_client._sync.compute):
        monkeypatch.setattr(module, "_SLEEP", lambda *_: time.sleep(0.02))


def private_jwk() -> str:
    return json.dumps(JsonWebKey.generate_key("RSA", 2048, is_private=True).as_dict(True))


@pytest.fixture(scope="module")
def secret() -> str:
    return private_jwk()


@pytest.fixture
def fake(tmp_path: Path, secret: str) -> Iterator[FakeSfApi]:
    running = FakeSfApi(
        paths={CFS: tmp_path / "cfs", PSCRATCH: tmp_path / "pscratch"},
        clients={CLIENT_ID: secret},  # the fake keeps only the public half
    )
    with running.serve():
        yield running
        running.wait_all()


def resource(fake: FakeSfApi, client_id: str, secret: str) -> NerscComputeResource:
    return NerscComputeResource(
        client_id=client_id,
        secret=secret,
        api_url=f"{fake.url}/api/v1.2",
        token_url=f"{fake.url}/c2id/token",
        raw_root=CFS,
        scratch_root=PSCRATCH,
        jobs_root=f"{PSCRATCH}/jobs",
        launcher=f"{sys.executable} -m bl832_assets",
        script_template=BARE_TEMPLATE,
        poll_seconds=0.05,
    )


@pytest.fixture
def nersc(fake: FakeSfApi, secret: str) -> NerscComputeResource:
    return resource(fake, CLIENT_ID, secret)


def scan_at_nersc(fake: FakeSfApi, relative: str = "p1/scan.h5") -> str:
    write_synthetic_scan(fake.local(f"{CFS}/{relative}"), columns=32, rows=2, angles=31)
    return relative


def materialize_recon(
    nersc: NerscComputeResource, scan: str, retries: int = 0
) -> dg.ExecuteInProcessResult:
    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=retries) if retries else None)
    def reconstruction(context: dg.AssetExecutionContext, compute: NerscComputeResource):
        outcome = compute.reconstruct(context, scan, ReconOptions())
        return dg.MaterializeResult(metadata={**outcome.reported, "job_id": outcome.job_id})

    return dg.materialize([reconstruction], resources={"compute": nersc}, raise_on_error=False)


def only_failure(result: dg.ExecuteInProcessResult) -> dg.Failure:
    failure = result.failure_data_for_node("reconstruction")
    assert failure is not None
    return failure.error  # type: ignore[return-value]


def test_default_template_is_a_slurm_script_for_podman_hpc() -> None:
    script = render(
        DEFAULT_TEMPLATE,
        command=["bl832", "recon", "/raw/a b.h5", "/out"],
        env={"DAGSTER_PIPES_CONTEXT": "abc"},
        step="recon",
        tag="recon-1",
        account="als",
        qos="realtime",
        constraint="cpu",
        time_limit="00:30:00",
        image="img",
        raw_root="/raw",
        scratch_root="/out",
        jobs_root="/out/jobs",
    )
    assert "#SBATCH --qos=realtime" in script
    assert "#SBATCH --error=/out/jobs/recon-1-%j.err" in script
    assert "export DAGSTER_PIPES_CONTEXT=abc" in script
    assert "img bl832 recon '/raw/a b.h5' /out" in script


def test_recon_job_completes_and_pipes_metadata_comes_back(
    fake: FakeSfApi, nersc: NerscComputeResource
) -> None:
    result = materialize_recon(nersc, scan_at_nersc(fake))

    assert result.success
    metadata = result.asset_materializations_for_node("reconstruction")[0].metadata
    assert metadata["slices"].value == 2
    assert metadata["job_id"].value == fake.submissions[0]
    assert fake.jobs[fake.submissions[0]].state == "COMPLETED"
    assert fake.local(f"{PSCRATCH}/p1/recscan").is_dir()


def test_non_zero_exit_fails_with_the_stderr_tail(
    fake: FakeSfApi, nersc: NerscComputeResource
) -> None:
    result = materialize_recon(nersc, "p1/missing.h5")

    assert not result.success
    error = only_failure(result)
    assert error.cls_name == "SlurmJobFailed"
    assert "ended FAILED (exit code" in error.message
    assert "missing.h5" in error.message  # the payload's own complaint, from stderr


@pytest.mark.parametrize("state", ["TIMEOUT", "OUT_OF_MEMORY", "CANCELLED"])
def test_slurm_end_state_is_named_in_the_failure(
    fake: FakeSfApi, nersc: NerscComputeResource, state: str
) -> None:
    fake.end_next_job_as(state)

    result = materialize_recon(nersc, scan_at_nersc(fake))

    assert not result.success
    error = only_failure(result)
    assert error.cls_name == "SlurmJobFailed"
    assert f"ended {state}" in error.message


def test_retry_after_a_crash_reattaches_instead_of_submitting_again(
    fake: FakeSfApi, nersc: NerscComputeResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_wait = NerscComputeResource._wait
    crashes = []

    def crash_once(self, job, reader):  # type: ignore[no-untyped-def]
        if not crashes:
            crashes.append(job.jobid)
            raise ConnectionError("worker lost between submit and completion")
        return real_wait(self, job, reader)

    monkeypatch.setattr(NerscComputeResource, "_wait", crash_once)

    result = materialize_recon(nersc, scan_at_nersc(fake), retries=1)

    assert result.success
    assert fake.submissions == crashes  # exactly one job, the one the crashed attempt submitted
    metadata = result.asset_materializations_for_node("reconstruction")[0].metadata
    assert metadata["job_id"].value == crashes[0]
    assert metadata["slices"].value == 2


@pytest.mark.parametrize(
    ("client_id", "registered_key"),
    [(CLIENT_ID, False), ("bl832unknown", True)],
    ids=["another-key", "unknown-client"],
)
def test_unregistered_credentials_are_refused_before_any_job(
    fake: FakeSfApi, secret: str, client_id: str, registered_key: bool
) -> None:
    """The registered id with another key, or the registered key under an id never registered,
    gets the OAuth server's 401 invalid_client; the private key never reaches the error text."""
    key = secret if registered_key else private_jwk()

    result = materialize_recon(resource(fake, client_id, key), scan_at_nersc(fake))

    assert not result.success
    text = only_failure(result).to_string()
    assert "invalid_client: Client authentication failed" in text
    assert json.loads(key)["d"] not in text
    assert fake.submissions == []


def test_server_error_while_polling_is_retried_without_a_second_job(
    fake: FakeSfApi, nersc: NerscComputeResource
) -> None:
    fake.fail_next_requests(500, matching="GET compute/jobs")

    result = materialize_recon(nersc, scan_at_nersc(fake), retries=1)

    assert result.success
    assert len(fake.submissions) == 1


def test_client_error_before_submission_fails_without_a_job(
    fake: FakeSfApi, nersc: NerscComputeResource
) -> None:
    fake.fail_next_requests(403, matching="GET status")

    result = materialize_recon(nersc, scan_at_nersc(fake))

    assert not result.success
    assert "403 FORBIDDEN" in only_failure(result).to_string()
    assert fake.submissions == []


def test_pyramid_job_runs_after_recon_in_the_same_step(
    fake: FakeSfApi, nersc: NerscComputeResource
) -> None:
    scan = scan_at_nersc(fake)

    @dg.asset
    def published(context: dg.AssetExecutionContext, compute: NerscComputeResource):
        recon = compute.reconstruct(context, scan, ReconOptions())
        pyramid = compute.build_pyramid(context, recon.output)
        return dg.MaterializeResult(metadata={"zarr": pyramid.output})

    result = dg.materialize([published], resources={"compute": nersc})

    assert result.success
    assert len(fake.submissions) == 2  # each payload keeps its own job record
    assert fake.local(f"{PSCRATCH}/p1/recscan.zarr").is_dir()


def test_interrupted_wait_cancels_the_job(fake: FakeSfApi, nersc: NerscComputeResource) -> None:
    class InterruptingReader:
        def pull(self) -> None:
            raise dg.DagsterExecutionInterruptedError()

    with nersc.client() as compute:
        job = compute.submit_job("#!/bin/bash\nsleep 30\n")
        with pytest.raises(dg.DagsterExecutionInterruptedError):
            nersc._wait(job, InterruptingReader())  # type: ignore[arg-type]

    assert fake.jobs[str(job.jobid)].state == "CANCELLED"


def test_slurm_failure_is_a_compute_failure() -> None:
    assert issubclass(SlurmJobFailed, ComputeFailed)
