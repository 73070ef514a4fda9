"""Reconstruction engines, held to the phantom: orientation, centre convention, values, speed."""

from __future__ import annotations

import functools
import threading
import time

import numpy as np
import pytest
from skimage.metrics import structural_similarity
from skimage.registration import phase_cross_correlation

from bl832_assets.science.engines import ReconEngine, engine_names, get_engine
from bl832_assets.science.engines.geometry import angle_weights, circular_mask
from bl832_assets.science.filters import FILTER_NAMES
from bl832_assets.science.phantom import DEFAULT_PIXEL_SIZE_MM, phantom_slice, transmission

ENGINES = ("dfi", "fbp")


@functools.cache
def _scan(columns: int, offset: float) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Noise-free sinogram (1, angles, columns) of the phantom's middle slice, its angles
    (0..180° inclusive, about π/2 per column as at the beamline), the axis column, and the
    truth in attenuation per pixel."""
    theta = np.linspace(0, np.pi, int(np.ceil(columns * np.pi / 2)))
    centre = (columns - 1) / 2 + offset
    sinogram = -np.log(transmission(theta, columns=columns, rows=1, centre=centre))
    truth = phantom_slice(0, columns=columns, rows=1) * (DEFAULT_PIXEL_SIZE_MM / 10)
    return sinogram.transpose(1, 0, 2).astype(np.float32), theta, centre, truth


def _inside(columns: int) -> np.ndarray:
    grid = np.arange(columns) - (columns - 1) / 2
    return grid[None, :] ** 2 + grid[:, None] ** 2 <= (columns / 2) ** 2


def _shift_from(truth: np.ndarray, image: np.ndarray) -> float:
    """Largest displacement (pixels, to 0.02) between image and truth inside the circle."""
    inside = _inside(truth.shape[-1])
    shift = phase_cross_correlation(truth * inside, image * inside, upsample_factor=50)[0]
    return float(np.abs(shift).max())


def _matches_phantom(image: np.ndarray, truth: np.ndarray) -> bool:
    """Same orientation and the same axis to a tenth of a pixel, and the same values."""
    inside = _inside(truth.shape[-1])
    pearson = np.corrcoef(image[inside], truth[inside])[0, 1]
    return _shift_from(truth, image) <= 0.1 and pearson >= 0.97


def _reconstruct(engine: str, columns: int, offset: float, **options: str) -> np.ndarray:
    sinogram, theta, centre, _ = _scan(columns, offset)
    return get_engine(engine).reconstruct(sinogram, theta, centre, **options)[0]  # type: ignore[arg-type]


def _high_frequency_share(image: np.ndarray) -> float:
    power = np.abs(np.fft.fft2(circular_mask(image.copy()))) ** 2
    f = np.fft.fftfreq(image.shape[-1])
    return float(power[np.hypot(f[:, None], f[None, :]) > 0.25].sum() / power.sum())


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("columns", "offset"), [(128, 7.3), (129, -4.6)])
def test_golden_orientation_and_axis_match_the_phantom(
    engine: str, columns: int, offset: float
) -> None:
    truth = _scan(columns, offset)[3]
    image = _reconstruct(engine, columns, offset)
    assert _matches_phantom(image, truth)  # measured: shift ≤ 0.02 px, Pearson ≥ 0.99
    for wrong in (image.T, image[::-1], image[:, ::-1], image[::-1, ::-1]):
        assert not _matches_phantom(wrong, truth)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_half_pixel_centre_convention_error_fails_the_golden_test(engine: str) -> None:
    """A library that puts the axis at N/2 instead of (N-1)/2 is off by half a pixel."""
    sinogram, theta, centre, truth = _scan(128, 7.3)
    image = get_engine(engine).reconstruct(sinogram, theta, centre + 0.5)[0]
    assert _shift_from(truth, image) > 0.3  # measured 0.64
    assert not _matches_phantom(image, truth)


def test_direct_fourier_scores_ssim_above_0_9_and_agrees_with_back_projection() -> None:
    truth = _scan(256, 3.5)[3]
    inside = _inside(256)
    dfi, fbp = _reconstruct("dfi", 256, 3.5), _reconstruct("fbp", 256, 3.5)
    data_range = float(truth.max() - truth.min())
    _, ssim = structural_similarity(truth, dfi, data_range=data_range, full=True)
    assert ssim[inside].mean() >= 0.9  # measured 0.987 (fbp: 0.984)
    difference = np.abs(dfi - fbp)[inside].mean() / np.abs(truth[inside]).mean()
    assert difference < 0.03  # measured 0.011


@pytest.mark.parametrize("engine", ENGINES)
def test_a_uniform_disc_reconstructs_to_its_attenuation(engine: str) -> None:
    columns, radius, mu = 96, 30.0, 0.02
    theta = np.deg2rad(np.linspace(0, 180, 241))
    s = np.arange(columns) - (columns - 1) / 2
    chord = 2 * np.sqrt(np.clip(radius**2 - s**2, 0, None))
    sinogram = np.broadcast_to(mu * chord, (1, theta.size, columns)).astype(np.float32)
    image = get_engine(engine).reconstruct(sinogram, theta, (columns - 1) / 2, filter_name="ramp")
    middle = image[0, columns // 2 - 10 : columns // 2 + 10, columns // 2 - 10 : columns // 2 + 10]
    assert middle.mean() == pytest.approx(mu, rel=0.02)
    assert abs(image[0, 2, 2]) < 0.05 * mu  # outside the disc


@pytest.mark.parametrize("engine", ENGINES)
def test_smoother_filters_leave_less_high_frequency_energy(engine: str) -> None:
    share = {
        f: _high_frequency_share(_reconstruct(engine, 128, 7.3, filter_name=f))
        for f in FILTER_NAMES
    }
    assert share["ramp"] > share["shepp-logan"] > share["cosine"] > share["hamming"]
    assert share["hamming"] > share["hann"] > share["parzen"]
    assert share["ramp"] > share["butterworth"] > share["parzen"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("slices", [1, 3])
def test_each_slice_of_a_slab_is_reconstructed_on_its_own(engine: str, slices: int) -> None:
    """Odd slab sizes included: the direct Fourier engine packs slices in pairs, and one slice
    of a pair must not leak into the other (the zero slice stays zero)."""
    sinogram, theta, centre, _ = _scan(64, 2.0)
    scales = (1.0, 0.0, 2.0)[:slices]
    slab = np.concatenate([sinogram * s for s in scales])
    result = get_engine(engine).reconstruct(slab, theta, centre)
    alone = get_engine(engine).reconstruct(sinogram, theta, centre)[0]
    assert result.shape == (slices, 64, 64) and result.dtype == np.float32
    for image, scale in zip(result, scales, strict=True):
        np.testing.assert_allclose(image, scale * alone, atol=1e-3 * np.abs(alone).max())


@pytest.mark.parametrize("engine", ENGINES)
def test_concurrent_calls_give_the_same_slices_as_one_at_a_time(engine: str) -> None:
    sinogram, theta, centre, _ = _scan(64, 2.0)
    slabs = [sinogram * s for s in (1.0, 2.0, 3.0, 4.0)]
    expected = [get_engine(engine).reconstruct(s, theta, centre) for s in slabs]
    results: dict[int, np.ndarray] = {}

    def run(index: int) -> None:
        results[index] = get_engine(engine).reconstruct(slabs[index], theta, centre)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(slabs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, image in enumerate(expected):
        np.testing.assert_allclose(results[index], image, rtol=1e-5, atol=1e-7)


def test_registry_knows_both_engines_and_names_them_when_asked_for_another() -> None:
    assert set(ENGINES) <= set(engine_names())
    engine: ReconEngine = get_engine("dfi")
    assert engine.name == "dfi" and get_engine("fbp").name == "fbp"
    with pytest.raises(ValueError, match="dfi, fbp"):
        get_engine("gpu-astra")


def test_engines_refuse_a_slab_whose_angles_do_not_match_theta() -> None:
    sinogram, theta, centre, _ = _scan(64, 2.0)
    for engine in ENGINES:
        with pytest.raises(ValueError, match="angles"):
            get_engine(engine).reconstruct(sinogram, theta[:-1], centre)


def test_angle_weights_sum_to_pi_whether_180_or_360_degrees() -> None:
    half = np.deg2rad(np.linspace(0, 180, 181))
    full = np.deg2rad(np.linspace(0, 360, 361))
    assert angle_weights(half).sum() == pytest.approx(np.pi)
    assert angle_weights(full).sum() == pytest.approx(np.pi)
    assert angle_weights(half)[0] == pytest.approx(angle_weights(half)[1] / 2)


def test_circular_mask_zeroes_the_corners_only() -> None:
    image = circular_mask(np.ones((2, 32, 32), dtype=np.float32))
    assert image[:, 0, 0].sum() == 0 and image[:, 16, 16].min() == 1
    assert image[0].sum() == pytest.approx(np.pi * 16**2, rel=0.05)


def test_per_slice_time_at_512_and_1024_columns() -> None:
    """Informational (run with -s): seconds per slice, 181 angles, first call included."""
    for columns in (512, 1024):
        theta = np.linspace(0, np.pi, 181)
        slab = np.random.default_rng(0).random((2, theta.size, columns), dtype=np.float32)
        for engine in ENGINES:
            count = 2 if engine == "dfi" else 1  # numpy back-projection: seconds per slice
            started = time.perf_counter()
            get_engine(engine).reconstruct(slab[:count], theta, (columns - 1) / 2)
            seconds = (time.perf_counter() - started) / count
            print(f"{engine} {columns} columns x {theta.size} angles: {seconds:.3f} s/slice")
