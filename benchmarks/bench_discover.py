"""How many historic scans per second ``bl832 discover`` registers on Dagster's SQLite storage.

    python benchmarks/bench_discover.py [--files 5000]

``--files`` copies of one small valid scan (Data Exchange HDF5, 16 columns x 2 rows x 11
angles), hard-linked under as many names in five folders of ``data832_raw`` in a fresh site
under ``bench-out/discover`` (so writing them costs nothing and every read is from the page
cache: storage latency is not measured). Three methods, in this order, on the same files:

- ``os.walk + read_metadata``: the floor, a plain loop validating every file's layout in
  this process, registering nothing;
- ``discover --dry-run``: ours, listing, name and layout checks (in worker processes);
- ``discover``: ours, the same and every registration written: partitions in chunks of
  1,000, a runless materialization and a ledger record per scan, on a Dagster instance with
  its default SQLite storage (``dg.instance_for_test``) and a SQLite ledger.

The goal, >= 2,000 scans/s, is for the last row.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
import warnings
from pathlib import Path

import dagster as dg

from bl832_assets.discovery import DiscoverOptions, discover
from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.resources.wiring import build_resources
from bl832_assets.science.dx import read_metadata
from bl832_assets.science.synth import write_synthetic_scan
from bl832_assets.settings import Settings

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench-out" / "discover"
GOAL = 2000.0
ENDPOINT = "data832_raw"


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
    rows = [("os.walk + read_metadata", checked, time.perf_counter() - started)]
    settings.dagster_home.mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(settings.dagster_home)) as instance:
        for label, dry_run in (("discover --dry-run", True), ("discover (SQLite)", False)):
            summary = discover(
                settings, instance, transfer, DiscoverOptions(ENDPOINT, dry_run=dry_run)
            )
            assert len(summary.registered) == args.files, summary.refused[:3]
            rows.append((label, len(summary.registered), summary.seconds))
    print(f"  {'method':<26} {'scans':>7} {'seconds':>8} {'scans/s':>8}")
    for label, count, seconds in rows:
        print(f"  {label:<26} {count:>7,} {seconds:>8.2f} {count / seconds:>8,.0f}")
    rate = rows[-1][1] / rows[-1][2]
    print(
        f"  goal: >= {GOAL:,.0f} scans/s registered: {'met' if rate >= GOAL else 'NOT met'} "
        f"({rate / GOAL:.2f} of it); floor / ours = {rows[0][1] / rows[0][2] / rate:.2f}"
    )


if __name__ == "__main__":
    main()
