"""Frequency filters: a ramp with a DC term, shaped by the window each name documents."""

from __future__ import annotations

import numpy as np
import pytest

from bl832_assets.science.filters import FILTER_NAMES, frequency_filter, padded_width, ramp

WIDTH = 256


def _window(name: str) -> np.ndarray:
    """The filter divided by the ramp: the window alone, DC (index 0) to Nyquist (index -1)."""
    return frequency_filter(WIDTH, name) / ramp(WIDTH)  # type: ignore[arg-type]


def test_ramp_keeps_the_dc_term_of_the_discrete_kernel() -> None:
    response = frequency_filter(WIDTH, "ramp")
    assert response[0] > 0  # |f| would be exactly 0 here and bias every slice
    assert response[-1] == pytest.approx(0.5, rel=0.05)  # ramp reaches ~0.5 at Nyquist


@pytest.mark.parametrize(
    ("name", "at_nyquist"),
    [
        ("ramp", 1.0),
        ("shepp-logan", 2 / np.pi),
        ("cosine", 0.0),
        ("hamming", 0.08),
        ("hann", 0.0),
        ("butterworth", 1 / 17),
        ("parzen", 0.0),
    ],
)
def test_each_window_passes_dc_and_ends_at_its_documented_nyquist_value(
    name: str, at_nyquist: float
) -> None:
    window = _window(name)
    assert window[0] == pytest.approx(1.0)
    assert window[-1] == pytest.approx(at_nyquist, abs=1e-6)
    assert np.all(np.diff(window) <= 1e-12)  # never boosts a higher frequency


def test_butterworth_is_gridrecs_half_nyquist_order_two() -> None:
    f = np.fft.rfftfreq(WIDTH)
    assert _window("butterworth")[f == 0.25][0] == pytest.approx(0.5)
    assert _window("butterworth")[5] == pytest.approx(1.0, abs=0.01)


def test_smoothing_order_from_ramp_to_parzen() -> None:
    high = np.fft.rfftfreq(WIDTH) > 0.25
    energy = {name: float(_window(name)[high].sum()) for name in FILTER_NAMES}
    assert energy["ramp"] > energy["shepp-logan"] > energy["cosine"] > energy["hann"]
    assert energy["hann"] > energy["parzen"] and energy["butterworth"] > energy["parzen"]


def test_unknown_filter_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="shepp-logan"):
        frequency_filter(64, "shepp")  # type: ignore[arg-type]


def test_padding_is_a_power_of_two_at_least_twice_the_width() -> None:
    assert [padded_width(n) for n in (64, 100, 2560)] == [128, 256, 8192]
