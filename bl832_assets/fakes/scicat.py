"""A stateful fake of SciCat's v3 backend on a real HTTP server, for the real pyscicat client.

It validates like the NestJS backend does (whitelist + forbidNonWhitelisted: an unknown field is
a 400, a missing required one is a 400, a duplicate pid or client-chosen attachment id a 409,
as the backend's unique indexes do) with the field lists of the backend's DTOs, routes
case-insensitively as Express does, and reads pids from the raw URI so a ``%2F`` inside a pid
stays part of it. Faults are injected for the next N requests.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from bl832_assets.fakes.http import serving

PID_PREFIX = "20.500.12269"

_COMMON = {
    "pid", "ownerGroup", "accessGroups", "instrumentGroup", "owner", "ownerEmail", "orcidOfOwner",
    "contactEmail", "sourceFolder", "sourceFolderHost", "size", "packedSize", "numberOfFiles",
    "numberOfFilesArchived", "creationTime", "type", "validationStatus", "keywords",
    "description", "datasetName", "classification", "license", "isPublished", "techniques",
    "sharedWith", "relationships", "datasetlifecycle", "scientificMetadata",
    "scientificMetadataSchema", "comment", "dataQualityMetrics", "proposalId", "runNumber",
    "version",
}  # fmt: skip
_REQUIRED = {"ownerGroup", "owner", "contactEmail", "sourceFolder", "creationTime", "type"}
_BY_TYPE = {
    "raw": (
        {"principalInvestigator", "creationLocation", "datasetName", "startTime", "endTime",
         "dataFormat", "sampleId", "instrumentId"},
        {"principalInvestigator", "creationLocation", "datasetName"},
    ),
    "derived": (
        {"investigator", "inputDatasets", "usedSoftware", "jobParameters", "jobLogData"},
        {"investigator", "inputDatasets", "usedSoftware"},
    ),
}  # fmt: skip
_IMMUTABLE = {"pid", "type"}
_DATABLOCK = ({"size", "chkAlg", "dataFileList", "isPublished"}, {"size", "dataFileList"})
_DATAFILE = (
    {"path", "size", "time", "chk", "uid", "gid", "perm", "type", "metadata"},
    {"path", "size", "time"},
)
_ATTACHMENT = (
    {"thumbnail", "caption", "ownerGroup", "accessGroups", "instrumentGroup", "datasetId",
     "proposalId", "sampleId", "id"},
    {"caption", "ownerGroup"},
)  # fmt: skip
_INTEGERS = {"size", "packedSize", "numberOfFiles", "numberOfFilesArchived"}


class _Reject(Exception):
    def __init__(self, status: int, message: str | list[str]) -> None:
        self.status = status
        self.message = message


@dataclass
class _Fault:
    status: int
    message: str
    remaining: int
    where: str


@dataclass
class FakeSciCat:
    """SciCat's datasets, origdatablocks and attachments, in memory.

    ``unknown_fields`` are fields this backend does not know, as an older SciCat would not: a
    request carrying one is a 400, which is how a test meets the unknown-field rejection through
    a client that only sends valid fields.
    """

    users: dict[str, str] = field(default_factory=lambda: {"ingestor": "ingestor-password"})
    unknown_fields: frozenset[str] = frozenset()
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    origdatablocks: dict[str, dict[str, Any]] = field(default_factory=dict)
    attachments: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    _faults: list[_Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue_token(self) -> str:
        """A token valid on this fake, as a service account's long-lived token would be."""
        token = uuid.uuid4().hex
        self.tokens.add(token)
        return token

    def fail_next(
        self, status: int, count: int = 1, message: str = "injected fault", where: str = ""
    ) -> None:
        """Answer the next ``count`` requests with ``status`` instead of serving them; with
        ``where``, only requests whose ``"METHOD path"`` (path after /api/v3, lower case)
        contains it, e.g. ``"POST datasets"``."""
        self._faults.append(_Fault(status, message, count, where.lower()))

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on 127.0.0.1 on a free port; yields the API base URL pyscicat expects."""
        with serving(self._wsgi) as url:
            yield f"{url}/api/v3"

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        raw_path = environ.get("RAW_URI", request.path).split("?", 1)[0]
        parts = [unquote(p) for p in raw_path.split("/") if p][2:]  # after /api/v3
        with self._lock:
            self.requests.append((request.method, "/".join(parts)))
            try:
                status, body = self._handle(request, parts)
            except _Reject as rejected:
                status = rejected.status
                body = {"statusCode": status, "message": rejected.message}
            except HTTPException as exc:
                status, body = exc.code or 400, {"statusCode": exc.code, "message": exc.name}
        response = Response(json.dumps(body), status, content_type="application/json")
        return response(environ, start_response)

    def _handle(self, request: Request, parts: list[str]) -> tuple[int, Any]:
        route = [p.lower() for p in parts]
        method = request.method
        self._inject_fault(f"{method} {'/'.join(route)}".lower())
        if route == ["auth", "login"] and method == "POST":
            return self._login(request.get_json())
        self._authorize(request)
        body = request.get_json() if method in ("POST", "PATCH") else None
        match route, method:
            case ["datasets"], "POST":
                return 201, self._create_dataset(body)
            case ["datasets"], "GET":
                return 200, self._query(request.args.get("filter", "{}"))
            case ["datasets", _], "GET":
                return 200, self._dataset(parts[1])
            case ["datasets", _], "PATCH":
                return 200, self._patch_dataset(parts[1], body)
            case ["datasets", _, "origdatablocks"], "POST":
                return 201, self._create_child(self.origdatablocks, parts[1], body, _DATABLOCK)
            case ["datasets", _, "attachments"], "POST":
                return 201, self._create_child(self.attachments, parts[1], body, _ATTACHMENT)
            case ["datasets", _, "origdatablocks"], "GET":
                return 200, self._children(self.origdatablocks, parts[1])
            case ["datasets", _, "attachments"], "GET":
                return 200, self._children(self.attachments, parts[1])
            case ["datasets", _, "origdatablocks", _], "PATCH":
                return 200, self._patch_child(self.origdatablocks, parts, body, _DATABLOCK)
            case ["datasets", _, "attachments", _], "PATCH":
                return 200, self._patch_child(self.attachments, parts, body, _ATTACHMENT)
        raise _Reject(404, f"Cannot {method} /{'/'.join(parts)}")

    def _inject_fault(self, request_line: str) -> None:
        for fault in self._faults:
            if fault.where in request_line:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                raise _Reject(fault.status, fault.message)

    def _login(self, body: dict[str, Any]) -> tuple[int, Any]:
        if self.users.get(body.get("username", "")) != body.get("password"):
            raise _Reject(401, "Unauthorized")
        token = self.issue_token()
        return 201, {"access_token": token, "id": token, "expires_in": 3600, "ttl": 3600}

    def _authorize(self, request: Request) -> None:
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in self.tokens and request.args.get("access_token") not in self.tokens:
            raise _Reject(401, "Unauthorized")

    def _create_dataset(self, body: dict[str, Any]) -> dict[str, Any]:
        extra, required = _BY_TYPE.get(body.get("type", ""), (set(), set()))
        _validate(body, (_COMMON | extra) - self.unknown_fields, _REQUIRED | required)
        if body.get("type") not in _BY_TYPE:
            raise _Reject(400, ["type must be one of: raw, derived"])
        pid = body.get("pid") or f"{PID_PREFIX}/{uuid.uuid4()}"
        if pid in self.datasets:
            raise _Reject(409, f"Dataset with pid {pid} already exists")
        now = _now()
        self.datasets[pid] = {**body, "pid": pid, "createdAt": now, "updatedAt": now}
        return self.datasets[pid]

    def _query(self, filter_text: str) -> list[dict[str, Any]]:
        try:
            where = json.loads(filter_text).get("where", {})
        except (json.JSONDecodeError, AttributeError):
            raise _Reject(400, "filter is not a JSON object") from None
        return [
            d for d in self.datasets.values() if all(_matches(d, k, v) for k, v in where.items())
        ]

    def _dataset(self, pid: str) -> dict[str, Any]:
        if pid not in self.datasets:
            raise _Reject(404, f"Dataset {pid} not found")
        return self.datasets[pid]

    def _patch_dataset(self, pid: str, body: dict[str, Any]) -> dict[str, Any]:
        dataset = self._dataset(pid)
        extra, _ = _BY_TYPE[dataset["type"]]
        _validate(body, (_COMMON | extra) - _IMMUTABLE - self.unknown_fields, set())
        dataset.update(body, updatedAt=_now())
        return dataset

    def _create_child(
        self,
        table: dict[str, dict[str, Any]],
        pid: str,
        body: dict[str, Any],
        schema: tuple[set[str], set[str]],
    ) -> dict[str, Any]:
        dataset = self._dataset(pid)
        _validate(body, schema[0], schema[1])
        child_id = body.get("id") or str(uuid.uuid4())
        if child_id in table:
            raise _Reject(409, f"{child_id} already exists")
        table[child_id] = {
            "ownerGroup": dataset["ownerGroup"],
            "accessGroups": dataset.get("accessGroups", []),
            **body,
            "id": child_id,
            "datasetId": pid,
            "createdAt": _now(),
        }
        return table[child_id]

    def _children(self, table: dict[str, dict[str, Any]], pid: str) -> list[dict[str, Any]]:
        self._dataset(pid)
        return [child for child in table.values() if child["datasetId"] == pid]

    def _patch_child(
        self,
        table: dict[str, dict[str, Any]],
        parts: list[str],
        body: dict[str, Any],
        schema: tuple[set[str], set[str]],
    ) -> dict[str, Any]:
        _, pid, _, child_id = parts
        child = table.get(child_id)
        if child is None or child["datasetId"] != pid:
            raise _Reject(404, f"{parts[2]} {child_id} of dataset {pid} not found")
        _validate(body, schema[0] - {"id", "datasetId"}, set())
        child.update(body, updatedAt=_now())
        return child


def _validate(body: Any, allowed: set[str], required: set[str]) -> None:
    """The backend's ValidationPipe, for the checks that a client is likely to get wrong."""
    if not isinstance(body, dict):
        raise _Reject(400, "request body must be a JSON object")
    problems = [f"property {k} should not exist" for k in sorted(body.keys() - allowed)]
    problems += [f"{k} should not be empty" for k in sorted(required - body.keys())]
    problems += [f"{k} must be an integer number" for k in _INTEGERS if k in body and not
                 isinstance(body[k], int)]  # fmt: skip
    if "creationTime" in body and not _is_iso_date(body["creationTime"]):
        problems.append("creationTime must be a valid ISO 8601 date string")
    if "contactEmail" in body and "@" not in str(body["contactEmail"]):
        problems.append("contactEmail must be an email")
    if "dataFileList" in body:
        for entry in body["dataFileList"]:
            _validate(entry, *_DATAFILE)
    if problems:
        raise _Reject(400, problems)


def _is_iso_date(value: Any) -> bool:
    return isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}T", value) is not None


def _matches(document: dict[str, Any], key: str, wanted: Any) -> bool:
    """MongoDB equality: a scalar matches a field equal to it or an array that contains it."""
    if isinstance(wanted, dict):
        raise _Reject(400, f"operator filters on {key} are not supported by this fake")
    value = document.get(key)
    return value == wanted or (isinstance(value, list) and wanted in value)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
