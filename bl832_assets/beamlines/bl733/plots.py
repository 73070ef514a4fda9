"""Pictures of an integrated profile: the full-size plot a scientist opens (and the derived
catalog record attaches), and a sparkline small enough for the Dagster UI to show inline.

The plot is log I against q, the way SAXS profiles are read: the background falls by decades,
and the Bragg peaks found are marked. matplotlib's object API is used without pyplot, so no
global figure state or GUI backend is involved in a worker process.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from bl832_assets.beamlines.bl733.integrate import Profile
from bl832_assets.science.atomic import atomic_path
from bl832_assets.science.preview import INLINE_MARKDOWN_LIMIT, png_4bit

PLOT_SIZE_INCHES = (6.4, 4.0)
PLOT_DPI = 120
INLINE_WIDTHS = (240, 200, 160, 128, 96, 64)  # pixels, widest first; three wide for one high


def write_profile_plot(
    profile: Profile, peaks_q: np.ndarray, png_path: str | Path, *, title: str
) -> Path:
    """log I(q) with its standard error as a band and the peaks as dashed lines, as a PNG
    published whole under ``png_path``."""
    figure = Figure(figsize=PLOT_SIZE_INCHES, dpi=PLOT_DPI, layout="constrained")
    axes = figure.add_subplot()
    positive = profile.intensity > 0
    q, intensity, sigma = profile.q[positive], profile.intensity[positive], profile.sigma[positive]
    axes.fill_between(
        q, np.maximum(intensity - sigma, intensity / 10), intensity + sigma, alpha=0.3
    )
    axes.plot(q, intensity, linewidth=1)
    for peak in peaks_q:
        axes.axvline(peak, color="tab:red", linestyle="--", linewidth=0.8)
    axes.set_yscale("log")
    axes.set_xlabel("q (1/Å)")
    axes.set_ylabel("intensity (counts per pixel)")
    axes.set_title(title, fontsize=10)
    png_path = Path(png_path)
    with atomic_path(png_path) as temporary:
        figure.savefig(temporary, format="png")
    return png_path


def _sparkline(profile: Profile, width: int) -> Image.Image:
    """log I against q as a black line on white, ``width`` by a third of it."""
    height = max(width // 3, 8)
    positive = profile.intensity > 0
    q, logged = profile.q[positive], np.log10(profile.intensity[positive])
    columns = np.linspace(q[0], q[-1], width)
    values = np.interp(columns, q, logged)
    span = max(float(np.ptp(values)), np.finfo(float).eps)
    rows = (height - 1) * (1 - (values - values.min()) / span)
    picture = Image.new("L", (width, height), 255)
    ImageDraw.Draw(picture).line(list(zip(range(width), rows.tolist(), strict=True)), fill=0)
    return picture


def inline_profile(profile: Profile, name: str = "profile") -> str:
    """The profile as a Markdown sparkline under the UI's inline limit: the widest of
    ``INLINE_WIDTHS`` whose 4-bit PNG fits, never one over the limit."""
    if not np.any(profile.intensity > 0):
        raise ValueError(f"{name}: the profile has no positive intensity to draw")
    for width in INLINE_WIDTHS:
        encoded = base64.b64encode(png_4bit(np.asarray(_sparkline(profile, width)))).decode()
        markdown = f"![{name}](data:image/png;base64,{encoded})"
        if len(markdown) < INLINE_MARKDOWN_LIMIT:
            return markdown
    raise ValueError(f"{name}: no sparkline of {INLINE_WIDTHS[-1]} px fits the inline limit")
