"""Any beamline's payload runs at every facility: ``run_payload`` (a ``bl832`` command on
endpoint paths, here 7.3.3's integration) and ``run_batch`` (shell commands on a chosen node,
here 7.0.1.2's ptychocam GPU job, played by a stand-in script with ptychocam's command line).

Each facility really runs them: the local one as processes, NERSC as Slurm jobs of the SF API
fake (the real sfapi-client; scripts run by bash with NERSC paths mapped to folders here), ALCF
as functions of the Globus Compute fake (the real SDK). Every facility sees the same two
folders as its endpoints ``raw`` and ``scratch``, each under its own roots.
"""

import dataclasses
import json
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pytest
import sfapi_client._sync.compute
import sfapi_client._sync.jobs

from bl832_assets.beamlines.bl733.synth import DEFAULT_GEOMETRY, write_calibrant_pair, write_mask
from bl832_assets.beamlines.bl7012.checks import check_finite, check_written
from bl832_assets.beamlines.bl7012.params import (
    GpuJobSettings,
    PtychocamParams,
    PtychoRunConfig,
    job_commands,
)
from bl832_assets.beamlines.bl7012.synth import write_synthetic_scan
from bl832_assets.fakes.globus_compute import FakeGlobusCompute
from bl832_assets.fakes.sfapi import FakeSfApi
from bl832_assets.fakes.site import PTYCHOCAM_STANDIN
from bl832_assets.resources.compute.base import (
    BatchJob,
    ComputeFailed,
    ComputeResource,
    PayloadJob,
)
from bl832_assets.resources.compute.globus_compute import GlobusComputeResource
from bl832_assets.resources.compute.local import LocalComputeResource
from bl832_assets.resources.compute.nersc import NerscComputeResource, SlurmJobFailed
from bl832_assets.resources.compute.slurm_script import render_batch
from bl832_assets.resources.transfer import UnknownEndpoint

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey

T = TypeVar("T")
RAW, SCRATCH = "raw", "scratch"  # the endpoints, and the folders standing in for them here
CFS, PSCRATCH = "/global/cfs/cdirs/als/data_mover/7.3.3", "/pscratch/sd/a/alsdev/7.3.3"
NERSC_JOBS = "/pscratch/sd/a/alsdev/jobs"
CLIENT_ID, TOKEN, ALCF_ENDPOINT = "bl832testclnt", "compute-test-token", str(uuid.uuid4())
STANDIN = str(PTYCHOCAM_STANDIN)
# 7.0.1.2's GPU job settings with the stand-in for ptychocam, and the node they ask Slurm for.
GPU = GpuJobSettings(ptychocam_script=STANDIN, gpus=2)
GPU_SLURM = {
    "account": GPU.account,
    "qos": GPU.qos,
    "constraint": GPU.constraint,
    "gpus": str(GPU.gpus),
    "time_limit": GPU.time_limit,
}
NO_OP = BatchJob("ptychocam_scan", (("true",),), SCRATCH, "p1/scan.cxi", GPU_SLURM)
# The default template minus the container: the payload runs from this checkout.
BARE_TEMPLATE = """#!/bin/bash
#SBATCH --output=$jobs_root/$tag-%j.out
#SBATCH --error=$jobs_root/$tag-%j.err
set -euo pipefail
cd $jobs_root
$pipes_env
$command
"""


@dataclass(frozen=True)
class Facility:
    """A facility under test; ``failure`` is the error its failed jobs raise."""

    compute: ComputeResource
    home: Path  # holds the folders standing in for the endpoints, whatever their roots there
    failure: type[ComputeFailed] = ComputeFailed

    def local(self, endpoint: str, relative: str) -> Path:
        """Where ``relative`` of ``endpoint`` really is."""
        return self.home / endpoint / relative


@pytest.fixture(autouse=True)
def quick_sfapi_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """sfapi_client sleeps a second between task polls; these tests need not."""
    for module in (sfapi_client._sync.jobs, sfapi_client._sync.compute):
        monkeypatch.setattr(module, "_SLEEP", lambda *_: time.sleep(0.02))


