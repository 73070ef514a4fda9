"""How retention tells people about one copy it could not prune or found missing: one audit
line and one WARN ``retained_safely`` evaluation on the copy's partition, written the same way
by the prune and by the consistency audit."""

from __future__ import annotations

from typing import Any

import dagster as dg

from bl832_assets.retention.audit import AuditLog
from bl832_assets.retention.ledger import CopyRecord
from bl832_assets.settings import Settings

RETENTION_CHECK = "retained_safely"
"""The check on every pruned location's assets that turns WARN on a refusal or a lost copy."""


def audit_copy(
    audit: AuditLog, settings: Settings, event: str, copy: CopyRecord, reason: str, run_id: str
) -> dict[str, Any]:
    return audit.append(
        event,
        scan=copy.scan,
        location=copy.endpoint,
        dataset=copy.dataset,
        path=settings.location_of(copy.endpoint, copy.relative_path),
        size_bytes=copy.size_bytes,
        sha256=copy.sha256,
        safe_copy=None,
        reason=reason,
        run_id=run_id,
    )


def check_evaluation(
    copy: CopyRecord, *, passed: bool, description: str, audit: dict[str, Any] | None = None
) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey.from_user_string(copy.asset_key),
        check_name=RETENTION_CHECK,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        partition=copy.scan,
        description=description,
        metadata={
            "endpoint": copy.endpoint,
            "reason": description,
            **({"audit_entry": dg.MetadataValue.json(audit)} if audit else {}),
        },
    )
