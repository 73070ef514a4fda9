"""Synthetic AgBh exposures: written as the beamline writes them, reproducible from a seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bl832_assets.beamlines.bl733.dataset import pairs_in_folder
from bl832_assets.beamlines.bl733.readers import read_edf, read_text_header
from bl832_assets.beamlines.bl733.synth import (
    DEFAULT_GEOMETRY,
    GAP_VALUE,
    PILATUS_MODULE_ROWS,
    Calibrant,
    calibrant_image,
    pixel_angles,
    write_calibrant_pair,
)


def test_a_calibrant_is_one_complete_pair_with_a_camserver_header(calibrant: Calibrant) -> None:
    [pair] = pairs_in_folder(calibrant.pair.folder)
    assert pair == calibrant.pair and pair.complete
    assert pair.image is not None and pair.text is not None

    frame = read_edf(pair.image)
    header = read_text_header(pair.text)

    assert frame.header["title"] == "# Pixel_size 172e-6 m x 172e-6 m"
    assert frame.header["DataType"] == "SignedInteger"
    assert (frame.data[PILATUS_MODULE_ROWS] == GAP_VALUE).all()
    assert frame.data[calibrant.beamstop].mean() < 1
    assert pair.text.read_bytes().count(b"\r\n") == len(pair.text.read_text().splitlines())
    assert "unknown_field0" in header.fields and header.fields["unknown_field3"] == "!0"


def test_the_same_seed_gives_the_same_image_and_another_seed_new_noise(tmp_path: Path) -> None:
    first = write_calibrant_pair(tmp_path / "a", seed=3)
    again = write_calibrant_pair(tmp_path / "b", seed=3)
    other = write_calibrant_pair(tmp_path / "c", seed=4)

    def image(calibrant: Calibrant) -> np.ndarray:
        assert calibrant.pair.image is not None
        return read_edf(calibrant.pair.image).data

    np.testing.assert_array_equal(image(first), image(again))
    assert not np.array_equal(image(first), image(other))


def test_rings_sit_where_the_geometry_puts_q_independently_of_pyfai(calibrant: Calibrant) -> None:
    _, q = pixel_angles(calibrant.geometry, (256, 256))
    noiseless, _ = calibrant_image(calibrant.geometry, noise=False)

    on_ring = np.abs(q - calibrant.rings_q[0]) < 0.0005
    between = np.abs(q - 1.5 * calibrant.rings_q[0]) < 0.0005

    assert noiseless[on_ring].mean() > 20 * noiseless[between & (noiseless >= 0)].mean()
    assert calibrant.geometry == DEFAULT_GEOMETRY.with_pixel_size((172e-6, 172e-6))
