"""``bl832 backfill`` against a real webserver and a real ``dagster-daemon`` on a site's own
instance: historic scans found by ``bl832 discover`` are reprocessed with a new filter, the
NERSC pool's limit holds across concurrent runs, an export-controlled scan gets nothing off
site, and a new scan from the sensor jumps the queue ahead of the backfill's runs."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster_services import (
    BIN,
    daemon,
    run_bl832,
    site_environment,
    wait_for,
    wait_for_daemon,
    webserver,
)
from scan_support import detector_scan

from bl832_assets import keys
from bl832_assets.science.synth import write_synthetic_scan
from bl832_assets.settings import Decision, SensorSettings, Settings

MARCH = [f"20240305_1200{i}_hist" for i in range(5)]
CONTROLLED = "20240306_090000_hist_controlled"
LAST_YEAR = "20230611_080000_hist_old"
NEW_SCAN = "20261203_120000_live"
NERSC_POOL = 1
NERSC_STEPS = {"nersc__recon_tiff", "nersc__recon_zarr"}  # the steps in pool "nersc"


@dataclass
class Site:
    folder: Path
    settings: Settings
    env: dict[str, str]

    def bl832(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """``bl832 ARGS`` on the site; its exit status is the test's to check."""
        return run_bl832(self.env, *args, timeout=timeout, check=False)

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(self.env["DAGSTER_HOME"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """Seven historic scans on data832 (five in March 2024, one of them export controlled as
    a sixth, one from 2023), registered by ``bl832 discover``; NERSC reconstructs, one job at
    a time; two runs at once, so the queue holds the rest."""
    folder = tmp_path_factory.mktemp("backfill")
    settings = Settings(
        home=folder / "site",
        sensor=SensorSettings(settle_seconds=1.0, interval_seconds=2, lookback_hours=24),
        decision=Decision(nersc_recon=True),
        pools={"globus": 4, "nersc": NERSC_POOL, "alcf": 2, "olcf": 2},
    )
    env = site_environment(
        folder,
        settings.model_dump(mode="json"),
        instance={"concurrency": {"runs": {"max_concurrent_runs": 2}}},
    )
    raw = settings.root(settings.beamline_raw)
    for name in [*MARCH, LAST_YEAR]:
        write_synthetic_scan(raw / "BLS-1" / f"{name}.h5", columns=32, rows=2, angles=31)
    write_synthetic_scan(
        raw / "BLS-1" / f"{CONTROLLED}.h5", columns=32, rows=2, angles=31, export_control=True
    )
    site = Site(folder, settings, env)
    found = site.bl832("discover", settings.beamline_raw)
    assert found.returncode == 0, found.stderr
    assert "7 registered, 0 already known, 0 refused" in found.stdout
    return site


@pytest.fixture(scope="module")
def url(site: Site) -> Iterator[str]:
    with webserver(site.env, site.folder) as base:
        yield base


def test_without_a_webserver_it_says_where_it_looked(site: Site) -> None:
    result = site.bl832("backfill", "nersc/raw_scan+", "--url", "http://127.0.0.1:9", "--wait")
    assert result.returncode == 1
    assert "no Dagster webserver answers at http://127.0.0.1:9" in result.stderr
    assert "make dev" in result.stderr


def test_wait_without_a_daemon_launches_nothing_and_says_how_to_start_one(
    site: Site, url: str
) -> None:
    result = site.bl832("backfill", "nersc/raw_scan+", "--url", url, "--wait")
    assert result.returncode == 1
    assert "no dagster-daemon is running" in result.stderr
    assert "dagster-daemon run" in result.stderr
    with site.instance() as instance:
        assert instance.get_backfills() == []


def test_a_daemon_runs_the_backfill_within_pools_below_new_scans(site: Site, url: str) -> None:
    with daemon(site.env, site.folder) as process:
        wait_for_daemon(url, process, site.folder / "daemon.log")
        backfill = subprocess.Popen(
            [
                str(BIN / "bl832"),
                "backfill",
                "nersc/raw_scan+",
                "--since",
                "2024-03-01",
                "--until",
                "2024-03-31",
                "--recon",
                "filter_name=hann",
                "--url",
                url,
                "--wait",
            ],
            env=site.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            with site.instance() as instance:
                # The scan arrives once the backfill fills both run slots, with more queued.
                wait_for(
                    "two backfill runs started", lambda: len(_started(instance)) >= 2, 180, 0.5
                )
                detector_scan(site.settings, f"BLS-2/{NEW_SCAN}.h5")
            out, err = backfill.communicate(timeout=480)
        finally:
            if backfill.poll() is None:
                backfill.kill()
        assert backfill.returncode == 0, out + err
        with site.instance() as instance:
            wait_for("finished live run", lambda: _finished(instance), 120, 0.5)
            runs = _runs(instance, "dagster/backfill")
            live = _runs(instance, "bl832/trigger", "new_scans")
            _check_outcome(instance, runs, live)
    assert "COMPLETED_SUCCESS" in out
    assert "1 export-controlled scan(s) get no" in out
    # Historic scans have no raw catalog record, which the derived one links to.
    assert "added catalog/raw_dataset" in out
    assert f"5 scan(s), open: {keys.key('archive', 'recon_tiff').to_user_string()}" in out


def _check_outcome(
    instance: dg.DagsterInstance,
    runs: list[dg.RunRecord],
    live: list[dg.RunRecord],
) -> None:
    # Every March scan, and only those, was reprocessed, with the backfill's filter.
    assert sorted(r.dagster_run.tags["dagster/partition"] for r in runs) == sorted(MARCH)
    assert all(r.dagster_run.tags["dagster/priority"] == "-1" for r in runs)
    # NERSC runs the payload here (local backend), so the runs go to the local-recon queue.
    assert {r.dagster_run.tags["dagster-celery/queue"] for r in runs} == {"local-recon"}
    for scan in MARCH:
        tiff = _latest(instance, keys.key("nersc", keys.RECON_TIFF), scan)
        assert tiff.metadata["options"].value["filter_name"] == "hann"
        assert _latest(instance, keys.BEAMLINE_ZARR, scan) is not None
    # Export control held: the controlled scan has nothing new off site (nor anywhere).
    assert _latest(instance, keys.key("nersc", keys.RAW_SCAN), CONTROLLED) is None
    assert _latest(instance, keys.key("nersc", keys.RECON_TIFF), LAST_YEAR) is None
    # The pool: never more NERSC jobs at once than its limit, across the concurrent runs.
    spans = _nersc_step_spans(instance, [r.dagster_run.run_id for r in runs + live])
    assert len(spans) == 2 * (len(MARCH) + 1)
    assert _most_at_once(spans) == NERSC_POOL
    # Priority: queued after every backfill run, the live run leaves the queue ahead of those
    # still waiting (first in first out, it would leave last). One backfill run may leave just
    # after it was queued: a queue pass that began a moment before it, with a slot just freed.
    assert len(live) == 1
    queued = _event_time(instance, live[0], dg.DagsterEventType.RUN_ENQUEUED)
    assert all(_event_time(instance, r, dg.DagsterEventType.RUN_ENQUEUED) < queued for r in runs)
    left_queue = {
        r.dagster_run.run_id: _event_time(instance, r, dg.DagsterEventType.RUN_STARTING)
        for r in runs + live
    }
    order = [run_id for _, run_id in sorted((t, i) for i, t in left_queue.items() if t > queued)]
    place = order.index(live[0].dagster_run.run_id)
    assert place <= 1, f"the live run left the queue after {place} backfill runs"
    assert len(order) - place - 1 >= 2, "too few backfill runs were left behind it to tell"


def _runs(instance: dg.DagsterInstance, tag: str, value: str | None = None) -> list[dg.RunRecord]:
    if value is None:
        return [r for r in instance.get_run_records() if tag in r.dagster_run.tags]
    return list(instance.get_run_records(filters=dg.RunsFilter(tags={tag: value})))


def _started(instance: dg.DagsterInstance) -> list[dg.RunRecord]:
    return [
        r
        for r in _runs(instance, "dagster/backfill")
        if r.dagster_run.status == dg.DagsterRunStatus.STARTED
    ]


def _event_time(
    instance: dg.DagsterInstance, run: dg.RunRecord, kind: dg.DagsterEventType
) -> float:
    return next(e.timestamp for e in instance.all_logs(run.dagster_run.run_id, of_type=kind))


def _finished(instance: dg.DagsterInstance) -> bool:
    live = _runs(instance, "bl832/trigger", "new_scans")
    return bool(live) and all(r.dagster_run.is_finished for r in live)


def _latest(
    instance: dg.DagsterInstance, key: dg.AssetKey, scan: str
) -> dg.AssetMaterialization | None:
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[scan]), limit=1
    )
    return result.records[0].asset_materialization if result.records else None


def _nersc_step_spans(
    instance: dg.DagsterInstance, run_ids: list[str]
) -> list[tuple[float, float]]:
    """Start and end of every NERSC step (the pool's steps), from the runs' event logs."""
    spans = []
    for run_id in run_ids:
        begun: dict[str, float] = {}
        for entry in instance.all_logs(run_id):
            step = entry.step_key or ""
            if step not in NERSC_STEPS:
                continue
            kind = entry.dagster_event_type
            if kind == dg.DagsterEventType.STEP_START:
                begun[step] = entry.timestamp
            elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                spans.append((begun.pop(step), entry.timestamp))
    return spans


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = most = 0
    for _, change in edges:
        running += change
        most = max(most, running)
    return most
