"""A plain Data Exchange scan of the phantom at any size, written row block by row block.

``bl832_assets.science.synth.write_synthetic_scan`` builds the whole scan in memory in float64
(about 130 bytes per detector pixel and angle: 4 GB and a minute for 32 rows of an ALS-size
scan), which is fine for tests and too much for a benchmark that wants 64 rows. This writer
keeps one block of rows in memory, uses the exact sinograms of ``analytic`` (one ray per
pixel: the timing does not depend on partial-volume detail), adds Poisson noise and writes
only what ``dx.open_scan`` requires, in the beamline's layout: uint16 projections chunked one
frame per chunk as the detector writes them, five flats and darks, theta in degrees
0..180 inclusive (so the centre is found from the 0°/180° pair, as on real scans).
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
from analytic import sinogram, theta_half_turn

from bl832_assets.science import dx

BEAM = 20_000.0  # open-beam counts, as synth
DARK = 100.0
FRAMES = 5  # flats and darks
BLOCK_ROWS = 16
PIXEL_SIZE_MM = 0.00065


def write_scan(path: Path, *, columns: int, rows: int, angles: int, seed: int = 0) -> Path:
    """Write the scan to ``path`` (under a temporary name, renamed when complete)."""
    rng = np.random.default_rng(seed)
    theta = theta_half_turn(angles)
    temporary = path.with_name(f".{path.name}.partial")
    frame_bytes = rows * columns * 2
    # A chunk cache holding every frame, so each block of rows is written into memory and
    # every chunk reaches the disk once, at close.
    cache = angles * frame_bytes + (64 << 20)
    with h5py.File(temporary, "w", rdcc_nbytes=cache, rdcc_nslots=100_003) as f:
        data = f.create_dataset(
            dx.DATA, (angles, rows, columns), dtype=np.uint16, chunks=(1, rows, columns)
        )
        first = 1080 - rows // 2  # the middle rows of the 2160-row detector: all features
        for start in range(0, rows, BLOCK_ROWS):
            block = range(start, min(start + BLOCK_ROWS, rows))
            integrals = np.stack([sinogram(first + r, columns, theta, subpixels=1) for r in block])
            counts = rng.poisson(DARK + BEAM * np.exp(-integrals.astype(np.float64)))
            data[:, start : block.stop, :] = counts.astype(np.uint16).transpose(1, 0, 2)
        for name, level in ((dx.FLATS, DARK + BEAM), (dx.DARKS, DARK)):
            frames = rng.poisson(np.full((FRAMES, rows, columns), level)).astype(np.uint16)
            f.create_dataset(name, data=frames)
        f.create_dataset(dx.THETA, data=np.rad2deg(theta).astype(np.float32))
        f.create_dataset(dx.PIXEL_SIZE_MM, data=np.array([PIXEL_SIZE_MM]))
    os.replace(temporary, path)
    return path
