"""Transfers: bytes, files, seconds and failures per source and destination endpoint.

Read from Dagster's records of the copy assets, not from ``transfers.sqlite``: that task log is
the local backend's alone (a Globus task is documented by Globus), while every copy, whichever
backend made it, is materialized by the same asset (``assets/copies.py``) with the same
metadata: ``source_endpoint``, ``endpoint``, ``bytes_transferred``, ``files``, ``files_skipped``
and ``seconds``. Materializations, step starts and successes and run failures are never trimmed
from the event log (``retention/history.py``), so an exporter restarted later counts the same
totals again: its counters do not even reset.

A failure is a copy step that started in a run that failed and never succeeded in it: a step
that raised, or one whose worker died and run monitoring failed the run. It is counted when
its run has failed, so a step retried to success is none. Its source is where the copy would
have read from: the upstream with the newest materialization of the scan before the failure,
as the copy itself chooses (``assets.records.newest_of``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
from prometheus_client.core import CounterMetricFamily, SummaryMetricFamily
from prometheus_client.metrics_core import Metric

from bl832_assets.definitions import build_definitions
from bl832_assets.metrics.streams import Budget, materializations, run_failures
from bl832_assets.retention.locations import asset_endpoints
from bl832_assets.settings import Settings

COPY_CHECK = "copy_matches_source"
"""The checksum check every copy asset carries (``assets/copies.py``): what makes it a copy."""

UNKNOWN = "unknown"
"""The source of a failed copy whose scan has no upstream record to say where it was."""

_PARTITION_TAG = "dagster/partition"
_STARTED = dg.DagsterEventType.STEP_START
_SUCCEEDED = dg.DagsterEventType.STEP_SUCCESS
_LABELS = ("source", "destination")


def copy_assets(settings: Settings) -> dict[dg.AssetKey, tuple[dg.AssetKey, ...]]:
    """Each copy asset of the site's graph, with the upstream assets it may copy from."""
    graph = build_definitions(settings).resolve_asset_graph()
    copies = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if any(check.name == COPY_CHECK for check in node.check_keys):
            copies[key] = tuple(sorted(node.parent_keys, key=lambda k: k.to_user_string()))
    return copies


@dataclass
class Totals:
    """What the copies from one endpoint to another have added up to."""

    bytes: int = 0
    files: int = 0
    seconds: float = 0.0
    copies: int = 0
    failures: int = 0


class TransferTally:
    """Totals per (source, destination), brought up to date from the records at each read."""

    def __init__(self, instance: dg.DagsterInstance, settings: Settings) -> None:
        self._instance = instance
        self._copies = copy_assets(settings)
        self._endpoints = asset_endpoints(settings)
        self._steps = {"__".join(key.path): key for key in self._copies}
        self._made = [materializations(instance, key) for key in sorted(self._copies)]
        self._failed_runs = run_failures(instance)
        self.totals: dict[tuple[str, str], Totals] = {}

    def update(self, budget: Budget) -> None:
        for stream in self._made:
            for record in stream.read(budget):
                self._count_copy(record)
        for record in self._failed_runs.read(budget):
            self._count_failures(record)

    def families(self) -> Iterator[Metric]:
        moved = CounterMetricFamily(
            "bl832_transfer_bytes", "Bytes copied between endpoints.", labels=_LABELS
        )
        files = CounterMetricFamily(
            "bl832_transfer_files",
            "Files copied between endpoints (files already there and skipped not counted).",
            labels=_LABELS,
        )
        seconds = SummaryMetricFamily(
            "bl832_transfer_seconds",
            "Completed copies (count) and their seconds from request to verified end (sum).",
            labels=_LABELS,
        )
        failures = CounterMetricFamily(
            "bl832_transfer_failures",
            "Copies that failed in a failed run (counted when the run ended).",
            labels=_LABELS,
        )
        for labels, totals in sorted(self.totals.items()):
            moved.add_metric(labels, totals.bytes)
            files.add_metric(labels, totals.files)
            seconds.add_metric(labels, count_value=totals.copies, sum_value=totals.seconds)
            failures.add_metric(labels, totals.failures)
        yield from (moved, files, seconds, failures)

    def _count_copy(self, record: dg.EventLogRecord) -> None:
        materialization = record.asset_materialization
        if materialization is None:
            return
        recorded = {name: value.value for name, value in materialization.metadata.items()}
        if "bytes_transferred" not in recorded:  # a record that moved nothing (a discovery)
            return
        source, destination = (recorded.get(n, UNKNOWN) for n in ("source_endpoint", "endpoint"))
        totals = self._at(str(source), str(destination))
        totals.bytes += int(_number(recorded, "bytes_transferred"))
        totals.files += int(_number(recorded, "files") - _number(recorded, "files_skipped"))
        totals.seconds += _number(recorded, "seconds")
        totals.copies += 1

    def _count_failures(self, record: dg.EventLogRecord) -> None:
        run_id = record.event_log_entry.run_id
        steps = self._instance.all_logs(run_id, of_type={_STARTED, _SUCCEEDED})
        started = {e.step_key for e in steps if e.dagster_event_type is _STARTED}
        succeeded = {e.step_key for e in steps if e.dagster_event_type is _SUCCEEDED}
        failed = [self._steps[step] for step in started - succeeded if step in self._steps]
        if not failed:
            return
        run = self._instance.get_run_by_id(run_id)
        partition = run.tags.get(_PARTITION_TAG) if run else None
        for key in failed:
            source = self._source_of(key, partition, record.timestamp)
            self._at(source, self._endpoints[key]).failures += 1

    def _source_of(self, key: dg.AssetKey, partition: str | None, before: float) -> str:
        """The endpoint of the copy's newest upstream record of the scan before ``before``."""
        parents = self._copies[key]
        if len(parents) == 1:
            return self._endpoints.get(parents[0], UNKNOWN)
        if partition is None:
            return UNKNOWN
        newest: tuple[float, dg.AssetKey] | None = None
        for parent in parents:
            found = self._instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=parent, asset_partitions=[partition], before_timestamp=before
                ),
                limit=1,
            ).records
            if found and (newest is None or found[0].timestamp > newest[0]):
                newest = (found[0].timestamp, parent)
        return UNKNOWN if newest is None else self._endpoints.get(newest[1], UNKNOWN)

    def _at(self, source: str, destination: str) -> Totals:
        return self.totals.setdefault((source, destination), Totals())


def _number(recorded: dict[str, object], name: str) -> float:
    """A recorded number; 0 where a record lacks it, so one odd record cannot break a scrape."""
    value = recorded.get(name)
    return float(value) if isinstance(value, int | float) else 0.0
