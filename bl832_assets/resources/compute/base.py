"""What the asset graph asks of an HPC facility: run a payload command next to the data.

Assets only see this interface, so the same asset code drives a subprocess on a laptop, a
Slurm job through the Superfacility API or a Globus Compute function. Hashing is asked of it
too: storage the orchestrator cannot see can only be measured by a job of its facility.

Any beamline's payload runs through it: a ``bl832`` command on endpoint paths (``PayloadJob``),
or, where a beamline's reconstruction is upstream's own scripts, a batch of shell commands on
a node of the beamline's choosing (``BatchJob``). The core learns no beamline's commands.
"""

from __future__ import annotations

import re
import shlex
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

import dagster as dg
from pydantic import Field

from bl832_assets.resources.transfer.errors import UnknownEndpoint
from bl832_assets.resources.transfer.paths import safe_relative_path
from bl832_assets.science.options import ReconOptions

StepContext = dg.OpExecutionContext | dg.AssetExecutionContext
"""Where a facility job is started from: an asset, or an op such as retention's prune."""

_JOB_NAME = re.compile(r"[A-Za-z0-9._-]+")
SLURM_REQUIRED = ("account", "qos", "constraint", "time_limit")
SLURM_OPTIONAL = ("gpus",)


class ComputeFailed(dg.Failure):
    """A payload job ended badly; the description carries the tail of its error output."""


@dataclass(frozen=True)
class ComputeOutcome:
    """A finished payload job: where its output is and what the payload reported about it."""

    job_id: str
    output: str  # relative to the endpoint written on (scratch, for reconstructions and pyramids)
    reported: Mapping[str, dg.MetadataValue]  # what the payload sent back through Pipes
    seconds: float
    # Where the job's own log is, for whoever must read it: a file here, a file at the
    # facility (``machine:/path``) or the service's record of the task.
    log: dg.MetadataValue


@dataclass(frozen=True)
class RemoteChecksums:
    """sha256 and size of every file at a path, measured by a facility job just now, keyed as
    ``TransferResource.checksums`` keys them; ``how`` says which job, for the audit trail."""

    files: dict[str, str]
    sizes: dict[str, int]
    job_id: str
    how: str


@dataclass(frozen=True)
class PayloadJob:
    """One ``bl832 <step> <inputs...> <output> <options...>`` job, its paths given by endpoint
    so that each facility passes them as its own jobs see them."""

    step: str  # the payload command: "integrate", "ptycho"
    inputs: tuple[tuple[str, str], ...]  # (endpoint, relative path) of each input, in order
    output_endpoint: str  # the endpoint the outputs are written on
    output: str  # output folder, relative to ``output_endpoint``
    options: tuple[str, ...] = ()  # further command-line options, after the paths


@dataclass(frozen=True)
class BatchJob:
    """Shell commands run in order on one node, for a beamline whose reconstruction is
    upstream's own scripts rather than a ``bl832`` command. Paths in ``commands`` are already
    the facility's (``ComputeResource.facility_path``); ``slurm`` chooses the node where the
    facility has a batch queue, and is checked here because its values become script lines."""

    name: str  # the job's name, e.g. "ptychocam_<stem>": letters, digits, ".", "_", "-"
    commands: tuple[tuple[str, ...], ...]  # each run by bash under ``set -euo pipefail``
    output_endpoint: str
    output: str  # what the job writes, relative to ``output_endpoint``
    slurm: Mapping[str, str]  # account, qos, constraint, time_limit, and optionally gpus

    def __post_init__(self) -> None:
        if not _JOB_NAME.fullmatch(self.name):
            raise ValueError(f"batch job name {self.name!r}: only letters, digits, '.', '_', '-'")
        if not self.commands or not all(self.commands):
            raise ValueError(f"batch job {self.name}: every command needs a program")
        missing = [key for key in SLURM_REQUIRED if key not in self.slurm]
        unknown = sorted(set(self.slurm) - {*SLURM_REQUIRED, *SLURM_OPTIONAL})
        if missing or unknown:
            raise ValueError(f"batch job {self.name}: slurm lacks {missing}, has unknown {unknown}")
        for key, value in self.slurm.items():
            if not value or any(c.isspace() for c in value):
                raise ValueError(f"batch job {self.name}: slurm {key}={value!r} is not one word")

    def script(self) -> str:
        """The commands as a bash script body that stops at the first failing command."""
        return "\n".join(["set -euo pipefail", *(shlex.join(c) for c in self.commands), ""])


class ComputeResource(dg.ConfigurableResource, ABC):
    """A facility that reconstructs scans and builds pyramids where its copy of the scan is,
    runs other beamlines' payloads and batch jobs, and hashes the storage its jobs can see."""

    endpoint_roots: dict[str, str] = Field(
        default_factory=dict,
        description="Endpoint name → its root folder as this facility's jobs see it; only "
        "these endpoints can be hashed, read or written by payload and batch jobs here.",
    )

    def facility_path(self, endpoint: str, relative: str) -> str:
        """``relative`` of ``endpoint`` as this facility's jobs see it. Raises
        ``UnknownEndpoint`` for an endpoint not in ``endpoint_roots`` and ``UnsafePath`` for an
        absolute path or one with ``..``, so a bad path is refused before any job."""
        path = safe_relative_path(relative)
        root = self.endpoint_roots.get(endpoint)
        if root is None:
            raise UnknownEndpoint(endpoint, sorted(self.endpoint_roots))
        return str(PurePosixPath(root) / path)

    def payload_arguments(self, job: PayloadJob) -> list[str]:
        """The payload's arguments after its step: input paths, output folder, options."""
        inputs = [self.facility_path(endpoint, relative) for endpoint, relative in job.inputs]
        return [*inputs, self.facility_path(job.output_endpoint, job.output), *job.options]

    @abstractmethod
    def reconstruct(
        self, context: dg.AssetExecutionContext, scan: str, options: ReconOptions
    ) -> ComputeOutcome:
        """Reconstruct ``scan`` (relative to the facility's raw endpoint) into
        ``<folder>/rec<stem>/`` on its scratch endpoint."""

    @abstractmethod
    def build_pyramid(self, context: dg.AssetExecutionContext, tiff_folder: str) -> ComputeOutcome:
        """Turn ``tiff_folder`` (relative to scratch) into ``<tiff_folder>.zarr`` beside it."""

    @abstractmethod
    def run_payload(self, context: dg.AssetExecutionContext, job: PayloadJob) -> ComputeOutcome:
        """Run ``bl832 <job.step>`` on the job's paths, reporting through Pipes where the
        facility can; the outcome's ``output`` is ``job.output``. Paths are checked first."""

    @abstractmethod
    def run_batch(self, context: dg.AssetExecutionContext, job: BatchJob) -> ComputeOutcome:
        """Run the job's commands in order in one job; any failing command fails it with the
        tail of its error output. Nothing is reported (``reported`` is empty)."""

    @abstractmethod
    def checksums(self, context: StepContext, endpoint: str, relative_path: str) -> RemoteChecksums:
        """Hash every file at ``relative_path`` of ``endpoint`` in a job of this facility.

        Raises ``UnknownEndpoint`` for an endpoint not in ``endpoint_roots``, ``UnsafePath``
        for an absolute path or one with ``..`` (both before any job), and ``ComputeFailed``
        when the job fails, a missing path included (its message names the path)."""
