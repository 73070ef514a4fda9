"""A deployment started from a shell that ignores SIGINT still stops on SIGTERM.

Dagster's processes stop on SIGTERM by handing it to SIGINT's handler; a shell's ``&`` starts
commands with SIGINT ignored, which their children inherit. The service here does what Dagster
does with SIGTERM, without Dagster's start-up time.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bl832_assets.deploy.environment import MARKER, Layout
from bl832_assets.deploy.services import GrpcHealth, Service
from bl832_assets.deploy.supervisor import running, spawn, stop_groups

AS_DAGSTER_DOES = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGINT))\n"
    "open(sys.argv[1], 'w').close()\n"
    "time.sleep(120)\n"
)


@pytest.fixture
def sigint_ignored() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_service_started_with_sigint_ignored_stops_on_sigterm(
    tmp_path: Path, sigint_ignored: None
) -> None:
    layout = Layout(tmp_path / "deploy")
    ready = tmp_path / "ready"
    argv = [sys.executable, "-c", AS_DAGSTER_DOES, str(ready)]
    service = Service("sleeper", argv, GrpcHealth("127.0.0.1", 1))
    pid = spawn(layout, service, {**os.environ, MARKER: str(layout.folder)})
    said: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), "the service did not start"
        stop_groups(layout, ["sleeper"], 10.0, said.append)
    finally:
        if running(layout, "sleeper") is not None:
            os.killpg(pid, signal.SIGKILL)
    assert not any("SIGKILL" in line for line in said), said
    assert any(line.startswith("stopped sleeper") for line in said), said
