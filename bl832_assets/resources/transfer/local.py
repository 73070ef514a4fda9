"""The embedded transfer backend: endpoints are folders of this machine, and a copy behaves
the way a Globus transfer with sync_level=checksum and verify_checksum does, so that asset
code, checks and retries written against it hold unchanged when a site switches to Globus."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path, PurePosixPath

from pydantic import Field

from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.resources.transfer.copying import FileOutcome, is_partial, sha256_file, sync_file
from bl832_assets.resources.transfer.errors import PathNotFound, TransferFailed, UnknownEndpoint
from bl832_assets.resources.transfer.paths import join_under_root, safe_relative_path
from bl832_assets.resources.transfer.renaming import rename_pending
from bl832_assets.resources.transfer.results import TaskStatus, TransferResult
from bl832_assets.resources.transfer.tasks import TaskCounts, TaskLog


class LocalTransferResource(TransferResource):
    """Copies between folders of this machine, each file verified by sha256 before it is
    renamed into place, every request recorded as a task in SQLite.

    A folder is copied file by file with the same guarantees. Files found only at the
    destination are kept, as Globus keeps them (``delete_destination_extra`` off): sources are
    pruned by retention, so mirroring a folder could delete the last copy of data.
    """

    endpoints: dict[str, str] = Field(
        description="Endpoint name → its root folder on this machine, "
        "e.g. {'spot832': '/data/spot832', 'data832_raw': '/data/raw'}."
    )
    database: str = Field(
        description="SQLite file recording every copy as a task (created if missing)."
    )
    parallel_files: int = Field(
        default=4,
        ge=1,
        description="Files of a folder copied at once; overlaps the per-file fsync waits.",
    )

    def copy(
        self,
        source: str,
        destination: str,
        relative_path: str,
        *,
        label: str,
        export_controlled: bool,
    ) -> TransferResult:
        relative = str(safe_relative_path(relative_path))
        self.refuse_export_controlled(
            source, destination, relative, export_controlled=export_controlled
        )
        source_root = self._path(source, relative)
        destination_root = self._path(destination, relative)
        log = TaskLog(self.database)
        task_id = log.start(label=label, source=source, destination=destination, path=relative)
        started = time.monotonic()
        tally = _Tally()
        try:
            files = files_under(source_root, source, relative)
            tally.files = len(files)
            if source_root.is_dir():
                destination_root.mkdir(parents=True, exist_ok=True)
            pairs = [
                (key, path, destination_root / path.relative_to(source_root))
                for key, path in files.items()
            ]
            self._sync(pairs, task_id, tally)
        except Exception as exc:
            log.finish(task_id, TaskStatus.FAILED, tally.counts(), str(exc))
            raise TransferFailed(task_id, source, destination, relative, str(exc)) from exc
        except BaseException:
            log.finish(task_id, TaskStatus.FAILED, tally.counts(), "interrupted")
            raise
        log.finish(task_id, TaskStatus.SUCCEEDED, tally.counts())
        return TransferResult(
            task_id=task_id,
            status=TaskStatus.SUCCEEDED,
            source=source,
            destination=destination,
            relative_path=relative,
            bytes_total=tally.bytes_total,
            bytes_transferred=tally.bytes_transferred,
            files_transferred=tally.files_transferred,
            files_skipped=tally.files_skipped,
            sha256=dict(sorted(tally.sha256.items())),
            seconds=time.monotonic() - started,
            transferred=tuple(sorted(tally.transferred)),
        )

    def checksums(self, endpoint: str, relative_path: str) -> dict[str, str]:
        relative = str(safe_relative_path(relative_path))
        files = files_under(self._path(endpoint, relative), endpoint, relative)
        return hash_files(files, self.parallel_files)

    def listing(self, endpoint: str, relative_path: str) -> dict[str, int]:
        relative = str(safe_relative_path(relative_path))
        return file_sizes(files_under(self._path(endpoint, relative), endpoint, relative))

    def exists(self, endpoint: str, relative_path: str) -> bool:
        return self._path(endpoint, str(safe_relative_path(relative_path))).exists()

    def delete(self, endpoint: str, relative_path: str, *, label: str) -> str:
        """Delete the file or folder at ``relative_path``, recorded as a task like a copy (its
        ``files`` counts the files removed). A symbolic link is removed, not followed."""
        relative = str(safe_relative_path(relative_path))
        target = self._path(endpoint, relative)
        log = TaskLog(self.database)
        task_id = log.start(label=label, source=endpoint, destination=endpoint, path=relative)
        try:
            removed = _remove(target)
        except Exception as exc:
            log.finish(task_id, TaskStatus.FAILED, TaskCounts(None, 0, 0, 0), str(exc))
            raise TransferFailed(task_id, endpoint, endpoint, relative, f"delete: {exc}") from exc
        log.finish(task_id, TaskStatus.SUCCEEDED, TaskCounts(removed, 0, 0, 0))
        return task_id

    def rename(
        self, endpoint: str, relative_path: str, new_relative_path: str, *, label: str
    ) -> None:
        """``os.rename``: atomic, and as quick for a folder of any size as for a file. Like a
        Globus rename it is no task, so none is recorded.

        Whether the new path exists is checked just before the rename, which would silently
        replace a file there: two steps, so a writer racing for the same new path could slip in
        between. Retention is the only writer of trash paths, one step per scan at a time.
        """
        old = str(safe_relative_path(relative_path))
        new = str(safe_relative_path(new_relative_path))
        source, target = self._path(endpoint, old), self._path(endpoint, new)
        pending = rename_pending(
            endpoint,
            old,
            new,
            label=label,
            old_exists=os.path.lexists(source),
            new_exists=os.path.lexists(target),
        )
        if pending:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(source, target)

    def _path(self, endpoint: str, relative_path: str) -> Path:
        root = self.endpoints.get(endpoint)
        if root is None:
            raise UnknownEndpoint(endpoint, sorted(self.endpoints))
        return join_under_root(Path(root), PurePosixPath(relative_path))

    def _sync(self, pairs: list[tuple[str, Path, Path]], task_id: str, tally: _Tally) -> None:
        def sync_one(key: str, source: Path, destination: Path) -> None:
            destination.parent.mkdir(parents=True, exist_ok=True)
            tally.add(key, sync_file(source, destination, tag=task_id))

        with ThreadPoolExecutor(self.parallel_files) as pool:
            futures = [pool.submit(sync_one, *pair) for pair in pairs]
            try:
                for future in as_completed(futures):
                    future.result()
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise


def files_under(path: Path, endpoint: str, relative_path: str) -> dict[str, Path]:
    """Every regular file a copy of ``path`` covers, keyed as ``checksums`` keys them, in
    sorted order. Temporary files of copies in flight are not data and are left out.

    Public because any backend that sees an endpoint's storage through a folder of this
    machine (Globus with a mount) hashes and lists it exactly as this backend does."""
    if path.is_file():
        return {path.name: path}
    if not path.is_dir():
        raise PathNotFound(endpoint, relative_path)
    found: dict[str, Path] = {}
    for folder, _, names in os.walk(path):
        for name in names:
            file = Path(folder, name)
            if not is_partial(name) and file.is_file():
                found[file.relative_to(path).as_posix()] = file
    return dict(sorted(found.items()))


def hash_files(files: Mapping[str, Path], workers: int) -> dict[str, str]:
    """sha256 of each file, keys kept; ``workers`` files at once, since hashing releases the
    GIL and a folder of many TIFFs is bound by storage latency rather than one core."""
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(files, pool.map(sha256_file, files.values()), strict=True))


def file_sizes(files: Mapping[str, Path]) -> dict[str, int]:
    """Size in bytes of each file, keys kept."""
    return {key: path.stat().st_size for key, path in files.items()}


def _remove(path: Path) -> int:
    """Remove ``path`` (a folder with everything in it) and return how many files went; a path
    already gone counts none."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
        return 1
    if not path.is_dir():
        return 0
    files = sum(len(names) for _, _, names in os.walk(path))
    shutil.rmtree(path)
    return files


class _Tally:
    """What a task has moved so far, added to by the file workers; a task that fails part-way
    still records what it moved."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.files: int | None = None
        self.sha256: dict[str, str] = {}
        self.bytes_total = 0
        self.bytes_transferred = 0
        self.files_transferred = 0
        self.files_skipped = 0
        self.transferred: list[str] = []

    def add(self, key: str, outcome: FileOutcome) -> None:
        with self._lock:
            self.sha256[key] = outcome.sha256
            self.bytes_total += outcome.size
            if outcome.copied:
                self.bytes_transferred += outcome.size
                self.files_transferred += 1
                self.transferred.append(key)
            else:
                self.files_skipped += 1

    def counts(self) -> TaskCounts:
        with self._lock:
            return TaskCounts(
                self.files, self.files_transferred, self.files_skipped, self.bytes_transferred
            )
