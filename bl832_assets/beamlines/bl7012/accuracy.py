"""How close a reconstruction is to a known object, up to what ptychography cannot tell apart.

The measured intensities stay the same if the object is multiplied by a constant (a global phase
and a scale the probe takes back), by a linear phase ramp the probe takes back, or shifted
together with the probe. So before comparing, the reconstruction is shifted onto the truth (to a
fraction of a pixel: the shift that leaves the least error), and the ramp and the complex scale
that fit it best inside the compared region are applied. What is left is the scan's real error.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

MAX_SHIFT_PX = 3  # object and probe drift together by a pixel or two at most


def shifted(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """``image`` moved by ``shift`` (rows, columns) pixels, fractions included (Fourier shift;
    what leaves one edge comes back at the other)."""
    frequencies = np.meshgrid(*(np.fft.fftfreq(n) for n in image.shape), indexing="ij")
    ramp = np.exp(-2j * np.pi * sum(f * s for f, s in zip(frequencies, shift, strict=True)))
    return np.fft.ifft2(np.fft.fft2(image) * ramp)


def _remove_phase_ramp(moving: np.ndarray, fixed: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``moving`` times the plane phase that best maps it onto ``fixed`` in ``region`` (a
    weighted least-squares fit to the phase of their ratio, around its mean)."""
    ratio = (fixed * np.conj(moving))[region]
    mean = np.sum(ratio)
    phase = np.angle(ratio * np.conj(mean))
    rows, columns = np.nonzero(region)
    design = np.stack([np.ones_like(rows), rows, columns], axis=1).astype(float)
    weight = np.sqrt(np.abs(ratio))
    coefficients = np.linalg.lstsq(design * weight[:, None], phase * weight, rcond=None)[0]
    y, x = np.indices(moving.shape)
    plane = coefficients[0] + coefficients[1] * y + coefficients[2] * x
    return moving * np.exp(1j * (plane + np.angle(mean)))


def _residual(moving: np.ndarray, truth: np.ndarray, region: np.ndarray) -> float:
    """``‖c·M - T‖ / ‖T‖`` over ``region`` after removing M's phase ramp, ``c`` the best
    complex scale."""
    aligned = _remove_phase_ramp(moving, truth, region)
    m, t = aligned[region], truth[region]
    scale = np.vdot(m, t) / max(np.vdot(m, m).real, np.finfo(float).tiny)
    return float(np.linalg.norm(scale * m - t) / np.linalg.norm(t))


def object_error(reconstruction: np.ndarray, truth: np.ndarray, region: np.ndarray) -> float:
    """Normalised RMS difference between reconstruction and truth over ``region`` (boolean),
    at the shift (up to ``MAX_SHIFT_PX``, to a fraction of a pixel), phase ramp and complex
    scale that make it smallest: 0 is perfect, 1 is no better than zero."""
    if reconstruction.shape != truth.shape or region.shape != truth.shape:
        raise ValueError(
            f"shapes differ: reconstruction {reconstruction.shape}, truth {truth.shape}, "
            f"region {region.shape}"
        )

    def error(shift: np.ndarray) -> float:
        return _residual(shifted(reconstruction, tuple(shift)), truth, region)

    whole = range(-MAX_SHIFT_PX, MAX_SHIFT_PX + 1)
    start = min(((dy, dx) for dy in whole for dx in whole), key=lambda s: error(np.array(s)))
    fitted = optimize.minimize(
        error, np.array(start, float), method="Nelder-Mead", options={"xatol": 0.01}
    )
    return float(min(fitted.fun, error(np.array(start, float))))
