"""7.0.1.2's catalog records: one raw dataset per CXI scan and one derived dataset per
ptychographic reconstruction, linked to it.

Upstream has no 7.0.1.2 spec: only an empty outline and a staging script that made a derived
dataset of a cdtools run (usedSoftware, jobParameters, inputDatasets = the raw ids). A CXI file
names no proposal or person, so the scan's owner group is the beamline's group "7.0.1.2" unless
the caller knows the proposal (from the beamline's schedule); the scientific metadata is what
the header says of the measurement.

Pure functions of what ``cxi.read_header`` and the ptychography payload return: nothing here
reads a file or imports Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

from bl832_assets.beamlines.bl7012.cxi import CxiHeader
from bl832_assets.resources.catalog.mapping import (
    derived_from,
    iso_utc,
    proposal_group,
    raw_origin,
    unique,
)
from bl832_assets.resources.catalog.records import FileEntry

BEAMLINE = "7.0.1.2"
DATA_FORMAT = "CXI"
KEYWORDS = ("ptychography", "ALS", BEAMLINE, "COSMIC", "soft X-ray")


def raw_fields(
    path: str | PurePath,
    header: CxiHeader,
    mtime: float,
    *,
    proposal: str | None = None,
    pi: str | None = None,
    contact_email: str | None = None,
) -> dict[str, Any]:
    """The raw dataset of the scan at ``path`` (at the location catalogued), its ``header``
    as ``read_header`` returns it and ``mtime`` its file's (POSIX seconds). ``proposal``,
    ``pi`` and ``contact_email`` are for a caller that knows them: the file does not."""
    path = PurePath(path)
    stem = path.stem
    return {
        **raw_origin(
            BEAMLINE, proposal_group(proposal, BEAMLINE), pi, contact_email, proposal=proposal
        ),
        "datasetName": stem,
        "sourceFolder": str(path.parent),
        "creationTime": iso_utc(mtime),
        "description": f"Ptychography scan {stem}: {header.frames} diffraction frames "
        f"at {header.energy_ev:.1f} eV",
        "keywords": list(KEYWORDS),
        "dataFormat": DATA_FORMAT,
        "scientificMetadata": {
            "energy_ev": round(header.energy_ev, 3),
            "wavelength_m": header.wavelength_m,
            "distance_m": header.distance_m,
            "frames": header.frames,
            "frame_shape": list(header.frame_shape),
            "positions": len(header.translations_m),
            "detector_pixel_m": list(header.pixel_size_m),
            "object_pixel_m": list(header.object_pixel_m),
            "probe_guess": header.probe is not None,
        },
    }


def reconstruction_fields(
    raw: Mapping[str, Any],
    raw_pid: str,
    run: Mapping[str, Any],
    files: Sequence[FileEntry],
) -> dict[str, Any]:
    """The derived dataset of a reconstruction: ``raw`` is the scan's raw dataset as
    catalogued (pid ``raw_pid``), ``run`` what ``run_ptycho`` (or a facility's job) reported,
    ``files`` the reconstruction's CXI file and its previews. Owner and access are the raw
    dataset's; the engine is the software, its parameters the job's."""
    stem = raw["datasetName"]
    engine = str(run["engine"])
    # The CPU engine reports its Fourier error; upstream's tools in a GPU job report none.
    error = None if run.get("final_error") is None else float(run["final_error"])
    return {
        **derived_from(raw, raw_pid, files),
        "datasetName": f"{stem} ptychographic reconstruction",
        "sourceFolder": str(PurePath(str(run["path"])).parent),
        "description": f"{engine} reconstruction of {stem}"
        + ("" if error is None else f", final Fourier error {error:.3g}"),
        "keywords": unique([*raw["keywords"], "reconstruction"]),
        "usedSoftware": [engine],
        "jobParameters": dict(run["params"]),
        "scientificMetadata": {
            "dataFormat": DATA_FORMAT,
            "image": run["image"],
            "object_shape": list(run["object_shape"]),
            "object_pixel_m": list(run["object_pixel_m"]),
            "iterations": run["iterations"],
            **({} if error is None else {"final_error": error}),
        },
    }
