"""Every reconstruction option changes the output as documented, and is recorded with it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile

from bl832_assets.science.options import OptionsError, ReconOptions
from bl832_assets.science.recon import reconstruct_scan
from bl832_assets.science.tiffs import read_slice

COLUMNS, ROWS = 96, 8


@pytest.fixture
def scan(make_scan: Callable[..., Path]) -> Path:
    return make_scan(columns=COLUMNS, rows=ROWS, angles=181, centre_offset=4.0)


def _volume(folder: Path) -> np.ndarray:
    return np.stack([read_slice(p) for p in sorted(folder.iterdir())])


def _description(folder: Path) -> dict:
    with tifffile.TiffFile(sorted(folder.iterdir())[0]) as tiff:
        return json.loads(tiff.pages.first.description)


def _high_frequency_energy(volume: np.ndarray) -> float:
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(volume), axes=(-2, -1)))
    n = volume.shape[-1]
    grid = np.hypot(*np.meshgrid(np.arange(n) - n // 2, np.arange(n) - n // 2))
    return float(spectrum[..., grid > n / 4].sum() / spectrum.sum())


def test_slice_range_reconstructs_only_those_rows_under_their_absolute_numbers(
    scan: Path, tmp_path: Path
) -> None:
    summary = reconstruct_scan(scan, tmp_path, ReconOptions(first_slice=2, last_slice=5))
    names = sorted(p.name for p in summary.output_dir.iterdir())
    assert names == [f"{scan.stem}_{i:05d}.tiff" for i in (2, 3, 4)]
    assert summary.slices == 3
    assert _description(summary.output_dir)["options"]["first_slice"] == 2


def test_binning_halves_every_axis_and_doubles_the_voxel(scan: Path, tmp_path: Path) -> None:
    full = reconstruct_scan(scan, tmp_path / "full", ReconOptions(centre=51.5))
    binned = reconstruct_scan(scan, tmp_path / "bin", ReconOptions(centre=51.5, binning=2))
    assert binned.shape == (ROWS // 2, COLUMNS // 2, COLUMNS // 2)
    assert binned.pixel_size_um == pytest.approx(2 * full.pixel_size_um)
    # Same object, same units: the binned volume is the full one at half the resolution.
    coarse = _volume(full.output_dir).reshape(ROWS // 2, 2, COLUMNS // 2, 2, COLUMNS // 2, 2)
    coarse = coarse.mean(axis=(1, 3, 5))
    assert np.corrcoef(coarse.ravel(), _volume(binned.output_dir).ravel())[0, 1] > 0.9


def test_angle_step_uses_fewer_projections_and_is_noisier(scan: Path, tmp_path: Path) -> None:
    every = _volume(reconstruct_scan(scan, tmp_path / "a", ReconOptions(centre=51.5)).output_dir)
    fourth = reconstruct_scan(scan, tmp_path / "b", ReconOptions(centre=51.5, angle_step=4))
    assert _description(fourth.output_dir)["options"]["angle_step"] == 4
    sparse = _volume(fourth.output_dir)
    assert _high_frequency_energy(sparse) > _high_frequency_energy(every)


def test_a_given_centre_moves_the_image(scan: Path, tmp_path: Path) -> None:
    right = _volume(reconstruct_scan(scan, tmp_path / "r", ReconOptions(centre=51.5)).output_dir)
    wrong = _volume(reconstruct_scan(scan, tmp_path / "w", ReconOptions(centre=46.5)).output_dir)
    assert not np.allclose(right, wrong)
    assert np.abs(right - wrong).mean() > 0.1 * np.abs(right).mean()


def test_a_sharper_filter_keeps_more_high_frequencies(scan: Path, tmp_path: Path) -> None:
    def energy(name: str) -> float:
        options = ReconOptions(centre=51.5, filter_name=name)
        summary = reconstruct_scan(scan, tmp_path / name, options)
        assert _description(summary.output_dir)["options"]["filter_name"] == name
        return _high_frequency_energy(_volume(summary.output_dir))

    ramp, butterworth, hann = energy("ramp"), energy("butterworth"), energy("hann")
    assert ramp > butterworth and ramp > hann


def test_engines_agree(scan: Path, tmp_path: Path) -> None:
    dfi = _volume(reconstruct_scan(scan, tmp_path / "d", ReconOptions(centre=51.5)).output_dir)
    fbp = reconstruct_scan(scan, tmp_path / "f", ReconOptions(centre=51.5, engine="fbp"))
    assert _description(fbp.output_dir)["options"]["engine"] == "fbp"
    assert np.corrcoef(dfi.ravel(), _volume(fbp.output_dir).ravel())[0, 1] > 0.97


def test_ring_removal_can_be_switched_off(scan: Path, tmp_path: Path) -> None:
    on = _volume(reconstruct_scan(scan, tmp_path / "on", ReconOptions(centre=51.5)).output_dir)
    off = reconstruct_scan(scan, tmp_path / "off", ReconOptions(centre=51.5, ring_removal="none"))
    assert not np.allclose(on, _volume(off.output_dir))


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"binning": 3}, "binning"),
        ({"angle_step": 0}, "angle_step"),
        ({"first_slice": 4, "last_slice": 2}, "last_slice"),
        ({"filter_name": "gauss"}, "filter_name"),
        ({"engine": "gpu"}, "engine"),
        ({"wobble": 1}, "wobble"),
    ],
)
def test_bad_options_are_refused_naming_the_option(options: dict, named: str) -> None:
    with pytest.raises(OptionsError, match=named):
        ReconOptions.from_mapping(options)


def test_slices_past_the_scan_are_refused_before_any_output(scan: Path, tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="last_slice"):
        reconstruct_scan(scan, tmp_path / "out", ReconOptions(last_slice=ROWS + 1))
    assert not (tmp_path / "out").exists()


def _peak_rss_mb(scan: Path, out: Path) -> float:
    """Peak memory of ``bl832 recon`` in its own process, as the payload reports it."""
    result = subprocess.run(
        [sys.executable, "-m", "bl832_assets", "recon", str(scan), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(result.stdout)["peak_rss_mb"])


def test_a_four_times_larger_scan_does_not_raise_peak_memory(
    make_scan: Callable[..., Path], tmp_path: Path
) -> None:
    small = make_scan("small", columns=512, rows=32, angles=361, noise=False)
    large = make_scan("large", columns=512, rows=128, angles=361, noise=False)
    whole_scan_mb = 128 * 361 * 512 * 4 / 2**20  # the large scan as float32: 90 MiB
    small_peak = _peak_rss_mb(small, tmp_path / "s")
    large_peak = _peak_rss_mb(large, tmp_path / "l")
    assert large_peak - small_peak < whole_scan_mb / 4, (small_peak, large_peak)
