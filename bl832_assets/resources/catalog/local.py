"""The embedded catalog: SciCat-shaped datasets in one SQLite file on this machine.

One row per dataset, unique per (type, scan): re-ingesting a scan updates its row and keeps
its pid, and the UNIQUE constraint, not a read-then-write race, is what stops two processes
ingesting the same scan from creating two datasets.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field

from bl832_assets.resources.catalog.base import CatalogRecord, CatalogResource, FileEntry
from bl832_assets.resources.catalog.errors import DatasetNotFound
from bl832_assets.resources.catalog.mapping import (
    derived_dataset,
    origdatablock,
    raw_dataset,
    scan_key_of,
)
from bl832_assets.science.dx import ScanMetadata

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    pid TEXT PRIMARY KEY,
    type TEXT NOT NULL CHECK (type IN ('raw', 'derived')),
    scan_key TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (type, scan_key)
)
"""


def show_command(pid: str) -> str:
    """The command that prints a dataset of the local catalog: its only way to be browsed."""
    return f"bl832 catalog show {pid}"


class LocalCatalogResource(CatalogResource):
    """Keeps raw and derived datasets of scans in SQLite, with SciCat's fields and pids."""

    database: str = Field(description="SQLite file holding the catalog (created if missing).")
    pid_prefix: str = Field(
        default="bl832.local",
        description="Prefix of new pids, which look like SciCat's '<prefix>/<uuid>'.",
    )

    def ingest_raw(
        self,
        scan_file: str,
        metadata: ScanMetadata,
        files: list[FileEntry],
        thumbnail: str | None = None,
    ) -> CatalogRecord:
        dataset = raw_dataset(scan_file, metadata, files)
        dataset["origdatablocks"] = [origdatablock(dataset["sourceFolder"], files)]
        if thumbnail is not None:
            dataset["attachments"] = [{"thumbnail": thumbnail, "caption": "raw image"}]
        with self._transaction() as db:
            return self._upsert(db, "raw", scan_key_of(scan_file), dataset)

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
        with self._transaction() as db:
            raw = _read(db, "pid = ?", (raw_pid,))
            if raw is None:
                raise DatasetNotFound(raw_pid)
            dataset = derived_dataset(
                raw.record,
                raw_pid=raw_pid,
                scan_key=scan_key,
                tiff_folder=tiff_folder,
                zarr_folder=zarr_folder,
                files=files,
                used_software=used_software,
                job_parameters=job_parameters,
            )
            dataset["origdatablocks"] = [origdatablock(dataset["sourceFolder"], files)]
            return self._upsert(db, "derived", scan_key, dataset)

    def get(self, pid: str) -> dict[str, Any] | None:
        with closing(self._connect()) as db:
            found = _read(db, "pid = ?", (pid,))
        return None if found is None else found.record

    def find_raw(self, scan: str) -> CatalogRecord | None:
        with closing(self._connect()) as db:
            return _read(db, "type = 'raw' AND scan_key = ?", (scan_key_of(scan),))

    def _upsert(
        self, db: sqlite3.Connection, kind: str, scan_key: str, dataset: dict[str, Any]
    ) -> CatalogRecord:
        proposed = f"{self.pid_prefix}/{uuid.uuid4()}"
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        ((pid, created_at),) = db.execute(
            "INSERT INTO datasets (pid, type, scan_key, record, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (type, scan_key) DO UPDATE"
            " SET record = excluded.record, updated_at = excluded.updated_at"
            " RETURNING pid, created_at",
            (proposed, kind, scan_key, json.dumps(dataset), now, now),
        ).fetchall()
        return CatalogRecord(
            pid, pid == proposed, _with_server_fields(dataset, pid, created_at, now)
        )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One ingest, one transaction: a failed ingest leaves the catalog as it was."""
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _connect(self) -> sqlite3.Connection:
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.database, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(_SCHEMA)
        return db


def _read(db: sqlite3.Connection, where: str, values: tuple[str, ...]) -> CatalogRecord | None:
    row = db.execute(
        f"SELECT pid, record, created_at, updated_at FROM datasets WHERE {where}", values
    ).fetchone()
    if row is None:
        return None
    pid, record, created_at, updated_at = row
    return CatalogRecord(
        pid, False, _with_server_fields(json.loads(record), pid, created_at, updated_at)
    )


def _with_server_fields(
    dataset: dict[str, Any], pid: str, created_at: str, updated_at: str
) -> dict[str, Any]:
    """The dataset as SciCat returns it: with the fields its server adds."""
    return {**dataset, "pid": pid, "createdAt": created_at, "updatedAt": updated_at}
