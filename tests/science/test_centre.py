"""Rotation centre: from the 0° and 180° projections, and from sinograms (Vo's method)."""

from __future__ import annotations

import numpy as np
import pytest

from bl832_assets.science import dx
from bl832_assets.science.centre import (
    CentreEstimate,
    estimate_centre,
    from_opposite_projections,
    from_sinograms,
    measure_shift,
)
from bl832_assets.science.phantom import transmission
from bl832_assets.science.recon import flat_and_dark, minus_log
from bl832_assets.science.synth import rotation_centre, write_synthetic_scan

COLUMNS, ROWS, ANGLES = 256, 4, 181  # wide enough that the sample stays in view 50 px off
OFFSETS = [-50.0, -12.0, 0.0, 7.3, 50.0]


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Minus-log sinograms (rows, angles, columns) and theta of a noisy scan with defective
    columns, per centre offset; written once for the whole module."""
    folder = tmp_path_factory.mktemp("centre")
    loaded = {}
    for offset in OFFSETS:
        path = write_synthetic_scan(
            folder / f"offset{offset}.h5",
            columns=COLUMNS,
            rows=ROWS,
            angles=ANGLES,
            centre_offset=offset,
            defective_columns=6,
        )
        with dx.open_scan(path) as scan:
            flat, dark = flat_and_dark(scan, slice(0, ROWS))
            sinograms = minus_log(scan.sinograms(slice(0, ROWS)), flat[:, None], dark[:, None])
            loaded[offset] = sinograms, scan.theta
    return loaded


@pytest.mark.parametrize("offset", OFFSETS)
def test_opposite_projections_find_the_centre_within_half_a_pixel(
    scans: dict[float, tuple[np.ndarray, np.ndarray]], offset: float
) -> None:
    sinograms, _ = scans[offset]
    estimate = from_opposite_projections(sinograms[:, 0], sinograms[:, -1])
    assert estimate.centre == pytest.approx(rotation_centre(COLUMNS, offset), abs=0.5)
    assert estimate.method == "cross-correlation"
    assert estimate.confidence > 0.5  # measured 0.80..1.00


@pytest.mark.parametrize("offset", OFFSETS)
def test_sinograms_find_the_centre_within_half_a_pixel(
    scans: dict[float, tuple[np.ndarray, np.ndarray]], offset: float
) -> None:
    sinograms, theta = scans[offset]
    estimate = from_sinograms(sinograms, theta)
    assert estimate.centre == pytest.approx(rotation_centre(COLUMNS, offset), abs=0.5)
    assert estimate.method == "vo"
    assert estimate.confidence > 0.5  # measured 0.64..0.88


def test_pure_noise_gets_a_low_confidence_from_both_methods() -> None:
    noise = np.random.default_rng(1).normal(size=(ROWS, ANGLES, COLUMNS)).astype(np.float32)
    theta = np.deg2rad(np.linspace(0, 180, ANGLES))
    assert from_opposite_projections(noise[:, 0], noise[:, -1]).confidence < 0.3  # 0.17
    assert from_sinograms(noise, theta).confidence < 0.15  # 0.04


def test_a_sample_wider_than_the_field_of_view_does_not_pull_the_centre(
    scans: dict[float, tuple[np.ndarray, np.ndarray]],
) -> None:
    # Cut the detector so the capillary runs off both edges, as in local tomography.
    sinograms, _ = scans[7.3]
    cut = sinograms[..., 60:236]
    estimate = from_opposite_projections(cut[:, 0], cut[:, -1])
    assert estimate.centre == pytest.approx(rotation_centre(COLUMNS, 7.3) - 60, abs=0.5)


def test_columns_that_drifted_since_the_flat_field_do_not_pull_the_centre() -> None:
    columns, centre = 200, 107.3
    x = np.arange(columns, dtype=np.float64)

    def sample(position: np.ndarray) -> np.ndarray:
        return np.exp(-(((position - 80) / 12) ** 2)) + 0.6 * np.exp(-(((position - 120) / 5) ** 2))

    rows = np.linspace(1.0, 1.3, 8)[:, None]
    first, opposite = rows * sample(x), rows * sample(2 * centre - x)
    rng = np.random.default_rng(2)
    drift = np.zeros(columns)  # 20 columns off by ±0.5 in both: measured 0.33 px off if left in
    drift[rng.choice(np.arange(20, 180), 20, replace=False)] = 0.5 * rng.choice([-1, 1], 20)
    estimate = from_opposite_projections(first + drift, opposite + drift)
    assert estimate.centre == pytest.approx(centre, abs=0.1)


def test_a_full_turn_scan_uses_its_first_half_turn() -> None:
    theta = np.deg2rad(np.arange(0, 360, 1.5))
    centre = rotation_centre(COLUMNS, -21.6)
    counts = transmission(theta, columns=COLUMNS, rows=2, centre=centre)
    sinograms = -np.log(counts).transpose(1, 0, 2).astype(np.float32)
    assert from_sinograms(sinograms, theta).centre == pytest.approx(centre, abs=0.5)


def test_less_than_half_a_turn_is_refused() -> None:
    theta = np.deg2rad(np.linspace(0, 90, 91))
    with pytest.raises(ValueError, match="half a turn"):
        from_sinograms(np.zeros((91, 64), dtype=np.float32), theta)


def test_an_estimate_is_a_frozen_record() -> None:
    estimate = CentreEstimate(30.25, "given", 1.0)
    with pytest.raises(AttributeError):
        estimate.centre = 31.0  # type: ignore[misc]


def _bump(peak: float, columns: int = 96) -> np.ndarray:
    return np.exp(-(((np.arange(columns) - peak) / 6.0) ** 2))[None, :]


def test_measured_shift_is_sub_pixel() -> None:
    # flipped[j] = first[j + d]: the bump at 40 reappears at 43.25, so d = -3.25
    assert measure_shift(_bump(40.0), _bump(43.25)) == pytest.approx(-3.25, abs=0.02)


def test_mirror_images_about_a_known_column_give_that_column() -> None:
    opposite = _bump(2 * 42.6 - 30.0)  # the bump at 30 mirrored about column 42.6
    assert estimate_centre(_bump(30.0), opposite) == pytest.approx(42.6, abs=0.02)


def test_the_bare_number_matches_the_estimate(
    scans: dict[float, tuple[np.ndarray, np.ndarray]],
) -> None:
    sinograms, _ = scans[0.0]
    first, opposite = sinograms[:, 0], sinograms[:, -1]
    assert estimate_centre(first, opposite) == from_opposite_projections(first, opposite).centre
