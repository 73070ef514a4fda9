"""Retention: bytes and copies pruned, refusals and lost copies per location, from the
retention audit log (``retention/audit.py``).

The audit log is the one durable record of both halves: the copy ledger keeps a pruned copy's
size in its trash table but only the latest refusal's reason on the copy (overwritten by the
next), and Dagster's check evaluations carry no size. The log is append-only JSON lines, fsync'd
before an action is reported done, so it is tailed from a byte offset: each scrape reads only
the lines added since the last. A refusal is written when its reason is new (a copy refused
every hour for the same reason is one entry), so the counter counts decisions, not retries.
A log that was rotated (another file, or a shorter one) is read from its start, adding on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from bl832_assets.metrics.streams import Budget


@dataclass
class Pruning:
    """What retention did at one location."""

    pruned: int = 0
    pruned_bytes: int = 0
    refusals: int = 0
    lost: int = 0


class AuditTail:
    """Totals per location, brought up to date from the audit log at each read."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._inode: int | None = None
        self.locations: dict[str, Pruning] = {}

    def update(self, budget: Budget) -> None:
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            return  # nothing pruned or refused yet
        if stat.st_ino != self._inode or stat.st_size < self._offset:
            self._inode, self._offset = stat.st_ino, 0
        with self._path.open("rb") as stream:
            stream.seek(self._offset)
            while budget.left > 0:
                line = stream.readline()
                if not line.endswith(b"\n"):
                    break  # the end, or a line still being written: read it next time
                self._offset += len(line)
                budget.spend(1)
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # not a line the audit log writes: nothing to count
                if isinstance(entry, dict):
                    self._count(entry)

    def families(self) -> Iterator[Metric]:
        pruned = CounterMetricFamily(
            "bl832_retention_pruned", "Copies retention moved into the trash.", labels=["location"]
        )
        pruned_bytes = CounterMetricFamily(
            "bl832_retention_pruned_bytes",
            "Bytes of the copies retention moved into the trash.",
            labels=["location"],
        )
        refusals = CounterMetricFamily(
            "bl832_retention_refusals",
            "Copies retention refused to prune, once per new reason.",
            labels=["location"],
        )
        lost = CounterMetricFamily(
            "bl832_retention_lost",
            "Copies recorded but found missing from storage.",
            labels=["location"],
        )
        for location, done in sorted(self.locations.items()):
            pruned.add_metric([location], done.pruned)
            pruned_bytes.add_metric([location], done.pruned_bytes)
            refusals.add_metric([location], done.refusals)
            lost.add_metric([location], done.lost)
        yield from (pruned, pruned_bytes, refusals, lost)

    def _count(self, entry: dict[str, object]) -> None:
        event, location = entry.get("event"), entry.get("location")
        if event not in ("pruned", "refused", "lost") or not isinstance(location, str):
            return  # purges and restores move nothing these counters count
        done = self.locations.setdefault(location, Pruning())
        if event == "pruned":
            done.pruned += 1
            size = entry.get("size_bytes")
            done.pruned_bytes += size if isinstance(size, int) else 0
        elif event == "refused":
            done.refusals += 1
        else:
            done.lost += 1
