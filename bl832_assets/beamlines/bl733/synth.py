"""Synthetic 7.3.3 data: a silver behenate (AgBh) calibrant exposure written as the beamline
writes one, a Pilatus-style EDF image and a messy ``.txt`` header, so that tests and demos run
without beamline data and an integrated profile can be checked against the truth.

AgBh is the SAXS calibrant because its lamellae are 58.38 Å apart, which puts its rings at
q = 2πn/d. The image is computed from first principles here (the angle of each pixel centre
from the geometry, not through pyFAI), so the integration's geometry is checked against an
independent computation. It has what a real exposure has and a naive integration trips on:
Poisson noise, a steep small-angle background, the beamstop's shadow and the gap between two
Pilatus modules, which the detector fills with -1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fabio.edfimage import EdfImage

from bl832_assets.beamlines.bl733.dataset import IMAGE_SUFFIX, TEXT_SUFFIX, Pair
from bl832_assets.beamlines.bl733.geometry import CALIBRANT_GEOMETRY as DEFAULT_GEOMETRY
from bl832_assets.beamlines.bl733.geometry import Geometry
from bl832_assets.science.atomic import atomic_path

AGBH_D_SPACING_ANGSTROM = 58.38
PILATUS_PIXEL_M = 172e-6
PILATUS_MODULE_ROWS = 195  # a Pilatus module is 195 rows high; modules sit 17 rows apart
PILATUS_GAP_ROWS = 17
GAP_VALUE = -1  # what the Pilatus writes where no pixel is
RING_WIDTH_Q = 0.004  # 1/Å, one standard deviation: beam size and divergence, a few pixels
RING_COUNTS = 400.0  # the first ring's peak; the n-th has RING_COUNTS / n
BEAMSTOP_RADIUS_PX = 6.0
BEAMSTOP_ARM_HALF_WIDTH_PX = 2.0
BEAMSTOP_COUNTS = 0.3
# A 256 x 256 window of a Pilatus 2M at 10 keV, 0.5 m from the sample, with the beam near its
# corner so that three AgBh rings cross it at radii of about 62, 124 and 187 pixels.
DEFAULT_SHAPE = (256, 256)


@dataclass(frozen=True)
class Calibrant:
    """A written calibrant pair and its truth: the geometry (with the pixel size the header
    carries), the q of every ring that crosses the image, and the beamstop's shadow, which an
    integration should mask (``write_mask`` stores it as the beamline's mask file would be)."""

    pair: Pair
    geometry: Geometry
    rings_q: np.ndarray
    beamstop: np.ndarray


def calibrant_q(rings: int, d_spacing_angstrom: float = AGBH_D_SPACING_ANGSTROM) -> np.ndarray:
    """q (1/Å) of the first ``rings`` orders of a lamellar calibrant: 2πn/d."""
    return 2 * np.pi * np.arange(1, rings + 1) / d_spacing_angstrom


def pixel_angles(geometry: Geometry, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The scattering angle 2θ (radians) and q (1/Å) at every pixel centre, and nothing else:
    a flat detector normal to the beam, centre at ``geometry.beam_centre_px``."""
    if geometry.pixel_size_m is None:
        raise ValueError("synthetic images need the pixel size in the geometry")
    (centre_row, centre_column), (row_size, column_size) = (
        geometry.beam_centre_px,
        geometry.pixel_size_m,
    )
    y = (np.arange(shape[0]) + 0.5 - centre_row) * row_size
    x = (np.arange(shape[1]) + 0.5 - centre_column) * column_size
    two_theta = np.arctan2(np.hypot(y[:, None], x[None, :]), geometry.distance_m)
    return two_theta, 4 * np.pi / geometry.wavelength_angstrom * np.sin(two_theta / 2)


def _beamstop(geometry: Geometry, shape: tuple[int, int]) -> np.ndarray:
    """The shadow of a round beamstop on the beam and of its arm, which runs to the left edge."""
    rows, columns = np.indices(shape) + 0.5
    centre_row, centre_column = geometry.beam_centre_px
    disc = np.hypot(rows - centre_row, columns - centre_column) <= BEAMSTOP_RADIUS_PX
    arm = (np.abs(rows - centre_row) <= BEAMSTOP_ARM_HALF_WIDTH_PX) & (columns <= centre_column)
    return disc | arm


def _expected_counts(geometry: Geometry, shape: tuple[int, int]) -> np.ndarray:
    """Mean counts per pixel: a steep small-angle background, air scatter and the rings, seen
    through each pixel's solid angle (cos³ 2θ, which pyFAI's correction removes)."""
    two_theta, q = pixel_angles(geometry, shape)
    signal = 2e-4 * np.maximum(q, 1e-3) ** -3 + 3.0
    rings = calibrant_q(int(q.max() * AGBH_D_SPACING_ANGSTROM / (2 * np.pi)) + 1)
    for order, ring in enumerate(rings, start=1):
        signal += RING_COUNTS / order * np.exp(-0.5 * ((q - ring) / RING_WIDTH_Q) ** 2)
    return signal * np.cos(two_theta) ** 3


def calibrant_image(
    geometry: Geometry, shape: tuple[int, int] = DEFAULT_SHAPE, *, seed: int = 0, noise: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The int32 detector image of AgBh and the beamstop's shadow (a boolean mask)."""
    expected = _expected_counts(geometry, shape)
    beamstop = _beamstop(geometry, shape)
    expected[beamstop] = BEAMSTOP_COUNTS
    counts = np.random.default_rng(seed).poisson(expected) if noise else np.rint(expected)
    image = counts.astype(np.int32)
    image[PILATUS_MODULE_ROWS : PILATUS_MODULE_ROWS + PILATUS_GAP_ROWS] = GAP_VALUE
    return image, beamstop


def write_edf(path: str | Path, data: np.ndarray, header: dict[str, str]) -> Path:
    """Write a one-frame EDF file; it appears under its name only once complete."""
    path = Path(path)
    with atomic_path(path) as temporary:
        EdfImage(data=data, header=header).write(str(temporary))
    return path


def write_mask(path: str | Path, mask: np.ndarray) -> Path:
    """A mask file as pyFAI's tools write one: an EDF image, 1 where pixels are not to be used."""
    return write_edf(path, np.asarray(mask, dtype=np.int8), {})


def _camserver_header(pixel_size_m: tuple[float, float], exposure_s: float) -> dict[str, str]:
    """The keys a 7.3.3 EDF carries besides the layout fabio writes itself."""
    row_um, column_um = (size * 1e6 for size in pixel_size_m)
    return {
        "Date": "Thu Jun  6 15:11:24 2024",
        "count_time": f"{exposure_s:.9f}",
        "title": f"# Pixel_size {column_um:g}e-6 m x {row_um:g}e-6 m",
        "run": "0",
    }


def text_header(*, proposal: str, pi: str, exposure_s: float, sample: str) -> str:
    """A ``.txt`` header as the beamline writes it, with the messiness of real ones: unnamed
    counter readings first, ``=`` as well as ``:``, trailing spaces, a blank line, repeated
    keys, values holding separators, NaN readings, non-ASCII text and the closing ``!0``."""
    lines = [
        "401.000",
        "10440.000",
        "235561.000",
        "Izero: 401.000",
        "I1 normalization: 235561.000",
        "Diode normalization: 10440.000",
        "Normalize by: Diode",
        f"Exposure time s: {exposure_s:.3f}",
        f"ALS Proposal #: {proposal}   ",
        f"ALS ESAF #: {proposal}-001",
        f"PI = {pi}",
        f"Sample = {sample}",
        "Acquired: 2024-06-06 15:11:24",
        "Calibration image path: /spot733-data/raw/userdata",
        "",
        "Motors: 4",
        "Sample X Stage: -88.245200",
        "Sample Y Stage: 3.128650 ",
        "M1 Pitch: 0.202033",
        "Detector Horizontal: 0.000000",
        "AIs: 4",
        "Izero: 401.000000",
        "Beam Current: 499.509338",
        "Vertical Beam Position: NaN",
        "M1 Pitch: 0.202057",
        "!0",
    ]
    return "\r\n".join(lines) + "\r\n"  # the acquisition PC runs Windows


def write_calibrant_pair(
    folder: str | Path,
    stem: str = "agbh_cal_2m",
    *,
    geometry: Geometry = DEFAULT_GEOMETRY,
    shape: tuple[int, int] = DEFAULT_SHAPE,
    seed: int = 0,
    noise: bool = True,
    proposal: str = "ALS-12345",
    pi: str = "Jane Doe",
    exposure_s: float = 10.0,
) -> Calibrant:
    """Write ``<stem>.txt`` and then ``<stem>.edf`` of AgBh into ``folder`` (each appearing
    whole), with the pixel size of ``geometry`` (a Pilatus's if unset) in the EDF header."""
    folder = Path(folder)
    geometry = geometry.with_pixel_size((PILATUS_PIXEL_M, PILATUS_PIXEL_M))
    assert geometry.pixel_size_m is not None  # for the type checker: just filled in
    image, beamstop = calibrant_image(geometry, shape, seed=seed, noise=noise)
    text_path = folder / f"{stem}{TEXT_SUFFIX}"
    with atomic_path(text_path) as temporary:
        header = text_header(
            proposal=proposal, pi=pi, exposure_s=exposure_s, sample="AgBh (silver behenate) 25 °C"
        )
        temporary.write_text(header, encoding="utf-8", newline="")
    image_path = write_edf(
        folder / f"{stem}{IMAGE_SUFFIX}",
        image,
        _camserver_header(geometry.pixel_size_m, exposure_s),
    )
    _, q = pixel_angles(geometry, shape)
    rings = calibrant_q(int(q.max() * AGBH_D_SPACING_ANGSTROM / (2 * np.pi)))
    return Calibrant(
        pair=Pair(folder, stem, text_path, image_path),
        geometry=geometry,
        rings_q=rings[rings > q.min()],
        beamstop=beamstop,
    )
