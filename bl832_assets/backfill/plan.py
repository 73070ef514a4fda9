"""What a backfill asks for: which assets, for which scans, in how many Dagster backfills.

An operator picks assets with Dagster's selection syntax and scans by date, glob or list. The
export-control rule of ``decision.permitted`` still holds: the scans are split by their flag,
and export-controlled ones get a backfill of their own with only the on-site part of the
selection, so no run of theirs ever plans an off-site step (the copy assets refuse one
anyway). A scan whose flag is recorded nowhere counts as controlled, as the copy assets
count it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import dagster as dg

from bl832_assets import keys
from bl832_assets.decision import decide, permitted
from bl832_assets.retention.ledger import CopyLedger, CopyState
from bl832_assets.retention.locations import asset_endpoints, dataset_of
from bl832_assets.settings import Settings

PRIORITY = -1
"""``dagster/priority`` of backfill runs: below the sensor's runs of new scans (0), so a
campaign's live data never waits behind history in the run queue."""

TRIGGER = {"bl832/trigger": "backfill"}

CONTROLLED = "export-controlled (on-site assets only)"

_BARE_KEY = re.compile(r"^(\+*)([A-Za-z0-9_./-]+)(\+*)$")
_SCAN_DATE = re.compile(r"^(\d{8})_")


class BackfillRefused(ValueError):
    """The request cannot become a backfill; the message says what to change."""


@dataclass(frozen=True)
class Choice:
    """The operator's filters on scans; all of them must hold."""

    since: date | None = None
    until: date | None = None
    match: str | None = None
    scans_file: Path | None = None


@dataclass(frozen=True)
class Part:
    """One Dagster backfill: these assets for these scans."""

    label: str
    assets: list[dg.AssetKey]
    scans: list[str]
    added: list[str] = field(default_factory=list)  # parents some scans lack, run first


@dataclass(frozen=True)
class Plan:
    parts: list[Part]
    undated: int = 0  # scans left out by --since/--until because no date is known for them
    controlled: int = 0  # scans treated as export controlled (flagged, or no flag recorded)
    unflagged: int = 0  # of those, scans with no recorded flag
    withheld: list[str] = field(default_factory=list)  # assets the controlled scans may not have


def selected_assets(defs: dg.Definitions, selection: str) -> list[dg.AssetKey]:
    """Materializable assets named by ``selection``: Dagster's selection syntax
    (``key:"nersc/recon_tiff"+``, ``group:results``), or a bare key with ``+`` on either side."""
    bare = _BARE_KEY.match(selection.strip())
    text = f'{bare[1]}key:"{bare[2]}"{bare[3]}' if bare else selection
    graph = defs.resolve_asset_graph()
    try:
        chosen = dg.AssetSelection.from_string(text).resolve(graph)
    except Exception as exc:  # the parser's own errors name the bad token
        raise BackfillRefused(f"selection {selection!r}: {exc}") from exc
    materializable = {k for k in chosen if graph.get(k).is_materializable}
    if not materializable:
        known = sorted(k.to_user_string() for k in graph.materializable_asset_keys)
        raise BackfillRefused(
            f"selection {selection!r} names no asset that can be materialized "
            f"(assets: {', '.join(known)})"
        )
    return _ordered(materializable)


def parents_of(defs: dg.Definitions) -> dict[dg.AssetKey, frozenset[dg.AssetKey]]:
    """Each materializable asset's parents (observed-only assets have no entry)."""
    graph = defs.resolve_asset_graph()
    return {key: frozenset(graph.get(key).parent_keys) for key in graph.materializable_asset_keys}


def with_missing_parents(
    parents: Mapping[dg.AssetKey, frozenset[dg.AssetKey]],
    assets: list[dg.AssetKey],
    scans: list[str],
    materialized: Callable[[dg.AssetKey], set[str]],
    addable: set[dg.AssetKey],
) -> tuple[list[dg.AssetKey], list[dg.AssetKey]]:
    """The selection, plus every parent it reads from that some chosen scan never had (a
    historic scan's raw catalog record, a facility's copy), up to the first parents all of
    them have: Dagster would otherwise run the child and fail it for want of its input. Only
    ``addable`` assets are added. Returns the assets and those added."""
    chosen = set(assets)
    wanted = set(scans)
    added: list[dg.AssetKey] = []
    frontier = list(assets)
    while frontier:
        missing = {p for a in frontier for p in parents.get(a, ())} - chosen
        frontier = [p for p in _ordered(missing) if p in addable and wanted - materialized(p)]
        chosen.update(frontier)
        added += frontier
    return _ordered(chosen), added


