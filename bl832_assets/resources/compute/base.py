"""What the asset graph asks of an HPC facility: run a payload command next to the data.

Assets only see this interface, so the same asset code drives a subprocess on a laptop, a
Slurm job through the Superfacility API or a Globus Compute function.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

from bl832_assets.science.options import ReconOptions


class ComputeFailed(dg.Failure):
    """A payload job ended badly; the description carries the tail of its error output."""


@dataclass(frozen=True)
class ComputeOutcome:
    """A finished payload job: where its output is and what the payload reported about it."""

    job_id: str
    output: str  # relative to the facility's scratch endpoint
    reported: Mapping[str, dg.MetadataValue]  # what the payload sent back through Pipes
    seconds: float


class ComputeResource(dg.ConfigurableResource, ABC):
    """A facility that reconstructs scans and builds pyramids where its copy of the scan is."""

    @abstractmethod
    def reconstruct(
        self, context: dg.AssetExecutionContext, scan: str, options: ReconOptions
    ) -> ComputeOutcome:
        """Reconstruct ``scan`` (relative to the facility's raw endpoint) into
        ``<folder>/rec<stem>/`` on its scratch endpoint."""

    @abstractmethod
    def build_pyramid(self, context: dg.AssetExecutionContext, tiff_folder: str) -> ComputeOutcome:
        """Turn ``tiff_folder`` (relative to scratch) into ``<tiff_folder>.zarr`` beside it."""
