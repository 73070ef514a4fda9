"""The CXI layout of 7.0.1.2 (COSMIC) ptychography scans: one reader and writer for the payload,
the synthetic scans and the output checks, so a malformed file is refused the same way everywhere.

CXI is HDF5 with fixed paths under ``entry_1``. COSMIC's pre-processor and cdtools put the same
fields in different places (frames under ``data_1`` or the detector, the probe guess under the
source or the detector), so the reader tries each place the standard or those tools use, in
order. Reconstructions go into ``entry_1/image_<n>/data`` (complex), the next free ``n``, as
ptychocam and cdtools write theirs and upstream's ingest prototype reads them.

Units are the standard's: metres and joules. Translations are the *sample's*, (x, y, z) per frame;
the probe's position on the object is their negative, as cdtools reads them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from bl832_assets.science.atomic import atomic_path
from bl832_assets.science.errors import ScanFormatError
from bl832_assets.science.hdf5 import open_readable

ENTRY = "entry_1"
DETECTOR = f"{ENTRY}/instrument_1/detector_1"
SOURCE = f"{ENTRY}/instrument_1/source_1"
GEOMETRY = f"{ENTRY}/sample_1/geometry_1"
FRAMES = f"{DETECTOR}/data"
FRAMES_LINK = f"{ENTRY}/data_1/data"
TRANSLATION = f"{GEOMETRY}/translation"
ENERGY = f"{SOURCE}/energy"  # joules
WAVELENGTH = f"{SOURCE}/wavelength"  # metres
DISTANCE = f"{DETECTOR}/distance"  # sample to detector, metres
X_PIXEL_SIZE = f"{DETECTOR}/x_pixel_size"  # detector pixel, metres
Y_PIXEL_SIZE = f"{DETECTOR}/y_pixel_size"
PROBE = f"{SOURCE}/illumination"  # the probe guess (CXI standard; ptychodus reads it here)

FRAME_PATHS = (FRAMES_LINK, FRAMES)
TRANSLATION_PATHS = (TRANSLATION, f"{ENTRY}/data_1/translation", f"{DETECTOR}/translation")
PROBE_PATHS = (PROBE, f"{DETECTOR}/probe")  # the second: COSMIC's pre-processor

PLANCK_TIMES_C = 1.98644586e-25  # h·c in J·m: wavelength = h·c / energy
ELECTRONVOLT = 1.602176634e-19  # joules
WAVELENGTH_TOLERANCE = 0.01  # relative: energy and wavelength both given must agree this well
_IMAGE = re.compile(r"image_(\d+)$")


class CxiFormatError(ScanFormatError):
    """A CXI file lacks a field a ptychographic reconstruction needs, or holds a wrong one.

    A ``ScanFormatError`` so the core refuses it as it refuses a malformed 8.3.2 scan; the
    message names the file and the CXI path of the field.
    """


@dataclass(frozen=True)
class CxiHeader:
    """Everything about a scan but its frames: geometry, scan positions and the probe guess."""

    frames: int
    frame_shape: tuple[int, int]  # detector pixels (rows, columns) of one diffraction frame
    wavelength_m: float
    distance_m: float
    pixel_size_m: tuple[float, float]  # detector pixel (y, x)
    translations_m: np.ndarray  # (frames, 3): the sample's x, y, z per frame
    probe: np.ndarray | None  # complex (rows, columns) on the object's grid, or None

    @property
    def energy_ev(self) -> float:
        return PLANCK_TIMES_C / self.wavelength_m / ELECTRONVOLT

    @property
    def object_pixel_m(self) -> tuple[float, float]:
        """The object-plane pixel (y, x) of a far-field reconstruction: λ·z / (N·p)."""
        (rows, columns), (pixel_y, pixel_x) = self.frame_shape, self.pixel_size_m
        reach = self.wavelength_m * self.distance_m
        return reach / (rows * pixel_y), reach / (columns * pixel_x)

    def positions_px(self) -> np.ndarray:
        """The probe's position on the object for each frame, (row, column) in object pixels,
        shifted so the smallest is 0: the negated sample translation."""
        yx = -self.translations_m[:, [1, 0]] / np.asarray(self.object_pixel_m)
        return yx - yx.min(axis=0)


@dataclass(frozen=True)
class CxiScan:
    """A scan read whole: its header and its diffraction intensities (frames, rows, columns)."""

    header: CxiHeader
    frames: np.ndarray


def _open(path: Path) -> h5py.File:
    return open_readable(
        path, lambda p, error: CxiFormatError(p, "/", f"not an HDF5 file ({error})")
    )


def _first(f: h5py.File, candidates: tuple[str, ...]) -> str | None:
    return next((name for name in candidates if name in f), None)


def _positive(f: h5py.File, path: Path, name: str) -> float:
    if name not in f:
        raise CxiFormatError(path, name, "missing")
    value = np.asarray(f[name][()], dtype=np.float64).ravel()
    if value.size != 1 or not np.isfinite(value[0]) or value[0] <= 0:
        raise CxiFormatError(path, name, f"must be one positive number, got {value[:4]}")
    return float(value[0])


def _wavelength(f: h5py.File, path: Path) -> float:
    """From ``wavelength`` or ``energy``, whichever is there; both must agree if both are."""
    from_energy = PLANCK_TIMES_C / _positive(f, path, ENERGY) if ENERGY in f else None
    if WAVELENGTH not in f:
        if from_energy is None:
            raise CxiFormatError(path, ENERGY, f"missing (and no {WAVELENGTH} either)")
        return from_energy
    wavelength = _positive(f, path, WAVELENGTH)
    if from_energy is not None and abs(from_energy / wavelength - 1) > WAVELENGTH_TOLERANCE:
        raise CxiFormatError(
            path, WAVELENGTH, f"{wavelength:.4g} m disagrees with {ENERGY} ({from_energy:.4g} m)"
        )
    return wavelength


def _frame_dataset(f: h5py.File, path: Path) -> h5py.Dataset:
    name = _first(f, FRAME_PATHS)
    if name is None:
        raise CxiFormatError(path, FRAMES, "missing: no diffraction frames")
    frames = f[name]
    if frames.ndim != 3 or 0 in frames.shape:
        raise CxiFormatError(path, name, f"must be (frames, rows, columns), got {frames.shape}")
    return frames


def _translations(f: h5py.File, path: Path, count: int) -> np.ndarray:
    name = _first(f, TRANSLATION_PATHS)
    if name is None:
        raise CxiFormatError(path, TRANSLATION, "missing: no scan positions")
    values = np.asarray(f[name][()], dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != count or values.shape[1] not in (2, 3):
        raise CxiFormatError(
            path, name, f"must be ({count}, 3) for {count} frames, got {values.shape}"
        )
    if not np.isfinite(values).all():
        raise CxiFormatError(path, name, "holds NaN or infinite positions")
    return np.pad(values, ((0, 0), (0, 3 - values.shape[1])))


def _probe(f: h5py.File, path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    name = _first(f, PROBE_PATHS)
    if name is None:
        return None
    probe = np.asarray(f[name][()])
    if probe.ndim == 3 and probe.shape[0] == 1:  # one probe mode, as cdtools stores them
        probe = probe[0]
    if probe.shape != shape:
        raise CxiFormatError(path, name, f"must match the frames' {shape}, got {probe.shape}")
    if not np.isfinite(probe).all() or not np.abs(probe).any():
        raise CxiFormatError(path, name, "must be finite and not all zero")
    return probe.astype(np.complex128)


def _header(f: h5py.File, path: Path) -> tuple[CxiHeader, h5py.Dataset]:
    frames = _frame_dataset(f, path)
    count, rows, columns = frames.shape
    header = CxiHeader(
        frames=count,
        frame_shape=(rows, columns),
        wavelength_m=_wavelength(f, path),
        distance_m=_positive(f, path, DISTANCE),
        pixel_size_m=(_positive(f, path, Y_PIXEL_SIZE), _positive(f, path, X_PIXEL_SIZE)),
        translations_m=_translations(f, path, count),
        probe=_probe(f, path, (rows, columns)),
    )
    return header, frames


def read_header(path: str | Path) -> CxiHeader:
    """The scan's geometry, positions and probe guess, without reading its frames."""
    path = Path(path)
    with _open(path) as f:
        return _header(f, path)[0]


