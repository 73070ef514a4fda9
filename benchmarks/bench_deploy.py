"""Throughput of the deployment (``bl832 deploy start``: code server, webserver, daemon, Celery
worker, metrics on PostgreSQL and RabbitMQ): scans dropped at once are dispatched with none
lost or duplicated, scans per minute completed with one and with two Celery workers, and the
orchestration overhead of one scan.

    python benchmarks/bench_deploy.py [--scans 100] [--overhead-repeats 3]

Each worker count gets a deployment of its own (tests/deploy/deployment_support.py: a fresh
PostgreSQL database, Celery queues of its own on the machine's RabbitMQ, free ports), a
copy-only site (a new scan is copied to beamline storage and to the archive and registered in
the catalog; no reconstruction, so the runs measure orchestration, not a payload), the sensor
looking every 2 s, and workers of one run each (``-c 1``): one worker, or two on the same
queue. ``max_concurrent_runs`` equals the number of workers, as deploy/dagster.yaml asks of a
queue's limit, so the other runs wait QUEUED in Dagster, not in the broker.

- **dispatch**: ``--scans`` copies of one small scan (32 columns x 2 rows x 31 angles) are
  renamed into the detector folder at once; timed until the sensor has created a run for each,
  then checked: one run per scan, no scan without a run, none with two, every partition
  registered once.
- **throughput**: the same runs until the last has finished; scans per minute is the number of
  successful runs over the time from the first run's start to the last one's end. The goal is
  two workers >= 1.7x one.
- **overhead** (one worker, before the flood, ``--overhead-repeats`` times, median): one scan
  dropped on the idle deployment, timed from the rename to its run's end, minus the payload
  seconds (each asset's own ``seconds``: the copy and hash work, the catalog write). Split into
  the sensor's wait (drop to run created), the queue and launch (created to started in the
  worker: dequeue, broker, pool process) and the run's own Dagster work. Goal: <= 10 s.

Every process is stopped by its process group, the databases dropped and the queues deleted
when the script ends, whatever happened.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "deploy")]

from dagster_services import stop_group, wait_for  # noqa: E402
from deployment_support import Deployment, deployment, environment_of  # noqa: E402

from bl832_assets.deploy.environment import MARKER  # noqa: E402
from bl832_assets.deploy.services import CELERY_APP, CeleryPing  # noqa: E402
from bl832_assets.science.synth import write_synthetic_scan  # noqa: E402

OUT = REPO / "bench-out" / "deploy"
THROUGHPUT_GOAL = 1.7
OVERHEAD_GOAL = 10.0


TICK = os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine since boot (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / TICK, sum(fields) / TICK


def _group_cpu(pgids: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by the live processes of each process group."""
    used = dict.fromkeys(pgids, 0.0)
    names = {pgid: name for name, pgid in pgids.items()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid pgrp session ... utime (11) stime (12).
        group = int(fields[2])
        if group in names:
            used[names[group]] += (int(fields[11]) + int(fields[12])) / TICK
    return used


@dataclass(frozen=True)
class Flood:
    workers: int
    scans: int
    dispatch_seconds: float
    runs: int
    duplicated: int
    lost: int
    succeeded: int
    minutes: float
    busy: float  # share of the machine's CPU time that was busy during the flood
    busy_seconds: float  # the machine's busy CPU seconds during the flood
    cpu: dict[str, float]  # CPU seconds per deployment process during the flood

    @property
    def per_minute(self) -> float:
        return self.succeeded / self.minutes


@dataclass(frozen=True)
class Overhead:
    end_to_end: float
    payload: float
    sensor: float
    launch: float
    in_run: float

    @property
    def overhead(self) -> float:
        return self.end_to_end - self.payload


def _instance(workers: int, depth: int) -> dict:
    runs = workers * depth
    return {
        "run_monitoring": {"start_timeout_seconds": 1800},
        "concurrency": {"runs": {"max_concurrent_runs": runs, "tag_concurrency_limits": []}},
    }


@contextmanager
def _extra_worker(site: Deployment, number: int):
    """One more Celery worker on the deployment's queues, in a process group of its own."""
    name = f"{site.settings.deploy.worker_name}-{number}@{os.uname().nodename}"
    log = site.layout.logs / f"worker-{number}.log"
    command = [
        str(Path(sys.executable).parent / "celery"),
        "-A", CELERY_APP, "worker",
        "-Q", ",".join(site.settings.queues.all()),
        "-c", "1", "-n", name,
        "--prefetch-multiplier=1", "--without-mingle", "--without-gossip", "-l", "INFO",
    ]  # fmt: skip
    env = {**site.env, MARKER: str(site.layout.folder)}
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    site.seen.add(process.pid)
    site.extra[f"worker-{number}"] = process.pid

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"extra worker exited {process.returncode}; see {log}")
        return CeleryPing(name).answers(site.env)

    try:
        wait_for(f"answer from the extra worker (see {log})", answers, 120, every=0.5)
        yield
    finally:
        stop_group(process, grace=60)
        del site.extra[f"worker-{number}"]


