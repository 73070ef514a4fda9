"""8-bit PNG previews of reconstructed slices, for the catalog and the Dagster UI.

Attenuation values have no fixed range, so contrast comes from the slice's own percentiles:
a few hot pixels (zingers, ring centres) cannot wash the whole picture out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bl832_assets.science.atomic import atomic_path
from bl832_assets.science.tiffs import read_slice

LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5


def to_8bit(image: np.ndarray) -> np.ndarray:
    """Stretch the 0.5-99.5 percentile range of the finite values onto 0..255."""
    image = np.asarray(image, dtype=np.float64)
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return np.zeros(image.shape, dtype=np.uint8)
    low, high = np.percentile(finite, [LOW_PERCENTILE, HIGH_PERCENTILE])
    scaled = (np.nan_to_num(image, nan=low) - low) / max(high - low, np.finfo(float).tiny)
    return np.rint(np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def write_slice_png(source: str | Path | np.ndarray, png_path: str | Path) -> Path:
    """Write a slice (a TIFF path or a 2-D array) as an 8-bit greyscale PNG, atomically."""
    image = read_slice(Path(source)) if isinstance(source, str | Path) else np.asarray(source)
    if image.ndim != 2:
        raise ValueError(f"a preview needs a 2-D slice, got shape {image.shape}")
    png_path = Path(png_path)
    with atomic_path(png_path) as temporary:
        Image.fromarray(to_8bit(image)).save(temporary, format="PNG")
    return png_path
