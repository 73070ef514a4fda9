"""The copy ledger: every copy of a scan's data at a location, with its state, and the leases
that keep a copy from being deleted while something depends on it.

Dagster's event log says what was materialized, but it cannot hold a transactional claim, and
it is trimmed. Deleting data needs both: "no prune may delete this copy while it is the source
of a copy or the safe copy behind another prune" is a compare-and-set, taken in one
transaction (``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped advisory lock on PostgreSQL),
the way Rucio locks replicas. The same SQLAlchemy Core code serves both databases.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

_ADVISORY_LOCK = 832_0001  # one lock id serializes every lease transaction on PostgreSQL

_metadata = sa.MetaData()

copies = sa.Table(
    "copies",
    _metadata,
    sa.Column("scan", sa.String(255), primary_key=True),
    sa.Column("endpoint", sa.String(100), primary_key=True),
    sa.Column("dataset", sa.String(50), primary_key=True),
    sa.Column("asset_key", sa.String(255), nullable=False),
    sa.Column("relative_path", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.BigInteger),
    sa.Column("files", sa.Integer),
    sa.Column("sha256", sa.String(64)),
    sa.Column("made_at", sa.Float, nullable=False),
    sa.Column("made_by", sa.String(100), nullable=False),
    sa.Column("export_controlled", sa.Boolean, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("state_at", sa.Float, nullable=False),
    sa.Column("trash_path", sa.Text),
    sa.Column("note", sa.Text),
    sa.Index("copies_by_location", "endpoint", "state", "made_at"),
)

leases = sa.Table(
    "leases",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scan", sa.String(255), nullable=False),
    sa.Column("endpoint", sa.String(100), nullable=False),
    sa.Column("exclusive", sa.Boolean, nullable=False),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Index("leases_by_copy", "scan", "endpoint"),
    sa.Index("leases_by_holder", "holder"),
)

trash = sa.Table(
    "trash",
    _metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("scan", sa.String(255), nullable=False),
    sa.Column("endpoint", sa.String(100), nullable=False),
    sa.Column("dataset", sa.String(50), nullable=False),
    sa.Column("relative_path", sa.Text, nullable=False),
    sa.Column("trash_path", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.BigInteger),
    sa.Column("sha256", sa.String(64)),
    sa.Column("safe_copy", sa.Text, nullable=False),
    sa.Column("trashed_at", sa.Float, nullable=False),
    sa.Column("purge_after", sa.Float, nullable=False),
    sa.Column("purged_at", sa.Float),
    sa.Column("run_id", sa.String(100), nullable=False),
    sa.Index("trash_by_location", "endpoint", "purged_at", "purge_after"),
)


class CopyState(StrEnum):
    """A copy's life. PRESENT copies may be pruned; BEING_DELETED is a prune that has claimed
    the copy and may be moving it into the trash (a crash there is resumed); PRUNED copies
    are in the trash or purged; LOST copies were recorded but are not on storage."""

    PRESENT = "PRESENT"
    BEING_DELETED = "BEING_DELETED"
    PRUNED = "PRUNED"
    LOST = "LOST"


@dataclass(frozen=True)
class CopyFacts:
    """What is known about a copy when it is made or first seen."""

    scan: str
    endpoint: str
    dataset: str
    asset_key: str
    relative_path: str
    size_bytes: int | None
    files: int | None
    sha256: str | None  # tree digest of the copy's files, as the copy verified them
    made_at: float  # the platform's clock when the copy was made (never a file's mtime)
    made_by: str  # the run that made it
    export_controlled: bool


@dataclass(frozen=True)
class CopyRecord(CopyFacts):
    state: CopyState
    state_at: float
    trash_path: str | None
    note: str | None


@dataclass(frozen=True)
class TrashEntry:
    id: str
    scan: str
    endpoint: str
    dataset: str
    relative_path: str
    trash_path: str
    size_bytes: int | None
    sha256: str | None
    safe_copy: str
    trashed_at: float
    purge_after: float
    purged_at: float | None
    run_id: str


@dataclass(frozen=True)
class Claim:
    """One copy a lease covers: exclusive to change or delete it, shared to rely on it."""

    scan: str
    endpoint: str
    exclusive: bool


class LeaseConflict(Exception):
    """Someone else holds a claim that excludes the one asked for."""

    def __init__(self, claim: Claim, holder: str, purpose: str) -> None:
        self.claim = claim
        self.holder = holder
        self.purpose = purpose
        super().__init__(f"{claim.endpoint} copy of {claim.scan} is held by {purpose} ({holder})")


class CopyLedger:
    """The ledger in one SQL database; every method is one short transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = _engine(url)
        _metadata.create_all(self._engine)

    def dispose(self) -> None:
        self._engine.dispose()

    # -- copies ---------------------------------------------------------------------------

    def record_made(self, facts: CopyFacts) -> None:
        """A copy was just made and verified: it is PRESENT, whatever was recorded before."""
        row = {**_facts_row(facts), "state": CopyState.PRESENT, "state_at": time.time()}
        row |= {"trash_path": None, "note": None}
        with self._transaction() as conn:
            done = conn.execute(copies.update().where(*_copy_is(facts)).values(**row))
            if done.rowcount == 0:
                conn.execute(copies.insert().values(**row))

    def record_seen(self, facts: CopyFacts) -> None:
        """A copy exists that the platform did not make (the detector's file) or made without
        hashing (a facility's result): record it once, keep its first time, and fill in a
        checksum or size learnt later from a verified copy of it."""
        self.record_seen_many([facts])

    def record_seen_many(self, many: Sequence[CopyFacts]) -> None:
        """``record_seen`` for each of ``many`` in turn, in one transaction: one commit for a
        chunk of historic scans instead of one per scan, and all of them recorded or none."""
        if not many:
            return
        now = time.time()
        with self._transaction() as conn:
            known = _rows_of(conn, many)
            new: dict[_Copy, dict[str, object]] = {}
            learnt: dict[_Copy, dict[str, object]] = {}
            for facts in many:
                copy = _identity(facts)
                current = new.get(copy) or known.get(copy)
                if current is None:
                    new[copy] = {**_facts_row(facts), "state": CopyState.PRESENT, "state_at": now}
                    new[copy] |= {"trash_path": None, "note": None}
                    continue
                filled = {
                    name: getattr(facts, name)
                    for name in _LEARNT
                    if current[name] is None and getattr(facts, name) is not None
                }
                current.update(filled)  # a later fact of the same copy sees what was learnt
                if copy not in new and filled:
                    learnt.setdefault(copy, {}).update(filled)
            if new:
                conn.execute(copies.insert(), list(new.values()))
            for (scan, endpoint, dataset), values in learnt.items():
                conn.execute(
                    copies.update()
                    .where(
                        copies.c.scan == scan,
                        copies.c.endpoint == endpoint,
                        copies.c.dataset == dataset,
                    )
                    .values(**values)
                )

    def get(self, scan: str, endpoint: str, dataset: str) -> CopyRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(copies).where(
                    copies.c.scan == scan,
                    copies.c.endpoint == endpoint,
                    copies.c.dataset == dataset,
                )
            ).first()
        return None if row is None else _record(row)

    def copies_of(self, scan: str) -> list[CopyRecord]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(copies).where(copies.c.scan == scan)).all()
        return [_record(row) for row in rows]

    def at(
        self, endpoint: str, states: Sequence[CopyState] = (CopyState.PRESENT,)
    ) -> list[CopyRecord]:
        """Copies at one location in the given states, oldest first (one indexed query)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(copies)
                .where(copies.c.endpoint == endpoint, copies.c.state.in_(list(states)))
                .order_by(copies.c.made_at, copies.c.scan)
            ).all()
        return [_record(row) for row in rows]

    def present_by_scan(
        self, endpoints: Iterable[str], datasets: Iterable[str]
    ) -> dict[tuple[str, str], list[CopyRecord]]:
        """PRESENT copies at ``endpoints`` grouped by (scan, dataset), in one query: planning a
        location looks up the safe copies of thousands of scans at once."""
        grouped: dict[tuple[str, str], list[CopyRecord]] = {}
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(copies).where(
                    copies.c.endpoint.in_(list(endpoints)),
                    copies.c.dataset.in_(list(datasets)),
                    copies.c.state == CopyState.PRESENT,
                )
            ).all()
        for row in rows:
            record = _record(row)
            grouped.setdefault((record.scan, record.dataset), []).append(record)
        return grouped

    def move(
        self,
        record: CopyFacts,
        to: CopyState,
        *,
        expect: Sequence[CopyState],
        trash_path: str | None = None,
        note: str | None = None,
    ) -> bool:
        """Compare-and-set a copy's state; False when it was not in an ``expect`` state."""
        with self._transaction() as conn:
            done = conn.execute(
                copies.update()
                .where(*_copy_is(record), copies.c.state.in_(list(expect)))
                .values(state=to, state_at=time.time(), trash_path=trash_path, note=note)
            )
        return done.rowcount == 1

    def annotate(self, record: CopyFacts, note: str | None) -> None:
        """Keep the latest refusal's reason on the copy, for its check and for people."""
        with self._transaction() as conn:
            conn.execute(copies.update().where(*_copy_is(record)).values(note=note))

    # -- trash ------------------------------------------------------------------------------

    def trashed(self, entry: TrashEntry) -> None:
        """The copy now lies in the trash: one transaction marks it PRUNED and files the
        trash entry, so a crash leaves either a BEING_DELETED copy (resumed) or both."""
        with self._transaction() as conn:
            conn.execute(
                copies.update()
                .where(
                    copies.c.scan == entry.scan,
                    copies.c.endpoint == entry.endpoint,
                    copies.c.dataset == entry.dataset,
                )
                .values(
                    state=CopyState.PRUNED, state_at=entry.trashed_at, trash_path=entry.trash_path
                )
            )
            conn.execute(trash.insert().values(**entry.__dict__))

    def trash_due(self, endpoint: str, now: float) -> list[TrashEntry]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(trash)
                .where(
                    trash.c.endpoint == endpoint,
                    trash.c.purged_at.is_(None),
                    trash.c.purge_after <= now,
                )
                .order_by(trash.c.purge_after)
            ).all()
        return [TrashEntry(**row._mapping) for row in rows]

    def trash_of(self, scan: str, endpoint: str) -> list[TrashEntry]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(trash)
                .where(trash.c.scan == scan, trash.c.endpoint == endpoint)
                .order_by(trash.c.trashed_at.desc())
            ).all()
        return [TrashEntry(**row._mapping) for row in rows]

    def purged(self, entry_id: str, when: float) -> bool:
        """Mark a trash entry used up; False when someone else already did (compare-and-set)."""
        with self._transaction() as conn:
            done = conn.execute(
                trash.update()
                .where(trash.c.id == entry_id, trash.c.purged_at.is_(None))
                .values(purged_at=when)
            )
        return done.rowcount == 1

    def still_in_trash(self, entry_id: str) -> bool:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(trash.c.purged_at).where(trash.c.id == entry_id)).first()
        return row is not None and row.purged_at is None

    # -- leases -----------------------------------------------------------------------------

    def acquire(
        self, holder: str, claims: Sequence[Claim], *, purpose: str, seconds: float
    ) -> None:
        """Take every claim or none. A holder's own earlier claims never conflict with it (a
        retried step takes them again); expired claims of anyone are dropped first."""
        now = time.time()
        with self._transaction() as conn:
            conn.execute(leases.delete().where(leases.c.expires_at < now))
            for claim in claims:
                blocking = sa.select(leases.c.holder, leases.c.purpose).where(
                    leases.c.scan == claim.scan,
                    leases.c.endpoint == claim.endpoint,
                    leases.c.holder != holder,
                )
                if not claim.exclusive:
                    blocking = blocking.where(leases.c.exclusive.is_(True))
                found = conn.execute(blocking.limit(1)).first()
                if found is not None:
                    raise LeaseConflict(claim, found.holder, found.purpose)
            conn.execute(
                leases.insert(),
                [
                    {
                        "scan": c.scan,
                        "endpoint": c.endpoint,
                        "exclusive": c.exclusive,
                        "holder": holder,
                        "purpose": purpose,
                        "expires_at": now + seconds,
                    }
                    for c in claims
                ],
            )

    def release(self, holder: str) -> None:
        with self._transaction() as conn:
            conn.execute(leases.delete().where(leases.c.holder == holder))

    @contextmanager
    def leased(
        self, claims: Sequence[Claim], *, purpose: str, seconds: float, holder: str | None = None
    ) -> Iterator[str]:
        """Hold ``claims`` for the block (raising ``LeaseConflict`` if they are taken)."""
        holder = holder or f"{purpose}:{uuid.uuid4().hex}"
        self.acquire(holder, claims, purpose=purpose, seconds=seconds)
        try:
            yield holder
        finally:
            self.release(holder)

    def holders(self, scan: str, endpoint: str) -> list[tuple[str, str, bool]]:
        """Live claims on a copy: (holder, purpose, exclusive)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(leases.c.holder, leases.c.purpose, leases.c.exclusive).where(
                    leases.c.scan == scan,
                    leases.c.endpoint == endpoint,
                    leases.c.expires_at >= time.time(),
                )
            ).all()
        return [(r.holder, r.purpose, r.exclusive) for r in rows]

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK})
            yield conn


def _engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    database = sa.engine.make_url(url).database
    if database:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 60})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, start transactions, so that each begins IMMEDIATE:
        # it takes SQLite's write lock up front and two lease takers cannot both read "free".
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _copy_is(facts: CopyFacts) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        copies.c.scan == facts.scan,
        copies.c.endpoint == facts.endpoint,
        copies.c.dataset == facts.dataset,
    )


_Copy = tuple[str, str, str]
"""A copy's identity in the ledger: (scan, endpoint, dataset)."""

