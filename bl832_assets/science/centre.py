"""Where the rotation axis falls on the detector, found from the data itself.

Two methods, each with a confidence so that a caller can flag a doubtful centre instead of
writing blurred slices without a word:

- ``from_opposite_projections``: a projection taken half a turn after the first is its mirror
  image about the axis, so the mirrored one is the first shifted by ``2·centre - (columns - 1)``
  columns. Upstream measures that shift by phase correlation (``tomopy.find_center_pc``). Here
  the two are cross-correlated after a band-pass (a smoothed derivative along the detector),
  because whitening let detector noise and bad columns move the peak by up to a pixel on wide
  detectors, and zero-padded plain correlation failed on samples wider than the field of view
  (docs/reconstruction-rings-and-centre.md).
- ``from_sinograms``: Vo et al. 2014 (Opt. Express 22, 19078; algotom's ``find_center_vo``),
  for scans without a projection 180° after the first.

Columns follow the convention of ``phantom``: the axis sits at ``(columns - 1)/2 + offset``.
Everything here is a pure function of its inputs, safe to call from several threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft

from bl832_assets.science.filters import padded_width
from bl832_assets.science.rings import running_median

_REFINE_STEP = 0.01  # columns of shift, i.e. 0.005 px of centre
_BAND_SIGMA = 4.0  # columns: the Gaussian that smooths the derivative before correlating
_BAD_COLUMN_WINDOW = 9  # columns: a running median this wide cannot follow one bad column
_VO_SAMPLE_FRACTION = 0.5  # sample assumed no wider than half the field (algotom's default)
_VO_DROP_ROWS = 20  # lowest angular frequencies left out of the wedge (slow beam drifts)
_VO_MIN_SEARCH = 60.0  # columns either side of the detector's middle, at least
_VO_COARSE_COLUMNS = 512  # the coarse search bins the sinogram down to about this width
_VO_FINE_STEP = 0.25  # columns


@dataclass(frozen=True)
class CentreEstimate:
    """A rotation centre (detector column) and how far to trust it.

    ``confidence`` is in [0, 1], 0 meaning the data singled out no centre:

    - ``"cross-correlation"``: the normalised correlation of the band-passed first projection
      with the mirrored opposite one once aligned (1: identical; pure noise: about 0.1).
    - ``"vo"``: the fraction of the wedge energy of a typical candidate (the median over the
      searched range) that vanishes at the chosen centre (pure noise: about 0.02).
    - ``"given"``: an operator's centre, taken as certain.

    Measured values on good and bad scans are in docs/reconstruction-rings-and-centre.md; below
    about 0.2 the centre deserves a look.
    """

    centre: float
    method: str
    confidence: float


def _band_spectrum(image: np.ndarray, width: int) -> np.ndarray:
    """Per-row spectrum of the Gaussian-smoothed derivative along the detector. The edge
    padding and the derivative leave no step at the ends of the field, so a sample wider
    than the field (or a zero-padded one) does not pull the peak towards zero shift."""
    columns = image.shape[-1]
    left = (width - columns) // 2
    padded = np.pad(image.reshape(-1, columns), ((0, 0), (left, width - columns - left)), "edge")
    omega = 2 * np.pi * np.fft.rfftfreq(width)
    return np.fft.rfft(padded, axis=-1) * (1j * omega * np.exp(-0.5 * (omega * _BAND_SIGMA) ** 2))


def _energy(spectrum: np.ndarray, width: int) -> float:
    """Sum of squares of the signal behind an ``rfft`` (Parseval, all rows)."""
    twice = np.full(spectrum.shape[-1], 2.0)
    twice[0] = twice[-1] = 1.0
    return float((np.abs(spectrum) ** 2 * twice).sum() / width)


def _correlation_at(cross: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """The correlation at arbitrary (fractional) shifts, by evaluating the inverse real DFT
    directly: exact band-limited interpolation around the peak instead of a parabola guess."""
    width = 2 * (cross.size - 1)
    k = np.arange(cross.size)
    twice = np.where((k == 0) | (k == width // 2), 1.0, 2.0)
    phase = np.exp(2j * np.pi * np.outer(shifts, k) / width)
    return (phase * (cross * twice)).real.sum(axis=1) / width


def align(first: np.ndarray, flipped: np.ndarray) -> tuple[float, float]:
    """The shift d (columns, to ``_REFINE_STEP``) for which ``flipped[j] ≈ first[j + d]``, and
    the normalised correlation of the band-passed images at that shift."""
    width = padded_width(first.shape[-1])
    a, b = _band_spectrum(first, width), _band_spectrum(flipped, width)
    cross = (a * np.conj(b)).sum(axis=0)
    coarse = int(np.argmax(np.fft.irfft(cross, n=width)))
    if coarse > width // 2:
        coarse -= width
    candidates = coarse + np.arange(-1.0, 1.0 + _REFINE_STEP / 2, _REFINE_STEP)
    scores = _correlation_at(cross, candidates)
    best = int(np.argmax(scores))
    norm = np.sqrt(_energy(a, width) * _energy(b, width))
    return float(candidates[best]), float(scores[best] / norm) if norm > 0 else 0.0


def measure_shift(first: np.ndarray, flipped: np.ndarray) -> float:
    """The shift d (columns) for which ``flipped[j] ≈ first[j + d]``, to ``_REFINE_STEP``."""
    return align(first, flipped)[0]


def _column_offsets(first: np.ndarray, opposite: np.ndarray) -> np.ndarray:
    """Per-column error common to both projections (a column whose gain drifted since the flat
    field). Left in, it sits at the same place in both images rather than at mirrored places
    and adds peaks at wrong shifts. A column's step from its running median, taken as the
    median over rows, counts only where both projections show it with the same sign, and then
    by the smaller of the two: the sample shows a feature in one of them at any column except
    the axis itself."""
    steps = [
        np.median(image - running_median(image, _BAD_COLUMN_WINDOW), axis=0)
        for image in (first.reshape(-1, first.shape[-1]), opposite.reshape(-1, first.shape[-1]))
    ]
    agree = np.sign(steps[0]) == np.sign(steps[1])
    return np.where(agree, np.sign(steps[0]) * np.minimum(*np.abs(steps)), 0.0)


def from_opposite_projections(first: np.ndarray, opposite: np.ndarray) -> CentreEstimate:
    """Rotation centre from two minus-log projections (rows, columns) taken 180° apart."""
    first = np.asarray(first, dtype=np.float32)
    opposite = np.asarray(opposite, dtype=np.float32)
    offsets = _column_offsets(first, opposite)
    shift, agreement = align(first - offsets, (opposite - offsets)[..., ::-1])
    centre = (first.shape[-1] - 1 + shift) / 2
    return CentreEstimate(centre, "cross-correlation", float(np.clip(agreement, 0.0, 1.0)))


def half_turn(theta: np.ndarray) -> np.ndarray:
    """Indices of the projections in the first half turn, ``[θ0, θ0 + π)``: Vo's method
    mirrors them into the second half itself, so a 0-360° scan contributes its first half
    and an inclusive 0-180° scan drops the 180° projection that would duplicate 0°."""
    theta = np.asarray(theta, dtype=np.float64)
    step = float(np.median(np.abs(np.diff(theta)))) if theta.size > 1 else 0.0
    turned = np.abs(theta - theta[0])
    if step == 0.0 or turned.max() < np.pi - 1.5 * step:
        raise ValueError("the sinogram centre needs projections over at least half a turn")
    return np.flatnonzero(turned < np.pi - step / 2)


class _WedgeMetric:
    """Vo's metric for candidate centres of one sinogram, without an FFT per candidate.

    Stacking the sinogram ``p`` (a half turn) on its mirror shifted by ``s = 2·centre -
    (columns - 1)`` gives the full-turn sinogram when the centre is right. Its 2-D spectrum
    then has almost no energy in the double wedge ``|u| < |k|·W/(2πR)`` (angular frequency k,
    detector frequency u, sample radius R); a wrong centre leaves a seam whose energy lands
    there. The shift is a phase ramp along u, so the spectrum of the stack is
    ``P(k, u) + (-1)^k · e^{-2πi·u·s/W} · F(k, u)``, with P and F the spectra of each half
    zero-filled to the full turn: both are computed once, and a candidate costs one pass over
    the wedge's coefficients. The mirror is pre-shifted to ``around`` so that the padding only
    needs to cover candidates within ``reach`` of it.
    """

    def __init__(self, sinogram: np.ndarray, around: float, reach: float, smoothing: float):
        angles, columns = sinogram.shape
        self.columns = columns
        self.preshift = round(2 * around - (columns - 1))
        margin = int(np.ceil(2 * reach)) + 2
        self.width = int(sp_fft.next_fast_len(columns + 2 * margin, real=True))
        left = (self.width - columns) // 2
        pads = ((0, 0), (left, self.width - columns - left))
        mirror = _shifted(sinogram[:, ::-1], self.preshift)
        turn = 2 * angles
        k = np.rint(np.fft.fftfreq(turn) * turn)[:, None]  # exact integers, see filters.ramp
        u = np.arange(self.width // 2 + 1)[None, :]
        radius = _VO_SAMPLE_FRACTION * columns / 2
        wedge = (u * 2 * np.pi * radius < np.abs(k) * self.width) & (u > 1)
        wedge &= np.abs(k) > min(_VO_DROP_ROWS, int(0.05 * turn))
        # Gaussian smoothing of the stack, done as a weight: it favours the seam's energy,
        # which falls off with k, over the noise, which does not.
        weight = np.exp(-2 * (np.pi * smoothing) ** 2 * ((k / turn) ** 2 + (u / self.width) ** 2))
        sign = np.where(k % 2 == 0, 1.0, -1.0)
        spectra = [
            sp_fft.fft(sp_fft.rfft(np.pad(half, pads, mode="edge"), axis=1), n=turn, axis=0)
            * weight
            for half in (sinogram, mirror)
        ]
        self.p = spectra[0][wedge].astype(np.complex64)
        self.f = (spectra[1] * sign)[wedge].astype(np.complex64)
        self.u = np.broadcast_to(u, wedge.shape)[wedge]

    def at(self, centres: np.ndarray) -> np.ndarray:
        """Wedge energy for each candidate centre (columns of this sinogram); lower is better."""
        frequencies = np.arange(self.width // 2 + 1)
        scores = np.empty(len(centres))
        for index, centre in enumerate(centres):
            shift = 2 * centre - (self.columns - 1) - self.preshift
            ramp = np.exp(-2j * np.pi * frequencies * shift / self.width).astype(np.complex64)
            scores[index] = np.abs(self.p + ramp[self.u] * self.f).mean()
        return scores


def _shifted(image: np.ndarray, shift: int) -> np.ndarray:
    """``image`` moved ``shift`` columns to the right, the vacated columns taking edge values."""
    columns = image.shape[-1]
    padded = np.pad(image, ((0, 0), (max(shift, 0), max(-shift, 0))), mode="edge")
    start = max(-shift, 0)
    return padded[:, start : start + columns]


def _bin_columns(sinogram: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` adjacent columns; binned column j is centred on ``factor·j +
    (factor - 1)/2`` of the input."""
    columns = sinogram.shape[-1] // factor * factor
    return sinogram[:, :columns].reshape(sinogram.shape[0], -1, factor).mean(axis=-1)


