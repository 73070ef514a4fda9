"""How long from ``bl832 backfill`` of 5,000 historic scans until the first run of the backfill
has started, against the same for 50 scans.

    python benchmarks/bench_backfill.py [--scans 5000] [--peer 50] [--repeats 2]

One site under ``bench-out/backfill`` (the repository's ``dagster.yaml``, Dagster's default
SQLite storage): ``--scans`` copies of one small valid scan (Data Exchange HDF5, 16 columns x 2
rows x 11 angles, dated a year back) hard-linked under as many dated names into ``data832_raw``,
registered by ``bl832 discover data832_raw`` as an operator would (its time is on the first
line). ``dagster-webserver`` and ``dagster-daemon run`` then serve the site
(``tests/dagster_services.py``, as the daemon test starts them), and the script waits for the
backfill daemon's heartbeat, which ``bl832 backfill`` checks.

Each launch is the real command, ``bl832 backfill 'nersc/raw_scan+' --url URL`` in a process
of its own; the peer adds ``--match`` to pick ``--peer`` of the same scans, so both pay the
same site and differ only in the backfill's size. Timed from the command's start:

- ``cli``: until the command exits: Python start-up, the definitions, the plan (registered
  scans, the ledger's flags, what each asset already has), the GraphQL launch;
- ``picked``: until the daemon's log says it evaluates the backfill (to the second): the
  daemon looks at backfills every 30 s, so this is the wait for its next look;
- ``queued``: until the backfill's first run exists (the daemon evaluated the backfill and
  submitted its first run);
- ``started``: until that first run is STARTED (the queue let it out and its run worker
  loaded the code): what an operator waits for to see the backfill do anything.

After each launch the backfill is cancelled (``cancelPartitionBackfill``) and the next launch
waits until no backfill is active and no run is queued or running. The daemon ends a
cancelled backfill in one of its looks, so every launch comes just after a look and waits
close to the whole 30 s for the next: ``started`` is the worst case of that wait, and a launch
at a random moment waits 15 s less on average (``picked - cli`` is the wait measured). Peer
and 5,000 take turns, ``--repeats`` times, after one untimed launch of the peer (the daemon's
first evaluation warms its caches). The goal, ``started`` <= 60 s, is for the 5,000-scan
backfill; ``ratio`` is 5,000 over the peer. Every process is stopped by its process group when
the script ends.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the daemon test's process helpers

from dagster_services import (  # noqa: E402
    daemon,
    graphql,
    run_bl832,
    site_environment,
    wait_for,
    wait_for_daemon,
    webserver,
)

from bl832_assets.science.synth import write_synthetic_scan  # noqa: E402
from bl832_assets.settings import Settings  # noqa: E402

OUT = REPO / "bench-out" / "backfill"
GOAL = 60.0
ENDPOINT = "data832_raw"
SELECTION = "nersc/raw_scan+"
BACKFILL_TAG = "dagster/backfill"
WAIT_IDLE = 300.0
WAIT_STARTED = 600.0

CANCEL = """mutation Cancel($id: String!) { cancelPartitionBackfill(backfillId: $id) {
  __typename ... on PythonError { message } } }"""

PICKED_UP = re.compile(
    r"(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}).*BackfillDaemon.*"
    r"Evaluating asset backfill (?P<id>\w+)"
)
ACTIVE_BACKFILL = {"REQUESTED", "CANCELING", "FAILING"}
ACTIVE_RUN = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
HAS_STARTED = [
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELING,
    dg.DagsterRunStatus.CANCELED,
]


@dataclass(frozen=True)
class Launch:
    """Seconds from the start of ``bl832 backfill`` until each step, for ``scans`` scans."""

    scans: int
    cli: float
    picked: float
    queued: float
    started: float


FIELDS = (
    ("cli", "cli exits (plan + launch)"),
    ("picked", "daemon picks it up"),
    ("queued", "first run queued"),
    ("started", "first run STARTED"),
)


def scan_name(i: int) -> str:
    return f"{datetime(2024, 1, 1) + timedelta(minutes=10 * i):%Y%m%d_%H%M%S}_hist{i:05d}"


def peer_glob(peer: int) -> str:
    """A ``--match`` glob for the first ``peer`` scans (``peer`` a multiple of 10, < 100)."""
    assert peer % 10 == 0 and 0 < peer < 100, "--peer: a multiple of 10 below 100"
    return f"*_hist000[0-{peer // 10 - 1}][0-9]"


def make_site(scans: int) -> tuple[Settings, dict[str, str], float]:
    """A fresh site with ``scans`` registered by ``bl832 discover``; returns its settings, the
    processes' environment and the seconds discovery took."""
    shutil.rmtree(OUT, ignore_errors=True)
    settings = Settings(home=OUT / "site")
    settings.home.mkdir(parents=True)
    env = site_environment(settings.home, settings.model_dump(mode="json"))
    valid = write_synthetic_scan(OUT / "valid.h5", columns=16, rows=2, angles=11)
    a_year_ago = time.time() - 365 * 86400
    os.utime(valid, (a_year_ago, a_year_ago))  # history, not news (one inode for every link)
    root = settings.root(ENDPOINT)
    for i in range(scans):
        name = scan_name(i)
        target = root / f"{name[:4]}-{name[4:6]}" / f"{name}.h5"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(valid, target)
    started = time.perf_counter()
    found = run_bl832(env, "discover", ENDPOINT, timeout=3600)
    seconds = time.perf_counter() - started
    if f"{scans} registered" not in found.stdout:
        raise RuntimeError(f"bl832 discover: {found.stdout[-2000:]}")
    return settings, env, seconds