_LEARNT = ("sha256", "size_bytes", "files")
"""What ``record_seen`` fills in on a copy already recorded, where it was unknown."""

_IN_LIMIT = 500
"""Values in one ``IN (...)``: under the 999 variables of SQLite builds older than 3.32."""


def _identity(facts: CopyFacts) -> _Copy:
    return (facts.scan, facts.endpoint, facts.dataset)


def _rows_of(conn: Connection, many: Sequence[CopyFacts]) -> dict[_Copy, dict[str, object]]:
    """The recorded values of ``_LEARNT`` for those of ``many`` already in the ledger, one
    query per location, dataset and slice of ``_IN_LIMIT`` scans."""
    scans: dict[tuple[str, str], set[str]] = {}
    for facts in many:
        scans.setdefault((facts.endpoint, facts.dataset), set()).add(facts.scan)
    found: dict[_Copy, dict[str, object]] = {}
    for (endpoint, dataset), names in scans.items():
        ordered = sorted(names)
        for start in range(0, len(ordered), _IN_LIMIT):
            rows = conn.execute(
                sa.select(copies.c.scan, *(copies.c[name] for name in _LEARNT)).where(
                    copies.c.endpoint == endpoint,
                    copies.c.dataset == dataset,
                    copies.c.scan.in_(ordered[start : start + _IN_LIMIT]),
                )
            )
            for row in rows:
                values = dict(row._mapping)
                found[(values.pop("scan"), endpoint, dataset)] = values
    return found


def _facts_row(facts: CopyFacts) -> dict[str, object]:
    return {name: getattr(facts, name) for name in CopyFacts.__dataclass_fields__}


def _record(row: sa.Row) -> CopyRecord:
    values = dict(row._mapping)
    values["state"] = CopyState(values["state"])
    return CopyRecord(**values)