def _vertex(x: np.ndarray, y: np.ndarray) -> float:
    """Minimum of the parabola through the lowest score and its neighbours, kept between them."""
    best = int(np.argmin(y))
    if best == 0 or best == len(x) - 1:
        return float(x[best])
    a, b, _ = np.polyfit(x[best - 1 : best + 2], y[best - 1 : best + 2], 2)
    return float(np.clip(-b / (2 * a), x[best - 1], x[best + 1])) if a > 0 else float(x[best])


def from_sinograms(sinograms: np.ndarray, theta: np.ndarray) -> CentreEstimate:
    """Rotation centre from minus-log sinograms, (n, angles, columns) or (angles, columns),
    ``theta`` in radians, evenly spaced over at least half a turn.

    Rows are averaged first: their mean is the sinogram of the mean slice, with the same axis
    and less noise. Vo's search then narrows down: binned columns on a copy binned to about
    ``_VO_COARSE_COLUMNS`` wide, over ``max(60, columns/8)`` columns either side of the middle
    (at most a quarter of the width); whole columns around the winner at full width; steps of
    ``_VO_FINE_STEP`` around that; the vertex of the parabola through the best three.
    """
    stack = np.asarray(sinograms, dtype=np.float32).reshape(-1, *np.shape(sinograms)[-2:])
    sinogram = stack[:, half_turn(theta), :].mean(axis=0, dtype=np.float64)
    columns = sinogram.shape[-1]
    middle = (columns - 1) / 2
    search = float(min(columns / 4, max(_VO_MIN_SEARCH, columns / 8)))
    factor = max(1, columns // _VO_COARSE_COLUMNS)
    binned_middle = (middle - (factor - 1) / 2) / factor
    coarse = _WedgeMetric(_bin_columns(sinogram, factor), binned_middle, search / factor, 3.0)
    steps = np.arange(-np.floor(search / factor), np.floor(search / factor) + 1)
    scores = coarse.at(binned_middle + steps)
    best = middle + factor * float(steps[np.argmin(scores)])
    confidence = 1.0 - float(scores.min()) / float(np.median(scores))
    fine = _WedgeMetric(sinogram, best, factor + 2, 2.0)
    near = best + np.arange(-factor - 1, factor + 2)
    best = float(near[np.argmin(fine.at(near))])
    near = best + np.arange(-1, 1 + _VO_FINE_STEP / 2, _VO_FINE_STEP)
    centre = _vertex(near, fine.at(near))
    return CentreEstimate(centre, "vo", float(np.clip(confidence, 0.0, 1.0)))


def estimate_centre(first: np.ndarray, opposite: np.ndarray) -> float:
    """Rotation centre (column) from two minus-log projections (rows, columns) taken 180°
    apart; the bare number of ``from_opposite_projections``, for callers that need no
    confidence."""
    return from_opposite_projections(first, opposite).centre
