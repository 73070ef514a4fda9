"""``bl832 discover``: register the scans already stored on an endpoint, on the site's instance.

Prints one line per refused file, a progress counter on stderr for long runs, and one summary
line; exits 1 only when the endpoint could not be read at all.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import dagster as dg

from bl832_assets.cli.site import site_instance
from bl832_assets.discovery import (
    DiscoverOptions,
    DiscoverySummary,
    EndpointUnreadable,
    Progress,
    discover,
)
from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.resources.wiring import build_resources
from bl832_assets.settings import Settings, load_settings

PROGRESS_EVERY = 100
"""Files between two updates of the progress counter."""

LONG_RUN = 1000
"""More files than this get a progress counter even when stderr is not a terminal."""


def run_discover(
    options: DiscoverOptions,
    settings: Settings | None = None,
    instance: dg.DagsterInstance | None = None,
) -> int:
    settings = settings or load_settings()
    instance = instance or site_instance(settings)
    transfer = build_resources(settings)["transfer"]
    assert isinstance(transfer, TransferResource)
    try:
        summary = discover(settings, instance, transfer, options, _counter(sys.stderr))
    except EndpointUnreadable as exc:
        print(f"bl832 discover: {exc}", file=sys.stderr)
        return 1
    _print(summary)
    return 0


def _print(summary: DiscoverySummary) -> None:
    for refusal in summary.refused:
        print(f"refused {summary.endpoint}:{refusal.relative_path}: {refusal.reason}")
    if not summary.layout_checked and summary.registered:
        print(
            f"{summary.endpoint} is not mounted here: names only were checked, and "
            f"{len(summary.registered)} scan(s) are recorded as export controlled (unknown)"
        )
    verb = "would be registered" if summary.dry_run else "registered"
    print(
        f"discover: {len(summary.registered)} {verb}, {summary.already_known} already known, "
        f"{len(summary.refused)} refused ({summary.files_per_second:,.0f} files/s)"
        + ("; dry run: nothing was registered or recorded" if summary.dry_run else "")
    )


def _counter(stream: TextIO) -> Progress:
    """A ``\\r``-updated counter with the rate, on a terminal or for a long run."""
    started = time.monotonic()
    shown = -1

    def show(done: int, total: int) -> None:
        nonlocal shown
        if not (stream.isatty() or total > LONG_RUN):
            return
        if done == shown or (done - shown < PROGRESS_EVERY and done < total):
            return
        shown = done
        rate = done / max(time.monotonic() - started, 1e-9)
        end = "\n" if done == total else ""
        stream.write(f"\rdiscover: {done:,}/{total:,} files ({rate:,.0f} files/s){end}")
        stream.flush()

    return show
