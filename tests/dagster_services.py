"""Real Dagster processes (webserver, daemon) on a temporary site, for the tests that need them.

Each service runs in its own process group, so stopping it also stops what it started (the
daemon's code server and run workers); it is stopped by that group id when the ``with`` block
ends, whether the test passed or not.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def site_environment(
    folder: Path, settings: Mapping[str, object], instance: Mapping[str, object] | None = None
) -> dict[str, str]:
    """Environment for processes of a site in ``folder``: its settings file, and a
    DAGSTER_HOME holding the repository's dagster.yaml with ``instance`` merged in."""
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


def _merged(base: Mapping[str, object], changes: Mapping[str, object]) -> dict[str, object]:
    merged = dict(base)
    for key, value in changes.items():
        inner = merged.get(key)
        if isinstance(value, Mapping) and isinstance(inner, Mapping):
            merged[key] = _merged(inner, value)
        else:
            merged[key] = value
    return merged


@contextmanager
def service(command: list[str], env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """Run ``command`` from the repository root until the block ends, output in ``log``."""
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


def stop_group(process: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM to the process group, SIGKILL to whatever is left after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        if not _group_alive(process.pid):
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    """Until ``url`` answers 200; fails with the service's log if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url}: service exited {process.returncode}:\n{tail(log)}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url}: no answer in {timeout:.0f} s:\n{tail(log)}")


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def webserver(env: Mapping[str, str], folder: Path) -> Iterator[str]:
    """``dagster-webserver`` for the site; yields its base URL once it answers."""
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
        wait_for_http(f"{url}/server_info", process, log)
        yield url


@contextmanager
def daemon(env: Mapping[str, str], folder: Path) -> Iterator[subprocess.Popen]:
    """``dagster-daemon run`` for the site (sensors, schedules, the run queue, backfills)."""
    command = [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")]
    with service(command, env, folder / "daemon.log") as process:
        yield process
