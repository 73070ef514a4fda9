"""The copy ledger on the machine's PostgreSQL (127.0.0.1:5432, trust auth), as production runs
it: the same records, and claims that stay exclusive when many threads (each its own engine, as
separate processes would be) take them at once. Each test gets a throwaway database."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from bl832_assets import keys
from bl832_assets.retention.ledger import (
    Claim,
    CopyFacts,
    CopyLedger,
    CopyState,
    LeaseConflict,
    TrashEntry,
)
from bl832_assets.retention.measure import Measurer
from bl832_assets.retention.plan import Action
from bl832_assets.retention.prune import Pruner

if TYPE_CHECKING:
    from conftest import World

pytestmark = pytest.mark.postgres

SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
SCAN = "20260102_090000_pg"


@pytest.fixture
def ledger_url() -> Iterator[str]:
    """A database of its own, created here and dropped (connections and all) afterwards."""
    name = f"bl832_ledger_{uuid.uuid4().hex[:12]}"
    server = sa.create_engine(SERVER, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with server.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with server.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        server.dispose()


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[CopyLedger]:
    ledger = CopyLedger(ledger_url)
    yield ledger
    ledger.dispose()


@pytest.fixture
def ledgers(ledger: CopyLedger) -> Iterator[Callable[[], CopyLedger]]:
    """More ledgers on the same database, each with its own connection pool."""
    made: list[CopyLedger] = []

    def another() -> CopyLedger:
        made.append(CopyLedger(ledger.url))
        return made[-1]

    yield another
    for each in made:
        each.dispose()


def facts(scan: str = SCAN, endpoint: str = "spot832", **changes: object) -> CopyFacts:
    values: dict[str, object] = {
        "scan": scan,
        "endpoint": endpoint,
        "dataset": keys.RAW_SCAN,
        "asset_key": "spot832/raw_scan",
        "relative_path": f"BLS-00564_dyparkinson/{scan}.h5",
        "size_bytes": 5_000_000_000,  # past 32 bits: a BIGINT column
        "files": 1,
        "sha256": "ab" * 32,
        "made_at": 1_767_340_800.25,
        "made_by": "run-1",
        "export_controlled": False,
        **changes,
    }
    return CopyFacts(**values)  # type: ignore[arg-type]


def race(count: int, take: Callable[[int], None]) -> tuple[list[int], list[BaseException]]:
    """Run ``take(i)`` in ``count`` threads released at once: who succeeded, what was raised."""
    start = threading.Barrier(count)
    won: list[int] = []
    raised: list[BaseException] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        start.wait()
        try:
            take(i)
        except BaseException as exc:
            with lock:
                raised.append(exc)
        else:
            with lock:
                won.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won, raised


# -- records ------------------------------------------------------------------------------------


def test_records_round_trip_through_postgres(ledger: CopyLedger, ledgers) -> None:
    made = facts()
    ledger.record_made(made)

    record = ledgers().get(SCAN, "spot832", keys.RAW_SCAN)

    assert record is not None
    assert {name: getattr(record, name) for name in CopyFacts.__dataclass_fields__} == (
        made.__dict__
    )
    assert record.state is CopyState.PRESENT and record.trash_path is None
    assert ledger.get(SCAN, "data832_raw", keys.RAW_SCAN) is None
    assert [r.scan for r in ledger.at("spot832")] == [SCAN]
    assert ledger.present_by_scan(["spot832"], [keys.RAW_SCAN]) == {(SCAN, keys.RAW_SCAN): [record]}

    # record_seen keeps the first facts and fills in only what was unknown
    ledger.record_seen(facts(endpoint="data832_raw", sha256=None, made_by="first"))
    ledger.record_seen(facts(endpoint="data832_raw", made_by="second", made_at=0.0))
    seen = ledger.get(SCAN, "data832_raw", keys.RAW_SCAN)
    assert seen is not None
    assert seen.sha256 == "ab" * 32 and seen.made_by == "first" and seen.made_at == made.made_at

    # compare-and-set, then the trash entry in the same transaction as PRUNED
    assert ledger.move(record, CopyState.BEING_DELETED, expect=(CopyState.PRESENT,), trash_path="t")
    assert not ledger.move(record, CopyState.BEING_DELETED, expect=(CopyState.PRESENT,))
    entry = TrashEntry(
        id=uuid.uuid4().hex,
        scan=SCAN,
        endpoint="spot832",
        dataset=keys.RAW_SCAN,
        relative_path=record.relative_path,
        trash_path=".trash/20260102/run/x.h5",
        size_bytes=record.size_bytes,
        sha256=record.sha256,
        safe_copy="data832_raw:x.h5",
        trashed_at=100.0,
        purge_after=200.0,
        purged_at=None,
        run_id="run-2",
    )
    ledger.trashed(entry)
    pruned = ledger.get(SCAN, "spot832", keys.RAW_SCAN)
    assert pruned is not None and pruned.state is CopyState.PRUNED
    assert pruned.trash_path == entry.trash_path
    assert ledger.trash_of(SCAN, "spot832") == [entry]
    assert ledger.trash_due("spot832", 199.0) == []
    assert ledger.trash_due("spot832", 200.0) == [entry]
    ledger.purged(entry.id, 300.0)
    assert ledger.trash_due("spot832", 1e12) == []
    [purged] = ledger.trash_of(SCAN, "spot832")
    assert purged.purged_at == 300.0

    # made again: PRESENT, the trash path forgotten
    ledger.record_made(made)
    again = ledger.get(SCAN, "spot832", keys.RAW_SCAN)
    assert again is not None and again.state is CopyState.PRESENT and again.trash_path is None
    assert len(ledger.copies_of(SCAN)) == 2


# -- claims -------------------------------------------------------------------------------------


@pytest.mark.parametrize("round_", range(3))
def test_eight_threads_racing_for_one_exclusive_claim_one_wins(
    ledger: CopyLedger, ledgers, round_: int
) -> None:
    mine = [ledgers() for _ in range(8)]

    won, raised = race(
        8,
        lambda i: mine[i].acquire(
            f"prune-{i}", [Claim(SCAN, "spot832", exclusive=True)], purpose=f"prune {i}", seconds=60
        ),
    )

    assert len(won) == 1, (won, raised)
    assert len(raised) == 7 and all(isinstance(e, LeaseConflict) for e in raised), raised
    assert {e.holder for e in raised if isinstance(e, LeaseConflict)} == {f"prune-{won[0]}"}
    assert ledger.holders(SCAN, "spot832") == [(f"prune-{won[0]}", f"prune {won[0]}", True)]


def test_racing_claims_on_two_copies_at_once_are_all_or_nothing(
    ledger: CopyLedger, ledgers
) -> None:
    """Each thread wants both copies, half of them in the opposite order: one takes both, no
    thread holds only one."""
    mine = [ledgers() for _ in range(8)]
    pair = [Claim(SCAN, "spot832", exclusive=True), Claim(SCAN, "data832_raw", exclusive=True)]

    won, raised = race(
        8,
        lambda i: mine[i].acquire(
            f"h{i}", pair if i % 2 else pair[::-1], purpose="both", seconds=60
        ),
    )

    assert len(won) == 1 and len(raised) == 7
    assert all(isinstance(e, LeaseConflict) for e in raised), raised
    for endpoint in ("spot832", "data832_raw"):
        assert [h for h, _, _ in ledger.holders(SCAN, endpoint)] == [f"h{won[0]}"]


def test_shared_claims_coexist_but_exclude_an_exclusive_one(ledger: CopyLedger, ledgers) -> None:
    shared = Claim(SCAN, "data832_raw", exclusive=False)
    exclusive = Claim(SCAN, "data832_raw", exclusive=True)
    ledger.acquire("prune-spot", [shared], purpose="prune of spot832", seconds=60)
    ledgers().acquire("copy-nersc", [shared], purpose="copy data832_raw → nersc", seconds=60)

    with pytest.raises(LeaseConflict) as refused:
        ledgers().acquire("prune-raw", [exclusive], purpose="prune of data832_raw", seconds=60)
    assert refused.value.holder in {"prune-spot", "copy-nersc"}

    # eight shared claimants at once all get in, beside the two already there
    others = [ledgers() for _ in range(8)]
    won, raised = race(
        8, lambda i: others[i].acquire(f"reader-{i}", [shared], purpose="read", seconds=60)
    )
    assert raised == [] and sorted(won) == list(range(8))
    assert len(ledger.holders(SCAN, "data832_raw")) == 10

    for holder in ["prune-spot", "copy-nersc", *(f"reader-{i}" for i in range(8))]:
        ledger.release(holder)
    ledger.acquire("prune-raw", [exclusive], purpose="prune of data832_raw", seconds=60)
    with pytest.raises(LeaseConflict):
        ledgers().acquire("late-reader", [shared], purpose="read", seconds=60)
    # a holder's own earlier claims never conflict with it (a retried step)
    ledger.acquire("prune-raw", [exclusive], purpose="prune of data832_raw", seconds=60)


def test_an_expired_claim_is_dropped(ledger: CopyLedger, ledgers) -> None:
    claim = Claim(SCAN, "spot832", exclusive=True)
    ledger.acquire("prune:dead", [claim], purpose="prune that died", seconds=0.05)
    with pytest.raises(LeaseConflict):
        ledgers().acquire("prune:alive", [claim], purpose="next prune", seconds=60)
    time.sleep(0.1)

    assert ledger.holders(SCAN, "spot832") == []  # lapsed: no longer a live claim
    ledgers().acquire("prune:alive", [claim], purpose="next prune", seconds=60)

    assert ledger.holders(SCAN, "spot832") == [("prune:alive", "next prune", True)]
    with sa.create_engine(ledger.url, poolclass=NullPool).connect() as conn:
        rows = conn.execute(sa.text("SELECT holder FROM leases")).scalars().all()
    assert rows == ["prune:alive"]  # the dead one's row was deleted, not just ignored


# -- prunes -------------------------------------------------------------------------------------


def test_two_prunes_on_one_postgres_ledger_delete_each_copy_exactly_once(
    make_world: Callable[..., World], ledger_url: str
) -> None:
    world = make_world(database_url=ledger_url)
    assert world.ledger.url == ledger_url and world.settings.ledger_url == ledger_url
    scans = [f"20260102_0900{i:02d}_pgrace" for i in range(12)]
    for scan in scans:
        world.scan(scan)
    results = world.prune_twice_at_once("spot832")
    deleted = Counter(o.scan for run in results for o in run if o.action is Action.DELETE)
    assert deleted == Counter(scans)
    assert Counter(e["scan"] for e in world.audited("pruned")) == Counter(scans)
    assert world.audited("lost") == []
    for scan in scans:
        assert world.state(scan) is CopyState.PRUNED
        assert not world.path("spot832", f"BLS-00564_dyparkinson/{scan}.h5").exists()
        [entry] = world.ledger.trash_of(scan, "spot832")
        assert entry.purged_at is not None
    world.no_scan_lost()


class _DeleteHook:
    """The world's transfer, except that its first delete first runs ``before`` (another prune
    arriving at that moment)."""

    def __init__(self, transfer: Any, before: Callable[[], object]) -> None:
        self._transfer, self._before = transfer, [before]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transfer, name)

    def delete(self, endpoint: str, relative_path: str, *, label: str) -> str:
        while self._before:
            self._before.pop()()
        return self._transfer.delete(endpoint, relative_path, label=label)


def test_two_prunes_purging_one_trash_at_once_purge_each_entry_once(
    make_world: Callable[..., World], ledger_url: str
) -> None:
    """Prune B lists the trash due for purging; prune A runs meanwhile (inside B's first
    delete, deterministically); then B reaches the same entries. The audit log must say once
    that each trashed copy was purged, and each entry keep the time it really was."""
    world = make_world(database_url=ledger_url, grace_days=1)
    scans = [f"20260102_0901{i:02d}_pgpurge" for i in range(3)]
    for scan in scans:
        world.scan(scan)
    world.pruner(run_id="prune-trash").prune("spot832")
    assert world.audited("purged") == []
    later = time.time() + 2 * 86400
    first_purges: dict[str, float | None] = {}

    def prune_a() -> None:
        world.pruner(run_id="prune-a", now=later).prune("spot832")
        first_purges.update({s: world.ledger.trash_of(s, "spot832")[0].purged_at for s in scans})

    prune_b = Pruner(
        settings=world.settings,
        ledger=world.ledger,
        audit=world.audit,
        measurer=Measurer(world.settings, _DeleteHook(world.transfer, prune_a), {}, None),
        catalog=world.catalog,
        run_id="prune-b",
        report=world.events.append,
        now=later,
    )
    prune_b.prune("spot832")

    # B holds the claim on the entry it is purging while A runs, so A leaves that one alone
    # and purges the others; B finishes its own. Each entry is purged by exactly one prune.
    assert first_purges[scans[0]] is None
    assert all(first_purges[scan] is not None for scan in scans[1:])
    purged = world.audited("purged")
    assert sorted(e["scan"] for e in purged) == sorted(scans)
    assert {e["scan"]: e["run_id"] for e in purged} == {
        scans[0]: "prune-b",
        **{scan: "prune-a" for scan in scans[1:]},
    }
    for scan in scans:
        [entry] = world.ledger.trash_of(scan, "spot832")
        assert not world.path("spot832", entry.trash_path).exists()
        [line] = [e for e in purged if e["scan"] == scan]
        assert entry.purged_at is not None and abs(entry.purged_at - line["time"]) < 1.0
        if scan != scans[0]:
            assert entry.purged_at == first_purges[scan]  # not overwritten by the later prune
    world.no_scan_lost()
