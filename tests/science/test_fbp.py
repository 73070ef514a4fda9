"""Filtered back-projection building blocks."""

from __future__ import annotations

import numpy as np
import pytest

from bl832_assets.science import fbp


def test_ramp_filter_keeps_the_dc_term_of_the_discrete_kernel() -> None:
    response = fbp.frequency_filter(256, "ramp")
    assert response[0] > 0  # |f| would be exactly 0 here and bias every slice
    assert response[-1] == pytest.approx(0.5, rel=0.05)  # ramp reaches ~0.5 at Nyquist


def test_butterworth_rolls_off_the_ramp_at_high_frequencies() -> None:
    ramp, smooth = fbp.frequency_filter(256, "ramp"), fbp.frequency_filter(256, "butterworth")
    assert smooth[5] == pytest.approx(ramp[5], rel=0.01)
    assert smooth[-1] < 0.1 * ramp[-1]


def test_unknown_filter_is_refused() -> None:
    with pytest.raises(ValueError, match="shepp"):
        fbp.frequency_filter(64, "shepp")  # type: ignore[arg-type]


def test_padding_is_a_power_of_two_at_least_twice_the_width() -> None:
    assert [fbp.padded_width(n) for n in (64, 100, 2560)] == [128, 256, 8192]


def test_angle_weights_sum_to_pi_whether_180_or_360_degrees() -> None:
    half = np.deg2rad(np.linspace(0, 180, 181))
    full = np.deg2rad(np.linspace(0, 360, 361))
    assert fbp.angle_weights(half).sum() == pytest.approx(np.pi)
    assert fbp.angle_weights(full).sum() == pytest.approx(np.pi)
    assert fbp.angle_weights(half)[0] == pytest.approx(fbp.angle_weights(half)[1] / 2)


def test_a_uniform_disc_reconstructs_to_its_attenuation() -> None:
    columns, radius, mu = 96, 30.0, 0.02
    theta = np.deg2rad(np.linspace(0, 180, 241))
    s = np.arange(columns) - (columns - 1) / 2
    chord = 2 * np.sqrt(np.clip(radius**2 - s**2, 0, None))
    sinogram = np.broadcast_to(mu * chord, (1, theta.size, columns)).astype(np.float32)
    image = fbp.reconstruct_slab(sinogram, theta, (columns - 1) / 2, "ramp")[0]
    centre = image[columns // 2 - 10 : columns // 2 + 10, columns // 2 - 10 : columns // 2 + 10]
    assert centre.mean() == pytest.approx(mu, rel=0.02)
    assert abs(image[2, 2]) < 0.05 * mu  # outside the disc


def test_circular_mask_zeroes_the_corners_only() -> None:
    image = fbp.circular_mask(np.ones((2, 32, 32), dtype=np.float32))
    assert image[:, 0, 0].sum() == 0 and image[:, 16, 16].min() == 1
    assert image[0].sum() == pytest.approx(np.pi * 16**2, rel=0.05)
