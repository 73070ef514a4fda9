"""Pyramid throughput: our ``build_pyramid`` against ``ngff-zarr`` and ``ome-zarr``, all
writing the same OME-Zarr (NGFF 0.4) image from the same TIFF slices.

    python benchmarks/bench_pyramid.py [--size-mib 1024] [--side 1024] [--chunk 128] [--repeats 2]

The volume is float32 slices of ``side`` x ``side`` (a cylinder of material in noise, as a
reconstruction looks), ``size-mib`` in all, written as TIFFs under ``bench-out/`` (git-ignored).
Every method then builds the same pyramid: same chunks (``chunk`` cubed), same number of
levels (halving z, y and x until a level fits one chunk), same codec (ours: Blosc lz4 with
bit-shuffle), 2x block means. The peers read the TIFFs through a dask array of the slices
rechunked to their chunks: ``ngff-zarr`` through ``to_multiscales`` (``itkwasm_bin_shrink``,
its block mean) and ``to_ngff_zarr``; ``ome-zarr`` through ``write_image`` with
``local_mean`` and per-level ``{"z": f, "y": f, "x": f}`` scale factors, because its plain
integer factors leave z unscaled. The page cache holds the TIFFs for every method alike.

Each method runs in its own process, after a warm-up on a tiny stack, so its peak memory
(``ru_maxrss``) is its own; the table shows it above the footprint after the warm-up. Methods
take turns within each round, so drift of the machine (and the cost of first touching fresh
memory) falls on them alike; the best round counts. MB/s is the volume's MB (10^6 bytes) per
second of wall time.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bl832_assets.science.pyramid import COMPRESSOR, build_pyramid, level_shapes, slice_files
from bl832_assets.science.tiffs import SliceDescription, read_slice, slice_name, write_slice

if TYPE_CHECKING:
    import dask.array as da

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench-out" / "pyramid"
PIXEL_SIZE_UM = 0.65


def make_slices(folder: Path, slices: int, side: int) -> None:
    """A noisy cylinder of material, slice by slice: reconstructions carry noise in every
    mantissa bit, which is what decides how well (and how fast) they compress."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:side, :side].astype(np.float32) / side - 0.5
    inside = (x * x + y * y < 0.2).astype(np.float32)
    for index in range(slices):
        image = inside * (1 + 0.3 * np.sin(20 * x + index / 10))
        image += rng.standard_normal((side, side), dtype=np.float32) * 0.1
        description = SliceDescription("bench", index, PIXEL_SIZE_UM, side / 2)
        write_slice(folder / slice_name("bench", index), image, description)


def _slices_as_dask(tiff_dir: Path, chunk: int) -> da.Array:
    """The slices as one lazy array, each slice read by its own task, in the peers' chunks."""
    import dask
    import dask.array as da

    files = slice_files(tiff_dir)
    first = read_slice(files[0])
    read = dask.delayed(read_slice, pure=True)
    planes = [da.from_delayed(read(p), first.shape, np.float32) for p in files]
    return da.stack(planes).rechunk((chunk, chunk, chunk))


def run_ours(tiff_dir: Path, out: Path, chunk: int, levels: int) -> None:
    summary = build_pyramid(tiff_dir, out, chunk=chunk)
    assert len(summary.levels) == levels


def run_ngff_zarr(tiff_dir: Path, out: Path, chunk: int, levels: int) -> None:
    import ngff_zarr

    image = ngff_zarr.to_ngff_image(
        _slices_as_dask(tiff_dir, chunk),
        dims=["z", "y", "x"],
        scale={axis: PIXEL_SIZE_UM for axis in "zyx"},
        axes_units={axis: "micrometer" for axis in "zyx"},
    )
    multiscales = ngff_zarr.to_multiscales(
        image,
        scale_factors=[2**level for level in range(1, levels)],
        method=ngff_zarr.Methods.ITKWASM_BIN_SHRINK,
        chunks=chunk,
    )
    ngff_zarr.to_ngff_zarr(out, multiscales, version="0.4", compressor=COMPRESSOR)


