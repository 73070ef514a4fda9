"""A 3-D test object with known attenuation, so a reconstruction can be scored against the truth.

Geometry convention (shared by ``synth`` and ``recon``; pinned by tests):

- detector columns are numbered 0..C-1; the rotation axis projects onto column
  ``centre = (C - 1) / 2 + centre_offset``;
- a slice is a C-by-C grid centred on the rotation axis: pixel (iy, ix) sits at
  ``x = ix - (C - 1) / 2``, ``y = iy - (C - 1) / 2`` (pixels);
- at angle θ (radians, as stored in /exchange/theta after conversion from degrees) a point (x, y)
  of the slice projects onto column ``centre + x·cos θ + y·sin θ``.

Every feature is an ellipsoid (or a vertical cylinder) whose cross-section at a detector row is
an ellipse, and the line integral through an ellipse has a closed form, so the projections are
exact rather than computed from a voxelised copy of the object (which would blur the truth).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_PIXEL_SIZE_MM = 0.00065


@dataclass(frozen=True)
class Feature:
    """An ellipsoid in units that do not depend on the detector size, so that scans of any width
    show the same object: x, y and the in-plane semi-axes a, b in half field widths, z and the
    vertical semi-axis c as fractions of the detector height."""

    x: float
    y: float
    z: float
    a: float
    b: float
    c: float
    angle_deg: float
    # Attenuation added to what lies beneath, as optical density across the full field width,
    # so the thickest chord transmits about a third of the beam whatever the detector width.
    density: float
    cylinder: bool = False


FEATURES: tuple[Feature, ...] = (
    Feature(0.0, 0.0, 0.5, 0.62, 0.62, 1.0, 0.0, 0.8, cylinder=True),  # capillary wall
    Feature(0.0, 0.0, 0.5, 0.52, 0.52, 1.0, 0.0, -0.5, cylinder=True),  # mounting medium
    Feature(0.18, -0.12, 0.5, 0.28, 0.16, 0.7, 30.0, 1.2),  # grain
    Feature(-0.22, 0.2, 0.35, 0.12, 0.12, 0.45, 0.0, 3.0),  # dense inclusion
    Feature(-0.28, -0.22, 0.7, 0.08, 0.06, 0.4, -20.0, -0.3),  # pore
    Feature(0.3, 0.28, 0.5, 0.04, 0.04, 0.3, 0.0, 2.0, cylinder=True),  # fibre
)


@dataclass(frozen=True)
class _Ellipse:
    """A feature's cross-section at one row, in pixels around the rotation axis."""

    x: float
    y: float
    a: float
    b: float
    angle: float
    mu: float  # attenuation per pixel length


def _cross_sections(row: int, columns: int, rows: int) -> list[_Ellipse]:
    half = columns / 2
    height = (row + 0.5) / rows
    sections = []
    for feature in FEATURES:
        distance = (height - feature.z) / feature.c
        if abs(distance) >= 1:
            continue
        shrink = 1.0 if feature.cylinder else float(np.sqrt(1 - distance**2))
        sections.append(
            _Ellipse(
                x=feature.x * half,
                y=feature.y * half,
                a=feature.a * shrink * half,
                b=feature.b * shrink * half,
                angle=np.deg2rad(feature.angle_deg),
                mu=feature.density / columns,
            )
        )
    return sections


def _per_cm(pixel_size_mm: float) -> float:
    return 1.0 / (pixel_size_mm / 10.0)


def phantom_slice(
    row: int,
    *,
    columns: int,
    rows: int,
    pixel_size_mm: float = DEFAULT_PIXEL_SIZE_MM,
    supersample: int = 4,
) -> np.ndarray:
    """The true attenuation (1/cm) of slice ``row`` on the reconstruction grid, each pixel
    averaged over ``supersample``² points so edges carry the partial-volume values a band-limited
    reconstruction can reach."""
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    coords = (np.arange(columns)[:, None] + offsets[None, :]).reshape(-1) - (columns - 1) / 2
    y, x = np.meshgrid(coords, coords, indexing="ij")
    image = np.zeros_like(x)
    for ellipse in _cross_sections(row, columns, rows):
        cos, sin = np.cos(ellipse.angle), np.sin(ellipse.angle)
        u = (x - ellipse.x) * cos + (y - ellipse.y) * sin
        v = -(x - ellipse.x) * sin + (y - ellipse.y) * cos
        image += ellipse.mu * ((u / ellipse.a) ** 2 + (v / ellipse.b) ** 2 <= 1)
    image = image.reshape(columns, supersample, columns, supersample).mean(axis=(1, 3))
    return (image * _per_cm(pixel_size_mm)).astype(np.float32)


def phantom_volume(
    *, columns: int, rows: int, pixel_size_mm: float = DEFAULT_PIXEL_SIZE_MM
) -> np.ndarray:
    """The true attenuation (1/cm) of every slice, shaped (rows, columns, columns)."""
    return np.stack(
        [
            phantom_slice(row, columns=columns, rows=rows, pixel_size_mm=pixel_size_mm)
            for row in range(rows)
        ]
    )


def _line_integrals(ellipses: list[_Ellipse], theta: np.ndarray, s: np.ndarray) -> np.ndarray:
    """∫μ along every ray (angle θ, signed distance s from the axis), shaped (angles, len(s))."""
    total = np.zeros((theta.size, s.size))
    cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
    for e in ellipses:
        # Half-width of the ellipse seen along direction θ, and its centre's projection.
        half_width_sq = (e.a * np.cos(theta - e.angle)) ** 2 + (e.b * np.sin(theta - e.angle)) ** 2
        t = s[None, :] - (e.x * cos + e.y * sin)
        chord_sq = np.clip(half_width_sq[:, None] - t**2, 0.0, None)
        total += e.mu * 2 * e.a * e.b / half_width_sq[:, None] * np.sqrt(chord_sq)
    return total


def transmission(
    theta: np.ndarray, *, columns: int, rows: int, centre: float, subpixels: int = 4
) -> np.ndarray:
    """Fraction of the beam reaching each detector pixel, shaped (angles, rows, columns).

    Each pixel averages the transmitted intensity (not the line integral) over ``subpixels``
    rays across its width, as a real detector integrates light.
    """
    offsets = (np.arange(subpixels) + 0.5) / subpixels - 0.5
    s = (np.arange(columns)[:, None] + offsets[None, :]).reshape(-1) - centre
    result = np.empty((theta.size, rows, columns))
    for row in range(rows):
        integrals = _line_integrals(_cross_sections(row, columns, rows), theta, s)
        result[:, row, :] = np.exp(-integrals).reshape(theta.size, columns, subpixels).mean(axis=2)
    return result
