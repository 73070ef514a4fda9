"""Stripe removal in sinograms, which is ring removal in the slices.

A detector column whose response drifts from the flat field adds the same error to every
projection: a vertical stripe in the sinogram, a ring around the rotation axis in the slice.
Two published filters remove it before back-projection:

- ``"fw"``, Fourier-wavelet (Münch et al. 2009, Opt. Express 17, 8567; upstream's
  ``remove_stripe_fw``): a stripe is the part of the vertical wavelet details that does not
  change with angle, so each level's vertical details lose their lowest angular frequencies.
- ``"sort"``, sorting-based (Vo et al. 2018, Opt. Express 26, 28396): sorting every column by
  value turns a partial stripe into a full one and the object into smooth ramps, so a median
  along the detector in the sorted sinogram takes out the column error, and un-sorting returns
  every corrected value to its angle. The correction is computed on every eighth rank only and
  smoothed along rank (``stripe_correction`` says why that keeps the result): three times
  faster than the full computation.

Both are pure functions of their input (no shared state), so slabs can be cleaned in parallel
threads. Measurements that chose the default are in docs/reconstruction-rings-and-centre.md.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pywt
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

StripeMethod = Literal["fw", "sort", "none"]

FW_LEVEL = 8  # upstream's 8.3.2 settings: db5 wavelet, 8 levels, sigma 3, padding on
FW_WAVELET = "db5"
FW_SIGMA = 3.0
SORT_SIZE = 21  # median window in columns at the full detector width (Vo's published default)
FULL_WIDTH = 2560  # columns of the 8.3.2 detector unbinned
MIN_SORT_SIZE = 5
SORT_STEP = 8  # ranks between the sorted rows whose correction is computed
SORT_SMOOTH = 5  # of those rows averaged along rank: 40 ranks, 3 % of 1313 angles
_MEDIAN_BLOCK_ROWS = 64
_TRANSPOSE_BLOCK_ROWS = 64


def remove_stripes(
    sinograms: np.ndarray,
    *,
    method: StripeMethod = "sort",
    level: int = FW_LEVEL,
    wavelet: str = FW_WAVELET,
    sigma: float = FW_SIGMA,
    size: int | None = None,
) -> np.ndarray:
    """Sinograms without stripes, float32 and shaped like the input: (angles, columns) or
    (n, angles, columns) in minus-log units.

    ``"sort"`` is the default because it measured best (docs/reconstruction-rings-and-centre.md):
    at upstream's settings ``"fw"`` removes more of the rings but also flattens large features
    of the sample. ``level``, ``wavelet`` and ``sigma`` tune ``"fw"`` (``level`` is lowered to
    what the sinogram's size allows); ``size`` is ``"sort"``'s median window in columns, which
    must exceed twice the widest stripe (None: ``sort_window`` of the width)."""
    data = np.asarray(sinograms, dtype=np.float32)
    if data.ndim not in (2, 3):
        raise ValueError(f"expected (angles, columns) or (n, angles, columns), got {data.shape}")
    if method == "fw":
        return fourier_wavelet(data, level=level, wavelet=wavelet, sigma=sigma)
    if method == "sort":
        return sorting_median(data, sort_window(data.shape[-1]) if size is None else size)
    if method == "none":
        return data.copy()
    raise ValueError(f"unknown stripe removal {method!r}; expected 'fw', 'sort' or 'none'")


def _vertical_damping(rows: int, sigma: float) -> np.ndarray:
    """Gain per angular frequency of an ``rfft`` over ``rows``: 0 for what is constant over
    angle (the stripe), rising to 1 within a few ``sigma`` (the object)."""
    k = np.arange(rows // 2 + 1, dtype=np.float32)
    return -np.expm1(-(k**2) / (2 * sigma**2))[:, None]


def fourier_wavelet(sinograms: np.ndarray, *, level: int, wavelet: str, sigma: float) -> np.ndarray:
    """Münch's filter on a whole slab at once (the wavelet and Fourier steps run over the
    last two axes for every sinogram in one call).

    The angle axis is padded by an eighth, as upstream does, so that the Fourier damping
    (which treats angles as periodic) does not smear the jump between the last projection and
    the first into the sinogram; edge rows rather than upstream's zeros, so that the padding
    adds no step of its own."""
    angles, columns = sinograms.shape[-2:]
    pad = angles // 8
    top = pad // 2
    widths = [(0, 0)] * (sinograms.ndim - 2) + [(top, pad - top), (0, 0)]
    image = np.pad(sinograms, widths, mode="edge")
    level = min(level, pywt.dwt_max_level(min(image.shape[-2:]), pywt.Wavelet(wavelet).dec_len))
    details = []
    for _ in range(level):
        image, (horizontal, vertical, diagonal) = pywt.dwt2(image, wavelet, axes=(-2, -1))
        spectrum = np.fft.rfft(vertical, axis=-2) * _vertical_damping(vertical.shape[-2], sigma)
        vertical = np.fft.irfft(spectrum, n=vertical.shape[-2], axis=-2).astype(np.float32)
        details.append((horizontal, vertical, diagonal))
    for horizontal, vertical, diagonal in reversed(details):
        rows, cols = horizontal.shape[-2:]
        image = pywt.idwt2(
            (image[..., :rows, :cols], (horizontal, vertical, diagonal)), wavelet, axes=(-2, -1)
        )
    return np.ascontiguousarray(image[..., top : top + angles, :columns], dtype=np.float32)


def sort_window(columns: int) -> int:
    """``SORT_SIZE`` scaled to the sinogram's width, odd and at least ``MIN_SORT_SIZE``:
    binning narrows stripes and features alike, and a fixed window would flatten the sample
    of a narrow (binned or test-sized) sinogram."""
    return max(MIN_SORT_SIZE, round(SORT_SIZE * columns / FULL_WIDTH)) // 2 * 2 + 1


def sorting_median(
    sinograms: np.ndarray, size: int, *, step: int = SORT_STEP, smooth: int = SORT_SMOOTH
) -> np.ndarray:
    """Vo's sorting-based filter, one sinogram of the slab at a time: the temporaries (an
    index per value among them) stay a few sinograms' worth whatever the slab's size."""
    flat = sinograms.reshape(-1, *sinograms.shape[-2:])
    result = np.empty_like(flat)
    for index, sinogram in enumerate(flat):
        correction = stripe_correction(sinogram, size, step=step, smooth=smooth)
        np.subtract(sinogram, correction, out=result[index])
    return result.reshape(sinograms.shape)


def stripe_correction(sinogram: np.ndarray, size: int, *, step: int, smooth: int) -> np.ndarray:
    """What Vo's filter subtracts from one (angles, columns) sinogram.

    As published, every value of the sorted sinogram becomes the median of its ``size``
    neighbours along the detector: the filter subtracts ``sorted - median``. The stripe's part
    of that difference varies slowly with rank (a gain error is a constant in minus-log units),
    while the rest is the noise of each column's order statistics, uncorrelated from column to
    column. So the difference is computed only every ``step`` ranks (and at the last), averaged
    over ``smooth`` of those samples along rank, as Vo's 2-D variant also smooths along rank,
    and interpolated linearly to every rank. The median, the costliest step, shrinks ``step``
    times; rings and sample are kept as well as by the full computation
    (docs/reconstruction-rings-and-centre.md).

    The sinogram is transposed first so that each column's angles are contiguous: ``argsort``
    and the scatter back to angle order are two to three times faster along the last axis."""
    angles = sinogram.shape[0]
    by_column = _transposed(sinogram)
    order = np.argsort(by_column, axis=-1)
    ranks = np.unique(np.r_[np.arange(0, angles, step), angles - 1])
    sorted_rows = _transposed(
        np.take_along_axis(by_column, np.take(order, ranks, axis=-1), axis=-1)
    )
    sampled = ndimage.uniform_filter1d(
        sorted_rows - running_median(sorted_rows, size), smooth, axis=0, mode="nearest"
    )
    correction = np.empty_like(by_column)
    np.put_along_axis(correction, order, _every_rank(_transposed(sampled), ranks, angles), axis=-1)
    return _transposed(correction)


def _every_rank(sampled: np.ndarray, ranks: np.ndarray, angles: int) -> np.ndarray:
    """(columns, ranks sampled) → (columns, angles), linear between the sampled ranks."""
    position = np.interp(np.arange(angles), ranks, np.arange(ranks.size))
    below = position.astype(np.intp)
    above = np.minimum(below + 1, ranks.size - 1)
    weight = (position - below).astype(np.float32)
    result = np.take(sampled, below, axis=-1)
    result *= 1 - weight
    result += np.take(sampled, above, axis=-1) * weight
    return result


def _transposed(image: np.ndarray) -> np.ndarray:
    """``image.T``, contiguous. Copied a band of rows at a time so that the band stays in
    cache while its columns are written out: about seven times faster than
    ``np.ascontiguousarray(image.T)`` on a 2560 x 1313 sinogram."""
    result = np.empty(image.shape[::-1], dtype=image.dtype)
    for start in range(0, image.shape[0], _TRANSPOSE_BLOCK_ROWS):
        band = slice(start, start + _TRANSPOSE_BLOCK_ROWS)
        result[:, band] = image[band].T
    return result


def running_median(image: np.ndarray, size: int) -> np.ndarray:
    """Median over ``size`` neighbouring columns (rounded up to odd), mirrored at the edges.

    Partitioning sliding windows a block of rows at a time is about four times faster than
    ``scipy.ndimage.median_filter`` at 2560 columns, with the same result, and the block
    bounds the temporary copy of the windows (rows x columns x size) to a few megabytes."""
    half = min(size // 2, image.shape[-1] - 1)
    rows = image.reshape(-1, image.shape[-1])
    padded = np.pad(rows, ((0, 0), (half, half)), mode="reflect")
    result = np.empty_like(rows)
    for start in range(0, rows.shape[0], _MEDIAN_BLOCK_ROWS):
        block = slice(start, start + _MEDIAN_BLOCK_ROWS)
        windows = sliding_window_view(padded[block], 2 * half + 1, axis=-1)
        result[block] = np.partition(windows, half, axis=-1)[..., half]
    return result.reshape(image.shape)
