"""Checks on a finished 7.0.1.2 reconstruction, for asset checks: they re-read the CXI file
instead of trusting what the job reported, so a job that exited 0 without writing its image,
or wrote NaNs (a diverged run), fails where an operator sees it.

Each returns a ``CheckOutcome`` free of Dagster; the asset layer turns it into an
``AssetCheckResult`` with the same fields. The latest ``entry_1/image_<n>`` is checked, as
upstream's tools append a new image group per run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from bl832_assets.beamlines.bl7012.cxi import image_names


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict[str, object] = field(default_factory=dict)


def _latest(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        names = image_names(path)
    except (OSError, ValueError):  # unreadable or not HDF5: nothing written, for this check
        return None
    return names[-1] if names else None


def check_written(path: str | Path, expected_shape: tuple[int, int] | None = None) -> CheckOutcome:
    """The file holds a reconstruction: a complex 2-D ``image_<n>/data``, of ``expected_shape``
    when the caller knows it (the local engine's object grid; NERSC's tools pad theirs)."""
    path = Path(path)
    group = _latest(path)
    if group is None:
        return CheckOutcome(False, f"{path}: no entry_1/image_<n> group written")
    with h5py.File(path, "r") as f:
        data = f.get(f"{group}/data")
        if not isinstance(data, h5py.Dataset):
            return CheckOutcome(False, f"{path}: {group} has no data", {"image": group})
        shape, dtype = tuple(data.shape), data.dtype
    metadata: dict[str, object] = {"image": group, "shape": list(shape), "dtype": str(dtype)}
    if len(shape) != 2 or 0 in shape:
        problem = f"{group}/data has shape {shape}, not a 2-D image"
    elif dtype.kind != "c":
        problem = f"{group}/data is {dtype}, not complex"
    elif expected_shape is not None and shape != tuple(expected_shape):
        problem = f"{group}/data has shape {shape}, expected {tuple(expected_shape)}"
    else:
        return CheckOutcome(True, f"{group}: complex {shape[0]}x{shape[1]} image", metadata)
    return CheckOutcome(False, f"{path}: {problem}", metadata)


def check_finite(path: str | Path) -> CheckOutcome:
    """Every value of the latest reconstruction is finite (no NaN, no infinity)."""
    path = Path(path)
    group = _latest(path)
    if group is None:
        return CheckOutcome(False, f"{path}: no entry_1/image_<n> group to check")
    with h5py.File(path, "r") as f:
        data = np.asarray(f[f"{group}/data"][()])
    bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    metadata: dict[str, object] = {"image": group, "non_finite_values": bad}
    if bad:
        return CheckOutcome(False, f"{path}: {group} holds {bad} NaN or infinite values", metadata)
    return CheckOutcome(True, f"{group}: all {data.size} values finite", metadata)
