"""A whole ALS-size scan end to end through ``bl832 recon``, and its memory as scans grow.

    python benchmarks/bench_scan.py [--rows 64] [--rss-rows 32,128]

Goal: a 2,160-slice scan of 2,560 columns and 1,313 angles (read, normalise, ring removal,
centre, reconstruct, write TIFFs) in at most 15 minutes on this 2-core machine.

A full scan is 14.5 GB in and 56 GB of TIFFs out, so the benchmark writes a scan of ``--rows``
detector rows at full width and angle count (``scanfile``) and runs the real command,
``bl832 recon SCAN OUT --slices 0:n``, for n = rows/2 and n = rows: whole multiples of the
pipeline's 16-row slab on each of the two workers, so each step adds whole rounds of work.
The straight line through the two wall times (start-up and centre finding are its intercept)
gives the 2,160-slice time. The scan is dropped from the page cache before every run
(``posix_fadvise(DONTNEED)``), so reading starts from disk as on a fresh file. The per-stage
seconds are the command's own (``ReconSummary.stage_seconds``, summed over the workers);
divided by two they are each stage's share of the wall time. ``sync`` after each run shows
what the page cache still owed the disk: slices are written without fsync.

Peak memory: the same command on two scans of 1,024 columns that differ only in rows. The
largest single process (its ``VmHWM``) and the sum over the process tree (both sampled every
50 ms from ``/proc``) should not grow with the scan. "reported" is what the command itself says
(``ReconSummary.peak_rss_mb``, from ``getrusage``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pagecache import evict
from scanfile import write_scan

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench-out" / "scan"
BL832 = Path(sys.executable).parent / "bl832"
FULL_SLICES = 2160
GOAL_SECONDS = 15 * 60
WORKERS = 2


@dataclass(frozen=True)
class Run:
    slices: int
    wall: float  # seconds, command start to exit
    sync: float  # seconds to flush what the run left in the page cache
    largest_mb: float  # largest VmHWM in the tree (sampled; a worker's last 50 ms may escape)
    tree_mb: float  # peak of the summed resident sets of the tree (sampled)
    summary: dict[str, Any]  # what ``bl832 recon`` printed


def scan_file(columns: int, rows: int, angles: int) -> Path:
    """The synthetic scan of that size, written once and kept under ``bench-out/``."""
    path = WORK / f"scan-{columns}x{rows}x{angles}.h5"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        # In a child process: Linux keeps a process's peak RSS across fork and exec, so a
        # benchmark that had grown while writing would show up in every later child's peak.
        writer = mp.get_context("spawn").Process(
            target=write_scan, args=(path,), kwargs=dict(columns=columns, rows=rows, angles=angles)
        )
        writer.start()
        writer.join()
        if writer.exitcode != 0:
            raise SystemExit(f"writing {path} failed ({writer.exitcode})")
        size = path.stat().st_size / 1e9
        print(f"wrote {path.name} ({size:.2f} GB) in {time.perf_counter() - started:.1f} s")
    return path


def _status_mb(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_memory_mb(root: int) -> tuple[float, float]:
    """For ``root`` and all its descendants, from /proc: the summed resident set now, and the
    largest peak (``VmHWM``) of any one of them. VmHWM belongs to the process's address space,
    so unlike ``ru_maxrss`` it does not inherit the launching process's peak."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, grew = {root}, True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    total = sum(_status_mb(pid, "VmRSS") for pid in tree)
    return total, max(_status_mb(pid, "VmHWM") for pid in tree)


def run_recon(scan: Path, slices: int | None) -> Run:
    """``bl832 recon`` on a cold scan, watched for memory; its outputs are removed after."""
    out = WORK / "out"
    shutil.rmtree(out, ignore_errors=True)
    evict(scan)
    command = [str(BL832), "recon", str(scan), str(out)]
    if slices is not None:
        command += ["--slices", f"0:{slices}"]
    log = WORK / "recon.log"
    with (
        open(log, "w") as stderr,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True) as child,
    ):
        started, tree_peak, largest = time.perf_counter(), 0.0, 0.0
        while True:
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            if pid:
                break
            total, high = tree_memory_mb(child.pid)
            tree_peak, largest = max(tree_peak, total), max(largest, high)
            time.sleep(0.05)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        output = child.stdout.read() if child.stdout else ""
    if child.returncode != 0:
        raise SystemExit(f"bl832 recon failed ({child.returncode}); see {log}")
    summary = json.loads(output.strip().splitlines()[-1])
    synced = time.perf_counter()
    os.sync()
    sync = time.perf_counter() - synced
    shutil.rmtree(out, ignore_errors=True)
    return Run(
        slices=int(summary["slices"]),
        wall=wall,
        sync=sync,
        largest_mb=largest,
        tree_mb=tree_peak,
        summary=summary,
    )