@pytest.fixture(autouse=True)
def standin_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in runs ``bl832`` with this interpreter, whichever facility runs it."""
    monkeypatch.setenv("BL832_PYTHON", sys.executable)


@pytest.fixture(scope="module")
def secret() -> str:
    return json.dumps(JsonWebKey.generate_key("RSA", 2048, is_private=True).as_dict(True))


@pytest.fixture
def sfapi(tmp_path: Path, secret: str) -> Iterator[FakeSfApi]:
    fake = FakeSfApi(
        paths={NERSC_JOBS: tmp_path / "jobs", PSCRATCH: tmp_path / SCRATCH, CFS: tmp_path / RAW},
        clients={CLIENT_ID: secret},
    )
    with fake.serve():
        yield fake
        fake.wait_all()


@pytest.fixture
def nersc(sfapi: FakeSfApi, secret: str, tmp_path: Path) -> Facility:
    compute = NerscComputeResource(
        client_id=CLIENT_ID,
        secret=secret,
        api_url=f"{sfapi.url}/api/v1.2",
        token_url=f"{sfapi.url}/c2id/token",
        raw_root=CFS,
        scratch_root=PSCRATCH,
        jobs_root=NERSC_JOBS,
        endpoint_roots={RAW: CFS, SCRATCH: PSCRATCH},
        launcher=f"{sys.executable} -m bl832_assets",
        script_template=BARE_TEMPLATE,
        poll_seconds=0.05,
    )
    return Facility(compute, tmp_path, SlurmJobFailed)


@pytest.fixture
def local(tmp_path: Path) -> Facility:
    compute = LocalComputeResource(
        facility="nersc",
        raw_root=str(tmp_path / RAW),
        scratch_root=str(tmp_path / SCRATCH),
        jobs_root=str(tmp_path / "jobs"),
        endpoint_roots={name: str(tmp_path / name) for name in (RAW, SCRATCH)},
    )
    return Facility(compute, tmp_path)


@pytest.fixture
def alcf(tmp_path: Path) -> Iterator[Facility]:
    service = FakeGlobusCompute([ALCF_ENDPOINT], token=TOKEN)
    with service.serve():
        compute = GlobusComputeResource(
            facility="alcf",
            endpoint_id=ALCF_ENDPOINT,
            raw_root=str(tmp_path / RAW),
            scratch_root=str(tmp_path / SCRATCH),
            endpoint_roots={name: str(tmp_path / name) for name in (RAW, SCRATCH)},
            environment_setup=f"source {Path(sys.executable).parent / 'activate'}",
            timeout_seconds=120,
            poll_seconds=0.1,
            access_token=TOKEN,
            compute_url=service.url,
        )
        yield Facility(compute, tmp_path)


@pytest.fixture(params=["local", "nersc", "alcf"])
def facility(request: pytest.FixtureRequest) -> Facility:
    return request.getfixturevalue(request.param)


def in_a_step(step: Callable[[dg.AssetExecutionContext], T]) -> T:
    """Run ``step`` as the body of a real asset's step (a Pipes session must end in the
    asset's materialization); what it raises is raised here."""
    done: list[T] = []

    @dg.asset
    def beamline_step(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        done.append(step(context))
        return dg.MaterializeResult()

    dg.materialize([beamline_step])
    return done[0]


def ptychocam_job(compute: ComputeResource, cxi: str) -> BatchJob:
    """A 7.0.1.2 GPU job as its asset builds one: upstream's commands on the facility's path
    of the scan's working copy, which ptychocam reconstructs into."""
    run = PtychoRunConfig(ptychocam=PtychocamParams(n_iter=5, period_illu_refine=2))
    commands = job_commands(run, GPU, compute.facility_path(SCRATCH, cxi))
    return BatchJob(
        name=f"ptychocam_{Path(cxi).stem}",
        commands=tuple(tuple(command) for command in commands.values()),
        output_endpoint=SCRATCH,
        output=cxi,
        slurm=GPU_SLURM,
    )


def test_integrate_payload_writes_the_profile_and_reports_its_peaks(facility: Facility) -> None:
    calibrant = write_calibrant_pair(facility.local(RAW, "p1"), "agbh")
    write_mask(facility.local(RAW, "p1/mask.edf"), calibrant.beamstop)
    geometry = DEFAULT_GEOMETRY
    job = PayloadJob(
        step="integrate",
        inputs=((RAW, "p1/agbh"),),
        output_endpoint=SCRATCH,
        output="p1/integrated",
        options=(
            *("--distance-m", str(geometry.distance_m)),
            *("--wavelength-angstrom", str(geometry.wavelength_angstrom)),
            *("--centre", *map(str, geometry.beam_centre_px)),
            *("--mask", facility.compute.facility_path(RAW, "p1/mask.edf")),
        ),
    )

    outcome = in_a_step(lambda context: facility.compute.run_payload(context, job))

    assert outcome.output == "p1/integrated"
    assert facility.local(SCRATCH, "p1/integrated/agbh_profile.csv").is_file()
    peaks = outcome.reported["peaks_q"].value
    assert peaks == pytest.approx(list(calibrant.rings_q), abs=0.005)


def test_ptychocam_batch_job_appends_a_finite_image_to_its_cxi(facility: Facility) -> None:
    cxi = facility.local(SCRATCH, "p1/scan.cxi")
    write_synthetic_scan(cxi)
    job = ptychocam_job(facility.compute, "p1/scan.cxi")

    outcome = in_a_step(lambda context: facility.compute.run_batch(context, job))

    written = check_written(cxi)
    assert written.passed and written.metadata["image"] == "entry_1/image_1"
    assert check_finite(cxi).passed
    assert outcome.output == "p1/scan.cxi" and outcome.reported == {}


def test_a_failing_command_fails_the_batch_job_with_its_stderr_tail(facility: Facility) -> None:
    facility.local(SCRATCH, "p1").mkdir(parents=True)
    job = dataclasses.replace(
        NO_OP,
        commands=(
            (STANDIN, "-i", "2", facility.compute.facility_path(SCRATCH, "p1/missing.cxi")),
            ("touch", facility.compute.facility_path(SCRATCH, "p1/after")),
        ),
    )

    with pytest.raises(facility.failure, match=r"(?s)code 1.*missing\.cxi"):
        in_a_step(lambda context: facility.compute.run_batch(context, job))

    assert not facility.local(SCRATCH, "p1/after").exists()  # nothing runs after a failure


def test_nersc_batch_script_asks_slurm_for_the_gpu_node(nersc: Facility, sfapi: FakeSfApi) -> None:
    outcome = in_a_step(lambda context: nersc.compute.run_batch(context, NO_OP))

    script = sfapi.jobs[outcome.job_id].script
    for line in (
        "#SBATCH --job-name=ptychocam_scan",
        "#SBATCH --account=als_g",
        "#SBATCH --qos=regular",
        "#SBATCH --constraint=gpu",
        "#SBATCH --gpus=2",
        "#SBATCH --time=04:00:00",
        "#SBATCH --nodes=1",
        f"#SBATCH --error={NERSC_JOBS}/ptychocam_scan-",
        "set -euo pipefail\ntrue\n",
    ):
        assert line in script
    cpu_only = {key: value for key, value in GPU_SLURM.items() if key != "gpus"}
    cpu_job = dataclasses.replace(NO_OP, slurm={**cpu_only, "constraint": "cpu"})
    assert "--gpus" not in render_batch(cpu_job, tag="t", jobs_root=NERSC_JOBS)


@pytest.mark.parametrize(
    ("method", "job"),
    [
        ("run_payload", PayloadJob("integrate", (("alcf_raw", "p1/agbh"),), SCRATCH, "p1/out")),
        ("run_batch", dataclasses.replace(NO_OP, output_endpoint="alcf_raw")),
    ],
    ids=["payload", "batch"],
)
def test_an_endpoint_the_facility_cannot_see_is_refused_before_any_job(
    nersc: Facility, sfapi: FakeSfApi, method: str, job: PayloadJob | BatchJob
) -> None:
    with pytest.raises(UnknownEndpoint, match="'alcf_raw'"):
        in_a_step(lambda context: getattr(nersc.compute, method)(context, job))

    assert sfapi.submissions == []


@pytest.mark.parametrize(
    "change",
    [
        {"name": "ptychocam scan"},
        {"commands": ()},
        {"commands": ((),)},
        {"slurm": {**GPU_SLURM, "qos": "regular\n#SBATCH --account=other"}},
        {"slurm": {"account": "als_g"}},
        {"slurm": {**GPU_SLURM, "partition": "debug"}},
    ],
    ids=["name", "no-command", "empty-command", "two-lines", "missing", "unknown"],
)
def test_a_batch_job_that_would_break_its_script_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="batch job"):
        dataclasses.replace(NO_OP, **change)
