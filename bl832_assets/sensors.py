"""``new_scans``: the dispatcher. Notices settled scan files on the detector, registers each as a
partition, reports the detector copy, and requests exactly the assets the decision picks."""

import time
from typing import Protocol

import dagster as dg

from bl832_assets.dispatch import Dispatch, prepare
from bl832_assets.partitions import scans
from bl832_assets.settings import Settings
from bl832_assets.watch import WatchCursor, observe

TRIGGER = {"bl832/trigger": "new_scans"}


class Log(Protocol):
    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...


def evaluate_tick(
    settings: Settings,
    instance: dg.DagsterInstance,
    cursor: str | None,
    log: Log | None = None,
    now_ns: int | None = None,
) -> dg.SensorResult:
    """One look at the detector folder; separate from the decorator so it can be driven directly."""
    root = settings.root(settings.detector)
    root.mkdir(parents=True, exist_ok=True)
    seen = observe(
        root,
        WatchCursor.from_json(cursor),
        now_ns=time.time_ns() if now_ns is None else now_ns,
        settle_seconds=settings.sensor.settle_seconds,
        lookback_hours=settings.sensor.lookback_hours,
    )
    accepted: list[Dispatch] = []
    refused: list[str] = []
    for candidate in seen.settled:
        if len(accepted) == settings.sensor.max_scans_per_tick:
            # Over the per-tick bound: remembered as unchanged, so it is taken next tick.
            seen.cursor.pending[candidate.relative_path] = [candidate.size, candidate.mtime_ns]
            continue
        try:
            dispatch = prepare(settings, candidate.relative_path)
        except ValueError as exc:  # BadScanName, ScanFormatError
            refused.append(f"refused {candidate.relative_path}: {exc}")
            continue
        if instance.has_dynamic_partition(scans.name, dispatch.key) or dispatch.key in {
            d.key for d in accepted
        }:
            refused.append(
                f"refused {candidate.relative_path}: scan {dispatch.key!r} is already registered; "
                "use `bl832 process` to process it again"
            )
            continue
        accepted.append(dispatch)
    if log is not None:
        log.info(f"new_scans: {seen.summary()}")
        for reason in refused:
            log.warning(reason)
    return dg.SensorResult(
        run_requests=[d.run_request(**TRIGGER) for d in accepted],
        dynamic_partitions_requests=[scans.build_add_request([d.key for d in accepted])]
        if accepted
        else [],
        asset_events=[d.materialization for d in accepted],
        cursor=seen.cursor.to_json(),
        skip_reason=None if accepted else f"no new scans ({seen.summary()})",
    )


def build_new_scans_sensor(settings: Settings, target: dg.AssetSelection) -> dg.SensorDefinition:
    @dg.sensor(
        name="new_scans",
        minimum_interval_seconds=settings.sensor.interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        target=target,
        description=__doc__,
    )
    def new_scans(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return evaluate_tick(settings, context.instance, context.cursor, context.log)

    return new_scans
