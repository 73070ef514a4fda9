"""Filtered back-projection in plain numpy: the slow, simple reference every engine is held to.

The ray geometry is the same for every slice of a slab, so interpolation indices are computed
once per angle and shared by the slab. Linear interpolation between detector samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bl832_assets.science.engines.geometry import angle_weights, check_inputs, pad_columns
from bl832_assets.science.filters import FilterName, frequency_filter, padded_width


def filter_sinograms(sinograms: np.ndarray, name: FilterName) -> tuple[np.ndarray, int]:
    """Filter along the detector axis, padded to ``padded_width`` so the convolution does not
    wrap; returns the padded result and its left padding."""
    width = padded_width(sinograms.shape[-1])
    padded, left = pad_columns(sinograms, width)
    spectrum = np.fft.rfft(padded, axis=-1) * frequency_filter(width, name)
    return np.fft.irfft(spectrum, n=width, axis=-1).astype(np.float32), left


def backproject(filtered: np.ndarray, theta: np.ndarray, axis: float, size: int) -> np.ndarray:
    """Sum filtered sinograms (slices, angles, padded width) along their rays onto size-by-size
    grids centred on ``axis`` (a column of the padded sinogram).

    Rays beyond the padding take its edge value.
    """
    slices, _, width = filtered.shape
    grid = np.arange(size, dtype=np.float64) - (size - 1) / 2
    image = np.zeros((slices, size * size), dtype=np.float32)
    for angle, (t, weight) in enumerate(zip(theta, angle_weights(theta), strict=True)):
        position = axis + grid[None, :] * np.cos(t) + grid[:, None] * np.sin(t)
        np.clip(position, 0, width - 1.000001, out=position)
        lower = position.astype(np.intp).reshape(-1)
        fraction = (position.reshape(-1) - lower).astype(np.float32)
        line = filtered[:, angle, :]
        image += np.float32(weight) * (
            line[:, lower] * (1 - fraction) + line[:, lower + 1] * fraction
        )
    return image.reshape(slices, size, size)


@dataclass(frozen=True)
class BackprojectionEngine:
    """``fbp``: exact to the geometry and easy to read, but O(angles·columns²) per slice in
    numpy, so minutes per slice at full detector width. Thread-safe (no shared state)."""

    name: str = "fbp"

    def reconstruct(
        self,
        sinograms: np.ndarray,
        theta: np.ndarray,
        centre: float,
        *,
        filter_name: FilterName = "butterworth",
    ) -> np.ndarray:
        check_inputs(sinograms, theta)
        filtered, left = filter_sinograms(sinograms, filter_name)
        return backproject(filtered, theta, centre + left, sinograms.shape[-1])
