"""Site commands: they load the settings, open the site's Dagster instance and act on it."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import dagster as dg

from bl832_assets.cli.table import render
from bl832_assets.definitions import build_definitions
from bl832_assets.dispatch import as_sensor_result, prepare, register
from bl832_assets.execution import RunReport, execute
from bl832_assets.partitions import scan_key
from bl832_assets.pools import apply_pool_limits
from bl832_assets.science.dx import read_metadata
from bl832_assets.sensors import evaluate_tick
from bl832_assets.settings import Environment, Settings, load_settings


def site_instance(settings: Settings) -> dg.DagsterInstance:
    """The persistent instance: ``$DAGSTER_HOME`` if the operator set one, else the site's."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home)))
    home.mkdir(parents=True, exist_ok=True)
    instance = dg.DagsterInstance.get()
    apply_pool_limits(instance, settings)
    return instance


def pools() -> int:
    """``bl832 pools``: write the settings' pool limits into the site's instance."""
    settings = load_settings()
    site_instance(settings)
    for pool, limit in settings.pools.items():
        print(f"pool {pool}: {limit} step(s) at once")
    return 0


def _place_on_detector(settings: Settings, scan: Path, folder: str) -> str:
    """Copy ``scan`` into the detector folder the way the detector writes: complete, then named."""
    relative = f"{folder}/{scan.name}"
    target = settings.root(settings.detector) / relative
    if target.exists() and target.samefile(scan):
        return relative
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    shutil.copyfile(scan, partial)
    os.replace(partial, target)
    return relative


def _report(report: RunReport, scan: Path) -> int:
    print(render(report))
    if report.succeeded:
        return 0
    print(f"bl832: {scan}: {'; '.join(report.failures())}", file=sys.stderr)
    return 1


def process(scan: Path, folder: str | None) -> int:
    """``bl832 process SCAN.h5``: what the detector and the sensor would do, done now."""
    settings = load_settings()
    scan_key(scan.name)  # refuse a bad name before anything is copied
    metadata = read_metadata(scan)
    relative = _place_on_detector(settings, scan, folder or metadata.proposal or "unsorted")
    announced = as_sensor_result(prepare(settings, relative), **{"bl832/trigger": "process"})
    return _run(settings, announced)


def _run(settings: Settings, announced: dg.SensorResult) -> int:
    """Apply a sensor result to the site's instance and execute its run requests here."""
    instance = site_instance(settings)
    register(instance, announced)
    defs = build_definitions(settings)
    status = 0
    for request in announced.run_requests or []:
        report = execute(defs, instance, request)
        print(f"\nrun {report.run_id} for scan {request.partition_key}")
        event = next(e for e in announced.asset_events if e.partition == request.partition_key)
        status |= _report(report, Path(str(event.metadata["path"].value)))
        _preview(settings, report)
    return status


