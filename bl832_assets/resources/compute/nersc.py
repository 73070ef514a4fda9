"""NERSC: the payload runs as a Slurm job on Perlmutter, submitted through the Superfacility API.

A step submits once: the job id goes into the run's tags before the step waits, so a retried
step (after a crash, a lost connection, a killed worker) finds it and waits for that job again
instead of reconstructing the scan twice. Cancelling the Dagster run cancels the job.

Hashing is a job too (``bl832 hash``, the only code that can read CFS and pscratch): its
answer is the last line of the job's stdout, downloaded through the SF API when it ends.

Other beamlines' payloads run as 8.3.2's do. A batch job (upstream's own scripts, such as
7.0.1.2's ptychocam on a GPU node) gets a script of its own Slurm header and commands; it is
re-attached to and judged like any other job, and reports nothing.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath

import dagster as dg
from pydantic import Field

from bl832_assets.resources.compute.base import (
    BatchJob,
    ComputeFailed,
    ComputeOutcome,
    ComputeResource,
    PayloadJob,
    RemoteChecksums,
    StepContext,
)
from bl832_assets.resources.compute.job_records import (
    forget_job,
    record_job,
    record_key,
    recorded_job,
)
from bl832_assets.resources.compute.remote_hashing import hash_step, read_answer
from bl832_assets.resources.compute.sfapi import (
    TERMINAL_STATES,
    Client,
    Compute,
    JobSqueue,
    JobState,
    Machine,
)
from bl832_assets.resources.compute.sfapi_pipes import DownloadedMessageReader
from bl832_assets.resources.compute.slurm_script import (
    DEFAULT_TEMPLATE,
    render,
    render_batch,
    volume_options,
)
from bl832_assets.science.options import ReconOptions

STDERR_TAIL_LINES = 20


class SlurmJobFailed(ComputeFailed):
    """A Slurm job ended in a state other than COMPLETED; ``state`` and ``exit_code`` say how."""

    def __init__(self, description: str, state: str, exit_code: str, stderr_tail: str) -> None:
        super().__init__(
            description=description,
            metadata={
                "slurm_state": state,
                "exit_code": exit_code,
                "stderr_tail": dg.MetadataValue.text(stderr_tail),
            },
            allow_retries=False,
        )
        self.state = state
        self.exit_code = exit_code


@dataclass(frozen=True)
class JobRecord:
    """A submitted Slurm job: its id, and the tag naming its log and Pipes files."""

    jobid: str
    tag: str


class NerscComputeResource(ComputeResource):
    """Runs ``bl832 recon``, ``bl832 pyramid``, ``bl832 hash``, other payloads and batch jobs
    as Slurm jobs on a NERSC machine."""

    client_id: str = Field(default="", description="Superfacility API client id.")
    secret: str = Field(
        default="", description="Client private key as JWK JSON text (wire it from an EnvVar)."
    )
    key_path: str = Field(
        default="", description="Alternative to client_id/secret: a chmod-600 SF API key file."
    )
    api_url: str = Field(default="https://api.nersc.gov/api/v1.2", description="SF API base.")
    token_url: str = Field(
        default="https://oidc.nersc.gov/c2id/token", description="OAuth token endpoint."
    )
    machine: str = Field(default="perlmutter", description="NERSC machine to submit to.")
    account: str = Field(default="als", description="Slurm account (NERSC project).")
    qos: str = Field(default="realtime", description="Slurm QoS.")
    constraint: str = Field(default="cpu", description="Slurm node constraint (cpu, gpu).")
    time_limit: str = Field(default="00:30:00", description="Slurm wall-clock limit.")
    image: str = Field(
        default="registry.nersc.gov/als/bl832:latest", description="Payload container image."
    )
    launcher: str = Field(
        default="bl832", description="How the job invokes the payload CLI inside the image."
    )
    raw_root: str = Field(description="NERSC folder holding the raw scan copies (CFS).")
    scratch_root: str = Field(description="NERSC folder where reconstructions go (pscratch).")
    jobs_root: str = Field(
        description="Existing NERSC folder for job logs and Pipes messages; jobs run in it."
    )
    script_template: str = Field(
        default=DEFAULT_TEMPLATE,
        description="Batch script with $placeholders (see slurm_script); it must cd to "
        "$jobs_root and send stderr to $jobs_root/$tag-%j.err, where failures are read from, "
        "and stdout to $jobs_root/$tag-%j.out, where a hash job's answer is read from.",
    )
    poll_seconds: float = Field(default=15.0, description="Seconds between job state checks.")

    # -- the interface ---------------------------------------------------------------------

    def reconstruct(
        self, context: dg.AssetExecutionContext, scan: str, options: ReconOptions
    ) -> ComputeOutcome:
        relative = PurePosixPath(scan)
        out_dir = PurePosixPath(self.scratch_root) / relative.parent
        output = (relative.parent / f"rec{relative.stem}").as_posix()
        source = str(PurePosixPath(self.raw_root) / relative)
        args = [source, str(out_dir), "--options", options.to_json()]
        return self._run(context, "recon", args, output)

    def build_pyramid(self, context: dg.AssetExecutionContext, tiff_folder: str) -> ComputeOutcome:
        source = PurePosixPath(self.scratch_root) / tiff_folder
        output = f"{tiff_folder}.zarr"
        target = PurePosixPath(self.scratch_root) / output
        return self._run(context, "pyramid", [str(source), str(target)], output)

    def run_payload(self, context: dg.AssetExecutionContext, job: PayloadJob) -> ComputeOutcome:
        return self._run(context, job.step, self.payload_arguments(job), job.output)

    def run_batch(self, context: dg.AssetExecutionContext, job: BatchJob) -> ComputeOutcome:
        self.facility_path(job.output_endpoint, job.output)  # a bad one is refused before the job
        started = time.monotonic()
        key = record_key(context, "nersc", f"batch-{job.name}")
        with self.client() as compute:
            record = self._unpiped(
                context,
                compute,
                key,
                job.name,
                lambda tag: render_batch(job, tag=tag, jobs_root=self.jobs_root),
            )
        return self._outcome(record, job.output, {}, started)

    def checksums(self, context: StepContext, endpoint: str, relative_path: str) -> RemoteChecksums:
        """A retried step re-attaches to its hash job still in flight; once read, the record is
        forgotten, so hashing the same path again later in the step measures it again."""
        target = self.facility_path(endpoint, relative_path)
        key = record_key(context, "nersc", hash_step(endpoint, relative_path))
        with self.client() as compute:
            record = self._unpiped(
                context, compute, key, "hash", lambda tag: self._script("hash", tag, [target], {})
            )
            stdout = _download(compute, f"{self.jobs_root}/{record.tag}-{record.jobid}.out")
        forget_job(context, key)
        return read_answer(stdout or "", record.jobid, f"sha256 by NERSC job {record.jobid}")

    # -- one job ------------------------------------------------------------------------------

    def _run(
        self, context: dg.AssetExecutionContext, step: str, args: Sequence[str], output: str
    ) -> ComputeOutcome:
        """A payload job whose Pipes messages come back through downloads while it runs."""
        started = time.monotonic()
        key = record_key(context, "nersc", step)
        record = _recorded(context, key, step)
        tag = record.tag if record else _new_tag(step)
        with self.client() as compute:
            messages = f"{tag}.pipes.jsonl"
            reader = DownloadedMessageReader(
                messages, f"{self.jobs_root}/{messages}", lambda path: _download(compute, path)
            )
            with dg.open_pipes_session(
                context=context,
                context_injector=dg.PipesEnvContextInjector(),
                message_reader=reader,
            ) as session:
                if record is None:
                    script = self._script(step, tag, args, session.get_bootstrap_env_vars())
                    record = _submit_and_record(context, compute, script, key, tag)
                self._finish(compute, step, record, reader)
            reported = dg.PipesClientCompletedInvocation(session).get_materialize_result()
        return self._outcome(record, output, reported.metadata or {}, started)

    def _unpiped(
        self,
        context: StepContext,
        compute: Compute,
        key: str,
        step: str,
        script: Callable[[str], str],
    ) -> JobRecord:
        """The job recorded under ``key``, or a new one running ``script(tag)``, waited for
        until it completes; it reports nothing while it runs."""
        record = _recorded(context, key, step)
        if record is None:
            tag = _new_tag(step)
            record = _submit_and_record(context, compute, script(tag), key, tag)
        self._finish(compute, step, record, None)
        return record

    def _finish(
        self,
        compute: Compute,
        step: str,
        record: JobRecord,
        reader: DownloadedMessageReader | None,
    ) -> None:
        """Wait for the job; any end state but COMPLETED is a ``SlurmJobFailed``."""
        state = self._wait(JobSqueue(jobid=record.jobid, compute=compute), reader)
        if state != JobState.COMPLETED:
            raise self._failure(compute, step, record, state)

    def _outcome(
        self,
        record: JobRecord,
        output: str,
        reported: Mapping[str, dg.MetadataValue],
        started: float,
    ) -> ComputeOutcome:
        log = dg.MetadataValue.text(f"{self.machine}:{self._stderr(record)}")
        return ComputeOutcome(record.jobid, output, reported, time.monotonic() - started, log)

    @contextmanager
    def client(self) -> Iterator[Compute]:
        """The configured machine, through an authenticated SF API client open for the block."""
        if self.key_path:
            client = Client(key=self.key_path, api_base_url=self.api_url, token_url=self.token_url)
        else:
            client = Client(
                self.client_id,
                json.loads(self.secret),
                api_base_url=self.api_url,
                token_url=self.token_url,
            )
        with client:
            yield client.compute(Machine(self.machine))

    def _script(self, step: str, tag: str, args: Sequence[str], env: dict[str, str]) -> str:
        return render(
            self.script_template,
            command=[*self.launcher.split(), step, *args],
            env=env,
            step=step,
            tag=tag,
            account=self.account,
            qos=self.qos,
            constraint=self.constraint,
            time_limit=self.time_limit,
            image=self.image,
            raw_root=self.raw_root,
            scratch_root=self.scratch_root,
            jobs_root=self.jobs_root,
            volumes=volume_options(
                [self.raw_root, self.scratch_root, self.jobs_root, *self.endpoint_roots.values()]
            ),
        )

    def _wait(self, job: JobSqueue, reader: DownloadedMessageReader | None) -> JobState:
        """Poll until the job ends, relaying Pipes messages if there is a ``reader``; a
        cancelled run cancels the job."""
        try:
            while True:
                job.update()
                if reader is not None:
                    reader.pull()
                if job.state in TERMINAL_STATES:
                    return job.state
                time.sleep(self.poll_seconds)
        except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt):
            job.cancel()
            raise

    def _stderr(self, record: JobRecord) -> str:
        """The job's stderr file on the facility, where the script template must send it."""
        return f"{self.jobs_root}/{record.tag}-{record.jobid}.err"

    def _failure(
        self, compute: Compute, step: str, record: JobRecord, state: JobState
    ) -> SlurmJobFailed:
        exit_code = getattr(compute.job(record.jobid), "exitcode", None) or "unknown"
        stderr = _download(compute, self._stderr(record)) or ""
        tail = "\n".join(stderr.splitlines()[-STDERR_TAIL_LINES:])
        return SlurmJobFailed(
            f"NERSC {step} job {record.jobid} ended {state.value} (exit code {exit_code}):\n{tail}",
            state.value,
            exit_code,
            tail,
        )


