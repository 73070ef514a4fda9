"""A Pipes client for a payload that runs as a local process, keeping its logs like a batch job.

Dagster's ``PipesSubprocessClient`` reports only an exit code on failure; an operator needs the
reason, so this client keeps stdout and stderr in the job folder (as Slurm would) and puts the
tail of stderr into the failure. ``run_logged`` is that process handling without Pipes, for a
payload whose answer is what it prints (``bl832 hash``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import dagster as dg

from bl832_assets.resources.compute.base import ComputeFailed, StepContext

STDERR_TAIL_LINES = 20
STDOUT_LOG, STDERR_LOG = "stdout.log", "stderr.log"  # in the job's folder, as Slurm's files


def _tail(path: Path, lines: int) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def run_logged(
    context: StepContext,
    command: Sequence[str],
    job_dir: Path,
    description: str,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Run ``command`` in ``job_dir`` with its output kept there, as a batch job's would be;
    a non-zero exit is a ``ComputeFailed`` carrying the stderr tail. Returns the stdout log."""
    job_dir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = job_dir / STDOUT_LOG, job_dir / STDERR_LOG
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            list(command), env={**os.environ, **(env or {})}, stdout=out, stderr=err, cwd=job_dir
        )
        context.log.info(f"{description}: started process {process.pid} in {job_dir}")
        returncode = process.wait()
    if returncode != 0:
        tail = _tail(stderr_path, STDERR_TAIL_LINES)
        raise ComputeFailed(
            description=f"{description} exited with code {returncode}:\n{tail}",
            metadata={
                "exit_code": returncode,
                "stderr_tail": dg.MetadataValue.text(tail),
                "stderr_log": dg.MetadataValue.path(str(stderr_path)),
            },
            allow_retries=False,
        )
    return stdout_path


class ProcessPipesClient(dg.PipesClient):
    """Runs a command in a job folder and relays its Pipes messages to the asset."""

    def run(  # type: ignore[override]
        self,
        *,
        context: dg.AssetExecutionContext,
        command: Sequence[str],
        job_dir: Path,
        description: str,
        env: Mapping[str, str] | None = None,
        extras: Mapping[str, object] | None = None,
    ) -> dg.PipesClientCompletedInvocation:
        with dg.open_pipes_session(
            context=context,
            context_injector=dg.PipesTempFileContextInjector(),
            message_reader=dg.PipesTempFileMessageReader(),
            extras=extras,
        ) as session:
            run_logged(
                context,
                command,
                job_dir,
                description,
                {**(env or {}), **session.get_bootstrap_env_vars()},
            )
        return dg.PipesClientCompletedInvocation(session)
