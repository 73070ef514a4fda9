"""How many historic scans per second ``bl832 discover`` registers on Dagster's SQLite storage,
and what bounds that rate.

    python benchmarks/bench_discover.py [--files 5000]

``--files`` copies of one small valid scan (Data Exchange HDF5, 16 columns x 2 rows x 11
angles), hard-linked under as many names in five folders of ``data832_raw`` in a fresh site
under ``bench-out/discover`` (so writing them costs nothing and every read is from the page
cache: storage latency is not measured). Six rows, in this order, each over as many scans:

- ``os.walk + read_metadata``: the floor of validation, a plain loop reading every file's
  layout in this process, registering nothing;
- ``discover --dry-run``: ours, listing, name and layout checks (in worker processes);
- ``Dagster runless events alone``: one ``report_runless_asset_event`` per scan, the same
  materialization discovery writes, on a fresh instance with the same storage: the ceiling of
  any design that gives each scan its own Dagster event;
- ``ledger, one transaction a scan``: ``record_seen`` per scan, as discovery wrote its records
  before ``record_seen_many``;
- ``ledger chunks + partitions``: ``record_seen_many`` and ``add_dynamic_partitions`` per
  1,000 scans: all that discovery writes except the per-scan events;
- ``discover (SQLite)``: ours, the same as the dry run and every registration written: per
  chunk of 1,000, the ledger's records in one transaction, a runless materialization per scan,
  then the partitions, on a Dagster instance with its default SQLite storage
  (``dg.instance_for_test``) and a SQLite ledger.

``row/ours`` is the row's scans/s over ours. The goal, >= 2,000 scans/s, is for the last row.

What the figures decided (2 cores, shared machine). Dagster 1.13 stores runless events one at
a time: ``store_event_batch`` on SQLite loops over ``store_event``, which builds a new engine
and two connections and compiles its statements afresh for every event, about 5.5 ms of CPU
and 2 ms of waiting for commits (130-140 events/s on a quiet machine, flat from the first
event to the 8,000th; about 210/s from several processes at once; PostgreSQL storage on the
same machine, 70-120/s). No public API records several partitions' materializations in one
event. So with a materialization per scan discovery cannot pass that rate whatever else it
does, and the goal is out of reach; the ledger (one transaction a chunk) and the partitions
(one call a chunk) cost under 0.05 ms a scan, where a ledger transaction a scan cost about
0.7 ms. Without per-scan events, the ledger alone recording where a discovered scan is,
registering would run at the rate of validation, the dry run: about 280/s on 2 cores, since
``read_metadata`` takes 5.6 ms a file, 3.5 of them reading the scientific metadata discovery
does not use (thousands a second where the endpoint is not mounted and names are all that is
checked). We keep the per-scan materialization. It is the raw copy's record that the copy
assets, the catalog and the UI read: a discovered scan shows as present where it lies, with its
path, size and export-control flag, and a backfill copies it onward like any other. Without it
every historic raw copy would show as missing (and the UI would offer to materialize it from
the detector), and every reader of that record would need a way into the ledger. Registering
is a one-off per outage or migration: 50,000 scans take about seven minutes on 2 cores, with a
progress counter.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
import warnings
from pathlib import Path

import dagster as dg

from bl832_assets import keys
from bl832_assets.discovery import CHUNK, DiscoverOptions, discover, raw_asset_of
from bl832_assets.partitions import scans
from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.resources.wiring import build_resources
from bl832_assets.retention.ledger import CopyFacts, CopyLedger
from bl832_assets.science.dx import read_metadata
from bl832_assets.science.synth import write_synthetic_scan
from bl832_assets.settings import Settings

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench-out" / "discover"
GOAL = 2000.0
ENDPOINT = "data832_raw"
OURS = "discover (SQLite)"

Row = tuple[str, int, float]


def make_site(files: int) -> Settings:
    shutil.rmtree(OUT, ignore_errors=True)
    settings = Settings(home=OUT / "site")
    root = settings.root(ENDPOINT)
    valid = write_synthetic_scan(OUT / "valid.h5", columns=16, rows=2, angles=11)
    for i in range(files):
        target = root / f"2024-{i % 5 + 1:02d}" / f"scan_{i:06d}.h5"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(valid, target)
    return settings


def floor(root: Path) -> int:
    checked = 0
    for folder, _, names in os.walk(root):
        for name in names:
            read_metadata(Path(folder, name))
            checked += 1
    return checked


def facts(settings: Settings, count: int) -> list[CopyFacts]:
    """What discovery records of ``count`` scans, as it records it."""
    asset_key = raw_asset_of(settings, ENDPOINT).to_user_string()
    return [
        CopyFacts(
            scan=f"scan_{i:06d}",
            endpoint=ENDPOINT,
            dataset=keys.RAW_SCAN,
            asset_key=asset_key,
            relative_path=f"2024-{i % 5 + 1:02d}/scan_{i:06d}.h5",
            size_bytes=10_000,
            files=1,
            sha256=None,
            made_at=time.time(),
            made_by="discovered",
            export_controlled=False,
        )
        for i in range(count)
    ]


def events_alone(settings: Settings, recorded: list[CopyFacts]) -> float:
    """Seconds for one runless materialization per scan, with discovery's metadata, on a
    fresh instance (opening it is not timed)."""
    asset_key = raw_asset_of(settings, ENDPOINT)
    home = OUT / "peer-events"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        started = time.perf_counter()
        for f in recorded:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=asset_key,
                    partition=f.scan,
                    metadata={
                        "endpoint": f.endpoint,
                        "relative_path": f.relative_path,
                        "path": dg.MetadataValue.path(
                            settings.location_of(ENDPOINT, f.relative_path)
                        ),
                        "size_bytes": f.size_bytes,
                        "export_control": f.export_controlled,
                        "discovered": True,
                    },
                )
            )
        return time.perf_counter() - started


def ledger_per_scan(recorded: list[CopyFacts]) -> float:
    ledger = CopyLedger(f"sqlite:///{OUT / 'peer-ledger-per-scan.db'}")
    started = time.perf_counter()
    for f in recorded:
        ledger.record_seen(f)
    seconds = time.perf_counter() - started
    ledger.dispose()
    return seconds


def ledger_chunks_and_partitions(recorded: list[CopyFacts]) -> float:
    ledger = CopyLedger(f"sqlite:///{OUT / 'peer-ledger-chunks.db'}")
    home = OUT / "peer-partitions"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        started = time.perf_counter()
        for start in range(0, len(recorded), CHUNK):
            chunk = recorded[start : start + CHUNK]
            ledger.record_seen_many(chunk)
            instance.add_dynamic_partitions(scans.name, [f.scan for f in chunk])
        seconds = time.perf_counter() - started
    ledger.dispose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    settings = make_site(args.files)
    transfer = build_resources(settings)["transfer"]
    assert isinstance(transfer, TransferResource)
    print(
        f"discover: {args.files:,} scans on {ENDPOINT}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    started = time.perf_counter()
    checked = floor(settings.root(ENDPOINT))
    rows: list[Row] = [("os.walk + read_metadata", checked, time.perf_counter() - started)]
    settings.dagster_home.mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(settings.dagster_home)) as instance:
        summary = discover(settings, instance, transfer, DiscoverOptions(ENDPOINT, dry_run=True))
        assert len(summary.registered) == args.files, summary.refused[:3]
        rows.append(("discover --dry-run", args.files, summary.seconds))
        recorded = facts(settings, args.files)
        rows.append(("Dagster runless events alone", args.files, events_alone(settings, recorded)))
        rows.append(("ledger, one transaction a scan", args.files, ledger_per_scan(recorded)))
        rows.append(
            ("ledger chunks + partitions", args.files, ledger_chunks_and_partitions(recorded))
        )
        summary = discover(settings, instance, transfer, DiscoverOptions(ENDPOINT))
        assert len(summary.registered) == args.files, summary.refused[:3]
        rows.append((OURS, args.files, summary.seconds))
    report(rows)


def report(rows: list[Row]) -> None:
    rate = {label: count / seconds for label, count, seconds in rows}
    ours = rate[OURS]
    print(f"  {'method':<31} {'scans':>7} {'seconds':>8} {'scans/s':>8} {'row/ours':>9}")
    for label, count, seconds in rows:
        print(
            f"  {label:<31} {count:>7,} {seconds:>8.2f} {rate[label]:>8,.0f} "
            f"{rate[label] / ours:>9.2f}"
        )
    ceiling = rate["Dagster runless events alone"]
    without_events = min(rate["discover --dry-run"], rate["ledger chunks + partitions"])
    print(
        f"  goal: >= {GOAL:,.0f} scans/s registered: {'met' if ours >= GOAL else 'NOT met'} "
        f"({ours / GOAL:.2f} of it); floor / ours = {rate['os.walk + read_metadata'] / ours:.2f}"
    )
    print(
        f"  ceiling with a Dagster event per scan: {ceiling:,.0f}/s ({ceiling / GOAL:.2f} of the "
        f"goal); ours reaches {ours / ceiling:.2f} of it"
    )
    print(
        f"  without per-scan events: min(dry run, ledger chunks + partitions) = "
        f"{without_events:,.0f}/s ({without_events / GOAL:.2f} of the goal)"
    )
    print(f"  load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
