"""7.0.1.2's section of the site settings: the reconstruction each new scan gets.

Where it runs follows the NERSC backend, as every facility step does: with ``sfapi`` upstream's
tools (ptychocam, cdtools) run as a GPU Slurm job; with ``local`` the CPU engine (mPIE) runs
here. Both parameter sets are kept so that a run's config can change either.
"""

from __future__ import annotations

from pydantic import Field

from bl832_assets.beamlines.bl7012.params import GpuJobSettings, PieParams, PtychoRunConfig
from bl832_assets.settings_parts import Strict


class PtychographySettings(Strict):
    """Site defaults of a 7.0.1.2 reconstruction; a run's config overrides them per scan."""

    gpu: GpuJobSettings = Field(
        default_factory=GpuJobSettings, description="The Slurm side of the NERSC GPU job."
    )
    tools: PtychoRunConfig = Field(
        default_factory=PtychoRunConfig,
        description="Which of upstream's tools the GPU job runs, and their parameters.",
    )
    pie: PieParams = Field(
        default_factory=PieParams, description="The local CPU engine's parameters."
    )
