"""Filtered back-projection of parallel-beam sinograms, in plain numpy.

Works on a slab of sinograms (rows, angles, columns) at once, because the ray geometry is the
same for every row: the interpolation indices are computed once per angle and shared by the slab.
Geometry follows ``bl832_assets.science.phantom``: the output is a columns-by-columns grid centred
on the rotation axis, and pixel (x, y) sees column ``centre + x·cos θ + y·sin θ``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

FilterName = Literal["ramp", "butterworth"]

# tomopy's gridrec defaults upstream use a Butterworth window, cutoff 0.25 cycles per pixel
# (half the Nyquist frequency) and order 2: smoother slices than a bare ramp on noisy data.
BUTTERWORTH_CUTOFF = 0.25
BUTTERWORTH_ORDER = 2


def padded_width(columns: int) -> int:
    """A power of two at least twice the detector width, so the filter's circular convolution
    never wraps one edge of the sinogram onto the other."""
    return 1 << int(np.ceil(np.log2(2 * columns)))


def frequency_filter(width: int, name: FilterName = "butterworth") -> np.ndarray:
    """The filter for an ``rfft`` of length ``width``.

    Built as the transform of the band-limited spatial ramp kernel rather than as ``|f|``,
    because ``|f|`` zeroes the DC term and shifts every reconstruction by a constant.
    """
    n = np.fft.fftfreq(width, d=1.0 / width)  # integer offsets 0, 1, ..., -1
    kernel = np.zeros(width)
    kernel[0] = 0.25
    odd = n % 2 == 1
    kernel[odd] = -1.0 / (np.pi * n[odd]) ** 2
    response = np.fft.rfft(kernel).real
    if name == "butterworth":
        f = np.fft.rfftfreq(width)
        response = response / (1 + (f / BUTTERWORTH_CUTOFF) ** (2 * BUTTERWORTH_ORDER))
    elif name != "ramp":
        raise ValueError(f"unknown filter {name!r}; expected 'ramp' or 'butterworth'")
    return response


def filter_sinograms(
    sinograms: np.ndarray, name: FilterName = "butterworth"
) -> tuple[np.ndarray, int]:
    """Filter along the detector axis; returns the padded result and its left padding.

    Edge values, not zeros, fill the padding: a sample wider than the field of view would
    otherwise show a bright rim where its projection is cut off.
    """
    columns = sinograms.shape[-1]
    width = padded_width(columns)
    left = (width - columns) // 2
    pad = [(0, 0)] * (sinograms.ndim - 1) + [(left, width - columns - left)]
    padded = np.pad(sinograms, pad, mode="edge")
    spectrum = np.fft.rfft(padded, axis=-1) * frequency_filter(width, name)
    return np.fft.irfft(spectrum, n=width, axis=-1).astype(np.float32), left


def angle_weights(theta: np.ndarray) -> np.ndarray:
    """Per-projection weights summing to π: the trapezoid rule over the angles actually taken.

    With 0..180° inclusive the two end projections are mirror images and share one weight;
    a 360° scan counts each direction twice and is halved.
    """
    order = np.argsort(theta)
    sorted_theta = theta[order]
    gaps = np.diff(sorted_theta)
    weights = np.zeros_like(sorted_theta)
    weights[:-1] += gaps / 2
    weights[1:] += gaps / 2
    if weights.sum() <= 0:
        raise ValueError("need at least two distinct projection angles")
    result = np.empty_like(weights)
    result[order] = weights * (np.pi / weights.sum())
    return result


def backproject(filtered: np.ndarray, theta: np.ndarray, axis: float, size: int) -> np.ndarray:
    """Sum filtered sinograms (rows, angles, padded width) along their rays onto size-by-size
    grids centred on ``axis`` (a column of the padded sinogram).

    Linear interpolation between detector samples; rays beyond the padding take its edge value.
    """
    rows, _, width = filtered.shape
    grid = np.arange(size, dtype=np.float64) - (size - 1) / 2
    image = np.zeros((rows, size * size), dtype=np.float32)
    for angle, (t, weight) in enumerate(zip(theta, angle_weights(theta), strict=True)):
        position = axis + grid[None, :] * np.cos(t) + grid[:, None] * np.sin(t)
        np.clip(position, 0, width - 1.000001, out=position)
        lower = position.astype(np.intp).reshape(-1)
        fraction = (position.reshape(-1) - lower).astype(np.float32)
        line = filtered[:, angle, :]
        image += weight * (line[:, lower] * (1 - fraction) + line[:, lower + 1] * fraction)
    return image.reshape(rows, size, size)


def reconstruct_slab(
    sinograms: np.ndarray,
    theta: np.ndarray,
    centre: float,
    name: FilterName = "butterworth",
) -> np.ndarray:
    """Attenuation per pixel length for each sinogram: (rows, angles, C) to (rows, C, C)."""
    filtered, left = filter_sinograms(sinograms, name)
    return backproject(filtered, theta, centre + left, sinograms.shape[-1])


def circular_mask(image: np.ndarray) -> np.ndarray:
    """Zero everything outside the inscribed circle, where not every angle saw the sample and
    the values are artefacts (as ``tomopy.circ_mask`` does upstream)."""
    size = image.shape[-1]
    grid = np.arange(size) - (size - 1) / 2
    outside = grid[None, :] ** 2 + grid[:, None] ** 2 > (size / 2) ** 2
    image[..., outside] = 0
    return image
