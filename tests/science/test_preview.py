"""PNG previews: central sections, histogram, raw-projection thumbnail."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from bl832_assets.science.preview import (
    HISTOGRAM_HEIGHT,
    histogram_pixels,
    to_8bit,
    write_previews,
    write_projection_thumbnail,
    write_slice_png,
)
from bl832_assets.science.pyramid import build_pyramid
from bl832_assets.science.tiffs import SliceDescription, slice_name, write_slice


def test_preview_of_a_tiff_is_an_8bit_greyscale_png(tmp_path: Path) -> None:
    image = np.linspace(-5, 300, 48 * 40, dtype=np.float32).reshape(48, 40)
    tiff = tmp_path / "scan_00000.tiff"
    write_slice(tiff, image, SliceDescription("scan", 0, 0.65, 20.0))
    png = write_slice_png(tiff, tmp_path / "previews" / "scan.png")
    with Image.open(png) as picture:
        assert picture.format == "PNG" and picture.mode == "L"
        assert picture.size == (40, 48)
        pixels = np.asarray(picture)
    assert pixels.dtype == np.uint8 and pixels.min() == 0 and pixels.max() == 255
    assert [p.name for p in png.parent.iterdir()] == ["scan.png"]


def test_hot_pixels_do_not_wash_out_the_contrast(tmp_path: Path) -> None:
    image = np.random.default_rng(0).normal(10, 1, (64, 64))
    image[5, 5] = 1e6
    image[6, 6] = np.nan
    png = write_slice_png(image, tmp_path / "slice.png")
    with Image.open(png) as picture:
        assert np.asarray(picture).std() > 30


def test_only_2d_slices_make_previews(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2-D"):
        write_slice_png(np.zeros((2, 4, 4)), tmp_path / "volume.png")


def _positional_stack(
    folder: Path, shape: tuple[int, int, int], **tiff_options: object
) -> np.ndarray:
    """A volume whose every voxel differs, so a section taken at the wrong place shows."""
    volume = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) ** 0.5
    folder.mkdir(parents=True)
    for index, image in enumerate(volume):
        description = SliceDescription("scan", index, 0.65, 10.0)
        if tiff_options:
            tifffile.imwrite(folder / slice_name("scan", index), image, **tiff_options)
        else:
            write_slice(folder / slice_name("scan", index), image, description)
    return volume


def _pixels(png: Path) -> np.ndarray:
    with Image.open(png) as picture:
        assert picture.format == "PNG" and picture.mode == "L"
        return np.asarray(picture)


def test_previews_are_the_three_central_sections_and_a_histogram(tmp_path: Path) -> None:
    volume = _positional_stack(tmp_path / "recscan", (9, 40, 36))
    written = write_previews(tmp_path / "recscan", tmp_path / "previews", "scan")
    assert sorted(written) == ["histogram", "xy", "xz", "yz"]
    assert np.array_equal(_pixels(written["xy"]), to_8bit(volume[4]))
    assert np.array_equal(_pixels(written["xz"]), to_8bit(volume[:, 20, :]))
    assert np.array_equal(_pixels(written["yz"]), to_8bit(volume[:, :, 18]))
    assert _pixels(written["histogram"]).min() == 0  # bars were drawn
    assert sorted(p.name for p in (tmp_path / "previews").iterdir()) == sorted(
        f"scan_{name}.png" for name in ("histogram", "xy", "xz", "yz")
    )


def test_sections_come_from_compressed_slices_too(tmp_path: Path) -> None:
    volume = _positional_stack(tmp_path / "recscan", (5, 16, 12), compression="zlib")
    written = write_previews(tmp_path / "recscan", tmp_path / "previews", "scan")
    assert np.array_equal(_pixels(written["yz"]), to_8bit(volume[:, :, 6]))


def test_previews_of_a_pyramid_use_the_finest_level_that_fits(tmp_path: Path) -> None:
    _positional_stack(tmp_path / "recscan", (9, 40, 36))
    summary = build_pyramid(tmp_path / "recscan", tmp_path / "recscan.zarr", chunk=8)
    written = write_previews(summary.path, tmp_path / "previews", "scan", max_size=20)
    level = zarr.open_array(str(summary.path / "1"), mode="r")[...]  # (5, 20, 18)
    assert np.array_equal(_pixels(written["xy"]), to_8bit(level[2]))
    assert np.array_equal(_pixels(written["xz"]), to_8bit(level[:, 10, :]))


def test_large_sections_are_shrunk_to_the_preview_size(tmp_path: Path) -> None:
    _positional_stack(tmp_path / "recscan", (3, 64, 32))
    written = write_previews(tmp_path / "recscan", tmp_path / "previews", "scan", max_size=16)
    with Image.open(written["xy"]) as picture:
        assert picture.size == (8, 16)


def test_histogram_of_constant_or_missing_values_is_still_a_picture() -> None:
    for values in (np.full(100, 3.0), np.full(10, np.nan)):
        pixels = histogram_pixels(values)
        assert pixels.dtype == np.uint8 and pixels.ndim == 2


def test_histogram_shows_both_peaks_of_air_and_material() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 0.01, 100_000), rng.normal(1, 0.01, 10_000)])
    bars = (histogram_pixels(values)[:HISTOGRAM_HEIGHT] == 0).sum(axis=0)
    middle = len(bars) // 2
    assert bars[:middle].max() > bars[middle - 10 : middle + 10].max() + 50
    assert bars[middle:].max() > bars[middle - 10 : middle + 10].max() + 50


def test_projection_thumbnail_is_an_autocontrasted_8bit_picture_that_fits(
    make_scan: Callable[..., Path], tmp_path: Path
) -> None:
    scan = make_scan(columns=300, rows=20)
    full = _pixels(write_projection_thumbnail(scan, tmp_path / "full.png", max_size=512))
    assert full.shape == (20, 300) and full.min() == 0 and full.max() == 255
    png = write_projection_thumbnail(scan, tmp_path / "thumbs" / "scan.png", max_size=128)
    assert _pixels(png).shape == (9, 128)  # 20 x 300, shrunk to fit 128
    assert [p.name for p in png.parent.iterdir()] == ["scan.png"]
