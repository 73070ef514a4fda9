"""The dispatchers: one sensor per beamline notices settled datasets at its source, registers
each as a partition, reports the source copy, and requests exactly the assets the decision
picks. The loop is shared; what a dataset is and which assets it gets is each beamline's
(``Intake``). ``new_scans`` is 8.3.2's."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import dagster as dg

from bl832_assets.dispatch import Dispatch, prepare
from bl832_assets.partitions import SCAN_SUFFIX, scans
from bl832_assets.settings import SensorSettings, Settings
from bl832_assets.watch import Candidate, Observation, WatchCursor, observe


class Log(Protocol):
    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...


Grouping = Callable[[Observation, int], tuple[list[list[Candidate]], list[str]]]
"""Settled files → the datasets ready (each its files) and warnings about incomplete ones."""


def one_file_each(seen: Observation, now_ns: int) -> tuple[list[list[Candidate]], list[str]]:
    """A dataset that is one file (8.3.2's HDF5, 7.0.1.2's CXI) is ready once it settled."""
    return [[candidate] for candidate in seen.settled], []


@dataclass(frozen=True)
class Intake:
    """What a beamline's sensor needs: where to look, what a dataset is, and how a settled one
    becomes a dispatch (raising ``ValueError`` with the reason to refuse it)."""

    name: str
    root: Path
    sensor: SensorSettings
    suffixes: tuple[str, ...]
    partitions: dg.DynamicPartitionsDefinition
    prepare: Callable[[list[Candidate]], Dispatch]
    group: Grouping = one_file_each
    trigger: str = "new_scans"
    noun: str = "scan"
    again: str = "use `bl832 process` to process it again"


def run_tick(
    intake: Intake,
    instance: dg.DagsterInstance,
    cursor: str | None,
    log: Log | None = None,
    now_ns: int | None = None,
) -> dg.SensorResult:
    """One look at the source folder; separate from the decorator so it can be driven directly."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    intake.root.mkdir(parents=True, exist_ok=True)
    seen = observe(
        intake.root,
        WatchCursor.from_json(cursor),
        now_ns=now_ns,
        settle_seconds=intake.sensor.settle_seconds,
        lookback_hours=intake.sensor.lookback_hours,
        suffixes=intake.suffixes,
    )
    ready, warnings = intake.group(seen, now_ns)
    accepted: list[Dispatch] = []
    refused: list[str] = []
    for files in ready:
        if len(accepted) == intake.sensor.max_scans_per_tick:
            # Over the per-tick bound: remembered as unchanged, so it is taken next tick.
            for candidate in files:
                seen.cursor.pending[candidate.relative_path] = [candidate.size, candidate.mtime_ns]
            continue
        named = " + ".join(c.relative_path for c in files)
        try:
            dispatch = intake.prepare(files)
        except ValueError as exc:  # BadScanName, ScanFormatError, refused by policy
            refused.append(f"refused {named}: {exc}")
            continue
        if instance.has_dynamic_partition(intake.partitions.name, dispatch.key) or (
            dispatch.key in {d.key for d in accepted}
        ):
            refused.append(
                f"refused {named}: {intake.noun} {dispatch.key!r} is already registered; "
                + intake.again
            )
            continue
        accepted.append(dispatch)
    if log is not None:
        log.info(f"{intake.name}: {seen.summary()}")
        for reason in [*refused, *warnings]:
            log.warning(reason)
    tags = {"bl832/trigger": intake.trigger}
    return dg.SensorResult(
        run_requests=[d.run_request(**tags) for d in accepted],
        dynamic_partitions_requests=[intake.partitions.build_add_request([d.key for d in accepted])]
        if accepted
        else [],
        asset_events=[d.materialization for d in accepted],
        cursor=seen.cursor.to_json(),
        skip_reason=None if accepted else f"no new {intake.noun}s ({seen.summary()})",
    )


def build_sensor(
    intake: Intake, target: dg.AssetSelection, description: str
) -> dg.SensorDefinition:
    @dg.sensor(
        name=intake.name,
        minimum_interval_seconds=intake.sensor.interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        target=target,
        description=description,
    )
    def dispatcher(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return run_tick(intake, context.instance, context.cursor, context.log)

    return dispatcher


def scan_intake(settings: Settings) -> Intake:
    """8.3.2's: one ``.h5`` scan per dataset on the detector."""
    return Intake(
        name="new_scans",
        root=settings.root(settings.detector),
        sensor=settings.sensor,
        suffixes=(SCAN_SUFFIX,),
        partitions=scans,
        prepare=lambda files: prepare(settings, files[0].relative_path),
    )


def evaluate_tick(
    settings: Settings,
    instance: dg.DagsterInstance,
    cursor: str | None,
    log: Log | None = None,
    now_ns: int | None = None,
) -> dg.SensorResult:
    """A tick of ``new_scans``."""
    return run_tick(scan_intake(settings), instance, cursor, log, now_ns)


def build_new_scans_sensor(settings: Settings, target: dg.AssetSelection) -> dg.SensorDefinition:
    return build_sensor(
        scan_intake(settings),
        target,
        "Notices settled scan files on the detector, registers each as a partition, reports "
        "the detector copy, and requests exactly the assets the decision picks.",
    )
