"""The CXI reader refuses malformed scans by file and field, finds each field where COSMIC's
pre-processor or cdtools put it, and adds reconstructions atomically."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from bl832_assets.beamlines.bl7012 import cxi
from bl832_assets.beamlines.bl7012.cxi import CxiFormatError, read_header, read_scan
from bl832_assets.beamlines.bl7012.synth import SyntheticScan
from bl832_assets.science.errors import ScanFormatError


def test_a_synthetic_scan_reads_back_with_its_geometry(synthetic: SyntheticScan) -> None:
    scan = read_scan(synthetic.path)

    header = scan.header
    assert scan.frames.shape == (50, 32, 32) and header.frames == 50
    assert header.energy_ev == pytest.approx(800.0)
    assert header.distance_m == pytest.approx(0.121)
    assert header.pixel_size_m == pytest.approx((30e-6, 30e-6))
    assert header.object_pixel_m[0] == pytest.approx(1.55e-9 * 0.121 / (32 * 30e-6), rel=1e-3)
    assert np.array_equal(np.rint(header.positions_px()), synthetic.positions)
    assert header.probe is not None and header.probe.shape == (32, 32)


def _edit(path: Path, change: str, name: str, value: object = None) -> None:
    with h5py.File(path, "a") as f:
        del f[name]
        if change == "replace":
            f[name] = value


@pytest.mark.parametrize(
    ("change", "name", "value", "field", "problem"),
    [
        ("delete", cxi.DISTANCE, None, cxi.DISTANCE, "missing"),
        ("replace", cxi.DISTANCE, -1.0, cxi.DISTANCE, "positive"),
        ("delete", cxi.X_PIXEL_SIZE, None, cxi.X_PIXEL_SIZE, "missing"),
        ("replace", cxi.WAVELENGTH, 2e-9, cxi.WAVELENGTH, "disagrees"),
        ("replace", cxi.TRANSLATION, np.zeros((49, 3)), cxi.TRANSLATION, "50 frames"),
        ("replace", cxi.PROBE, np.ones((16, 16), complex), cxi.PROBE, "match the frames"),
        ("replace", cxi.FRAMES, np.ones((50, 32)), cxi.FRAMES_LINK, "(frames, rows, columns)"),
    ],
)
def test_a_malformed_field_is_refused_naming_file_and_field(
    scan_path: Path, change: str, name: str, value: object, field: str, problem: str
) -> None:
    _edit(scan_path, change, name, value)

    with pytest.raises(CxiFormatError) as raised:
        read_scan(scan_path)

    assert raised.value.path == scan_path and raised.value.field == field
    assert str(scan_path) in str(raised.value) and problem in str(raised.value)
    assert isinstance(raised.value, ScanFormatError)  # the core refuses it like a bad 8.3.2 scan


def test_energy_alone_or_wavelength_alone_is_enough(scan_path: Path) -> None:
    expected = read_header(scan_path).wavelength_m
    _edit(scan_path, "delete", cxi.WAVELENGTH)
    assert read_header(scan_path).wavelength_m == pytest.approx(expected)
    _edit(scan_path, "delete", cxi.ENERGY)
    with pytest.raises(CxiFormatError, match="no entry_1/instrument_1/source_1/wavelength"):
        read_header(scan_path)


def test_nan_or_negative_intensities_are_refused(scan_path: Path) -> None:
    with h5py.File(scan_path, "a") as f:
        f[cxi.FRAMES][3, 4, 5] = np.nan
    with pytest.raises(CxiFormatError, match="NaN"):
        read_scan(scan_path)
    with h5py.File(scan_path, "a") as f:
        f[cxi.FRAMES][3, 4, 5] = -2
    with pytest.raises(CxiFormatError, match=">= 0"):
        read_scan(scan_path)


def test_a_file_that_is_not_hdf5_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "NS_241125002_ccdframes_0_0.cxi"
    path.write_text("not a scan")

    with pytest.raises(CxiFormatError, match="not an HDF5 file"):
        read_header(path)
    with pytest.raises(FileNotFoundError):
        read_header(tmp_path / "absent.cxi")


def test_cosmic_preprocessor_places_are_read_too(scan_path: Path) -> None:
    """Frames only under the detector, positions and the probe guess where COSMIC puts them."""
    with h5py.File(scan_path, "a") as f:
        translation = f[cxi.TRANSLATION][()]
        probe = f[cxi.PROBE][()]
        for name in (cxi.FRAMES_LINK, *cxi.TRANSLATION_PATHS, cxi.PROBE):
            del f[name]
        f[f"{cxi.DETECTOR}/translation"] = translation[:, :2]  # (x, y) only
        f[f"{cxi.DETECTOR}/probe"] = probe

    scan = read_scan(scan_path)

    assert scan.frames.shape == (50, 32, 32)
    assert np.allclose(scan.header.translations_m[:, :2], translation[:, :2])
    assert np.allclose(scan.header.probe, probe)


def test_images_are_appended_as_the_next_complex_image_group(tmp_path: Path) -> None:
    path = tmp_path / "recon.cxi"
    first = np.full((4, 5), 1 + 2j)

    assert cxi.write_image(path, first) == "entry_1/image_1"
    assert cxi.write_image(path, 2 * first, notes={"engine": "test"}) == "entry_1/image_2"

    assert cxi.image_names(path) == ["entry_1/image_1", "entry_1/image_2"]
    assert np.array_equal(cxi.read_image(path, "entry_1/image_1"), first)
    latest = cxi.read_image(path)
    assert latest.dtype.kind == "c" and np.array_equal(latest, 2 * first)
    with h5py.File(path) as f:
        assert f["entry_1/image_2/process_1/engine"][()] == b"test"


def test_a_new_result_file_carries_the_scans_geometry(
    synthetic: SyntheticScan, tmp_path: Path
) -> None:
    header = read_header(synthetic.path)
    path = tmp_path / "recon.cxi"

    cxi.write_image(path, np.ones((3, 3), complex), header=header)

    with h5py.File(path) as f:
        assert f[cxi.WAVELENGTH][()] == pytest.approx(header.wavelength_m)
        assert np.allclose(f[cxi.TRANSLATION][()], header.translations_m)
        assert np.allclose(f[cxi.PROBE][()], header.probe)
        assert cxi.FRAMES not in f  # the frames stay in the raw scan


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "recon.cxi"
    cxi.write_image(path, np.ones((2, 2), complex))
    before = path.read_bytes()

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(h5py.Group, "create_group", broken)
    with pytest.raises(OSError, match="disk full"):
        cxi.write_image(path, np.zeros((2, 2), complex))

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recon.cxi"]


def test_writes_are_flushed_to_disk_before_the_rename(
    synthetic: SyntheticScan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[bool] = []
    real_fsync = os.fsync
    target = tmp_path / "copy.cxi"

    def fsync(fd: int) -> None:
        synced.append(target.exists())  # the final name must not exist yet at the first flush
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    scan = read_scan(synthetic.path)
    cxi.write_scan(target, scan.header, scan.frames)

    assert synced == [False, True]  # the file before the rename, then its folder after it


def test_write_scan_refuses_frames_that_do_not_match_the_header(
    synthetic: SyntheticScan, tmp_path: Path
) -> None:
    header = dataclasses.replace(read_header(synthetic.path), frames=3)

    with pytest.raises(ValueError, match="do not match"):
        cxi.write_scan(tmp_path / "x.cxi", header, np.zeros((2, 32, 32)))
