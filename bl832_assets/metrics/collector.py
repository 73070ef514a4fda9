"""The exporter's collector: every metric, gathered when Prometheus scrapes.

Counters (transfers, reconstructions, retention) are kept in this process and brought up to
date from durable records at each scrape, each source read from where the previous scrape
stopped (``streams.py``), at most ``max_records`` records per scrape; gauges (runs, backfills,
daemons, pools, the detector) are read live. Two scrapes (Prometheus and a push) never run at
once: the tallies are not shared state a second reader may see half-updated.

Besides the site's metrics it exports its own: ``bl832_exporter_records_read_total``, records
read from the event log and the audit log (flat between scrapes with nothing new, which shows
the cursors work), and ``bl832_exporter_collect_seconds``, how long the scrape took.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import dagster as dg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from bl832_assets.metrics import orchestration
from bl832_assets.metrics.compute import ComputeTally
from bl832_assets.metrics.detector import DetectorWatch
from bl832_assets.metrics.retention import AuditTail
from bl832_assets.metrics.streams import Budget
from bl832_assets.metrics.transfers import TransferTally
from bl832_assets.settings import Settings

MAX_RECORDS = 20_000
"""Records one scrape reads at most; a larger backlog is read over the following scrapes."""


class Bl832Collector(Collector):
    def __init__(
        self,
        settings: Settings,
        instance: dg.DagsterInstance,
        *,
        max_records: int = MAX_RECORDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._instance = instance
        self._max_records = max_records
        self._clock = clock
        self._transfers = TransferTally(instance, settings)
        self._compute = ComputeTally(instance, settings)
        self._retention = AuditTail(settings.audit_log)
        self._detector = DetectorWatch(instance, settings.root(settings.detector))
        self._records_read = 0
        self._lock = threading.Lock()

    def catch_up(self) -> int:
        """Read every record there is, budget after budget, before serving: the first scrape
        of an old site then shows its whole history. Returns the records read."""
        with self._lock:
            before = self._records_read
            while self._update().left == 0:
                continue  # a budget used up means more records may be waiting
            return self._records_read - before

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            started = time.monotonic()
            self._update()
            now = self._clock()
            families: list[Metric] = [
                *self._transfers.families(),
                *self._compute.families(),
                *self._retention.families(),
                *self._detector.families(now),
                orchestration.runs(self._instance),
                orchestration.backfills(self._instance),
                orchestration.daemons(self._instance, now),
                *orchestration.pools(self._instance),
                CounterMetricFamily(
                    "bl832_exporter_records_read",
                    "Records the exporter read from the event log and the audit log.",
                    value=self._records_read,
                ),
            ]
            families.append(
                GaugeMetricFamily(
                    "bl832_exporter_collect_seconds",
                    "Seconds this scrape took to gather every metric.",
                    value=time.monotonic() - started,
                )
            )
            return families

    def _update(self) -> Budget:
        budget = Budget(self._max_records)
        self._transfers.update(budget)
        self._compute.update(budget)
        self._retention.update(budget)
        self._records_read += budget.spent
        return budget