def _preview(settings: Settings, report: RunReport) -> None:
    from bl832_assets.science.preview import write_slice_png

    tiffs = next((o for o in report.outcomes if o.asset == "data832/recon_tiff"), None)
    if tiffs is None or tiffs.status != "materialized":
        return
    slices = sorted(Path(tiffs.location).glob("*.tif*"))
    png = settings.home / "previews" / f"{report.partition}_middle_slice.png"
    write_slice_png(slices[len(slices) // 2], png)
    print(f"middle slice: {png}")


def demo(facilities: str = "local", beamline: str | None = None) -> int:
    """``bl832 demo``: a synthetic scan from the detector to the pyramid, then a dataset of
    every other beamline through its graph (``--beamline`` picks one).

    ``local`` runs on the embedded backends of the site's settings. ``fake`` starts the four
    facility fakes and runs the same graphs through the production resources (globus-sdk,
    sfapi-client, globus-compute-sdk, pyscicat) pointed at them."""
    if facilities == "local":
        status = _demo_beamlines(load_settings(), beamline)
        print("\nBrowse the lineage: `make dev`, then http://127.0.0.1:3000 (Assets → Lineage).")
        return status
    from bl832_assets.fakes.site import running_fakes

    home = Environment().home.absolute() / "facilities"
    with running_fakes(home) as fakes:
        os.environ.update(fakes.environment)  # the resources read their secrets from here
        settings = Settings.model_validate(fakes.settings)
        print(f"demo: fakes of Globus, NERSC SF API, Globus Compute and SciCat under {home}")
        status = _demo_beamlines(settings, beamline)
        print(
            f"\nfakes: {len(fakes.globus.tasks)} Globus task(s), {len(fakes.sfapi.jobs)} Slurm "
            f"job(s), {len(fakes.compute.tasks)} Compute task(s), "
            f"{len(fakes.scicat.datasets)} SciCat dataset(s)"
        )
    print(
        "\nThe fakes stopped with the demo. For the UI against them: `make fakes`, then the "
        "`make dev` line it prints."
    )
    return status


def _demo_beamlines(settings: Settings, beamline: str | None) -> int:
    """8.3.2's demo, then each configured beamline's, or only ``beamline``'s."""
    from bl832_assets.cli.beamline_demo import demo_beamline, section_name

    if beamline in (None, "8.3.2", "bl832"):
        status = _demo(settings)
        if beamline is not None:
            return status
        names = list(settings.beamlines)
    else:
        status, names = 0, [section_name(settings, str(beamline))]
    for name in names:
        status |= demo_beamline(settings, name)
    return status


DEMO_SCAN = {"columns": 160, "rows": 16, "angles": 181, "centre_offset": 3.5}
"""The demo's synthetic scan: 160 columns make 160 x 160 slices, just over one 128-voxel
pyramid chunk, so the pyramid has two levels (as every real scan's has several) while the
whole demo stays under half a minute."""

DEMO_RETENTION_DAYS = {"data832_raw": 35, "data832_scratch": 14}
"""What the demo's prune keeps; every other pruned location drops to 0 days, so the scan just
made is due there at once and the prune acts on it."""


def _demo(site: Settings) -> int:
    """Every facility's reconstruction is switched on for the demo (the site's own switches
    stay as they are for real scans), so that one scan materializes every asset; retention days
    are shortened so that the demo ends with a prune."""
    from bl832_assets.science.synth import write_synthetic_scan

    everywhere = {f"{facility}_recon": True for facility in site.hpc}
    days = {name: DEMO_RETENTION_DAYS.get(name, 0.0) for name in site.retention_days}
    settings = site.model_copy(
        update={
            "decision": site.decision.model_copy(update=everywhere),
            "retention_days": days,
        }
    )
    print(f"demo: new_file_832 on, reconstruction at {', '.join(site.hpc)}")
    name = time.strftime("%Y%m%d_%H%M%S") + "_demo_phantom.h5"
    folder = settings.root(settings.detector) / "BLS-00564_demo"
    scan = write_synthetic_scan(folder / name, **DEMO_SCAN)
    print(f"detector wrote {scan}")
    settle = settings.sensor.settle_seconds
    print(f"waiting {settle:g} s for the file to settle (sensor.settle_seconds)")
    time.sleep(settle)
    tick = evaluate_tick(settings, site_instance(settings), cursor=None)
    print(f"sensor new_scans: {len(tick.run_requests or [])} run request(s)")
    if not tick.run_requests:
        print(f"sensor skipped: {tick.skip_reason}", file=sys.stderr)
        return 1
    status = _run(settings, tick)
    return status or _demo_prune(settings, tick.run_requests[0].partition_key)


def _demo_prune(settings: Settings, scan: str) -> int:
    """Retention acting on the scan just made: a byte of the copy at one facility is flipped
    first, so that besides deletions and keeps the prune shows a refusal and its reason."""
    from bl832_assets.cli.retention import prune
    from bl832_assets.retention.resource import open_ledger

    pruned = [site.raw for site in settings.hpc.values() if site.raw in settings.retention_days]
    endpoint = pruned[-1]
    copy = open_ledger(settings.ledger_url).get(scan, endpoint, "raw_scan")
    if copy is not None and settings.visible(endpoint):
        damaged = settings.root(endpoint) / copy.relative_path
        with damaged.open("r+b") as stream:
            stream.seek(-1, os.SEEK_END)
            last = stream.read(1)
            stream.seek(-1, os.SEEK_END)
            stream.write(bytes([last[0] ^ 0xFF]))
        print(f"\ndemo: flipped one byte of the {endpoint} copy, which retention must refuse")
    shown = ", ".join(f"{name} {days:g} d" for name, days in settings.retention_days.items())
    print(f"demo: retention shortened to {shown}; pruning every location\n")
    return prune(None, dry_run=False, settings=settings)
