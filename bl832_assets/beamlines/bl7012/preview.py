"""Previews of a ptychographic reconstruction: the object's amplitude and phase, as full-size
PNGs and as thumbnails small enough for the Dagster UI to render inline.

A reconstruction is meaningful only where the scan lit the object; elsewhere it shows the
engine's starting guess (or, from cdtools, a wide padding), so both views are cropped to the
well-lit region when it is known. Phase is shown relative to the lit region's mean (the global
phase is arbitrary), so zero sits at the mean and the picture does not wrap because of it.
The 8-bit stretch, PNG writing and inline thumbnails are 8.3.2's (``science.preview``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bl832_assets.science.preview import (
    SLICE_CUTOFF_PERCENT,
    inline_markdown,
    to_8bit,
    write_slice_png,
)


def object_views(obj: np.ndarray, lit: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``amplitude`` and ``phase`` (radians, relative to the lit region's mean) of the object,
    cropped to the bounding box of ``lit`` when given."""
    obj = np.asarray(obj)
    if lit is not None and lit.any():
        rows, columns = np.nonzero(lit)
        window = (slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1))
        obj, lit = obj[window], lit[window]
    mean = np.sum(obj[lit]) if lit is not None and lit.any() else np.sum(obj)
    return {"amplitude": np.abs(obj), "phase": np.angle(obj * np.exp(-1j * np.angle(mean)))}


def write_object_pngs(
    obj: np.ndarray, out_dir: str | Path, stem: str, lit: np.ndarray | None = None
) -> dict[str, Path]:
    """``<stem>_amplitude.png`` and ``<stem>_phase.png`` at the object's own resolution."""
    return {
        name: write_slice_png(view, Path(out_dir) / f"{stem}_{name}.png")
        for name, view in object_views(obj, lit).items()
    }


def inline_object_previews(obj: np.ndarray, lit: np.ndarray | None = None) -> dict[str, str]:
    """``preview_amplitude`` and ``preview_phase`` as Markdown under the UI's inline limit,
    each captioned with its value range."""
    previews = {}
    for name, view in object_views(obj, lit).items():
        low, high = np.percentile(view, [SLICE_CUTOFF_PERCENT, 100 - SLICE_CUTOFF_PERCENT])
        unit = " rad" if name == "phase" else ""
        picture = Image.fromarray(to_8bit(view))
        previews[f"preview_{name}"] = inline_markdown(
            picture, name, f" {name} {low:.3g} to {high:.3g}{unit}"
        )
    return previews
