"""Direct Fourier reconstruction (gridrec's method) with a non-uniform FFT: the default engine.

By the Fourier-slice theorem the 1-D transform of a projection at angle θ is the slice's 2-D
transform along the line at θ. Filtering that line by the ramp (the Jacobian of polar
coordinates) and summing it over angles onto the image grid is one type-1 non-uniform FFT
(``finufft``), which grids the polar samples and inverse-transforms in O(N² log N) per slice
instead of back-projection's O(angles·N²).

Two slices share one transform, as in gridrec: slice a in the real part and slice b in the
imaginary part of one complex sinogram. Both images are real, so the real and imaginary parts
of the result separate them exactly. The Nyquist sample is dropped because it has no mirror
partner and would leak one slice into the other.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import finufft
import numpy as np
import scipy.fft

from bl832_assets.science.engines.geometry import angle_weights, check_inputs, pad_columns
from bl832_assets.science.filters import FilterName, frequency_filter


def fourier_width(columns: int) -> int:
    """Padded detector width: room for the diagonal of the C-by-C grid (C·√2), so no pixel's
    ray wraps around the periodic transform, rounded up to a fast FFT length."""
    return scipy.fft.next_fast_len(int(np.ceil(columns * np.sqrt(2))))


def pack_pairs(sinograms: np.ndarray) -> np.ndarray:
    """(n, ...) real to (ceil(n / 2), ...) complex64: slice 2k real, 2k+1 imaginary; an odd
    last slice goes alone with a zero imaginary part."""
    packed = np.zeros((-(-len(sinograms) // 2), *sinograms.shape[1:]), dtype=np.complex64)
    packed.real = sinograms[0::2]
    packed.imag[: len(sinograms) // 2] = sinograms[1::2]
    return packed


def unpack_pairs(images: np.ndarray, slices: int) -> np.ndarray:
    """Inverse of ``pack_pairs`` for the reconstructed images."""
    result = np.empty((slices, *images.shape[1:]), dtype=np.float32)
    result[0::2] = images.real
    result[1::2] = images.imag[: slices // 2]
    return result


def polar_samples(
    theta: np.ndarray, axis: float, columns: int, width: int, filter_name: FilterName
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each (angle, frequency) sample of the FFT of projections padded to ``width``,
    with the rotation axis at padded column ``axis``, lies in the slice's 2-D spectrum (``u``,
    ``v`` in radians per pixel, float32), and the complex64 factor that filters it, weights it
    by its share of angle and frequency, and moves the origin.

    The same for every slab of a scan and as costly to build as one transform, so the last two
    are kept (read-only) for the next slab.
    """
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    return _polar_samples(theta.tobytes(), float(axis), columns, width, filter_name)


@functools.lru_cache(maxsize=2)
def _polar_samples(
    theta_bytes: bytes, axis: float, columns: int, width: int, filter_name: FilterName
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The origin moves twice: from padded column 0 to the rotation axis, and from finufft's
    integer mode -C//2 to our first pixel at -(C-1)/2, half a pixel away when C is even."""
    theta = np.frombuffer(theta_bytes, dtype=np.float64)
    freq = np.fft.fftfreq(width)  # cycles per pixel
    response = frequency_filter(width, filter_name)[np.abs(np.rint(freq * width)).astype(int)]
    if width % 2 == 0:
        response[width // 2] = 0.0  # Nyquist: no mirror partner, see the module docstring
    radians = (2 * np.pi * freq).astype(np.float32)
    u = np.outer(np.cos(theta).astype(np.float32), radians)
    v = np.outer(np.sin(theta).astype(np.float32), radians)
    to_axis = np.exp(1j * 2 * np.pi * freq * axis) * response / width
    factor = np.outer(angle_weights(theta), to_axis).astype(np.complex64)
    half_pixel = columns // 2 - (columns - 1) / 2
    if half_pixel:
        factor *= np.exp(np.complex64(1j * half_pixel) * (u + v))
    for array in (u, v, factor):
        array.setflags(write=False)
    return u, v, factor


@dataclass(frozen=True)
class FourierEngine:
    """``dfi``: gridrec-style direct Fourier inversion through ``finufft``, in single precision.

    ``eps`` is finufft's relative tolerance; ``upsampfac`` its oversampling of the fine grid
    (1.25 trades a wider kernel for a smaller FFT). Each call runs ``threads`` threads;
    concurrent calls are safe (calls release the GIL and finufft makes FFTW's planner
    thread-safe), so with one slab per core keep ``threads=1``.
    """

    name: str = "dfi"
    eps: float = 1e-3  # SSIM 0.9977 at 2560 columns, as 1e-4; kernel 5 wide, not 7
    upsampfac: float = 1.25
    threads: int = 1

    def reconstruct(
        self,
        sinograms: np.ndarray,
        theta: np.ndarray,
        centre: float,
        *,
        filter_name: FilterName = "butterworth",
    ) -> np.ndarray:
        check_inputs(sinograms, theta)
        slices, _, columns = sinograms.shape
        width = fourier_width(columns)
        padded, left = pad_columns(pack_pairs(sinograms), width)
        u, v, factor = polar_samples(theta, centre + left, columns, width, filter_name)
        spectra = scipy.fft.fft(padded, axis=-1, overwrite_x=True, workers=self.threads)
        spectra *= factor
        images = finufft.nufft2d1(
            v.ravel(),  # first output axis is y (image rows), second is x
            u.ravel(),
            spectra.reshape(len(spectra), -1),
            n_modes=(columns, columns),
            eps=self.eps,
            isign=1,
            nthreads=self.threads,
            upsampfac=self.upsampfac,
        )
        return unpack_pairs(images.reshape(-1, columns, columns), slices)
