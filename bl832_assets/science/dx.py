"""The 8.3.2 Data Exchange (DX) HDF5 layout: one reader shared by the sensor, the payload and
the catalog, so that a malformed scan is refused the same way everywhere."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from bl832_assets.science.errors import ScanFormatError
from bl832_assets.science.hdf5 import open_readable

# Dataset paths inside a scan file. The arrays follow the APS/ALS Data Exchange convention:
# projections are (angles, rows, columns) uint16; theta is in degrees.
DATA = "/exchange/data"
FLATS = "/exchange/data_white"
DARKS = "/exchange/data_dark"
THETA = "/exchange/theta"
PIXEL_SIZE_MM = "/measurement/instrument/detector/pixel_size"
INSTRUMENT_NAME = "/measurement/instrument/instrument_name"
SAMPLE_NAME = "/measurement/sample/file_name"
EXPERIMENT = "/measurement/sample/experiment"
PI = f"{EXPERIMENT}/pi"
PROPOSAL = f"{EXPERIMENT}/proposal"
BEAMLINE = f"{EXPERIMENT}/beamline"
EXPERIMENT_LEAD = f"{EXPERIMENT}/experiment_lead"
EXPORT_CONTROL = f"{EXPERIMENT}/export_control"
EXPERIMENTER_NAME = "/measurement/sample/experimenter/name"
EXPERIMENTER_EMAIL = "/measurement/sample/experimenter/email"


@dataclass(frozen=True)
class ScanMetadata:
    """What the platform needs to know about a scan without reading its projections."""

    path: str
    shape: tuple[int, int, int]  # (angles, rows, columns) of /exchange/data
    dtype: str
    n_flats: int
    n_darks: int
    pixel_size_mm: float
    instrument_name: str
    sample_name: str
    pi: str
    proposal: str
    beamline: str
    experiment_lead: str
    experimenter_name: str
    experimenter_email: str
    export_control: bool
    # Scalar datasets under /measurement and /process, flattened to "group/name" keys with
    # JSON-friendly values: the scientific metadata the catalog stores.
    scientific: dict[str, object] = field(default_factory=dict)

    @property
    def angles(self) -> int:
        return self.shape[0]

    @property
    def rows(self) -> int:
        return self.shape[1]

    @property
    def columns(self) -> int:
        return self.shape[2]


# Scalars come as shape-() or shape-(1,) datasets; anything with more elements is an array and
# does not belong in the catalog's scientific metadata.
_SCIENTIFIC_GROUPS = ("/measurement", "/process")
_FALSE_WORDS = frozenset({"false", "no", "n", "0", "off", ""})


def _open_file(path: Path) -> h5py.File:
    return open_readable(
        path, lambda p, error: ScanFormatError(p, "file", f"not a readable HDF5 file ({error})")
    )


def _dataset(f: h5py.File, name: str) -> h5py.Dataset:
    """The dataset ``name``, with a missing or unreadable entry reported as that field."""
    try:
        node = f.get(name)
    except (OSError, KeyError, RuntimeError) as error:
        raise ScanFormatError(f.filename, name, f"unreadable ({error})") from error
    if node is None:
        raise ScanFormatError(f.filename, name, "missing")
    if not isinstance(node, h5py.Dataset):
        raise ScanFormatError(f.filename, name, "is a group, not a dataset")
    return node


def _read(dataset: h5py.Dataset) -> object:
    try:
        return dataset[()]
    except (OSError, RuntimeError, ValueError) as error:
        raise ScanFormatError(
            dataset.file.filename, dataset.name, f"unreadable ({error})"
        ) from error


def _json_value(value: object) -> object:
    """A plain Python value from what h5py returns for a scalar: byte strings decoded, shape-(1,)
    arrays unwrapped, NaN turned into None (JSON has no NaN)."""
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size == 1 else value.tolist()
    if isinstance(value, bytes):  # fixed-length strings come padded with NULs or spaces
        return value.decode("utf-8", errors="replace").strip("\x00 \t\r\n")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _text(f: h5py.File, name: str) -> str:
    """An optional text field; absent means unknown, which the catalog stores as ""."""
    if name not in f:
        return ""
    value = _json_value(_read(_dataset(f, name)))
    return "" if value is None else str(value).strip()


def _export_control(f: h5py.File) -> bool:
    """Whether the scan must stay on site. An unrecognised value counts as controlled: a typo in
    the acquisition software must never let data leave the ALS."""
    if EXPORT_CONTROL not in f:
        return False
    value = _json_value(_read(_dataset(f, EXPORT_CONTROL)))
    if isinstance(value, bool | int | float):
        return bool(value)
    word = str(value).strip().lower()
    return word not in _FALSE_WORDS


def _pixel_size_mm(f: h5py.File) -> float:
    dataset = _dataset(f, PIXEL_SIZE_MM)
    values = np.asarray(_read(dataset)).reshape(-1)
    if values.size == 0 or values.dtype.kind not in "iuf":
        raise ScanFormatError(f.filename, PIXEL_SIZE_MM, "is not a number")
    size = float(values[0])
    if not (math.isfinite(size) and size > 0):
        raise ScanFormatError(f.filename, PIXEL_SIZE_MM, f"must be positive, got {size}")
    return size


def _scientific(f: h5py.File) -> dict[str, object]:
    """Every scalar under /measurement and /process, keyed by its path without the leading "/"
    (e.g. "measurement/instrument/detector/pixel_size") so that no two keys can collide."""
    found: dict[str, object] = {}

    def visit(name: str, node: object) -> None:
        if isinstance(node, h5py.Dataset) and node.size == 1 and node.dtype.kind in "biufSO":
            found[node.name.lstrip("/")] = _json_value(_read(node))

    for group in _SCIENTIFIC_GROUPS:
        if isinstance(f.get(group), h5py.Group):
            f[group].visititems(visit)
    return found


def _arrays(f: h5py.File) -> tuple[h5py.Dataset, h5py.Dataset, h5py.Dataset, h5py.Dataset]:
    """The four arrays, checked against each other so a reconstruction cannot fail halfway."""
    data, flats, darks, theta = (_dataset(f, name) for name in (DATA, FLATS, DARKS, THETA))
    if data.ndim != 3:
        raise ScanFormatError(
            f.filename, DATA, f"must be 3-D (angles, rows, columns), got shape {data.shape}"
        )
    for frames in (flats, darks):
        if frames.ndim != 3 or frames.shape[1:] != data.shape[1:] or frames.shape[0] == 0:
            raise ScanFormatError(
                f.filename,
                frames.name,
                f"must be (frames, {data.shape[1]}, {data.shape[2]}), got {frames.shape}",
            )
    if theta.ndim != 1 or theta.shape[0] != data.shape[0]:
        raise ScanFormatError(
            f.filename,
            THETA,
            f"must hold one angle per projection ({data.shape[0]}), got shape {theta.shape}",
        )
    return data, flats, darks, theta


def _metadata(f: h5py.File, path: Path) -> ScanMetadata:
    data, flats, darks, _ = _arrays(f)
    return ScanMetadata(
        path=str(path),
        shape=tuple(int(n) for n in data.shape),  # type: ignore[arg-type]
        dtype=str(data.dtype),
        n_flats=int(flats.shape[0]),
        n_darks=int(darks.shape[0]),
        pixel_size_mm=_pixel_size_mm(f),
        instrument_name=_text(f, INSTRUMENT_NAME),
        sample_name=_text(f, SAMPLE_NAME),
        pi=_text(f, PI),
        proposal=_text(f, PROPOSAL),
        beamline=_text(f, BEAMLINE),
        experiment_lead=_text(f, EXPERIMENT_LEAD),
        experimenter_name=_text(f, EXPERIMENTER_NAME),
        experimenter_email=_text(f, EXPERIMENTER_EMAIL),
        export_control=_export_control(f),
        scientific=_scientific(f),
    )


def read_metadata(path: str | Path) -> ScanMetadata:
    """Validate a scan and describe it from its header alone (no projection is read), cheap
    enough for a sensor to call on every new file."""
    path = Path(path)
    with _open_file(path) as f:
        return _metadata(f, path)


@dataclass(frozen=True)
class Scan:
    """An open, validated scan whose arrays stay on disk until a slab of rows is asked for, so
    memory follows the slab and not the scan."""

    path: Path
    metadata: ScanMetadata
    projections: h5py.Dataset  # (angles, rows, columns)
    flats: h5py.Dataset  # (frames, rows, columns)
    darks: h5py.Dataset  # (frames, rows, columns)
    theta: np.ndarray  # radians, one per projection

    def sinograms(self, rows: slice) -> np.ndarray:
        """Detector ``rows`` as float32 sinograms (rows, angles, columns)."""
        return np.ascontiguousarray(self._read(self.projections, rows).transpose(1, 0, 2))

    def projection(self, index: int, rows: slice) -> np.ndarray:
        """One projection, restricted to ``rows``, as float32 (rows, columns)."""
        return self._read(self.projections, rows, index)[0]

    def flat_frames(self, rows: slice) -> np.ndarray:
        """Every flat-field frame, restricted to ``rows``: (frames, rows, columns)."""
        return self._read(self.flats, rows)

    def dark_frames(self, rows: slice) -> np.ndarray:
        """Every dark-field frame, restricted to ``rows``: (frames, rows, columns)."""
        return self._read(self.darks, rows)

    def _read(self, dataset: h5py.Dataset, rows: slice, frame: int | None = None) -> np.ndarray:
        """A float32 block, refusing non-finite counts: one NaN would otherwise silently turn
        every slice it touches into NaN."""
        frames = slice(None) if frame is None else slice(frame, frame + 1)
        try:
            block = np.asarray(dataset[frames, rows, :], dtype=np.float32)
        except (OSError, RuntimeError) as error:
            raise ScanFormatError(self.path, dataset.name, f"unreadable ({error})") from error
        if not np.isfinite(block).all():
            first, last, _ = rows.indices(dataset.shape[1])
            raise ScanFormatError(
                self.path, dataset.name, f"non-finite values in rows {first}..{last - 1}"
            )
        return block


@contextmanager
def open_scan(path: str | Path) -> Iterator[Scan]:
    """Open and validate a scan for reading; the file closes when the block ends."""
    path = Path(path)
    with _open_file(path) as f:
        metadata = _metadata(f, path)
        theta_degrees = np.asarray(_read(f[THETA]), dtype=np.float64)
        if not np.isfinite(theta_degrees).all():
            raise ScanFormatError(path, THETA, "non-finite angles")
        yield Scan(
            path=path,
            metadata=metadata,
            projections=f[DATA],
            flats=f[FLATS],
            darks=f[DARKS],
            theta=np.deg2rad(theta_degrees),
        )
