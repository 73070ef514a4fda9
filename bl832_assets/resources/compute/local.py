"""The embedded facility: the payload runs as a process on this machine, exactly the command a
Slurm job or a Globus Compute function runs at a real facility (``bl832 hash`` included, so
checksums are measured by the same code as at a facility, not by the orchestrator's). A batch
job's commands run in bash as a batch script's would, with no scheduler to choose a node."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path, PurePosixPath

import dagster as dg
from pydantic import Field

from bl832_assets.resources.compute.base import (
    BatchJob,
    ComputeOutcome,
    ComputeResource,
    PayloadJob,
    RemoteChecksums,
    StepContext,
)
from bl832_assets.resources.compute.remote_hashing import read_answer
from bl832_assets.resources.compute.subprocess_pipes import (
    STDERR_LOG,
    ProcessPipesClient,
    run_logged,
)
from bl832_assets.science.options import ReconOptions


class LocalComputeResource(ComputeResource):
    """Runs ``bl832 recon``, ``bl832 pyramid`` and other payloads as local processes through
    Dagster Pipes, ``bl832 hash`` as a local process whose printed answer is read from its log,
    and batch jobs as bash processes."""

    facility: str = Field(description="Facility this stands in for (nersc, alcf, olcf).")
    raw_root: str = Field(description="Folder holding the facility's raw scan copies.")
    scratch_root: str = Field(description="Folder where the facility writes reconstructions.")
    jobs_root: str = Field(description="Folder for job logs, one sub-folder per job.")
    python: str = Field(
        default=sys.executable, description="Interpreter with bl832_assets installed."
    )

    def _job(self, name: str) -> tuple[str, Path]:
        """A fresh job id and the folder its logs are kept in."""
        job_id = f"{name}-{uuid.uuid4().hex[:12]}"
        return job_id, Path(self.jobs_root) / self.facility / job_id

    def _run(
        self, context: dg.AssetExecutionContext, step: str, args: list[str], output: str
    ) -> ComputeOutcome:
        job_id, job_dir = self._job(step)
        started = time.monotonic()
        invocation = ProcessPipesClient().run(
            context=context,
            command=[self.python, "-m", "bl832_assets", step, *args],
            job_dir=job_dir,
            description=f"{self.facility} {step} job {job_id}",
        )
        reported = invocation.get_materialize_result().metadata or {}
        log = dg.MetadataValue.path(str(job_dir / STDERR_LOG))
        return ComputeOutcome(job_id, output, reported, time.monotonic() - started, log)

    def reconstruct(
        self, context: dg.AssetExecutionContext, scan: str, options: ReconOptions
    ) -> ComputeOutcome:
        relative = PurePosixPath(scan)
        out_dir = Path(self.scratch_root) / relative.parent
        output = (relative.parent / f"rec{relative.stem}").as_posix()
        args = [str(Path(self.raw_root) / relative), str(out_dir), "--options", options.to_json()]
        return self._run(context, "recon", args, output)

    def build_pyramid(self, context: dg.AssetExecutionContext, tiff_folder: str) -> ComputeOutcome:
        source = Path(self.scratch_root) / tiff_folder
        output = f"{tiff_folder}.zarr"
        return self._run(
            context, "pyramid", [str(source), str(Path(self.scratch_root) / output)], output
        )

    def run_payload(self, context: dg.AssetExecutionContext, job: PayloadJob) -> ComputeOutcome:
        return self._run(context, job.step, self.payload_arguments(job), job.output)

    def run_batch(self, context: dg.AssetExecutionContext, job: BatchJob) -> ComputeOutcome:
        self.facility_path(job.output_endpoint, job.output)  # a bad one is refused before the job
        job_id, job_dir = self._job(job.name)
        started = time.monotonic()
        description = f"{self.facility} batch job {job_id}"
        run_logged(context, ["bash", "-c", job.script()], job_dir, description)
        log = dg.MetadataValue.path(str(job_dir / STDERR_LOG))
        return ComputeOutcome(job_id, job.output, {}, time.monotonic() - started, log)

    def checksums(self, context: StepContext, endpoint: str, relative_path: str) -> RemoteChecksums:
        target = self.facility_path(endpoint, relative_path)
        job_id, job_dir = self._job("hash")
        description = f"{self.facility} hash job {job_id}"
        stdout = run_logged(
            context, [self.python, "-m", "bl832_assets", "hash", target], job_dir, description
        )
        return read_answer(stdout.read_text(), job_id, f"sha256 by {description}")
