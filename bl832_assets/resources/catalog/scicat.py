"""The facility catalog: raw and derived datasets in SciCat, through pyscicat's ScicatClient.

Records come from ``mapping``, so SciCat holds exactly what the local catalog holds. A dataset
is looked up first by the fields that name the scan (type and runNumber, the scan key; a derived
one also by its raw input), so one made earlier by another tool is found and PATCHed rather than
duplicated. An export-controlled scan is refused before any request is made. Any other
beamline's dataset (``ingest_dataset``) is named the same way, type and runNumber (its key), plus
its beamline's group among the accessGroups, since two beamlines may use one stem.

Concurrent ingests of one scan (two Dagster runs, a retry overlapping its original) must not
make duplicates, and SciCat has no unique key on runNumber, so a find-then-create alone races.
Hence:

* A dataset we create carries a pid derived from the scan (``dataset_pid``). SciCat refuses a
  second dataset with that pid with HTTP 409; the loser PATCHes the winner's dataset and
  reports ``created=False``. Exactly one ingest reports ``created=True``.
* The thumbnail attachment carries an id derived from the dataset's pid, so a second create is
  likewise a 409 and becomes a PATCH.
* An origdatablock cannot carry a client-chosen id (SciCat's create DTO forbids it), so its
  creation is left to the ingest that created the dataset. Any other ingest that finds no
  datablock waits up to ``datablock_wait_seconds`` for the creator's to appear and PATCHes it,
  and only then creates one itself, for the creator may have died in between.

The race that remains: two ingests both create an origdatablock if the dataset exists without
one for longer than ``datablock_wait_seconds`` (its creator died, or stalled that long, between
creating the dataset and its datablock; or another tool made it without one) and both then find
none at the same moment. The attachment id is only unique if the backend enforces it (the fake
does); a backend that ignored it would leave the thumbnail's read-then-create race open.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

import requests
from pydantic import BaseModel, ConfigDict, Field
from pyscicat.client import ScicatClient, ScicatCommError, ScicatLoginError
from pyscicat.model import Attachment, CreateDatasetOrigDatablockDto, DerivedDataset, RawDataset

from bl832_assets.resources.catalog.base import (
    CatalogRecord,
    CatalogResource,
    DatasetRecord,
    FileEntry,
)
from bl832_assets.resources.catalog.errors import CatalogError, DatasetNotFound
from bl832_assets.resources.catalog.mapping import (
    BEAMLINE_GROUP,
    THUMBNAIL_CAPTIONS,
    dataset_body,
    derived_dataset,
    origdatablock,
    raw_dataset,
    scan_key_of,
)
from bl832_assets.resources.catalog.records import DatasetKind
from bl832_assets.science.dx import ScanMetadata

# Fixed forever: every pid and attachment id this resource derives depends on it.
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://als.lbl.gov/bl832/scicat")
_POLL_SECONDS = 0.1
_T = TypeVar("_T")


class CatalogRejected(CatalogError):
    """SciCat answered a request with an error status; ``message`` is what SciCat said."""

    def __init__(self, operation: str, status: int, message: str) -> None:
        self.operation = operation
        self.status = status
        self.message = message
        super().__init__(f"SciCat refused {operation} with HTTP {status}: {message}")


class CatalogUnavailable(CatalogError):
    """SciCat could not be reached or did not answer with JSON: worth retrying later."""


class ExportControlled(CatalogError):
    """The scan is export controlled, so its metadata must never leave the beamline."""

    def __init__(self, scan_file: str) -> None:
        self.scan_file = scan_file
        super().__init__(f"{scan_file} is export controlled; it is not sent to SciCat")


class _RawDataset(RawDataset):
    """pyscicat's model lacks fields the backend accepts (runNumber); keep them."""

    model_config = ConfigDict(extra="allow")


class _DerivedDataset(DerivedDataset):
    model_config = ConfigDict(extra="allow")


class _Datablock(CreateDatasetOrigDatablockDto):
    """pyscicat types chkAlg as int; the backend takes the algorithm's name."""

    chkAlg: str | None = None


class _Body(BaseModel):
    """A request body sent as given: a PATCH carries only the fields it changes."""

    model_config = ConfigDict(extra="allow")


