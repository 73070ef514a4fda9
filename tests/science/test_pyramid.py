"""OME-Zarr pyramids from TIFF stacks."""

from __future__ import annotations

import itertools
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader

from bl832_assets.science.errors import StackFormatError
from bl832_assets.science.pyramid import build_pyramid
from bl832_assets.science.recon import reconstruct_scan
from bl832_assets.science.tiffs import SliceDescription, slice_name, write_slice


def _stack(folder: Path, shape: tuple[int, int, int], pixel_size_um: float = 0.65) -> np.ndarray:
    volume = np.random.default_rng(1).random(shape, dtype=np.float32)
    folder.mkdir(parents=True)
    for index, image in enumerate(volume):
        description = SliceDescription("scan", index, pixel_size_um, 10.0)
        write_slice(folder / slice_name("scan", index), image, description)
    return volume


def _multiscale(store: Path) -> dict:
    return zarr.open_group(str(store), mode="r").attrs["multiscales"][0]


def test_levels_halve_until_every_axis_fits_a_chunk(tmp_path: Path) -> None:
    _stack(tmp_path / "recscan", (9, 40, 36))
    summary = build_pyramid(tmp_path / "recscan", tmp_path / "recscan.zarr", chunk=8)
    assert summary.levels == [(9, 40, 36), (5, 20, 18), (3, 10, 9), (2, 5, 5)]
    assert summary.path == tmp_path / "recscan.zarr"
    assert summary.pixel_size_um == pytest.approx(0.65)
    group = zarr.open_group(str(summary.path), mode="r")
    assert [group[str(level)].shape for level in range(4)] == summary.levels


def test_each_level_is_the_block_mean_of_the_one_below(tmp_path: Path) -> None:
    volume = _stack(tmp_path / "recscan", (9, 40, 36))
    build_pyramid(tmp_path / "recscan", tmp_path / "recscan.zarr", chunk=8)
    group = zarr.open_group(str(tmp_path / "recscan.zarr"), mode="r")
    assert np.array_equal(group["0"][...], volume)
    expected = volume[:8].reshape(4, 2, 20, 2, 18, 2).mean(axis=(1, 3, 5))
    assert np.allclose(group["1"][:4], expected, atol=1e-6)
    assert np.allclose(group["1"][4], volume[8].reshape(20, 2, 18, 2).mean(axis=(1, 3)))