def run_ome_zarr(tiff_dir: Path, out: Path, chunk: int, levels: int) -> None:
    import zarr
    from ome_zarr.format import FormatV04
    from ome_zarr.scale import Methods
    from ome_zarr.writer import write_image

    group = zarr.open_group(str(out), mode="w", zarr_format=2)
    write_image(
        _slices_as_dask(tiff_dir, chunk),
        group,
        scale_factors=[{axis: 2**level for axis in "zyx"} for level in range(1, levels)],
        method=Methods.LOCAL_MEAN,
        fmt=FormatV04(),
        axes="zyx",
        scale={axis: PIXEL_SIZE_UM for axis in "zyx"},
        storage_options={"chunks": (chunk,) * 3, "compressor": COMPRESSOR},
    )


METHODS: dict[str, Callable[[Path, Path, int, int], None]] = {
    "ours": run_ours,
    "ngff-zarr": run_ngff_zarr,
    "ome-zarr": run_ome_zarr,
}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _level_shapes_on_disk(store: Path) -> list[list[int]]:
    import zarr

    group = zarr.open_group(str(store), mode="r")
    datasets = group.attrs["multiscales"][0]["datasets"]
    return [list(group[d["path"]].shape) for d in datasets]


def measure_one(method: str, tiff_dir: Path, chunk: int, levels: int) -> dict[str, object]:
    """Run one method in this process, after a run on a tiny stack, so that imports and
    one-time set-up (ngff-zarr compiles its WebAssembly downsampler) are not timed."""
    METHODS[method](WORK / "warm-up", WORK / f"warm-up-{method}.zarr", 4, 2)
    out = WORK / f"{method}.zarr"
    shutil.rmtree(out, ignore_errors=True)
    baseline = _peak_rss_mib()
    started = time.perf_counter()
    METHODS[method](tiff_dir, out, chunk, levels)
    seconds = time.perf_counter() - started
    return {
        "method": method,
        "seconds": seconds,
        "peak_mib": _peak_rss_mib() - baseline,
        "stored_bytes": sum(p.stat().st_size for p in out.rglob("*") if p.is_file()),
        "levels": _level_shapes_on_disk(out),
    }


def _measure_in_child(method: str) -> dict:
    child = subprocess.run(
        [sys.executable, __file__, *sys.argv[1:], "--one", method],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="volume size")
    parser.add_argument("--side", type=int, default=1024, help="slice width and height")
    parser.add_argument("--chunk", type=int, default=128, help="chunk edge in voxels")
    parser.add_argument("--repeats", type=int, default=2, help="rounds; the best one counts")
    parser.add_argument("--one", choices=list(METHODS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    slices = max(1, args.size_mib * 2**20 // (args.side * args.side * 4))
    shape = (slices, args.side, args.side)
    levels = len(level_shapes(shape, args.chunk))
    tiff_dir = WORK / "tiffs"
    if args.one:  # a child process: measure one method, report as JSON
        print(json.dumps(measure_one(args.one, tiff_dir, args.chunk, levels)))
        return

    make_slices(tiff_dir, slices, args.side)
    make_slices(WORK / "warm-up", 8, 8)
    volume_mb = slices * args.side * args.side * 4 / 1e6
    print(f"volume {shape} float32 = {volume_mb:.0f} MB, chunk {args.chunk}, {levels} levels")
    best: dict[str, dict] = {}
    for _ in range(args.repeats):
        for method in METHODS:
            result = _measure_in_child(method)
            if method not in best or result["seconds"] < best[method]["seconds"]:
                best[method] = result
    results = list(best.values())
    print(f"{'method':<10} {'seconds':>8} {'MB/s':>7} {'peak MiB':>9} {'stored MB':>10}  levels")
    for r in results:
        print(
            f"{r['method']:<10} {r['seconds']:8.2f} {volume_mb / r['seconds']:7.0f} "
            f"{r['peak_mib']:9.0f} {r['stored_bytes'] / 1e6:10.0f}  {r['levels']}"
        )
    ours = results[0]["seconds"]
    faster_peer = min(results[1:], key=lambda r: r["seconds"])
    print(f"ours / {faster_peer['method']}: {faster_peer['seconds'] / ours:.2f}x (goal >= 1.5x)")


if __name__ == "__main__":
    main()
