"""Azimuthal integration of a 7.3.3 image into a 1-D profile I(q) with pyFAI, the product that
upstream only plans, and the Bragg peaks of that profile.

Pixels the detector marks as absent (negative values: the Pilatus's module gaps) are always
left out, and so are those of the beamline's mask (the beamstop's shadow); bins that no pixel
reaches are dropped rather than reported as zero intensity, so the profile's first point is the
beamstop's edge and not a false peak. q is in 1/Å, as SAXS users at the ALS quote it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyFAI.integrator.azimuthal import AzimuthalIntegrator
from scipy import signal

from bl832_assets.beamlines.bl733.geometry import Geometry
from bl832_assets.beamlines.bl733.settings import DEFAULT_NPT
from bl832_assets.science.atomic import atomic_path

Q_UNIT = "q_A^-1"  # pyFAI's name for q in 1/Å
PEAK_SIGNIFICANCE = 5.0  # standard errors a peak must rise above its surroundings
MIN_PEAK_WIDTH_BINS = 2.0  # anything narrower is one noisy bin, not a ring
CSV_COLUMNS = ("q_A^-1", "intensity", "sigma")


@dataclass(frozen=True)
class Profile:
    """Mean intensity per q bin and its standard error (Poisson statistics of the counts)."""

    q: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray


def integrator(geometry: Geometry) -> AzimuthalIntegrator:
    """pyFAI's integrator for ``geometry``, whose pixel size must be known by now."""
    if geometry.pixel_size_m is None:
        raise ValueError("the geometry has no pixel size: take it from the EDF header first")
    (centre_row, centre_column), (row_size, column_size) = (
        geometry.beam_centre_px,
        geometry.pixel_size_m,
    )
    return AzimuthalIntegrator(
        dist=geometry.distance_m,
        poni1=centre_row * row_size,  # no detector tilt: the PONI is the beam centre
        poni2=centre_column * column_size,
        pixel1=row_size,
        pixel2=column_size,
        wavelength=geometry.wavelength_angstrom * 1e-10,
    )


def integrate(
    image: np.ndarray,
    geometry: Geometry,
    *,
    npt: int = DEFAULT_NPT,
    mask: np.ndarray | None = None,
) -> Profile:
    """The profile of ``image`` over ``npt`` q bins, solid angle corrected; ``mask`` is true
    where pixels must not count (negative pixels never count)."""
    invalid = np.asarray(image) < 0
    if mask is not None:
        if mask.shape != invalid.shape:
            raise ValueError(f"mask shape {mask.shape} differs from image shape {image.shape}")
        invalid |= mask.astype(bool)
    result = integrator(geometry).integrate1d(
        image, npt, unit=Q_UNIT, mask=invalid, error_model="poisson", correctSolidAngle=True
    )
    reached = np.asarray(result.count) > 0
    return Profile(
        q=np.asarray(result.radial)[reached],
        intensity=np.asarray(result.intensity)[reached],
        sigma=np.asarray(result.sigma)[reached],
    )


def _centroid(profile: Profile, index: int, half_width: int) -> float:
    """The peak's centre of mass above the straight line joining the ends of a window of
    ``half_width`` bins each side, re-centred once on its first estimate."""
    centre = float(profile.q[index])
    for _ in range(2):
        low, high = max(index - half_width, 0), min(index + half_width, profile.q.size - 1)
        q, intensity = profile.q[low : high + 1], profile.intensity[low : high + 1]
        baseline = np.interp(q, [q[0], q[-1]], [intensity[0], intensity[-1]])
        weights = np.clip(intensity - baseline, 0, None)
        if weights.sum() > 0:
            centre = float(np.sum(q * weights) / weights.sum())
        index = int(np.argmin(np.abs(profile.q - centre)))
    return centre


def find_peaks(profile: Profile, significance: float = PEAK_SIGNIFICANCE) -> np.ndarray:
    """q of each peak rising ``significance`` standard errors above its surroundings and wider
    than one bin, refined to a fraction of a bin by its centroid, in increasing q."""
    indices, properties = signal.find_peaks(
        profile.intensity, prominence=0, width=MIN_PEAK_WIDTH_BINS
    )
    strong = properties["prominences"] > significance * profile.sigma[indices]
    return np.array(
        [
            _centroid(profile, int(index), max(round(width), 1))
            for index, width in zip(indices[strong], properties["widths"][strong], strict=True)
        ]
    )


def write_profile(profile: Profile, path: str | Path, *, comment: str = "") -> Path:
    """The profile as CSV (``q_A^-1,intensity,sigma``), published whole under ``path``;
    ``comment`` lines go first, after ``#``."""
    path = Path(path)
    lines = [*comment.splitlines(), ",".join(CSV_COLUMNS)]
    with atomic_path(path) as temporary:
        np.savetxt(
            temporary,
            np.column_stack([profile.q, profile.intensity, profile.sigma]),
            delimiter=",",
            fmt="%.8g",
            header="\n".join(lines),
        )
    return path


def read_profile(path: str | Path) -> Profile:
    """A profile written by ``write_profile``."""
    q, intensity, sigma = np.loadtxt(path, delimiter=",", ndmin=2).T
    return Profile(q=q, intensity=intensity, sigma=sigma)
