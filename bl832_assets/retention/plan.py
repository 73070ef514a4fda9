"""Which copies at a location are due, from the ledger alone: no storage is touched, so a plan
over tens of thousands of copies takes a second, and what it proposes is still re-verified on
storage before anything is deleted (``prune.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from bl832_assets import keys
from bl832_assets.decision import decide
from bl832_assets.retention.ledger import CopyLedger, CopyRecord
from bl832_assets.settings import Settings

DAY = 86400.0


class Action(StrEnum):
    DELETE = "delete"
    KEEP = "keep"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Proposal:
    """What the plan says about one copy. For ``delete`` the reason says why it is due and
    ``safe`` lists the recorded copies that may stand behind it, best first."""

    copy: CopyRecord
    action: Action
    reason: str
    safe: tuple[CopyRecord, ...] = ()


SafeCopies = Mapping[tuple[str, str], list[CopyRecord]]
"""PRESENT copies at the safe locations, by (scan, dataset)."""


def plan(settings: Settings, ledger: CopyLedger, endpoint: str, now: float) -> list[Proposal]:
    """One proposal per copy present at ``endpoint``, oldest first, from two queries."""
    policy = settings.retention.safe_copies.get(endpoint, {})
    safe = ledger.present_by_scan(
        {name for names in policy.values() for name in names}, policy.keys()
    )
    return [propose(settings, safe, record, now) for record in ledger.at(endpoint)]


def propose(settings: Settings, safe: SafeCopies, copy: CopyRecord, now: float) -> Proposal:
    days = settings.retention_days.get(copy.endpoint)
    if days is None:
        return Proposal(copy, Action.KEEP, f"{copy.endpoint} keeps copies for ever")
    if copy.made_at > now + settings.retention.future_tolerance_seconds:
        return Proposal(
            copy,
            Action.REFUSE,
            f"recorded as made {(copy.made_at - now) / DAY:.2f} days in the future: "
            "a clock is wrong, so its age means nothing",
        )
    age = (now - copy.made_at) / DAY
    if age < days:
        return Proposal(copy, Action.KEEP, f"{age:.2f} days old, due in {days - age:.2f}")
    wanted = safe_endpoints(settings, copy)
    if not wanted:
        return Proposal(copy, Action.KEEP, _no_safe_location(settings, copy))
    recorded = [r for r in safe.get((copy.scan, copy.dataset), []) if r.endpoint in wanted]
    if not recorded:
        return Proposal(
            copy,
            Action.REFUSE,
            f"due ({age:.2f} days, limit {days:g}) but no copy is recorded at "
            + " or ".join(wanted),
        )
    ranked = sorted(recorded, key=lambda r: wanted.index(r.endpoint))
    return Proposal(copy, Action.DELETE, f"due: {age:.2f} days old, limit {days:g}", tuple(ranked))


def safe_endpoints(settings: Settings, copy: CopyRecord) -> list[str]:
    """Where a verified copy allows deleting this one. Export-controlled data has left the
    site nowhere, so only on-site locations count for it."""
    named = settings.retention.safe_copies.get(copy.endpoint, {}).get(copy.dataset, [])
    if copy.export_controlled:
        named = [name for name in named if settings.endpoints[name].onsite]
    return list(named)


def needs_catalog_record(settings: Settings, copy: CopyRecord) -> bool:
    """Raw data is pruned only once the catalog knows the scan, where the scan is catalogued
    at all (an export-controlled scan never goes to an off-site catalog)."""
    if copy.dataset != keys.RAW_SCAN:
        return False
    return keys.CATALOG_RAW in decide(settings, export_control=copy.export_controlled)


def _no_safe_location(settings: Settings, copy: CopyRecord) -> str:
    if copy.export_controlled and settings.retention.safe_copies.get(copy.endpoint, {}).get(
        copy.dataset
    ):
        return "export controlled: no on-site archive copy is named, so it is never pruned here"
    return f"the policy names no safe location for {copy.dataset} at {copy.endpoint}"
