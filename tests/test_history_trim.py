"""The history trim on real Dagster instances, SQLite (run-sharded) and PostgreSQL: real runs
write logs and asset, observation and check events; their rows are then aged in the database
(test set-up, as time passing would) and the trim job must remove exactly the old log lines and
transient events while every run and every record of what exists stays."""

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable as events
from postgres_support import fresh_database

from bl832_assets.retention.history import (
    CRON,
    TRANSIENT_EVENTS,
    HistoryTrim,
    build_history_trim,
)
from bl832_assets.settings import HistorySettings, Settings

# The recipe's list, spelt as its SQL spells it, so a misnamed enum member cannot pass.
RECIPE_TRANSIENT = {
    "ASSET_MATERIALIZATION_PLANNED",
    "ENGINE_EVENT",
    "HANDLED_OUTPUT",
    "LOADED_INPUT",
    "PIPELINE_CANCELING",
    "PIPELINE_ENQUEUED",
    "PIPELINE_STARTING",
    "RESOURCE_INIT_FAILURE",
    "RESOURCE_INIT_STARTED",
    "RESOURCE_INIT_SUCCESS",
    "STEP_INPUT",
    "STEP_OUTPUT",
    "STEP_WORKER_STARTED",
    "STEP_WORKER_STARTING",
}
NEVER_TRIMMED = {
    "ASSET_MATERIALIZATION",
    "ASSET_OBSERVATION",
    "ASSET_CHECK_EVALUATION",
    "ASSET_CHECK_EVALUATION_PLANNED",
    "PIPELINE_START",
    "PIPELINE_SUCCESS",
    "STEP_START",
    "STEP_SUCCESS",
    "LOGS_CAPTURED",
}
SCAN = dg.AssetKey("scan")
CHECK = dg.AssetCheckKey(SCAN, "scan_is_sane")
POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"

scans = dg.StaticPartitionsDefinition(["a", "b"])


