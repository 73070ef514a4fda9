"""``bl832 metrics``, scraped over HTTP and parsed as Prometheus parses it.

One site per module: a scan processed end to end on the local backends, a second whose copy
failed, a prune that deleted the detector's copy and refused a corrupted one, and a third scan
dropped on the detector and left waiting. The exporter runs as ``bl832 metrics`` in its own
process, as a deployment runs it; each stage is a module-scoped fixture, so the tests hold in
any order."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster._daemon.types import DaemonHeartbeat
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer
from scan_support import detector_scan

from bl832_assets.cli.main import main
from bl832_assets.cli.retention import prune
from bl832_assets.cli.site import site_instance
from bl832_assets.definitions import build_definitions
from bl832_assets.dispatch import as_sensor_result, prepare, register
from bl832_assets.execution import RunReport, execute
from bl832_assets.metrics.collector import Bl832Collector
from bl832_assets.metrics.retention import AuditTail, Pruning
from bl832_assets.metrics.serve import PushTarget, exporting
from bl832_assets.metrics.streams import Budget
from bl832_assets.partitions import scans
from bl832_assets.pools import apply_pool_limits
from bl832_assets.retention.audit import AuditLog
from bl832_assets.settings import Settings, load_settings

FOLDER = "BLS-00564"
SCAN = "20260105_100000_metrics"
FAILED = "20260105_100100_failed"
WAITING = "20260105_100200_waiting"
LATER = "20260105_100300_later"
LONG = 3650  # days: every location but the detector and beamline raw keeps its copies

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=30) as response:
        return _parse(response.read().decode())


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def _labelled(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (n, labels), value in samples.items() if n == name}


def _run_scan(settings: Settings, instance: dg.DagsterInstance, stem: str) -> RunReport:
    """Process a scan written on the detector, as ``bl832 process`` does."""
    relative = f"{FOLDER}/{stem}.h5"
    detector_scan(settings, relative)
    announced = as_sensor_result(prepare(settings, relative), **{"bl832/trigger": "test"})
    register(instance, announced)
    [request] = announced.run_requests
    return execute(build_definitions(settings), instance, request)


def _folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _prune(settings: Settings, location: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert prune(location, dry_run=False, settings=settings) == 0
    return out.getvalue()


@dataclass(frozen=True)
class Site:
    settings: Settings
    instance: dg.DagsterInstance
    env: dict[str, str]
    raw_bytes: int  # the processed scan's file
    result_bytes: int  # its TIFF folder and pyramid, as brought home
    waiting_written: float  # when the waiting scan was last written


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("metrics")
    home, config = base / "site", base / "site.yaml"
    days = {name: LONG for name in Settings(home=home).retention_days}
    days |= {"spot832": 0, "data832_raw": 0}
    config.write_text(
        f"home: {home}\nsensor: {{settle_seconds: 1}}\nretention_days: {json.dumps(days)}\n"
    )
    env = {
        "BL832_HOME": str(home),
        "BL832_CONFIG": str(config),
        "DAGSTER_HOME": str(home / "dagster"),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        settings = load_settings()
        instance = site_instance(settings)
        report = _run_scan(settings, instance, SCAN)
        assert report.succeeded, report.failures()
        raw = settings.root("data832_raw") / FOLDER / f"{SCAN}.h5"
        results = _folder_bytes(settings.root("data832_scratch"))
        # A copy that fails: its scan is gone from the detector before the run starts.
        failed = _failing_copy(settings, instance)
        assert not failed.succeeded and "data832/raw_scan" in " ".join(failed.failures())
        assert " delete " in _prune(settings, "spot832")
        _flip_last_byte(raw)
        assert "no longer matches the checksum" in _prune(settings, "data832_raw")
        waiting = detector_scan(settings, f"{FOLDER}/{WAITING}.h5")
        yield Site(settings, instance, env, raw.stat().st_size, results, waiting.stat().st_mtime)


def _failing_copy(settings: Settings, instance: dg.DagsterInstance) -> RunReport:
    relative = f"{FOLDER}/{FAILED}.h5"
    detector_scan(settings, relative)
    announced = as_sensor_result(prepare(settings, relative))
    register(instance, announced)
    (settings.root(settings.detector) / relative).unlink()
    [request] = announced.run_requests
    return execute(build_definitions(settings), instance, request)


def _flip_last_byte(path: Path) -> None:
    with path.open("r+b") as stream:
        stream.seek(-1, os.SEEK_END)
        last = stream.read(1)
        stream.seek(-1, os.SEEK_END)
        stream.write(bytes([last[0] ^ 0xFF]))


@dataclass(frozen=True)
class Exporter:
    url: str
    first: Samples  # its first scrape


@pytest.fixture(scope="module")
def exporter(scanned: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    """``bl832 metrics --port 0`` in its own process, stopped by its pid with SIGTERM."""
    errors = tmp_path_factory.mktemp("exporter") / "stderr.txt"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "bl832_assets", "metrics", "--port", "0"],
            env={**os.environ, **scanned.env},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert line.startswith("bl832 metrics: serving http://127.0.0.1:"), (
            line + errors.read_text()
        )
        url = line.split()[3]
        yield Exporter(url, _scrape(url))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    assert code == 0, errors.read_text()


@dataclass(frozen=True)
class Later:
    before: Samples
    after: Samples
    again: Samples  # a scrape with nothing new since ``after``
    raw_bytes: int


@pytest.fixture(scope="module")
def later(scanned: Site, exporter: Exporter) -> Later:
    """Another scan processed while the exporter runs, then two more scrapes."""
    before = _scrape(exporter.url)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in scanned.env.items():
            patch.setenv(name, value)
        report = _run_scan(scanned.settings, scanned.instance, LATER)
    assert report.succeeded, report.failures()
    after = _scrape(exporter.url)
    raw = scanned.settings.root("data832_raw") / FOLDER / f"{LATER}.h5"
    return Later(before, after, _scrape(exporter.url), raw.stat().st_size)


# -- transfers -------------------------------------------------------------------------------------


def test_transfer_bytes_and_files_per_source_and_destination_are_the_scans_sizes(
    scanned: Site, exporter: Exporter
) -> None:
    first = exporter.first
    raw_hops = [("spot832", "data832_raw"), ("data832_raw", "nersc_cfs")]
    result_hops = [("nersc_pscratch", "data832_scratch"), ("data832_scratch", "nersc_cfs_results")]
    for source, destination in raw_hops:
        hop = {"source": source, "destination": destination}
        assert _value(first, "bl832_transfer_bytes_total", **hop) == scanned.raw_bytes
        assert _value(first, "bl832_transfer_files_total", **hop) == 1
        assert _value(first, "bl832_transfer_seconds_count", **hop) == 1
        assert _value(first, "bl832_transfer_seconds_sum", **hop) > 0
    for source, destination in result_hops:
        hop = {"source": source, "destination": destination}
        assert _value(first, "bl832_transfer_bytes_total", **hop) == scanned.result_bytes
        assert _value(first, "bl832_transfer_seconds_count", **hop) == 2  # TIFFs and pyramid
    moved = _labelled(first, "bl832_transfer_bytes_total")
    assert {dict(labels)["source"] for labels in moved} == {s for s, _ in raw_hops + result_hops}


def test_a_failed_copy_is_counted_against_its_source_and_destination(
    exporter: Exporter,
) -> None:
    failures = _labelled(exporter.first, "bl832_transfer_failures_total")
    assert {labels: value for labels, value in failures.items() if value} == {
        frozenset({"source": "spot832", "destination": "data832_raw"}.items()): 1
    }


# -- reconstructions -------------------------------------------------------------------------------


def test_one_reconstruction_and_one_pyramid_at_the_facility_that_made_them(
    exporter: Exporter,
) -> None:
    first = exporter.first
    for product in ("reconstruction", "pyramid"):
        counted = _labelled(first, f"bl832_{product}_seconds_count")
        assert counted == {frozenset({("facility", "nersc")}): 1}
        assert _value(first, f"bl832_{product}_seconds_sum", facility="nersc") > 0
        payload = _value(first, f"bl832_{product}_payload_seconds_sum", facility="nersc")
        assert 0 < payload <= _value(first, f"bl832_{product}_seconds_sum", facility="nersc")


# -- retention -------------------------------------------------------------------------------------


def test_pruned_bytes_are_the_pruned_copys_size_and_the_refusal_is_counted(
    scanned: Site, exporter: Exporter
) -> None:
    first = exporter.first
    assert _labelled(first, "bl832_retention_pruned_total") == {
        frozenset({("location", "spot832")}): 1,
        frozenset({("location", "data832_raw")}): 0,
    }
    assert _value(first, "bl832_retention_pruned_bytes_total", location="spot832") == (
        scanned.raw_bytes
    )
    assert _value(first, "bl832_retention_refusals_total", location="data832_raw") == 1
    assert _value(first, "bl832_retention_refusals_total", location="spot832") == 0


# -- the detector and Dagster ----------------------------------------------------------------------


def test_a_scan_dropped_and_not_yet_seen_waits_with_its_age(
    scanned: Site, exporter: Exporter
) -> None:
    first = exporter.first
    assert _value(first, "bl832_detector_scans_waiting") == 1
    age = _value(first, "bl832_detector_oldest_waiting_scan_age_seconds")
    assert 60 <= age <= time.time() - scanned.waiting_written


def test_no_run_queued_or_in_progress_no_backfill_and_no_daemon_beating(
    scanned: Site, exporter: Exporter
) -> None:
    first = exporter.first
    assert set(_labelled(first, "bl832_runs").values()) == {0}
    assert _value(first, "bl832_runs", status="queued") == 0
    assert _value(first, "bl832_runs", status="started") == 0
    assert set(_labelled(first, "bl832_backfills").values()) == {0}
    ages = _labelled(first, "bl832_daemon_heartbeat_age_seconds")
    required = set(scanned.instance.get_required_daemon_types())
    assert {dict(labels)["daemon"] for labels in ages} == required
    assert all(math.isinf(age) for age in ages.values())  # no daemon ran on this site
    for pool, limit in scanned.settings.pools.items():
        assert _value(first, "bl832_pool_slots", pool=pool) == limit
        assert _value(first, "bl832_pool_slots_in_use", pool=pool) == 0


# -- monotonic and bounded -------------------------------------------------------------------------


def test_counters_grow_by_what_another_scan_did(later: Later) -> None:
    before, after = later.before, later.after
    counters = [
        key
        for key in before
        if key[0].endswith(("_total", "_count", "_sum")) and not key[0].startswith("bl832_exporter")
    ]
    assert counters
    assert all(after[key] >= before[key] for key in counters)
    hop = {"source": "spot832", "destination": "data832_raw"}
    grown = _value(after, "bl832_transfer_bytes_total", **hop) - _value(
        before, "bl832_transfer_bytes_total", **hop
    )
    assert grown == later.raw_bytes
    assert _value(after, "bl832_transfer_seconds_count", **hop) == 2
    assert _value(after, "bl832_reconstruction_seconds_count", facility="nersc") == 2
    assert _value(after, "bl832_detector_scans_waiting") == 1  # the waiting scan still waits


def test_a_scrape_reads_only_what_is_new(later: Later) -> None:
    read = "bl832_exporter_records_read_total"
    assert _value(later.after, read) > _value(later.before, read)
    assert _value(later.again, read) == _value(later.after, read)
    assert _value(
        later.again, "bl832_transfer_bytes_total", source="spot832", destination="data832_raw"
    ) == _value(
        later.after, "bl832_transfer_bytes_total", source="spot832", destination="data832_raw"
    )


def test_a_scrape_reads_at_most_its_budget_and_later_scrapes_catch_up(scanned: Site) -> None:
    complete = Bl832Collector(scanned.settings, scanned.instance)
    total = complete.catch_up()
    budget = max(1, total // 4)
    bounded = Bl832Collector(scanned.settings, scanned.instance, max_records=budget)
    registry = CollectorRegistry()
    registry.register(bounded)
    read, scrapes = 0.0, 0
    while read < total:
        samples = _parse(generate_latest(registry).decode())
        now_read = _value(samples, "bl832_exporter_records_read_total")
        assert 0 < now_read - read <= budget
        read, scrapes = now_read, scrapes + 1
    assert scrapes >= 4
    whole = CollectorRegistry()
    whole.register(complete)
    expected = _parse(generate_latest(whole).decode())
    last = _parse(generate_latest(registry).decode())
    assert _value(last, "bl832_exporter_records_read_total") == total
    for name in ("bl832_transfer_bytes_total", "bl832_retention_pruned_bytes_total"):
        assert _labelled(last, name) == _labelled(expected, name)


def test_the_audit_log_is_tailed_across_a_line_being_written_and_a_rotation(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append("pruned", location="spot832", size_bytes=100)
    log.append("refused", location="spot832", reason="no verified safe copy")
    log.append("purged", location="spot832", size_bytes=100)
    tail = AuditTail(path)
    with path.open("a") as stream:
        stream.write('{"event": "pruned", "location": "spot832", "size_')  # still being written
    tail.update(Budget(100))
    assert tail.locations == {"spot832": Pruning(pruned=1, pruned_bytes=100, refusals=1)}
    with path.open("a") as stream:
        stream.write('bytes": 50}\n')
    tail.update(Budget(100))
    assert tail.locations["spot832"] == Pruning(pruned=2, pruned_bytes=150, refusals=1)
    path.rename(tmp_path / "audit.jsonl.1")
    AuditLog(path).append("lost", location="data832_raw")
    tail.update(Budget(100))
    assert tail.locations == {
        "spot832": Pruning(pruned=2, pruned_bytes=150, refusals=1),
        "data832_raw": Pruning(lost=1),
    }


# -- the Dagster instance's own numbers ------------------------------------------------------------


def test_runs_daemon_heartbeats_and_pools_come_from_the_instance(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    now = time.time()
    # A queued run needs a code location's origin; these two need none, and count the same way.
    for status in (dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTED):
        instance.add_run(dg.DagsterRun(job_name="flight_check", status=status))
    instance.add_daemon_heartbeat(
        DaemonHeartbeat(timestamp=now - 120, daemon_type="SENSOR", daemon_id="test", errors=[])
    )
    apply_pool_limits(instance, site)
    registry = CollectorRegistry()
    registry.register(Bl832Collector(site, instance, clock=lambda: now))
    samples = _parse(generate_latest(registry).decode())
    assert _labelled(samples, "bl832_runs") == {
        frozenset({("status", status)}): 1 if status in ("not_started", "started") else 0
        for status in ("queued", "not_started", "starting", "started", "canceling")
    }
    assert _value(samples, "bl832_daemon_heartbeat_age_seconds", daemon="SENSOR") == 120
    assert math.isinf(_value(samples, "bl832_daemon_heartbeat_age_seconds", daemon="SCHEDULER"))
    assert _labelled(samples, "bl832_pool_slots") == {
        frozenset({("pool", pool)}): limit for pool, limit in site.pools.items()
    }


def test_waiting_scans_skip_the_trash_and_count_a_badly_named_file(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    detector_scan(site, "P/20260105_110000_registered.h5")
    instance.add_dynamic_partitions(scans.name, ["20260105_110000_registered"])
    detector_scan(site, "P/.trash/20260105_110100_pruned.h5")
    detector_scan(site, "P/20260105_110200_new.h5")
    bad = detector_scan(site, "P/20260105_110300_bad,name.h5")
    os.utime(bad, (time.time() - 600, time.time() - 600))
    registry = CollectorRegistry()
    registry.register(Bl832Collector(site, instance))
    samples = _parse(generate_latest(registry).decode())
    assert _value(samples, "bl832_detector_scans_waiting") == 2
    assert 600 <= _value(samples, "bl832_detector_oldest_waiting_scan_age_seconds") < 660


# -- the Pushgateway -------------------------------------------------------------------------------


def _pushes(httpserver: HTTPServer, count: int) -> list[Samples]:
    deadline = time.monotonic() + 30
    while len(httpserver.log) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(httpserver.log) >= count
    return [_parse(request.get_data().decode()) for request, _ in httpserver.log]


def test_push_sends_the_scraped_metrics_to_the_gateway_every_interval(
    site: Settings, instance: dg.DagsterInstance, httpserver: HTTPServer
) -> None:
    detector_scan(site, "P/20260105_120000_new.h5")
    httpserver.expect_request("/metrics/job/bl832", method="PUT").respond_with_data("")
    target = PushTarget(httpserver.url_for("/"), "bl832", interval_seconds=0.2)
    with exporting(Bl832Collector(site, instance), "127.0.0.1", 0, push=target) as url:
        pushed = _pushes(httpserver, 2)
        scraped = _scrape(url)
    assert all(request.method == "PUT" for request, _ in httpserver.log)
    for samples in [*pushed, scraped]:
        assert _value(samples, "bl832_detector_scans_waiting") == 1


def test_a_failing_push_is_reported_and_tried_again(
    site: Settings,
    instance: dg.DagsterInstance,
    httpserver: HTTPServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    httpserver.expect_request("/metrics/job/bl832").respond_with_data("down", status=503)
    target = PushTarget(httpserver.url_for("/"), "bl832", interval_seconds=0.2)
    with exporting(Bl832Collector(site, instance), "127.0.0.1", 0, push=target):
        _pushes(httpserver, 2)
    reported = capsys.readouterr().err
    assert f"bl832 metrics: push to {httpserver.url_for('/')}" in reported and "503" in reported


def test_push_without_a_gateway_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BL832_HOME", str(tmp_path / "site"))
    monkeypatch.delenv("BL832_CONFIG", raising=False)
    assert main(["metrics", "--push"]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == (
        "bl832 metrics: error: metrics.pushgateway: --push needs the Pushgateway's address"
    )
