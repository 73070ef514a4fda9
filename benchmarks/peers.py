"""The reconstruction methods ``bench_recon`` times: ours and the CPU peers a beamline would
otherwise reach for, each set up as fairly as we know how.

Every method takes a slab of minus-log sinograms (slices, angles, columns) with the rotation
axis at column (C-1)/2 and returns slices (slices, C, C) in attenuation per pixel length,
together with the ``Frame`` it draws them in (see ``analytic``). Fairness, per peer:

- the sinogram is already minus-log, so algotom's ``apply_log`` (on by default, it would take
  the log a second time) is off;
- each peer gets the smoothing filter from its own menu that scored best on this phantom at
  512 columns (ramp, Shepp-Logan, cosine, Hamming, Hann, Parzen... tried; ours keeps the
  pipeline's Butterworth, which it does not get to tune);
- astra uses the Joseph ('linear') projector: as fast as 'line' here and 0.01 SSIM better;
- scikit-image puts the axis at column C//2, half a column from ours, so its sinogram is moved
  half a column by a Fourier shift (exact for this band-limited data, not timed) and it is
  scored against a truth drawn around C//2;
- scikit-image, astra and algotom all have y pointing up (rows flipped relative to ours):
  their truth is drawn flipped, rather than flipping their output;
- every library runs one thread per process and the harness runs one process per core,
  which is how our pipeline uses the cores and gives each peer perfect parallel scaling.

Libraries are imported inside the functions: the harness sets the thread limits in the
environment before its worker processes start, and numba and OpenMP read them at import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from analytic import Frame

Reconstruct = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


@dataclass(frozen=True)
class Method:
    name: str
    settings: str  # what was set, for the table's notes
    frame: Callable[[int], Frame]  # columns -> where the object sits in its output
    reconstruct: Reconstruct
    slow: bool = False  # minutes per slice at ALS size: time one slice per core there


def _flipped(columns: int) -> Frame:
    centre = (columns - 1) / 2
    return Frame(centre, centre, -1)


def _flipped_integer_axis(columns: int) -> Frame:
    return Frame(columns // 2, columns // 2, -1)


def ours(slab: np.ndarray, theta: np.ndarray, centre: float) -> np.ndarray:
    from bl832_assets.science.engines import get_engine

    return get_engine("dfi").reconstruct(slab, theta, centre, filter_name="butterworth")


def skimage_iradon(slab: np.ndarray, theta: np.ndarray, centre: float) -> np.ndarray:
    from scipy.ndimage import fourier_shift
    from skimage.transform import iradon

    columns = slab.shape[-1]
    images = []
    for sinogram in slab:
        spectrum = fourier_shift(np.fft.fft(sinogram, axis=1), (0, columns // 2 - centre), axis=1)
        moved = np.fft.ifft(spectrum, axis=1).real
        images.append(
            iradon(moved.T, theta=np.rad2deg(theta), output_size=columns, filter_name="cosine")
        )
    return np.asarray(images, dtype=np.float32)


def astra_fbp(slab: np.ndarray, theta: np.ndarray, centre: float) -> np.ndarray:
    import astra

    columns = slab.shape[-1]
    if centre != (columns - 1) / 2:
        raise ValueError("astra's detector is centred on (C-1)/2; shift the sinogram first")
    projections = astra.create_proj_geom("parallel", 1.0, columns, theta)
    volume = astra.create_vol_geom(columns, columns)
    projector = astra.create_projector("linear", projections, volume)
    images = []
    for sinogram in slab:
        sino_id = astra.data2d.create("-sino", projections, sinogram)
        rec_id = astra.data2d.create("-vol", volume)
        config = astra.astra_dict("FBP")
        config.update(
            ProjectionDataId=sino_id,
            ReconstructionDataId=rec_id,
            ProjectorId=projector,
            FilterType="hann",
        )
        algorithm = astra.algorithm.create(config)
        astra.algorithm.run(algorithm)
        images.append(astra.data2d.get(rec_id))
        astra.algorithm.delete(algorithm)
        astra.data2d.delete([sino_id, rec_id])
    astra.projector.delete(projector)
    return np.asarray(images, dtype=np.float32)


def _algotom(name: str, slab: np.ndarray, theta: np.ndarray, centre: float, **extra) -> np.ndarray:
    """One algotom reconstructor over a slab, with the fair settings: no second log, Hamming."""
    from algotom.rec import reconstruction

    reconstruct = getattr(reconstruction, name)
    common = {"ratio": None, "filter_name": "hamming", "apply_log": False, "ncore": 1}
    return np.asarray(
        [reconstruct(sinogram, centre, theta, **common, **extra) for sinogram in slab],
        dtype=np.float32,
    )


def algotom_fbp(slab: np.ndarray, theta: np.ndarray, centre: float) -> np.ndarray:
    return _algotom("fbp_reconstruction", slab, theta, centre, gpu=False)


def algotom_dfi(slab: np.ndarray, theta: np.ndarray, centre: float) -> np.ndarray:
    return _algotom("dfi_reconstruction", slab, theta, centre)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("ours (dfi)", "finufft, butterworth", Frame.ours, ours),
        Method("algotom dfi", "hamming, apply_log=False", _flipped, algotom_dfi),
        Method("algotom fbp", "hamming, CPU, apply_log=False", _flipped, algotom_fbp),
        Method("astra FBP", "CPU, 'linear' projector, hann", _flipped, astra_fbp, slow=True),
        Method(
            "skimage iradon",
            "cosine, axis moved to C//2",
            _flipped_integer_axis,
            skimage_iradon,
            slow=True,
        ),
    )
}
OURS = "ours (dfi)"
