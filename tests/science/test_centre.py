"""Rotation centre from the 0° and 180° projections."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from bl832_assets.science import dx
from bl832_assets.science.centre import estimate_centre, measure_shift
from bl832_assets.science.errors import ScanFormatError
from bl832_assets.science.recon import find_centre
from bl832_assets.science.synth import rotation_centre


@pytest.mark.parametrize("offset", [0.0, 7.3, -12.0])
def test_centre_is_found_within_half_a_pixel_on_a_noisy_scan(
    make_scan: Callable[..., Path], offset: float
) -> None:
    path = make_scan(columns=128, rows=8, angles=181, centre_offset=offset)
    with dx.open_scan(path) as scan:
        assert find_centre(scan) == pytest.approx(rotation_centre(128, offset), abs=0.5)


def _bump(peak: float, columns: int = 96) -> np.ndarray:
    return np.exp(-(((np.arange(columns) - peak) / 6.0) ** 2))[None, :]


def test_measured_shift_is_sub_pixel() -> None:
    # flipped[j] = first[j + d]: the bump at 40 reappears at 43.25, so d = -3.25
    assert measure_shift(_bump(40.0), _bump(43.25)) == pytest.approx(-3.25, abs=0.02)


def test_mirror_images_about_a_known_column_give_that_column() -> None:
    opposite = _bump(2 * 42.6 - 30.0)  # the bump at 30 mirrored about column 42.6
    assert estimate_centre(_bump(30.0), opposite) == pytest.approx(42.6, abs=0.02)


def test_a_scan_without_a_half_turn_needs_an_explicit_centre(
    make_scan: Callable[..., Path],
) -> None:
    path = make_scan()
    with h5py.File(path, "r+") as f:
        f[dx.THETA][...] = np.linspace(0, 90, f[dx.THETA].shape[0])
    with dx.open_scan(path) as scan, pytest.raises(ScanFormatError, match="180") as caught:
        find_centre(scan)
    assert caught.value.field == dx.THETA