class _Client(ScicatClient):
    """ScicatClient, plus the sub-resource reads and patches it lacks, and the status of the
    last response, which its ScicatCommError leaves out."""

    last_response: requests.Response | None = None

    def _send_to_scicat(
        self, cmd: str, endpoint: str, data: BaseModel | None = None
    ) -> requests.Response:
        self.last_response = None
        self.last_response = super()._send_to_scicat(cmd, endpoint, data)
        return self.last_response

    def datasets_attachments_get(self, pid: str) -> list[dict[str, Any]]:
        return self._call_endpoint("get", f"Datasets/{quote_plus(pid)}/attachments") or []

    def datasets_child_update(self, pid: str, kind: str, child_id: str, body: BaseModel) -> None:
        endpoint = f"Datasets/{quote_plus(pid)}/{kind}/{quote_plus(child_id)}"
        self._call_endpoint("patch", endpoint, body, operation=f"{kind}_update")


class ScicatCatalogResource(CatalogResource):
    """Keeps raw and derived datasets of scans in the facility's SciCat."""

    url: str = Field(description="SciCat API base URL, e.g. https://scicat.example/api/v3.")
    token: str | None = Field(default=None, description="API token; or username and password.")
    username: str | None = Field(default=None, description="Functional account to log in as.")
    password: str | None = Field(default=None, description="Password of the functional account.")
    timeout_seconds: int = Field(default=60, description="Per-request timeout.")
    pid_prefix: str = Field(
        default="20.500.12269",
        description="The facility's PID prefix, which every dataset pid created here starts with.",
    )
    datablock_wait_seconds: float = Field(
        default=10.0,
        description="How long an ingest that did not create the dataset waits for its creator's "
        "origdatablock before creating one itself.",
    )

    def ingest_raw(
        self,
        scan_file: str,
        metadata: ScanMetadata,
        files: list[FileEntry],
        thumbnail: str | None = None,
    ) -> CatalogRecord:
        if metadata.export_control:
            raise ExportControlled(scan_file)
        dataset = raw_dataset(scan_file, metadata, files)
        key = scan_key_of(scan_file)
        record = DatasetRecord(BEAMLINE_GROUP, key, "raw", dataset, tuple(files), thumbnail)
        with self._session() as client:
            where = {"type": "raw", "runNumber": key}
            return self._ingest(client, where, self.dataset_pid("raw\n" + key), record)

    def ingest_derived(
        self,
        raw_pid: str,
        scan_key: str,
        tiff_folder: str,
        zarr_folder: str,
        files: list[FileEntry],
        used_software: list[str],
        job_parameters: Mapping[str, Any] | None = None,
    ) -> CatalogRecord:
        with self._session() as client:
            raw = self._read(client, raw_pid)
            if raw is None:
                raise DatasetNotFound(raw_pid)
            dataset = derived_dataset(
                raw,
                raw_pid=raw_pid,
                scan_key=scan_key,
                tiff_folder=tiff_folder,
                zarr_folder=zarr_folder,
                files=files,
                used_software=used_software,
                job_parameters=job_parameters,
            )
            return self._ingest(
                client,
                {"type": "derived", "runNumber": scan_key, "inputDatasets": raw_pid},
                self.dataset_pid(f"derived\n{raw_pid}\n{scan_key}"),
                DatasetRecord(BEAMLINE_GROUP, scan_key, "derived", dataset, tuple(files)),
            )

    def ingest_dataset(self, record: DatasetRecord) -> CatalogRecord:
        with self._session() as client:
            for pid in record.fields.get("inputDatasets", []):
                if self._read(client, pid) is None:
                    raise DatasetNotFound(pid)
            return self._ingest(
                client,
                _identity(record.beamline, record.key, record.kind),
                self.dataset_pid(f"{record.beamline}\n{record.kind}\n{record.key}"),
                record,
            )

    def find_dataset(self, beamline: str, key: str, kind: DatasetKind) -> CatalogRecord | None:
        with self._session() as client:
            return self._found(client, _identity(beamline, key, kind))

    def get(self, pid: str) -> dict[str, Any] | None:
        with self._session() as client:
            return self._read(client, pid)

    def find_raw(self, scan: str) -> CatalogRecord | None:
        with self._session() as client:
            return self._found(client, {"type": "raw", "runNumber": scan_key_of(scan)})

    def dataset_pid(self, name: str) -> str:
        """The pid a dataset named ``name`` gets when created here: the same in every process,
        so SciCat itself refuses the second of two concurrent creates."""
        return f"{self.pid_prefix}/{uuid.uuid5(ID_NAMESPACE, name)}"

    def _ingest(
        self, client: _Client, where: dict[str, str], new_pid: str, record: DatasetRecord
    ) -> CatalogRecord:
        """Create or update the dataset ``where`` finds (created as ``new_pid``), then its
        datablock and thumbnail, and read it back whole."""
        dataset = dataset_body(record)
        model = _RawDataset if record.kind == "raw" else _DerivedDataset
        pid, created = self._upsert(client, where, new_pid, dataset, model)
        datablock = origdatablock(dataset["sourceFolder"], record.files)
        self._put_datablock(client, pid, datablock, created)
        if record.thumbnail is not None:
            caption = THUMBNAIL_CAPTIONS[record.kind]
            self._put_thumbnail(client, pid, dataset, record.thumbnail, caption)
        return CatalogRecord(pid, created, self._read(client, pid) or {})

    def _found(self, client: _Client, where: dict[str, str]) -> CatalogRecord | None:
        pid = self._find(client, where)
        return None if pid is None else CatalogRecord(pid, False, self._read(client, pid) or {})

    def _upsert(
        self,
        client: _Client,
        where: dict[str, str],
        new_pid: str,
        dataset: dict[str, Any],
        model: type[BaseModel],
    ) -> tuple[str, bool]:
        """The pid of the scan's dataset, created as ``new_pid`` or updated, and whether it was
        created here. Losing the create to a concurrent ingest (409) makes it an update."""
        patch = _Body(**{k: v for k, v in dataset.items() if k != "type"})
        pid = self._find(client, where)
        if pid is not None:
            _call(client, "datasets_update", lambda: client.datasets_update(patch, pid))
            return pid, False
        body = model(**dataset, pid=new_pid)
        try:
            return _call(client, "datasets_create", lambda: client.datasets_create(body)), True
        except CatalogRejected as refused:
            if refused.status != 409:
                raise
            try:
                _call(client, "datasets_update", lambda: client.datasets_update(patch, new_pid))
            except CatalogRejected as missing:
                if missing.status == 404:  # the 409 was about something other than our pid
                    raise refused from None
                raise
        return new_pid, False

    def _find(self, client: _Client, where: dict[str, str]) -> str | None:
        """The oldest matching dataset, so a duplicate made by hand elsewhere is not chosen."""
        found = _call(client, "datasets_get_many", lambda: client.datasets_get_many(where)) or []
        return min(found, key=lambda d: d.get("createdAt", ""))["pid"] if found else None

    def _put_datablock(
        self, client: _Client, pid: str, datablock: dict[str, Any], created: bool
    ) -> None:
        """One origdatablock per dataset: the first one found is patched to the new file list.
        Only the dataset's creator makes it at once; see the module docstring for why."""
        existing = [] if created else self._await_datablocks(client, pid)
        if existing:
            body = _Body(**datablock)
            _call(
                client,
                "origdatablocks_update",
                lambda: client.datasets_child_update(
                    pid, "origdatablocks", existing[0]["id"], body
                ),
            )
        else:
            dto = _Datablock(**datablock)
            _call(
                client,
                "origdatablock_create",
                lambda: client.datasets_origdatablock_create(pid, dto),
            )

    def _await_datablocks(self, client: _Client, pid: str) -> list[dict[str, Any]]:
        """The dataset's origdatablocks, once there are any or ``datablock_wait_seconds`` has
        passed: a concurrent ingest that created the dataset is about to add one."""
        deadline = time.monotonic() + self.datablock_wait_seconds
        while True:
            found = _call(
                client, "origdatablocks_get", lambda: client.datasets_origdatablocks_get_one(pid)
            )
            if found or time.monotonic() >= deadline:
                return found or []
            time.sleep(_POLL_SECONDS)

    def _put_thumbnail(
        self, client: _Client, pid: str, dataset: dict[str, Any], thumbnail: str, caption: str
    ) -> None:
        """One thumbnail attachment per dataset, found by its ``caption``, created with an id
        derived from the dataset's pid so that a concurrent second create is refused (409) and
        patches it instead."""
        attachments = _call(client, "attachments_get", lambda: client.datasets_attachments_get(pid))
        ours = [a["id"] for a in attachments if a.get("caption") == caption]
        if ours:
            attachment_id = ours[0]
        else:
            attachment_id = str(uuid.uuid5(ID_NAMESPACE, f"thumbnail\n{pid}"))
            attachment = Attachment(
                id=attachment_id,
                datasetId=pid,
                thumbnail=thumbnail,
                caption=caption,
                ownerGroup=dataset["ownerGroup"],
                accessGroups=dataset["accessGroups"],
            )
            try:
                _call(
                    client,
                    "attachment_create",
                    lambda: client.datasets_attachment_create(attachment),
                )
                return
            except CatalogRejected as refused:
                if refused.status != 409:
                    raise
        body = _Body(thumbnail=thumbnail)
        _call(
            client,
            "attachments_update",
            lambda: client.datasets_child_update(pid, "attachments", attachment_id, body),
        )

    def _read(self, client: _Client, pid: str) -> dict[str, Any] | None:
        """The dataset with its datablocks and attachments, shaped as the local catalog's."""
        try:
            dataset = _call(client, "datasets_get_one", lambda: client.datasets_get_one(pid))
        except CatalogRejected as rejected:
            if rejected.status == 404:
                return None
            raise
        if not dataset:
            return None
        blocks = _call(
            client, "origdatablocks_get", lambda: client.datasets_origdatablocks_get_one(pid)
        )
        attachments = _call(client, "attachments_get", lambda: client.datasets_attachments_get(pid))
        return {**dataset, "origdatablocks": blocks or [], "attachments": attachments}

    @contextmanager
    def _session(self) -> Iterator[_Client]:
        """A logged-in client; every error leaving it is a CatalogError free of secrets."""
        try:
            yield self._login()
        except CatalogError as error:
            raise _redacted(error, self._secrets()) from None

    def _login(self) -> _Client:
        try:
            return _Client(
                base_url=self.url,
                token=self.token,
                username=self.username,
                password=self.password,
                timeout_seconds=self.timeout_seconds,
            )
        except ScicatLoginError as refused:
            raise _login_error(refused, self.username) from None
        except AssertionError:
            raise CatalogError("SciCat needs a token, or a username and password") from None
        except requests.RequestException as exc:
            raise CatalogUnavailable(f"SciCat at {self.url} unreachable ({_kind(exc)})") from None

    def _secrets(self) -> list[str]:
        return [s for s in (self.token, self.password) if s]