def read_scan(path: str | Path) -> CxiScan:
    """The whole scan; frames must be finite and non-negative intensities, not all zero."""
    path = Path(path)
    with _open(path) as f:
        header, dataset = _header(f, path)
        frames = dataset[()].astype(np.float32)
    if not np.isfinite(frames).all():
        raise CxiFormatError(path, dataset.name, "holds NaN or infinite intensities")
    if frames.min() < 0 or not frames.any():
        raise CxiFormatError(path, dataset.name, "intensities must be >= 0 and not all zero")
    return CxiScan(header, frames)


@contextmanager
def _durable(path: Path) -> Iterator[Path]:
    """``atomic_path`` that also flushes the file, and then its folder, to disk: a crash leaves
    either the old file or the complete new one, never a renamed but empty one."""
    with atomic_path(path) as temporary:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _write_header(f: h5py.File, header: CxiHeader) -> None:
    f.attrs["cxi_version"] = 160
    f[ENERGY] = PLANCK_TIMES_C / header.wavelength_m
    f[WAVELENGTH] = header.wavelength_m
    f[DISTANCE] = header.distance_m
    f[Y_PIXEL_SIZE], f[X_PIXEL_SIZE] = header.pixel_size_m
    f[TRANSLATION] = header.translations_m
    for link in TRANSLATION_PATHS[1:]:
        f[link] = h5py.SoftLink(f"/{TRANSLATION}")
    if header.probe is not None:
        f.create_dataset(PROBE, data=header.probe.astype(np.complex64))


