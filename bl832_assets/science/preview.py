"""8-bit PNG previews for the catalog and the Dagster UI: the central slice of a reconstruction
in three orientations with a histogram of its values, and a thumbnail of a raw scan.

Attenuation values have no fixed range, so contrast comes from the image's own percentiles:
a few hot pixels (zingers, ring centres) cannot wash the whole picture out. A volume is never
read whole: the xz and yz sections take one row and one column of each TIFF slice, or come
from the finest pyramid level small enough for a preview.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import tifffile
import zarr
from PIL import Image, ImageDraw, ImageFont

from bl832_assets.science.atomic import atomic_path
from bl832_assets.science.dx import open_scan
from bl832_assets.science.pyramid import slice_files
from bl832_assets.science.tiffs import UNITS, read_slice

SLICE_CUTOFF_PERCENT = 0.5  # per end, for reconstructed slices
THUMBNAIL_CUTOFF_PERCENT = 0.1  # per end, as upstream's catalog thumbnail (ImageOps cutoff=0.1)
HISTOGRAM_BINS = 256
HISTOGRAM_HEIGHT = 160
ORIENTATIONS = ("xy", "xz", "yz")


def to_8bit(image: np.ndarray, cutoff_percent: float = SLICE_CUTOFF_PERCENT) -> np.ndarray:
    """Stretch the finite values between the ``cutoff_percent`` percentiles at each end onto
    0..255; NaN shows as the low end."""
    image = np.asarray(image, dtype=np.float64)
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return np.zeros(image.shape, dtype=np.uint8)
    low, high = np.percentile(finite, [cutoff_percent, 100 - cutoff_percent])
    scaled = (np.nan_to_num(image, nan=low) - low) / max(high - low, np.finfo(float).tiny)
    return np.rint(np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def _save_png(pixels: np.ndarray, png_path: str | Path, max_size: int | None = None) -> Path:
    """Save 8-bit greyscale pixels atomically, shrunk to fit ``max_size`` if given."""
    picture = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))
    if max_size is not None:
        picture.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    png_path = Path(png_path)
    with atomic_path(png_path) as temporary:
        picture.save(temporary, format="PNG")
    return png_path


def write_slice_png(source: str | Path | np.ndarray, png_path: str | Path) -> Path:
    """Write a slice (a TIFF path or a 2-D array) as an 8-bit greyscale PNG, atomically."""
    image = read_slice(Path(source)) if isinstance(source, str | Path) else np.asarray(source)
    if image.ndim != 2:
        raise ValueError(f"a preview needs a 2-D slice, got shape {image.shape}")
    return _save_png(to_8bit(image), png_path)


def _slice_pixels(path: Path) -> np.ndarray:
    """A slice as an array whose rows and columns can be read without reading the rest: a
    memory map where the TIFF is stored plainly, the decoded slice otherwise."""
    try:
        return tifffile.memmap(path, mode="r")
    except ValueError:  # compressed or tiled: no direct view into the file
        return read_slice(path)


def central_sections_from_tiffs(tiff_dir: Path) -> dict[str, np.ndarray]:
    """The central xy slice, and xz / yz sections assembled from one row / column per slice,
    so memory is two slices' worth whatever the stack's depth."""
    files = slice_files(tiff_dir)
    xy = read_slice(files[len(files) // 2])
    rows, columns = xy.shape
    xz = np.empty((len(files), columns), np.float32)
    yz = np.empty((len(files), rows), np.float32)
    for index, path in enumerate(files):
        pixels = _slice_pixels(path)
        xz[index] = pixels[rows // 2]
        yz[index] = pixels[:, columns // 2]
    return {"xy": xy, "xz": xz, "yz": yz}


def central_sections_from_pyramid(store: Path, max_size: int) -> dict[str, np.ndarray]:
    """The three central sections of the finest level whose sides all fit ``max_size`` (the
    coarsest if none does): a preview needs no more, and zarr reads only the chunks crossed."""
    group = zarr.open_group(str(store), mode="r")
    datasets = group.attrs["multiscales"][0]["datasets"]
    levels = [group[dataset["path"]] for dataset in datasets]
    level = next((a for a in levels if max(a.shape) <= max_size), levels[-1])
    z, y, x = (n // 2 for n in level.shape)
    return {"xy": level[z], "xz": level[:, y, :], "yz": level[:, :, x]}


def histogram_pixels(values: np.ndarray, bins: int = HISTOGRAM_BINS) -> np.ndarray:
    """A histogram drawn as an 8-bit image: black bars on white, counts on a square-root scale
    (so the air peak does not flatten the material's), over the 0.1-99.9 percentile range with
    outliers counted in the end bins, and that range written underneath."""
    finite = np.asarray(values, dtype=np.float64).ravel()
    finite = finite[np.isfinite(finite)]
    low, high = np.percentile(finite, [0.1, 99.9]) if finite.size else (0.0, 1.0)
    high = max(high, low + np.finfo(np.float32).eps)
    counts, _ = np.histogram(np.clip(finite, low, high), bins=bins, range=(low, high))
    heights = np.sqrt(counts / max(counts.max(), 1)) * (HISTOGRAM_HEIGHT - 1)
    label_height = 14
    picture = Image.new("L", (bins, HISTOGRAM_HEIGHT + label_height), 255)
    draw = ImageDraw.Draw(picture)
    for column, height in enumerate(np.rint(heights).astype(int)):
        if height:
            draw.line([(column, HISTOGRAM_HEIGHT - 1), (column, HISTOGRAM_HEIGHT - height)], 0)
    font = ImageFont.load_default()
    right = f"{high:.3g} {UNITS}"
    draw.text((2, HISTOGRAM_HEIGHT + 1), f"{low:.3g}", fill=0, font=font)
    draw.text((bins - 2 - draw.textlength(right, font=font), HISTOGRAM_HEIGHT + 1), right, 0, font)
    return np.asarray(picture)


def write_previews(
    source: str | Path, out_dir: str | Path, stem: str, *, max_size: int = 1024
) -> dict[str, Path]:
    """PNGs ``<stem>_xy``, ``_xz``, ``_yz`` (central sections, at most ``max_size`` pixels a
    side) and ``<stem>_histogram`` (of the voxels in those sections, a sample through the whole
    volume at no extra read) in ``out_dir``, from a TIFF folder or an OME-Zarr pyramid."""
    source, out_dir = Path(source), Path(out_dir)
    if (source / ".zattrs").exists() or (source / "zarr.json").exists():
        sections = central_sections_from_pyramid(source, max_size)
    else:
        sections = central_sections_from_tiffs(source)
    written = {
        name: _save_png(to_8bit(image), out_dir / f"{stem}_{name}.png", max_size)
        for name, image in sections.items()
    }
    values = np.concatenate([image.ravel() for image in sections.values()])
    written["histogram"] = _save_png(histogram_pixels(values), out_dir / f"{stem}_histogram.png")
    return written


def write_projection_thumbnail(
    scan_path: str | Path, png_path: str | Path, *, max_size: int = 256
) -> Path:
    """The scan's first raw projection as the catalog's thumbnail: log-scaled (transmission
    spans decades) and stretched with 0.1% cut at each end, as upstream's ingestor does, but on
    the float image rather than after rounding it to 8 bits."""
    with open_scan(scan_path) as scan:
        projection = scan.projection(0, slice(None)).astype(np.float64)
    logged = np.log1p(projection - projection.min())
    return _save_png(to_8bit(logged, THUMBNAIL_CUTOFF_PERCENT), png_path, max_size)


def data_uri(png_path: str | Path) -> str:
    """A PNG inlined as a ``data:`` URI: how an image travels inside metadata and catalog
    records, which have no place for files."""
    return "data:image/png;base64," + base64.b64encode(Path(png_path).read_bytes()).decode()


def markdown_gallery(pngs: dict[str, Path]) -> str:
    """The previews as Markdown images, which the Dagster UI renders in asset metadata."""
    return "\n\n".join(f"**{name}**\n\n![{name}]({data_uri(path)})" for name, path in pngs.items())
