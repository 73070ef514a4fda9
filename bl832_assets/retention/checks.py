"""``retained_safely``: the per-scan check on every asset whose location is pruned.

The prune job reports it when it refuses a copy or finds one lost, so the UI shows the
partition WARN at once; run from the UI, it reads the ledger and says where the copy stands:
present and when it falls due (behind which copy), pruned (behind which copy, until when in
the trash), refused (why) or lost (and how to restore it).
"""

import time

import dagster as dg

from bl832_assets.partitions import scans
from bl832_assets.retention.ledger import CopyRecord, CopyState
from bl832_assets.retention.locations import asset_endpoints, dataset_of
from bl832_assets.retention.plan import DAY, safe_endpoints
from bl832_assets.retention.reporting import RETENTION_CHECK
from bl832_assets.retention.resource import LedgerResource
from bl832_assets.settings import Settings


def build_retention_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    return [
        _check(settings, key, endpoint)
        for key, endpoint in asset_endpoints(settings).items()
        if endpoint in settings.retention_days
    ]


def _check(settings: Settings, key: dg.AssetKey, endpoint: str) -> dg.AssetChecksDefinition:
    days = settings.retention_days[endpoint]

    @dg.asset_check(
        asset=key,
        name=RETENTION_CHECK,
        description=f"Where this scan's copy on {endpoint} stands under retention ({days:g} "
        "days, pruned only behind a copy verified at prune time): WARN when a prune was "
        "refused or the copy was found missing.",
        partitions_def=scans,
        blocking=False,
    )
    def retained_safely(
        context: dg.AssetCheckExecutionContext, ledger: LedgerResource
    ) -> dg.AssetCheckResult:
        copy = ledger.ledger().get(context.partition_key, endpoint, dataset_of(key))
        if copy is None:
            return dg.AssetCheckResult(
                passed=True, metadata={"state": "not recorded"}, description="no copy recorded"
            )
        return _evaluate(settings, copy, days)

    return retained_safely


def _evaluate(settings: Settings, copy: CopyRecord, days: float) -> dg.AssetCheckResult:
    metadata: dict[str, object] = {
        "state": copy.state.value.lower(),
        "endpoint": copy.endpoint,
        "made_at": dg.MetadataValue.timestamp(copy.made_at),
        "safe_copy_at": ", ".join(safe_endpoints(settings, copy)) or "none named",
    }
    if copy.state is CopyState.LOST or (copy.state is CopyState.PRESENT and copy.note):
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={**metadata, "reason": str(copy.note)},
            description=str(copy.note),
        )
    if copy.state is CopyState.PRESENT:
        due = copy.made_at + days * DAY
        metadata["due_at"] = dg.MetadataValue.timestamp(due)
        left = (due - time.time()) / DAY
        description = f"present; due in {left:.1f} days" if left > 0 else "present; due now"
    else:
        metadata["trash_path"] = str(copy.trash_path)
        description = f"{copy.state.value.lower()}: {copy.note or ''}".strip(": ")
    return dg.AssetCheckResult(passed=True, metadata=metadata, description=description)