def write_scan(path: str | Path, header: CxiHeader, frames: np.ndarray) -> Path:
    """Write a scan to ``path`` atomically: under its final name only once complete."""
    path = Path(path)
    frames = np.asarray(frames, dtype=np.float32)
    if frames.shape != (header.frames, *header.frame_shape):
        raise ValueError(f"{path}: frames {frames.shape} do not match the header's")
    with _durable(path) as temporary, h5py.File(temporary, "w") as f:
        _write_header(f, header)
        rows, columns = header.frame_shape
        f.create_dataset(FRAMES, data=frames, chunks=(1, rows, columns), compression="gzip")
        f[FRAMES].attrs["axes"] = np.bytes_("translation:y:x")
        f[FRAMES_LINK] = h5py.SoftLink(f"/{FRAMES}")
    return path


def image_names(path: str | Path) -> list[str]:
    """The ``entry_1/image_<n>`` groups of a file, by ``n``."""
    path = Path(path)
    with _open(path) as f:
        found = [(int(m[1]), f"{ENTRY}/{k}") for k in f.get(ENTRY, {}) if (m := _IMAGE.match(k))]
    return [name for _, name in sorted(found)]


def read_image(path: str | Path, name: str | None = None) -> np.ndarray:
    """A reconstruction's ``data`` (the latest ``image_<n>`` unless ``name`` says which)."""
    path = Path(path)
    names = image_names(path)
    if not names:
        raise CxiFormatError(path, f"{ENTRY}/image_1", "missing: no reconstruction written")
    group = names[-1] if name is None else name
    with _open(path) as f:
        if f"{group}/data" not in f:
            raise CxiFormatError(path, f"{group}/data", "missing")
        return f[f"{group}/data"][()]


def write_image(
    path: str | Path,
    image: np.ndarray,
    *,
    illumination: np.ndarray | None = None,
    notes: dict[str, str] | None = None,
    header: CxiHeader | None = None,
) -> str:
    """Add a reconstruction as the next ``entry_1/image_<n>`` of the CXI file ``path``, and
    return the group's name.

    The file is rewritten whole into a temporary sibling, flushed and renamed, so a reader never
    sees half an image and a killed job leaves the previous file intact. A missing ``path`` is
    created, holding ``header`` (when given) so the result carries its geometry and positions.
    ``illumination`` (the final probe) and ``notes`` (text such as the parameters) go into the
    image's ``process_1``.
    """
    path = Path(path)
    existing = image_names(path) if path.exists() else []
    number = int(existing[-1].rsplit("_", 1)[1]) + 1 if existing else 1
    name = f"{ENTRY}/image_{number}"
    with _durable(path) as temporary:
        if path.exists():
            shutil.copyfile(path, temporary)
        with h5py.File(temporary, "a") as f:
            if header is not None and not path.exists():
                _write_header(f, header)
            group = f.create_group(name)
            group.create_dataset("data", data=np.asarray(image, dtype=np.complex64))
            group["data_space"] = np.bytes_("real")
            process = group.create_group("process_1")
            if illumination is not None:
                process.create_dataset(
                    "final_illumination", data=np.asarray(illumination, dtype=np.complex64)
                )
            for key, text in (notes or {}).items():
                process[key] = np.bytes_(text)
    return name
