"""Running a dispatched scan in this process against a persistent instance, and summarising it.

The CLI (``bl832 process``, ``bl832 demo``) uses this instead of the daemon: the run is the same
run the sensor would have requested, recorded in the same instance, so it shows in the UI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import dagster as dg


@dataclass(frozen=True)
class AssetOutcome:
    asset: str
    status: str  # materialized | failed | skipped
    location: str
    size_bytes: int | None
    seconds: float | None
    checks: dict[str, bool] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class RunReport:
    run_id: str
    partition: str
    outcomes: list[AssetOutcome]

    @property
    def succeeded(self) -> bool:
        return all(o.status == "materialized" and all(o.checks.values()) for o in self.outcomes)

    def failures(self) -> list[str]:
        lines = [
            f"{o.asset}: {o.error or o.status}" for o in self.outcomes if o.status != "materialized"
        ]
        lines += [
            f"{o.asset}: check {name} failed"
            for o in self.outcomes
            for name, passed in o.checks.items()
            if not passed
        ]
        return lines


QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""Run config for runs started from the terminal: every event still goes to the instance, the
terminal only hears about problems."""


def execute(
    defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest
) -> RunReport:
    """Materialize a requested scan's assets (and their checks), in this process."""
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        run_config=QUIET_CONSOLE,
        instance=instance,
        partition_key=request.partition_key,
        asset_selection=request.asset_selection,
        tags=request.tags,
        raise_on_error=False,
    )
    return summarise(result, request.asset_selection or [])


class _ErrorInfo(Protocol):
    """The part of Dagster's serialized error that a one-line reason needs."""

    cls_name: str | None
    message: str
    cause: _ErrorInfo | None


def _reason(error: _ErrorInfo | None) -> str:
    """The first line of what actually went wrong, not of Dagster's wrapper around it."""
    while (
        error is not None
        and error.cause is not None
        and "DagsterExecution" in (error.cls_name or "")
    ):
        error = error.cause
    if error is None:
        return "failed"
    first = error.message.strip().splitlines()[0]
    if error.cls_name == "Failure":  # our own description says everything; drop the wrapper
        return first.removeprefix("dagster._core.definitions.events.Failure: ")
    return f"{error.cls_name}: {first}"


def summarise(result: dg.ExecuteInProcessResult, selected: list[dg.AssetKey]) -> RunReport:
    metadata: dict[dg.AssetKey, dict[str, object]] = {}
    checks: dict[dg.AssetKey, dict[str, bool]] = {}
    errors: dict[str, str] = {}
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            mat = event.materialization
            metadata[mat.asset_key] = {k: v.value for k, v in mat.metadata.items()}
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            checks.setdefault(evaluation.asset_key, {})[evaluation.check_name] = evaluation.passed
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE and event.step_key:
            errors[event.step_key] = _reason(event.step_failure_data.error)
    outcomes = []
    for key in sorted(selected, key=lambda k: k.to_user_string()):
        found = metadata.get(key)
        step = "__".join(key.path)
        status = "materialized" if found is not None else "failed" if step in errors else "skipped"
        size = found.get("size_bytes") if found else None
        seconds = found.get("seconds") if found else None
        outcomes.append(
            AssetOutcome(
                asset=key.to_user_string(),
                status=status,
                location=str(found.get("path") or found.get("pid") or "") if found else "",
                size_bytes=int(size) if isinstance(size, int | float) else None,
                seconds=float(seconds) if isinstance(seconds, int | float) else None,
                checks=checks.get(key, {}),
                error=errors.get(step, ""),
            )
        )
    return RunReport(result.run_id, result.dagster_run.tags.get("dagster/partition", ""), outcomes)
