"""``bl832 demo --beamline 7.3.3|7.0.1.2|9.3.1``: a synthetic dataset of that beamline through
its whole graph on this machine, by the same sensor tick, run and checks the daemon would use.

7.3.3's pair arrives one file at a time, so the demo shows the sensor holding the header until
its image comes; its profile is compared with the calibrant's true rings, and 7.0.1.2's
reconstruction with the known object the scan was simulated from.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import numpy as np

from bl832_assets.cli.table import render
from bl832_assets.core.codes import code_for
from bl832_assets.core.intake import dataset_intake
from bl832_assets.core.keys import BeamlineKeys
from bl832_assets.core.location import build_beamline_definitions
from bl832_assets.dispatch import register
from bl832_assets.execution import execute
from bl832_assets.sensors import run_tick
from bl832_assets.settings import Settings, SettingsError
from bl832_assets.watch import WatchCursor

if TYPE_CHECKING:  # the beamline packages load only for the demo that uses them
    from bl832_assets.beamlines.bl7012.synth import SyntheticScan

DEMO_SETTLE_SECONDS = 1.0
"""The demo's files are written whole at once; a short settle keeps it quick, and the sensor
still waits for it as it would for a detector."""


def section_name(settings: Settings, beamline: str) -> str:
    """The section of ``beamline``, given as its dotted id (7.3.3) or its name (bl733)."""
    for name, section in settings.beamlines.items():
        if beamline in (name, section.id):
            return name
    known = ", ".join(f"{s.id} ({n})" for n, s in settings.beamlines.items()) or "none"
    raise SettingsError(f"no beamline {beamline!r} in the settings (configured: {known})")


def demo_beamline(site: Settings, beamline: str) -> int:
    name = section_name(site, beamline)
    section = site.beamlines[name]
    quick = section.sensor.model_copy(update={"settle_seconds": DEMO_SETTLE_SECONDS})
    sections = {**site.beamlines, name: section.model_copy(update={"sensor": quick})}
    settings = site.model_copy(update={"beamlines": sections})
    keys = BeamlineKeys(name, settings.beamlines[name])
    from bl832_assets.cli.site import site_instance

    instance = site_instance(settings)
    intake = dataset_intake(settings, keys, code_for(keys.section))
    folder = settings.root(section.source) / f"demo_{time.strftime('%Y%m%d_%H%M%S')}"
    route = f"{section.source} → {', '.join(section.copies)}"
    print(f"\ndemo {section.id} ({name}, {section.kind}): {route}")
    cursor: str | None = None

    def tick(what: str) -> dg.SensorResult:
        nonlocal cursor
        time.sleep(DEMO_SETTLE_SECONDS * 1.5)
        result = run_tick(intake, instance, cursor, _Printer(folder.name))
        cursor = result.cursor
        print(f"sensor {intake.name} after {what}: {len(result.run_requests or [])} run request(s)")
        for held in WatchCursor.from_json(cursor).held:
            print(f"  sensor holds {held} until the rest of its dataset has settled")
        return result

    truth = _write(section.kind, folder, tick)
    result = tick("the last file")
    if not result.run_requests:
        print(f"sensor skipped: {result.skip_reason}", file=sys.stderr)
        return 1
    register(instance, result)
    defs = build_beamline_definitions(settings, name)
    status = 0
    for request in result.run_requests:
        report = execute(defs, instance, request)
        print(f"\nrun {report.run_id} for {section.id} dataset {request.partition_key}")
        print(render(report))
        if not report.succeeded:
            print(f"bl832: {'; '.join(report.failures())}", file=sys.stderr)
            status = 1
        else:
            status |= truth(settings, keys, request.partition_key)
    return status


class _Printer:
    """The sensor's warnings about this demo's folder (earlier demos' files are old news)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        if self.folder in msg:
            print(f"  sensor: {msg}")


Truth = Callable[[Settings, BeamlineKeys, str], int]


def _write(kind: str, folder: Path, tick: Callable[[str], dg.SensorResult]) -> Truth:
    """Write the beamline's synthetic dataset into ``folder`` and say how to judge the result."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "saxs":
        return _write_pair(folder, tick)
    if kind == "ptychography":
        from bl832_assets.beamlines.bl7012.synth import scan_file_name, write_synthetic_scan

        number = int(time.time()) % 1000  # COSMIC numbers a day's scans 000-999
        scan = write_synthetic_scan(folder / scan_file_name(dt.date.today(), number))
        print(f"detector wrote {scan.path} ({len(scan.positions)} positions)")
        return _object_truth(scan)
    import h5py

    path = folder / f"{folder.name}_spectrum.h5"
    with h5py.File(path, "w") as f:
        f["energy_ev"] = np.linspace(2100, 2200, 256)
        f["intensity"] = np.exp(-(((np.linspace(-1, 1, 256)) / 0.2) ** 2))
    print(f"instrument wrote {path}")
    return lambda *_: 0


def _write_pair(folder: Path, tick: Callable[[str], dg.SensorResult]) -> Truth:
    from bl832_assets.beamlines.bl733.synth import write_calibrant_pair

    with tempfile.TemporaryDirectory() as scratch:
        calibrant = write_calibrant_pair(scratch, f"agbh_cal_2m_{folder.name}")
        text, image = calibrant.pair.text, calibrant.pair.image
        assert text is not None and image is not None
        text.replace(folder / text.name)
        print(f"control program wrote {folder / text.name}")
        tick(text.name)
        image.replace(folder / image.name)
        print(f"detector wrote {folder / image.name}")
    rings = calibrant.rings_q

    def judge(settings: Settings, keys: BeamlineKeys, key: str) -> int:
        from bl832_assets.assets.records import latest_record
        from bl832_assets.cli.site import site_instance

        record = latest_record(site_instance(settings), keys.product, key)
        found = np.array(record.metadata.get("peaks_q", []) if record else [], dtype=float)
        near = [float(np.min(np.abs(found - q))) if found.size else np.inf for q in rings[:3]]
        print(
            f"profile: peaks at q = {', '.join(f'{q:.4f}' for q in found[:4])} 1/Å; "
            f"calibrant rings at {', '.join(f'{q:.4f}' for q in rings[:3])}; "
            f"worst of the first three off by {max(near):.4f}"
        )
        return 0 if max(near) < 0.01 else 1

    return judge


def _object_truth(scan: SyntheticScan) -> Truth:
    def judge(settings: Settings, keys: BeamlineKeys, key: str) -> int:
        from bl832_assets.beamlines.bl7012.accuracy import object_error
        from bl832_assets.beamlines.bl7012.code import recon_name
        from bl832_assets.beamlines.bl7012.cxi import read_image
        from bl832_assets.beamlines.bl7012.grid import well_lit

        home = next(settings.root(keys.placement.home).rglob(recon_name(key)))
        error = object_error(
            read_image(home),
            scan.object,
            well_lit(scan.illumination(), 0.25),
        )
        print(
            f"reconstruction at {home}: error against the known object {error:.3f} (0 is perfect)"
        )
        return 0 if error < 0.1 else 1

    return judge