def _identity(beamline: str, key: str, kind: DatasetKind) -> dict[str, str]:
    """The query naming one beamline's dataset: a scalar matches an array field that holds it,
    so ``accessGroups`` matches any dataset its beamline's group may see."""
    return {"type": kind, "runNumber": key, "accessGroups": beamline}


def dataset_page(api_url: str, pid: str, frontend_url: str | None = None) -> str:
    """The SciCat frontend's page of a dataset, ``<frontend>/datasets/<pid>`` with the pid
    encoded whole (its ``/`` too), as the frontend's own links write it. Without a frontend
    URL, the one usually served beside the API: its URL without ``/api/vN``."""
    frontend = frontend_url or re.sub(r"/api(/v\d+)?$", "", api_url.rstrip("/"))
    return f"{frontend.rstrip('/')}/datasets/{quote(pid, safe='')}"


def _call(client: _Client, operation: str, request: Callable[[], _T]) -> _T:
    """Run one pyscicat call, turning its errors into ours. Exceptions are re-raised ``from
    None``: requests' own messages carry the URL, and with it the ``access_token`` query."""
    try:
        return request()
    except (ScicatCommError, requests.RequestException) as exc:
        response = client.last_response
        if response is None:
            raise CatalogUnavailable(
                f"SciCat unreachable during {operation} ({_kind(exc)})"
            ) from None
        message = _message(response)
        if response.status_code >= 500 or response.ok:
            raise CatalogUnavailable(
                f"SciCat failed {operation} with HTTP {response.status_code}: {message}"
            ) from None
        raise CatalogRejected(operation, response.status_code, message) from None


