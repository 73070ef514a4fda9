"""Scans waiting on the detector: scan files there that no sensor tick has registered yet, and
the age of the oldest.

A scan is waiting until it is a registered partition, which is the sensor's first act on a
settled file; what happens to it after is in the run metrics. A file the sensor refuses (a bad
name, an unreadable header) waits for ever, which is what an operator must hear about, and so
do files older than the sensor's first look (history, left to ``bl832 discover``). The folder
is walked as the sensor walks it (hidden folders such as retention's ``.trash`` and hidden
files skipped), and only file names and modification times are read. A detector keeps about a
day of scans, so the walk is short; registration is asked once per new name and remembered.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from bl832_assets.partitions import SCAN_SUFFIX, BadScanName, scan_key, scans


@dataclass(frozen=True)
class Waiting:
    count: int
    oldest_age_seconds: float  # 0 when nothing waits


class DetectorWatch:
    """Looks at the detector folder at each scrape."""

    def __init__(self, instance: dg.DagsterInstance, root: Path) -> None:
        self._instance = instance
        self._root = root
        self._registered: set[str] = set()

    def waiting(self, now: float) -> Waiting:
        registered, ages = set(), []
        for relative, mtime in _scan_files(self._root):
            key = _key(relative)
            if key is not None and self._is_registered(key):
                registered.add(key)
                continue
            ages.append(max(0.0, now - mtime))
        self._registered = registered  # forget scans retention has pruned away
        return Waiting(len(ages), max(ages, default=0.0))

    def families(self, now: float) -> Iterator[Metric]:
        found = self.waiting(now)
        yield GaugeMetricFamily(
            "bl832_detector_scans_waiting",
            "Scan files on the detector not yet registered by the new_scans sensor.",
            value=found.count,
        )
        yield GaugeMetricFamily(
            "bl832_detector_oldest_waiting_scan_age_seconds",
            "Seconds since the oldest waiting scan file was last written; 0 when none waits.",
            value=found.oldest_age_seconds,
        )

    def _is_registered(self, key: str) -> bool:
        return key in self._registered or self._instance.has_dynamic_partition(scans.name, key)


def _key(relative: str) -> str | None:
    try:
        return scan_key(relative)
    except BadScanName:
        return None  # never registered: it waits until an operator renames it


def _scan_files(root: Path) -> Iterator[tuple[str, float]]:
    """Scan files under ``root``: path relative to it, modification time."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except FileNotFoundError:
            continue  # no detector folder yet, or one removed while walked
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.name.endswith(SCAN_SUFFIX):
                try:
                    mtime = entry.stat(follow_symlinks=False).st_mtime
                except FileNotFoundError:
                    continue
                yield Path(entry.path).relative_to(root).as_posix(), mtime
