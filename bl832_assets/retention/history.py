"""Trimming Dagster's own history: old log lines and transient events leave the event log by age,
while everything that says what exists and what happened to it stays forever.

Why: nothing in Dagster 1.13 bounds ``event_logs`` (``retention:`` in ``dagster.yaml`` purges
only ticks), and a beamline writes events around the clock. Deleting *runs* is not the answer:
``delete_run`` takes a run's asset materializations with it, old scans then look missing, and
``AutomationCondition.eager()`` copies or reconstructs them again. So this job follows Dagster's
own database-tuning recipe (docs ``deployment/troubleshooting/database-tuning``) and deletes
only rows nothing reads once a run is over:

- plain log lines (``dagster_event_type`` NULL) at DEBUG level, after ``debug_days`` (7);
- every other plain log line (INFO, WARNING, ERROR...), after ``log_days`` (60);
- the recipe's transient event types (``TRANSIENT_EVENTS``), after ``transient_days`` (30).

Never deleted: runs; asset materializations, observations, failed materializations; asset check
evaluations and their planned events; run lifecycle events (start, success, failure, cancel);
step successes and failures; and anything else not listed above. Rows of runs that have not
finished are left alone entirely: their planned events and starting markers are what tells
Dagster that work is in progress.

Both storages we run on are served by one code path. The default SQLite event log is sharded,
one database per run plus an index database that mirrors asset and run-status events; each is
visited. PostgreSQL holds one ``event_logs`` table. Deletes go in batches of ``batch_size`` rows,
each its own short transaction, so the daemon and running jobs are never locked out for long.
Deleted space is reused by later inserts; shrinking the files (``VACUUM``, ``pg_repack``) stays
an operator's decision, as in the recipe.
"""

import logging
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Self

import dagster as dg
import sqlalchemy as sa
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES
from dagster._core.storage.event_log import SqlEventLogStorage, SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from sqlalchemy.dialects import postgresql

from bl832_assets.settings import HistorySettings, Settings

CRON = "15 4 * * *"
"""Daily, in the early morning, when the fewest runs are writing to the event log."""

TRANSIENT_EVENTS = frozenset(
    {
        # Markers of work in progress: what Dagster reads while a run is live, not after.
        dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        dg.DagsterEventType.RUN_ENQUEUED,
        dg.DagsterEventType.RUN_STARTING,
        dg.DagsterEventType.RUN_CANCELING,
        # System chatter about how steps ran.
        dg.DagsterEventType.ENGINE_EVENT,
        dg.DagsterEventType.HANDLED_OUTPUT,
        dg.DagsterEventType.LOADED_INPUT,
        dg.DagsterEventType.STEP_INPUT,
        dg.DagsterEventType.STEP_OUTPUT,
        dg.DagsterEventType.RESOURCE_INIT_STARTED,
        dg.DagsterEventType.RESOURCE_INIT_SUCCESS,
        dg.DagsterEventType.RESOURCE_INIT_FAILURE,
        dg.DagsterEventType.STEP_WORKER_STARTING,
        dg.DagsterEventType.STEP_WORKER_STARTED,
    }
)
"""The event types of the recipe's "unimportant events" clean-up, exactly."""

_events = SqlEventLogStorageTable
_Connect = Callable[[], AbstractContextManager[sa.Connection]]


@dataclass(frozen=True)
class HistoryTrim:
    """Rows one trim removed, per kind, and how many databases it visited."""

    debug_logs: int = 0
    logs: int = 0
    transient_events: int = 0
    databases: int = 0

    @property
    def total(self) -> int:
        return self.debug_logs + self.logs + self.transient_events

    def __add__(self, other: Self) -> Self:
        return type(self)(
            self.debug_logs + other.debug_logs,
            self.logs + other.logs,
            self.transient_events + other.transient_events,
            self.databases + other.databases,
        )


def _level(dialect: str) -> sa.ColumnElement[int]:
    """The logging level inside a row's ``event`` JSON text, in this database's SQL."""
    if dialect == "postgresql":
        return sa.cast(_events.c.event, postgresql.JSONB)["level"].as_integer()
    # SQLite's json_extract reads JSON text as is; a CAST there would turn it into a number.
    return sa.type_coerce(_events.c.event, sa.JSON)["level"].as_integer()


