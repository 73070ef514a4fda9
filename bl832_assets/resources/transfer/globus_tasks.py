"""Submitting a Globus task exactly once and waiting until it truly succeeded.

Globus de-duplicates submissions by ``submission_id``: resubmitting an id returns the task it
started (reply code ``Duplicate``) instead of starting another. Callers derive the id from what
the step is doing, so every attempt of a step meets the same task. A task that already ended
FAILED would be returned forever, so the next id of a deterministic chain (uuid5 of the
previous one) is tried; attempts of one step walk the same chain and meet the same tasks.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import globus_sdk

from bl832_assets.resources.transfer.globus_errors import GlobusTaskFailed

NAMESPACE = uuid.UUID("6f1c3d0e-8b1f-4c59-9a43-832832832832")
_MAX_FAILED_PREDECESSORS = 20  # bound on the submission-id chain a step may walk

Payload = globus_sdk.TransferData | globus_sdk.DeleteData


@dataclass(frozen=True)
class TaskScope:
    """What a task acts on, named in its errors."""

    source: str
    destination: str
    relative_path: str

    def failed(self, task: dict[str, Any], problem: str) -> GlobusTaskFailed:
        return GlobusTaskFailed(task, self.source, self.destination, self.relative_path, problem)


def submit_once(
    client: globus_sdk.TransferClient,
    submit: Callable[[Payload], globus_sdk.GlobusHTTPResponse],
    data: Payload,
    scope: TaskScope,
) -> dict[str, Any]:
    """Submit ``data`` (which carries its submission id), or find the task an earlier attempt
    submitted; tasks that ended FAILED are stepped over. Returns the task document."""
    for _ in range(_MAX_FAILED_PREDECESSORS):
        reply = submit(data)
        task = client.get_task(reply["task_id"]).data
        if reply["code"] != "Duplicate" or task["status"] != "FAILED":
            return task
        data["submission_id"] = str(uuid.uuid5(NAMESPACE, data["submission_id"]))
    raise scope.failed(task, f"the last {_MAX_FAILED_PREDECESSORS} attempts all failed")


def wait_for_success(
    client: globus_sdk.TransferClient,
    task: dict[str, Any],
    scope: TaskScope,
    *,
    poll_seconds: float,
    max_wait_seconds: float,
) -> dict[str, Any]:
    """Poll until the task leaves ACTIVE and return it only if it SUCCEEDED.

    Not ``task_wait``: it returns True on FAILED and INACTIVE too, and sleeps whole seconds.
    A task given up on (INACTIVE, or past the wait) is cancelled, so it cannot go on copying
    behind a failed step's back, and so a retried step's resubmission steps past it.
    """
    deadline = time.monotonic() + max_wait_seconds
    while task["status"] == "ACTIVE" and time.monotonic() < deadline:
        time.sleep(poll_seconds)
        task = client.get_task(task["task_id"]).data
    if task["status"] == "SUCCEEDED":
        return task
    if task["status"] == "FAILED":
        raise scope.failed(task, "task failed")
    client.cancel_task(task["task_id"])
    if task["status"] == "INACTIVE":
        raise scope.failed(task, "task went INACTIVE and was cancelled")
    raise scope.failed(task, f"task still running after {max_wait_seconds:g} s; cancelled")
