"""The prune engine under faults, on real files and a real ledger: whatever goes wrong, a copy
is deleted only behind a copy verified now, and no scan is ever lost."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import pytest

from bl832_assets import keys
from bl832_assets.resources.catalog import LocalCatalogResource
from bl832_assets.resources.transfer import LocalTransferResource
from bl832_assets.resources.transfer.copying import is_partial, sha256_file
from bl832_assets.resources.transfer.errors import TransferFailed
from bl832_assets.retention.ledger import Claim, CopyState
from bl832_assets.retention.measure import Measurer
from bl832_assets.retention.plan import Action
from bl832_assets.retention.resource import LedgerResource
from bl832_assets.retention.restore import restore

if TYPE_CHECKING:
    from conftest import World

SCAN = "20260102_090000_fault"
FOLDER = "BLS-00564_dyparkinson"  # where the world's files lie (conftest)
DAY = 86400.0


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def spot(world: World, scan: str = SCAN) -> Path:
    return world.path("spot832", f"{FOLDER}/{scan}.h5")


def raw(world: World, scan: str = SCAN) -> Path:
    return world.path("data832_raw", f"{FOLDER}/{scan}.h5")


def files_under(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


# -- the safe copy is damaged -----------------------------------------------------------------


def test_prune_refuses_when_safe_copy_is_corrupt(world: World) -> None:
    data = world.scan(SCAN)
    flip_one_byte(raw(world))

    [outcome] = world.pruner().prune("spot832")

    assert outcome.action is Action.REFUSE
    assert "differs from its own record (corrupt)" in outcome.reason
    assert spot(world).read_bytes() == data
    assert world.state(SCAN) is CopyState.PRESENT
    assert world.audited("pruned") == []
    world.no_scan_lost()


class _SlowSafeCopy:
    """The world's transfer, except that measuring the safe copy at data832_raw takes so long
    that the prune's claims lapse and another prune of data832_raw deletes that copy."""

    def __init__(self, world: World) -> None:
        self._world, self._transfer = world, world.transfer

    def __getattr__(self, name: str) -> object:
        return getattr(self._transfer, name)

    def checksums(self, endpoint: str, relative_path: str) -> dict[str, str]:
        measured = self._transfer.checksums(endpoint, relative_path)
        if endpoint == "data832_raw":
            with sqlite3.connect(self._world.settings.home / "copies.sqlite") as db:
                db.execute("UPDATE leases SET expires_at = 0")  # the claims lapse
            other = self._world.ledger.get(SCAN, "data832_raw", keys.RAW_SCAN)
            assert other is not None
            assert self._world.ledger.move(other, CopyState.PRUNED, expect=(CopyState.PRESENT,))
        return measured


def test_a_verification_that_outlasts_its_claims_deletes_nothing_when_the_safe_copy_went(
    world: World,
) -> None:
    data = world.scan(SCAN)
    pruner = world.pruner()
    pruner.measurer = Measurer(world.settings, _SlowSafeCopy(world), {}, None)  # type: ignore[arg-type]

    [outcome] = pruner.prune("spot832")

    assert outcome.action is Action.REFUSE
    assert "the copy behind it at data832_raw changed meanwhile" in outcome.reason
    assert spot(world).read_bytes() == data
    assert world.state(SCAN) is CopyState.PRESENT
    assert world.audited("pruned") == []


def test_prune_refuses_when_safe_copy_is_missing(world: World) -> None:
    data = world.scan(SCAN)
    raw(world).unlink()

    [outcome] = world.pruner().prune("spot832")

    assert outcome.action is Action.REFUSE
    assert "is missing" in outcome.reason
    assert spot(world).read_bytes() == data
    assert world.state(SCAN) is CopyState.PRESENT
    world.no_scan_lost()


