"""What a 7.0.1.2 reconstruction is asked to do: upstream's cdtools and ptychocam parameter sets,
the GPU job that runs them at NERSC, and the local engine's parameters, as validated data.

Pydantic models without Dagster, so the payload and the job scripts use them as they are and the
Dagster layer wraps them in ``dg.Config``. Defaults are upstream's (``move_recon.py`` and
``ptycho_jobscript.py`` of splash_flows). Where the two disagree the flow's value is taken, as
it is what reached the job: ``oversampling_factor`` 2 (the job script's own 1 was always
overridden). One deliberate departure, so the defaults run: ptychocam is on (upstream defaults
both tools off, so a run that set neither reconstructed nothing).

The command lines are upstream's, fixed: cdtools takes its twelve values positionally, booleans
and "none" written as the literals ``True``/``False``/``None`` its script parses; ptychocam takes
``-r``/``-T`` only when a refine period is set (upstream's rendering raised KeyError then) and
``-M`` for the mask. The CXI path is the full NERSC path: upstream passed only the basename.
"""

from __future__ import annotations

import re
import shlex
import uuid
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

NONE_WORDS = frozenset({"none", "null", ""})
DEFAULT_SCRIPTS_ROOT = "/global/cfs/cdirs/als/data_mover/ptycho/cosmic_reconstruction_at_nersc"
_UNSAFE_IN_NAMES = re.compile(r"[^A-Za-z0-9._-]+")
_TIME_LIMIT = r"^(\d+-)?\d{1,3}:[0-5]\d:[0-5]\d$"  # Slurm's [days-]hours:minutes:seconds


def _none_word(value: object) -> object:
    """The words "None", "none", "null" or "" from settings or the launchpad mean no value."""
    return None if isinstance(value, str) and value.strip().lower() in NONE_WORDS else value


OrNone = BeforeValidator(_none_word)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def literal(value: bool | int | float | str | None) -> str:
    """A value as upstream's scripts read it: ``True``/``False``/``None`` as Python prints them,
    whole floats without ``.0`` (``0``, not ``0.0``), others as Python's shortest repr."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class CdtoolsParams(_Frozen):
    """cdtools' FancyPtycho run, in the order its NERSC script takes them positionally."""

    run_split_reconstructions: bool = Field(
        default=False, description="Also reconstruct two halves of the data (for FRC)."
    )
    n_modes: int = Field(default=1, ge=1, description="Incoherent probe modes.")
    oversampling_factor: int = Field(default=2, ge=1, description="Probe oversampling.")
    propagation_distance: float = Field(
        default=50e-6, description="Probe propagation for its initial guess, metres."
    )
    simulate_probe_translation: bool = Field(
        default=True, description="Model sub-pixel probe translation."
    )
    n_init_rounds: int = Field(default=1, ge=0, description="Initial rounds before the final.")
    n_init_iter: int = Field(default=50, ge=0, description="Iterations per initial round.")
    n_final_iter: int = Field(default=50, ge=0, description="Iterations of the final round.")
    translation_randomization: float = Field(
        default=0, ge=0, description="Random jitter added to the positions, pixels."
    )
    probe_initialization: Annotated[str | None, OrNone] = Field(
        default=None, description="Probe to start from; None: cdtools' own guess."
    )
    init_background: bool = Field(default=False, description="Start with a fitted background.")
    probe_support_radius: Annotated[float | None, OrNone] = Field(
        default=None, gt=0, description="Probe support radius, pixels; None: no support."
    )

    def arguments(self) -> list[str]:
        """The twelve positional values, in upstream's order."""
        return [literal(value) for value in self.model_dump().values()]


class PtychocamParams(_Frozen):
    """ptychocam's run."""

    n_iter: int = Field(default=500, ge=1, description="Iterations (-i).")
    period_illu_refine: int = Field(
        default=0, ge=0, description="Refine the illumination every n iterations (-r); 0: never."
    )
    period_bg_refine: int = Field(
        default=0, ge=0, description="Refine the background every n iterations (-T); 0: never."
    )
    use_illu_mask: bool = Field(default=False, description="Mask the illumination (-M).")

    def options(self) -> list[str]:
        options = ["-i", str(self.n_iter)]
        if self.period_illu_refine:
            options += ["-r", str(self.period_illu_refine)]
        if self.period_bg_refine:
            options += ["-T", str(self.period_bg_refine)]
        if self.use_illu_mask:
            options.append("-M")
        return options


class PtychoRunConfig(_Frozen):
    """One run's choice of tools and their parameters (upstream's flow parameters)."""

    do_cdtools: bool = Field(default=False, description="Run cdtools.")
    do_ptychocam: bool = Field(default=True, description="Run ptychocam.")
    cdtools: CdtoolsParams = CdtoolsParams()
    ptychocam: PtychocamParams = PtychocamParams()


