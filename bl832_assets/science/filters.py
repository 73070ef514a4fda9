"""Frequency filters for filtered reconstruction (back-projection or direct Fourier).

Every filter is a ramp times a window. The ramp is the transform of the band-limited spatial
ramp kernel rather than ``|f|``, because ``|f|`` zeroes the DC term and shifts every slice by a
constant. The windows follow tomopy's gridrec, which the upstream 8.3.2 pipeline uses, with
frequency ``f`` in cycles per pixel (0 to 0.5, Nyquist) so that a name means the same here as
in the beamline's notebooks:

- ``ramp``: no window; sharpest, and noisiest.
- ``shepp-logan``: ``sinc(f)``; falls to 0.64 at Nyquist.
- ``cosine``: ``cos(πf)``; zero at Nyquist.
- ``hamming``: ``0.54 + 0.46·cos(2πf)``; 0.08 at Nyquist.
- ``hann``: ``0.5 + 0.5·cos(2πf)``; zero at Nyquist, smoother than cosine.
- ``butterworth``: ``1 / (1 + (f / 0.25)^4)``, gridrec's filter_par [0.25, 2] upstream; flat
  at low frequency, then rolls off to 1/17 at Nyquist. The default.
- ``parzen``: ``(1 - 2f)³`` (gridrec's, cutoff at Nyquist); the smoothest here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import numpy as np

FilterName = Literal["ramp", "shepp-logan", "cosine", "hamming", "hann", "butterworth", "parzen"]
FILTER_NAMES: tuple[str, ...] = get_args(FilterName)

BUTTERWORTH_CUTOFF = 0.25  # cycles per pixel: half the Nyquist frequency
BUTTERWORTH_ORDER = 2

_WINDOWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "ramp": np.ones_like,
    "shepp-logan": np.sinc,
    "cosine": lambda f: np.cos(np.pi * f),
    "hamming": lambda f: 0.54 + 0.46 * np.cos(2 * np.pi * f),
    "hann": lambda f: 0.5 + 0.5 * np.cos(2 * np.pi * f),
    "butterworth": lambda f: 1 / (1 + (f / BUTTERWORTH_CUTOFF) ** (2 * BUTTERWORTH_ORDER)),
    "parzen": lambda f: (1 - 2 * f) ** 3,
}


def padded_width(columns: int) -> int:
    """A power of two at least twice the detector width, so a circular convolution (filter or
    correlation) never wraps one edge of the sinogram onto the other."""
    return 1 << int(np.ceil(np.log2(2 * columns)))


def ramp(width: int) -> np.ndarray:
    """The ramp for an ``rfft`` of length ``width``: about ``|f|``, with a small positive DC."""
    # Integer offsets 0, 1, ..., -1, rounded: fftfreq(width, d=1/width) is not exact (at width
    # 3630, the padded 2,560-column ALS detector, it missed every odd term).
    n = np.rint(np.fft.fftfreq(width) * width)
    kernel = np.zeros(width)
    kernel[0] = 0.25
    odd = n % 2 == 1
    kernel[odd] = -1.0 / (np.pi * n[odd]) ** 2
    return np.fft.rfft(kernel).real


def frequency_filter(width: int, name: FilterName = "butterworth") -> np.ndarray:
    """The filter for an ``rfft`` of length ``width`` (``width // 2 + 1`` values, from DC to
    Nyquist), in float64."""
    window = _WINDOWS.get(name)
    if window is None:
        raise ValueError(f"unknown filter {name!r}; expected one of {', '.join(FILTER_NAMES)}")
    return ramp(width) * window(np.fft.rfftfreq(width))
