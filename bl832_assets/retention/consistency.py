"""The weekly consistency audit of each endpoint: does its storage hold what the copy ledger says,
and nothing else?

Why: a prune trusts the ledger. A copy deleted by hand, or lost with a disk, stays PRESENT and
may be named as the safe copy behind another prune's delete; data nobody recorded (a copy that
crashed after writing, a file put there by hand) fills the quota unseen. As Rucio's auditor does
(``retention.md`` §1.3), three readings are compared: the ledger *before*, a listing of storage,
and the ledger *after*. The bracket keeps copies in flight out of both verdicts: a copy made or
pruned during the listing is in only one snapshot.

- LOST: PRESENT in both snapshots, absent from storage. Marked LOST, audited, and reported as
  a failed WARN ``retained_safely`` check on its partition, with the command that restores it.
- DARK: a top-level entry of a listed folder that belongs to no copy in either snapshot, in any
  state (a pruned copy's path may be written again). Only reported, never deleted: the platform
  did not make it, so it cannot know that nothing else needs it.

Entries, not files, are the unit on both sides: a copy is one file or one folder, so a stray
folder of a thousand TIFFs counts once, like the copy it resembles. If lost and dark together
exceed ``consistency_threshold`` of the recorded copies, the listing is more likely wrong than
the data (a storage not mounted, a partial Globus answer), and the audit stops without acting.
"""

from dataclasses import dataclass
from pathlib import PurePosixPath

import dagster as dg

from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.resources.transfer.errors import PathNotFound
from bl832_assets.retention.audit import AuditLog
from bl832_assets.retention.ledger import CopyLedger, CopyRecord, CopyState
from bl832_assets.retention.reporting import audit_copy, check_evaluation
from bl832_assets.retention.resource import LedgerResource
from bl832_assets.settings import Settings

DARK_SHOWN = 100
"""Dark entries named in the run's metadata; the count covers them all."""


@dataclass(frozen=True)
class Findings:
    """One three-way comparison of an endpoint, before anything is acted on."""

    recorded: int  # copies PRESENT in either snapshot
    listed: int  # top-level data entries seen in the listed folders
    lost: tuple[CopyRecord, ...]
    dark: tuple[str, ...]  # endpoint-relative paths, sorted

    def too_many(self, threshold: float) -> bool:
        return len(self.lost) + len(self.dark) > threshold * max(1, self.recorded)


def compare(
    ledger: CopyLedger, transfer: TransferResource, endpoint: str, trash_folder: str
) -> Findings:
    """Ledger before, storage listing, ledger after: what is lost and what is dark."""
    before = ledger.at(endpoint, tuple(CopyState))
    entries = _entries(transfer, endpoint, before, trash_folder)
    after = ledger.at(endpoint, tuple(CopyState))
    present_after = {_identity(c) for c in after if c.state is CopyState.PRESENT}
    lost = tuple(
        copy
        for copy in before
        if copy.state is CopyState.PRESENT
        and _identity(copy) in present_after
        and not _found(transfer, endpoint, copy.relative_path, entries)
    )
    known = {PurePosixPath(c.relative_path) for c in (*before, *after)}
    above = {folder for path in known for folder in path.parents}  # entries holding a copy
    dark = sorted(
        str(entry)
        for entry in entries
        if entry not in known and entry not in above and known.isdisjoint(entry.parents)
    )
    recorded = {_identity(c) for c in (*before, *after) if c.state is CopyState.PRESENT}
    return Findings(len(recorded), len(entries), lost, tuple(dark))


def _entries(
    transfer: TransferResource, endpoint: str, copies: list[CopyRecord], trash_folder: str
) -> set[PurePosixPath]:
    """The top-level data entries of every folder holding a recorded copy. The endpoint root
    itself cannot be listed (no backend lists it), so copies there are looked up one by one."""
    trash = PurePosixPath(trash_folder)
    folders = {PurePosixPath(c.relative_path).parent for c in copies}
    entries: set[PurePosixPath] = set()
    for folder in sorted(folders):
        if not folder.parts or folder == trash or trash in folder.parents or _hidden(folder):
            continue
        try:
            keys = transfer.listing(endpoint, str(folder))
        except PathNotFound:
            continue  # the whole folder is gone: its copies are lost
        for key in keys:
            top = PurePosixPath(key).parts[0]
            if not _hidden(PurePosixPath(key)):
                entries.add(folder / top)
    return entries


