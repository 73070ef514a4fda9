"""Exact sinograms and true slices of the project's phantom, for scoring reconstructions.

The phantom (``bl832_assets.science.phantom``) is made of ellipses, whose line integrals have a
closed form, so a sinogram of any size costs a few array operations and no forward projector:
a projector would put its own interpolation errors into the "truth". Both the sinogram and the
true slice average over each pixel (``subpixels`` rays across a detector pixel,
``supersample``² points in an image pixel), so they describe the same band-limited object.

This reuses the phantom's private ``_cross_sections`` and ``_line_integrals`` on purpose: the
sinograms and the truth must come from the very ellipses the synthetic scans are made of. If
those helpers are renamed, this import fails loudly rather than scoring against another object.

Libraries disagree on where the reconstructed object sits (axis at column N//2, (N-1)/2 or N/2;
y up or down), so the truth is drawn in the peer's own ``Frame`` instead of resampling its
output, which would blur it and cost it SSIM it did not lose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.metrics import structural_similarity

from bl832_assets.science.phantom import _cross_sections, _line_integrals

DETECTOR_ROWS = 2160  # the 8.3.2 detector height: the phantom's vertical scale


@dataclass(frozen=True)
class Frame:
    """Where a reconstruction puts the object: pixel (i, j) shows the point
    ``x = j - origin_x``, ``y = y_sign * (i - origin_y)`` of our geometry."""

    origin_x: float
    origin_y: float
    y_sign: int = 1

    @classmethod
    def ours(cls, columns: int) -> Frame:
        """Our grid: centred on (C-1)/2 both ways, y growing with the row index."""
        return cls((columns - 1) / 2, (columns - 1) / 2, 1)


def theta_half_turn(angles: int) -> np.ndarray:
    """0..180° inclusive, as the beamline and the synthetic scans store them, in radians."""
    return np.deg2rad(np.linspace(0.0, 180.0, angles, dtype=np.float32).astype(np.float64))


def sinogram(row: int, columns: int, theta: np.ndarray, subpixels: int = 4) -> np.ndarray:
    """Minus-log sinogram (angles, columns), float32, of detector ``row`` with the rotation axis
    at column (C-1)/2: line integrals averaged across each detector pixel."""
    offsets = (np.arange(subpixels) + 0.5) / subpixels - 0.5
    s = (np.arange(columns)[:, None] + offsets[None, :]).reshape(-1) - (columns - 1) / 2
    integrals = _line_integrals(_cross_sections(row, columns, DETECTOR_ROWS), theta, s)
    return integrals.reshape(theta.size, columns, subpixels).mean(axis=2).astype(np.float32)


def truth(row: int, columns: int, frame: Frame, supersample: int = 4) -> np.ndarray:
    """True attenuation per pixel length (what engines return) of detector ``row``, drawn in
    ``frame``, each pixel averaged over ``supersample``² points. Built in blocks of rows so a
    2560² slice needs tens of MB, not gigabytes."""
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    x = (np.arange(columns)[:, None] + offsets).reshape(-1) - frame.origin_x
    image = np.empty((columns, columns), dtype=np.float32)
    ellipses = _cross_sections(row, columns, DETECTOR_ROWS)
    block = 64
    for start in range(0, columns, block):
        rows = np.arange(start, min(start + block, columns))
        y = frame.y_sign * ((rows[:, None] + offsets).reshape(-1) - frame.origin_y)
        values = np.zeros((y.size, x.size))
        for e in ellipses:
            cos, sin = np.cos(e.angle), np.sin(e.angle)
            dx, dy = x[None, :] - e.x, y[:, None] - e.y
            u, v = dx * cos + dy * sin, -dx * sin + dy * cos
            values += e.mu * ((u / e.a) ** 2 + (v / e.b) ** 2 <= 1)
        shaped = values.reshape(rows.size, supersample, columns, supersample)
        image[rows] = shaped.mean(axis=(1, 3))
    return image


def circle(columns: int, frame: Frame) -> np.ndarray:
    """The reconstruction circle (every angle saw it): radius C/2 around the frame's axis."""
    j = np.arange(columns) - frame.origin_x
    i = np.arange(columns) - frame.origin_y
    return j[None, :] ** 2 + i[:, None] ** 2 <= (columns / 2) ** 2


def ssim_in_circle(expected: np.ndarray, image: np.ndarray, inside: np.ndarray) -> float:
    """SSIM (skimage, 7x7 window, data range of the truth) averaged over the circle. Outside
    it both images are set to zero, so what a method does beyond its field of view (some mask,
    some do not) neither helps nor hurts it."""
    expected = np.where(inside, expected, 0).astype(np.float64)
    image = np.where(inside, image, 0).astype(np.float64)
    data_range = float(expected.max() - expected.min())
    _, local = structural_similarity(expected, image, data_range=data_range, full=True)
    return float(local[inside].mean())
