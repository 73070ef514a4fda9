"""The catalog thumbnail of a 7.3.3 image, by upstream's rule (its ``als733_saxs`` ingester):
counts on a log colour scale, clipped at 1 (the Pilatus writes -1 in its gaps and log needs
positive values), between the image's 25th and 99.9th percentiles. The 25th percentile keeps
the empty detector dark; the 99.9th stops the direct beam's few hot pixels from setting the top.

Unlike upstream this never changes the caller's array (upstream clipped the image in place),
and it writes the image itself, shrunk to a thumbnail, rather than a 300 dpi figure of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image

from bl832_assets.beamlines.bl733.readers import read_edf
from bl832_assets.science.atomic import atomic_path

LOW_PERCENTILE = 25.0
HIGH_PERCENTILE = 99.9
CLIP_BELOW = 1.0
COLOUR_MAP = "viridis"
THUMBNAIL_SIZE = 512  # pixels on the long side


def log_scaled(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The image mapped onto 0..1 by log10 between its percentiles (``LOW_PERCENTILE`` at 0,
    ``HIGH_PERCENTILE`` at 1, beyond them clipped), with the two bounds in counts."""
    clipped = np.maximum(np.asarray(image, dtype=np.float64), CLIP_BELOW)
    low, high = (float(v) for v in np.percentile(clipped, [LOW_PERCENTILE, HIGH_PERCENTILE]))
    span = np.log10(high) - np.log10(low)
    if span <= 0:  # a uniform image: one colour, not a division by zero
        return np.zeros(clipped.shape), low, high
    return np.clip((np.log10(clipped) - np.log10(low)) / span, 0, 1), low, high


def write_thumbnail(
    source: str | Path | np.ndarray, png_path: str | Path, *, max_size: int = THUMBNAIL_SIZE
) -> Path:
    """The thumbnail of an ``.edf`` file or an image array, a colour PNG at most ``max_size``
    pixels a side, published whole under ``png_path``."""
    image = read_edf(source).data if isinstance(source, str | Path) else np.asarray(source)
    scaled, _, _ = log_scaled(image)
    colours = colormaps[COLOUR_MAP](scaled, bytes=True)[..., :3]
    picture = Image.fromarray(np.ascontiguousarray(colours))
    picture.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    png_path = Path(png_path)
    with atomic_path(png_path) as temporary:
        picture.save(temporary, format="PNG")
    return png_path
