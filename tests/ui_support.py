"""A site where one scan has run, served by ``dagster-webserver`` and opened in Debian's chromium.

Shared by the browser test (``tests/browser``) and ``benchmarks/bench_ui.py``. The site is made
the way an operator makes one: its settings in a file (``BL832_CONFIG``), the repository's
``dagster.yaml`` in its ``DAGSTER_HOME`` (community dialog off), a scan written by ``bl832
synth``'s writer and run end to end by ``bl832 process`` on the embedded local backends. The
webserver loads the code location from ``workspace.yaml`` with the same three variables, so it
shows exactly what the command recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import yaml

from bl832_assets.science.synth import write_synthetic_scan
from bl832_assets.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

CHROMIUM = "/usr/bin/chromium"
"""Debian's chromium, installed by ``scripts/ensure-chromium`` (``make test``); never a
browser downloaded by ``playwright install``."""

CHROMIUM_FLAGS = [
    "--no-sandbox",  # root, as CI runs
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # A closed network: nothing may phone home while pages are timed.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SCAN = "20260102_090000_ui"
PROPOSAL = "BLS-00564_ui"


@dataclass(frozen=True)
class UiSite:
    home: Path
    config: Path
    scan: str

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def environment(self) -> dict[str, str]:
        """What the CLI and the webserver need to find this site and its instance."""
        return {
            **os.environ,
            "BL832_HOME": str(self.home),
            "BL832_CONFIG": str(self.config),
            "DAGSTER_HOME": str(self.dagster_home),
        }

    def settings(self) -> Settings:
        return load_settings(self.config)


def site_with_one_scan(
    folder: Path, *, columns: int = 64, rows: int = 8, angles: int = 61
) -> UiSite:
    """A fresh site under ``folder`` on which ``bl832 process`` has run one small scan."""
    home = folder / "site"
    home.mkdir(parents=True)
    config = home / "settings.yaml"
    config.write_text(yaml.safe_dump({"home": str(home)}))
    site = UiSite(home=home, config=config, scan=SCAN)
    site.dagster_home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", site.dagster_home / "dagster.yaml")
    scan = write_synthetic_scan(
        folder / f"{SCAN}.h5", columns=columns, rows=rows, angles=angles, centre_offset=2.5
    )
    processed = subprocess.run(
        [str(BIN / "bl832"), "process", str(scan), "--folder", PROPOSAL],
        env=site.environment,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if processed.returncode != 0:
        raise RuntimeError(
            f"bl832 process {scan} exited {processed.returncode}:\n"
            f"{processed.stdout[-4000:]}\n{processed.stderr[-4000:]}"
        )
    return site


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


LOCATION_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]


def _location_loaded(url: str) -> bool:
    """Whether the ``bl832`` code location is loaded; a load error is raised, not waited on."""
    workspace = _graphql(url, LOCATION_QUERY)["workspaceOrError"]
    entries = workspace.get("locationEntries") or []
    for entry in entries:
        error = entry["locationOrLoadError"] or {}
        if error.get("__typename") == "PythonError":
            raise RuntimeError(f"code location {entry['name']} failed to load: {error['message']}")
    return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)


def _wait_until_serving(process: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"dagster-webserver exited {process.returncode}:\n{log.read_text()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                json.load(response)
            if _location_loaded(url):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise RuntimeError(
        f"dagster-webserver not serving {url} after {timeout:g} s:\n{log.read_text()[-4000:]}"
    )


def _stop(process: subprocess.Popen) -> None:
    """End the webserver's process group (the webserver and its code server), by its id."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    # Whatever is left of the group (a hung webserver, a code server outliving it) is killed.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the last of the group is gone (reaped)
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


@contextmanager
def running_webserver(site: UiSite, log: Path, timeout: float = 180.0) -> Iterator[str]:
    """``dagster-webserver -w workspace.yaml`` on a free port, in its own process group, until
    the code location is loaded; yields its URL and stops it on the way out, however left."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(BIN / "dagster-webserver"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                str(REPO / "workspace.yaml"),
            ],
            cwd=REPO,
            env=site.environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_serving(process, url, log, timeout)
        yield url
    finally:
        _stop(process)


def whole_page_screenshot(page, path: Path, *, most: int = 8000) -> None:
    """A screenshot of everything on the page: the Dagster UI scrolls inside panes, which a
    ``full_page`` screenshot does not unroll, so the viewport is grown to the tallest pane."""
    width = page.viewport_size["width"]
    for _ in range(4):  # a pane's height follows the viewport's: grow until nothing scrolls
        height = page.viewport_size["height"]
        needed = page.evaluate(
            """() => Math.ceil(Math.max(...[...document.querySelectorAll('*')]
                .filter(e => e.scrollHeight > e.clientHeight + 1)
                .map(e => window.innerHeight + e.scrollHeight - e.clientHeight)))"""
        )
        if needed <= height or height >= most:
            break
        page.set_viewport_size({"width": width, "height": min(needed, most)})
        page.wait_for_timeout(300)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
