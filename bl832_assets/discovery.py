"""Bringing scans that are already on storage into the platform: ``bl832 discover``.

Historic scans (those that arrived while the platform was down, or before it existed) have no
partition and no record of where they are, so nothing can be backfilled for them. Discovery
lists an endpoint, refuses what could never be a scan (a bad name, a broken file, a name taken
by another file), registers the rest as ``scans`` partitions and records each as present there:
a runless materialization of the location's raw asset (what the copy assets read their source
from) and a ledger record (what retention reasons about).

Two costs bound the rate (``benchmarks/bench_discover.py`` measures both). Validation reads the
Data Exchange header of every file, so it runs in worker processes (h5py holds one lock per
process: threads would not help). Dagster stores runless events one at a time, about 7 ms each
on its SQLite storage, whatever the batch; the ledger's records of a chunk go in one
transaction and its partitions in one call, so the per-scan materialization is the only write
per scan. Chunks are ``CHUNK`` keys: SQLite's limit on variables in one statement differs
between builds.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path, PurePosixPath

import dagster as dg

from bl832_assets import keys
from bl832_assets.partitions import BadScanName, scan_key, scans
from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.resources.transfer.errors import TransferError
from bl832_assets.retention.ledger import CopyFacts, CopyLedger, CopyState
from bl832_assets.retention.locations import asset_endpoints, dataset_of
from bl832_assets.retention.resource import open_ledger
from bl832_assets.science.dx import read_metadata
from bl832_assets.science.errors import ScanFormatError
from bl832_assets.settings import Settings

CHUNK = 1000
"""Keys per ``add_dynamic_partitions`` call (and per batch of records)."""

POOL_MIN = 200
"""Fewer files than this are validated in this process: starting workers would cost more."""

POOL_BATCH = 50
"""Files a worker validates per task: large enough that messaging costs little, small enough
that results (and their records) flow while the rest is validated."""

MADE_BY = "discovered"

Progress = Callable[[int, int], None]
"""Called with (files examined, files to examine) as discovery goes."""


class EndpointUnreadable(Exception):
    """The endpoint could not be listed at all; the message says what to check."""


@dataclass(frozen=True)
class DiscoverOptions:
    endpoint: str
    prefix: str = ""
    since: date | None = None
    until: date | None = None
    match: str | None = None
    dry_run: bool = False
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)


@dataclass(frozen=True)
class Refusal:
    relative_path: str
    reason: str


@dataclass(frozen=True)
class DiscoverySummary:
    endpoint: str
    asset_key: dg.AssetKey
    registered: list[str]
    already_known: int
    refused: list[Refusal]
    seconds: float
    dry_run: bool
    layout_checked: bool  # False: listed through the transfer resource, names only

    @property
    def examined(self) -> int:
        return len(self.registered) + self.already_known + len(self.refused)

    @property
    def files_per_second(self) -> float:
        return self.examined / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Found:
    relative_path: str
    size_bytes: int
    mtime: float | None  # None where only a listing (names and sizes) was available


@dataclass(frozen=True)
class _Accepted:
    key: str
    found: _Found
    export_controlled: bool


def raw_asset_of(settings: Settings, endpoint: str) -> dg.AssetKey:
    """The asset whose copy of a scan's raw data lives on ``endpoint``."""
    if endpoint not in settings.endpoints:
        raise ValueError(f"unknown endpoint {endpoint!r} (known: {', '.join(settings.endpoints)})")
    raw = {e: k for k, e in asset_endpoints(settings).items() if dataset_of(k) == keys.RAW_SCAN}
    if endpoint not in raw:
        raise ValueError(
            f"{endpoint} holds no raw scans (endpoints with raw scans: {', '.join(sorted(raw))})"
        )
    return raw[endpoint]