@dg.asset(partitions_def=scans)
def scan(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    context.log.debug("debug line")
    context.log.info("info line")
    context.log.warning("warning line")
    context.log.error("error line")
    context.log_event(dg.AssetObservation(SCAN, partition=context.partition_key))
    return dg.MaterializeResult(metadata={"slices": 3})


@dg.asset_check(asset=scan)
def scan_is_sane() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@dg.op
def copy_forever() -> None:
    """Stands for a transfer still running when the trim comes."""


@dg.job
def long_copy() -> None:
    copy_forever()


@dataclass(frozen=True)
class Row:
    database: str
    id: int
    run_id: str
    event_type: str | None
    level: int
    timestamp: datetime

    def doomed(self, now: datetime) -> str | None:
        """Which trim category removes this row at the default keep-times, if any."""
        age = now - self.timestamp
        if self.event_type is None and self.level == logging.DEBUG:
            return "debug_logs" if age > timedelta(days=7) else None
        if self.event_type is None:
            return "logs" if age > timedelta(days=60) else None
        if self.event_type in RECIPE_TRANSIENT:
            return "transient_events" if age > timedelta(days=30) else None
        return None


def databases(
    instance: dg.DagsterInstance,
) -> dict[str, Callable[[], AbstractContextManager[sa.Connection]]]:
    storage = instance.event_log_storage
    found = {"index": storage.index_connection}
    if storage.is_run_sharded:
        found |= {run: partial(storage.run_connection, run) for run in storage.get_all_run_ids()}
    return found


def rows(instance: dg.DagsterInstance, run_ids: set[str]) -> set[Row]:
    """Every event row of ``run_ids`` in every database of the event log."""
    found = set()
    for name, connect in databases(instance).items():
        with connect() as conn:
            query = sa.select(
                events.c.id,
                events.c.run_id,
                events.c.dagster_event_type,
                events.c.event,
                events.c.timestamp,
            ).where(events.c.run_id.in_(run_ids))
            for id_, run_id, event_type, event, timestamp in conn.execute(query):
                level = json.loads(event)["level"]
                found.add(Row(name, id_, run_id, event_type, level, timestamp))
    return found


def age(instance: dg.DagsterInstance, run_id: str, days: float) -> None:
    """Move every row of the run ``days`` into the past, in each database that holds one."""
    for connect in databases(instance).values():
        with connect() as conn:
            query = sa.select(events.c.id, events.c.timestamp).where(events.c.run_id == run_id)
            for id_, timestamp in conn.execute(query).all():
                conn.execute(
                    sa.update(events)
                    .where(events.c.id == id_)
                    .values(timestamp=timestamp - timedelta(days=days))
                )


def run_scan(instance: dg.DagsterInstance, partition: str) -> str:
    result = dg.materialize([scan, scan_is_sane], instance=instance, partition_key=partition)
    assert result.success
    return result.run_id


def unfinished_run(instance: dg.DagsterInstance) -> str:
    run = instance.create_run_for_job(long_copy, status=dg.DagsterRunStatus.STARTED)
    instance.report_engine_event("still copying", run)
    instance.report_run_canceling(run)
    return run.run_id


def trim(
    site: Settings, instance: dg.DagsterInstance, history: HistorySettings | None = None
) -> tuple[HistoryTrim, dict[str, object]]:
    job, _ = build_history_trim(site, history)
    result = job.execute_in_process(instance=instance)
    assert result.success
    [output] = [e for e in result.events_for_node("trim_event_log") if e.is_successful_output]
    metadata = {k: v.value for k, v in output.step_output_data.metadata.items()}
    return result.output_for_node("trim_event_log"), metadata


def messages(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    return {e.user_message for e in instance.all_logs(run_id) if not e.is_dagster_event}


def event_types(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    return {e.dagster_event_type.value for e in instance.all_logs(run_id) if e.is_dagster_event}


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A database of its own on the machine's PostgreSQL, since the trim counts every row in
    the event log and the shared ``test`` database holds other tests' (and days-old) runs."""
    with fresh_database("bl832_trim") as name:
        yield name


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_instance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    if request.param == "sqlite":
        yield request.getfixturevalue("instance")
        return
    overrides = {
        "storage": {
            "postgres": {
                "postgres_db": {
                    "hostname": "127.0.0.1",
                    "port": 5432,
                    "username": "postgres",
                    "password": "",
                    "db_name": request.getfixturevalue("postgres_database"),
                    # SQLAlchemy 2.1 defaults to psycopg 3; dagster-postgres ships psycopg2.
                    "scheme": "postgresql+psycopg2",
                }
            }
        }
    }
    (tmp_path / "pg").mkdir()
    with dg.instance_for_test(overrides=overrides, temp_dir=str(tmp_path / "pg")) as instance:
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        yield instance


def test_trim_removes_old_logs_and_transient_events_and_keeps_what_exists(
    site: Settings, any_instance: dg.DagsterInstance
) -> None:
    instance = any_instance
    old, middle, fresh = run_scan(instance, "a"), run_scan(instance, "b"), run_scan(instance, "a")
    live = unfinished_run(instance)
    age(instance, old, days=100)
    age(instance, middle, days=10)
    age(instance, live, days=100)
    runs = {old, middle, fresh, live}
    materializations = instance.fetch_materializations(SCAN, limit=10).records
    observations = instance.fetch_observations(SCAN, limit=10).records
    check = instance.get_latest_asset_check_evaluation_record(CHECK)
    now = datetime.now(UTC).replace(tzinfo=None)
    before = rows(instance, runs)

    trimmed, metadata = trim(site, instance)

    # A run still going keeps every row, however old.
    doomed = {row for row in before if row.run_id != live and row.doomed(now)}
    assert rows(instance, runs) == before - doomed
    expected = Counter(row.doomed(now) for row in doomed)
    assert expected["debug_logs"] == trimmed.debug_logs == metadata["debug_logs_removed"] > 0
    assert expected["logs"] == trimmed.logs == metadata["logs_removed"] > 0
    assert (
        expected["transient_events"]
        == trimmed.transient_events
        == metadata["transient_events_removed"]
        > 0
    )
    assert metadata["rows_removed"] == len(doomed) == trimmed.total
    assert {row.run_id for row in doomed} == {old, middle}
    assert {"ENGINE_EVENT", "PIPELINE_CANCELING"} <= event_types(instance, live)
    assert {row.event_type for row in before} >= NEVER_TRIMMED
    assert not {row.event_type for row in doomed} & NEVER_TRIMMED

    # The old run lost its log lines and chatter, never its history.
    assert messages(instance, old) == set()
    assert event_types(instance, old) >= NEVER_TRIMMED
    assert not event_types(instance, old) & RECIPE_TRANSIENT
    # Ten days old: only DEBUG lines are gone; one fresh run and one still running keep all.
    assert messages(instance, middle) == {"info line", "warning line", "error line"}
    assert event_types(instance, middle) & RECIPE_TRANSIENT
    assert "debug line" in messages(instance, fresh)
    # Nothing that says what exists changed, so no scan looks missing to the automation.
    assert all(instance.get_run_by_id(run_id) is not None for run_id in runs)
    assert instance.fetch_materializations(SCAN, limit=10).records == materializations
    assert len(materializations) == 3
    assert instance.fetch_observations(SCAN, limit=10).records == observations
    assert instance.get_latest_asset_check_evaluation_record(CHECK) == check is not None
    assert instance.get_materialized_partitions(SCAN) == {"a", "b"}

    again, _ = trim(site, instance)
    assert again.total == 0


def test_keep_times_come_from_history_settings_and_batches_add_up(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    old, middle = run_scan(instance, "a"), run_scan(instance, "b")
    age(instance, old, days=100)
    age(instance, middle, days=10)
    now = datetime.now(UTC).replace(tzinfo=None)
    before = rows(instance, {old, middle})

    trimmed, _ = trim(site, instance, HistorySettings(debug_days=20, batch_size=2))

    # With a 20-day keep-time the ten-day-old run keeps its DEBUG line.
    assert "debug line" in messages(instance, middle)
    old_debug = [r for r in before if r.doomed(now) == "debug_logs" and r.run_id == old]
    assert trimmed.debug_logs == len(old_debug) > 0
    old_transient = [r for r in before if r.doomed(now) == "transient_events"]
    assert trimmed.transient_events == len(old_transient) > 2  # more than one batch


def test_transient_types_are_the_recipes_and_the_schedule_runs_daily(site: Settings) -> None:
    job, schedule = build_history_trim(site)

    assert {event_type.value for event_type in TRANSIENT_EVENTS} == RECIPE_TRANSIENT
    assert not RECIPE_TRANSIENT & NEVER_TRIMMED
    assert schedule.job_name == job.name == "trim_dagster_history"
    assert schedule.cron_schedule == CRON == "15 4 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert dg.Definitions(jobs=[job], schedules=[schedule]).resolve_job_def(job.name)
