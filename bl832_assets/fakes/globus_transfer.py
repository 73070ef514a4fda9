"""A stateful stand-in for Globus Auth and Transfer, served over real HTTP on 127.0.0.1.

The real SDK client talks to it unpatched, so contract tests exercise URL building, auth
headers and payloads. Each collection UUID maps to a folder of this machine and a task really
copies with the project's verified copy (``transfer.copying``), so files land where a test
looks for them. Faults are armed on the fake between calls: HTTP errors for the next
requests, tasks that end FAILED or INACTIVE, quota errors, deadline expiry, stalls.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from bl832_assets.fakes.http import serving
from bl832_assets.resources.transfer.copying import sync_file

TOKEN = "fake-transfer-token"
TaskFault = Literal["FAILED", "INACTIVE", "QUOTA", "DEADLINE", "STALL"]


@dataclass
class FakeTask:
    """One task document as the Transfer API reports it."""

    task_id: str
    submission_id: str
    label: str
    status: str = "ACTIVE"
    nice_status: str | None = "Queued"
    fatal_error: dict[str, str] | None = None
    files: int = 0
    files_transferred: int = 0
    files_skipped: int = 0
    bytes_transferred: int = 0
    successful: list[dict[str, str]] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {
            "DATA_TYPE": "task",
            "task_id": self.task_id,
            "type": "TRANSFER",
            "label": self.label,
            "status": self.status,
            "nice_status": self.nice_status,
            "fatal_error": self.fatal_error,
            "files": self.files,
            "files_transferred": self.files_transferred,
            "files_skipped": self.files_skipped,
            "bytes_transferred": self.bytes_transferred,
        }


class FakeGlobus:
    """Auth token endpoint plus the Transfer API calls the platform makes.

    ``collections`` maps collection UUIDs to folders; paths inside a collection are absolute
    POSIX paths below that folder.
    """

    def __init__(self, collections: dict[str, Path], client_id: str, client_secret: str) -> None:
        self.collections = collections
        self._credentials = f"{client_id}:{client_secret}"
        self._lock = threading.Lock()
        self.tasks: dict[str, FakeTask] = {}
        self._by_submission: dict[str, str] = {}
        self._http_faults: list[tuple[str, int]] = []
        self._task_fault: TaskFault | None = None
        self.requests: list[tuple[str, str]] = []

    # Fault injection -------------------------------------------------------------------

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve for the block; yields the base URL of both Auth and Transfer."""
        with serving(self) as url:
            yield url

    def fail_requests(self, path_suffix: str, status: int, count: int = 1) -> None:
        """Answer the next ``count`` requests whose path ends with ``path_suffix`` with
        ``status``. A 5xx on ``/transfer``, ``/delete`` or ``/rename`` is answered after the
        task was created or the rename done, the way a lost reply looks to the client; any other
        fault is answered before anything happens."""
        self._http_faults.extend([(path_suffix, status)] * count)

    def next_task(self, outcome: TaskFault) -> None:
        """The next new task ends ``FAILED``, ``INACTIVE``, ``QUOTA`` (failed on quota),
        ``DEADLINE`` (failed: deadline passed) or ``STALL`` (stays ACTIVE)."""
        self._task_fault = outcome

    # HTTP ------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.requests.append((request.method, request.path))
        try:
            response = self._dispatch(request)
        except HTTPException as exc:
            status = exc.code or 500
            response = _error(status, _code(status), exc.description or "")
        except PermissionError as exc:
            response = _error(403, "EndpointPermissionDenied", f"Path not allowed: {exc}")
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        endpoint, args = _ROUTES.bind_to_environ(request.environ).match()
        fault = self._take_fault(request.path)
        acts = endpoint in ("transfer", "delete", "rename")
        if fault is not None and (fault < 500 or not acts):
            return _error(fault, _code(fault), "injected fault")
        if endpoint == "token":
            return self._token(request)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _error(401, "AuthenticationFailed", "Token is not active")
        response = getattr(self, f"_{endpoint}")(request, **args)
        if fault is not None:
            return _error(fault, _code(fault), "injected fault after the task was created")
        return response

    def _take_fault(self, path: str) -> int | None:
        with self._lock:
            for index, (suffix, status) in enumerate(self._http_faults):
                if path.endswith(suffix):
                    del self._http_faults[index]
                    return status
        return None

    def _token(self, request: Request) -> Response:
        basic = request.headers.get("Authorization", "").removeprefix("Basic ")
        if base64.b64decode(basic).decode() != self._credentials:
            return _error(401, "UNAUTHORIZED", "invalid client credentials")
        return _json(
            {
                "access_token": TOKEN,
                "scope": request.form.get("scope", ""),
                "expires_in": 172800,
                "token_type": "Bearer",
                "resource_server": "transfer.api.globus.org",
                "other_tokens": [],
            }
        )

    def _submission_id(self, request: Request) -> Response:
        return _json({"value": str(uuid.uuid4())})

    def _transfer(self, request: Request) -> Response:
        body = request.get_json()
        source = self._folder(body["source_endpoint"])
        destination = self._folder(body["destination_endpoint"])

        def work(task: FakeTask) -> None:
            for item in body["DATA"]:
                self._copy_item(task, source, destination, item)

        return self._start(body, work)

    def _delete(self, request: Request) -> Response:
        """A delete task as Globus runs one: a folder only with ``recursive``, a missing path
        is an error that fails the task unless ``ignore_missing``, a link is removed itself."""
        body = request.get_json()
        folder = self._folder(body["endpoint"])

        def work(task: FakeTask) -> None:
            for item in body["DATA"]:
                path = _under(folder, item["path"])
                if path.is_dir() and not path.is_symlink():
                    if not body.get("recursive"):
                        raise IsADirectoryError(errno.EISDIR, "is a directory", item["path"])
                    shutil.rmtree(path)
                elif os.path.lexists(path) or not body.get("ignore_missing"):
                    path.unlink()
                task.files += 1

        return self._start(body, work)

    def _start(self, body: dict[str, Any], work: Callable[[FakeTask], None]) -> Response:
        """Start a task doing ``work``, or return the one this submission id already started."""
        with self._lock:
            known = self._by_submission.get(body["submission_id"])
            if known is not None:
                return _submitted(known, body["submission_id"], "Duplicate")
            task = FakeTask(str(uuid.uuid4()), body["submission_id"], body.get("label", ""))
            self.tasks[task.task_id] = task
            self._by_submission[task.submission_id] = task.task_id
            fault, self._task_fault = self._task_fault, None
        threading.Thread(target=self._run, args=(task, work, fault), daemon=True).start()
        return _submitted(task.task_id, task.submission_id, "Accepted")

    def _task(self, request: Request, task_id: str) -> Response:
        return _json(self._get(task_id).document())

    def _successful_transfers(self, request: Request, task_id: str) -> Response:
        task = self._get(task_id)
        data = [{"DATA_TYPE": "successful_transfer", **item} for item in task.successful]
        return _json({"DATA_TYPE": "successful_transfers", "DATA": data, "next_marker": None})

    def _cancel(self, request: Request, task_id: str) -> Response:
        task = self._get(task_id)
        if task.status in ("ACTIVE", "INACTIVE"):
            task.status, task.nice_status = "FAILED", None
            task.fatal_error = {"code": "CANCELED", "description": "canceled"}
        return _json({"DATA_TYPE": "result", "code": "Canceled", "message": "canceled"})

    def _ls(self, request: Request, endpoint: str) -> Response:
        folder = self._path(endpoint, request.args.get("path", "/"))
        if not folder.is_dir():
            return _error(404, "ClientError.NotFound", f"{request.args.get('path')} not found")
        data = [_entry(child) for child in sorted(folder.iterdir())]
        return _json({"DATA_TYPE": "file_list", "path": request.args.get("path"), "DATA": data})

    def _rename(self, request: Request, endpoint: str) -> Response:
        """Move a file or folder within the collection. The new path's folder must exist, and
        an existing new path is refused rather than replaced."""
        body = request.get_json()
        old = self._path(endpoint, body["old_path"])
        new = self._path(endpoint, body["new_path"])
        if not os.path.lexists(old):
            return _error(404, "ClientError.NotFound", f"{body['old_path']} not found")
        if not new.parent.is_dir():
            return _error(404, "ClientError.NotFound", f"{new.parent.name} not found")
        if os.path.lexists(new):
            return _error(502, "ExternalError.RenameFailed.Exists", "Path already exists")
        os.rename(old, new)
        return _json({"DATA_TYPE": "result", "code": "FileRenamed", "message": "renamed"})

    def _mkdir(self, request: Request, endpoint: str) -> Response:
        folder = self._path(endpoint, request.get_json()["path"])
        if folder.exists():
            return _error(502, "ExternalError.MkdirFailed.Exists", "Path already exists")
        folder.mkdir(parents=True)
        return _json({"DATA_TYPE": "mkdir_result", "code": "DirectoryCreated"})

    # Tasks -----------------------------------------------------------------------------

    def _run(
        self, task: FakeTask, work: Callable[[FakeTask], None], fault: TaskFault | None
    ) -> None:
        task.nice_status = "OK"
        if fault is not None:
            self._end_with_fault(task, fault)
            return
        try:
            work(task)
        except OSError as exc:
            task.status, task.nice_status = "FAILED", None
            task.fatal_error = {"code": _fatal_code(exc), "description": str(exc)}
            return
        task.status, task.nice_status = "SUCCEEDED", None

    def _copy_item(self, task: FakeTask, source: Path, destination: Path, item: dict) -> None:
        src = _under(source, item["source_path"])
        dst = _under(destination, item["destination_path"])
        if not item.get("recursive"):
            pairs = [(src, dst)]
        elif src.is_dir():
            files = [Path(folder, name) for folder, _, names in os.walk(src) for name in names]
            pairs = [(file, dst / file.relative_to(src)) for file in sorted(files)]
        else:
            raise FileNotFoundError(f"{item['source_path']} is not a directory")
        for file, target in pairs:
            target.parent.mkdir(parents=True, exist_ok=True)
            outcome = sync_file(file, target, tag=task.task_id)
            task.files += 1
            if outcome.copied:
                task.files_transferred += 1
                task.bytes_transferred += outcome.size
            else:
                task.files_skipped += 1
            task.successful.append(
                {
                    "source_path": "/" + file.relative_to(source).as_posix(),
                    "destination_path": "/" + target.relative_to(destination).as_posix(),
                }
            )

    def _end_with_fault(self, task: FakeTask, fault: TaskFault) -> None:
        if fault == "STALL":
            return
        if fault == "INACTIVE":
            task.status, task.nice_status = "INACTIVE", "PERMISSION_DENIED"
            return
        code, text = {
            "FAILED": ("PERMISSION_DENIED", "Permission denied on destination"),
            "QUOTA": ("QUOTA_EXCEEDED", "Destination quota exceeded"),
            "DEADLINE": ("DEADLINE_EXCEEDED", "Task deadline passed"),
        }[fault]
        task.status, task.nice_status = "FAILED", None
        task.fatal_error = {"code": code, "description": text}

    def _get(self, task_id: str) -> FakeTask:
        task = self.tasks.get(task_id)
        if task is None:
            raise NotFound(f"Task {task_id} not found")
        return task

    def _folder(self, collection: str) -> Path:
        folder = self.collections.get(collection)
        if folder is None:
            raise NotFound(f"Endpoint {collection} not found")
        return folder

    def _path(self, collection: str, path: str) -> Path:
        return _under(self._folder(collection), path)