def _new_tag(step: str) -> str:
    """The name of a new job's log and Pipes files in the jobs folder."""
    return f"{step}-{uuid.uuid4().hex[:12]}"


def _recorded(context: StepContext, key: str, step: str) -> JobRecord | None:
    """The job an earlier attempt of this step submitted, which this attempt re-attaches to."""
    recorded = recorded_job(context, key)
    if not recorded:
        return None
    record = JobRecord(*recorded.split(":"))
    context.log.info(f"NERSC {step}: re-attached to Slurm job {record.jobid}")
    return record


def _submit_and_record(
    context: StepContext, compute: Compute, script: str, key: str, tag: str
) -> JobRecord:
    """Submit, then record the job id before anything can fail (see ``job_records``)."""
    job = compute.submit_job(script)
    record = JobRecord(str(job.jobid), tag)
    record_job(context, key, f"{record.jobid}:{record.tag}")
    context.log.info(f"NERSC: submitted Slurm job {job.jobid} ({tag})")
    return record


def _download(compute: Compute, path: str) -> str | None:
    """A text file on the facility through the SF API, or ``None`` when it does not exist."""
    response = compute.client.get(
        f"utilities/download/{compute.name}/{path}", params={"binary": True}
    )
    body = response.json()
    if body.get("status") != "OK" or body.get("file") is None:
        return None
    return base64.b64decode(body["file"]).decode(errors="replace")
