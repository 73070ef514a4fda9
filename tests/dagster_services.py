"""Real Dagster processes (webserver, daemon) and ``bl832`` commands on a site, for the tests and
benchmarks that need them (``tests/test_backfill_daemon.py``, the browser test through
``ui_support``, the deployment tests through ``deploy/deployment_support``,
``benchmarks/bench_ui.py``, ``benchmarks/bench_backfill.py``, ``benchmarks/bench_deploy.py``),
and the one way they wait for something to happen (``wait_for``).

Each service runs in its own process group, so stopping it also stops what it started (the
code servers, the daemon's run workers): the group is stopped by its id when the ``with`` block
ends, whether the caller passed or not, and waited for until the last of it is gone. The
webserver counts as up once its code location is loaded, and a location that fails to load is
an error at once, with its message, rather than a page that never shows.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import requests
import yaml

# The deep merge ``bl832 deploy`` applies to the site's instance settings, so a test's
# instance is changed the way an operator's is.
from bl832_assets.deploy.environment import _merged
from bl832_assets.deploy.supervisor import group_alive

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
T = TypeVar("T")

LOCATIONS = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


class ServiceFailed(RuntimeError):
    """A Dagster process exited, did not come up in time, or cannot load the code location;
    the message has the reason and the end of its log."""


class CommandFailed(RuntimeError):
    """A ``bl832`` command exited non-zero; the message has its arguments and the end of its
    output."""


def poll(probe: Callable[[], T | None], timeout: float, every: float = 0.25) -> T | None:
    """``probe()`` every ``every`` seconds until it returns something truthy, which is
    returned; None if it has not after ``timeout`` seconds (it is asked once more then). An
    exception from the probe ends the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        if value := probe():
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(every)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.25) -> T:
    """The first truthy value of ``probe()``, asked every ``every`` seconds; AssertionError
    naming ``what`` if there is none within ``timeout`` seconds."""
    value = poll(probe, timeout, every)
    if not value:
        raise AssertionError(f"no {what} within {timeout:g} s")
    return value