def full_scan(columns: int, rows: int, angles: int) -> None:
    scan = scan_file(columns, rows, angles)
    small, large = run_recon(scan, rows // 2), run_recon(scan, rows)
    per_slice = (large.wall - small.wall) / (large.slices - small.slices)
    fixed = small.wall - per_slice * small.slices
    total = fixed + per_slice * FULL_SLICES
    print(f"\nbl832 recon, {columns} columns x {angles} angles, cold scan file, {WORKERS} workers")
    print(f"{'slices':>6} {'wall s':>8} {'s/slice':>8} {'sync s':>7}")
    for run in (small, large):
        print(f"{run.slices:>6} {run.wall:8.1f} {run.wall / run.slices:8.3f} {run.sync:7.1f}")
    print(f"fit: {fixed:.1f} s fixed (start-up, centre) + {per_slice:.3f} s per slice")
    verdict = "met" if total <= GOAL_SECONDS else "NOT met"
    print(
        f"extrapolated to {FULL_SLICES} slices: {total:.0f} s = {total / 60:.1f} min "
        f"(goal <= {GOAL_SECONDS / 60:.0f} min: {verdict})"
    )
    stages = large.summary["stage_seconds"]
    busy = sum(stages.values())
    from_stages = busy / large.slices * FULL_SLICES / WORKERS
    print(
        f"from the stages alone (both workers always busy, no fixed cost): {from_stages:.0f} s "
        f"= {from_stages / 60:.1f} min"
    )
    if fixed < 0:
        print(
            "the fit's fixed cost is negative: the machine's load changed between the runs, "
            "so the stage-based figure is the steadier one"
        )
    print(
        f"\nstages of the {large.slices}-slice run (summed over workers) and their share of a "
        f"{FULL_SLICES}-slice scan's wall time (/ {WORKERS} workers)"
    )
    print(f"{'stage':<12} {'s':>7} {'s/slice':>8} {'share':>6} {'full scan s':>12}")
    for stage, seconds in sorted(stages.items(), key=lambda item: -item[1]):
        each = seconds / large.slices
        print(
            f"{stage:<12} {seconds:7.2f} {each:8.3f} {seconds / busy:6.0%} "
            f"{each * FULL_SLICES / WORKERS:12.0f}"
        )
    centre = large.summary.get("centre")
    print(
        f"centre found: {centre} ({large.summary.get('centre_method')}), "
        f"expected {(columns - 1) / 2}"
    )


def memory(columns: int, rows_list: list[int], angles: int) -> None:
    runs = [(rows, run_recon(scan_file(columns, rows, angles), None)) for rows in rows_list]
    print(f"\npeak memory of bl832 recon, {columns} columns x {angles} angles, whole scan")
    print(
        f"{'rows':>5} {'scan GB':>8} {'wall s':>7} {'largest MB':>11} {'tree MB':>8} "
        f"{'reported MB':>12}"
    )
    for rows, run in runs:
        gigabytes = angles * rows * columns * 2 / 1e9
        print(
            f"{rows:>5} {gigabytes:8.2f} {run.wall:7.1f} {run.largest_mb:11.0f} "
            f"{run.tree_mb:8.0f} {run.summary.get('peak_rss_mb', float('nan')):12.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--columns", type=int, default=2560)
    parser.add_argument("--angles", type=int, default=1313)
    parser.add_argument(
        "--rows", type=int, default=128, help="multiple of 64: 2 workers x 2 slabs; 64 is too noisy"
    )
    parser.add_argument("--rss-columns", type=int, default=1024)
    parser.add_argument("--rss-rows", default="32,128", help="two or more scan heights")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    full_scan(args.columns, args.rows, args.angles)
    memory(args.rss_columns, [int(r) for r in args.rss_rows.split(",")], args.angles)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
