"""Azimuthal integration against the truth: the AgBh rings of a synthetic exposure must come
out at q = 2πn/58.38 Å to within half a pixel, and a wrong geometry must not."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from bl832_assets.beamlines.bl733.dataset import Pair
from bl832_assets.beamlines.bl733.geometry import Geometry
from bl832_assets.beamlines.bl733.integrate import (
    CSV_COLUMNS,
    find_peaks,
    integrate,
    read_profile,
)
from bl832_assets.beamlines.bl733.payload import run_integration
from bl832_assets.beamlines.bl733.readers import read_edf
from bl832_assets.beamlines.bl733.synth import (
    AGBH_D_SPACING_ANGSTROM,
    DEFAULT_GEOMETRY,
    Calibrant,
    calibrant_q,
    write_mask,
)
from bl832_assets.science.errors import ScanFormatError
from bl832_assets.science.preview import INLINE_MARKDOWN_LIMIT

RINGS_CHECKED = 3


def half_pixel_in_q(geometry: Geometry, q: float) -> float:
    """How far q moves when a ring at ``q`` moves outwards by half a pixel: the tolerance a
    peak position earns from the detector's sampling alone."""
    assert geometry.pixel_size_m is not None
    wavelength, distance = geometry.wavelength_angstrom, geometry.distance_m
    radius = distance * np.tan(2 * np.arcsin(q * wavelength / (4 * np.pi)))
    outer = radius + min(geometry.pixel_size_m) / 2
    return float(4 * np.pi / wavelength * np.sin(np.arctan(outer / distance) / 2) - q)


def nearest(peaks: np.ndarray, q: float) -> float:
    return float(peaks[np.argmin(np.abs(peaks - q))])


def peaks_of(calibrant: Calibrant, geometry: Geometry) -> np.ndarray:
    image = read_edf(calibrant.pair.image).data
    return find_peaks(integrate(image, geometry, mask=calibrant.beamstop))


def test_the_first_rings_come_out_at_the_calibrants_q_within_half_a_pixel(
    calibrant: Calibrant,
) -> None:
    peaks = peaks_of(calibrant, calibrant.geometry)

    truth = calibrant_q(RINGS_CHECKED)
    np.testing.assert_allclose(truth, 2 * np.pi * np.arange(1, 4) / AGBH_D_SPACING_ANGSTROM)
    for ring in truth:
        tolerance = half_pixel_in_q(calibrant.geometry, ring)
        assert tolerance < 0.01 * ring  # the geometry resolves the rings to better than 1 %
        assert abs(nearest(peaks, ring) - ring) < tolerance, (ring, peaks)
    assert len(peaks) == len(calibrant.rings_q)  # every ring on the image, nothing else


def test_a_distance_three_percent_off_moves_every_ring_out_of_tolerance(
    calibrant: Calibrant,
) -> None:
    wrong = calibrant.geometry.model_copy(update={"distance_m": 0.515})

    peaks = peaks_of(calibrant, wrong)

    for ring in calibrant_q(RINGS_CHECKED):
        assert abs(nearest(peaks, ring) - ring) > 2 * half_pixel_in_q(calibrant.geometry, ring)


def test_without_the_beamstop_mask_its_shadow_edge_is_a_false_peak(calibrant: Calibrant) -> None:
    image = read_edf(calibrant.pair.image).data

    unmasked = find_peaks(integrate(image, calibrant.geometry))

    assert unmasked[0] < 0.5 * calibrant.rings_q[0]
    assert len(unmasked) == len(calibrant.rings_q) + 1


def test_the_module_gap_never_counts_as_intensity(calibrant: Calibrant) -> None:
    image = read_edf(calibrant.pair.image).data
    assert (image < 0).any()

    profile = integrate(image, calibrant.geometry, mask=calibrant.beamstop, npt=200)

    assert profile.q.size <= 200
    assert (profile.intensity > 1).all()  # the -1 pixels would drag bins towards zero


def test_run_integration_writes_profile_and_plot_and_reports_them(
    calibrant: Calibrant, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mask = write_mask(tmp_path / "mask.edf", calibrant.beamstop)

    metadata = run_integration(
        calibrant.pair, tmp_path / "out", DEFAULT_GEOMETRY, npt=500, mask_path=mask
    )

    csv = Path(str(metadata["path"]))
    profile = read_profile(csv)
    assert csv.read_text().splitlines()[2] == "# " + ",".join(CSV_COLUMNS)
    assert profile.q.size == metadata["points"] <= 500
    assert Path(str(metadata["plot_path"])).read_bytes().startswith(b"\x89PNG")
    assert metadata["geometry"] == calibrant.geometry.model_dump(mode="json")
    assert metadata["q_min"] == pytest.approx(profile.q[0], abs=1e-6)
    peaks = np.array(metadata["peaks_q"])
    np.testing.assert_allclose(peaks, calibrant.rings_q, rtol=0.01)
    preview = str(metadata["preview_profile"])
    assert len(preview) < INLINE_MARKDOWN_LIMIT
    assert re.fullmatch(r"!\[profile\]\(data:image/png;base64,[A-Za-z0-9+/=]+\)", preview)
    assert "integrating" in capsys.readouterr().err  # no Dagster here: the log goes to stderr
    assert not list((tmp_path / "out").glob(".*partial*"))


def test_run_integration_refuses_a_pair_whose_edf_has_not_arrived(
    calibrant: Calibrant, tmp_path: Path
) -> None:
    half = Pair(calibrant.pair.folder, calibrant.pair.stem, text=calibrant.pair.text)

    with pytest.raises(ScanFormatError, match=r"agbh_cal_2m\.edf: pair: incomplete"):
        run_integration(half, tmp_path / "out", DEFAULT_GEOMETRY)
    assert not (tmp_path / "out").exists()


def test_coarse_bins_still_place_the_rings_within_half_a_pixel(calibrant: Calibrant) -> None:
    image = read_edf(calibrant.pair.image).data

    profile = integrate(image, calibrant.geometry, mask=calibrant.beamstop, npt=150)
    peaks = find_peaks(profile)

    bin_width = float(np.diff(profile.q).mean())
    for ring in calibrant_q(RINGS_CHECKED):
        tolerance = half_pixel_in_q(calibrant.geometry, ring)
        assert bin_width > 2 * tolerance  # a bin centre alone could miss by more than that
        assert abs(nearest(peaks, ring) - ring) < tolerance, (ring, peaks)
