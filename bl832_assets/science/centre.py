"""Where the rotation axis falls on the detector, found from the data itself.

A projection taken half a turn later is the mirror image of the first about the rotation axis.
Flipping it left to right turns the mirror into a shift of ``2·centre - (columns - 1)`` pixels,
which phase correlation measures to a small fraction of a pixel (the method upstream's
``tomopy.find_center_pc`` uses).
"""

from __future__ import annotations

import numpy as np

from bl832_assets.science.fbp import padded_width

_REFINE_STEP = 0.01  # pixels of shift, i.e. 0.005 px of centre


def _shift_spectrum(first: np.ndarray, flipped: np.ndarray) -> np.ndarray:
    """Normalised cross-power spectrum, summed over rows before normalising so that rows with
    little structure contribute little instead of adding noise at full weight."""
    width = padded_width(first.shape[-1])
    cross = np.fft.rfft(first, n=width, axis=-1) * np.conj(np.fft.rfft(flipped, n=width, axis=-1))
    cross = cross.reshape(-1, cross.shape[-1]).sum(axis=0)
    return cross / np.maximum(np.abs(cross), 1e-12)


def _correlation_at(spectrum: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """The correlation at arbitrary (fractional) shifts, by evaluating the inverse real DFT
    directly: exact band-limited interpolation around the peak instead of a parabola guess."""
    width = 2 * (spectrum.size - 1)
    k = np.arange(spectrum.size)
    twice = np.where((k == 0) | (k == width // 2), 1.0, 2.0)
    phase = np.exp(2j * np.pi * np.outer(shifts, k) / width)
    return (phase * (spectrum * twice)).real.sum(axis=1)


def measure_shift(first: np.ndarray, flipped: np.ndarray) -> float:
    """The shift d (pixels) for which ``flipped[j] ≈ first[j + d]``, to ``_REFINE_STEP``."""
    spectrum = _shift_spectrum(first, flipped)
    width = 2 * (spectrum.size - 1)
    coarse = int(np.argmax(np.fft.irfft(spectrum, n=width)))
    if coarse > width // 2:
        coarse -= width
    candidates = coarse + np.arange(-1.0, 1.0 + _REFINE_STEP / 2, _REFINE_STEP)
    return float(candidates[np.argmax(_correlation_at(spectrum, candidates))])


def estimate_centre(first: np.ndarray, opposite: np.ndarray) -> float:
    """Rotation centre (column, same convention as ``phantom``) from two minus-log projections
    (rows, columns) taken 180° apart."""
    columns = first.shape[-1]
    shift = measure_shift(first, opposite[..., ::-1])
    return (columns - 1 + shift) / 2
