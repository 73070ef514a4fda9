"""Storage the orchestrator cannot see is hashed by a job of its facility: the production
resources, wired from the fake site's settings, drive the real sfapi-client and
globus-compute-sdk against the fakes, whose Slurm jobs and Compute functions really run
``bl832 hash`` on the folders the site's NERSC, ALCF and OLCF paths map to."""

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pytest
import sfapi_client._sync.compute
import sfapi_client._sync.jobs

from bl832_assets.fakes.site import FakeSite, running_fakes
from bl832_assets.resources.compute.base import ComputeFailed, ComputeResource, RemoteChecksums
from bl832_assets.resources.compute.nersc import NerscComputeResource, SlurmJobFailed
from bl832_assets.resources.compute.slurm_script import DEFAULT_TEMPLATE
from bl832_assets.resources.transfer import UnknownEndpoint, UnsafePath
from bl832_assets.resources.wiring import build_resources
from bl832_assets.settings import DEFAULT_LAYOUT, Settings

T = TypeVar("T")
Step = Callable[[dg.OpExecutionContext, ComputeResource], T]
CONTENTS = {
    "slice_0000.tif": b"\x02" * 5000,
    "slice_0001.tif": b"\x03" * 5000,
    "zarr/0/0.0": b"chunk",
}
# (facility, endpoint): NERSC's raw, scratch and results roots; ALCF's and OLCF's scratch.
WHERE = [
    ("nersc", "nersc_cfs"),
    ("nersc", "nersc_pscratch"),
    ("nersc", "nersc_cfs_results"),
    ("alcf", "alcf_scratch"),
    ("olcf", "olcf_raw"),
]


@pytest.fixture(autouse=True)
def quick_sfapi_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """sfapi_client sleeps a second between task polls; these tests need not."""
    for module in (sfapi_client._sync.jobs, sfapi_client._sync.compute):
        monkeypatch.setattr(module, "_SLEEP", lambda *_: time.sleep(0.02))


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSite]:
    with running_fakes(tmp_path_factory.mktemp("site"), poll_seconds=0.05) as site:
        yield site
        site.sfapi.wait_all()


@pytest.fixture
def settings(fakes: FakeSite, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in fakes.environment.items():
        monkeypatch.setenv(name, value)
    return Settings.model_validate(fakes.settings)


def in_an_op(settings: Settings, facility: str, step: Step[T], retries: int = 0) -> T:
    """Run ``step`` in an op of a real run with the facility's resource as wired for the site
    (its secrets resolved from the environment); what it raises is raised here."""
    done: list[T] = []
    policy = dg.RetryPolicy(max_retries=retries) if retries else None

    @dg.op(required_resource_keys={"compute"}, retry_policy=policy)
    def prune_step(context: dg.OpExecutionContext) -> None:
        done.append(step(context, context.resources.compute))

    @dg.job(resource_defs={"compute": build_resources(settings)[facility]})
    def prune() -> None:
        prune_step()

    prune.execute_in_process()
    return done[0]


def folder_on(fakes: FakeSite, endpoint: str) -> tuple[str, Path]:
    """A fresh folder of ``CONTENTS`` on ``endpoint``: its relative path and where it really is
    (the site folder the fake facility maps the endpoint's root to)."""
    relative = f"proposal/rec_{uuid.uuid4().hex[:8]}"
    folder = fakes.home / DEFAULT_LAYOUT[endpoint][1] / relative
    for name, data in CONTENTS.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return relative, folder


def expected() -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in sorted(CONTENTS.items())}


@pytest.mark.parametrize(("facility", "endpoint"), WHERE)
def test_a_facility_job_returns_the_true_sha256_of_every_file(
    fakes: FakeSite, settings: Settings, facility: str, endpoint: str
) -> None:
    relative, _ = folder_on(fakes, endpoint)

    answer = in_an_op(settings, facility, lambda c, r: r.checksums(c, endpoint, relative))

    assert answer.files == expected()
    assert answer.sizes == {name: len(data) for name, data in sorted(CONTENTS.items())}
    if facility == "nersc":
        assert answer.how == f"sha256 by NERSC job {answer.job_id}"
        assert fakes.sfapi.jobs[answer.job_id].state == "COMPLETED"
    else:
        assert answer.how.startswith(f"sha256 by {facility} Globus Compute task {answer.job_id}")
        assert fakes.compute.tasks[answer.job_id].status == "success"


