"""The Globus backend: endpoints are Globus collections, copies are Transfer tasks.

Exactly once: the submission id is derived (uuid5) from the Dagster run id, the label, the
endpoints and the path, so every attempt of a step (same run) resubmits the same id and Globus
returns the task already started instead of starting a second; a new run of the partition gets
a new id and really copies again. See ``globus_tasks`` for the FAILED-task chain.

Success: only a re-read ``SUCCEEDED`` counts; FAILED, INACTIVE and a task still running at
``max_wait_seconds`` (also set as the task's Globus deadline) raise ``GlobusTaskFailed``.

Checksums: Globus verifies every file itself (``verify_checksum``) but returns no hashes and
has no remote hash API. Storage mounted on this machine (``mounts``: the beamline's own) is
hashed here, through the local backend's helpers; elsewhere ``checksums`` raises
``ChecksumUnavailable`` rather than pretend, and a copy's ``sha256`` is empty: its proof is the
SUCCEEDED, checksum-verified task, and ``listing`` (names and sizes) is what can be re-checked.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import dagster as dg
import globus_sdk
from globus_sdk.transport import RetryConfig
from pydantic import Field, PrivateAttr

from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.resources.transfer.copying import is_partial
from bl832_assets.resources.transfer.errors import (
    ChecksumUnavailable,
    PathNotFound,
    UnknownEndpoint,
)
from bl832_assets.resources.transfer.globus_errors import GlobusRequestRefused
from bl832_assets.resources.transfer.globus_tasks import (
    NAMESPACE,
    TaskScope,
    submit_once,
    wait_for_success,
)
from bl832_assets.resources.transfer.local import file_sizes, files_under, hash_files
from bl832_assets.resources.transfer.paths import join_under_root, safe_relative_path
from bl832_assets.resources.transfer.renaming import rename_pending
from bl832_assets.resources.transfer.results import TaskStatus, TransferResult

_LABEL_FORBIDDEN = re.compile(r"[^A-Za-z0-9 ,_-]")  # Globus refuses labels with other characters


class GlobusTransferResource(TransferResource):
    """Copies between Globus collections with sync_level=checksum and verify_checksum, waiting
    for each task and treating only SUCCEEDED as done."""

    collections: dict[str, str] = Field(
        description="Endpoint name → Globus collection UUID, e.g. {'spot832': '…'}."
    )
    roots: dict[str, str] = Field(
        default_factory=dict,
        description="Endpoint name → folder inside its collection holding the endpoint's data "
        "(default '/').",
    )
    mounts: dict[str, str] = Field(
        default_factory=dict,
        description="Endpoint name → folder where this machine sees that endpoint's files "
        "(the same relative paths as under its root in the collection). Mounted endpoints are "
        "hashed here; the others can only be compared by names and sizes.",
    )
    hash_workers: int = Field(
        default=4, ge=1, description="Files of a mounted folder hashed at once."
    )
    client_id: str = Field(description="Confidential client id (give as dg.EnvVar).")
    client_secret: str = Field(description="Confidential client secret (give as dg.EnvVar).")
    transfer_url: str | None = Field(
        default=None, description="Transfer API base URL; None means production Globus."
    )
    auth_url: str | None = Field(
        default=None, description="Globus Auth base URL; None means production Globus."
    )
    poll_seconds: float = Field(default=15.0, gt=0, description="Seconds between task polls.")
    max_wait_seconds: float = Field(
        default=6 * 3600,
        gt=0,
        description="Task deadline: a task still running after this is cancelled and fails.",
    )
    max_retries: int = Field(
        default=5, ge=0, description="HTTP retries on connection errors and 429/5xx replies."
    )

    _run_id: str = PrivateAttr(default="")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Attempts of one run share its id; a new run of the same partition must copy again.
        self._run_id = context.run.run_id if context.run else ""

    def copy(
        self,
        source: str,
        destination: str,
        relative_path: str,
        *,
        label: str,
        export_controlled: bool,
    ) -> TransferResult:
        relative = safe_relative_path(relative_path)
        self.refuse_export_controlled(
            source, destination, str(relative), export_controlled=export_controlled
        )
        scope = TaskScope(source, destination, str(relative))
        started = time.monotonic()
        try:
            client = self._client()
            data = globus_sdk.TransferData(
                self._collection(source),
                self._collection(destination),
                label=_label(label),
                submission_id=self._submission_id("transfer", label, scope),
                sync_level="checksum",
                verify_checksum=True,
                preserve_timestamp=True,
                fail_on_quota_errors=True,
                deadline=self._deadline(),
            )
            data.add_item(
                str(self._path(source, relative)),
                str(self._path(destination, relative)),
                recursive=self._is_folder(client, source, relative),
            )
            task = submit_once(client, client.submit_transfer, data, scope)
            task = self._wait(client, task, scope)
        except globus_sdk.GlobusAPIError as error:
            raise GlobusRequestRefused(f"copy of {scope.relative_path!r}", error) from None
        sha256, bytes_total = self._landed(destination, relative)
        written = self._written(task["task_id"], self._path(destination, relative))
        return TransferResult(
            task_id=task["task_id"],
            status=TaskStatus.SUCCEEDED,
            source=source,
            destination=destination,
            relative_path=scope.relative_path,
            bytes_total=bytes_total,
            bytes_transferred=int(task.get("bytes_transferred") or 0),
            files_transferred=int(task.get("files_transferred") or 0),
            files_skipped=int(task.get("files_skipped") or 0),
            sha256=sha256,
            seconds=time.monotonic() - started,
            transferred=written,
        )

    def checksums(self, endpoint: str, relative_path: str) -> dict[str, str]:
        """Hashed here through the endpoint's mount; ``ChecksumUnavailable`` without one."""
        relative = safe_relative_path(relative_path)
        files = files_under(self._mounted(endpoint, relative), endpoint, str(relative))
        return hash_files(files, self.hash_workers)

    def listing(self, endpoint: str, relative_path: str) -> dict[str, int]:
        """Sizes as Globus lists them (never through a mount, so the answer is the collection's
        own): one ``ls`` per folder. Globus refuses a folder of more than 100,000 entries, which
        surfaces as ``GlobusRequestRefused``; limit/offset paging would not help, since Globus
        re-reads the whole folder for every page."""
        relative = safe_relative_path(relative_path)
        path = self._path(endpoint, relative)
        try:
            client = self._client()
            entry = self._entry(client, endpoint, path)
            if entry is None:
                raise PathNotFound(endpoint, str(relative))
            if entry["type"] != "dir":
                return {path.name: int(entry["size"])}
            return self._sizes_under(client, endpoint, path)
        except globus_sdk.GlobusAPIError as error:
            raise GlobusRequestRefused(f"listing {endpoint}:{path}", error) from None

    def exists(self, endpoint: str, relative_path: str) -> bool:
        path = self._path(endpoint, safe_relative_path(relative_path))
        try:
            return self._entry(self._client(), endpoint, path) is not None
        except globus_sdk.GlobusAPIError as error:
            raise GlobusRequestRefused(f"listing {endpoint}:{path.parent}", error) from None

    def delete(self, endpoint: str, relative_path: str, *, label: str) -> str:
        """Delete a file or folder (recursively) on ``endpoint``; already gone is fine. Blocks
        until the delete task SUCCEEDED and returns its id, exactly once like ``copy``."""
        relative = safe_relative_path(relative_path)
        scope = TaskScope(endpoint, endpoint, str(relative))
        try:
            client = self._client()
            data = globus_sdk.DeleteData(
                self._collection(endpoint),
                label=_label(label),
                submission_id=self._submission_id("delete", label, scope),
                recursive=True,
                ignore_missing=True,
                deadline=self._deadline(),
            )
            data.add_item(str(self._path(endpoint, relative)))
            task = submit_once(client, client.submit_delete, data, scope)
            return self._wait(client, task, scope)["task_id"]
        except globus_sdk.GlobusAPIError as error:
            raise GlobusRequestRefused(f"delete of {scope.relative_path!r}", error) from None

    def rename(
        self, endpoint: str, relative_path: str, new_relative_path: str, *, label: str
    ) -> None:
        """A Globus rename: synchronous (no task, so nothing to label in Globus) and refused by
        Globus when the new path's folder is missing, so missing folders are made first.

        What exists decides, before the rename and again if it fails, not the error's code: the
        SDK resends a rename whose reply was lost (502/504) and the resent one finds its source
        gone, and Globus documents neither its rename error codes nor whether a rename onto an
        existing file fails or replaces it (the POSIX rename below a collection replaces), so
        the conflict is checked here. Through a mount, both paths are also checked for symbolic
        links leading out of the endpoint; without one, the collection itself confines paths.
        """
        old, new = safe_relative_path(relative_path), safe_relative_path(new_relative_path)
        collection = self._collection(endpoint)
        if endpoint in self.mounts:
            self._mounted(endpoint, old)
            self._mounted(endpoint, new)
        source, target = self._path(endpoint, old), self._path(endpoint, new)
        try:
            client = self._client()
            if not self._rename_pending(client, endpoint, old, new, label):
                return
            self._make_folders(client, endpoint, target.parent)
            try:
                client.operation_rename(collection, str(source), str(target))
            except globus_sdk.GlobusAPIError:
                if self._rename_pending(client, endpoint, old, new, label):
                    raise
        except globus_sdk.GlobusAPIError as error:
            what = f"{label}: rename of {endpoint}:{source} to {target}"
            raise GlobusRequestRefused(what, error) from None

    def mkdir(self, endpoint: str, relative_path: str) -> None:
        """Create a folder (its parent must exist); an existing folder is fine."""
        path = self._path(endpoint, safe_relative_path(relative_path))
        try:
            self._mkdir(self._client(), endpoint, path)
        except globus_sdk.GlobusAPIError as error:
            raise GlobusRequestRefused(f"mkdir {endpoint}:{path}", error) from None

    def _mkdir(self, client: globus_sdk.TransferClient, endpoint: str, path: PurePosixPath) -> None:
        try:
            client.operation_mkdir(self._collection(endpoint), str(path))
        except globus_sdk.GlobusAPIError as error:
            if error.code != "ExternalError.MkdirFailed.Exists":
                raise

    def _make_folders(
        self, client: globus_sdk.TransferClient, endpoint: str, folder: PurePosixPath
    ) -> None:
        """Create ``folder`` and its missing parents below the endpoint root. Only the missing
        ones: Globus answers an existing folder with HTTP 502, which the SDK retries with
        back-off before giving up, so asking for every level would be slow."""
        root = PurePosixPath(self.roots.get(endpoint, "/"))
        missing = []
        while folder != root and self._entry(client, endpoint, folder) is None:
            missing.append(folder)
            folder = folder.parent
        for path in reversed(missing):
            self._mkdir(client, endpoint, path)

    def _rename_pending(
        self,
        client: globus_sdk.TransferClient,
        endpoint: str,
        old: PurePosixPath,
        new: PurePosixPath,
        label: str,
    ) -> bool:
        return rename_pending(
            endpoint,
            str(old),
            str(new),
            label=label,
            old_exists=self._entry(client, endpoint, self._path(endpoint, old)) is not None,
            new_exists=self._entry(client, endpoint, self._path(endpoint, new)) is not None,
        )

    def _written(self, task_id: str, target: PurePosixPath) -> tuple[str, ...]:
        """What the task wrote, keyed like ``checksums`` (relative to a copied folder, or the
        file's name), from Globus's record of its successful transfers."""
        names = []
        for _, written in self.successful_transfers(task_id):
            path = PurePosixPath(written)
            names.append(path.name if path == target else path.relative_to(target).as_posix())
        return tuple(sorted(names))

    def successful_transfers(self, task_id: str) -> list[tuple[str, str]]:
        """(source_path, destination_path) of every file a task moved, for the run's metadata."""
        try:
            pages = self._client().paginated.task_successful_transfers(task_id)
            return [(item["source_path"], item["destination_path"]) for item in pages.items()]
        except globus_sdk.GlobusAPIError as error:
            raise GlobusRequestRefused(f"files of task {task_id}", error) from None

    def _client(self) -> globus_sdk.TransferClient:
        retry = RetryConfig(max_retries=self.max_retries, max_sleep=min(10, self.poll_seconds))
        auth = globus_sdk.ConfidentialAppAuthClient(
            client_id=self.client_id,
            client_secret=self.client_secret,
            base_url=self.auth_url,
            retry_config=retry,
        )
        authorizer = globus_sdk.ClientCredentialsAuthorizer(
            auth, globus_sdk.TransferClient.scopes.all
        )
        return globus_sdk.TransferClient(
            base_url=self.transfer_url, authorizer=authorizer, retry_config=retry
        )

    def _wait(
        self, client: globus_sdk.TransferClient, task: dict[str, Any], scope: TaskScope
    ) -> dict[str, Any]:
        return wait_for_success(
            client,
            task,
            scope,
            poll_seconds=self.poll_seconds,
            max_wait_seconds=self.max_wait_seconds,
        )

    def _submission_id(self, kind: str, label: str, scope: TaskScope) -> str:
        parts = (kind, self._run_id, label, scope.source, scope.destination, scope.relative_path)
        return str(uuid.uuid5(NAMESPACE, "\n".join(parts)))

    def _deadline(self) -> str:
        deadline = datetime.now(UTC) + timedelta(seconds=self.max_wait_seconds)
        return deadline.isoformat(timespec="seconds")

    def _is_folder(
        self, client: globus_sdk.TransferClient, endpoint: str, relative: PurePosixPath
    ) -> bool:
        """Whether the source is a folder, which Globus copies only as a recursive item."""
        entry = self._entry(client, endpoint, self._path(endpoint, relative))
        if entry is None:
            raise PathNotFound(endpoint, str(relative))
        return entry["type"] == "dir"

    def _entry(
        self, client: globus_sdk.TransferClient, endpoint: str, path: PurePosixPath
    ) -> dict[str, Any] | None:
        """The ``ls`` entry of ``path`` in its parent folder; None when either is missing."""
        try:
            entries = client.operation_ls(self._collection(endpoint), path=str(path.parent))
        except globus_sdk.GlobusAPIError as error:
            if error.http_status == 404:
                return None
            raise
        return next((entry for entry in entries if entry["name"] == path.name), None)

    def _sizes_under(
        self, client: globus_sdk.TransferClient, endpoint: str, folder: PurePosixPath
    ) -> dict[str, int]:
        """Every file below ``folder`` with its size, keyed relative to it like ``checksums``:
        temporary files of a copy in flight are left out here too."""
        collection = self._collection(endpoint)
        sizes: dict[str, int] = {}
        pending = [PurePosixPath()]
        while pending:
            inner = pending.pop()
            entries = client.operation_ls(collection, path=str(folder / inner), show_hidden=True)
            for entry in entries:
                name = inner / entry["name"]
                if entry["type"] == "dir":
                    pending.append(name)
                elif entry["type"] == "file" and not is_partial(entry["name"]):
                    sizes[name.as_posix()] = int(entry["size"])
        return dict(sorted(sizes.items()))

    def _landed(self, destination: str, relative: PurePosixPath) -> tuple[dict[str, str], int]:
        """sha256 per file (empty when the destination is not mounted here) and total size of
        what a copy left at the destination. Globus reports neither: its task counts only the
        bytes it moved, which is less than the total when files were skipped as identical."""
        if destination not in self.mounts:
            return {}, sum(self.listing(destination, str(relative)).values())
        files = files_under(self._mounted(destination, relative), destination, str(relative))
        return hash_files(files, self.hash_workers), sum(file_sizes(files).values())

    def _mounted(self, endpoint: str, relative: PurePosixPath) -> Path:
        """Where this machine sees ``relative`` of ``endpoint``, or ``ChecksumUnavailable``."""
        self._collection(endpoint)  # an unknown endpoint is a typo, not a missing mount
        mount = self.mounts.get(endpoint)
        if mount is None:
            raise ChecksumUnavailable(
                endpoint,
                str(relative),
                "not mounted on this machine, and Globus has no remote checksum API "
                "(its copies are verified by their task: verify_checksum)",
            )
        return join_under_root(Path(mount), relative)

    def _collection(self, endpoint: str) -> str:
        collection = self.collections.get(endpoint)
        if collection is None:
            raise UnknownEndpoint(endpoint, sorted(self.collections))
        return collection

    def _path(self, endpoint: str, relative: PurePosixPath) -> PurePosixPath:
        return PurePosixPath(self.roots.get(endpoint, "/")) / relative


def _label(label: str) -> str:
    return _LABEL_FORBIDDEN.sub("-", label)[:128]
