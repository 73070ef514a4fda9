"""Synthetic 7.0.1.2 ptychography scans of a known object with a known probe, written as CXI.

Used by tests and demos in place of COSMIC data, so a reconstruction can be scored against the
truth. The object is a complex transmission whose amplitude and phase show *different* patterns
(a Siemens star and discs in amplitude, smooth blobs and bars in phase), so crosstalk between
the two is visible. The probe is a focused beam seen out of focus: a Gaussian spot with a
quadratic phase, which spreads its far field over the detector as a zone plate's does.

Positions follow a Fermat spiral, whose spacing is even without the periodic grid that lets a
raster scan's probe and object trade a pattern between them. They are whole object pixels, so the
truth needs no interpolation; the file stores them in metres, as a beamline does.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bl832_assets.beamlines.bl7012.cxi import ELECTRONVOLT, PLANCK_TIMES_C, CxiHeader, write_scan
from bl832_assets.beamlines.bl7012.grid import illumination, object_shape

ENERGY_EV = 800.0  # soft X-rays, as at COSMIC
DISTANCE_M = 0.121
DETECTOR_PIXEL_M = 30e-6
GOLDEN_ANGLE = math.pi * (3 - math.sqrt(5))
FWHM_PER_SIGMA = 2 * math.sqrt(math.log(2))  # intensity FWHM per sigma of a Gaussian amplitude


@dataclass(frozen=True)
class SyntheticScan:
    """A scan written to ``path`` and the truth it was made from."""

    path: Path
    object: np.ndarray  # complex transmission on the object grid
    probe: np.ndarray  # complex, frame-sized, on the object grid
    positions: np.ndarray  # (frames, 2) int: the probe window's top-left (row, column)
    beam_diameter_px: float  # intensity FWHM of the probe

    def illumination(self) -> np.ndarray:
        """The true probe's dose on the object: where the scan measured it."""
        return illumination(self.probe, self.positions, self.object.shape)


def scan_file_name(day: dt.date, number: int, suffix: str = "") -> str:
    """COSMIC's name for a scan: ``NS_<YYMMDD><NNN>_ccdframes_0_0<suffix>.cxi``."""
    if not 0 <= number <= 999:
        raise ValueError(f"scan number must be 0..999, got {number}")
    return f"NS_{day:%y%m%d}{number:03d}_ccdframes_0_0{suffix}.cxi"


def known_probe(size: int, sigma_px: float, curvature: float) -> np.ndarray:
    """A Gaussian spot of ``sigma_px`` (amplitude) with phase ``curvature · r²`` radians."""
    axis = np.square(np.arange(size) - (size - 1) / 2)
    r2 = axis[:, None] + axis[None, :]
    return np.exp(-r2 / (2 * sigma_px**2) + 1j * curvature * r2)


def known_object(shape: tuple[int, int]) -> np.ndarray:
    """The test pattern on a grid of ``shape``, drawn in coordinates of the field's half-width so
    every size shows the same object, with its features where a scan centred on the field lights
    it. Amplitude 0.5..1, phase 0..about 1 rad."""
    rows, columns = shape
    half = max(rows, columns) / 2
    y, x = np.mgrid[:rows, :columns]
    v, u = (y - rows / 2) / half, (x - columns / 2) / half
    radius, angle = np.hypot(u + 0.12, v + 0.1), np.arctan2(v + 0.1, u + 0.12)
    star = (radius < 0.3) & (np.sin(8 * angle) > 0)
    discs = sum(
        np.hypot(u - cu, v - cv) < r for cu, cv, r in ((0.3, -0.32, 0.1), (0.25, 0.3, 0.08))
    )
    amplitude = 1.0 - 0.5 * star - 0.2 * np.clip(discs, 0, 1)
    blobs = sum(
        h * np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / w**2)
        for cu, cv, w, h in ((-0.25, 0.25, 0.2, 0.9), (0.15, -0.3, 0.15, 0.6))
    )
    bars = (np.abs(u - 0.32) < 0.12) & (np.abs(v - 0.15) < 0.25) & (np.sin(12 * math.pi * v) > 0)
    phase = blobs + 0.5 * bars
    return amplitude * np.exp(1j * phase)


def spiral_positions(count: int, step_px: float) -> np.ndarray:
    """``count`` points of a Fermat spiral ``step_px`` apart on average, rounded to whole pixels,
    as (row, column) with the smallest at 0."""
    k = np.arange(count)
    radius = step_px / math.sqrt(math.pi) * np.sqrt(k)  # each point owns an area of step²
    points = np.stack([radius * np.sin(k * GOLDEN_ANGLE), radius * np.cos(k * GOLDEN_ANGLE)], 1)
    points = np.rint(points).astype(int)
    return points - points.min(axis=0)


def far_field(exit_waves: np.ndarray) -> np.ndarray:
    """Far-field intensities of exit waves, zero frequency in the middle as a detector sees it."""
    spectrum = np.fft.fft2(exit_waves, norm="ortho")
    return np.abs(np.fft.fftshift(spectrum, axes=(-2, -1))) ** 2


def _header(probe_guess: np.ndarray, positions: np.ndarray, frame_size: int) -> CxiHeader:
    wavelength = PLANCK_TIMES_C / (ENERGY_EV * ELECTRONVOLT)
    pixel = wavelength * DISTANCE_M / (frame_size * DETECTOR_PIXEL_M)  # object plane
    xy = positions[:, [1, 0]] * pixel
    return CxiHeader(
        frames=len(positions),
        frame_shape=(frame_size, frame_size),
        wavelength_m=wavelength,
        distance_m=DISTANCE_M,
        pixel_size_m=(DETECTOR_PIXEL_M, DETECTOR_PIXEL_M),
        translations_m=np.pad(-xy, ((0, 0), (0, 1))),  # the sample moves opposite the probe
        probe=probe_guess,
    )


def write_synthetic_scan(
    path: str | Path,
    *,
    frame_size: int = 32,
    positions: int = 50,
    overlap: float = 0.7,
    beam_sigma_px: float = 5.0,
    curvature: float = 0.03,
    photons: float = 1e6,
    seed: int = 0,
) -> SyntheticScan:
    """Write a scan of ``known_object`` to ``path`` and return it with its truth.

    Neighbouring positions overlap by ``overlap`` of the beam's diameter (its intensity FWHM).
    Each frame holds about ``photons`` counts with Poisson noise from ``seed``. The file's probe
    guess is what a beamline knows before reconstructing: the spot's size, not its phase.
    """
    if not 0 < overlap < 1:
        raise ValueError(f"overlap must be between 0 and 1, got {overlap}")
    rng = np.random.default_rng(seed)
    diameter = FWHM_PER_SIGMA * beam_sigma_px
    corners = spiral_positions(positions, (1 - overlap) * diameter)
    probe = known_probe(frame_size, beam_sigma_px, curvature)
    truth = known_object(object_shape(corners, (frame_size, frame_size)))
    windows = np.stack([truth[r : r + frame_size, c : c + frame_size] for r, c in corners])
    intensities = far_field(probe * windows)
    counts = rng.poisson(intensities * photons / intensities.sum(axis=(1, 2)).mean())
    guess = known_probe(frame_size, beam_sigma_px, 0.0)
    write_scan(path, _header(guess, corners, frame_size), counts)
    return SyntheticScan(Path(path), truth, probe, corners, diameter)
