"""8-bit PNG previews for the catalog and the Dagster UI: the central slice of a reconstruction
in three orientations with a histogram of its values, and a thumbnail of a raw scan.

The Dagster UI shows a Markdown value inline only when it is under 1,000 characters; longer
ones hide behind "[Show Markdown]". So besides the full-size gallery each preview also comes as
a thumbnail small enough to render where a scientist looks: a 4-bit greyscale PNG (16 grey
levels are plenty at that size and halve the bytes), shrunk until its Markdown fits.

Attenuation values have no fixed range, so contrast comes from the image's own percentiles:
a few hot pixels (zingers, ring centres) cannot wash the whole picture out. A volume is never
read whole: the xz and yz sections take one row and one column of each TIFF slice, or come
from the finest pyramid level small enough for a preview.
"""

from __future__ import annotations

import base64
import struct
import zlib
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
INLINE_MARKDOWN_LIMIT = 1000  # the UI renders Markdown inline only when shorter than this
INLINE_SIZES = (48, 40, 32, 24, 16)  # pixels a side, tried largest first; 32 fits even noise
INLINE_HISTOGRAM_BINS = 48
INLINE_HISTOGRAM_HEIGHT = 24


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


def central_sections(source: str | Path, max_size: int) -> dict[str, np.ndarray]:
    """The three central sections of a TIFF folder or an OME-Zarr pyramid."""
    source = Path(source)
    if (source / ".zattrs").exists() or (source / "zarr.json").exists():
        return central_sections_from_pyramid(source, max_size)
    return central_sections_from_tiffs(source)


def _value_range(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The finite values and their 0.1-99.9 percentile range, never empty."""
    finite = np.asarray(values, dtype=np.float64).ravel()
    finite = finite[np.isfinite(finite)]
    low, high = np.percentile(finite, [0.1, 99.9]) if finite.size else (0.0, 1.0)
    return finite, float(low), float(max(high, low + np.finfo(np.float32).eps))


def _bars(values: np.ndarray, bins: int, height: int) -> tuple[Image.Image, float, float]:
    """Black bars on white, counts on a square-root scale (so the air peak does not flatten
    the material's), over the 0.1-99.9 percentile range with outliers in the end bins."""
    finite, low, high = _value_range(values)
    counts, _ = np.histogram(np.clip(finite, low, high), bins=bins, range=(low, high))
    heights = np.sqrt(counts / max(counts.max(), 1)) * (height - 1)
    picture = Image.new("L", (bins, height), 255)
    draw = ImageDraw.Draw(picture)
    for column, bar in enumerate(np.rint(heights).astype(int)):
        if bar:
            draw.line([(column, height - 1), (column, height - bar)], 0)
    return picture, low, high


def histogram_pixels(values: np.ndarray, bins: int = HISTOGRAM_BINS) -> np.ndarray:
    """A histogram drawn as an 8-bit image (see ``_bars``), its range written underneath."""
    bars, low, high = _bars(values, bins, HISTOGRAM_HEIGHT)
    label_height = 14
    picture = Image.new("L", (bins, HISTOGRAM_HEIGHT + label_height), 255)
    picture.paste(bars, (0, 0))
    draw = ImageDraw.Draw(picture)
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
    return write_section_previews(central_sections(source, max_size), out_dir, stem, max_size)


def write_section_previews(
    sections: dict[str, np.ndarray], out_dir: str | Path, stem: str, max_size: int
) -> dict[str, Path]:
    """``write_previews`` of sections already read, so the inline thumbnails share the read."""
    out_dir = Path(out_dir)
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


def png_4bit(pixels: np.ndarray) -> bytes:
    """8-bit greyscale pixels as a 4-bit greyscale PNG (Pillow writes greyscale only at 8
    bits): two pixels a byte, each row filtered by whichever PNG filter (none, sub, up)
    compresses the whole image best."""
    levels = (np.asarray(pixels, dtype=np.uint16) * 15 + 127) // 255
    height, width = levels.shape
    if width % 2:
        levels = np.pad(levels, ((0, 0), (0, 1)))
    packed = (levels[:, 0::2] << 4 | levels[:, 1::2]).astype(np.uint8)
    previous = np.vstack([np.zeros_like(packed[:1]), packed[:-1]])
    left = np.hstack([np.zeros_like(packed[:, :1]), packed[:, :-1]])
    filtered = {0: packed, 1: packed - left, 2: packed - previous}  # uint8 wraps, as PNG's do
    data = min(
        (
            zlib.compress(b"".join(bytes([kind]) + row.tobytes() for row in rows), 9)
            for kind, rows in filtered.items()
        ),
        key=len,
    )

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 4, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def inline_markdown(
    picture: Image.Image, name: str, caption: str = "", limit: int = INLINE_MARKDOWN_LIMIT
) -> str:
    """``picture`` as a Markdown image under ``limit`` characters: the largest of
    ``INLINE_SIZES`` whose Markdown fits, never one over the limit."""
    for size in INLINE_SIZES:
        thumbnail = picture.copy()
        thumbnail.thumbnail((size, size), Image.Resampling.LANCZOS)
        encoded = base64.b64encode(png_4bit(np.asarray(thumbnail))).decode()
        markdown = f"![{name}](data:image/png;base64,{encoded}){caption}"
        if len(markdown) < limit:
            return markdown
    raise ValueError(f"{name}: no thumbnail of {INLINE_SIZES[-1]} px fits {limit} characters")


def inline_previews(sections: dict[str, np.ndarray]) -> dict[str, str]:
    """``preview_xy``, ``preview_xz``, ``preview_yz`` and ``histogram`` as Markdown the UI
    renders inline; the histogram's range is written after it, as its bars have no room."""
    previews = {
        f"preview_{name}": inline_markdown(Image.fromarray(to_8bit(image)), name)
        for name, image in sections.items()
    }
    values = np.concatenate([image.ravel() for image in sections.values()])
    bars, low, high = _bars(values, INLINE_HISTOGRAM_BINS, INLINE_HISTOGRAM_HEIGHT)
    previews["histogram"] = inline_markdown(bars, "histogram", f" {low:.3g} to {high:.3g} {UNITS}")
    return previews
