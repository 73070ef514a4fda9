"""Starting, stopping and inspecting the deployment's processes by their pid files.

Each process runs in a process group of its own (its pid is the group's id), with its output in
``logs/<name>.log`` and its pid in ``run/<name>.pid``. Stopping sends SIGTERM to the whole group
and waits until the last member is gone; a group still there after the timeout gets SIGKILL,
and the caller is told. Every process also carries the deployment's marker in its environment
(``BL832_DEPLOYMENT``), inherited by whatever it starts, so a process that left its group is
found and stopped too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from bl832_assets.deploy.environment import MARKER, TEMPLATES, Layout
from bl832_assets.deploy.services import LocationFailed, Service


class DeployFailed(RuntimeError):
    """A process exited or did not answer in time; the message ends with its log."""


class LocationDown(DeployFailed):
    """The webserver answers, but ``location`` did not load from its code server."""

    def __init__(self, message: str, location: str) -> None:
        super().__init__(message)
        self.location = location


@dataclass(frozen=True)
class State:
    name: str
    pid: int | None
    alive: bool
    answering: bool | None  # None: not asked (not alive)
    what: str


def pid_file(layout: Layout, name: str) -> Path:
    return layout.run / f"{name}.pid"


def log_file(layout: Layout, name: str) -> Path:
    return layout.logs / f"{name}.log"


def recorded_pid(layout: Layout, name: str) -> int | None:
    try:
        return int(pid_file(layout, name).read_text().strip())
    except (OSError, ValueError):
        return None


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is left (its leader reaped if it is our child)."""
    with suppress(ChildProcessError, OSError):
        os.waitpid(pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_ours(layout: Layout, pid: int) -> bool:
    """Whether ``pid`` is a process of this deployment, not another that reuses the number."""
    return f"{MARKER}={layout.folder}".encode() in _environ(pid)


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []


def running(layout: Layout, name: str) -> int | None:
    """The pid of the named process if its group still runs, else None."""
    pid = recorded_pid(layout, name)
    if pid is None or not group_alive(pid):
        return None
    if Path(f"/proc/{pid}").exists() and not is_ours(layout, pid):
        return None  # the leader's number now belongs to someone else
    return pid


def spawn(layout: Layout, service: Service, env: Mapping[str, str]) -> int:
    layout.run.mkdir(parents=True, exist_ok=True)
    layout.logs.mkdir(parents=True, exist_ok=True)
    with open(log_file(layout, service.name), "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(service.argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            service.argv,
            cwd=TEMPLATES.parent,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_interrupts_as_default,
        )
    pid_file(layout, service.name).write_text(f"{process.pid}\n")
    return process.pid


def _interrupts_as_default() -> None:
    """In the child before exec: Dagster's processes stop on SIGTERM by handing it to SIGINT's
    handler, and an ignored SIGINT is inherited (a shell's ``&`` ignores it in what it starts),
    so a deployment started from such a shell had code servers that ignored SIGTERM and were
    only stopped by SIGKILL."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_until_answering(
    layout: Layout, service: Service, env: Mapping[str, str], pid: int, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not group_alive(pid) or not Path(f"/proc/{pid}").exists():
            raise DeployFailed(f"{service.name} exited before answering:\n{tail(layout, service)}")
        try:
            if service.probe.answers(env):
                return
        except LocationFailed as exc:
            raise LocationDown(f"{service.name}: {exc}", exc.location) from None
        if time.monotonic() > deadline:
            raise DeployFailed(
                f"{service.name} did not answer ({service.probe.what}) within {timeout:g} s:\n"
                f"{tail(layout, service)}"
            )
        time.sleep(0.5)


def tail(layout: Layout, service: Service, lines: int = 30) -> str:
    try:
        text = log_file(layout, service.name).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def stop_groups(
    layout: Layout, names: list[str], timeout: float, say: Callable[[str], None]
) -> None:
    """SIGTERM to each named group at once, then wait for all; SIGKILL what is left."""
    pids = {name: pid for name in names if (pid := running(layout, name)) is not None}
    for pid in pids.values():
        with suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    began = time.monotonic()
    waiting, took = dict(pids), {}
    while waiting and time.monotonic() < began + timeout:
        for name in [n for n, p in waiting.items() if not group_alive(p)]:
            took[name] = time.monotonic() - began
            del waiting[name]
        if waiting:
            time.sleep(0.1)
    for name, pid in waiting.items():
        say(f"{name} (pid {pid}) still running {timeout:g} s after SIGTERM: SIGKILL")
        with suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _wait_gone(pid, 10.0)
    for name in names:
        if name in took:
            say(f"stopped {name} (pid {pids[name]}) in {took[name]:.1f} s")
        pid_file(layout, name).unlink(missing_ok=True)


def _wait_gone(pgid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)


def stragglers(layout: Layout) -> Iterator[int]:
    """Processes carrying this deployment's marker (whatever their group), except this
    process and those it descends from."""
    spared = _ancestry(os.getpid())
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    yield from (pid for pid in pids if pid not in spared and is_ours(layout, pid))


def _ancestry(pid: int) -> set[int]:
    found = set()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return found


def kill_stragglers(layout: Layout, say: Callable[[str], None]) -> None:
    for pid in list(stragglers(layout)):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        say(f"killed pid {pid}, left behind outside its process group")
