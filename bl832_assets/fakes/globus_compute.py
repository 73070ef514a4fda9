"""A stateful stand-in for the Globus Compute web service, served over real HTTP.

The real service is closed source and has no offline mode, so the unpatched SDK ``Client`` is
tested against this. It answers the REST routes the ``Client`` uses (version, register
function, submit, task status), and it is also the endpoint: each submitted task really runs
the deserialized function in a worker thread, so the payload really runs on local folders.
Faults are injected per test: HTTP errors on the next requests, or a task that fails.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from globus_compute_sdk.serialize import ComputeSerializer
from werkzeug.exceptions import HTTPException, NotFound, Unauthorized
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from bl832_assets.fakes.http import serving

VERSIONS = {"api": "1.0", "min_sdk_version": "2.0.0", "min_ep_version": "2.0.0"}


@dataclass
class Task:
    """One submitted invocation, as ``GET /v2/tasks/<id>`` reports it."""

    task_id: str
    endpoint_id: str
    status: str = "waiting-for-ep"
    result: str | None = None
    exception: str | None = None
    completion_t: str | None = None

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"task_id": self.task_id, "status": self.status}
        if self.result is not None:
            doc["result"] = self.result
        if self.exception is not None:
            doc["exception"] = self.exception
        if self.completion_t is not None:
            doc["completion_t"] = self.completion_t
        return doc


@dataclass
class _Faults:
    http_status: int = 0
    http_count: int = 0
    http_matching: str = ""
    task_failures: list[str] = field(default_factory=list)


class FakeGlobusCompute:
    """The service and its endpoints in one process; ``with fake.serve() as url`` runs it.

    ``endpoints`` are the endpoint ids it knows (one per facility); submitting to any other is
    a 404, as for an endpoint the user may not use. ``token`` is the only bearer token it
    accepts: the one Globus Auth (or a test) issued to the platform; anything else is a 401.
    """

    def __init__(self, endpoints: list[str], token: str) -> None:
        self.endpoints = set(endpoints)
        self.token = token
        self.functions: dict[str, str] = {}
        self.tasks: dict[str, Task] = {}
        self._faults = _Faults()
        self._lock = threading.Lock()
        self._serde = ComputeSerializer()
        self._workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fake-endpoint")
        self._routes = Map(
            [
                Rule("/v2/version", endpoint="version", methods=["GET"]),
                Rule("/v3/functions", endpoint="register", methods=["POST"]),
                Rule("/v3/endpoints/<endpoint_id>/submit", endpoint="submit", methods=["POST"]),
                Rule("/v2/tasks/<task_id>", endpoint="task", methods=["GET"]),
            ]
        )
        self.url = ""

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve for the block (``self.url`` is the base); running functions are waited for."""
        with serving(self._wsgi) as url:
            self.url = url
            try:
                yield url
            finally:
                self._workers.shutdown(wait=True)

    def fail_next_requests(self, status: int, count: int = 1, matching: str = "") -> None:
        """Answer the next ``count`` requests whose ``"METHOD path"`` starts with ``matching``
        (e.g. ``"GET /v2/tasks"``) with ``status``; a 503 says ``Retry-After: 1``, so the
        SDK's retries take seconds, not its exponential backoff's tens of seconds."""
        with self._lock:
            self._faults.http_status, self._faults.http_count = status, count
            self._faults.http_matching = matching

    def fail_next_task(self, reason: str) -> None:
        """The next submitted task ends ``failed`` with ``reason`` instead of running."""
        with self._lock:
            self._faults.task_failures.append(reason)

    def _injected(self, request: Request) -> Response | None:
        with self._lock:
            line = f"{request.method} {request.path}"
            if self._faults.http_count <= 0 or not line.startswith(self._faults.http_matching):
                return None
            self._faults.http_count -= 1
            status = self._faults.http_status
        headers = {"Retry-After": "1"} if status == 503 else {}
        body = {"code": "INJECTED_FAULT", "error": "injected fault", "status_code": status}
        return _json(body, status, headers)

    def _wsgi(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        try:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                raise Unauthorized("a valid bearer token is required")
            injected = self._injected(request)
            response = self._dispatch(request) if injected is None else injected
        except HTTPException as error:
            response = _json({"code": error.name, "error": error.description}, error.code or 500)
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        endpoint, args = self._routes.bind_to_environ(request.environ).match()
        if endpoint == "version":
            return _json(VERSIONS)
        if endpoint == "register":
            function_id = str(uuid.uuid4())
            self.functions[function_id] = request.get_json()["function_code"]
            return _json({"function_uuid": function_id})
        if endpoint == "submit":
            return _json(self._submit(args["endpoint_id"], request.get_json()))
        task = self.tasks.get(args["task_id"])
        if task is None:
            raise NotFound(f"task {args['task_id']} not found")
        return _json(task.document())

    def _submit(self, endpoint_id: str, batch: dict[str, Any]) -> dict[str, Any]:
        if endpoint_id not in self.endpoints:
            raise NotFound(f"endpoint {endpoint_id} not found")
        submitted: dict[str, list[str]] = {}
        for function_id, payloads in batch["tasks"].items():
            if function_id not in self.functions:
                raise NotFound(f"function {function_id} not found")
            for payload in payloads:
                task = Task(str(uuid.uuid4()), endpoint_id)
                self.tasks[task.task_id] = task
                submitted.setdefault(function_id, []).append(task.task_id)
                self._workers.submit(self._execute, task, self.functions[function_id], payload)
        return {
            "request_id": str(uuid.uuid4()),
            "task_group_id": batch.get("task_group_id") or str(uuid.uuid4()),
            "endpoint_id": endpoint_id,
            "tasks": submitted,
        }

    def _execute(self, task: Task, function_code: str, payload: str) -> None:
        """What an endpoint worker does: deserialize, run, serialize the result back."""
        with self._lock:
            injected = self._faults.task_failures.pop(0) if self._faults.task_failures else None
        task.status = "running"
        try:
            if injected is not None:
                raise RuntimeError(injected)
            packed = self._serde.unpack_buffers(function_code) + self._serde.unpack_buffers(payload)
            function, args, kwargs = (self._serde.deserialize(part) for part in packed)
            task.result = self._serde.serialize(function(*args, **kwargs))
            task.status = "success"
        except Exception:
            task.exception = traceback.format_exc()
            task.status = "failed"
        task.completion_t = str(time.time())


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")
