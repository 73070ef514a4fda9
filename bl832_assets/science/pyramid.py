"""A folder of reconstructed TIFF slices as an OME-Zarr multiscale image (NGFF 0.4, Zarr v2).

Zarr v2 with NGFF 0.4 metadata is what today's viewers and ``ome-zarr`` read most widely.
Level 0 is written from the TIFFs one slab of ``chunk`` slices at a time, and each further
level by 2x block means of the previous one, read back a slab at a time: memory follows the
slab (``chunk`` slices of float32), never the volume. The store appears under its final name
only when complete.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numcodecs
import numpy as np
import zarr

from bl832_assets.science.atomic import atomic_path
from bl832_assets.science.errors import StackFormatError
from bl832_assets.science.tiffs import read_header, read_slice

Shape = tuple[int, int, int]

AXES = ("z", "y", "x")
_COMPRESSOR = numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.BITSHUFFLE)


@dataclass(frozen=True)
class PyramidSummary:
    path: Path
    levels: list[Shape]  # (z, y, x) of each level, finest first
    pixel_size_um: float
    seconds: float


def slice_files(tiff_dir: Path) -> list[Path]:
    """The slices in name order (names carry the zero-padded slice index); hidden files such as
    a transfer's partial copies are not slices."""
    files = sorted(
        p
        for p in Path(tiff_dir).iterdir()
        if p.suffix.lower() in (".tif", ".tiff") and not p.name.startswith(".")
    )
    if not files:
        raise StackFormatError(tiff_dir, "no TIFF slices in this folder")
    return files


def stack_geometry(files: list[Path]) -> tuple[Shape, float]:
    """Volume shape and pixel size, checked on every slice before anything is written, so a
    bad slice fails the job in seconds instead of after the first levels."""
    first = read_header(files[0])
    for path in files[1:]:
        header = read_header(path)
        if header.shape != first.shape:
            raise StackFormatError(path, f"shape {header.shape} differs from {first.shape}")
        if not np.isclose(header.pixel_size_um, first.pixel_size_um):
            raise StackFormatError(
                path, f"pixel size {header.pixel_size_um} µm differs from {first.pixel_size_um}"
            )
    return (len(files), *first.shape), first.pixel_size_um


def _halve(n: int) -> int:
    return n if n == 1 else -(-n // 2)


def level_shapes(shape: Shape, chunk: int) -> list[Shape]:
    """Halve every axis (rounding up; length 1 stays) until all fit in one chunk."""
    shapes = [shape]
    while max(shapes[-1]) > chunk:
        shapes.append(tuple(_halve(n) for n in shapes[-1]))  # type: ignore[arg-type]
    return shapes


def downsample(block: np.ndarray) -> np.ndarray:
    """2x block mean along every axis longer than 1; an odd end is padded with its own edge,
    so the last output voxel is the mean of what exists rather than of invented zeros."""
    pad = [(0, n % 2) if n > 1 else (0, 0) for n in block.shape]
    block = np.pad(block, pad, mode="edge")
    shape: list[int] = []
    for n in block.shape:
        shape += [n // 2, 2] if n > 1 else [1, 1]
    return block.reshape(shape).mean(axis=(1, 3, 5), dtype=np.float64).astype(np.float32)


def _create_level(group: zarr.Group, level: int, shape: Shape, chunk: int) -> zarr.Array:
    return group.create_array(
        str(level),
        shape=shape,
        chunks=tuple(min(chunk, n) for n in shape),
        dtype="float32",
        compressors=_COMPRESSOR,
        fill_value=0.0,
        chunk_key_encoding={"name": "v2", "separator": "/"},  # NGFF 0.4 requires "/"
    )


def _write_base(array: zarr.Array, files: list[Path], chunk: int) -> None:
    for start in range(0, len(files), chunk):
        array[start : start + chunk] = np.stack(
            [read_slice(p) for p in files[start : start + chunk]]
        )


def _write_halved(source: zarr.Array, target: zarr.Array, chunk: int) -> None:
    """Each target slab of ``chunk`` planes comes from two source slabs read one at a time;
    ``chunk`` is even, so pairs of planes never straddle two source slabs."""
    step = 2 if source.shape[0] > 1 else 1
    for start in range(0, target.shape[0], chunk):
        pieces = [
            downsample(source[s : s + chunk])
            for s in range(start * step, min((start + chunk) * step, source.shape[0]), chunk)
        ]
        target[start : start + chunk] = np.concatenate(pieces)


def _factors(shapes: list[Shape]) -> list[list[int]]:
    """How many level-0 voxels each level's voxel spans per axis (axes of length 1 stop)."""
    factors = [[1, 1, 1]]
    for shape in shapes[:-1]:
        factors.append([f * (2 if n > 1 else 1) for f, n in zip(factors[-1], shape, strict=True)])
    return factors


def multiscales(name: str, shapes: list[Shape], pixel_size_um: float) -> list[dict]:
    """NGFF 0.4 ``multiscales``: per level, the voxel size in µm and the half-voxel offset that
    block means introduce, so levels overlay exactly in a viewer."""
    datasets = [
        {
            "path": str(level),
            "coordinateTransformations": [
                {"type": "scale", "scale": [pixel_size_um * f for f in factors]},
                {
                    "type": "translation",
                    "translation": [pixel_size_um * (f - 1) / 2 for f in factors],
                },
            ],
        }
        for level, factors in enumerate(_factors(shapes))
    ]
    return [
        {
            "version": "0.4",
            "name": name,
            "axes": [{"name": axis, "type": "space", "unit": "micrometer"} for axis in AXES],
            "datasets": datasets,
            "type": "mean",
            "metadata": {"method": "2x block mean per level", "units": "1/cm"},
        }
    ]


def build_pyramid(
    tiff_dir: str | Path, out_zarr: str | Path, *, chunk: int = 128
) -> PyramidSummary:
    """Write the slices in ``tiff_dir`` as the OME-Zarr image ``out_zarr`` (a ``.zarr`` folder)."""
    if chunk < 2 or chunk % 2:
        raise ValueError(f"chunk must be an even number of voxels, got {chunk}")
    started = time.monotonic()
    tiff_dir, out_zarr = Path(tiff_dir), Path(out_zarr)
    files = slice_files(tiff_dir)
    shape, pixel_size_um = stack_geometry(files)
    shapes = level_shapes(shape, chunk)
    with atomic_path(out_zarr) as temporary:
        group = zarr.open_group(store=str(temporary), mode="w", zarr_format=2)
        previous = _create_level(group, 0, shapes[0], chunk)
        _write_base(previous, files, chunk)
        for level, level_shape in enumerate(shapes[1:], start=1):
            current = _create_level(group, level, level_shape, chunk)
            _write_halved(previous, current, chunk)
            previous = current
        group.attrs["multiscales"] = multiscales(out_zarr.stem, shapes, pixel_size_um)
    return PyramidSummary(
        path=out_zarr,
        levels=shapes,
        pixel_size_um=pixel_size_um,
        seconds=time.monotonic() - started,
    )
