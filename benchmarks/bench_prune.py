"""What a prune of the beamline's raw storage costs: planning it from the copy ledger, and
hashing the copies it re-verifies on storage, against GNU ``sha256sum``.

    python benchmarks/bench_prune.py [--copies 10000] [--files 8] [--file-mib 64] [--repeats 3]

Planning: a fresh SQLite ledger under ``bench-out/`` gets ``--copies`` raw scans at
``data832_raw``, made 40 days ago (past its 35-day limit), each with a PRESENT copy at
``nersc_cfs``, the safe location the default policy names, so every copy is due and every
proposal needs its own look-up of the safe copy. The rows go in with one bulk insert, because
``record_made`` is one transaction per copy and would only slow the set-up; the timed part is
the real ``plan(settings, ledger, "data832_raw", now)``, median of ``--repeats``.

Hashing: ``--files`` files of ``--file-mib`` MiB of random bytes in one folder, hashed by
``LocalTransferResource.checksums`` (what prune re-verifies a copy with: ``parallel_files``
threads), by one ``sha256sum`` process over all the files (the shell way), and by
``xargs -P`` running one ``sha256sum`` per file, as many at once as our threads (the fairer
peer: parallel too). Before every timed run the files are evicted from the page cache
(``pagecache.evict``); whether that worked is checked with ``fincore`` where it exists, and
the table says cold or warm. Methods take turns within each round; the best round counts.
The test files are kept in ``bench-out/prune-hash`` and reused while their size matches.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from pagecache import evict

from bl832_assets import keys
from bl832_assets.resources.transfer import LocalTransferResource
from bl832_assets.retention.ledger import CopyFacts, CopyLedger, CopyState, copies
from bl832_assets.retention.plan import DAY, plan
from bl832_assets.settings import Settings

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench-out"
PLAN_GOAL_S = 5.0
HASH_GOAL = 2.0
PRUNED = "data832_raw"
SAFE = "nersc_cfs"


# -- planning ----------------------------------------------------------------------------------


def fill_ledger(url: str, count: int, now: float) -> None:
    """One scan per copy at ``PRUNED`` and its safe copy at ``SAFE``, inserted in one
    transaction with the ledger's own table: the rows are exactly what ``record_made`` writes,
    without 2 x ``count`` separate transactions of set-up."""
    made = now - 40 * DAY
    rows = []
    for i in range(count):
        scan = f"20240101_{i:06d}_bench"
        for endpoint in (PRUNED, SAFE):
            facts = CopyFacts(
                scan=scan,
                endpoint=endpoint,
                dataset=keys.RAW_SCAN,
                asset_key=f"raw/{endpoint}",
                relative_path=f"raw/{scan}.h5",
                size_bytes=15_000_000_000,
                files=1,
                sha256="0" * 64,
                made_at=made,
                made_by="bench",
                export_controlled=False,
            )
            row = {name: getattr(facts, name) for name in CopyFacts.__dataclass_fields__}
            state = {"state": CopyState.PRESENT, "state_at": made}
            rows.append(row | state | {"trash_path": None, "note": None})
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(copies.insert(), rows)
    finally:
        engine.dispose()


def bench_planning(work: Path, count: int, repeats: int) -> float:
    """Median seconds of ``plan`` over the whole location; the ledger is built untimed."""
    settings = Settings(home=work / "site")
    url = f"sqlite:///{work / 'copies.sqlite'}"
    now = time.time()
    CopyLedger(url).dispose()  # creates the tables and indexes as the platform does
    started = time.perf_counter()
    fill_ledger(url, count, now)
    setup = time.perf_counter() - started
    ledger = CopyLedger(url)
    try:
        times: list[float] = []
        for _ in range(repeats):
            started = time.perf_counter()
            proposals = plan(settings, ledger, PRUNED, now)
            times.append(time.perf_counter() - started)
    finally:
        ledger.dispose()
    actions = Counter(str(p.action) for p in proposals)
    median = statistics.median(times)
    print(f"planning: {count:,} copies at {PRUNED}, made 40 days ago, safe copy at {SAFE}")
    print(f"  ledger: SQLite, filled in {setup:.2f} s (bulk insert, untimed)")
    print(f"  proposals: {', '.join(f'{a} {n:,}' for a, n in sorted(actions.items()))}")
    spread = " ".join(f"{t:.2f}" for t in times)
    print(f"  plan(): median {median:.2f} s of {repeats} ({spread}), {count / median:,.0f}/s")
    print(f"  goal / measured = {PLAN_GOAL_S / median:.2f}  (goal: <= {PLAN_GOAL_S:g} s, so >= 1)")
    return median


# -- hashing -----------------------------------------------------------------------------------


def make_files(folder: Path, files: int, file_mib: int) -> list[Path]:
    """Random bytes, so nothing can shortcut the hashing; kept while their size fits."""
    paths = [folder / f"frame_{i:03d}.bin" for i in range(files)]
    size = file_mib << 20
    kept = folder.is_dir() and sorted(folder.iterdir()) == paths
    if kept and all(p.stat().st_size == size for p in paths):
        return paths
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for path in paths:
        with open(path, "wb") as out:
            for _ in range(file_mib):
                out.write(os.urandom(1 << 20))
            out.flush()
            os.fsync(out.fileno())
    return paths


def resident_mib(paths: list[Path]) -> float | None:
    """MiB of ``paths`` in the page cache according to ``fincore``; None where it is missing."""
    if shutil.which("fincore") is None:
        return None
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
    )
    return sum(int(line) for line in out.stdout.split()) / (1 << 20)


def parse_sha256sum(output: str, folder: Path) -> dict[str, str]:
    digests = {}
    for line in output.splitlines():
        digest, name = line.split(maxsplit=1)
        digests[Path(name.lstrip("*")).relative_to(folder).as_posix()] = digest
    return dict(sorted(digests.items()))


def bench_hashing(files: int, file_mib: int, repeats: int) -> tuple[float, float]:
    """Best seconds of each way to hash the same cold folder; returns the two peers' time over
    ours (single ``sha256sum``, then ``xargs -P``)."""
    folder = OUT / "prune-hash" / "scan"
    paths = make_files(folder, files, file_mib)
    transfer = LocalTransferResource(
        endpoints={"bench": str(folder.parent)},
        database=str(folder.parent / "tasks.sqlite"),
    )
    workers = transfer.parallel_files
    names = [str(p) for p in paths]

    def ours() -> dict[str, str]:
        return transfer.checksums("bench", folder.name)

    def one_sha256sum() -> dict[str, str]:
        out = subprocess.run(["sha256sum", *names], check=True, capture_output=True, text=True)
        return parse_sha256sum(out.stdout, folder)

    def xargs_sha256sum() -> dict[str, str]:
        out = subprocess.run(
            ["xargs", "-0", "-n", "1", "-P", str(workers), "sha256sum"],
            input="\0".join(names),
            check=True,
            capture_output=True,
            text=True,
        )
        return parse_sha256sum(out.stdout, folder)

    methods: dict[str, Callable[[], dict[str, str]]] = {
        f"ours (checksums, {workers} threads)": ours,
        "sha256sum (1 process)": one_sha256sum,
        f"xargs -P {workers} sha256sum": xargs_sha256sum,
    }
    times: dict[str, list[float]] = {name: [] for name in methods}
    left: list[float] = []
    expected: dict[str, str] | None = None
    for _ in range(repeats):
        for name, method in methods.items():
            for path in paths:
                evict(path)
            resident = resident_mib(paths)
            if resident is not None:
                left.append(resident)
            started = time.perf_counter()
            digests = method()
            times[name].append(time.perf_counter() - started)
            if expected is None:
                expected = digests
            elif digests != expected:
                raise SystemExit(f"{name} disagrees with the first method's digests")

    total_mib = files * file_mib
    if not left:
        state = "evicted with fadvise DONTNEED, not verified (no fincore): may be warm"
    elif max(left) <= 0.01 * total_mib:
        state = f"cold: fincore shows at most {max(left):.1f} MiB cached before each run"
    else:
        state = f"WARM: fincore shows up to {max(left):.0f} MiB still cached before a run"
    best = {name: min(runs) for name, runs in times.items()}
    print(f"hashing: {files} files x {file_mib} MiB = {total_mib} MiB, best of {repeats}")
    print(f"  page cache: {state}")
    print(f"  {'method':<28} {'best s':>7} {'MiB/s':>7}   all runs (s)")
    for name, runs in times.items():
        spread = " ".join(f"{t:.2f}" for t in runs)
        print(f"  {name:<28} {best[name]:7.2f} {total_mib / best[name]:7.0f}   {spread}")
    ours_s = best[next(iter(methods))]
    single = best["sha256sum (1 process)"] / ours_s
    parallel = best[f"xargs -P {workers} sha256sum"] / ours_s
    print(f"  sha256sum / ours          = {single:.2f}  (goal >= {HASH_GOAL:g})")
    print(f"  xargs -P{workers} sha256sum / ours = {parallel:.2f}  (fairer peer, no goal)")
    return single, parallel


def summary(count: int, plan_s: float, single: float, parallel: float) -> None:
    """Both measurements against their goals in one table, the way the README lists them."""
    planned = (f"plan {count:,} copies", f"{plan_s:.2f} s", f"<= {PLAN_GOAL_S:g} s")
    rows = [
        (*planned, plan_s <= PLAN_GOAL_S),
        ("sha256sum / ours", f"{single:.2f}x", f">= {HASH_GOAL:g}x", single >= HASH_GOAL),
        ("xargs -P sha256sum / ours", f"{parallel:.2f}x", "(none)", None),
    ]
    print(f"{'measurement':<26} {'measured':>9} {'goal':>9}  met")
    for name, measured, goal, met in rows:
        verdict = "-" if met is None else "yes" if met else "NO"
        print(f"{name:<26} {measured:>9} {goal:>9}  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=10_000, help="copies in the ledger")
    parser.add_argument("--files", type=int, default=8, help="files hashed")
    parser.add_argument(
        "--file-mib",
        type=int,
        default=int(os.environ.get("BENCH_PRUNE_FILE_MIB", "64")),
        help="size of each hashed file (default: $BENCH_PRUNE_FILE_MIB or 64)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="rounds of each measurement")
    args = parser.parse_args()

    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    OUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-prune-", dir=OUT))
    try:
        plan_s = bench_planning(work, args.copies, args.repeats)
    finally:
        shutil.rmtree(work)
    single, parallel = bench_hashing(args.files, args.file_mib, args.repeats)
    summary(args.copies, plan_s, single, parallel)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
