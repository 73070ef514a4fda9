"""Amplitude and phase previews: full-size PNGs of the well-lit object, and thumbnails the
Dagster UI renders inline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bl832_assets.beamlines.bl7012.grid import well_lit
from bl832_assets.beamlines.bl7012.preview import (
    inline_object_previews,
    object_views,
    write_object_pngs,
)
from bl832_assets.beamlines.bl7012.reconstruct import PtychoResult
from bl832_assets.science.preview import INLINE_MARKDOWN_LIMIT


def test_inline_previews_are_markdown_images_under_the_limit(result: PtychoResult) -> None:
    previews = inline_object_previews(result.object, well_lit(result.illumination()))

    assert set(previews) == {"preview_amplitude", "preview_phase"}
    for name, markdown in previews.items():
        assert markdown.startswith("![") and "data:image/png;base64," in markdown
        assert len(markdown) < INLINE_MARKDOWN_LIMIT, (name, len(markdown))
    assert previews["preview_phase"].endswith(" rad")


def test_full_size_pngs_cover_the_well_lit_object(result: PtychoResult, tmp_path: Path) -> None:
    lit = well_lit(result.illumination())
    rows, columns = np.nonzero(lit)

    pngs = write_object_pngs(result.object, tmp_path, "NS_241125001_ccdframes_0_0", lit)

    assert sorted(p.name for p in pngs.values()) == [
        "NS_241125001_ccdframes_0_0_amplitude.png",
        "NS_241125001_ccdframes_0_0_phase.png",
    ]
    for path in pngs.values():
        with Image.open(path) as picture:
            assert picture.mode == "L"
            assert picture.size == (np.ptp(columns) + 1, np.ptp(rows) + 1)


def test_phase_is_shown_relative_to_the_lit_regions_mean() -> None:
    obj = np.exp(1j * (3.0 + np.linspace(-0.2, 0.2, 16))).reshape(4, 4)

    views = object_views(obj)

    assert abs(np.mean(views["phase"])) < 1e-9  # the global phase 3 rad is gone, no wrap
    assert np.allclose(views["amplitude"], 1.0)
