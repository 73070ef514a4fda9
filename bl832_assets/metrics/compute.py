"""Reconstruction and pyramid seconds per facility, from the materializations of
``<facility>/recon_tiff`` and ``<facility>/recon_zarr``.

Two clocks, as the assets record them (``assets/recon.py``): ``seconds``, the step from request
to result, queue wait and start-up included, which is what a scientist waits; and
``payload_seconds``, the payload's own time at the facility, where it reported one. Their
difference is the facility's overhead. Each is a summary (count and sum), so an average over
any window is ``rate(sum) / rate(count)``; the event log keeps every materialization, so the
totals survive an exporter restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
from prometheus_client.core import SummaryMetricFamily
from prometheus_client.metrics_core import Metric

from bl832_assets import keys
from bl832_assets.metrics.streams import Budget, Stream, materializations
from bl832_assets.settings import Settings

PRODUCTS = {keys.RECON_TIFF: "reconstruction", keys.RECON_ZARR: "pyramid"}
"""Dataset a facility makes → the metric name it is counted under."""


@dataclass
class Clock:
    """Count and sum of one kind of seconds."""

    count: int = 0
    total: float = 0.0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds


class ComputeTally:
    """Seconds per (product, facility), brought up to date from the records at each read."""

    def __init__(self, instance: dg.DagsterInstance, settings: Settings) -> None:
        self._streams: list[tuple[str, str, Stream]] = [
            (product, facility, materializations(instance, keys.key(facility, dataset)))
            for facility in settings.hpc
            for dataset, product in PRODUCTS.items()
        ]
        self.step: dict[tuple[str, str], Clock] = {}
        self.payload: dict[tuple[str, str], Clock] = {}

    def update(self, budget: Budget) -> None:
        for product, facility, stream in self._streams:
            for record in stream.read(budget):
                materialization = record.asset_materialization
                if materialization is None:
                    continue
                recorded = {name: entry.value for name, entry in materialization.metadata.items()}
                for name, clocks in (("seconds", self.step), ("payload_seconds", self.payload)):
                    seconds = recorded.get(name)
                    if isinstance(seconds, int | float):  # an odd record never breaks a scrape
                        self._clock(clocks, product, facility).add(float(seconds))

    def families(self) -> Iterator[Metric]:
        for product in PRODUCTS.values():
            yield _summary(
                f"bl832_{product}_seconds",
                f"Each {product} (count) and its seconds from request to result, queue "
                "included (sum).",
                self.step,
                product,
            )
            yield _summary(
                f"bl832_{product}_payload_seconds",
                f"Each {product} that reported its payload time (count) and that time at the "
                "facility (sum).",
                self.payload,
                product,
            )

    @staticmethod
    def _clock(clocks: dict[tuple[str, str], Clock], product: str, facility: str) -> Clock:
        return clocks.setdefault((product, facility), Clock())


def _summary(
    name: str, documentation: str, clocks: dict[tuple[str, str], Clock], product: str
) -> SummaryMetricFamily:
    family = SummaryMetricFamily(name, documentation, labels=("facility",))
    for (kind, facility), clock in sorted(clocks.items()):
        if kind == product:
            family.add_metric([facility], count_value=clock.count, sum_value=clock.total)
    return family