@dataclass(frozen=True)
class SiteRecords:
    """What a plan reads of the site: registered scans, the ledger (flags and dates), the
    asset graph and which scans each asset already has."""

    registered: list[str]
    ledger: CopyLedger
    parents: Mapping[dg.AssetKey, frozenset[dg.AssetKey]]
    materialized: Callable[[dg.AssetKey], set[str]]


def plan(settings: Settings, site: SiteRecords, assets: list[dg.AssetKey], choice: Choice) -> Plan:
    """Split the chosen scans into one backfill per export-control flag."""
    raw = _raw_records(settings, site.ledger)
    scans = _chosen(site.registered, choice)
    undated = 0
    if choice.since or choice.until:
        dated = {s: _scan_date(s, raw.get(s)) for s in scans}
        undated = sum(d is None for d in dated.values())
        scans = [s for s, d in dated.items() if d is not None and _within(d, choice)]
    flags = {s: _flag(raw.get(s)) for s in scans}
    open_scans = [s for s in scans if flags[s] is False]
    held_scans = [s for s in scans if flags[s] is not False]
    parts = [
        _part(settings, site, "open", assets, open_scans, controlled=False),
        _part(settings, site, CONTROLLED, assets, held_scans, controlled=True),
    ]
    free = permitted(settings, assets, export_control=False)
    held = permitted(settings, assets, export_control=True)
    return Plan(
        parts=[p for p in parts if p is not None],
        undated=undated,
        controlled=len(held_scans),
        unflagged=sum(f is None for f in flags.values()),
        withheld=[k.to_user_string() for k in _ordered(free - held)] if held_scans else [],
    )


def _part(
    settings: Settings,
    site: SiteRecords,
    label: str,
    assets: list[dg.AssetKey],
    scans: list[str],
    *,
    controlled: bool,
) -> Part | None:
    allowed = _ordered(permitted(settings, assets, export_control=controlled))
    if not scans or not allowed:
        return None
    # Only parents the decision gives such a scan (so none off site for a controlled one): a
    # copy coming home reads from any one facility, and those switched off are no missing input.
    grown, added = with_missing_parents(
        site.parents,
        allowed,
        scans,
        site.materialized,
        addable=set(decide(settings, export_control=controlled)),
    )
    return Part(label, grown, scans, [a.to_user_string() for a in added])


def _ordered(assets: Iterable[dg.AssetKey]) -> list[dg.AssetKey]:
    return sorted(assets, key=lambda k: k.to_user_string())


def _chosen(registered: list[str], choice: Choice) -> list[str]:
    scans = registered
    if choice.scans_file is not None:
        wanted = _read_scans_file(choice.scans_file)
        unknown = sorted(set(wanted) - set(registered))
        if unknown:
            raise BackfillRefused(
                f"{choice.scans_file}: {len(unknown)} scan(s) are not registered "
                f"({', '.join(unknown[:5])}{', …' if len(unknown) > 5 else ''}); "
                "register historic scans with `bl832 discover` first"
            )
        scans = [s for s in registered if s in set(wanted)]
    if choice.match:
        scans = [s for s in scans if fnmatch.fnmatchcase(s, choice.match)]
    return scans


def _read_scans_file(path: Path) -> list[str]:
    """One scan key per line; blank lines and ``#`` comments are skipped."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise BackfillRefused(f"{path}: cannot read the scan list ({exc.strerror})") from exc
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _raw_records(settings: Settings, ledger: CopyLedger) -> dict[str, list[tuple[float, bool]]]:
    """Per scan, every raw copy the ledger knows of: when it was recorded, and its flag."""
    endpoints = {e for k, e in asset_endpoints(settings).items() if dataset_of(k) == keys.RAW_SCAN}
    found: dict[str, list[tuple[float, bool]]] = {}
    for endpoint in sorted(endpoints):
        for record in ledger.at(endpoint, tuple(CopyState)):
            if record.dataset == keys.RAW_SCAN:
                found.setdefault(record.scan, []).append((record.made_at, record.export_controlled))
    return found


def _flag(records: list[tuple[float, bool]] | None) -> bool | None:
    """Controlled if any copy travelled as controlled; None when no copy is recorded."""
    return None if not records else any(flag for _, flag in records)


def _scan_date(scan: str, records: list[tuple[float, bool]] | None) -> date | None:
    """The date the detector wrote into the name (``YYYYMMDD_…``, 8.3.2's convention), else
    the day its first raw copy was recorded."""
    if (stamp := _SCAN_DATE.match(scan)) is not None:
        try:
            return datetime.strptime(stamp[1], "%Y%m%d").date()
        except ValueError:
            pass
    if records:
        return datetime.fromtimestamp(min(t for t, _ in records)).date()
    return None


def _within(day: date, choice: Choice) -> bool:
    return (choice.since is None or day >= choice.since) and (
        choice.until is None or day <= choice.until
    )
