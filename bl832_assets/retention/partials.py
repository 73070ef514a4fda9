"""Sweep of stale ``.partial-*`` files: the hidden temporaries of copies that were killed before
they could clean up after themselves (a SIGKILL, a lost node, a power cut).

Why: a copy writes into a hidden partial file and renames it into place only once verified, and
removes it on any error it lives to see. A killed copy leaves it behind, invisible to sensors
and readers but not to the quota, and a raw scan's partial is gigabytes. Once a day every
endpoint this machine can see is walked and partials nobody has touched for ``max_age_hours``
are removed. The schedule starts RUNNING: a clean-up that must be switched on is off when the
quota runs out.

Which clock: a live copy writes its partial continuously, so the partial's own times say whether
anyone still holds it. Its mtime alone is not enough: just before the rename, ``sync_file`` stamps
the partial with the *source's* mtime (to keep the acquisition time), so for the seconds of the
final fsync a live partial's mtime can be days old. That stamp sets its ctime to now, as every
write does, and ctime cannot be set back; the later of the two is the time of last use.

What is never touched: files whose names are not partial names (``copying.is_partial``);
anything that is not a regular file, such as a symlink named like a partial; and anything behind
a symlinked folder, which may lead out of the endpoint's root.
"""

import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from bl832_assets.resources.transfer.copying import is_partial
from bl832_assets.settings import Settings

CRON = "45 4 * * *"
"""Daily, at night, when few copies are running."""


@dataclass(frozen=True)
class EndpointSweep:
    """What the sweep removed from one endpoint, and what it could not remove."""

    endpoint: str
    removed: tuple[Path, ...] = ()
    bytes: int = 0
    errors: tuple[str, ...] = ()

    @property
    def files(self) -> int:
        return len(self.removed)


def last_used(info: os.stat_result) -> float:
    """When a file was last written or stamped, as the module docstring explains."""
    return max(info.st_mtime, info.st_ctime)


def _stale_partials(
    root: Path, cutoff: float, errors: list[str]
) -> Iterator[tuple[Path, os.stat_result]]:
    """Regular partial files under ``root`` last used before ``cutoff``, without entering
    symlinked folders; problems reading a folder go to ``errors``."""
    for folder, _, names in os.walk(root, onerror=lambda exc: errors.append(str(exc))):
        for name in names:
            if not is_partial(name):
                continue
            path = Path(folder, name)
            try:
                info = path.lstat()
            except FileNotFoundError:  # its copy finished or cleaned up meanwhile
                continue
            if stat.S_ISREG(info.st_mode) and last_used(info) < cutoff:
                yield path, info


def sweep_endpoint(endpoint: str, root: Path, cutoff: float) -> EndpointSweep:
    """Remove the partial files under ``root`` last used before ``cutoff`` (epoch seconds)."""
    if not root.is_dir():
        return EndpointSweep(endpoint)
    removed: list[Path] = []
    size = 0
    errors: list[str] = []
    for path, info in _stale_partials(root, cutoff, errors):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            errors.append(f"{path}: {exc}")
            continue
        removed.append(path)
        size += info.st_size
    return EndpointSweep(endpoint, tuple(removed), size, tuple(errors))


def build_partial_sweep(
    settings: Settings, max_age_hours: float | None = None
) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    """The partial-file sweep over every endpoint visible here, and its daily schedule; the
    age limit is the site's ``retention.partial_max_age_hours`` unless given."""
    if max_age_hours is None:
        max_age_hours = settings.retention.partial_max_age_hours
    if max_age_hours <= 0:
        raise ValueError(f"max_age_hours must be > 0, got {max_age_hours}: 0 kills live copies")
    endpoints = [name for name in settings.endpoints if settings.visible(name)]

    @dg.op(description=f"Remove partial files untouched for {max_age_hours:g} h.")
    def sweep_partials(context: dg.OpExecutionContext) -> list[EndpointSweep]:
        cutoff = time.time() - max_age_hours * 3600
        sweeps = [sweep_endpoint(name, settings.root(name), cutoff) for name in endpoints]
        for sweep in sweeps:
            for path in sweep.removed:
                context.log.info(f"removed stale partial {path}")
            for error in sweep.errors:
                context.log.error(f"{sweep.endpoint}: {error}")
        metadata: dict[str, Any] = {
            "files_removed": sum(s.files for s in sweeps),
            "bytes_removed": sum(s.bytes for s in sweeps),
            "by_endpoint": dg.MetadataValue.json(
                {s.endpoint: {"files": s.files, "bytes": s.bytes} for s in sweeps}
            ),
            "max_age_hours": max_age_hours,
        }
        failed = [s for s in sweeps if s.errors]
        if failed:
            metadata["errors"] = dg.MetadataValue.json({s.endpoint: s.errors for s in failed})
            raise dg.Failure(
                description="could not sweep "
                + ", ".join(f"{s.endpoint} ({len(s.errors)} errors)" for s in failed),
                metadata=metadata,
            )
        context.add_output_metadata(metadata)
        return sweeps

    @dg.job(
        name="sweep_partial_files",
        description="Remove hidden partial files left by killed copies on visible endpoints.",
        executor_def=dg.in_process_executor,
    )
    def sweep_partial_files() -> None:
        sweep_partials()

    schedule = dg.ScheduleDefinition(
        name="sweep_partial_files_daily",
        job=sweep_partial_files,
        cron_schedule=CRON,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Daily, so partials of killed copies never pile up against a quota.",
    )
    return sweep_partial_files, schedule
