"""A folder of reconstructed TIFF slices as an OME-Zarr multiscale image (NGFF 0.4, Zarr v2).

Zarr v2 with NGFF 0.4 metadata is what today's viewers and ``ome-zarr`` read most widely.

The volume is never held in memory, and nothing written is read back. The slices are read,
``chunk`` at a time, into one reused slab; a full slab is written as level 0 and, at the
same time, halved into level 1's slab, which is written and halved in turn when it holds ``chunk``
planes, and so on up the pyramid. So every write covers whole chunks, each level is the 2x
block mean of the one below, and memory is one slab per level: ``chunk`` slices, plus a third
of that for all coarser levels together (measured in ``tests/science/test_pyramid.py``). The
store appears under its final name only when complete.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numcodecs
import numpy as np
import tifffile
import zarr

from bl832_assets.science.atomic import atomic_path
from bl832_assets.science.errors import StackFormatError
from bl832_assets.science.tiffs import read_header

Shape = tuple[int, int, int]

AXES = ("z", "y", "x")
# Reconstructed attenuation is float32 with noise in every mantissa bit: with bit-shuffle, lz4
# stores it as small as zstd does (ratio about 1.25 on both) and encodes about four times as
# fast, which is the difference between a CPU-bound and an I/O-bound pyramid.
COMPRESSOR = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.BITSHUFFLE)
# Every chunk is stored, even one holding only the fill value: checking for that costs a full
# comparison pass per chunk (a third of the write time), and reconstructions are rarely empty.
_ARRAY_CONFIG = {"write_empty_chunks": True}
# Slices are read a slab at a time by a few threads: reads wait on the file system (and on
# network file systems at facilities, on latency), not on the interpreter.
_READ_THREADS = 4


@dataclass(frozen=True)
class PyramidSummary:
    path: Path
    levels: list[Shape]  # (z, y, x) of each level, finest first
    pixel_size_um: float
    seconds: float
    bytes_read: int  # the float32 volume, as read from the slices
    bytes_written: int  # the store on disk, every level, compressed

    @property
    def mb_per_s(self) -> float:
        """Throughput in MB (10^6 bytes) of volume per second, the figure benchmarks compare."""
        return self.bytes_read / 1e6 / max(self.seconds, 1e-9)


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


def _pair_sum(block: np.ndarray, axis: int) -> np.ndarray:
    """Sums of neighbouring pairs along ``axis``; an odd end pairs with itself (edge padding
    without the padded copy), so the mean of its pair is the voxel itself."""
    n = block.shape[axis]
    if n == 1:
        return block

    def along(part: slice) -> tuple[slice, ...]:
        return (slice(None),) * axis + (part,)

    whole = n // 2 * 2
    pairs = block[along(slice(0, whole, 2))] + block[along(slice(1, whole, 2))]
    if n % 2:
        last = block[along(slice(n - 1, n))]
        pairs = np.concatenate([pairs, last + last], axis=axis)
    return pairs


def downsample(block: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """2x block mean along every axis longer than 1 (an odd end averages with its own edge).
    Float32 throughout: a sum of eight float32 values is as precise as the float32 result, and
    float64 intermediates would double the memory traffic."""
    sums = block
    factor = 1
    for axis in range(block.ndim):
        factor *= 2 if block.shape[axis] > 1 else 1
        sums = _pair_sum(sums, axis)
    return np.multiply(sums, np.float32(1 / factor), out=out, dtype=np.float32)


class _Level:
    """One level being written: a slab of up to ``chunk`` planes, stored once full (so every
    write covers whole chunks) and then halved into the next coarser level's slab."""

    def __init__(self, array: zarr.Array, chunk: int, coarser: _Level | None) -> None:
        self.array = array
        self.slab = np.empty((min(chunk, array.shape[0]), *array.shape[1:]), np.float32)
        self.filled = 0
        self.stored = 0
        self.coarser = coarser

    def free_planes(self) -> np.ndarray:
        return self.slab[self.filled :]

    def planes_done(self, count: int) -> None:
        self.filled += count
        if self.filled == len(self.slab) or self.stored + self.filled == self.array.shape[0]:
            self.flush()

    def take(self, finer: np.ndarray) -> None:
        """Halve planes of the finer level into this slab, two at a time; ``chunk`` is even, so
        a pair never straddles two finer slabs, and only the very last plane can be alone."""
        for start in range(0, len(finer), 2):
            downsample(finer[start : start + 2], out=self.free_planes()[:1])
            self.planes_done(1)

    def flush(self) -> None:
        """Store the slab and, meanwhile, halve it into the coarser level (both only read it):
        when full, and when it holds the level's last plane, whose halving then completes the
        coarser level, and so on up."""
        block = self.slab[: self.filled]
        region = slice(self.stored, self.stored + self.filled)
        with ThreadPoolExecutor(1) as writer:
            stored = writer.submit(self.array.__setitem__, region, block)
            if self.coarser is not None:
                self.coarser.take(block)
            stored.result()
        self.stored += self.filled
        self.filled = 0


