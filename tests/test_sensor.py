"""The new_scans sensor: what it fires for, what it refuses, and what a tick costs."""

from __future__ import annotations

import json
import os
import time

import dagster as dg
from scan_support import age, detector_scan

from bl832_assets.decision import decide
from bl832_assets.definitions import build_definitions
from bl832_assets.sensors import evaluate_tick
from bl832_assets.settings import SensorSettings, Settings
from bl832_assets.watch import WatchCursor


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str) -> None:
        self.lines.append(msg)

    def warning(self, msg: str) -> None:
        self.lines.append("WARNING " + msg)


def _requested(result: dg.SensorResult) -> list[str]:
    return [r.partition_key for r in result.run_requests or []]


def test_settled_new_scan_is_registered_reported_and_requested(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    detector_scan(site, "BLS-00564_dyp/20260101_120000_wood.h5")
    result = evaluate_tick(site, instance, None)
    assert _requested(result) == ["20260101_120000_wood"]
    [add] = result.dynamic_partitions_requests
    assert add.partition_keys == ["20260101_120000_wood"]
    [event] = result.asset_events
    assert event.asset_key == dg.AssetKey(["spot832", "raw_scan"])
    assert event.metadata["relative_path"].value == "BLS-00564_dyp/20260101_120000_wood.h5"
    [request] = result.run_requests
    assert set(request.asset_selection) == decide(site, export_control=False)


def test_the_real_sensor_definition_returns_valid_requests(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    detector_scan(site, "F/20260101_120001_rock.h5")
    defs = build_definitions(site)
    sensor = defs.resolve_sensor_def("new_scans")
    context = dg.build_sensor_context(instance=instance, definitions=defs)
    result = sensor(context)
    assert _requested(result) == ["20260101_120001_rock"]
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_export_controlled_scan_requests_only_on_site_assets(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    detector_scan(site, "F/20260101_120002_secret.h5", export_control=True)
    [request] = evaluate_tick(site, instance, None).run_requests
    assert [k.to_user_string() for k in request.asset_selection] == ["data832/raw_scan"]


def test_file_still_being_written_waits_until_unchanged_between_ticks(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    slow = Settings(home=site.home, sensor=SensorSettings(settle_seconds=3600))
    path = detector_scan(slow, "F/20260101_120003_growing.h5", settled=False)
    first = evaluate_tick(slow, instance, None)
    assert _requested(first) == []
    assert "F/20260101_120003_growing.h5" in json.loads(first.cursor)["pending"]
    with path.open("ab") as f:  # the detector appends more frames
        f.write(b"\0" * 4096)
    second = evaluate_tick(slow, instance, first.cursor)
    assert _requested(second) == []
    third = evaluate_tick(slow, instance, second.cursor)
    assert _requested(third) == ["20260101_120003_growing"]
    assert json.loads(third.cursor)["pending"] == {}


def test_temporary_name_renamed_into_place_is_taken_once_under_its_final_name(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    baseline = evaluate_tick(site, instance, None)
    hidden = detector_scan(site, "F/.20260101_120004_renamed.h5.partial")
    while_writing = evaluate_tick(site, instance, baseline.cursor)
    assert _requested(while_writing) == []
    os.replace(hidden, hidden.with_name("20260101_120004_renamed.h5"))
    renamed = evaluate_tick(site, instance, while_writing.cursor)
    assert _requested(renamed) == ["20260101_120004_renamed"]
    assert _requested(evaluate_tick(site, instance, renamed.cursor)) == []


def test_old_file_moved_in_after_the_first_tick_is_news(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    baseline = evaluate_tick(site, instance, None)
    outside = Settings(home=site.home / "elsewhere")
    written = detector_scan(outside, "F/20260101_120005_moved.h5")
    age(written, 30 * 86400)  # older than the lookback: only its inode change is recent
    target = site.root(site.detector) / "F" / written.name
    target.parent.mkdir(parents=True)
    os.replace(written, target)
    assert _requested(evaluate_tick(site, instance, baseline.cursor)) == ["20260101_120005_moved"]


def test_bad_names_and_broken_files_are_refused_with_a_logged_reason(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    folder = site.root(site.detector) / "F"
    folder.mkdir(parents=True)
    for name in ("bad..name.h5", "bell\x07.h5", "x" * 210 + ".h5", "notes.h5"):
        (folder / name).write_bytes(b"this is not hdf5")
        age(folder / name, 60)
    detector_scan(site, "F/20260101_120015_good.h5")
    log = RecordingLog()
    result = evaluate_tick(site, instance, None, log)
    assert _requested(result) == ["20260101_120015_good"]
    warnings = [line for line in log.lines if line.startswith("WARNING")]
    assert len(warnings) == 4
    assert any("'..'" in w for w in warnings)
    assert any("control character" in w for w in warnings)
    assert any("longer than" in w for w in warnings)
    assert any("notes.h5" in w and "HDF5" in w for w in warnings)
    # Refused files are not retried every tick, but a rewritten one is looked at again.
    again = RecordingLog()
    evaluate_tick(site, instance, result.cursor, again)
    assert not [line for line in again.lines if line.startswith("WARNING")]


def test_second_scan_with_a_registered_name_is_refused(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    detector_scan(site, "F/20260101_120006_twin.h5")
    first = evaluate_tick(site, instance, None)
    instance.add_dynamic_partitions("scans", _requested(first))
    detector_scan(site, "G/20260101_120006_twin.h5")
    log = RecordingLog()
    assert _requested(evaluate_tick(site, instance, first.cursor, log)) == []
    assert any("already registered" in line for line in log.lines)


def test_ten_thousand_old_files_cost_one_cheap_tick(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    root = site.root(site.detector)
    old = time.time() - 30 * 86400
    for folder in range(10):
        (root / f"P{folder}").mkdir(parents=True)
        for i in range(1000):
            path = root / f"P{folder}" / f"2020_{folder}_{i:04d}.h5"
            path.write_bytes(b"")
            os.utime(path, (old, old))
    log = RecordingLog()
    first = evaluate_tick(site, instance, None, log)
    assert _requested(first) == [] and first.dynamic_partitions_requests == []
    assert not [line for line in log.lines if line.startswith("WARNING")]  # none was opened
    assert "10000 left to backfill" in log.lines[0]
    assert len(first.cursor) < 1000
    log = RecordingLog()
    second = evaluate_tick(site, instance, first.cursor, log)
    assert "listed 0, examined 0 files" in log.lines[0]
    detector_scan(site, "P3/20260101_120007_new.h5")
    log = RecordingLog()
    third = evaluate_tick(site, instance, second.cursor, log)
    assert _requested(third) == ["20260101_120007_new"]
    assert "listed 1, examined 1001 files" in log.lines[0]  # only the folder that changed


def test_ticks_are_bounded_and_the_rest_is_taken_next_tick(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    bounded = Settings(
        home=site.home, sensor=SensorSettings(settle_seconds=1, max_scans_per_tick=2)
    )
    for i in range(3):
        detector_scan(bounded, f"F/20260101_12001{i}_batch.h5")
    first = evaluate_tick(bounded, instance, None)
    assert len(_requested(first)) == 2
    second = evaluate_tick(bounded, instance, first.cursor)
    assert _requested(second) == ["20260101_120012_batch"]


def test_cursor_round_trips() -> None:
    cursor = WatchCursor(watermark_ns=5, at_watermark=["a.h5"], pending={"b.h5": [1, 2]})
    assert WatchCursor.from_json(cursor.to_json()) == cursor


def test_missing_detector_root_is_created_not_a_crash(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    assert not site.root(site.detector).exists()
    result = evaluate_tick(site, instance, None)
    assert _requested(result) == [] and result.skip_reason
    assert site.root(site.detector).is_dir()


def test_an_empty_first_look_does_not_set_the_watermark_from_the_wall_clock(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    # The kernel's file clock may lag the wall clock: a file created just after a tick can
    # carry an earlier time than the tick's. A tick "from the future" stands in for that.
    empty = evaluate_tick(site, instance, None, now_ns=time.time_ns() + 10**10)
    assert json.loads(empty.cursor)["watermark_ns"] == 0
    detector_scan(site, "F/20260101_120020_right_after.h5")
    assert _requested(evaluate_tick(site, instance, empty.cursor)) == [
        "20260101_120020_right_after"
    ]
