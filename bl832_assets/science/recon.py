"""Reconstruct a scan into a folder of float32 TIFF slices, streaming slabs of sinograms.

The steps follow the upstream 8.3.2 pipeline (tomopy832): flat/dark normalisation (median,
per detector row), clamp to a minimum transmission, minus log, stripe (ring) removal, rotation
centre from the data, padded reconstruction with a Butterworth filter, crop, scaling to
attenuation per cm, circular mask.

Memory is set by the slab, not the scan: each worker process reads its own slab of rows
straight from the HDF5 file, reconstructs it and writes its slices, so peak memory is about
``workers x slab`` whatever the scan's size, and both cores stay busy. The output folder
``rec<stem>`` appears only when every slice is written, so a failed or killed job never leaves a
complete-looking reconstruction.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from bl832_assets.science.atomic import atomic_path
from bl832_assets.science.centre import (
    CentreEstimate,
    from_opposite_projections,
    from_sinograms,
)
from bl832_assets.science.dx import FLATS, THETA, Scan, open_scan
from bl832_assets.science.engines import get_engine
from bl832_assets.science.engines.geometry import circular_mask
from bl832_assets.science.errors import ScanFormatError
from bl832_assets.science.memory import peak_rss_mb
from bl832_assets.science.options import ReconOptions
from bl832_assets.science.rings import remove_stripes
from bl832_assets.science.tiffs import SliceDescription, slice_name, write_slice

Progress = Callable[[int, int], None]  # (slices done, slices in total)

MINIMUM_TRANSMISSION = 0.01  # as upstream: keeps opaque pixels from becoming +inf after the log
SLAB_ROWS = 16  # a multiple of every binning factor
CENTRE_ROWS = 128  # rows sampled, spread over the height, to find the rotation centre
_HALF_TURN_TOLERANCE = np.deg2rad(1.0)
STAGES = ("read", "normalise", "rings", "reconstruct", "write")


@dataclass(frozen=True)
class ReconSummary:
    output_dir: Path
    slices: int
    shape: tuple[int, int, int]  # (slices, rows, columns) of the reconstructed volume
    centre: CentreEstimate  # in unbinned detector columns
    options: ReconOptions  # as used, centre filled in
    pixel_size_um: float  # of the output voxels (binning included)
    seconds: float
    stage_seconds: dict[str, float]  # summed over workers
    peak_rss_mb: float  # the largest single process: the coordinator or one worker
    min_value: float  # attenuation, 1/cm
    max_value: float


@dataclass(frozen=True)
class _Plan:
    """What every worker needs to reconstruct any slab of the scan the same way."""

    scan_path: Path
    folder: Path
    stem: str
    options: ReconOptions
    centre: float
    angles: np.ndarray  # indices of the projections used
    pixel_size_um: float


@dataclass
class _SlabResult:
    slices: int
    low: float
    high: float
    stage_seconds: dict[str, float]
    peak_rss_mb: float  # of the worker that made it


def output_dir_for(scan_path: Path, out_dir: Path) -> Path:
    """``<out_dir>/rec<stem>``, the folder name every facility and the catalog expect."""
    return Path(out_dir) / f"rec{Path(scan_path).stem}"


def flat_and_dark(scan: Scan, rows: slice) -> tuple[np.ndarray, np.ndarray]:
    """Median flat and dark for ``rows``: the median shrugs off a frame hit by a zinger.

    A flat field no brighter than the dark anywhere (beam off, shutter closed, zeros written)
    would turn every projection into the clamp value; it is refused instead."""
    flat = np.median(scan.flat_frames(rows), axis=0)
    dark = np.median(scan.dark_frames(rows), axis=0)
    if not np.any(flat > dark):
        raise ScanFormatError(
            scan.path,
            FLATS,
            f"flat field is nowhere brighter than the dark field in detector rows "
            f"{rows.start}-{rows.stop}: beam off or shutter closed?",
        )
    return flat, dark


def minus_log(raw: np.ndarray, flat: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """Line integrals from counts. ``flat`` and ``dark`` broadcast against ``raw``."""
    transmission = (raw - dark) / np.maximum(flat - dark, 1e-6)
    return -np.log(np.maximum(transmission, MINIMUM_TRANSMISSION)).astype(np.float32)


def bin_sinograms(sinograms: np.ndarray, binning: int) -> np.ndarray:
    """Average ``binning`` rows and columns: (n, angles, cols) → (n/b, angles, cols/b)."""
    if binning == 1:
        return sinograms
    n, angles, columns = sinograms.shape
    usable = sinograms[: n - n % binning, :, : columns - columns % binning]
    shaped = usable.reshape(n // binning, binning, angles, columns // binning, binning)
    return shaped.mean(axis=(1, 4), dtype=np.float32)


def binned_centre(centre: float, binning: int) -> float:
    """The axis in binned columns: binned column j averages columns b*j to b*j + b - 1."""
    return (centre - (binning - 1) / 2) / binning


def opposite_index(theta: np.ndarray) -> int | None:
    """The projection half a turn after the first, or None when the scan has none."""
    target = theta[0] + np.pi
    index = int(np.argmin(np.abs(theta - target)))
    return index if abs(theta[index] - target) <= _HALF_TURN_TOLERANCE else None


def find_centre(scan: Scan) -> CentreEstimate:
    """Rotation centre in detector columns: from the 0°/180° pair when the scan has one,
    otherwise from sinograms (Vo's method)."""
    rows = slice(0, scan.metadata.rows, max(1, -(-scan.metadata.rows // CENTRE_ROWS)))
    flat, dark = flat_and_dark(scan, rows)
    opposite = opposite_index(scan.theta)
    if opposite is not None:
        first = minus_log(scan.projection(0, rows), flat, dark)
        mirror = minus_log(scan.projection(opposite, rows), flat, dark)
        return from_opposite_projections(first, mirror)
    middle = scan.metadata.rows // 2
    few = slice(max(0, middle - 2), min(scan.metadata.rows, middle + 2))
    flat, dark = flat_and_dark(scan, few)
    sinograms = minus_log(scan.sinograms(few), flat[:, None, :], dark[:, None, :])
    try:
        return from_sinograms(sinograms, scan.theta)
    except ValueError as exc:  # less than half a turn: no method can find the axis
        raise ScanFormatError(scan.path, THETA, f"{exc}; give the rotation centre") from exc


def _reconstruct_slab(plan: _Plan, start: int, stop: int) -> _SlabResult:
    """Detector rows [start, stop) → written slices. Runs in a worker process."""
    options, stages = plan.options, dict.fromkeys(STAGES, 0.0)
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        stages[stage] += now - clock
        clock = now

    rows = slice(start, stop)
    with open_scan(plan.scan_path) as scan:
        flat, dark = flat_and_dark(scan, rows)
        raw = scan.sinograms(rows)[:, plan.angles, :]
        theta = scan.theta[plan.angles]
        pixel_size_cm = scan.metadata.pixel_size_mm / 10.0 * options.binning
    lap("read")
    sinograms = bin_sinograms(minus_log(raw, flat[:, None, :], dark[:, None, :]), options.binning)
    del raw
    lap("normalise")
    sinograms = remove_stripes(sinograms, method=options.ring_removal)
    lap("rings")
    engine = get_engine(options.engine)
    per_pixel = engine.reconstruct(
        sinograms,
        theta,
        binned_centre(plan.centre, options.binning),
        filter_name=options.filter_name,
    )
    slices = circular_mask(per_pixel / np.float32(pixel_size_cm))
    lap("reconstruct")
    first_index = start // options.binning
    for offset, image in enumerate(slices):
        index = first_index + offset
        description = SliceDescription(
            plan.stem, index, plan.pixel_size_um, plan.centre, options=asdict(options)
        )
        write_slice(plan.folder / slice_name(plan.stem, index), image, description)
    lap("write")
    return _SlabResult(len(slices), float(slices.min()), float(slices.max()), stages, peak_rss_mb())


def _slabs(options: ReconOptions, detector_rows: int, slab_rows: int) -> list[tuple[int, int]]:
    rows = options.rows(detector_rows)
    usable = rows.stop - (len(rows) % options.binning)
    return [(s, min(s + slab_rows, usable)) for s in range(rows.start, usable, slab_rows)]


def _plan(scan: Scan, options: ReconOptions) -> tuple[_Plan, CentreEstimate]:
    if options.output_slices(scan.metadata.rows) == 0:
        raise ScanFormatError(scan.path, "/exchange/data", "no detector rows to reconstruct")
    estimate = (
        CentreEstimate(options.centre, method="given", confidence=1.0)
        if options.centre is not None
        else find_centre(scan)
    )
    angles = np.arange(0, scan.metadata.angles, options.angle_step)
    if angles.size < 2:
        raise ScanFormatError(scan.path, THETA, f"angle_step {options.angle_step} leaves <2 angles")
    plan = _Plan(
        scan_path=scan.path,
        folder=Path(),  # set once the temporary output folder exists
        stem=scan.path.stem,
        options=options,
        centre=estimate.centre,
        angles=angles,
        pixel_size_um=scan.metadata.pixel_size_mm * 1000.0 * options.binning,
    )
    return plan, estimate


def reconstruct_scan(
    scan_path: str | Path,
    out_dir: str | Path,
    options: ReconOptions | None = None,
    *,
    progress: Progress | None = None,
    slab_rows: int = SLAB_ROWS,
    workers: int | None = None,
) -> ReconSummary:
    """Reconstruct ``scan_path`` into ``<out_dir>/rec<stem>/<stem>_NNNNN.tiff``.

    A previous ``rec<stem>`` is replaced only once the new one is complete.
    """
    started = time.monotonic()
    scan_path, options = Path(scan_path), options or ReconOptions()
    workers = workers or max(1, min(2, os.cpu_count() or 1))
    with open_scan(scan_path) as scan:  # refuse a bad scan before any output exists
        plan, estimate = _plan(scan, options)
        detector_rows, columns = scan.metadata.rows, scan.metadata.columns
    slabs = _slabs(options, detector_rows, slab_rows)
    total = options.output_slices(detector_rows)
    with atomic_path(output_dir_for(scan_path, out_dir)) as temp:
        temp.mkdir()
        results = _run_slabs(replace(plan, folder=temp), slabs, workers, total, progress)
    stage_seconds = {s: round(sum(r.stage_seconds[s] for r in results), 3) for s in STAGES}
    return ReconSummary(
        output_dir=output_dir_for(scan_path, out_dir),
        slices=total,
        shape=(total, columns // options.binning, columns // options.binning),
        centre=estimate,
        options=options.overridden(centre=estimate.centre),
        pixel_size_um=plan.pixel_size_um,
        seconds=time.monotonic() - started,
        stage_seconds=stage_seconds,
        peak_rss_mb=max([peak_rss_mb(), *(r.peak_rss_mb for r in results)]),
        min_value=min(r.low for r in results),
        max_value=max(r.high for r in results),
    )


def _run_slabs(
    plan: _Plan,
    slabs: list[tuple[int, int]],
    workers: int,
    total: int,
    progress: Progress | None,
) -> list[_SlabResult]:
    """Keep ``workers`` processes busy with at most one queued slab each, so memory stays at
    a few slabs however many the scan has."""
    results: list[_SlabResult] = []
    pending: set[Future[_SlabResult]] = set()
    queue = iter(slabs)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        while True:
            while len(pending) < 2 * workers and (slab := next(queue, None)) is not None:
                pending.add(pool.submit(_reconstruct_slab, plan, *slab))
            if not pending:
                return results
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                results.append(future.result())
            if progress is not None:
                progress(sum(r.slices for r in results), total)
