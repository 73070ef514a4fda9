"""The production deployment with the real services: ``bl832 deploy start`` runs a code server
per code location, webserver, daemon, a Celery worker and the metrics exporter on a fresh
PostgreSQL database and the machine's RabbitMQ. A scan dropped on the detector is dispatched by
the real daemon's ``new_scans`` and its run executes inside the worker; a worker killed mid-run
is noticed by run monitoring, the run failed and retried; one location's code server restarts
without touching the others, and one that cannot start leaves the others running; ``bl832
deploy stop`` leaves nothing.

The tests share one deployment and run in file order: each leaves it as the next expects.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import requests
from dagster_services import group_gone, wait_for
from deployment_support import PROCESSES, Deployment, deployment, environment_of
from scan_support import detector_scan

from bl832_assets.deploy.locations import LOCATIONS, code_servers
from bl832_assets.deploy.supervisor import log_file, stragglers
from bl832_assets.queues import QUEUE_TAG

pytestmark = pytest.mark.postgres

FIRST = "20261203_120000_deploy"
KILLED = "20261203_121500_deploy"

# Short monitoring intervals, so a vanished worker is noticed in seconds: two unanswered
# questions of 2 s, one poll of 2 s apart. Runs are failed, then retried (not resumed).
INSTANCE = {
    "run_monitoring": {"poll_interval_seconds": 2, "start_timeout_seconds": 180},
    "run_launcher": {"config": {"worker_answer_seconds": 2}},
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("deploy")
    instance = {
        **INSTANCE,
        # The template limits the site's real queue names; these runs go to the test's own.
        "concurrency": {
            "runs": {"max_concurrent_runs": 4, "tag_concurrency_limits": []},
            # One run may leave the queue with its steps all waiting for a pool slot (the
            # killed run waits so, see below); Dagster's default holds it QUEUED instead.
            "pools": {"op_granularity_run_buffer": 1},
        },
    }
    with deployment(folder, instance) as started, environment_of(started):
        yield started


def _run_of(instance: dg.DagsterInstance, scan: str) -> dg.DagsterRun | None:
    runs = instance.get_runs(dg.RunsFilter(tags={"bl832/scan": scan}))
    originals = [r for r in runs if "dagster/parent_run_id" not in r.tags]
    return originals[0] if originals else None


def _finished(instance: dg.DagsterInstance, scan: str) -> dg.DagsterRun | None:
    run = _run_of(instance, scan)
    return run if run is not None and run.is_finished else None


def _run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int:
    """The pid Dagster recorded for the process that executed the run."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        message = record.dagster_event.message or ""
        if message.startswith("Started process for run (pid: "):
            return int(message.split("pid: ")[1].rstrip(")."))
    raise AssertionError(f"run {run_id}: no 'Started process for run' event")


def test_deploy_start_runs_every_process_and_each_answers(site: Deployment) -> None:
    result = site.deploy("status")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in PROCESSES:
        line = next(li for li in result.stdout.splitlines() if li.startswith(name))
        assert line.split()[2:4] == ["yes", "yes"], result.stdout
    pids = site.remember()
    assert set(pids) == set(PROCESSES)
    # Each is the leader of a process group of its own.
    assert all(os.getpgid(pid) == pid for pid in pids.values())


def test_the_daemon_dispatches_a_dropped_scan_and_a_celery_worker_runs_it(
    site: Deployment,
) -> None:
    worker = site.remember()["worker"]
    detector_scan(site.settings, f"BLS-1/{FIRST}.h5")
    with site.instance() as instance:
        run = wait_for("finished run", lambda: _finished(instance, FIRST), 180)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/sensor_name"] == "new_scans"
        assert run.tags[QUEUE_TAG] == site.settings.queues.transfers
        executed_by = _run_worker_pid(instance, run.run_id)
        steps = {
            r.dagster_event.step_key
            for r in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
        }
    # The run executed in a pool process of the Celery worker: its process group, not the
    # worker's own pid, nor any process of the daemon's.
    assert executed_by != worker
    assert os.getpgid(executed_by) == worker
    assert "data832__raw_scan" in steps
    assert f"Task execute_job[{run.tags['dagster-celery/task_id']}] succeeded" in (
        log_file(site.layout, "worker").read_text()
    )


