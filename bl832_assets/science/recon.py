"""Reconstruct a scan into a folder of float32 TIFF slices, a slab of rows at a time.

The steps follow the upstream 8.3.2 pipeline (tomopy832): flat/dark normalisation, clamp to a
minimum transmission, minus log, rotation centre by phase correlation, filtered back-projection,
scaling to attenuation per cm, circular mask. Ring removal and phase retrieval are not done yet.

Memory is bounded by one slab of sinograms (``slab_rows`` by angles by columns) read straight from
the HDF5 file, never by the scan. The output folder ``rec<stem>`` appears only when every slice
is written, so a failed or killed job never leaves a complete-looking reconstruction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bl832_assets.science import fbp
from bl832_assets.science.atomic import atomic_path
from bl832_assets.science.centre import estimate_centre
from bl832_assets.science.dx import THETA, Scan, open_scan
from bl832_assets.science.errors import ScanFormatError
from bl832_assets.science.tiffs import SliceDescription, slice_name, write_slice

Progress = Callable[[int, int], None]  # (slices done, slices in total)

MINIMUM_TRANSMISSION = 0.01  # as upstream: keeps opaque pixels from becoming +inf after the log
SLAB_ROWS = 16
CENTRE_ROWS = 128  # rows sampled, spread over the height, to find the rotation centre
_HALF_TURN_TOLERANCE = np.deg2rad(1.0)


@dataclass(frozen=True)
class ReconSummary:
    output_dir: Path
    slices: int
    shape: tuple[int, int, int]  # (slices, rows, columns) of the reconstructed volume
    centre: float  # rotation centre, in detector columns
    pixel_size_um: float
    seconds: float
    min_value: float  # attenuation, 1/cm
    max_value: float


def output_dir_for(scan_path: Path, out_dir: Path) -> Path:
    """``<out_dir>/rec<stem>``, the folder name every facility and the catalog expect."""
    return Path(out_dir) / f"rec{Path(scan_path).stem}"


def flat_and_dark(scan: Scan, rows: slice) -> tuple[np.ndarray, np.ndarray]:
    """Median flat and dark for ``rows``: the median shrugs off a frame hit by a zinger."""
    return np.median(scan.flat_frames(rows), axis=0), np.median(scan.dark_frames(rows), axis=0)


def minus_log(raw: np.ndarray, flat: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """Line integrals from counts. ``flat`` and ``dark`` broadcast against ``raw``."""
    transmission = (raw - dark) / np.maximum(flat - dark, 1e-6)
    return -np.log(np.maximum(transmission, MINIMUM_TRANSMISSION)).astype(np.float32)


def opposite_index(scan: Scan) -> int:
    """The projection half a turn after the first, which the centre estimate mirrors."""
    target = scan.theta[0] + np.pi
    index = int(np.argmin(np.abs(scan.theta - target)))
    if abs(scan.theta[index] - target) > _HALF_TURN_TOLERANCE:
        raise ScanFormatError(
            scan.path, THETA, "no projection 180° after the first; give the rotation centre"
        )
    return index


def find_centre(scan: Scan) -> float:
    """Rotation centre in detector columns, from rows spread over the whole height."""
    rows = slice(0, scan.metadata.rows, max(1, -(-scan.metadata.rows // CENTRE_ROWS)))
    flat, dark = flat_and_dark(scan, rows)
    first = minus_log(scan.projection(0, rows), flat, dark)
    opposite = minus_log(scan.projection(opposite_index(scan), rows), flat, dark)
    return estimate_centre(first, opposite)


def reconstruct_rows(
    scan: Scan, rows: slice, centre: float, filter_name: fbp.FilterName
) -> np.ndarray:
    """Slices for detector ``rows``, in attenuation per cm, masked outside the circle."""
    flat, dark = flat_and_dark(scan, rows)
    sinograms = minus_log(scan.sinograms(rows), flat[:, None, :], dark[:, None, :])
    per_pixel = fbp.reconstruct_slab(sinograms, scan.theta, centre, filter_name)
    pixel_size_cm = scan.metadata.pixel_size_mm / 10.0
    return fbp.circular_mask(per_pixel / np.float32(pixel_size_cm))


def reconstruct_scan(
    scan_path: str | Path,
    out_dir: str | Path,
    *,
    progress: Progress | None = None,
    centre: float | None = None,
    slab_rows: int = SLAB_ROWS,
    filter_name: fbp.FilterName = "butterworth",
) -> ReconSummary:
    """Reconstruct every row of ``scan_path`` into ``<out_dir>/rec<stem>/<stem>_NNNNN.tiff``.

    ``centre`` (detector column of the rotation axis) is estimated from the data when None.
    A previous ``rec<stem>`` is replaced only once the new one is complete.
    """
    started = time.monotonic()
    scan_path = Path(scan_path)
    stem = scan_path.stem
    low, high = np.inf, -np.inf
    with open_scan(scan_path) as scan, atomic_path(output_dir_for(scan_path, out_dir)) as temp:
        temp.mkdir()
        total = scan.metadata.rows
        centre = find_centre(scan) if centre is None else float(centre)
        pixel_size_um = scan.metadata.pixel_size_mm * 1000.0
        for start in range(0, total, slab_rows):
            rows = slice(start, min(start + slab_rows, total))
            slab = reconstruct_rows(scan, rows, centre, filter_name)
            low, high = min(low, float(slab.min())), max(high, float(slab.max()))
            for index, image in enumerate(slab, start=start):
                description = SliceDescription(stem, index, pixel_size_um, centre)
                write_slice(temp / slice_name(stem, index), image, description)
            if progress is not None:
                progress(rows.stop, total)
        columns = scan.metadata.columns
    return ReconSummary(
        output_dir=output_dir_for(scan_path, out_dir),
        slices=total,
        shape=(total, columns, columns),
        centre=centre,
        pixel_size_um=pixel_size_um,
        seconds=time.monotonic() - started,
        min_value=low,
        max_value=high,
    )
