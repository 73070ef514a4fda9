"""The Celery app the site's workers run: ``celery -A bl832_assets.deploy.celery_app worker
-Q <queue> -c <runs at once> -n <name>@%h``.

It serves the two tasks dagster-celery's run launcher sends (``execute_job``, ``resume_job``):
each executes a whole run in a pool process, with the in-process executor the code location
sets. Broker and result backend come from ``BL832_BROKER_URL`` and ``BL832_RESULT_BACKEND``;
``dagster-celery worker start`` would instead write them, password included, into a module
under DAGSTER_HOME. The worker also needs DAGSTER_HOME (the deployment's dagster.yaml), the
site's BL832_CONFIG and BL832_HOME, the code at the path the code server imports it from, and
the data mounts.
"""

from __future__ import annotations

import os

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task

WORKER_CONFIG = {
    # One run at a time per pool process: a run lasts minutes, so prefetching more would let
    # a busy worker hold runs another worker could start now.
    "worker_prefetch_multiplier": 1,
    # The task is acknowledged when a worker takes it. Acknowledged late, a task whose worker
    # died would be delivered again, and that second run worker would be ignored by Dagster
    # as a duplicate while its success hid the crash from run monitoring.
    "task_acks_late": False,
    "broker_connection_retry_on_startup": True,
}


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set (see deploy/bl832.env.example)")
    return value


app = make_app(
    app_args={
        "broker": _required("BL832_BROKER_URL"),
        "backend": _required("BL832_RESULT_BACKEND"),
        "include": [],
        "config_source": WORKER_CONFIG,
    }
)
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)