class GpuJobSettings(_Frozen):
    """The Slurm side, from the site's settings: one GPU node at NERSC."""

    account: str = Field(default="als_g", description="NERSC project charged (GPU hours).")
    qos: str = Field(default="regular", description="Slurm QoS.")
    constraint: str = Field(default="gpu", description="Slurm node constraint.")
    gpus: int = Field(default=1, ge=1, le=4, description="GPUs (a Perlmutter node has 4).")
    time_limit: str = Field(
        default="04:00:00", pattern=_TIME_LIMIT, description="Wall-clock limit, [D-]HH:MM:SS."
    )
    cdtools_script: str = Field(
        default=f"{DEFAULT_SCRIPTS_ROOT}/c_cdtools/cdtools_reconstruction.sh",
        description="cdtools' shell script at NERSC.",
    )
    ptychocam_script: str = Field(
        default=f"{DEFAULT_SCRIPTS_ROOT}/c_ptychocam/ptychocam_reconstruction.sh",
        description="ptychocam's shell script at NERSC.",
    )


def _absolute(cxi_path: str) -> str:
    if not PurePosixPath(cxi_path).is_absolute():
        raise ValueError(f"{cxi_path}: the job needs the CXI file's full NERSC path")
    return cxi_path


def cdtools_command(script: str, cxi_path: str, params: CdtoolsParams) -> list[str]:
    """``<script> <cxi> <the twelve values>``."""
    return [script, _absolute(cxi_path), *params.arguments()]


def ptychocam_command(script: str, cxi_path: str, params: PtychocamParams) -> list[str]:
    """``<script> -i N [-r p] [-T p] [-M] <cxi>``."""
    return [script, *params.options(), _absolute(cxi_path)]


def job_commands(
    run: PtychoRunConfig, settings: GpuJobSettings, cxi_path: str
) -> dict[str, list[str]]:
    """The command of each tool the run asks for, by tool name."""
    commands = {}
    if run.do_cdtools:
        commands["cdtools"] = cdtools_command(settings.cdtools_script, cxi_path, run.cdtools)
    if run.do_ptychocam:
        commands["ptychocam"] = ptychocam_command(
            settings.ptychocam_script, cxi_path, run.ptychocam
        )
    if not commands:
        raise ValueError("the run asks for neither cdtools nor ptychocam")
    return commands


def job_script_name(cxi_path: str, tool: str) -> str:
    """``<tool>_<scan stem>_<12 hex>.sh``: no spaces or colons (upstream named scripts by the
    local time, with both), and unique however many jobs start in one second."""
    stem = _UNSAFE_IN_NAMES.sub("_", PurePosixPath(cxi_path).stem).strip("_") or "scan"
    return f"{_UNSAFE_IN_NAMES.sub('_', tool)}_{stem}_{uuid.uuid4().hex[:12]}.sh"


def render_job_script(
    settings: GpuJobSettings, command: list[str], job_name: str, logs: str | None = None
) -> str:
    """The batch script: upstream's GPU header (one node) and the command, quoted for bash.
    With ``logs`` (a NERSC folder), stdout and stderr go to ``<logs>/<job_name>-<job id>.out``
    and ``.err``, where the compute resource reads a failed job's reason from."""
    header = [
        "#!/bin/bash",
        f"#SBATCH --job-name={job_name}",
        f"#SBATCH --constraint={settings.constraint}",
        f"#SBATCH --gpus={settings.gpus}",
        f"#SBATCH --time={settings.time_limit}",
        "#SBATCH --nodes=1",
        f"#SBATCH --qos={settings.qos}",
        f"#SBATCH --account={settings.account}",
    ]
    if logs is not None:
        header += [
            f"#SBATCH --output={logs}/{job_name}-%j.out",
            f"#SBATCH --error={logs}/{job_name}-%j.err",
        ]
    return "\n".join([*header, shlex.join(command), ""])


class PieParams(_Frozen):
    """The local CPU engine (mPIE, ``reconstruct``): a fixed number of iterations, seeded."""

    iterations: int = Field(default=100, ge=1, description="Passes over every position.")
    object_step: float = Field(
        default=0.5, gt=0, le=1, description="rPIE's alpha for the object: smaller is bolder."
    )
    probe_step: float = Field(
        default=1.0, gt=0, le=1, description="rPIE's alpha for the probe (1: ePIE's step)."
    )
    probe_start: int = Field(
        default=0,
        ge=0,
        description="Iterations on the object alone before the probe moves. 0 suits a guess "
        "with the wrong phase: the object would otherwise learn the probe's error and keep it.",
    )
    momentum: float = Field(
        default=0.7, ge=0, lt=1, description="mPIE's momentum after each pass; 0: plain rPIE."
    )
    seed: int = Field(default=0, description="Seeds the order positions are visited in.")
