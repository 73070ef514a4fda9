"""Independent inspection of finished products, used by asset checks.

These re-read what was written instead of trusting what the writer reported, so a truncated
copy or a stack with NaNs is caught wherever it sits.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
import zarr


@dataclass(frozen=True)
class StackReport:
    slices: int
    non_finite_slices: list[str]
    shapes: set[tuple[int, ...]]


def inspect_tiff_stack(folder: Path) -> StackReport:
    """Count the TIFF slices in ``folder`` and find any holding NaN or infinity."""
    names = sorted(p for p in folder.iterdir() if p.suffix in (".tif", ".tiff"))
    bad: list[str] = []
    shapes: set[tuple[int, ...]] = set()
    for path in names:
        image = tifffile.imread(path)
        shapes.add(image.shape)
        if not np.isfinite(image).all():
            bad.append(path.name)
    return StackReport(len(names), bad, shapes)


def pyramid_level_shapes(store: Path) -> list[tuple[int, ...]]:
    """Shapes of every level named in the OME-NGFF multiscales metadata, each opened for real."""
    group = zarr.open_group(str(store), mode="r")
    attrs = group.attrs.asdict()
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if not multiscales:
        raise ValueError(f"{store}: no OME-NGFF multiscales metadata")
    shapes = []
    for dataset in multiscales[0]["datasets"]:
        array = zarr.open_array(str(store / dataset["path"]), mode="r")
        array[(0,) * array.ndim]  # a level that lists but cannot be read is not a level
        shapes.append(tuple(array.shape))
    return shapes


def halves(shapes: list[tuple[int, ...]]) -> bool:
    """True when each level is the previous one halved (either rounding) along every axis."""
    return all(
        all(n in (p // 2, (p + 1) // 2) for p, n in zip(prev, nxt, strict=True))
        for prev, nxt in itertools.pairwise(shapes)
    )
