"""The local backend's task log: every copy request is a row, like a Globus task document, so
an operator can see what was asked, what moved and why something failed, across processes."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bl832_assets.resources.transfer.results import TaskStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    source TEXT NOT NULL,
    destination TEXT NOT NULL,
    path TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'SUCCEEDED', 'FAILED')),
    files INTEGER,
    files_transferred INTEGER NOT NULL DEFAULT 0,
    files_skipped INTEGER NOT NULL DEFAULT 0,
    bytes_transferred INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    request_time TEXT NOT NULL,
    completion_time TEXT
)
"""


@dataclass(frozen=True)
class TaskRecord:
    """One row of the task log."""

    task_id: str
    label: str
    source: str
    destination: str
    path: str
    status: TaskStatus
    files: int | None  # unknown until the source has been listed
    files_transferred: int
    files_skipped: int
    bytes_transferred: int
    error: str | None
    request_time: str
    completion_time: str | None


@dataclass(frozen=True)
class TaskCounts:
    """What a task moved, recorded when it ends (also when it fails part-way)."""

    files: int | None
    files_transferred: int
    files_skipped: int
    bytes_transferred: int


class TaskLog:
    """Task rows in one SQLite file, shared by every process of the site.

    Each call opens its own short connection: runs in separate processes record concurrently,
    and WAL mode lets readers look while a writer records.
    """

    def __init__(self, database: str | Path) -> None:
        self._database = Path(database)

    def start(self, *, label: str, source: str, destination: str, path: str) -> str:
        task_id = str(uuid.uuid4())
        with closing(self._connect()) as db:
            db.execute(
                "INSERT INTO tasks (task_id, label, source, destination, path, status,"
                " request_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (task_id, label, source, destination, path, TaskStatus.ACTIVE, _now()),
            )
        return task_id

    def finish(
        self, task_id: str, status: TaskStatus, counts: TaskCounts, error: str | None = None
    ) -> None:
        with closing(self._connect()) as db:
            db.execute(
                "UPDATE tasks SET status = ?, files = ?, files_transferred = ?,"
                " files_skipped = ?, bytes_transferred = ?, error = ?, completion_time = ?"
                " WHERE task_id = ?",
                (
                    status,
                    counts.files,
                    counts.files_transferred,
                    counts.files_skipped,
                    counts.bytes_transferred,
                    error,
                    _now(),
                    task_id,
                ),
            )

    def get(self, task_id: str) -> TaskRecord | None:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT task_id, label, source, destination, path, status, files,"
                " files_transferred, files_skipped, bytes_transferred, error, request_time,"
                " completion_time FROM tasks WHERE task_id = ?",
                (task_id,),
            ).fetchone()
        if row is None:
            return None
        values = list(row)
        values[5] = TaskStatus(values[5])
        return TaskRecord(*values)

    def _connect(self) -> sqlite3.Connection:
        self._database.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._database, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(_SCHEMA)
        return db


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