def wait_idle(instance: dg.DagsterInstance) -> None:
    """Until no backfill is active and no run is queued or running."""

    def idle() -> bool:
        busy = [b for b in instance.get_backfills() if b.status.value in ACTIVE_BACKFILL]
        return not busy and not instance.get_runs_count(dg.RunsFilter(statuses=ACTIVE_RUN))

    wait_for("idle site (see bench-out/backfill)", idle, WAIT_IDLE, every=1.0)


def launch(
    env: dict[str, str], url: str, instance: dg.DagsterInstance, extra: list[str], log: Path
) -> tuple[Launch, list[str]]:
    """One ``bl832 backfill``, timed to its first run started; returns the backfill ids too."""
    wait_idle(instance)
    started = time.time()
    result = run_bl832(env, "backfill", SELECTION, *extra, "--url", url, timeout=3600)
    cli = time.time() - started
    ids = re.findall(r"^backfill (\S+) launched: .*?, (\d+) scan", result.stdout, re.MULTILINE)
    if not ids:
        raise RuntimeError(f"bl832 backfill launched nothing: {result.stdout[-2000:]}")
    backfills = [backfill_id for backfill_id, _ in ids]
    ours = {BACKFILL_TAG: backfills}
    first_started = _first(instance, dg.RunsFilter(tags=ours, statuses=HAS_STARTED), "start_time")
    first_queued = _first(instance, dg.RunsFilter(tags=ours), "create_timestamp")
    measured = Launch(
        scans=sum(int(count) for _, count in ids),
        cli=cli,
        picked=min(_picked_up(log, b) for b in backfills) - started,
        queued=first_queued - started,
        started=first_started - started,
    )
    return measured, backfills


def _first(instance: dg.DagsterInstance, filters: dg.RunsFilter, field: str) -> float:
    """The earliest ``field`` (a timestamp) of the runs ``filters`` picks, once there is one."""

    def earliest() -> float | None:
        records = instance.get_run_records(filters, limit=25, order_by="id", ascending=True)
        stamps = [_seconds(getattr(r, field)) for r in records if getattr(r, field) is not None]
        return min(stamps, default=None)

    return wait_for(f"run with a {field}", earliest, WAIT_STARTED, every=0.2)


def _picked_up(log: Path, backfill_id: str) -> float:
    """When the daemon's log says it first evaluated the backfill (to the second)."""
    for line in log.read_text(errors="replace").splitlines():
        found = PICKED_UP.search(line)
        if found and found["id"] == backfill_id:
            return datetime.strptime(found["at"], "%Y-%m-%d %H:%M:%S %z").timestamp()
    raise RuntimeError(f"{log}: the daemon never evaluated backfill {backfill_id}")


def _seconds(stamp: float | datetime) -> float:
    return stamp.timestamp() if isinstance(stamp, datetime) else stamp


def cancel(url: str, backfills: list[str]) -> None:
    for backfill_id in backfills:
        answer = graphql(url, CANCEL, {"id": backfill_id})["cancelPartitionBackfill"]
        if answer["__typename"] == "PythonError":
            raise RuntimeError(f"cancel {backfill_id}: {answer['message']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=5000)
    parser.add_argument("--peer", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    settings, env, discovered = make_site(args.scans)
    print(
        f"backfill: {SELECTION}, {args.scans:,} scans registered by `bl832 discover` in "
        f"{discovered:.1f} s ({args.scans / discovered:,.0f}/s); {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    peer = ["--match", peer_glob(args.peer)]
    runs: dict[str, list[Launch]] = {"peer": [], "all": []}
    with webserver(env, settings.home) as url, daemon(env, settings.home) as process:
        log = settings.home / "daemon.log"
        heartbeat = wait_for_daemon(url, process, log)
        print(f"  webserver up; daemon heartbeat after {heartbeat:.1f} s")
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            rounds = [("warm-up", peer)] + [("peer", peer), ("all", [])] * args.repeats
            for label, extra in rounds:
                measured, backfills = launch(env, url, instance, extra, log)
                cancel(url, backfills)
                steps = ", ".join(f"{f} {getattr(measured, f):.2f}" for f, _ in FIELDS)
                print(f"  {label:<8} {measured.scans:>6,} scans, seconds: {steps}")
                if label in runs:
                    runs[label].append(measured)
            wait_idle(instance)
    report(runs)


def report(runs: dict[str, list[Launch]]) -> None:
    peer, every = runs["peer"], runs["all"]

    def median(launches: list[Launch], field: str) -> float:
        return statistics.median(getattr(m, field) for m in launches)

    label_peer = f"{peer[0].scans:,} scans"
    label_all = f"{every[0].scans:,} scans"
    print(
        f"  {'seconds from `bl832 backfill`':<32} {label_peer:>11} {label_all:>12} {'ratio':>6}"
        f"  runs at {label_all}"
    )
    for field, what in FIELDS:
        few, lots = median(peer, field), median(every, field)
        runs_all = ", ".join(f"{getattr(m, field):.2f}" for m in every)
        print(f"  {what:<32} {few:>11.2f} {lots:>12.2f} {lots / few:>6.2f}  {runs_all}")
    started = median(every, "started")
    print(
        f"  goal: first run started <= {GOAL:g} s after `bl832 backfill` of {label_all}: "
        f"{'met' if started <= GOAL else 'NOT met'} (goal / measured {GOAL / started:.2f}); "
        f"medians; ratio is {label_all} / {label_peer}"
    )
    print(f"  load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
