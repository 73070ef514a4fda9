"""Where a step keeps the id of the facility job it started, so a retry finds it again.

The id goes into the run's tags right after submission, before any wait can fail. A retried
attempt of the same step (after a lost connection, a 5xx, a killed worker) reads it back and
waits for that job instead of running the payload a second time. A record from another run
(a re-execution copies its parent's tags) is ignored: that job may have ended badly, and the
re-execution asked for a fresh one. A record whose result has been read can be forgotten, so
the next request in the same step (hashing a path again, to measure it now) gets a fresh job.
"""

from __future__ import annotations

import re

from bl832_assets.resources.compute.base import StepContext


def record_key(context: StepContext, facility: str, step: str) -> str:
    """One run tag per facility, payload and op, so an op that runs both keeps both apart."""
    op_name = re.sub(r"[^A-Za-z0-9_.-]", "_", context.op_def.name)
    return f"bl832/{facility}-job.{step}.{op_name}"


def recorded_job(context: StepContext, key: str) -> str | None:
    """What an earlier attempt of this step in this run recorded under ``key``, if anything."""
    run = context.instance.get_run_by_id(context.run.run_id)
    value = run.tags.get(key) if run else None
    if not value:
        return None
    run_id, _, job = value.partition(":")
    return job if run_id == context.run.run_id else None


def record_job(context: StepContext, key: str, job: str) -> None:
    context.instance.add_run_tags(context.run.run_id, {key: f"{context.run.run_id}:{job}"})


def forget_job(context: StepContext, key: str) -> None:
    """Clear the record under ``key``: its job's answer was read and must not be reused."""
    context.instance.add_run_tags(context.run.run_id, {key: ""})