def run_bl832(
    env: Mapping[str, str], *args: str, timeout: float, check: bool = True
) -> subprocess.CompletedProcess:
    """``bl832 ARGS`` from the repository root, as an operator runs it, its output captured;
    with ``check``, a non-zero exit is raised as CommandFailed with the end of its output."""
    result = subprocess.run(
        [str(BIN / "bl832"), *args],
        env=dict(env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise CommandFailed(
            f"bl832 {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


LISTEN_PORTS = range(20000, 32000)
"""Where the services a test starts listen: below Linux's ephemeral range (32768 and up), from
which the kernel hands out the ports of outgoing connections (to PostgreSQL, to a code
server, ...). A port probed free there can be taken by such a connection before the service
binds it: a full run here once saw a code server fail to bind so."""


def free_ports(count: int = 1) -> int:
    """The first of ``count`` consecutive ports free on 127.0.0.1, outside the ephemeral range."""
    for _ in range(100):
        first = random.randrange(LISTEN_PORTS.start, LISTEN_PORTS.stop - count)
        with ExitStack() as held:
            try:
                for port in range(first, first + count):
                    probe = held.enter_context(socket.socket())
                    probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return first
    raise AssertionError(f"no {count} consecutive free ports in {LISTEN_PORTS}")


def free_port() -> int:
    return free_ports(1)


def site_environment(
    folder: Path, settings: Mapping[str, object], instance: Mapping[str, object] | None = None
) -> dict[str, str]:
    """Environment for processes of a site in ``folder``: its settings in
    ``folder/settings.yaml``, and a DAGSTER_HOME (``folder/dagster``) holding the repository's
    dagster.yaml with ``instance`` merged in."""
    config = folder / "settings.yaml"
    config.write_text(yaml.safe_dump(dict(settings)))
    dagster_home = folder / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    if instance:
        loaded = yaml.safe_load((dagster_home / "dagster.yaml").read_text())
        (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(_merged(loaded, instance)))
    return {
        **os.environ,
        "BL832_CONFIG": str(config),
        "BL832_HOME": str(settings.get("home", folder / "site")),
        "DAGSTER_HOME": str(dagster_home),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


@contextmanager
def service(command: list[str], env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """Run ``command`` from the repository root, in a process group of its own, until the block
    ends; its output goes to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen, grace: float = 15.0, kill_wait: float = 10.0) -> None:
    """SIGTERM to the process group of ``process``; SIGKILL to whatever of it is left after
    ``grace`` seconds; each time, wait until the whole group is gone (the leader reaped here,
    the rest by whoever inherits them)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, kill_wait)):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        if _group_gone(process, wait):
            return


def group_gone(pgid: int) -> bool:
    """Whether no process of the group ``pgid`` is left (a leader that is our child reaped)."""
    return not group_alive(pgid)


def _group_gone(process: subprocess.Popen, seconds: float) -> bool:
    def gone() -> bool:
        process.poll()  # reap the leader (its zombie keeps the group alive), its status kept
        return group_gone(process.pid)

    return bool(poll(gone, seconds, every=0.05))


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def graphql(url: str, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``data`` of one GraphQL request to the webserver at ``url``."""
    response = requests.post(
        f"{url}/graphql", json={"query": query, "variables": dict(variables or {})}, timeout=30
    )
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise ServiceFailed(f"{url}/graphql: {body['errors'][0].get('message')}")
    return body["data"]


def location_loaded(url: str) -> bool:
    """Whether every code location of the webserver at ``url`` is loaded; a load error is
    raised, not waited on."""
    workspace = graphql(url, LOCATIONS)["workspaceOrError"]
    entries = workspace.get("locationEntries") or []
    for entry in entries:
        error = entry["locationOrLoadError"] or {}
        if error.get("__typename") == "PythonError":
            raise ServiceFailed(f"code location {entry['name']} failed to load: {error['message']}")
    return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)


def wait_until_serving(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    """Until the webserver at ``url`` has loaded its code location; fails with the end of its
    log if it exits, cannot load the location, or takes longer than ``timeout`` seconds."""

    def serving() -> bool:
        if process.poll() is not None:
            raise ServiceFailed(f"dagster-webserver exited {process.returncode}:\n{tail(log)}")
        try:
            return location_loaded(url)
        except requests.RequestException:
            return False  # not listening yet, or still starting
        except ServiceFailed as exc:
            raise ServiceFailed(f"{exc}\n{tail(log)}") from exc

    if not poll(serving, timeout, every=0.25):
        raise ServiceFailed(
            f"dagster-webserver not serving {url} after {timeout:g} s:\n{tail(log)}"
        )


@contextmanager
def webserver(env: Mapping[str, str], folder: Path, timeout: float = 180.0) -> Iterator[str]:
    """``dagster-webserver -w workspace.yaml`` for the site on a free port, its log in
    ``folder/webserver.log``; yields its base URL once the code location is loaded."""
    port = free_port()
    log = folder / "webserver.log"
    command = [
        str(BIN / "dagster-webserver"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        str(REPO / "workspace.yaml"),
    ]
    with service(command, env, log) as process:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, process, log, timeout)
        yield url


@contextmanager
def daemon(env: Mapping[str, str], folder: Path) -> Iterator[subprocess.Popen]:
    """``dagster-daemon run`` for the site (sensors, schedules, the run queue, backfills), its
    log in ``folder/daemon.log``."""
    command = [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")]
    with service(command, env, folder / "daemon.log") as process:
        yield process


def wait_for_daemon(
    url: str, process: subprocess.Popen, log: Path, timeout: float = 120.0
) -> float:
    """Until the backfill daemon has sent a heartbeat, as the webserver at ``url`` reports it
    (what ``bl832 backfill`` checks); returns the seconds waited."""
    from bl832_assets.backfill.webserver import Webserver

    server = Webserver(url)
    started = time.monotonic()

    def beating() -> bool:
        if process.poll() is not None:
            raise ServiceFailed(f"dagster-daemon exited {process.returncode}:\n{tail(log)}")
        return server.backfill_daemon_heartbeat() is not None

    if not poll(beating, timeout, every=0.5):
        raise ServiceFailed(f"no backfill daemon heartbeat in {timeout:g} s:\n{tail(log)}")
    return time.monotonic() - started