LAUNCH = """mutation($params: ExecutionParams!) { launchPipelineExecution(executionParams: $params)
  { __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""


def test_a_run_launched_from_the_ui_without_a_queue_is_routed_by_the_launcher(
    site: Deployment,
) -> None:
    """Runs the sensor did not create (launched from the UI; backfill runs alike) get their
    queue from bl832_assets/queues.py when the daemon launches them."""
    url = f"http://127.0.0.1:{site.settings.deploy.webserver_port}/graphql"
    params = {
        "selector": {
            "repositoryLocationName": "bl832",
            "repositoryName": "__repository__",
            "pipelineName": "__ASSET_JOB",
            "assetSelection": [{"path": ["data832", "raw_scan"]}],
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": FIRST}]},
    }
    response = requests.post(url, json={"query": LAUNCH, "variables": {"params": params}})
    launched = response.json()["data"]["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    with site.instance() as instance:
        assert QUEUE_TAG not in instance.get_run_by_id(run_id).tags

        def finished() -> dg.DagsterRun | None:
            run = instance.get_run_by_id(run_id)
            return run if run is not None and run.is_finished else None

        run = wait_for("finished run", finished, 180)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags[QUEUE_TAG] == site.settings.queues.transfers


def test_a_worker_killed_mid_run_is_noticed_and_the_run_failed_then_retried(
    site: Deployment,
) -> None:
    worker = site.remember()["worker"]
    with site.instance() as instance:
        # Copies wait for a slot of the "globus" pool: with none, the run holds STARTED in the
        # worker with its first copy waiting, for as long as it takes to kill the worker.
        instance.event_log_storage.set_concurrency_slots("globus", 0)
        detector_scan(site.settings, f"BLS-1/{KILLED}.h5")

        def started() -> dg.DagsterRun | None:
            run = _run_of(instance, KILLED)
            return run if run is not None and run.status == dg.DagsterRunStatus.STARTED else None

        run = wait_for("started run", started, 180)
        os.killpg(worker, signal.SIGKILL)
        killed_at = time.monotonic()
        assert not instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
        failed = wait_for("failed run", lambda: _finished(instance, KILLED), 90)
        noticed = time.monotonic() - killed_at
        assert failed.status == dg.DagsterRunStatus.FAILURE
        failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        message = failure[-1].dagster_event.message
        assert f"Celery worker {site.settings.deploy.worker_name}@" in message, message
        assert "did not answer" in message, message
        # run_retries starts it again, on the same queue, once a worker serves it.
        retry = wait_for(
            "retry run",
            lambda: next(
                iter(instance.get_runs(dg.RunsFilter(tags={"dagster/parent_run_id": run.run_id}))),
                None,
            ),
            60,
        )
        assert retry.tags[QUEUE_TAG] == site.settings.queues.transfers
        # Starting the deployment again starts the missing worker and writes the settings'
        # pool limits back.
        restarted = site.deploy("start")
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        assert "worker: started" in restarted.stdout
        assert "daemon: already running" in restarted.stdout

        def retried() -> dg.DagsterRun | None:
            again = instance.get_run_by_id(retry.run_id)
            return again if again is not None and again.is_finished else None

        assert wait_for("finished retry", retried, 180).status == dg.DagsterRunStatus.SUCCESS
        # Restarting on the same database kept the history.
        assert _finished(instance, FIRST).status == dg.DagsterRunStatus.SUCCESS
    print(f"worker loss noticed {noticed:.1f} s after SIGKILL")


ENTRIES = """{ workspaceOrError { ... on Workspace { locationEntries {
  name loadStatus updatedTimestamp locationOrLoadError { __typename } } } } }"""


def _locations(site: Deployment) -> dict[str, dict]:
    """The webserver's entry for each code location, by name."""
    url = f"http://127.0.0.1:{site.settings.deploy.webserver_port}/graphql"
    data = requests.post(url, json={"query": ENTRIES}, timeout=10).json()["data"]
    return {e["name"]: e for e in data["workspaceOrError"]["locationEntries"]}


def test_one_location_s_code_server_restarts_without_touching_the_others(
    site: Deployment,
) -> None:
    """Each code location has its own code server: one stopped leaves every other process, and
    the other locations, as they were. While it cannot start (its port taken), ``bl832 deploy
    start`` says so, exits 2 and leaves the rest running; once it can, ``start`` brings back
    just that one and has the webserver load its location from the new server."""
    restarted = "code-server-bl733"
    before = site.remember()
    assert set(before) == set(PROCESSES)
    entries = _locations(site)
    assert set(entries) == set(LOCATIONS)
    assert all(e["loadStatus"] == "LOADED" for e in entries.values()), entries
    loaded_at = entries["bl733"]["updatedTimestamp"]
    os.killpg(before[restarted], signal.SIGTERM)
    wait_for("bl733's code server gone", lambda: group_gone(before[restarted]), 60)
    for location in set(LOCATIONS) - {"bl733"}:
        entry = _locations(site)[location]
        assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry

    port = next(s.port for s in code_servers(site.settings) if s.location == "bl733")
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", port))
        taken.listen()
        blocked = site.deploy("start")
    assert blocked.returncode == 2, blocked.stdout + blocked.stderr
    assert "code location bl733 is down" in blocked.stderr, blocked.stderr
    assert "`bl832 deploy start` again" in blocked.stderr
    assert site.remember() == {n: p for n, p in before.items() if n != restarted}, (
        blocked.stdout + blocked.stderr
    )
    for location in set(LOCATIONS) - {"bl733"}:
        entry = _locations(site)[location]
        assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry

    result = site.deploy("start")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{restarted}: started" in result.stdout
    assert "webserver: loaded code location bl733" in result.stdout
    for name in set(before) - {restarted}:
        assert f"{name}: already running (pid {before[name]})" in result.stdout
    after = site.remember()
    assert after[restarted] != before[restarted]
    assert {n: p for n, p in after.items() if n != restarted} == {
        n: p for n, p in before.items() if n != restarted
    }
    entry = _locations(site)["bl733"]
    assert entry["updatedTimestamp"] > loaded_at, entry
    assert entry["loadStatus"] == "LOADED", entry
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry


def test_deploy_stop_leaves_no_process_behind(site: Deployment) -> None:
    pids = site.remember()
    assert set(pids) == set(PROCESSES)
    groups = {name: set(_members(pgid)) for name, pgid in pids.items()}
    assert all(groups.values()), groups
    result = site.deploy("stop", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no process left" in result.stdout
    assert "SIGKILL" not in result.stdout  # each stopped on SIGTERM
    for name, pgid in pids.items():
        assert group_gone(pgid), f"{name}: process group {pgid} still has members"
        for pid in groups[name]:
            assert not Path(f"/proc/{pid}").exists(), f"{name}: pid {pid} still there"
    assert list(stragglers(site.layout)) == []
    assert not any(site.layout.run.glob("*.pid"))
    status = site.deploy("status")
    assert status.returncode == 3
    assert all(
        line.split()[1:3] == ["-", "no"]
        for line in status.stdout.splitlines()
        if line.split() and line.split()[0] in PROCESSES
    ), status.stdout


def _members(pgid: int) -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    yield int(entry.name)
            except ProcessLookupError:
                continue
