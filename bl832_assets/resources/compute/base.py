"""What the asset graph asks of an HPC facility: run a payload command next to the data.

Assets only see this interface, so the same asset code drives a subprocess on a laptop, a
Slurm job through the Superfacility API or a Globus Compute function. Hashing is asked of it
too: storage the orchestrator cannot see can only be measured by a job of its facility.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg
from pydantic import Field

from bl832_assets.science.options import ReconOptions

StepContext = dg.OpExecutionContext | dg.AssetExecutionContext
"""Where a facility job is started from: an asset, or an op such as retention's prune."""


class ComputeFailed(dg.Failure):
    """A payload job ended badly; the description carries the tail of its error output."""


@dataclass(frozen=True)
class ComputeOutcome:
    """A finished payload job: where its output is and what the payload reported about it."""

    job_id: str
    output: str  # relative to the facility's scratch endpoint
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


class ComputeResource(dg.ConfigurableResource, ABC):
    """A facility that reconstructs scans and builds pyramids where its copy of the scan is,
    and hashes the storage its jobs can see."""

    endpoint_roots: dict[str, str] = Field(
        default_factory=dict,
        description="Endpoint name → its root folder as this facility's jobs see it; only "
        "these endpoints can be hashed here.",
    )

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
    def checksums(self, context: StepContext, endpoint: str, relative_path: str) -> RemoteChecksums:
        """Hash every file at ``relative_path`` of ``endpoint`` in a job of this facility.

        Raises ``UnknownEndpoint`` for an endpoint not in ``endpoint_roots``, ``UnsafePath``
        for an absolute path or one with ``..`` (both before any job), and ``ComputeFailed``
        when the job fails, a missing path included (its message names the path)."""
