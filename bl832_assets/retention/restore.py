"""Bringing a pruned or lost copy back: from the endpoint's own trash while the grace period
lasts (a rename, nothing crosses the network), else from a copy elsewhere verified against its
record. Either way the restored bytes are measured against the checksum recorded when the copy
was first made, and the asset is materialized again, so the UI shows the copy back."""

from __future__ import annotations

import time
from dataclasses import dataclass

import dagster as dg

from bl832_assets.resources.transfer.errors import PathNotFound, TransferError
from bl832_assets.retention.audit import AuditLog
from bl832_assets.retention.ledger import Claim, CopyLedger, CopyRecord, CopyState
from bl832_assets.retention.measure import Measurer
from bl832_assets.retention.plan import safe_endpoints
from bl832_assets.settings import Settings


class RestoreFailed(Exception):
    """Nothing could bring the copy back; the message says what was tried."""


@dataclass(frozen=True)
class Restored:
    scan: str
    endpoint: str
    dataset: str
    source: str  # "trash" or the endpoint copied from
    sha256: str
    size_bytes: int


def restore(
    settings: Settings,
    ledger: CopyLedger,
    measurer: Measurer,
    audit: AuditLog,
    *,
    scan: str,
    endpoint: str,
    run_id: str,
) -> list[Restored]:
    """Restore every pruned or lost dataset of ``scan`` at ``endpoint``."""
    gone = [
        c
        for c in ledger.copies_of(scan)
        if c.endpoint == endpoint and c.state in (CopyState.PRUNED, CopyState.LOST)
    ]
    if not gone:
        raise RestoreFailed(f"{scan}: no pruned or lost copy is recorded at {endpoint}")
    return [_restore_one(settings, ledger, measurer, audit, copy, run_id) for copy in gone]


def _restore_one(
    settings: Settings,
    ledger: CopyLedger,
    measurer: Measurer,
    audit: AuditLog,
    copy: CopyRecord,
    run_id: str,
) -> Restored:
    holder = f"restore:{run_id}:{copy.scan}:{copy.endpoint}"
    with ledger.leased(
        [Claim(copy.scan, copy.endpoint, exclusive=True)],
        purpose=f"restore of {copy.endpoint}",
        seconds=settings.retention.lease_minutes * 60,
        holder=holder,
    ):
        source = _from_trash(ledger, measurer, copy) or _from_elsewhere(ledger, measurer, copy)
        here = measurer.measure(copy.endpoint, copy.relative_path)
        if copy.sha256 is not None and here.sha256 != copy.sha256:
            raise RestoreFailed(
                f"{copy.scan}: the restored copy at {copy.endpoint} does not match its record "
                f"({here.sha256[:12]}…, recorded {copy.sha256[:12]}…)"
            )
        ledger.move(copy, CopyState.PRESENT, expect=(CopyState.PRUNED, CopyState.LOST))
        audit.append(
            "restored",
            scan=copy.scan,
            location=copy.endpoint,
            dataset=copy.dataset,
            path=settings.location_of(copy.endpoint, copy.relative_path),
            size_bytes=here.size_bytes,
            sha256=here.sha256,
            safe_copy=source,
            run_id=run_id,
        )
    return Restored(copy.scan, copy.endpoint, copy.dataset, source, here.sha256, here.size_bytes)


def _from_trash(ledger: CopyLedger, measurer: Measurer, copy: CopyRecord) -> str | None:
    transfer = measurer.transfer
    for entry in ledger.trash_of(copy.scan, copy.endpoint):
        if entry.purged_at is not None or entry.dataset != copy.dataset:
            continue
        if not transfer.exists(copy.endpoint, entry.trash_path):
            continue
        transfer.rename(
            copy.endpoint, entry.trash_path, copy.relative_path, label=f"restore {copy.scan}"
        )
        ledger.purged(entry.id, time.time())  # the trash entry is used up, not purgeable
        return "trash"
    return None


def _from_elsewhere(ledger: CopyLedger, measurer: Measurer, copy: CopyRecord) -> str:
    """Copy back from the first other recorded copy whose bytes match its own record now."""
    wanted = safe_endpoints(measurer.settings, copy)
    others = [
        c
        for c in ledger.copies_of(copy.scan)
        if c.dataset == copy.dataset
        and c.endpoint != copy.endpoint
        and c.state is CopyState.PRESENT
    ]
    others.sort(key=lambda c: (c.endpoint not in wanted, c.endpoint))
    tried = []
    for other in others:
        try:
            there = measurer.measure(other.endpoint, other.relative_path)
        except (PathNotFound, TransferError, dg.Failure) as exc:
            tried.append(f"{other.endpoint}: {exc}")
            continue
        reference = copy.sha256 or other.sha256
        if reference is not None and there.sha256 != reference:
            tried.append(f"{other.endpoint}: holds other bytes")
            continue
        measurer.transfer.copy(
            other.endpoint,
            copy.endpoint,
            copy.relative_path,
            label=f"restore {copy.scan}",
            export_controlled=copy.export_controlled,
        )
        return other.endpoint
    raise RestoreFailed(
        f"{copy.scan}: no verified copy to restore {copy.endpoint} from: "
        + ("; ".join(tried) or "no other copy is recorded")
    )