def _login_error(refused: ScicatLoginError, username: str | None) -> CatalogError:
    """pyscicat keeps only the body of a refused login; NestJS puts the status in it."""
    try:
        body = json.loads(refused.message)
        status, said = int(body["statusCode"]), body.get("message", "")
    except (ValueError, TypeError, KeyError):
        status, said = 401, bytes(refused.message).decode(errors="replace")[:500]
    if status >= 500:
        return CatalogUnavailable(f"SciCat failed the login with HTTP {status}: {said}")
    return CatalogRejected("login", status, f"login of {username!r} refused: {said}")


def _message(response: requests.Response) -> str:
    """SciCat's own words: NestJS puts them in ``message`` (a list for validation errors)."""
    try:
        said = response.json().get("message", response.text)
    except (ValueError, AttributeError):
        said = response.text
    return "; ".join(map(str, said)) if isinstance(said, list) else str(said)[:500]


def _kind(exc: Exception) -> str:
    return type(exc).__name__


def _redacted(error: CatalogError, secrets: list[str]) -> CatalogError:
    """The error, with any secret that SciCat echoed back masked in its message."""

    def mask(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    error.args = tuple(mask(str(arg)) for arg in error.args)
    if isinstance(error, CatalogRejected):
        error.message = mask(error.message)
    return error
