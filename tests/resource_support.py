"""Builders shared by the resource tests (a module of its own, since conftest is not importable
under a unique name)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bl832_assets.resources.transfer import LocalTransferResource
from bl832_assets.science.dx import ScanMetadata

FOLDER = "BLS-00564_dyparkinson"
SCAN = f"{FOLDER}/20230606_151124_jong-seto_fungal-mycelia_roll-AQ_fungi1_fast.h5"


def root(transfer: LocalTransferResource, endpoint: str) -> Path:
    return Path(transfer.endpoints[endpoint])


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def files_in(folder: Path) -> list[str]:
    """Every file under ``folder``, hidden ones included, so leftovers cannot hide."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def scan_metadata(**changes: object) -> ScanMetadata:
    """A scan's metadata as the DX reader returns it; tests change only what they are about."""
    metadata = ScanMetadata(
        path=f"/data/spot832/{SCAN}",
        shape=(1313, 2160, 2560),
        dtype="uint16",
        n_flats=20,
        n_darks=20,
        pixel_size_mm=0.00065,
        instrument_name="ALS 8.3.2",
        sample_name="fungi1_fast",
        pi="Dula Parkinson",
        proposal="BLS-00564",
        beamline="bl832",
        experiment_lead="Dula Parkinson",
        experimenter_name="Jong Seto",
        experimenter_email=' "Jong Seto" <JSeto@LBL.gov> ',
        export_control=False,
        scientific={"process/acquisition/rotation/range": 180.0},
    )
    return dataclasses.replace(metadata, **changes)