def _found(
    transfer: TransferResource, endpoint: str, relative_path: str, entries: set[PurePosixPath]
) -> bool:
    path = PurePosixPath(relative_path)
    if len(path.parts) == 1:
        return transfer.exists(endpoint, relative_path)
    return path in entries


def _hidden(path: PurePosixPath) -> bool:
    return any(part.startswith(".") for part in path.parts)


def _identity(copy: CopyRecord) -> tuple[str, str, str]:
    return copy.scan, copy.dataset, copy.relative_path


def build_consistency_audits(
    settings: Settings,
) -> tuple[list[dg.JobDefinition], list[dg.ScheduleDefinition]]:
    """One audit job per endpoint, each on the weekly ``consistency_cron``, on by default: an
    audit that must be switched on finds nothing."""
    jobs = [_audit_job(settings, endpoint) for endpoint in settings.endpoints]
    schedules = [
        dg.ScheduleDefinition(
            name=f"{job.name}_schedule",
            job=job,
            cron_schedule=settings.retention.consistency_cron,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=f"Compares {job.name.removeprefix('audit_')}'s storage with the copy "
            "ledger: lost copies are marked, dark data is reported.",
        )
        for job in jobs
    ]
    return jobs, schedules


def _audit_job(settings: Settings, endpoint: str) -> dg.JobDefinition:
    threshold = settings.retention.consistency_threshold

    @dg.op(
        name=f"audit_{endpoint}_copies",
        required_resource_keys={"transfer", "ledger"},
        description=f"Ledger before, listing, ledger after on {endpoint}: marks recorded copies "
        "missing from storage LOST and reports unrecorded data; deletes nothing.",
    )
    def audit(context: dg.OpExecutionContext) -> None:
        resource: LedgerResource = context.resources.ledger
        ledger = resource.ledger()
        findings = compare(
            ledger, context.resources.transfer, endpoint, settings.retention.trash_folder
        )
        counts = {
            "recorded": findings.recorded,
            "listed": findings.listed,
            "lost": len(findings.lost),
            "dark": len(findings.dark),
        }
        if findings.too_many(threshold):
            raise dg.Failure(
                description=(
                    f"The listing of {endpoint} looks wrong: {counts['lost']} lost and "
                    f"{counts['dark']} dark of {findings.recorded} recorded copies exceed the "
                    f"threshold of {threshold:.0%}, so nothing was marked. Check that the "
                    f"endpoint's storage is mounted or reachable and its listing complete, "
                    f"then run audit_{endpoint} again."
                ),
                metadata={**counts, "threshold": threshold},
            )
        for copy in findings.lost:
            _mark_lost(context, settings, ledger, copy)
        context.add_output_metadata(
            {
                **counts,
                "dark_paths": dg.MetadataValue.json(list(findings.dark[:DARK_SHOWN])),
            }
        )

    @dg.job(
        name=f"audit_{endpoint}",
        description=f"Weekly consistency audit of {endpoint} against the copy ledger.",
    )
    def audit_job() -> None:
        audit()

    return audit_job


def _mark_lost(
    context: dg.OpExecutionContext, settings: Settings, ledger: CopyLedger, copy: CopyRecord
) -> None:
    """Record one lost copy in the ledger, the audit log and its partition's check. A copy
    whose state changed since the snapshot (a prune took it) is left to whoever changed it."""
    reason = (
        f"missing at audit of {copy.endpoint} (run {context.run_id[:8]}); restore with: "
        f"bl832 restore {copy.scan} --location {copy.endpoint}"
    )
    if not ledger.move(copy, CopyState.LOST, expect=(CopyState.PRESENT,), note=reason):
        return
    audited = audit_copy(
        AuditLog(settings.audit_log), settings, "lost", copy, reason, context.run_id
    )
    context.log_event(check_evaluation(copy, passed=False, description=reason, audit=audited))
