"""Output checks re-read the result: a missing, misshapen, real-valued or non-finite
reconstruction fails, naming the file."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from bl832_assets.beamlines.bl7012.checks import check_finite, check_written
from bl832_assets.beamlines.bl7012.cxi import write_image


def _result(tmp_path: Path, image: np.ndarray) -> Path:
    path = tmp_path / "NS_241125001_ccdframes_0_0_recon.cxi"
    write_image(path, image)
    return path


def test_a_complex_finite_image_of_the_expected_shape_passes(tmp_path: Path) -> None:
    path = _result(tmp_path, np.ones((51, 50), complex))

    written = check_written(path, (51, 50))
    finite = check_finite(path)

    assert written.passed and written.metadata["shape"] == [51, 50]
    assert finite.passed and finite.metadata["non_finite_values"] == 0


def test_the_latest_image_is_the_one_checked(tmp_path: Path) -> None:
    path = _result(tmp_path, np.ones((4, 4), complex))
    write_image(path, np.full((4, 4), np.nan + 0j))

    assert check_written(path).metadata["image"] == "entry_1/image_2"
    assert not check_finite(path).passed


def test_a_file_without_an_image_group_fails_both(tmp_path: Path) -> None:
    path = tmp_path / "scan.cxi"
    with h5py.File(path, "w") as f:
        f.create_group("entry_1/data_1")

    for outcome in (check_written(path), check_finite(path)):
        assert not outcome.passed and str(path) in outcome.description
        assert "image_<n>" in outcome.description


def test_a_missing_or_unreadable_file_fails(tmp_path: Path) -> None:
    (tmp_path / "garbage.cxi").write_text("job died")

    assert not check_written(tmp_path / "absent.cxi").passed
    assert not check_written(tmp_path / "garbage.cxi").passed


def test_a_wrong_shape_or_a_real_image_fails(tmp_path: Path) -> None:
    path = _result(tmp_path, np.ones((8, 9), complex))
    assert "expected (8, 8)" in check_written(path, (8, 8)).description

    with h5py.File(path, "a") as f:
        del f["entry_1/image_1/data"]
        f["entry_1/image_1/data"] = np.ones((8, 9))
    assert "not complex" in check_written(path).description

    with h5py.File(path, "a") as f:
        del f["entry_1/image_1/data"]
        f["entry_1/image_1/data"] = np.ones((2, 8, 9), complex)
    assert "not a 2-D image" in check_written(path).description


def test_nan_and_infinity_are_counted(tmp_path: Path) -> None:
    image = np.ones((6, 6), complex)
    image[1, 2] = np.nan
    image[3, 4] = complex(np.inf, 0)

    outcome = check_finite(_result(tmp_path, image))

    assert not outcome.passed and outcome.metadata["non_finite_values"] == 2
    assert "2 NaN or infinite values" in outcome.description