def discover(
    settings: Settings,
    instance: dg.DagsterInstance,
    transfer: TransferResource,
    options: DiscoverOptions,
    progress: Progress | None = None,
) -> DiscoverySummary:
    """Find, validate, register and record the scans on ``options.endpoint``.

    Raises ``EndpointUnreadable`` when the endpoint cannot be listed, ``ValueError`` for options
    that cannot apply (an unknown endpoint, date filters without file times)."""
    started = time.monotonic()
    asset_key = raw_asset_of(settings, options.endpoint)
    layout_checked = settings.visible(options.endpoint)
    if not layout_checked and (options.since or options.until):
        raise ValueError(
            f"--since/--until need file times, and {options.endpoint} is not mounted here "
            "(its listing gives names and sizes only)"
        )
    found = sorted(_listed(settings, transfer, options), key=lambda f: f.relative_path)
    found = [f for f in found if _wanted(f, options)]
    report = progress or (lambda done, total: None)
    ledger = open_ledger(settings.ledger_url)
    known = _Known(settings, instance, ledger, options.endpoint)
    refused: list[Refusal] = []
    already_known = 0
    to_validate: list[tuple[str, _Found]] = []
    for item in found:
        try:
            key = scan_key(item.relative_path)
        except BadScanName as exc:
            refused.append(Refusal(item.relative_path, _reason(exc, item.relative_path)))
            continue
        if (other := known.recorded_path(key)) not in (None, item.relative_path):
            where = settings.location_of(options.endpoint, other)
            how = "registered" if known.registered(key) else "recorded"  # by an interrupted run
            refused.append(Refusal(item.relative_path, f"name already {how} for {where}"))
        elif known.registered(key):
            already_known += 1
        else:
            to_validate.append((key, item))
    done = len(found) - len(to_validate)
    report(done, len(found))

    root = settings.root(options.endpoint) if layout_checked else None
    taken: dict[str, str] = {}
    pending: list[_Accepted] = []
    registered: list[str] = []
    for (key, item), checked in zip(
        to_validate,
        _export_control(root, [i for _, i in to_validate], options.workers),
        strict=True,
    ):
        done += 1
        if isinstance(checked, str):
            refused.append(Refusal(item.relative_path, checked))
        elif key in taken:
            where = settings.location_of(options.endpoint, taken[key])
            refused.append(Refusal(item.relative_path, f"name already registered for {where}"))
        else:
            taken[key] = item.relative_path
            pending.append(_Accepted(key, item, checked))
            if len(pending) == CHUNK:
                registered += _register(settings, instance, ledger, asset_key, pending, options)
                pending = []
        report(done, len(found))
    registered += _register(settings, instance, ledger, asset_key, pending, options)
    report(len(found), len(found))
    return DiscoverySummary(
        endpoint=options.endpoint,
        asset_key=asset_key,
        registered=registered,
        already_known=already_known,
        refused=sorted(refused, key=lambda r: r.relative_path),
        seconds=time.monotonic() - started,
        dry_run=options.dry_run,
        layout_checked=layout_checked,
    )


# -- listing -----------------------------------------------------------------------------------


def _listed(
    settings: Settings, transfer: TransferResource, options: DiscoverOptions
) -> list[_Found]:
    prefix = options.prefix.strip("/")
    if settings.visible(options.endpoint):
        base = settings.root(options.endpoint) / prefix
        if not base.is_dir():
            raise EndpointUnreadable(
                f"{options.endpoint}: no folder {base}; check that the storage is mounted here "
                "and that the prefix exists"
            )
        try:
            return list(_walk(base, PurePosixPath(prefix)))
        except OSError as exc:
            raise EndpointUnreadable(
                f"{options.endpoint}: cannot read {exc.filename or base} ({exc.strerror}); "
                "check the mount and this user's permissions"
            ) from exc
    if not prefix:
        raise ValueError(
            f"{options.endpoint} is not mounted here: give a PREFIX (a folder of it) to list "
            "through the transfer backend"
        )
    try:
        sizes = transfer.listing(options.endpoint, prefix)
    except TransferError as exc:
        raise EndpointUnreadable(
            f"{options.endpoint}: listing refused ({exc}); check the prefix, the collection and "
            "the Globus credentials"
        ) from exc
    return [
        _Found((PurePosixPath(prefix) / name).as_posix(), size, None)
        for name, size in sizes.items()
        if not any(part.startswith(".") for part in PurePosixPath(name).parts)
    ]


def _walk(base: Path, relative: PurePosixPath) -> Iterator[_Found]:
    """Every visible regular file under ``base``. Hidden files and folders are not scans:
    retention's ``.trash``, and a copy's partial files (``.name.partial``)."""
    stack = [(base, relative)]
    while stack:
        folder, inside = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), inside / entry.name))
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    yield _Found((inside / entry.name).as_posix(), st.st_size, st.st_mtime)


def _wanted(found: _Found, options: DiscoverOptions) -> bool:
    if options.match and not fnmatch.fnmatchcase(found.relative_path, options.match):
        return False
    if found.mtime is None:
        return True
    day = datetime.fromtimestamp(found.mtime).date()
    return (options.since is None or day >= options.since) and (
        options.until is None or day <= options.until
    )


# -- validation --------------------------------------------------------------------------------


def _export_control(root: Path | None, found: list[_Found], workers: int) -> Iterator[bool | str]:
    """Each file's export-control flag, or the reason it is not a valid scan, in order, while
    the caller records the ones before. Without a mount the layout cannot be read: such a scan
    counts as controlled, as the copy assets count a scan with no detector record."""
    if root is None:
        yield from (True for _ in found)
        return
    paths = [str(root / f.relative_path) for f in found]
    if workers <= 1 or len(paths) < POOL_MIN:
        yield from map(_check, paths)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(_check, paths, chunksize=POOL_BATCH)


