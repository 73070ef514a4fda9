"""Thumbnails the Dagster UI renders inline: each Markdown value under 1,000 characters."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bl832_assets.science.options import ReconOptions
from bl832_assets.science.payload import run_pyramid, run_recon
from bl832_assets.science.preview import (
    INLINE_MARKDOWN_LIMIT,
    INLINE_SIZES,
    inline_markdown,
    inline_previews,
    png_4bit,
)

PREVIEW_KEYS = {"preview_xy", "preview_xz", "preview_yz", "histogram"}
IMAGE = re.compile(r"^!\[(\w+)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def decoded(markdown: str) -> Image.Image:
    """The PNG a Markdown thumbnail carries, decoded (so a broken one fails here)."""
    match = IMAGE.match(markdown)
    assert match, markdown[:80]
    picture = Image.open(io.BytesIO(base64.b64decode(match.group(2), validate=True)))
    picture.load()
    return picture


def test_a_4bit_png_decodes_to_sixteen_grey_levels_of_the_image() -> None:
    pixels = np.tile(np.arange(0, 256, 17, dtype=np.uint8), (3, 1))  # 16 levels, odd rows

    picture = Image.open(io.BytesIO(png_4bit(pixels)))

    assert picture.size == (16, 3)
    assert np.array_equal(np.asarray(picture.convert("L")), pixels)


def test_pure_noise_still_fits_and_a_tight_limit_shrinks_the_thumbnail() -> None:
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 300), np.uint8))

    roomy = inline_markdown(noise, "xy")
    tight = inline_markdown(noise, "xy", limit=400)

    assert len(roomy) < INLINE_MARKDOWN_LIMIT and len(tight) < 400
    assert max(decoded(tight).size) < max(decoded(roomy).size) <= INLINE_SIZES[0]


def test_a_thumbnail_that_cannot_fit_is_refused_never_emitted_over_the_limit() -> None:
    flat = Image.new("L", (64, 64), 128)

    with pytest.raises(ValueError, match="fits 50 characters"):
        inline_markdown(flat, "xy", limit=50)


def test_sections_give_three_slices_and_a_histogram_with_its_range() -> None:
    sections = {
        "xy": np.random.default_rng(2).normal(1.0, 0.2, (160, 160)),
        "xz": np.ones((16, 160)),
        "yz": np.ones((16, 160)),
    }

    previews = inline_previews(sections)

    assert set(previews) == PREVIEW_KEYS
    assert all(len(text) < INLINE_MARKDOWN_LIMIT for text in previews.values())
    assert decoded(previews["preview_xy"]).size == (48, 48)
    assert decoded(previews["preview_xz"]).size == (48, 5)  # the aspect of a 16-slice volume
    assert previews["histogram"].endswith(" 1/cm")


def test_recon_and_pyramid_report_inline_thumbnails_beside_the_full_gallery(
    scan: Path, tmp_path: Path, stem: str
) -> None:
    recon = run_recon(scan, tmp_path / "scratch", ReconOptions())
    pyramid = run_pyramid(Path(str(recon["path"])), tmp_path / "scratch" / f"rec{stem}.zarr")

    assert len(str(recon["preview"])) > INLINE_MARKDOWN_LIMIT  # the full one, for the dialog
    for metadata in (recon, pyramid):
        previews = {key: str(metadata[key]) for key in PREVIEW_KEYS}
        assert all(len(text) < INLINE_MARKDOWN_LIMIT for text in previews.values())
        assert {decoded(text).format for text in previews.values()} == {"PNG"}
