"""``record_seen_many``: a chunk of copies recorded in one transaction, exactly as many calls of
``record_seen`` would record them, on SQLite and on the machine's PostgreSQL (127.0.0.1:5432,
trust auth; each ledger there gets a throwaway database)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from bl832_assets import keys
from bl832_assets.retention.ledger import CopyFacts, CopyLedger, CopyRecord, CopyState

SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"

MakeLedger = Callable[[], CopyLedger]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def make_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeLedger]:
    """Fresh, empty ledgers of one kind of database."""
    made: list[CopyLedger] = []
    databases: list[str] = []
    server = sa.create_engine(SERVER, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def make() -> CopyLedger:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / f'ledger{len(made)}.db'}"
        else:
            databases.append(f"bl832_ledger_{uuid.uuid4().hex[:12]}")
            with server.connect() as conn:
                conn.execute(sa.text(f"CREATE DATABASE {databases[-1]}"))
            url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{databases[-1]}"
        made.append(CopyLedger(url))
        return made[-1]

    yield make
    for ledger in made:
        ledger.dispose()
    for name in databases:
        with server.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    server.dispose()


def seen(scan: str, endpoint: str = "data832_raw", **changes: object) -> CopyFacts:
    values: dict[str, object] = {
        "scan": scan,
        "endpoint": endpoint,
        "dataset": keys.RAW_SCAN,
        "asset_key": "data832/raw_scan",
        "relative_path": f"2024-01/{scan}.h5",
        "size_bytes": 5_000_000_000,  # past 32 bits: a BIGINT column
        "files": 1,
        "sha256": None,
        "made_at": 1_767_340_800.25,
        "made_by": "discovered",
        "export_controlled": False,
        **changes,
    }
    return CopyFacts(**values)  # type: ignore[arg-type]


def everything(ledger: CopyLedger) -> dict[tuple[str, str, str], tuple[object, ...]]:
    """Every copy recorded, all fields but the moment its row was written."""
    records: list[CopyRecord] = [
        r
        for endpoint in ("data832_raw", "nersc_cfs")
        for r in ledger.at(endpoint, tuple(CopyState))
    ]
    return {
        (r.scan, r.endpoint, r.dataset): tuple(
            getattr(r, name) for name in CopyRecord.__dataclass_fields__ if name != "state_at"
        )
        for r in records
    }


def test_a_chunk_records_what_record_seen_one_at_a_time_records(make_ledger: MakeLedger) -> None:
    """Copies recorded before, a copy twice in the chunk, two locations, and more scans than
    one ``IN (...)`` takes: the outcome is the sequence of single calls'."""
    before = [
        seen("known_open", sha256=None, size_bytes=None, made_by="first"),
        seen("known_hashed", sha256="ab" * 32, made_by="first"),
    ]
    chunk = [
        *(seen(f"scan_{i:05d}") for i in range(1200)),
        seen("known_open", sha256="cd" * 32, size_bytes=7, made_by="second", made_at=0.0),
        seen("known_hashed", sha256="ef" * 32, relative_path="elsewhere.h5"),
        seen("twice", made_by="first"),
        seen("twice", sha256="12" * 32, made_by="second", relative_path="other.h5"),
        seen("scan_00001", endpoint="nersc_cfs", export_controlled=True),
    ]
    one_by_one, batched = make_ledger(), make_ledger()
    for ledger in (one_by_one, batched):
        for facts in before:
            ledger.record_seen(facts)

    for facts in chunk:
        one_by_one.record_seen(facts)
    batched.record_seen_many(chunk)

    assert everything(batched) == everything(one_by_one)
    assert len(everything(batched)) == 1200 + 2 + 1 + 1


def test_a_chunk_keeps_first_facts_and_fills_in_only_what_was_unknown(
    make_ledger: MakeLedger,
) -> None:
    ledger = make_ledger()
    ledger.record_seen(seen("a", sha256=None, files=None, made_by="first", made_at=1.0))
    ledger.record_seen(seen("b", sha256="ab" * 32))
    assert ledger.move(seen("b"), CopyState.PRUNED, expect=(CopyState.PRESENT,), trash_path="t")

    ledger.record_seen_many(
        [
            seen("a", sha256="cd" * 32, files=3, made_by="later", made_at=2.0, relative_path="x"),
            seen("b", sha256="ef" * 32, made_by="later"),
            seen("c", made_by="later"),
        ]
    )

    a = ledger.get("a", "data832_raw", keys.RAW_SCAN)
    assert a is not None
    assert (a.sha256, a.files) == ("cd" * 32, 3)  # learnt
    assert (a.made_by, a.made_at, a.relative_path) == ("first", 1.0, "2024-01/a.h5")  # kept
    b = ledger.get("b", "data832_raw", keys.RAW_SCAN)
    assert b is not None
    assert (b.sha256, b.made_by, b.state, b.trash_path) == ("ab" * 32, "discovered", "PRUNED", "t")
    c = ledger.get("c", "data832_raw", keys.RAW_SCAN)
    assert c is not None and c.state is CopyState.PRESENT and c.made_by == "later"


def test_a_chunk_is_recorded_whole_or_not_at_all(make_ledger: MakeLedger) -> None:
    ledger = make_ledger()
    broken = replace(seen("broken"), relative_path=None)  # NOT NULL: the insert fails

    with pytest.raises(sa.exc.IntegrityError):
        ledger.record_seen_many([seen("fine_1"), broken, seen("fine_2")])

    assert everything(ledger) == {}


def test_an_empty_chunk_records_nothing(make_ledger: MakeLedger) -> None:
    ledger = make_ledger()
    ledger.record_seen_many([])
    assert everything(ledger) == {}