def _scan_file() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "small.h5"
    if not path.exists():
        write_synthetic_scan(path, columns=32, rows=2, angles=31)
    return path


def _drop(site: Deployment, names: list[str]) -> float:
    """Copy the small scan under each name beside the detector folder, settled (an hour
    old), then rename all of them in; returns when the last rename is done."""
    source = _scan_file()
    staging = site.settings.home / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    then = time.time() - 3600
    for name in names:
        shutil.copyfile(source, staging / f"{name}.h5")
        os.utime(staging / f"{name}.h5", (then, then))
    target = site.settings.root(site.settings.detector) / "BLS-bench"
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        os.rename(staging / f"{name}.h5", target / f"{name}.h5")
    return time.time()


def _runs_of(instance: dg.DagsterInstance, names: set[str]) -> list[dg.RunRecord]:
    records = instance.get_run_records(dg.RunsFilter(tags={"bl832/trigger": "new_scans"}))
    return [r for r in records if r.dagster_run.tags.get("bl832/scan") in names]


def _payload_seconds(instance: dg.DagsterInstance, run_id: str) -> float:
    total = 0.0
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        metadata = record.asset_materialization.metadata
        if "seconds" in metadata:
            total += float(metadata["seconds"].value)
    return total


def measure_overhead(site: Deployment, repeats: int) -> list[Overhead]:
    samples = []
    with site.instance() as instance:
        for i in range(repeats):
            name = f"20261204_0900{i:02d}_one"
            dropped = _drop(site, [name])

            def done(name: str = name) -> dg.RunRecord | None:
                runs = _runs_of(instance, {name})
                return runs[0] if runs and runs[0].dagster_run.is_finished else None

            record = wait_for("finished run", done, 300, every=0.1)
            if record.dagster_run.status != dg.DagsterRunStatus.SUCCESS:
                raise RuntimeError(f"run {record.dagster_run.run_id} failed")
            created = record.create_timestamp.timestamp()
            samples.append(
                Overhead(
                    end_to_end=record.end_time - dropped,
                    payload=_payload_seconds(instance, record.dagster_run.run_id),
                    sensor=created - dropped,
                    launch=record.start_time - created,
                    in_run=record.end_time - record.start_time,
                )
            )
    return samples


def flood(site: Deployment, workers: int, scans: int) -> Flood:
    names = [
        f"20261204_{10 + i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d}_flood" for i in range(scans)
    ]
    wanted = set(names)
    groups = {name: pid for name, pid in site.remember().items()}
    groups.update(site.extra)
    busy_before, total_before = _machine_busy()
    cpu_before = _group_cpu(groups)
    with site.instance() as instance:
        dropped = _drop(site, names)
        wait_for("run per scan", lambda: len(_runs_of(instance, wanted)) >= scans, 600, 0.2)
        dispatched = time.time() - dropped
        records = _runs_of(instance, wanted)
        keys = [r.dagster_run.tags["bl832/scan"] for r in records]
        partitions = set(instance.get_dynamic_partitions("scans")) & wanted

        def finished() -> list[dg.RunRecord] | None:
            runs = _runs_of(instance, wanted)
            return runs if all(r.dagster_run.is_finished for r in runs) else None

        records = wait_for("end of every run", finished, 60 * scans + 300, 2.0)
    busy_after, total_after = _machine_busy()
    cpu_after = _group_cpu(groups)
    starts = [r.start_time for r in records if r.start_time]
    ends = [r.end_time for r in records if r.end_time]
    return Flood(
        workers=workers,
        scans=scans,
        dispatch_seconds=dispatched,
        runs=len(records),
        duplicated=len(keys) - len(set(keys)),
        lost=len(wanted - set(keys)) + len(wanted - partitions),
        succeeded=sum(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records),
        minutes=(max(ends) - min(starts)) / 60,
        busy=(busy_after - busy_before) / (total_after - total_before),
        busy_seconds=busy_after - busy_before,
        cpu={name: cpu_after[name] - cpu_before.get(name, 0.0) for name in groups},
    )


