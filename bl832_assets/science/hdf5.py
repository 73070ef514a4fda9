"""Opening a beamline's HDF5 file for reading, with the errors an operator can act on.

Shared by every HDF5 layout (8.3.2 Data Exchange, 7.0.1.2 CXI): a missing file says so with its
path and reason, and a file h5py cannot open is refused as that layout's format error.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import h5py

from bl832_assets.science.errors import ScanFormatError


def open_readable(path: Path, refuse: Callable[[Path, OSError], ScanFormatError]) -> h5py.File:
    """``path`` opened read-only; ``refuse(path, error)`` makes the layout's error for a file
    h5py cannot open."""
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise refuse(path, error) from error