def _create_level(group: zarr.Group, level: int, shape: Shape, chunk: int) -> zarr.Array:
    return group.create_array(
        str(level),
        shape=shape,
        chunks=tuple(min(chunk, n) for n in shape),
        dtype="float32",
        compressors=COMPRESSOR,
        fill_value=0.0,
        chunk_key_encoding={"name": "v2", "separator": "/"},  # NGFF 0.4 requires "/"
        config=_ARRAY_CONFIG,
    )


def _open_levels(group: zarr.Group, shapes: list[Shape], chunk: int) -> _Level:
    """Level 0, each level linked to the next coarser one."""
    coarsest = len(shapes) - 1
    level = _Level(_create_level(group, coarsest, shapes[coarsest], chunk), chunk, None)
    for index in reversed(range(coarsest)):
        level = _Level(_create_level(group, index, shapes[index], chunk), chunk, level)
    return level


def _read_into(path: Path, plane: np.ndarray) -> None:
    """Read a slice straight into the slab: no per-slice allocation, whose page faults cost as
    much as the read itself."""
    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages.first
        if page.dtype == plane.dtype:
            page.asarray(out=plane)
        else:
            plane[...] = page.asarray()


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


def _size_on_disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def build_pyramid(
    tiff_dir: str | Path, out_zarr: str | Path, *, chunk: int = 128
) -> PyramidSummary:
    """Write the slices in ``tiff_dir`` as the OME-Zarr image ``out_zarr`` (a ``.zarr`` folder),
    with ``chunk``-voxel cubes as chunks. Memory: ``4/3 * chunk`` slices of float32, plus the
    chunks zarr is compressing (``async.concurrency``, 10 by default, times two chunks)."""
    if chunk < 2 or chunk % 2:
        raise ValueError(f"chunk must be an even number of voxels, got {chunk}")
    started = time.monotonic()
    tiff_dir, out_zarr = Path(tiff_dir), Path(out_zarr)
    files = slice_files(tiff_dir)
    shape, pixel_size_um = stack_geometry(files)
    shapes = level_shapes(shape, chunk)
    with atomic_path(out_zarr) as temporary:
        group = zarr.open_group(store=str(temporary), mode="w", zarr_format=2)
        base = _open_levels(group, shapes, chunk)
        with ThreadPoolExecutor(_READ_THREADS) as pool:
            for start in range(0, len(files), len(base.slab)):
                batch = files[start : start + len(base.slab)]
                list(pool.map(_read_into, batch, base.free_planes()))
                base.planes_done(len(batch))
        group.attrs["multiscales"] = multiscales(out_zarr.stem, shapes, pixel_size_um)
        bytes_written = _size_on_disk(temporary)
    return PyramidSummary(
        path=out_zarr,
        levels=shapes,
        pixel_size_um=pixel_size_um,
        seconds=time.monotonic() - started,
        bytes_read=int(np.prod(shape)) * 4,
        bytes_written=bytes_written,
    )
