"""The Data Exchange reader: what it accepts, and how it refuses what it does not."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from bl832_assets.science import dx
from bl832_assets.science.errors import ScanFormatError


def _edit(path: Path, edit) -> Path:
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _refusal(path: Path) -> ScanFormatError:
    with pytest.raises(ScanFormatError) as caught:
        dx.read_metadata(path)
    assert str(path) in str(caught.value)
    return caught.value


def test_metadata_round_trips_what_synth_wrote(make_scan: Callable[..., Path], stem: str) -> None:
    path = make_scan(columns=64, rows=6, angles=121, proposal="BLS-00739", pi="Ada Lovelace")
    meta = dx.read_metadata(path)
    assert meta.path == str(path)
    assert meta.shape == (121, 6, 64)
    assert (meta.angles, meta.rows, meta.columns) == (121, 6, 64)
    assert meta.dtype == "uint16"
    assert meta.n_flats > 0 and meta.n_darks > 0
    assert meta.pixel_size_mm == pytest.approx(0.00065)
    assert meta.proposal == "BLS-00739"
    assert meta.pi == "Ada Lovelace"
    assert meta.beamline == "8.3.2"
    assert meta.instrument_name == "bl832"
    assert meta.sample_name == stem
    assert "<" in meta.experimenter_email  # left dirty: cleaning is the catalog's job
    assert meta.export_control is False


def test_scientific_metadata_is_flat_json_friendly_scalars(scan: Path) -> None:
    scientific = dx.read_metadata(scan).scientific
    json.dumps(scientific)
    assert scientific["measurement/instrument/detector/pixel_size"] == pytest.approx(0.00065)
    assert scientific["measurement/instrument/detector/model"] == "PCO Edge 5.5"
    assert scientific["process/acquisition/rotation/num_angles"] == 121
    assert scientific["process/acquisition/rotation/range"] == pytest.approx(180.0)
    assert not any(key.startswith("exchange") for key in scientific)


def test_export_control_flag_is_read(make_scan: Callable[..., Path]) -> None:
    assert dx.read_metadata(make_scan(export_control=True)).export_control is True


def test_absent_export_control_means_not_controlled(scan: Path) -> None:
    _edit(scan, lambda f: f.__delitem__(dx.EXPORT_CONTROL))
    assert dx.read_metadata(scan).export_control is False


@pytest.mark.parametrize(
    ("stored", "controlled"),
    [(b"no", False), (np.array([0]), False), (np.array([1]), True), (b"restricted", True)],
)
def test_unrecognised_export_control_errs_on_the_side_of_control(
    scan: Path, stored: object, controlled: bool
) -> None:
    def store(f: h5py.File) -> None:
        del f[dx.EXPORT_CONTROL]
        f[dx.EXPORT_CONTROL] = stored

    assert dx.read_metadata(_edit(scan, store)).export_control is controlled


def test_missing_optional_text_reads_as_empty(scan: Path) -> None:
    _edit(scan, lambda f: f.__delitem__(dx.EXPERIMENTER_EMAIL))
    assert dx.read_metadata(scan).experimenter_email == ""


def test_refuses_a_file_that_is_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "notes.h5"
    path.write_text("not a scan\n")
    assert _refusal(path).field == "file"


def test_refuses_a_truncated_file(scan: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(scan.read_bytes()[: scan.stat().st_size // 2])
    assert _refusal(truncated).field == "file"


def test_missing_file_is_not_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        dx.read_metadata(tmp_path / "absent.h5")


@pytest.mark.parametrize("field", [dx.DATA, dx.FLATS, dx.DARKS, dx.THETA, dx.PIXEL_SIZE_MM])
def test_refuses_a_scan_missing_a_required_dataset(scan: Path, field: str) -> None:
    _edit(scan, lambda f: f.__delitem__(field))
    error = _refusal(scan)
    assert error.field == field
    assert field in str(error) and "missing" in str(error)


def test_refuses_two_dimensional_projections(scan: Path) -> None:
    def flatten(f: h5py.File) -> None:
        data = f[dx.DATA][:, 0, :]
        del f[dx.DATA]
        f[dx.DATA] = data

    assert _refusal(_edit(scan, flatten)).field == dx.DATA


def test_refuses_flats_of_another_detector_size(scan: Path) -> None:
    def crop(f: h5py.File) -> None:
        flats = f[dx.FLATS][:, :, :-1]
        del f[dx.FLATS]
        f[dx.FLATS] = flats

    assert _refusal(_edit(scan, crop)).field == dx.FLATS


def test_refuses_theta_of_the_wrong_length(scan: Path) -> None:
    def shorten(f: h5py.File) -> None:
        theta = f[dx.THETA][:-1]
        del f[dx.THETA]
        f[dx.THETA] = theta

    error = _refusal(_edit(scan, shorten))
    assert error.field == dx.THETA and "121" in str(error)


def test_refuses_a_non_positive_pixel_size(scan: Path) -> None:
    _edit(scan, lambda f: f[dx.PIXEL_SIZE_MM].__setitem__(0, 0.0))
    assert _refusal(scan).field == dx.PIXEL_SIZE_MM


def test_open_scan_gives_radians_and_float32_sinograms(scan: Path) -> None:
    with dx.open_scan(scan) as opened:
        assert opened.theta[0] == 0.0
        assert opened.theta[-1] == pytest.approx(np.pi)
        sinograms = opened.sinograms(slice(2, 5))
        assert sinograms.shape == (3, 121, 64) and sinograms.dtype == np.float32
        assert np.array_equal(sinograms[0], opened.projections[:, 2, :].astype(np.float32))
        assert opened.flat_frames(slice(0, 2)).shape[1:] == (2, 64)


def test_non_finite_projections_are_refused_when_read(scan: Path, tmp_path: Path) -> None:
    poisoned = tmp_path / "poisoned.h5"
    shutil.copy(scan, poisoned)

    def poison(f: h5py.File) -> None:
        data = f[dx.DATA][...].astype(np.float32)
        data[10, 4, 7] = np.nan
        del f[dx.DATA]
        f[dx.DATA] = data

    _edit(poisoned, poison)
    with dx.open_scan(poisoned) as opened:
        opened.sinograms(slice(0, 4))
        with pytest.raises(ScanFormatError, match="non-finite") as caught:
            opened.sinograms(slice(4, 6))
    assert caught.value.field == dx.DATA
