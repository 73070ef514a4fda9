"""A small real site for the prune engine: real files under endpoint roots, a real SQLite copy
ledger, a real local catalog, and a Pruner that reports into a list instead of a Dagster run.

Helpers are fixtures (``world``, ``no_scan_lost``), since a conftest is not importable by a
unique name from the test modules.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from ledger_support import assert_no_scan_lost, copy_facts
from resource_support import FOLDER, scan_metadata

from bl832_assets import keys
from bl832_assets.resources.catalog import FileEntry, LocalCatalogResource
from bl832_assets.resources.transfer import LocalTransferResource
from bl832_assets.resources.wiring import build_resources
from bl832_assets.retention.audit import AuditLog
from bl832_assets.retention.ledger import CopyLedger, CopyRecord, CopyState
from bl832_assets.retention.locations import asset_endpoints
from bl832_assets.retention.measure import Measurer
from bl832_assets.retention.prune import Outcome, Pruner
from bl832_assets.settings import RetentionSettings, Settings

DAY = 86400.0
LONG_AGO = 10 * DAY  # older than any retention the tests set


def retention_settings(home: Path, **retention: Any) -> Settings:
    """The embedded site with short retention on the beamline and facility storage: spot832,
    data832_raw and data832_scratch prune anything older than a day; the trash is purged at
    once unless a test asks for a grace period."""
    policy = {"grace_days": 0.0, **retention}
    days = policy.pop("days", {"spot832": 1, "data832_raw": 1, "data832_scratch": 1})
    extra = policy.pop("extra_endpoints", {})
    site: dict[str, Any] = {"home": home, "retention_days": days}
    if extra:
        site["endpoints"] = {**Settings(home=home).endpoints, **extra}
    return Settings(**site, retention=RetentionSettings(**policy))


def asset_key_for(settings: Settings, endpoint: str, dataset: str) -> str:
    for key, where in asset_endpoints(settings).items():
        if where == endpoint and key.path[-1] == dataset:
            return key.to_user_string()
    raise KeyError(f"no asset for {dataset} at {endpoint}")


def assert_site_keeps_every_scan(settings: Settings, ledger: CopyLedger) -> None:
    """No scan is lost on the site's own storage (``ledger_support.assert_no_scan_lost``)."""
    transfer = build_resources(settings)["transfer"]
    assert_no_scan_lost(transfer, settings.endpoints, ledger)


@dataclass
class World:
    """One site: its settings, ledger, audit log, transfer, catalog and what prunes reported."""

    settings: Settings
    ledger: CopyLedger
    transfer: LocalTransferResource
    catalog: LocalCatalogResource
    events: list[Any] = field(default_factory=list)

    @property
    def audit(self) -> AuditLog:
        return AuditLog(self.settings.audit_log)

    def path(self, endpoint: str, relative: str) -> Path:
        return self.settings.root(endpoint) / relative

    def put(
        self,
        scan: str,
        endpoint: str,
        *,
        data: bytes | None = None,
        dataset: str = keys.RAW_SCAN,
        made_at: float | None = None,
        relative: str | None = None,
        export_controlled: bool = False,
        write: bool = True,
        asset_key: str | None = None,
    ) -> CopyRecord:
        """A real file at the endpoint, recorded PRESENT with the sha256 of ``data``."""
        data = scan.encode() * 1000 if data is None else data
        relative = relative or f"{FOLDER}/{scan}.h5"
        if write:
            target = self.path(endpoint, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        self.ledger.record_made(
            copy_facts(
                scan,
                endpoint=endpoint,
                dataset=dataset,
                asset_key=asset_key or asset_key_for(self.settings, endpoint, dataset),
                relative_path=relative,
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                made_at=time.time() - LONG_AGO if made_at is None else made_at,
                made_by="test",
                export_controlled=export_controlled,
            )
        )
        record = self.ledger.get(scan, endpoint, dataset)
        assert record is not None
        return record

    def scan(self, scan: str, *, catalogued: bool = True, **copy: Any) -> bytes:
        """A raw scan due at spot832, with its safe copy at data832_raw and the archive copy
        at nersc_cfs (each verified, same bytes), catalogued unless told otherwise."""
        data = copy.pop("data", None) or scan.encode() * 1000
        for endpoint in ("spot832", "data832_raw", "nersc_cfs"):
            self.put(scan, endpoint, data=data, **copy)
        if catalogued:
            self.catalogue(scan)
        return data

    def catalogue(self, scan: str) -> None:
        name = f"/data/raw/{FOLDER}/{scan}.h5"
        self.catalog.ingest_raw(name, scan_metadata(), [FileEntry(name, 1, 0.0, "aa")])

    def pruner(self, **options: Any) -> Pruner:
        options.setdefault("run_id", f"test-{time.monotonic_ns():x}")
        return Pruner(
            settings=options.pop("settings", self.settings),
            ledger=self.ledger,
            audit=self.audit,
            measurer=Measurer(self.settings, self.transfer, {}, None),
            catalog=options.pop("catalog", self.catalog),
            report=options.pop("report", self.events.append),
            **options,
        )

    def prune(self, endpoint: str = "spot832", **options: Any) -> dict[str, Outcome]:
        """Prune one location; outcomes by scan (one dataset per scan in these tests)."""
        return {o.scan: o for o in self.pruner(**options).prune(endpoint)}

    def prune_twice_at_once(self, endpoint: str = "spot832") -> list[list[Outcome]]:
        """Two prunes of one location started together in two threads; each one's outcomes.
        An error in either is raised here, not lost in its thread."""
        start = threading.Barrier(2)
        results: list[list[Outcome]] = []
        errors: list[BaseException] = []

        def prune(run: str) -> None:
            pruner = self.pruner(run_id=run)
            start.wait()
            try:
                results.append(list(pruner.prune(endpoint)))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=prune, args=(f"run-{n}",)) for n in "ab"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        return results

    def state(self, scan: str, endpoint: str = "spot832") -> CopyState:
        record = self.ledger.get(scan, endpoint, keys.RAW_SCAN)
        assert record is not None
        return record.state

    def audited(self, event: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.audit.entries() if event is None or e["event"] == event]

    def checks(self) -> list[dg.AssetCheckEvaluation]:
        return [e for e in self.events if isinstance(e, dg.AssetCheckEvaluation)]

    def observations(self) -> list[dg.AssetObservation]:
        return [e for e in self.events if isinstance(e, dg.AssetObservation)]

    def no_scan_lost(self) -> None:
        assert_site_keeps_every_scan(self.settings, self.ledger)


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[Callable[..., World]]:
    """Build a site with the given retention options (see ``retention_settings``)."""
    made: list[World] = []

    def build(**retention: Any) -> World:
        settings = retention_settings(tmp_path / f"site{len(made)}", **retention)
        transfer = build_resources(settings)["transfer"]
        assert isinstance(transfer, LocalTransferResource)
        world = World(
            settings,
            CopyLedger(settings.ledger_url),
            transfer,
            LocalCatalogResource(database=str(settings.catalog_db)),
        )
        made.append(world)
        return world

    yield build
    for world in made:
        world.ledger.dispose()


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()


@pytest.fixture
def no_scan_lost() -> Callable[[Settings, CopyLedger], None]:
    return assert_site_keeps_every_scan
