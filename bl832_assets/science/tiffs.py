"""Reconstructed slices as float32 TIFFs that describe themselves.

Each slice carries its scan, index, rotation centre and pixel size as JSON in the TIFF
ImageDescription, so the pyramid step (often on another machine, after a transfer) can recover
the physical scale from the TIFF folder alone, without the raw scan.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import tifffile

from bl832_assets.science.errors import StackFormatError

UNITS = "1/cm"


def slice_name(stem: str, index: int) -> str:
    """``<stem>_NNNNN.tiff``, the absolute slice number in five digits, as upstream's
    ``dxchange.write_tiff_stack`` names them (downstream tools sort on it)."""
    return f"{stem}_{index:05d}.tiff"


@dataclass(frozen=True)
class SliceDescription:
    scan: str
    slice: int
    pixel_size_um: float
    rotation_centre: float
    units: str = UNITS
    options: dict[str, object] = field(default_factory=dict)  # the reconstruction options used


@dataclass(frozen=True)
class SliceHeader:
    """What a slice says about itself without its pixels being read."""

    shape: tuple[int, int]
    pixel_size_um: float


def write_slice(path: Path, image: np.ndarray, description: SliceDescription) -> None:
    # metadata=None keeps tifffile from adding its own JSON description, which readers that
    # take the first ImageDescription would see instead of ours.
    tifffile.imwrite(
        path,
        np.asarray(image, dtype=np.float32),
        description=json.dumps(asdict(description)),
        metadata=None,
        photometric="minisblack",
    )


def read_header(path: Path) -> SliceHeader:
    """Shape and pixel size of a slice, or a ``StackFormatError`` naming the file."""
    try:
        with tifffile.TiffFile(path) as tiff:
            page = tiff.pages.first
            shape, text = tuple(page.shape), page.description
    except (OSError, tifffile.TiffFileError) as error:
        raise StackFormatError(path, f"not a readable TIFF ({error})") from error
    if len(shape) != 2:
        raise StackFormatError(path, f"expected a 2-D slice, got shape {shape}")
    try:
        pixel_size_um = float(json.loads(text)["pixel_size_um"])
    except (ValueError, KeyError, TypeError) as error:
        raise StackFormatError(
            path, "no pixel_size_um in the ImageDescription (not written by bl832 recon?)"
        ) from error
    if not pixel_size_um > 0:
        raise StackFormatError(path, f"pixel_size_um must be positive, got {pixel_size_um}")
    return SliceHeader(shape=(int(shape[0]), int(shape[1])), pixel_size_um=pixel_size_um)


def read_slice(path: Path) -> np.ndarray:
    return tifffile.imread(path).astype(np.float32, copy=False)