def _under(folder: Path, path: str) -> Path:
    """``path`` (absolute inside the collection) as a path below ``folder``. A collection
    confines every path to its root, so one leading out through a symbolic link is refused
    (``PermissionError``: HTTP 403 for an operation, a failed task inside a task)."""
    relative = PurePosixPath(path).relative_to("/")
    if ".." in relative.parts:
        raise NotFound(f"{path} leaves the collection")
    joined = folder / relative
    if not joined.resolve().is_relative_to(folder.resolve()):
        raise PermissionError(errno.EACCES, "leads outside the collection", path)
    return joined


def _fatal_code(error: OSError) -> str:
    """The task's ``fatal_error`` code for what stopped it."""
    if isinstance(error, FileNotFoundError):
        return "FILE_NOT_FOUND"
    if isinstance(error, PermissionError):
        return "PERMISSION_DENIED"
    return "ENDPOINT_ERROR"


def _entry(path: Path) -> dict[str, Any]:
    stat = path.stat()
    modified = datetime.fromtimestamp(stat.st_mtime, UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")
    return {
        "DATA_TYPE": "file",
        "name": path.name,
        "type": "dir" if path.is_dir() else "file",
        "size": stat.st_size,
        "last_modified": modified,
        "permissions": oct(stat.st_mode & 0o777)[2:].zfill(4),
    }


def _submitted(task_id: str, submission_id: str, code: str) -> Response:
    return _json(
        {
            "DATA_TYPE": "transfer_result",
            "code": code,
            "task_id": task_id,
            "submission_id": submission_id,
            "task_link": {"href": f"task/{task_id}?format=json"},
        },
        status=202 if code == "Accepted" else 200,
    )


def _code(status: int) -> str:
    if status == 404:
        return "ClientError.NotFound"
    return "ClientError.BadRequest" if status < 500 else "ServiceUnavailable"


def _error(status: int, code: str, message: str) -> Response:
    return _json({"code": code, "message": message, "request_id": "fake"}, status=status)


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


_ROUTES = Map(
    [
        Rule("/v2/oauth2/token", endpoint="token", methods=["POST"]),
        Rule("/v0.10/submission_id", endpoint="submission_id", methods=["GET"]),
        Rule("/v0.10/transfer", endpoint="transfer", methods=["POST"]),
        Rule("/v0.10/delete", endpoint="delete", methods=["POST"]),
        Rule("/v0.10/task/<task_id>", endpoint="task", methods=["GET"]),
        Rule(
            "/v0.10/task/<task_id>/successful_transfers",
            endpoint="successful_transfers",
            methods=["GET"],
        ),
        Rule("/v0.10/task/<task_id>/cancel", endpoint="cancel", methods=["POST"]),
        Rule("/v0.10/operation/endpoint/<endpoint>/ls", endpoint="ls", methods=["GET"]),
        Rule("/v0.10/operation/endpoint/<endpoint>/mkdir", endpoint="mkdir", methods=["POST"]),
        Rule("/v0.10/operation/endpoint/<endpoint>/rename", endpoint="rename", methods=["POST"]),
    ]
)
