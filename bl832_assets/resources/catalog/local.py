"""The embedded catalog: SciCat-shaped datasets in one SQLite file on this machine.

One row per dataset, unique per (beamline, type, key): re-ingesting a dataset updates its row
and keeps its pid, and the UNIQUE constraint, not a read-then-write race, is what stops two
processes ingesting the same dataset from creating two. 8.3.2's scans are rows of beamline
"8.3.2". A catalog written before beamlines were told apart (no ``beamline`` column, schema
version 0) is migrated on first open: its rows are all 8.3.2's.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field

from bl832_assets.resources.catalog.base import (
    CatalogRecord,
    CatalogResource,
    DatasetRecord,
    FileEntry,
)
from bl832_assets.resources.catalog.errors import DatasetNotFound
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

LOCK_TIMEOUT_SECONDS = 30
_WAL_RETRY_SECONDS = 0.01
SCHEMA_VERSION = 1  # PRAGMA user_version; 0: a new file, or one without the beamline column
# scan_key is the dataset's key (its partition key), named when only 8.3.2's scans had one.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    pid TEXT PRIMARY KEY,
    beamline TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('raw', 'derived')),
    scan_key TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (beamline, type, scan_key)
)
"""
_COLUMNS = "pid, type, scan_key, record, created_at, updated_at"
_IDENTITY = "beamline = ? AND type = ? AND scan_key = ?"


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
        key = scan_key_of(scan_file)
        return self.ingest_dataset(
            DatasetRecord(BEAMLINE_GROUP, key, "raw", dataset, tuple(files), thumbnail)
        )

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
            record = DatasetRecord(BEAMLINE_GROUP, scan_key, "derived", dataset, tuple(files))
            return self._upsert(db, record)

    def ingest_dataset(self, record: DatasetRecord) -> CatalogRecord:
        with self._transaction() as db:
            for pid in record.fields.get("inputDatasets", []):
                if _read(db, "pid = ?", (pid,)) is None:
                    raise DatasetNotFound(pid)
            return self._upsert(db, record)

    def find_dataset(self, beamline: str, key: str, kind: DatasetKind) -> CatalogRecord | None:
        with closing(self._connect()) as db:
            return _read(db, _IDENTITY, (beamline, kind, key))

    def get(self, pid: str) -> dict[str, Any] | None:
        with closing(self._connect()) as db:
            found = _read(db, "pid = ?", (pid,))
        return None if found is None else found.record

    def find_raw(self, scan: str) -> CatalogRecord | None:
        with closing(self._connect()) as db:
            return _read(db, _IDENTITY, (BEAMLINE_GROUP, "raw", scan_key_of(scan)))

    def _upsert(self, db: sqlite3.Connection, record: DatasetRecord) -> CatalogRecord:
        """Store the record, with its datablock and thumbnail, as the one row of its dataset."""
        dataset = dataset_body(record)
        dataset["origdatablocks"] = [origdatablock(dataset["sourceFolder"], record.files)]
        if record.thumbnail is not None:
            caption = THUMBNAIL_CAPTIONS[record.kind]
            dataset["attachments"] = [{"thumbnail": record.thumbnail, "caption": caption}]
        proposed = f"{self.pid_prefix}/{uuid.uuid4()}"
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        ((pid, created_at),) = db.execute(
            f"INSERT INTO datasets (beamline, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (beamline, type, scan_key) DO UPDATE"
            " SET record = excluded.record, updated_at = excluded.updated_at"
            " RETURNING pid, created_at",
            (record.beamline, proposed, record.kind, record.key, json.dumps(dataset), now, now),
        ).fetchall()
        return CatalogRecord(
            pid, pid == proposed, _with_server_fields(dataset, pid, created_at, now)
        )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One ingest, one transaction: a failed ingest leaves the catalog as it was."""
        with closing(self._connect()) as db, _immediate(db):
            yield db

    def _connect(self) -> sqlite3.Connection:
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.database, timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None)
        _use_wal(db)
        if _version(db) < SCHEMA_VERSION:
            _migrate(db)
        return db


def _use_wal(db: sqlite3.Connection) -> None:
    """Write-ahead logging, so readers never wait for the writer. Switching a new file to it
    needs the file alone, and SQLite refuses that at once, without waiting, to a connection it
    would otherwise deadlock: when several runs open a new catalog together, they retry."""
    deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
        time.sleep(_WAL_RETRY_SECONDS)


@contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction, taken at once so concurrent writers queue instead of failing."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _migrate(db: sqlite3.Connection) -> None:
    """Bring the file to ``SCHEMA_VERSION`` in one transaction, checked again under its lock
    since another process may have migrated it meanwhile. Version 0 with a ``datasets`` table
    is the catalog of 8.3.2 alone: its rows move, pids and times kept, to beamline 8.3.2."""
    with _immediate(db):
        if _version(db) >= SCHEMA_VERSION:
            return
        columns = {row[1] for row in db.execute("PRAGMA table_info(datasets)")}
        if columns and "beamline" not in columns:
            db.execute("ALTER TABLE datasets RENAME TO datasets_before_beamlines")
            db.execute(_SCHEMA)
            db.execute(
                f"INSERT INTO datasets (beamline, {_COLUMNS})"
                f" SELECT ?, {_COLUMNS} FROM datasets_before_beamlines",
                (BEAMLINE_GROUP,),
            )
            db.execute("DROP TABLE datasets_before_beamlines")
        else:
            db.execute(_SCHEMA)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


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
