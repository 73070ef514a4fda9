"""PNG previews of slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bl832_assets.science.preview import write_slice_png
from bl832_assets.science.tiffs import SliceDescription, write_slice


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
