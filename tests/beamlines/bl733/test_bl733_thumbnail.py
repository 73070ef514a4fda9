"""The catalog thumbnail: log colour scale clipped at 1, between the 25th and 99.9th
percentiles of the image, as upstream draws it, without touching the caller's image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bl832_assets.beamlines.bl733.synth import Calibrant
from bl832_assets.beamlines.bl733.thumbnail import log_scaled, write_thumbnail


def test_the_25th_percentile_is_black_and_the_999th_is_full_scale() -> None:
    image = np.arange(1, 10_001, dtype=np.float64).reshape(100, 100)

    scaled, low, high = log_scaled(image)

    assert (low, high) == tuple(np.percentile(image, [25, 99.9]))
    assert scaled[image <= low].max() == 0
    assert scaled[image >= high].min() == 1
    inside = (image > low) & (image < high)
    log_position = np.log(image[inside] / low) / np.log(high / low)  # 0.5 at sqrt(low * high)
    np.testing.assert_allclose(scaled[inside], log_position)


def test_counts_below_one_are_clipped_to_one_and_the_image_is_left_alone() -> None:
    image = np.array([[-1, 0, 1, 10], [100, 1000, -1, 5]], dtype=np.int32)
    before = image.copy()

    scaled, low, _ = log_scaled(image)

    np.testing.assert_array_equal(image, before)
    assert low == 1.0  # the gaps (-1) and zeros count as 1 in the percentiles
    assert scaled[image < 1].max() == 0


def test_a_uniform_image_is_one_colour_not_a_division_by_zero() -> None:
    scaled, low, high = log_scaled(np.full((8, 8), 7))

    assert low == high == 7
    assert not scaled.any()


def test_the_thumbnail_of_an_edf_is_a_colour_png_no_larger_than_asked(
    calibrant: Calibrant, tmp_path: Path
) -> None:
    assert calibrant.pair.image is not None

    path = write_thumbnail(calibrant.pair.image, tmp_path / "thumb.png", max_size=128)

    picture = Image.open(path)
    assert picture.format == "PNG" and picture.mode == "RGB"
    assert picture.size == (128, 128)
    colours = np.asarray(picture).reshape(-1, 3)
    assert len(np.unique(colours, axis=0)) > 50  # rings and background, not one flat colour