def test_prune_refuses_when_safe_copy_is_truncated(world: World) -> None:
    data = world.scan(SCAN)
    raw(world).write_bytes(data[: len(data) // 2])

    [outcome] = world.pruner().prune("spot832")

    assert outcome.action is Action.REFUSE
    assert "no verified safe copy" in outcome.reason
    assert spot(world).read_bytes() == data
    world.no_scan_lost()


def test_copy_that_differs_from_its_own_record_is_refused_and_never_a_reference(
    world: World,
) -> None:
    """Spot832 and data832_raw were both overwritten alike after they were recorded: they match
    each other now, but neither matches its record. Neither may go, nor stand behind the
    other; the archive copy is the only one left intact."""
    world.scan(SCAN)
    stale = b"rewritten after the copy was made" * 100
    spot(world).write_bytes(stale)
    raw(world).write_bytes(stale)

    [at_spot] = world.pruner().prune("spot832")
    [at_raw] = world.pruner().prune("data832_raw")

    for outcome in (at_spot, at_raw):
        assert outcome.action is Action.REFUSE
        assert "no longer matches the checksum recorded" in outcome.reason
        assert "never used as a reference" in outcome.reason
    assert spot(world).read_bytes() == stale and raw(world).read_bytes() == stale
    assert world.audited("pruned") == []
    world.no_scan_lost()


def test_corrupt_copy_to_delete_is_refused_even_behind_a_good_safe_copy(world: World) -> None:
    world.scan(SCAN)
    flip_one_byte(spot(world))
    corrupt = spot(world).read_bytes()

    [outcome] = world.pruner().prune("spot832")

    assert outcome.action is Action.REFUSE
    assert "no longer matches" in outcome.reason
    assert spot(world).read_bytes() == corrupt
    world.no_scan_lost()


# -- clock skew -------------------------------------------------------------------------------


def test_copy_recorded_in_the_future_is_refused_as_a_wrong_clock(world: World) -> None:
    data = world.scan(SCAN, made_at=time.time() + 3 * DAY)

    [outcome] = world.pruner().prune("spot832")

    assert outcome.action is Action.REFUSE
    assert "future" in outcome.reason
    assert spot(world).read_bytes() == data
    assert [e["reason"] for e in world.audited("refused")] == [outcome.reason]
    world.no_scan_lost()


def test_copy_recorded_in_the_far_past_is_deleted_only_once_verified(world: World) -> None:
    world.scan("20260102_090001_epoch", made_at=0.0)
    world.scan("20260102_090002_epochbad", made_at=0.0)
    flip_one_byte(raw(world, "20260102_090002_epochbad"))

    outcomes = world.prune("spot832")

    assert outcomes["20260102_090001_epoch"].action is Action.DELETE
    assert not spot(world, "20260102_090001_epoch").exists()
    assert outcomes["20260102_090002_epochbad"].action is Action.REFUSE
    assert spot(world, "20260102_090002_epochbad").exists()
    world.no_scan_lost()


# -- paths leaving the endpoint root ----------------------------------------------------------


def test_record_whose_path_climbs_out_with_dotdot_is_refused_and_outside_intact(
    world: World,
) -> None:
    outside = world.settings.root("spot832").parent / "outside.h5"
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_bytes(b"not ours" * 100)
    world.put(SCAN, "spot832", data=b"not ours" * 100, relative="../outside.h5", write=False)
    world.put(SCAN, "data832_raw", data=b"not ours" * 100)
    world.catalogue(SCAN)

    [outcome] = world.pruner().prune("spot832")

    assert outcome.action is Action.REFUSE
    assert "'..'" in outcome.reason
    assert outside.read_bytes() == b"not ours" * 100
    assert world.audited("pruned") == []
    world.no_scan_lost()


@pytest.mark.parametrize("link", ["file", "folder"])
def test_record_reached_through_a_symlink_to_outside_is_refused_and_outside_intact(
    world: World, tmp_path: Path, link: str
) -> None:
    outside = tmp_path / "elsewhere" / f"{SCAN}.h5"
    outside.parent.mkdir(parents=True)
    data = b"somebody else's data" * 100
    outside.write_bytes(data)
    inside = spot(world)
    inside.parent.parent.mkdir(parents=True, exist_ok=True)
    if link == "file":
        inside.parent.mkdir()
        inside.symlink_to(outside)
    else:
        inside.parent.symlink_to(outside.parent, target_is_directory=True)
    world.put(SCAN, "spot832", data=data, write=False)
    world.put(SCAN, "data832_raw", data=data)
    world.catalogue(SCAN)

    [outcome] = world.pruner().prune("spot832")

    assert outcome.action is Action.REFUSE
    assert "symbolic link" in outcome.reason
    assert outside.read_bytes() == data
    assert os.path.lexists(inside)
    assert world.state(SCAN) is CopyState.PRESENT
    world.no_scan_lost()


# -- the catalog ------------------------------------------------------------------------------


def test_raw_copy_is_refused_while_the_catalog_is_unreachable(world: World, tmp_path: Path) -> None:
    data = world.scan(SCAN)
    unreadable = tmp_path / "catalog-is-a-folder"
    unreadable.mkdir()

    [outcome] = world.pruner(catalog=LocalCatalogResource(database=str(unreadable))).prune(
        "spot832"
    )

    assert outcome.action is Action.REFUSE
    assert outcome.reason.startswith("catalog unreachable")
    assert spot(world).read_bytes() == data
    world.no_scan_lost()


def test_raw_copy_without_a_catalog_record_yet_is_refused(world: World) -> None:
    data = world.scan(SCAN, catalogued=False)

    [outcome] = world.pruner().prune("spot832")

    assert outcome.action is Action.REFUSE
    assert outcome.reason == "no catalog record of this scan yet"
    assert spot(world).read_bytes() == data
    world.no_scan_lost()


# -- races ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pruned", ["spot832", "data832_raw"])
def test_prune_racing_a_retransfer_of_the_same_scan_is_refused_in_use(
    make_world: Callable[..., World], pruned: str
) -> None:
    """A copy spot832 → data832_raw is running again: it pins its source and claims its
    destination, so a prune of either waits its turn (refused now, retried next hour)."""
    world = make_world(days={"spot832": 1, "data832_raw": 1})
    world.scan(SCAN)
    before = {ep: files_under(world.settings.root(ep)) for ep in ("spot832", "data832_raw")}
    copying = LedgerResource(url=world.settings.ledger_url, wait_seconds=0)

    with copying.copying("copy-run-1", SCAN, "spot832", "data832_raw"):
        [outcome] = world.pruner().prune(pruned)

    assert outcome.action is Action.REFUSE
    assert outcome.reason.startswith("in use")
    assert {ep: files_under(world.settings.root(ep)) for ep in before} == before
    assert world.state(SCAN, pruned) is CopyState.PRESENT
    world.no_scan_lost()


def test_two_prunes_of_one_location_at_once_delete_each_copy_exactly_once(
    world: World,
) -> None:
    scans = [f"20260102_0900{i:02d}_race" for i in range(12)]
    for scan in scans:
        world.scan(scan)
    results = world.prune_twice_at_once("spot832")
    deleted = Counter(o.scan for run in results for o in run if o.action is Action.DELETE)
    assert deleted == Counter(scans)
    pruned = Counter(e["scan"] for e in world.audited("pruned"))
    assert pruned == Counter(scans)
    for scan in scans:
        assert world.state(scan) is CopyState.PRUNED
        assert not spot(world, scan).exists()
        assert len(world.ledger.trash_of(scan, "spot832")) == 1
    world.no_scan_lost()


def test_a_prune_that_finds_its_copy_pruned_by_another_does_not_report_it_lost(
    world: World,
) -> None:
    """Prune B plans, then prune A deletes a copy B planned to delete; when B reaches it, the
    file is gone because A pruned it. That is no loss: neither the audit log nor a check may
    tell an operator to restore it. (B is held between plan and act by its own event sink,
    which runs A to completion the first time B reports anything.)"""
    world.put("20260102_090050_gate", "spot832", made_at=time.time() - 20 * DAY)  # refused first
    world.scan(SCAN)
    seen_by_b: list[object] = []

    def report_b(event: object) -> None:
        if not seen_by_b:
            world.pruner(run_id="prune-a").prune("spot832")
        seen_by_b.append(event)

    outcomes = {o.scan: o for o in world.pruner(run_id="prune-b", report=report_b).prune("spot832")}

    assert world.state(SCAN) is CopyState.PRUNED
    assert len(world.audited("pruned")) == 1
    assert outcomes[SCAN].action is not Action.DELETE
    assert world.audited("lost") == []
    lost_checks = [
        e for e in seen_by_b if isinstance(e, dg.AssetCheckEvaluation) and e.partition == SCAN
    ]
    assert lost_checks == []
    world.no_scan_lost()


# -- crashes ----------------------------------------------------------------------------------


def crashed_prune(world: World, scan: str, *, renamed: bool, lease_seconds: float) -> str:
    """Leave the copy as a prune killed between its claim and its record does: BEING_DELETED
    with a trash path, its claim still held by the dead prune until it lapses."""
    record = world.ledger.get(scan, "spot832", keys.RAW_SCAN)
    assert record is not None
    trash_path = f"{world.settings.retention.trash_folder}/20260102/deadbeef/{record.relative_path}"
    world.ledger.acquire(
        "prune:dead",
        [Claim(scan, "spot832", exclusive=True)],
        purpose="prune of spot832 (run deadbeef)",
        seconds=lease_seconds,
    )
    assert world.ledger.move(
        record, CopyState.BEING_DELETED, expect=(CopyState.PRESENT,), trash_path=trash_path
    )
    if renamed:
        target = world.path("spot832", trash_path)
        target.parent.mkdir(parents=True)
        spot(world, scan).rename(target)
    return trash_path


@pytest.mark.parametrize("renamed", [False, True], ids=["before-rename", "after-rename"])
def test_crash_between_trash_and_record_is_resumed_once_its_claim_lapses(
    make_world: Callable[..., World], renamed: bool
) -> None:
    world = make_world(grace_days=2, purge_after_crash_minutes=0.001)
    data = world.scan(SCAN)
    trash_path = crashed_prune(world, SCAN, renamed=renamed, lease_seconds=0.05)
    time.sleep(0.1)

    world.pruner().prune("spot832")

    assert world.state(SCAN) is CopyState.PRUNED
    [entry] = world.ledger.trash_of(SCAN, "spot832")
    assert entry.trash_path == trash_path and entry.purged_at is None
    assert not spot(world).exists()
    assert world.path("spot832", trash_path).read_bytes() == data
    assert len(world.audited("pruned")) == 1

    world.pruner(now=time.time() + 3 * DAY).prune("spot832")

    assert not world.path("spot832", trash_path).exists()
    [entry] = world.ledger.trash_of(SCAN, "spot832")
    assert entry.purged_at is not None
    assert len(world.audited("purged")) == 1
    world.no_scan_lost()


def test_crashed_deletion_is_left_alone_while_its_prune_may_still_be_alive(
    world: World,
) -> None:
    data = world.scan(SCAN)
    crashed_prune(world, SCAN, renamed=False, lease_seconds=3600)

    world.pruner().prune("spot832")

    assert world.state(SCAN) is CopyState.BEING_DELETED
    assert spot(world).read_bytes() == data
    assert world.ledger.trash_of(SCAN, "spot832") == []


def test_resumed_deletion_whose_file_is_already_gone_succeeds(
    make_world: Callable[..., World],
) -> None:
    world = make_world(purge_after_crash_minutes=0.001)
    world.scan(SCAN)
    trash_path = crashed_prune(world, SCAN, renamed=True, lease_seconds=0.05)
    world.path("spot832", trash_path).unlink()  # purged by hand meanwhile
    time.sleep(0.1)

    world.pruner().prune("spot832")
    world.pruner(now=time.time() + 60).prune("spot832")  # the purge finds nothing: success

    assert world.state(SCAN) is CopyState.PRUNED
    [entry] = world.ledger.trash_of(SCAN, "spot832")
    assert entry.purged_at is not None
    assert [e["event"] for e in world.audit.entries()] == ["pruned", "purged"]
    world.no_scan_lost()


# -- grace period, dry run, restore -----------------------------------------------------------


def test_trashed_copy_waits_out_its_grace_period_before_purge(
    make_world: Callable[..., World],
) -> None:
    world = make_world(grace_days=2)
    data = world.scan(SCAN)

    [outcome] = world.pruner().prune("spot832")
    [entry] = world.ledger.trash_of(SCAN, "spot832")
    trashed = world.path("spot832", entry.trash_path)

    assert outcome.action is Action.DELETE
    assert not spot(world).exists() and trashed.read_bytes() == data
    world.pruner(now=time.time() + 1 * DAY).prune("spot832")
    assert trashed.read_bytes() == data
    world.pruner(now=time.time() + 2 * DAY + 60).prune("spot832")
    assert not trashed.exists()
    world.no_scan_lost()


def test_without_grace_the_trash_is_purged_at_once(world: World) -> None:
    world.scan(SCAN)

    [outcome] = world.pruner().prune("spot832")

    assert outcome.action is Action.DELETE
    [entry] = world.ledger.trash_of(SCAN, "spot832")
    assert entry.purged_at is not None
    assert not world.path("spot832", entry.trash_path).exists()
    assert [e["event"] for e in world.audit.entries()] == ["pruned", "purged"]
    world.no_scan_lost()


def test_dry_run_changes_no_file_no_record_and_no_audit_line(world: World) -> None:
    world.scan("20260102_090010_due")
    world.scan("20260102_090011_refused", catalogued=False)
    world.scan("20260102_090012_young", made_at=time.time())
    before_files = files_under(world.settings.root("spot832"))
    before_ledger = sorted(map(repr, world.ledger.at("spot832", tuple(CopyState))))

    outcomes = world.prune("spot832", dry_run=True)

    assert outcomes["20260102_090010_due"].action is Action.DELETE
    assert outcomes["20260102_090011_refused"].action is Action.REFUSE
    assert outcomes["20260102_090012_young"].action is Action.KEEP
    assert files_under(world.settings.root("spot832")) == before_files
    assert sorted(map(repr, world.ledger.at("spot832", tuple(CopyState)))) == before_ledger
    assert not world.settings.audit_log.exists()
    world.no_scan_lost()


def test_restore_brings_a_pruned_copy_back_from_the_trash(
    make_world: Callable[..., World],
) -> None:
    world = make_world(grace_days=2)
    data = world.scan(SCAN)
    world.pruner().prune("spot832")

    [restored] = restore(
        world.settings,
        world.ledger,
        Measurer(world.settings, world.transfer, {}, None),
        world.audit,
        scan=SCAN,
        endpoint="spot832",
        run_id="restore-1",
    )

    assert restored.source == "trash"
    assert spot(world).read_bytes() == data
    assert world.state(SCAN) is CopyState.PRESENT
    assert [e["event"] for e in world.audit.entries()][-1] == "restored"
    world.no_scan_lost()


def test_restore_after_purge_copies_back_from_the_verified_safe_copy(world: World) -> None:
    data = world.scan(SCAN)
    world.pruner().prune("spot832")
    world.pruner(now=time.time() + 60).prune("spot832")
    [entry] = world.ledger.trash_of(SCAN, "spot832")
    assert entry.purged_at is not None
    assert not spot(world).exists() and not world.path("spot832", entry.trash_path).exists()

    [restored] = restore(
        world.settings,
        world.ledger,
        Measurer(world.settings, world.transfer, {}, None),
        world.audit,
        scan=SCAN,
        endpoint="spot832",
        run_id="restore-2",
    )

    assert restored.source == "data832_raw"
    assert spot(world).read_bytes() == data
    record = world.ledger.get(SCAN, "spot832", keys.RAW_SCAN)
    assert record is not None and record.state is CopyState.PRESENT
    assert restored.sha256 == record.sha256
    world.no_scan_lost()


# -- copies killed mid-way, disks that fill ---------------------------------------------------


def test_partial_file_of_a_killed_copy_is_never_a_copy_and_a_rerun_succeeds(
    world: World,
) -> None:
    data = world.put(SCAN, "spot832") and spot(world).read_bytes()
    world.catalogue(SCAN)
    killed = raw(world).with_name(f".{SCAN}.h5.partial-killed1")
    killed.parent.mkdir(parents=True)
    killed.write_bytes(data[: len(data) // 3])

    assert not world.transfer.exists("data832_raw", f"{FOLDER}/{SCAN}.h5")
    assert world.transfer.checksums("data832_raw", FOLDER) == {}
    [refused] = world.pruner().prune("spot832")
    assert refused.action is Action.REFUSE and "no copy is recorded" in refused.reason

    result = world.transfer.copy(
        "spot832", "data832_raw", f"{FOLDER}/{SCAN}.h5", label="rerun", export_controlled=False
    )

    assert result.files_transferred == 1
    assert raw(world).read_bytes() == data
    assert set(world.transfer.checksums("data832_raw", FOLDER)) == {f"{SCAN}.h5"}
    assert spot(world).read_bytes() == data
    world.no_scan_lost()


@contextlib.contextmanager
def small_disk(tmp_path: Path, size_kib: int) -> Iterator[Path]:
    """A folder on a real filesystem of ``size_kib`` (a tmpfs): mounting needs root, which CI
    and this project's machines run as; the test fails rather than skip without it."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"mounting a tmpfs needs root here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_copy_onto_a_full_disk_fails_cleanly_and_leaves_the_source(
    tmp_path: Path, world: World
) -> None:
    data = os.urandom(256 * 1024)
    world.put(SCAN, "spot832", data=data)
    with small_disk(tmp_path, 64) as disk:
        transfer = LocalTransferResource(
            endpoints={"spot832": str(world.settings.root("spot832")), "data832_raw": str(disk)},
            database=str(tmp_path / "transfers.sqlite"),
        )
        with pytest.raises(TransferFailed):
            transfer.copy(
                "spot832",
                "data832_raw",
                f"{FOLDER}/{SCAN}.h5",
                label="full",
                export_controlled=False,
            )
        left = [p.name for p in disk.rglob("*") if p.is_file()]

    assert left == []
    assert not any(is_partial(name) for name in left)
    assert spot(world).read_bytes() == data
    world.no_scan_lost()


def test_copy_past_the_file_size_limit_fails_cleanly_and_leaves_the_source(
    world: World,
) -> None:
    """The same failure without a mount: the kernel refuses writes past RLIMIT_FSIZE (EFBIG),
    as a full disk refuses them (ENOSPC), part-way through the file."""
    data = os.urandom(512 * 1024)
    world.put(SCAN, "spot832", data=data)
    Path(world.transfer.database).parent.mkdir(parents=True, exist_ok=True)
    world.transfer.listing("spot832", f"{FOLDER}/{SCAN}.h5")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (128 * 1024, hard))
    try:
        with pytest.raises(TransferFailed):
            world.transfer.copy(
                "spot832",
                "data832_raw",
                f"{FOLDER}/{SCAN}.h5",
                label="full",
                export_controlled=False,
            )
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)

    assert not raw(world).exists()
    assert [p.name for p in raw(world).parent.iterdir()] == []
    assert spot(world).read_bytes() == data
    world.no_scan_lost()