def run_with(workers: int, scans: int, repeats: int, depth: int) -> tuple[Flood, list[Overhead]]:
    folder = OUT / f"workers{workers}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with deployment(folder, _instance(workers, depth)) as site, environment_of(site):
        overhead = measure_overhead(site, repeats) if workers == 1 else []
        if workers == 1:
            return flood(site, workers, scans), overhead
        with _extra_worker(site, 2):
            return flood(site, workers, scans), overhead


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=100)
    parser.add_argument("--overhead-repeats", type=int, default=3)
    parser.add_argument(
        "--depth",
        type=int,
        default=1,
        help="runs let out of Dagster's queue per worker: 1 as deploy/dagster.yaml asks (the "
        "rest wait QUEUED); 2 keeps one more waiting in the broker for each worker",
    )
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"bench_deploy: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f}")
    print(f"runs let out of Dagster's queue: {args.depth} per worker")
    one, overhead = run_with(1, args.scans, args.overhead_repeats, args.depth)
    two, _ = run_with(2, args.scans, 0, args.depth)

    print("\ndispatch: scans renamed into the detector folder at once")
    print("workers  scans  runs  lost  duplicated  all runs created after  succeeded")
    for f in (one, two):
        print(
            f"{f.workers:7d}  {f.scans:5d}  {f.runs:4d}  {f.lost:4d}  {f.duplicated:10d}  "
            f"{f.dispatch_seconds:20.1f} s  {f.succeeded:9d}"
        )

    print("\nthroughput: successful runs from the first start to the last end")
    print("workers  scans  minutes  scans/min  ratio")
    for f in (one, two):
        ratio = f.per_minute / one.per_minute
        print(
            f"{f.workers:7d}  {f.succeeded:5d}  {f.minutes:7.2f}  {f.per_minute:9.1f}  {ratio:5.2f}"
        )
    ratio = two.per_minute / one.per_minute
    met = "met" if ratio >= THROUGHPUT_GOAL else "NOT met"
    print(f"two workers / one: {ratio:.2f} (goal >= {THROUGHPUT_GOAL}: {met})")

    print("\nCPU during each flood: the machine's busy share, and CPU seconds per process")
    names = sorted({n for f in (one, two) for n in f.cpu})
    print("(other: PostgreSQL, RabbitMQ and whatever else ran on the machine)")
    print("workers  busy  " + "  ".join(f"{n:>11}" for n in [*names, "other"]) + "  (seconds)")
    for f in (one, two):
        other = f.busy_seconds - sum(f.cpu.values())
        cells = "  ".join(f"{v:11.1f}" for v in [*(f.cpu.get(n, 0.0) for n in names), other])
        print(f"{f.workers:7d}  {f.busy:4.0%}  {cells}")

    overhead.sort(key=lambda o: o.overhead)
    typical = overhead[len(overhead) // 2]
    print(f"\noverhead of one scan on the idle deployment (median of {len(overhead)} by overhead)")
    print("end to end  payload  overhead  sensor wait  queue+launch  in run (of which payload)")
    print(
        f"{typical.end_to_end:8.2f} s  {typical.payload:5.2f} s  {typical.overhead:6.2f} s"
        f"  {typical.sensor:9.2f} s  {typical.launch:10.2f} s  {typical.in_run:6.2f} s"
    )
    print("all samples, overhead: " + ", ".join(f"{o.overhead:.2f} s" for o in overhead))
    met = "met" if typical.overhead <= OVERHEAD_GOAL else "NOT met"
    print(f"overhead goal <= {OVERHEAD_GOAL:g} s: {met}")
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.2f} {load[1]:.2f}")


if __name__ == "__main__":
    main()