def _delete_in_batches(
    connect: _Connect, where: Callable[[str], sa.ColumnElement[bool]], batch_size: int
) -> int:
    """Delete the matching rows ``batch_size`` at a time, each batch its own transaction so
    that writers wait for one short batch at most. The batches walk up the ids (Dagster's
    ``idx_event_type`` index is on type and id), so rows kept are read once, not per batch."""
    removed, after = 0, 0
    while True:
        with connect() as conn:
            ids = (
                conn.execute(
                    sa.select(_events.c.id)
                    .where(where(conn.dialect.name), _events.c.id > after)
                    .order_by(_events.c.id)
                    .limit(batch_size)
                )
                .scalars()
                .all()
            )
            if ids:
                removed += conn.execute(sa.delete(_events).where(_events.c.id.in_(ids))).rowcount
        if len(ids) < batch_size:
            return removed
        after = ids[-1]


def _trim_database(
    connect: _Connect,
    history: HistorySettings,
    *,
    now: datetime,
    unfinished_runs: Collection[str],
) -> HistoryTrim:
    """Trim the ``event_logs`` table of one database, leaving rows of ``unfinished_runs``."""

    def before(days: int) -> sa.ColumnElement[bool]:
        cutoff = (now - timedelta(days=days)).replace(tzinfo=None)  # Dagster's naive UTC
        condition = _events.c.timestamp < cutoff
        if unfinished_runs:
            condition = condition & _events.c.run_id.not_in(list(unfinished_runs))
        return condition

    plain = _events.c.dagster_event_type.is_(None)
    transient = sorted(event_type.value for event_type in TRANSIENT_EVENTS)
    run = partial(_delete_in_batches, connect, batch_size=history.batch_size)
    return HistoryTrim(
        debug_logs=run(lambda d: plain & (_level(d) == logging.DEBUG) & before(history.debug_days)),
        logs=run(lambda d: plain & (_level(d) != logging.DEBUG) & before(history.log_days)),
        transient_events=run(
            lambda _: _events.c.dagster_event_type.in_(transient) & before(history.transient_days)
        ),
        databases=1,
    )


def _databases(storage: SqlEventLogStorage, unfinished_runs: Collection[str]) -> Iterator[_Connect]:
    """A connection factory per database holding event rows: each finished run's shard and the
    index of a sharded SQLite event log, or the one database of any other storage."""
    if isinstance(storage, SqliteEventLogStorage):
        for run_id in sorted(set(storage.get_all_run_ids()) - set(unfinished_runs)):
            yield partial(storage.run_connection, run_id)
    yield storage.index_connection


def trim_history(instance: dg.DagsterInstance, history: HistorySettings) -> HistoryTrim:
    """Trim the instance's event log by age, as the module docstring lays out."""
    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):
        raise dg.Failure(
            f"{type(storage).__name__} is not a SQL event log; there is nothing to trim"
        )
    now = datetime.now(UTC)  # one clock for every database, so the cutoffs agree
    unfinished = instance.get_run_ids(dg.RunsFilter(statuses=NOT_FINISHED_STATUSES))
    trimmed = HistoryTrim()
    for connect in _databases(storage, unfinished):
        trimmed += _trim_database(connect, history, now=now, unfinished_runs=unfinished)
    return trimmed


def build_history_trim(
    settings: Settings, history: HistorySettings | None = None
) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    """The history-trim job and its daily schedule.

    The keep-times come from the site's ``retention.history`` unless ``history`` is given.
    """
    history = history or settings.retention.history

    @dg.op(
        description="Delete old log lines and transient events from the Dagster event log; "
        "never runs, asset or check events, run lifecycle or step outcomes."
    )
    def trim_event_log(context: dg.OpExecutionContext) -> HistoryTrim:
        trimmed = trim_history(context.instance, history)
        context.log.info(
            f"removed {trimmed.debug_logs} DEBUG log lines older than {history.debug_days} d, "
            f"{trimmed.logs} other log lines older than {history.log_days} d and "
            f"{trimmed.transient_events} transient events older than {history.transient_days} d "
            f"from {trimmed.databases} database(s)"
        )
        context.add_output_metadata(
            {
                "debug_logs_removed": trimmed.debug_logs,
                "logs_removed": trimmed.logs,
                "transient_events_removed": trimmed.transient_events,
                "rows_removed": trimmed.total,
                "databases": trimmed.databases,
                "keep_days": dg.MetadataValue.json(
                    history.model_dump(include={"debug_days", "log_days", "transient_days"})
                ),
            }
        )
        return trimmed

    @dg.job(
        name="trim_dagster_history",
        description="Trim Dagster's event log by age, keeping every record of what exists.",
        executor_def=dg.in_process_executor,
    )
    def trim_dagster_history() -> None:
        trim_event_log()

    schedule = dg.ScheduleDefinition(
        name="trim_dagster_history_daily",
        job=trim_dagster_history,
        cron_schedule=CRON,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Daily, so the event log stays bounded without anyone remembering it.",
    )
    return trim_dagster_history, schedule
