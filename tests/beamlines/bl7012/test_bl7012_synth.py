"""Synthetic COSMIC scans: named as the beamline names them, 70 % overlap, seeded Poisson noise,
and a truth the reconstruction can be scored against."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from bl832_assets.beamlines.bl7012.cxi import read_scan
from bl832_assets.beamlines.bl7012.synth import (
    SyntheticScan,
    known_object,
    scan_file_name,
    write_synthetic_scan,
)


def test_scan_names_follow_cosmics_pattern() -> None:
    assert scan_file_name(dt.date(2024, 11, 25), 7) == "NS_241125007_ccdframes_0_0.cxi"
    assert scan_file_name(dt.date(2024, 1, 2), 123, "_cosmic2") == (
        "NS_240102123_ccdframes_0_0_cosmic2.cxi"
    )
    with pytest.raises(ValueError, match=r"0\.\.999"):
        scan_file_name(dt.date(2024, 1, 2), 1000)


def test_neighbouring_positions_overlap_by_about_seventy_percent(synthetic: SyntheticScan) -> None:
    positions = synthetic.positions.astype(float)
    distances = np.hypot(*(positions[:, None, :] - positions[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(distances, np.inf)
    nearest = distances.min(axis=1)

    overlap = 1 - nearest.mean() / synthetic.beam_diameter_px

    assert len(positions) == 50 and len(np.unique(positions, axis=0)) == 50
    assert 0.6 < overlap < 0.8, overlap


def test_frames_are_seeded_poisson_counts(synthetic: SyntheticScan, tmp_path: Path) -> None:
    frames = read_scan(synthetic.path).frames
    again = read_scan(write_synthetic_scan(tmp_path / "a.cxi").path).frames
    other = read_scan(write_synthetic_scan(tmp_path / "b.cxi", seed=1).path).frames

    assert np.array_equal(frames, np.rint(frames)) and frames.min() >= 0
    assert frames.sum(axis=(1, 2)).mean() == pytest.approx(1e6, rel=0.01)
    assert np.array_equal(frames, again) and not np.array_equal(frames, other)


def test_the_object_shows_different_patterns_in_amplitude_and_phase() -> None:
    obj = known_object((60, 60))
    amplitude, phase = np.abs(obj), np.angle(obj)

    assert amplitude.min() == pytest.approx(0.5) and amplitude.max() == pytest.approx(1.0)
    assert phase.min() >= 0 and 0.8 < phase.max() < 1.5
    assert abs(np.corrcoef(amplitude.ravel(), phase.ravel())[0, 1]) < 0.3


def test_the_probe_guess_lacks_the_true_probes_phase_curvature(synthetic: SyntheticScan) -> None:
    guess = read_scan(synthetic.path).header.probe

    assert guess is not None
    assert np.allclose(np.abs(guess), np.abs(synthetic.probe), atol=1e-6)
    assert np.ptp(np.angle(guess)) < 1e-6 < np.ptp(np.angle(synthetic.probe))


def test_an_overlap_outside_zero_to_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="overlap"):
        write_synthetic_scan(tmp_path / "x.cxi", overlap=1.0)