def _check(path: str) -> bool | str:
    try:
        return read_metadata(path).export_control
    except ScanFormatError as exc:
        return f"{exc.field}: {exc.problem}"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"


def _reason(exc: BadScanName, relative_path: str) -> str:
    return str(exc).removeprefix(f"{relative_path!r}: ")


# -- what is already known ---------------------------------------------------------------------


class _Known:
    """Registered keys, and where each one's scan was recorded: a key names one file for ever."""

    def __init__(
        self, settings: Settings, instance: dg.DagsterInstance, ledger: CopyLedger, endpoint: str
    ) -> None:
        self._instance = instance
        self._keys = set(instance.get_dynamic_partitions(scans.name))
        raw = {e: k for k, e in asset_endpoints(settings).items() if dataset_of(k) == keys.RAW_SCAN}
        self._raw_assets = list(raw.values())
        # One query per raw location answers for every scan the ledger knows, which is every
        # scan a discovery registered: a second run asks Dagster nothing per key.
        self._here: dict[str, str] = {}
        self._elsewhere: dict[str, str] = {}
        for where in sorted(raw):
            for r in ledger.at(where, tuple(CopyState)):
                if r.dataset == keys.RAW_SCAN:
                    found = self._here if where == endpoint else self._elsewhere
                    found.setdefault(r.scan, r.relative_path)

    def registered(self, key: str) -> bool:
        return key in self._keys

    def recorded_path(self, key: str) -> str | None:
        """The relative path recorded for ``key`` (copies keep it from endpoint to endpoint):
        in the ledger here, else elsewhere, else, for a registered key the ledger does not
        know (a new scan not yet copied), the newest materialization of any raw asset."""
        if key in self._here:
            return self._here[key]
        if key in self._elsewhere:
            return self._elsewhere[key]
        if key not in self._keys:
            return None  # the ledger is written before a key is registered
        newest: tuple[float, str] | None = None
        for asset_key in self._raw_assets:
            result = self._instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[key]), limit=1
            )
            for record in result.records:
                event = record.asset_materialization
                path = event.metadata.get("relative_path") if event else None
                if path is not None and (newest is None or record.timestamp > newest[0]):
                    newest = (record.timestamp, str(path.value))
        return newest[1] if newest is not None else None


# -- registering -------------------------------------------------------------------------------


def _register(
    settings: Settings,
    instance: dg.DagsterInstance,
    ledger: CopyLedger,
    asset_key: dg.AssetKey,
    accepted: list[_Accepted],
    options: DiscoverOptions,
) -> list[str]:
    """Record then register one chunk: the ledger's records (one transaction), then the raw
    asset's materializations, then the partitions. Records go first: a crash in between leaves
    keys that a rerun registers again (for the same file only: the ledger remembers it), never a
    registered key with no record of where its file is."""
    if options.dry_run or not accepted:
        return [a.key for a in accepted]
    learnt_at = time.time()  # when the platform learnt of the copies, not the files' times
    ledger.record_seen_many(
        [
            CopyFacts(
                scan=a.key,
                endpoint=options.endpoint,
                dataset=keys.RAW_SCAN,
                asset_key=asset_key.to_user_string(),
                relative_path=a.found.relative_path,
                size_bytes=a.found.size_bytes,
                files=1,
                sha256=None,  # hashing every historic file is not discovery's job
                made_at=learnt_at,
                made_by=MADE_BY,
                export_controlled=a.export_controlled,
            )
            for a in accepted
        ]
    )
    for a in accepted:
        instance.report_runless_asset_event(_materialization(settings, asset_key, a, options))
    instance.add_dynamic_partitions(scans.name, [a.key for a in accepted])
    return [a.key for a in accepted]


def _materialization(
    settings: Settings, asset_key: dg.AssetKey, accepted: _Accepted, options: DiscoverOptions
) -> dg.AssetMaterialization:
    """The raw asset's record of a discovered copy: what copies read their source from, and
    what the UI shows on the scan's partition. Dagster stores one such event at a time (about
    7 ms each on SQLite): this, not the ledger or the partitions, bounds discovery's rate."""
    relative = accepted.found.relative_path
    return dg.AssetMaterialization(
        asset_key=asset_key,
        partition=accepted.key,
        metadata={
            "endpoint": options.endpoint,
            "relative_path": relative,
            "path": dg.MetadataValue.path(settings.location_of(options.endpoint, relative)),
            "size_bytes": accepted.found.size_bytes,
            "export_control": accepted.export_controlled,
            "discovered": True,
        },
    )
