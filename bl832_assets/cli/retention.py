"""``bl832 prune`` and ``bl832 restore``: the retention jobs run here, on the site's instance,
so what they do is recorded exactly as when the schedules run them (runs, observations,
checks, audit log)."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable

import dagster as dg

from bl832_assets.cli.site import site_instance
from bl832_assets.core.location import build_beamline_definitions
from bl832_assets.definitions import build_definitions
from bl832_assets.retention.jobs import prune_job_name
from bl832_assets.retention.plan import Action
from bl832_assets.retention.prune import Outcome, size_text
from bl832_assets.settings import Settings, load_settings

SILENT_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
"""These commands print their own lines, and a failure as one line of its own; Dagster's
console log (stack traces included) stays in the run, in the UI."""


def prune(location: str | None, dry_run: bool, settings: Settings | None = None) -> int:
    """Prune one or every location; 0 unless a prune itself broke."""
    settings = settings or load_settings()
    locations = [location] if location else list(settings.retention_days)
    unknown = [name for name in locations if name not in settings.retention_days]
    if unknown:
        pruned = ", ".join(settings.retention_days) or "none"
        print(
            f"bl832 prune: {unknown[0]} is not pruned (pruned locations: {pruned})", file=sys.stderr
        )
        return 2
    instance = site_instance(settings)
    pruning = _pruning_locations(settings)
    outcomes: list[Outcome] = []
    broken = []
    for endpoint in locations:
        op = f"{prune_job_name(endpoint)}_copies"
        result = (
            pruning(endpoint)
            .resolve_job_def(prune_job_name(endpoint))
            .execute_in_process(
                instance=instance,
                run_config={**SILENT_CONSOLE, "ops": {op: {"config": {"dry_run": dry_run}}}},
                tags={"bl832/trigger": "cli"},
                raise_on_error=False,
            )
        )
        if not result.success:
            broken.append(f"{endpoint}: {_failure(result)} (run {result.run_id})")
            continue
        found = [_outcome(o) for o in result.output_for_node(op)]
        outcomes += found
        for o in found:
            print(o.line())
    counts = Counter(o.action for o in outcomes)
    freed = sum(o.size_bytes or 0 for o in outcomes if o.action is Action.DELETE)
    verb = "would delete" if dry_run else "deleted"
    print(
        f"prune: {counts[Action.DELETE]} {verb} ({size_text(freed)}), {counts[Action.KEEP]} kept, "
        f"{counts[Action.REFUSE]} refused at {len(locations) - len(broken)} location(s)"
        + ("; dry run: nothing was changed" if dry_run else "")
    )
    for line in broken:
        print(f"bl832 prune: failed at {line}", file=sys.stderr)
    if broken:
        print("Open the run in the UI (`make dev`) for the step's error and logs.", file=sys.stderr)
    return 1 if broken else 0


def _pruning_locations(settings: Settings) -> Callable[[str], dg.Definitions]:
    """The definitions holding an endpoint's prune job: its beamline's code location, or
    8.3.2's; each built once."""
    built: dict[str | None, dg.Definitions] = {}

    def holding(endpoint: str) -> dg.Definitions:
        owner = next((n for n, s in settings.beamlines.items() if endpoint in s.endpoints()), None)
        if owner not in built:
            built[owner] = (
                build_definitions(settings)
                if owner is None
                else build_beamline_definitions(settings, owner)
            )
        return built[owner]

    return holding


def restore(scan: str, location: str) -> int:
    settings = load_settings()
    instance = site_instance(settings)
    job = build_definitions(settings).resolve_job_def("restore_pruned_copy")
    result = job.execute_in_process(
        instance=instance,
        run_config={
            **SILENT_CONSOLE,
            "ops": {"restore_copy": {"config": {"scan": scan, "location": location}}},
        },
        tags={"bl832/trigger": "cli", "bl832/scan": scan},
        raise_on_error=False,
    )
    if not result.success:
        print(f"bl832 restore: {_failure(result)}", file=sys.stderr)
        return 1
    for line in result.output_for_node("restore_copy"):
        print(f"restored {line}, verified against its record")
    return 0


def _outcome(values: dict[str, object]) -> Outcome:
    return Outcome(**{**values, "action": Action(str(values["action"]))})  # type: ignore[arg-type]


def _failure(result: dg.ExecuteInProcessResult) -> str:
    """The reason a run failed, without Dagster's wrapper or the exception's module path."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            cause = error.cause or error
            first = cause.message.strip().splitlines()[0]
            return " ".join(first.split(": ", 1)[-1].split())[:500]
    return "the run failed"
