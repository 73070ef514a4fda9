"""Synthetic 8.3.2 scans: the layout, types and imperfections of a real file, with a known object.

Used by tests and demos in place of beamline data. The object and the geometry convention are in
``bl832_assets.science.phantom`` (re-exported here); what this module adds is the detector:
beam profile, flats and darks, photon noise, an off-centre rotation axis and a few columns whose
gain drifts between the flat fields and the projections, which a flat field cannot correct and
which a reconstruction shows as rings, as on the real instrument.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from bl832_assets.science import dx
from bl832_assets.science.atomic import atomic_path
from bl832_assets.science.phantom import (
    DEFAULT_PIXEL_SIZE_MM,
    phantom_slice,
    phantom_volume,
    transmission,
)

__all__ = ["phantom_slice", "phantom_volume", "rotation_centre", "write_synthetic_scan"]

BEAM_COUNTS = 20_000.0  # open-beam counts of a 16-bit sCMOS frame at 8.3.2 exposure times
DARK_COUNTS = 100.0
N_FLATS = 5
N_DARKS = 5


def rotation_centre(columns: int, centre_offset: float) -> float:
    """The column the rotation axis projects onto (see the convention in ``phantom``)."""
    return (columns - 1) / 2 + centre_offset


def _beam(rows: int, columns: int) -> np.ndarray:
    """Open-beam counts, brighter in the middle as a bending-magnet beam is."""
    x = np.linspace(-1, 1, columns)[None, :]
    y = np.linspace(-1, 1, rows)[:, None]
    return BEAM_COUNTS * (0.8 + 0.2 * np.exp(-(x**2) / 0.8 - y**2 / 2.0))


def _gain_drift(columns: int, defective: int, rng: np.random.Generator) -> np.ndarray:
    """Per-column gain during projections relative to flats: 1 except at defective columns,
    kept away from the edges so that every ring lands inside the reconstruction circle."""
    drift = np.ones(columns)
    if defective:
        picks = rng.choice(np.arange(columns // 8, columns - columns // 8), defective, False)
        drift[picks] = 1 + rng.choice([-1, 1], defective) * rng.uniform(0.03, 0.08, defective)
    return drift


def _counts(expected: np.ndarray, noise: bool, rng: np.random.Generator) -> np.ndarray:
    if noise:
        expected = rng.poisson(expected).astype(np.float64)
    return np.clip(np.rint(expected), 0, np.iinfo(np.uint16).max).astype(np.uint16)


def _frames(
    *,
    columns: int,
    rows: int,
    theta: np.ndarray,
    centre: float,
    noise: bool,
    defective_columns: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    beam = _beam(rows, columns)
    dark = DARK_COUNTS + rng.normal(0, 3, (rows, columns))  # fixed-pattern offset
    drift = _gain_drift(columns, defective_columns, rng)
    flux = np.ones((theta.size, 1, 1))
    if noise:  # the source current wanders a little from frame to frame
        flux = 1 + rng.normal(0, 0.003, flux.shape)
    signal = beam * drift * flux * transmission(theta, columns=columns, rows=rows, centre=centre)
    projections = _counts(dark + signal, noise, rng)
    flats = _counts(np.broadcast_to(dark + beam, (N_FLATS, rows, columns)), noise, rng)
    darks = _counts(np.broadcast_to(dark, (N_DARKS, rows, columns)), noise, rng)
    return projections, flats, darks


def _scalar(group: h5py.Group, name: str, value: object) -> None:
    """8.3.2 files store scalars as shape-(1,) arrays and text as byte strings."""
    if isinstance(value, str):
        value = value.encode()
    group.create_dataset(name, data=np.array([value]))


def _write_metadata(
    f: h5py.File,
    *,
    columns: int,
    rows: int,
    theta_degrees: np.ndarray,
    proposal: str,
    pi: str,
    email: str,
    sample: str,
    export_control: bool,
) -> None:
    _scalar(f, dx.PIXEL_SIZE_MM, DEFAULT_PIXEL_SIZE_MM)
    detector = f[dx.PIXEL_SIZE_MM].parent
    for name, value in (
        ("dimension_x", columns),
        ("dimension_y", rows),
        ("model", "PCO Edge 5.5"),
        ("exposure_time", 0.05),
        ("binning_x", 1),
        ("binning_y", 1),
    ):
        _scalar(detector, name, value)
    f[dx.INSTRUMENT_NAME] = b"bl832"  # a true scalar, as some older files have
    _scalar(f, "/measurement/instrument/monochromator/energy", 25_000.0)
    _scalar(f, "/measurement/instrument/source/current", 500.2)
    _scalar(f, dx.SAMPLE_NAME, sample)
    for name, value in (
        (dx.PI, pi),
        (dx.PROPOSAL, proposal),
        (dx.BEAMLINE, "8.3.2"),
        (dx.EXPERIMENT_LEAD, pi),
        (dx.EXPORT_CONTROL, "True" if export_control else "False"),
        (dx.EXPERIMENTER_NAME, pi),
        (dx.EXPERIMENTER_EMAIL, email),
    ):
        _scalar(f, name, value)
    rotation = f.create_group("/process/acquisition/rotation")
    _scalar(rotation, "num_angles", theta_degrees.size)
    _scalar(rotation, "range", float(theta_degrees[-1] - theta_degrees[0]))
    _scalar(rotation, "rotation_start", float(theta_degrees[0]))
    _scalar(rotation, "rotation_step", float(np.diff(theta_degrees).mean()))
    _scalar(f, "/process/acquisition/flat_fields/num_flat_fields", N_FLATS)
    _scalar(f, "/process/acquisition/dark_fields/num_dark_fields", N_DARKS)
    _scalar(f, "/process/acquisition/name", sample)


def write_synthetic_scan(
    path: str | Path,
    *,
    columns: int = 128,
    rows: int = 8,
    angles: int = 181,
    centre_offset: float = 0.0,
    noise: bool = True,
    export_control: bool = False,
    defective_columns: int = 3,
    seed: int = 0,
    proposal: str = "BLS-00564",
    pi: str = "Dula Parkinson",
    email: str = " Dula Parkinson <DYParkinson@lbl.gov> ",
    sample: str | None = None,
) -> Path:
    """Write a scan of the phantom to ``path`` and return it.

    The file appears under its final name only once complete, as the beamline's writer should,
    so a watcher polling the folder never picks up half a scan. Theta runs over 0..180° inclusive
    in degrees; the rotation axis sits at ``rotation_centre(columns, centre_offset)``.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    theta_degrees = np.linspace(0.0, 180.0, angles, dtype=np.float32)
    projections, flats, darks = _frames(
        columns=columns,
        rows=rows,
        theta=np.deg2rad(theta_degrees.astype(np.float64)),
        centre=rotation_centre(columns, centre_offset),
        noise=noise,
        defective_columns=defective_columns,
        rng=rng,
    )
    with atomic_path(path) as temporary, h5py.File(temporary, "w") as f:
        f.create_dataset(dx.DATA, data=projections, chunks=(1, rows, columns))
        f.create_dataset(dx.FLATS, data=flats)
        f.create_dataset(dx.DARKS, data=darks)
        f.create_dataset(dx.THETA, data=theta_degrees)
        _write_metadata(
            f,
            columns=columns,
            rows=rows,
            theta_degrees=theta_degrees,
            proposal=proposal,
            pi=pi,
            email=email,
            sample=path.stem if sample is None else sample,
            export_control=export_control,
        )
    return path
