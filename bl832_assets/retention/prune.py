"""Pruning one location: resume what a crash interrupted, purge the trash that has waited its
grace period, then delete each due copy only behind a copy verified now.

The rule, for each copy (``issue 9``, after Rucio and iRODS, ``retention.md``):
(a) a copy at a location the policy names as safe holds the same bytes, measured now on both
sides, and the copy being deleted still matches the checksum recorded when it was made (so a
corrupt copy is never taken as the reference); (b) that safe copy is pinned meanwhile, so a
concurrent prune of its location cannot remove it; (c) raw data is in the catalog; (d) the copy
is not the source of a copy in progress (the copy holds a claim on it, see ``ledger.py``).
Deleting is two-phase: a rename into the endpoint's trash, recorded, then a purge after the
grace period. Each step is recorded before the next starts, so a crash anywhere resumes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from bl832_assets.resources.catalog.base import CatalogResource
from bl832_assets.resources.transfer.errors import PathNotFound, TransferError
from bl832_assets.retention.audit import AuditLog
from bl832_assets.retention.ledger import (
    Claim,
    CopyLedger,
    CopyRecord,
    CopyState,
    LeaseConflict,
    TrashEntry,
)
from bl832_assets.retention.measure import CannotMeasure, Measurement, Measurer
from bl832_assets.retention.plan import Action, Proposal, needs_catalog_record, plan
from bl832_assets.retention.reporting import audit_copy, check_evaluation
from bl832_assets.settings import Settings

_BEHIND = "; behind "  # joins a deletion's reason and its safe copy in a claimed copy's note


@dataclass(frozen=True)
class Outcome:
    """What happened to one copy: the line ``bl832 prune`` prints."""

    scan: str
    endpoint: str
    dataset: str
    size_bytes: int | None
    action: Action
    reason: str
    behind: str | None = None
    audit_id: str | None = None

    def line(self) -> str:
        size = "?" if self.size_bytes is None else size_text(self.size_bytes)
        return (
            f"{self.scan:<32} {self.endpoint:<16} {self.dataset:<10} {size:>10}  "
            f"{self.action.value:<6}  {self.reason}"
        )


@dataclass
class Pruner:
    settings: Settings
    ledger: CopyLedger
    audit: AuditLog
    measurer: Measurer
    catalog: CatalogResource
    run_id: str
    report: Callable[[Any], None]  # takes Dagster events: observations and check evaluations
    dry_run: bool = False
    now: float = field(default_factory=time.time)

    def prune(self, endpoint: str) -> list[Outcome]:
        if not self.dry_run:
            self.resume(endpoint)
            self.purge(endpoint)
        return [self._act(p) for p in plan(self.settings, self.ledger, endpoint, self.now)]

    # -- phase 2 and crash recovery ------------------------------------------------------------

    def resume(self, endpoint: str) -> None:
        """Finish deletions a crash left BEING_DELETED, once their prune's claim has lapsed."""
        for copy in self.ledger.at(endpoint, (CopyState.BEING_DELETED,)):
            try:
                with self._claimed(copy, ()):
                    self._into_trash(copy)
            except LeaseConflict:
                continue  # its prune is alive (or died recently): leave it to that one

    def purge(self, endpoint: str) -> None:
        """Purge the trash past its grace period, each entry under its copy's claim, so two
        prunes of one location (or a purge and a restore) never both act on one entry."""
        # The later of the run's clock and now: an entry trashed by this very run with no grace
        # period was stamped after the run began, and is due at once.
        for entry in self.ledger.trash_due(endpoint, max(self.now, time.time())):
            try:
                with self.ledger.leased(
                    [Claim(entry.scan, endpoint, exclusive=True)],
                    purpose=f"purge of {endpoint} (run {self.run_id[:8]})",
                    seconds=self._claim_seconds(),
                ):
                    self._purge_entry(entry)
            except LeaseConflict:
                continue  # another prune, a copy or a restore holds it: a later run purges it

    def _purge_entry(self, entry: TrashEntry) -> None:
        """Delete one trash entry (already gone is fine) and record it, unless it was used up
        meanwhile. The caller holds the copy's exclusive claim."""
        if not self.ledger.still_in_trash(entry.id):
            return
        self.measurer.transfer.delete(
            entry.endpoint, entry.trash_path, label=f"purge {entry.scan} {entry.endpoint}"
        )
        if self.ledger.purged(entry.id, time.time()):
            self.audit.append(
                "purged",
                scan=entry.scan,
                location=entry.endpoint,
                path=entry.trash_path,
                size_bytes=entry.size_bytes,
                sha256=entry.sha256,
                safe_copy=entry.safe_copy,
                run_id=self.run_id,
            )

    # -- phase 1 ---------------------------------------------------------------------------

    def _act(self, proposal: Proposal) -> Outcome:
        copy = proposal.copy
        if proposal.action is Action.KEEP:
            return _outcome(copy, Action.KEEP, proposal.reason)
        if proposal.action is Action.REFUSE:
            return self._refuse(copy, proposal.reason)
        try:
            with self._claimed(copy, proposal.safe) as holder:
                current = self.ledger.get(copy.scan, copy.endpoint, copy.dataset)
                if current is None or current.state is not CopyState.PRESENT:
                    return _moved_on(copy, current)
                return self._verified_delete(replace(proposal, copy=current), holder)
        except LeaseConflict as conflict:
            return self._refuse(copy, f"in use: {conflict}")

    def _verified_delete(self, proposal: Proposal, holder: str) -> Outcome:
        copy = proposal.copy
        if needs_catalog_record(self.settings, copy):
            missing = self._catalog_problem(copy)
            if missing:
                return self._refuse(copy, missing)
        try:
            here = self.measurer.measure(copy.endpoint, copy.relative_path)
        except PathNotFound:
            return self._lost(copy)
        except (CannotMeasure, TransferError, dg.Failure) as exc:
            return self._refuse(copy, f"cannot measure this copy: {_brief(exc)}")
        if copy.sha256 is not None and (here.sha256, here.size_bytes) != (
            copy.sha256,
            copy.size_bytes if copy.size_bytes is not None else here.size_bytes,
        ):
            return self._refuse(
                copy,
                f"this copy no longer matches the checksum recorded when it was made "
                f"({copy.sha256[:12]}…, now {here.sha256[:12]}…): it is kept and never used "
                "as a reference",
            )
        verified, problems = self._verified_safe_copy(proposal, here)
        if verified is None:
            return self._refuse(copy, "no verified safe copy: " + "; ".join(problems))
        safe, behind = verified
        if self.dry_run:
            return replace(
                _outcome(
                    copy,
                    Action.DELETE,
                    f"{proposal.reason}; {here.how}; verified behind {behind}",
                    behind,
                ),
                size_bytes=here.size_bytes,
            )
        # Verifying may outlast the claims (a hash job waiting in a facility's queue): take them
        # again, and see that the copy behind this one is still recorded, before anything moves.
        self.ledger.acquire(
            holder,
            self._claims(copy, proposal.safe),
            purpose=self._purpose(copy),
            seconds=self._claim_seconds(),
        )
        still = self.ledger.get(safe.scan, safe.endpoint, safe.dataset)
        if still is None or still.state is not CopyState.PRESENT:
            return self._refuse(copy, f"the copy behind it at {safe.endpoint} changed meanwhile")
        trash_path = self._trash_path(copy)
        if not self.ledger.move(
            copy,
            CopyState.BEING_DELETED,
            expect=(CopyState.PRESENT,),
            trash_path=trash_path,
            note=f"{proposal.reason}; {here.how}{_BEHIND}{behind}",
        ):
            return self._refuse(copy, "its record changed while it was verified")
        return self._into_trash(
            self.ledger.get(copy.scan, copy.endpoint, copy.dataset) or copy,
            measured=here,
            had_refusal=copy.note is not None,
        )

    def _verified_safe_copy(
        self, proposal: Proposal, here: Measurement
    ) -> tuple[tuple[CopyRecord, str] | None, list[str]]:
        """The first safe copy whose bytes, measured now, equal this copy's and its own record,
        with how it was verified; else what was wrong with each."""
        problems = []
        for safe in proposal.safe:
            where = f"{safe.endpoint}:{safe.relative_path}"
            try:
                there = self.measurer.measure(safe.endpoint, safe.relative_path)
            except PathNotFound:
                problems.append(f"{where} is missing")
                continue
            except (CannotMeasure, TransferError, dg.Failure) as exc:
                problems.append(f"{where} cannot be measured: {_brief(exc)}")
                continue
            if safe.sha256 is not None and there.sha256 != safe.sha256:
                problems.append(f"{where} differs from its own record (corrupt)")
            elif (there.sha256, there.size_bytes) != (here.sha256, here.size_bytes):
                problems.append(
                    f"{where} holds other bytes ({there.size_bytes} B, {there.sha256[:12]}…)"
                )
            else:
                return (safe, f"{where} (sha256 {there.sha256[:12]}…, {there.how})"), problems
        return None, problems

    def _into_trash(
        self, copy: CopyRecord, *, measured: Measurement | None = None, had_refusal: bool = False
    ) -> Outcome:
        """Move a BEING_DELETED copy into the trash (already there is fine) and record it. Its
        record's note, written when it was claimed, says why and behind which copy, so a
        deletion resumed after a crash is recorded exactly as the interrupted one would be."""
        why = copy.note or "resumed after a crash"
        behind = why.rpartition(_BEHIND)[2]
        trash_path = str(copy.trash_path)
        transfer = self.measurer.transfer
        try:
            if transfer.exists(copy.endpoint, copy.relative_path):
                transfer.rename(
                    copy.endpoint,
                    copy.relative_path,
                    trash_path,
                    label=f"prune {copy.scan} {copy.endpoint}",
                )
        except TransferError as exc:
            self.ledger.move(copy, CopyState.PRESENT, expect=(CopyState.BEING_DELETED,))
            return self._refuse(copy, f"could not move it into the trash: {_brief(exc)}")
        grace = self.settings.retention.grace_days * 86400
        entry = TrashEntry(
            id=uuid.uuid4().hex,
            scan=copy.scan,
            endpoint=copy.endpoint,
            dataset=copy.dataset,
            relative_path=copy.relative_path,
            trash_path=trash_path,
            size_bytes=measured.size_bytes if measured else copy.size_bytes,
            sha256=measured.sha256 if measured else copy.sha256,
            safe_copy=behind,
            trashed_at=time.time(),
            purge_after=time.time() + grace,
            purged_at=None,
            run_id=self.run_id,
        )
        self.ledger.trashed(entry)
        audited = self.audit.append(
            "pruned",
            scan=copy.scan,
            location=copy.endpoint,
            dataset=copy.dataset,
            path=self.settings.location_of(copy.endpoint, copy.relative_path),
            trash_path=trash_path,
            size_bytes=entry.size_bytes,
            sha256=entry.sha256,
            safe_copy=behind,
            reason=why,
            run_id=self.run_id,
        )
        self.report(
            dg.AssetObservation(
                asset_key=dg.AssetKey.from_user_string(copy.asset_key),
                partition=copy.scan,
                metadata={
                    "state": "pruned",
                    "pruned_at": dg.MetadataValue.timestamp(entry.trashed_at),
                    "reason": why,
                    "behind": behind,
                    "endpoint": copy.endpoint,
                    "path": self.settings.location_of(copy.endpoint, copy.relative_path),
                    "trash_path": trash_path,
                    "purge_after": dg.MetadataValue.timestamp(entry.purge_after),
                    "size_bytes": entry.size_bytes or 0,
                    "sha256": entry.sha256 or "",
                    "audit_id": audited["id"],
                    "audit_entry": dg.MetadataValue.json(audited),
                },
            )
        )
        if had_refusal:
            self._check(copy, passed=True, description=f"pruned behind {behind}")
        if grace == 0:
            self._purge_entry(entry)  # this prune already holds the copy's claim
        return replace(
            _outcome(copy, Action.DELETE, why, behind, audited["id"]), size_bytes=entry.size_bytes
        )

    # -- refusals ----------------------------------------------------------------------------

    def _refuse(self, copy: CopyRecord, reason: str) -> Outcome:
        """Report a refusal. The audit log and the check record it when the reason is new, so a
        copy refused every hour for the same reason keeps one entry, "refused since"."""
        if self.dry_run or copy.note == reason:
            return _outcome(copy, Action.REFUSE, reason)
        self.ledger.annotate(copy, reason)
        audited = self._audit_refusal("refused", copy, reason)
        self._check(copy, passed=False, description=reason, audit=audited)
        return _outcome(copy, Action.REFUSE, reason, audit_id=audited["id"])

    def _lost(self, copy: CopyRecord) -> Outcome:
        reason = (
            f"recorded here but missing: lost. Restore it: bl832 restore {copy.scan} "
            f"--location {copy.endpoint}"
        )
        if self.dry_run:
            return _outcome(copy, Action.REFUSE, reason)
        if not self.ledger.move(copy, CopyState.LOST, expect=(CopyState.PRESENT,), note=reason):
            return _moved_on(copy, self.ledger.get(copy.scan, copy.endpoint, copy.dataset))
        audited = self._audit_refusal("lost", copy, reason)
        self._check(copy, passed=False, description=reason, audit=audited)
        return _outcome(copy, Action.REFUSE, reason, audit_id=audited["id"])

    def _audit_refusal(self, event: str, copy: CopyRecord, reason: str) -> dict[str, Any]:
        return audit_copy(self.audit, self.settings, event, copy, reason, self.run_id)

    def _check(
        self,
        copy: CopyRecord,
        *,
        passed: bool,
        description: str,
        audit: dict[str, Any] | None = None,
    ) -> None:
        self.report(check_evaluation(copy, passed=passed, description=description, audit=audit))

    def _catalog_problem(self, copy: CopyRecord) -> str | None:
        try:
            record = self.catalog.find_raw(copy.scan)
        except Exception as exc:  # any outage: the rule cannot be checked, so nothing goes
            return f"catalog unreachable ({_brief(exc)}): raw data goes only once it is catalogued"
        return None if record is not None else "no catalog record of this scan yet"

    def _claimed(
        self, copy: CopyRecord, safe: tuple[CopyRecord, ...]
    ) -> AbstractContextManager[str]:
        return self.ledger.leased(
            self._claims(copy, safe), purpose=self._purpose(copy), seconds=self._claim_seconds()
        )

    @staticmethod
    def _claims(copy: CopyRecord, safe: tuple[CopyRecord, ...]) -> list[Claim]:
        """The copy to delete, exclusively; every copy that may stand behind it, pinned."""
        claims = [Claim(copy.scan, copy.endpoint, exclusive=True)]
        return claims + [Claim(s.scan, s.endpoint, exclusive=False) for s in safe]

    def _purpose(self, copy: CopyRecord) -> str:
        return f"prune of {copy.endpoint} (run {self.run_id[:8]})"

    def _claim_seconds(self) -> float:
        return self.settings.retention.purge_after_crash_minutes * 60

    def _trash_path(self, copy: CopyRecord) -> str:
        day = datetime.fromtimestamp(self.now, UTC).strftime("%Y%m%d")
        return (
            f"{self.settings.retention.trash_folder}/{day}/{self.run_id[:8]}/{copy.relative_path}"
        )


def _outcome(
    copy: CopyRecord,
    action: Action,
    reason: str,
    behind: str | None = None,
    audit_id: str | None = None,
) -> Outcome:
    return Outcome(
        copy.scan, copy.endpoint, copy.dataset, copy.size_bytes, action, reason, behind, audit_id
    )


def _moved_on(copy: CopyRecord, current: CopyRecord | None) -> Outcome:
    """A copy whose record left PRESENT after this prune planned (another prune took it):
    nothing for this prune to do or to report."""
    state = current.state.value.lower() if current else "gone from the ledger"
    return _outcome(copy, Action.KEEP, f"not present any more ({state}) when its turn came")


def _brief(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def size_text(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
