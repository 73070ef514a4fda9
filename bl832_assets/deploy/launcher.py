"""dagster-celery's run launcher with what a 24/7 site needs on top (deploy/dagster.yaml names
it; its config keys are the stock ``CeleryRunLauncher``'s plus ``worker_answer_seconds``).

- **Routing.** A run that arrives without a ``dagster-celery/queue`` tag (a backfill, a run
  launched from the UI or a schedule) is tagged by ``bl832_assets.queues`` before it is sent,
  so it reaches a worker that can do its kind of work, and the UI shows where it went.
- **A vanished worker.** The stock health check reads the task's state from the result
  backend. A worker killed with SIGKILL, or a host that dies, never writes another state, so
  the task stays STARTED and run monitoring would wait for ``max_runtime_seconds``. Here the
  worker that took the run (its name is in the STARTED state) is asked whether it still has
  the task; when it does not answer, or no longer has it, twice in a row, the worker is
  reported FAILED and run monitoring fails the run (run_retries then retries it).
"""

from __future__ import annotations

from typing import Any

import dagster as dg

# The run launcher interface is not exported by `dagster`; dagster-celery imports it the same way.
from dagster._core.launcher import (
    CheckRunHealthResult,
    LaunchRunContext,
    ResumeRunContext,
    WorkerStatus,
)
from dagster_celery.launcher import CeleryRunLauncher
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

from bl832_assets.queues import QUEUE_TAG, queue_for_assets
from bl832_assets.settings import load_settings

MISSES_BEFORE_FAILING = 2
"""Consecutive health checks without the worker confirming the task before the run fails."""


class SiteCeleryRunLauncher(CeleryRunLauncher):
    """Launches each run as a Celery task on the queue of its kind of work, and tells run
    monitoring when the worker running it is gone."""

    def __init__(self, worker_answer_seconds: float = 5.0, **config: Any) -> None:
        super().__init__(**config)
        self.worker_answer_seconds = worker_answer_seconds
        self._misses: dict[str, int] = {}

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            **super().config_type(),
            "worker_answer_seconds": dg.Field(
                float,
                is_required=False,
                default_value=5.0,
                description="Seconds the worker running a run has to confirm it still has "
                "the task, at each run monitoring poll.",
            ),
        }

    def launch_run(self, context: LaunchRunContext) -> None:
        super().launch_run(context._replace(dagster_run=self._routed(context.dagster_run)))

    def resume_run(self, context: ResumeRunContext) -> None:
        super().resume_run(context._replace(dagster_run=self._routed(context.dagster_run)))

    def _routed(self, run: dg.DagsterRun) -> dg.DagsterRun:
        if QUEUE_TAG in run.tags:
            return run
        queue = queue_for_assets(load_settings(), run.asset_selection or ())
        self._instance.add_run_tags(run.run_id, {QUEUE_TAG: queue})
        return self._instance.get_run_by_id(run.run_id) or run

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        health = super().check_run_worker_health(run)
        if health.status != WorkerStatus.RUNNING:
            self._misses.pop(run.run_id, None)
            return health
        task = self.celery.AsyncResult(run.tags[DAGSTER_CELERY_TASK_ID_TAG])
        started = task.info if isinstance(task.info, dict) else {}
        worker = started.get("hostname")
        if not worker:
            return health
        answer = self.celery.control.inspect(
            destination=[worker], timeout=self.worker_answer_seconds
        ).query_task(task.id)
        if answer and task.id in answer.get(worker, {}):
            self._misses.pop(run.run_id, None)
            return health
        # It may have finished between the two questions.
        again = super().check_run_worker_health(run)
        if again.status != WorkerStatus.RUNNING:
            self._misses.pop(run.run_id, None)
            return again
        misses = self._misses[run.run_id] = self._misses.get(run.run_id, 0) + 1
        reason = (
            f"Celery worker {worker} did not answer within {self.worker_answer_seconds:g} s"
            if not answer
            else f"Celery worker {worker} no longer runs task {task.id} (restarted?)"
        )
        if misses < MISSES_BEFORE_FAILING:
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"{reason}; asking again")
        del self._misses[run.run_id]
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"{reason}; pid {started.get('pid')} ran the run"
        )