def _edge_padded_block_mean(level: np.ndarray) -> np.ndarray:
    """The definition, written plainly: pad odd axes with their edge, average 2x2x2 blocks."""
    pad = [(0, n % 2) if n > 1 else (0, 0) for n in level.shape]
    padded = np.pad(level.astype(np.float64), pad, mode="edge")
    shape: list[int] = []
    for n in padded.shape:
        shape += [n // 2, 2] if n > 1 else [1, 1]
    return padded.reshape(shape).mean(axis=(1, 3, 5))


@pytest.mark.parametrize(("shape", "chunk"), [((9, 40, 36), 8), ((40, 12, 11), 4)])
def test_every_level_is_the_edge_padded_block_mean_of_the_one_below(
    tmp_path: Path, shape: tuple[int, int, int], chunk: int
) -> None:
    _stack(tmp_path / "recscan", shape)
    summary = build_pyramid(tmp_path / "recscan", tmp_path / "recscan.zarr", chunk=chunk)
    group = zarr.open_group(str(summary.path), mode="r")
    levels = [group[str(level)][...] for level in range(len(summary.levels))]
    for finer, coarser in itertools.pairwise(levels):
        assert np.allclose(coarser, _edge_padded_block_mean(finer), atol=1e-6)


def test_memory_stays_near_one_slab_of_chunk_slices(tmp_path: Path) -> None:
    shape, chunk = (64, 256, 256), 16
    _stack(tmp_path / "recscan", shape)
    build_pyramid(tmp_path / "recscan", tmp_path / "warm.zarr", chunk=chunk)  # imports, caches
    tracemalloc.start()
    try:
        build_pyramid(tmp_path / "recscan", tmp_path / "recscan.zarr", chunk=chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    slab = chunk * shape[1] * shape[2] * 4
    # One slab, a third of one for the coarser levels, chunks in flight: not the four slabs
    # of the volume.
    assert peak < 2.25 * slab


def test_summary_reports_volume_and_stored_bytes(tmp_path: Path) -> None:
    _stack(tmp_path / "recscan", (9, 40, 36))
    summary = build_pyramid(tmp_path / "recscan", tmp_path / "recscan.zarr", chunk=8)
    stored = sum(p.stat().st_size for p in summary.path.rglob("*") if p.is_file())
    assert summary.bytes_read == 9 * 40 * 36 * 4
    assert summary.bytes_written == stored
    assert summary.mb_per_s == pytest.approx(summary.bytes_read / 1e6 / summary.seconds)


def test_scale_metadata_is_in_micrometres_and_doubles_per_level(tmp_path: Path) -> None:
    _stack(tmp_path / "recscan", (9, 40, 36), pixel_size_um=1.3)
    build_pyramid(tmp_path / "recscan", tmp_path / "recscan.zarr", chunk=8)
    multiscale = _multiscale(tmp_path / "recscan.zarr")
    assert multiscale["version"] == "0.4"
    assert multiscale["axes"] == [
        {"name": axis, "type": "space", "unit": "micrometer"} for axis in "zyx"
    ]
    for level, dataset in enumerate(multiscale["datasets"]):
        scale = dataset["coordinateTransformations"][0]
        assert scale["type"] == "scale"
        assert scale["scale"] == pytest.approx([1.3 * 2**level] * 3)


def test_ome_zarr_reader_and_plain_zarr_both_read_it(tmp_path: Path) -> None:
    volume = _stack(tmp_path / "recscan", (9, 40, 36))
    summary = build_pyramid(tmp_path / "recscan", tmp_path / "recscan.zarr", chunk=8)
    image = next(iter(Reader(parse_url(str(summary.path)))()))
    assert [tuple(level.shape) for level in image.data] == summary.levels
    assert np.array_equal(np.asarray(image.data[0]), volume)
    assert [axis["unit"] for axis in image.metadata["axes"]] == ["micrometer"] * 3
    plain = zarr.open(str(summary.path / "0"), mode="r")
    assert plain.dtype == np.float32
    zarray = json.loads((summary.path / "0" / ".zarray").read_text())
    assert zarray["compressor"] is not None and zarray["dimension_separator"] == "/"


def test_small_stack_gets_a_single_level(tmp_path: Path) -> None:
    _stack(tmp_path / "recscan", (3, 16, 16))
    summary = build_pyramid(tmp_path / "recscan", tmp_path / "recscan.zarr")
    assert summary.levels == [(3, 16, 16)]


def test_pixel_size_comes_from_the_reconstruction(scan: Path, tmp_path: Path, stem: str) -> None:
    recon = reconstruct_scan(scan, tmp_path / "scratch")
    summary = build_pyramid(recon.output_dir, tmp_path / "scratch" / f"rec{stem}.zarr", chunk=16)
    assert summary.pixel_size_um == pytest.approx(0.65)
    assert summary.levels == [(6, 64, 64), (3, 32, 32), (2, 16, 16)]


def _refusal(tmp_path: Path) -> StackFormatError:
    with pytest.raises(StackFormatError) as caught:
        build_pyramid(tmp_path / "recscan", tmp_path / "recscan.zarr", chunk=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recscan"]  # nothing half-built
    return caught.value


def test_refuses_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "recscan").mkdir()
    assert _refusal(tmp_path).path == tmp_path / "recscan"


def test_refuses_a_slice_without_a_pixel_size(tmp_path: Path) -> None:
    _stack(tmp_path / "recscan", (4, 16, 16))
    foreign = tmp_path / "recscan" / slice_name("scan", 2)
    tifffile.imwrite(foreign, np.zeros((16, 16), np.float32))
    error = _refusal(tmp_path)
    assert error.path == foreign and "pixel_size_um" in str(error)


def test_refuses_slices_of_different_shapes(tmp_path: Path) -> None:
    _stack(tmp_path / "recscan", (4, 16, 16))
    odd = tmp_path / "recscan" / slice_name("scan", 4)
    write_slice(odd, np.zeros((16, 15), np.float32), SliceDescription("scan", 4, 0.65, 10.0))
    error = _refusal(tmp_path)
    assert error.path == odd and "(16, 15)" in str(error)


def test_rebuilding_replaces_the_previous_pyramid(tmp_path: Path) -> None:
    _stack(tmp_path / "recscan", (4, 16, 16))
    build_pyramid(tmp_path / "recscan", tmp_path / "recscan.zarr", chunk=8)
    (tmp_path / "recscan.zarr" / "stale").write_text("old")
    build_pyramid(tmp_path / "recscan", tmp_path / "recscan.zarr", chunk=8)
    assert not (tmp_path / "recscan.zarr" / "stale").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recscan", "recscan.zarr"]


def test_odd_chunk_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        build_pyramid(tmp_path, tmp_path / "x.zarr", chunk=7)
