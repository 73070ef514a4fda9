"""What Dagster itself is doing, read live at each scrape: runs waiting or going, backfills in
progress, how long ago each daemon last beat, and each pool's slots.

Only unfinished runs are counted: finished ones grow without bound, and their outcome is in
the transfer and compute counters. Daemons are exported as a heartbeat age, never Dagster's
``healthy`` flag, which tolerates 1800 s of silence (``operations.md`` §5): alert on the age. A
required daemon that has never beaten reads +Inf, so the same alert fires for it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator

import dagster as dg
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

RUN_STATUSES = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)
"""Run statuses before an end, each counted (one indexed query apiece)."""

BACKFILL_STATUSES = ("REQUESTED", "CANCELING", "FAILING")
"""Backfill statuses in which the daemon is still working on it. Dagster exports neither its
status enum nor its backfill filter, so backfills are listed, newest first, and counted here."""

RECENT_BACKFILLS = 1000
"""Backfills looked at per scrape: a site launches a handful a week, and one in progress is
never older than the thousand launched after it."""


def runs(instance: dg.DagsterInstance) -> Metric:
    family = GaugeMetricFamily("bl832_runs", "Runs not yet finished, by status.", labels=["status"])
    for status in RUN_STATUSES:
        count = instance.get_runs_count(dg.RunsFilter(statuses=[status]))
        family.add_metric([status.value.lower()], count)
    return family


def backfills(instance: dg.DagsterInstance) -> Metric:
    family = GaugeMetricFamily(
        "bl832_backfills", "Backfills in progress, by status.", labels=["status"]
    )
    seen = Counter(b.status.value for b in instance.get_backfills(limit=RECENT_BACKFILLS))
    for status in BACKFILL_STATUSES:
        family.add_metric([status.lower()], seen[status])
    return family


def daemons(instance: dg.DagsterInstance, now: float) -> Metric:
    family = GaugeMetricFamily(
        "bl832_daemon_heartbeat_age_seconds",
        "Seconds since each required Dagster daemon last beat; +Inf if it never has.",
        labels=["daemon"],
    )
    for daemon, status in sorted(instance.get_daemon_statuses().items()):
        beat = status.last_heartbeat
        family.add_metric([daemon], math.inf if beat is None else max(0.0, now - beat.timestamp))
    return family


def pools(instance: dg.DagsterInstance) -> Iterator[Metric]:
    limit = GaugeMetricFamily(
        "bl832_pool_slots", "Steps a pool lets run at once (its limit).", labels=["pool"]
    )
    in_use = GaugeMetricFamily(
        "bl832_pool_slots_in_use", "Slots of a pool held by running steps.", labels=["pool"]
    )
    pending = GaugeMetricFamily(
        "bl832_pool_steps_pending", "Steps waiting for a slot of a pool.", labels=["pool"]
    )
    storage = instance.event_log_storage
    for pool in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(pool)
        limit.add_metric([pool], info.slot_count)
        in_use.add_metric([pool], info.active_slot_count)
        pending.add_metric([pool], info.pending_step_count)
    yield from (limit, in_use, pending)
