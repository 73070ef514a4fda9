"""A site where one scan has run, to open in Debian's chromium.

Shared by the browser test (``tests/browser``) and ``benchmarks/bench_ui.py``. The site is made
the way an operator makes one: its settings in a file (``BL832_CONFIG``), the repository's
``dagster.yaml`` in its ``DAGSTER_HOME`` (community dialog off), a scan written by ``bl832
synth``'s writer and run end to end by ``bl832 process`` on the embedded local backends. Its
``environment`` is what ``dagster_services.webserver`` needs to serve it, so the UI shows
exactly what the command recorded. Starting and stopping Dagster's processes is
``dagster_services``'s; this module holds only what is particular to the UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dagster_services import run_bl832, site_environment

from bl832_assets.science.synth import write_synthetic_scan
from bl832_assets.settings import Settings, load_settings

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
    scan: str
    environment: dict[str, str]
    """What the CLI and the webserver need to find this site and its instance."""

    @property
    def config(self) -> Path:
        return Path(self.environment["BL832_CONFIG"])

    @property
    def dagster_home(self) -> Path:
        return Path(self.environment["DAGSTER_HOME"])

    def settings(self) -> Settings:
        return load_settings(self.config)


def site_with_one_scan(
    folder: Path, *, columns: int = 64, rows: int = 8, angles: int = 61
) -> UiSite:
    """A fresh site in ``folder/site`` on which ``bl832 process`` has run one small scan."""
    home = folder / "site"
    home.mkdir(parents=True)
    site = UiSite(home, SCAN, site_environment(home, {"home": str(home)}))
    scan = write_synthetic_scan(
        folder / f"{SCAN}.h5", columns=columns, rows=rows, angles=angles, centre_offset=2.5
    )
    run_bl832(site.environment, "process", str(scan), "--folder", PROPOSAL, timeout=600)
    return site


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
