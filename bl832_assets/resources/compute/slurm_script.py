"""The batch script a NERSC job runs, rendered from a template kept in settings.

The template is plain text with ``$name`` placeholders (``string.Template``), so an operator can
change account, QoS, constraint or the container line without touching code; placeholders it
does not know (``$HOME``, ``$SLURM_JOB_ID``) are left for bash. A job runs in ``$jobs_root``:
the payload writes its Pipes messages there under a relative name. ``$volumes`` mounts every
folder a job may touch (raw, scratch, jobs and every endpoint root the facility can hash) at
the same path inside the container, so a path means the same inside and out.

A batch job (``BatchJob``: upstream's own scripts, on the node the beamline asks for) has no
template: its header comes from the job's Slurm values and its body is its commands, run on
the node itself, as upstream's scripts load their own modules.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from string import Template

from bl832_assets.resources.compute.base import BatchJob

DEFAULT_TEMPLATE = """#!/bin/bash
#SBATCH --job-name=bl832-$step
#SBATCH --account=$account
#SBATCH --qos=$qos
#SBATCH --constraint=$constraint
#SBATCH --time=$time_limit
#SBATCH --nodes=1
#SBATCH --output=$jobs_root/$tag-%j.out
#SBATCH --error=$jobs_root/$tag-%j.err
set -euo pipefail
cd $jobs_root
$pipes_env
podman-hpc run --rm -e DAGSTER_PIPES_CONTEXT -e DAGSTER_PIPES_MESSAGES \\
  $volumes --workdir $jobs_root $image $command
"""


def export_lines(env: Mapping[str, str]) -> str:
    """``export`` lines that hand the Dagster Pipes bootstrap variables to the payload."""
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in env.items())


def volume_options(folders: Iterable[str]) -> str:
    """``--volume`` options mounting each folder at its own path, each once."""
    return " ".join(f"--volume {shlex.quote(f)}:{shlex.quote(f)}" for f in sorted(set(folders)))


def render(template: str, *, command: Sequence[str], env: Mapping[str, str], **values: str) -> str:
    """The script for one job: ``command`` quoted for bash, ``env`` exported before it."""
    return Template(template).safe_substitute(
        values, command=shlex.join(command), pipes_env=export_lines(env)
    )


def render_batch(job: BatchJob, *, tag: str, jobs_root: str) -> str:
    """The script for a batch job: its Slurm header (``--gpus`` only when asked for), run in
    ``jobs_root`` with its output and error files there, where failures are read from, as the
    template's are; then its commands."""
    slurm = job.slurm
    header = [
        f"--job-name={job.name}",
        f"--account={slurm['account']}",
        f"--qos={slurm['qos']}",
        f"--constraint={slurm['constraint']}",
        f"--time={slurm['time_limit']}",
        "--nodes=1",
        *([f"--gpus={slurm['gpus']}"] if "gpus" in slurm else []),
        f"--chdir={jobs_root}",
        f"--output={jobs_root}/{tag}-%j.out",
        f"--error={jobs_root}/{tag}-%j.err",
    ]
    lines = ["#!/bin/bash", *(f"#SBATCH {option}" for option in header)]
    return "\n".join([*lines, job.script()])