@pytest.mark.parametrize(("facility", "endpoint"), [WHERE[1], WHERE[3]])
def test_hashing_again_in_the_same_op_measures_again_and_sees_a_changed_byte(
    fakes: FakeSite, settings: Settings, facility: str, endpoint: str
) -> None:
    """The second request for the same path must not re-attach to the first job."""
    relative, folder = folder_on(fakes, endpoint)
    changed = bytearray(CONTENTS["slice_0001.tif"])
    changed[4999] ^= 0x80

    def twice(
        context: dg.OpExecutionContext, compute: ComputeResource
    ) -> tuple[RemoteChecksums, RemoteChecksums]:
        before = compute.checksums(context, endpoint, relative)
        (folder / "slice_0001.tif").write_bytes(bytes(changed))
        return before, compute.checksums(context, endpoint, relative)

    before, after = in_an_op(settings, facility, twice)

    assert before.files == expected()
    assert after.job_id != before.job_id
    assert after.files["slice_0001.tif"] == hashlib.sha256(changed).hexdigest()
    assert after.files["slice_0000.tif"] == before.files["slice_0000.tif"]


def test_a_retried_step_reattaches_to_its_hash_job_instead_of_submitting_again(
    fakes: FakeSite, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    relative, _ = folder_on(fakes, "nersc_pscratch")
    submitted = len(fakes.sfapi.submissions)
    real_wait = NerscComputeResource._wait
    crashes: list[str] = []

    def crash_once(self, job, reader):  # type: ignore[no-untyped-def]
        if not crashes:
            crashes.append(job.jobid)
            raise ConnectionError("worker lost between submit and completion")
        return real_wait(self, job, reader)

    monkeypatch.setattr(NerscComputeResource, "_wait", crash_once)

    answer = in_an_op(
        settings, "nersc", lambda c, r: r.checksums(c, "nersc_pscratch", relative), retries=1
    )

    assert fakes.sfapi.submissions[submitted:] == crashes == [answer.job_id]
    assert answer.files == expected()


def test_a_nersc_job_that_finds_no_such_path_fails_naming_it(settings: Settings) -> None:
    with pytest.raises(SlurmJobFailed) as failure:
        in_an_op(settings, "nersc", lambda c, r: r.checksums(c, "nersc_pscratch", "p/rec_gone"))

    assert "ended FAILED" in str(failure.value.description)
    assert "p/rec_gone: No such file or directory" in str(failure.value.description)


@pytest.mark.parametrize("facility", ["alcf", "olcf"])
def test_a_compute_task_that_finds_no_such_path_fails_naming_it(
    settings: Settings, facility: str
) -> None:
    endpoint = f"{facility}_scratch"

    with pytest.raises(ComputeFailed, match="exited with code 1") as failure:
        in_an_op(settings, facility, lambda c, r: r.checksums(c, endpoint, "p/rec_gone"))

    assert "p/rec_gone: No such file or directory" in str(failure.value.description)


@pytest.mark.parametrize(
    ("facility", "endpoint"), [("nersc", "alcf_scratch"), ("alcf", "nersc_cfs"), ("olcf", "x")]
)
def test_an_endpoint_the_facility_cannot_see_is_refused_before_any_job(
    fakes: FakeSite, settings: Settings, facility: str, endpoint: str
) -> None:
    jobs, tasks = len(fakes.sfapi.submissions), len(fakes.compute.tasks)

    with pytest.raises(UnknownEndpoint, match=f"unknown endpoint '{endpoint}'"):
        in_an_op(settings, facility, lambda c, r: r.checksums(c, endpoint, "proposal/rec_x"))

    assert (len(fakes.sfapi.submissions), len(fakes.compute.tasks)) == (jobs, tasks)


@pytest.mark.parametrize("facility", ["nersc", "alcf"])
def test_a_path_that_could_leave_the_root_is_refused_before_any_job(
    fakes: FakeSite, settings: Settings, facility: str
) -> None:
    jobs, tasks = len(fakes.sfapi.submissions), len(fakes.compute.tasks)
    endpoint = f"{facility}_scratch" if facility == "alcf" else "nersc_pscratch"

    with pytest.raises(UnsafePath):
        in_an_op(settings, facility, lambda c, r: r.checksums(c, endpoint, "../jobs"))

    assert (len(fakes.sfapi.submissions), len(fakes.compute.tasks)) == (jobs, tasks)


def test_the_default_nersc_script_mounts_every_root_a_hash_job_may_read(
    settings: Settings,
) -> None:
    """In production the payload runs in a container: a root it is not given is not there."""
    wired = build_resources(settings)["nersc"]
    assert isinstance(wired, NerscComputeResource)
    nersc = wired.model_copy(update={"script_template": DEFAULT_TEMPLATE})
    results = "/global/cfs/cdirs/als/data_mover/8.3.2/scratch"
    assert nersc.endpoint_roots["nersc_cfs_results"] == results

    script = nersc._script("hash", "hash-1", [f"{results}/p/rec_x"], {})

    for root in {*nersc.endpoint_roots.values(), nersc.jobs_root}:
        assert f"--volume {root}:{root}" in script
    assert script.rstrip().endswith(f"hash {results}/p/rec_x")
