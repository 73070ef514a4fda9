"""The synthetic scan: the 8.3.2 layout, and the geometry convention everything else relies on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from bl832_assets.science import dx
from bl832_assets.science.recon import minus_log
from bl832_assets.science.synth import phantom_slice, phantom_volume, rotation_centre


def test_rotation_centre_convention_is_middle_of_detector_plus_offset() -> None:
    assert rotation_centre(128, 0.0) == 63.5
    assert rotation_centre(128, 7.3) == pytest.approx(70.8)
    assert rotation_centre(64, -12.0) == 19.5


def _centroid(profile: np.ndarray) -> float:
    return float((profile * np.arange(profile.size)).sum() / profile.sum())


def test_projections_follow_the_documented_geometry(make_scan: Callable[..., Path]) -> None:
    """Golden test: a slice point (x, y) lands on column centre + x cos θ + y sin θ, so the
    projected centre of mass at 0°, 90° and 180° gives the centre and the phantom's own centroid.
    """
    columns, offset, row = 128, 7.3, 3
    path = make_scan(
        columns=columns, angles=181, centre_offset=offset, noise=False, defective_columns=0
    )
    with dx.open_scan(path) as scan:
        rows = slice(row, row + 1)
        flat = np.median(scan.flat_frames(rows), axis=0)
        dark = np.median(scan.dark_frames(rows), axis=0)
        at = {deg: minus_log(scan.projection(deg, rows), flat, dark)[0] for deg in (0, 90, 180)}
    truth = phantom_slice(row, columns=columns, rows=6)
    grid = np.arange(columns) - (columns - 1) / 2
    mean_x = (truth.sum(axis=0) * grid).sum() / truth.sum()
    mean_y = (truth.sum(axis=1) * grid).sum() / truth.sum()
    centre = rotation_centre(columns, offset)
    assert (_centroid(at[0]) + _centroid(at[180])) / 2 == pytest.approx(centre, abs=0.05)
    assert _centroid(at[0]) - centre == pytest.approx(mean_x, abs=0.1)
    assert _centroid(at[90]) - centre == pytest.approx(mean_y, abs=0.1)


def test_scan_has_the_8_3_2_layout_and_types(make_scan: Callable[..., Path]) -> None:
    path = make_scan(columns=64, rows=6, angles=121)
    with h5py.File(path) as f:
        assert f[dx.DATA].dtype == np.uint16 and f[dx.DATA].shape == (121, 6, 64)
        assert f[dx.FLATS].shape[1:] == (6, 64) and f[dx.DARKS].shape[1:] == (6, 64)
        assert f[dx.FLATS][...].mean() > 50 * f[dx.DARKS][...].mean()
        theta = f[dx.THETA][...]
        assert theta[0] == 0.0 and theta[-1] == 180.0 and theta.size == 121
        assert f[dx.PIXEL_SIZE_MM].shape == (1,)
        assert isinstance(f[dx.PROPOSAL][0], bytes)
        assert f["/measurement/instrument/detector/dimension_x"][0] == 64


def test_scan_is_written_atomically(make_scan: Callable[..., Path]) -> None:
    path = make_scan()
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_noise_free_scans_are_reproducible_and_noise_follows_the_seed(
    make_scan: Callable[..., Path],
) -> None:
    def data(**options: object) -> np.ndarray:
        with h5py.File(make_scan(name="s", **options)) as f:
            return f[dx.DATA][...]

    assert np.array_equal(data(seed=1), data(seed=1))
    assert not np.array_equal(data(seed=1), data(seed=2))


def _sinogram(path: Path, row: int = 2) -> np.ndarray:
    with dx.open_scan(path) as scan:
        rows = slice(row, row + 1)
        flat = np.median(scan.flat_frames(rows), axis=0)
        dark = np.median(scan.dark_frames(rows), axis=0)
        return minus_log(scan.sinograms(rows), flat[:, None, :], dark[:, None, :])[0]


def test_defective_columns_survive_flat_field_correction(make_scan: Callable[..., Path]) -> None:
    """The ring source: a few columns' gain differs between flats and projections, so after
    correction they carry a constant offset at every angle."""
    clean = _sinogram(make_scan(name="clean", noise=False, defective_columns=0))
    ringed = _sinogram(make_scan(name="ringed", noise=False, defective_columns=3))
    offset = ringed - clean
    bad = np.flatnonzero(np.abs(offset).max(axis=0) > 1e-3)
    assert bad.size == 3
    assert np.all(np.abs(offset[:, bad]) > 0.02)
    assert np.ptp(offset[:, bad], axis=0).max() < 0.01


def test_phantom_volume_stacks_slices_and_varies_along_rows() -> None:
    volume = phantom_volume(columns=32, rows=6)
    assert volume.shape == (6, 32, 32) and volume.dtype == np.float32
    assert np.array_equal(volume[2], phantom_slice(2, columns=32, rows=6))
    assert not np.allclose(volume[0], volume[3])
    assert volume.min() >= 0
