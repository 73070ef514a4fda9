"""7.3.3's catalog records: one raw dataset per pair (its manifest: the ``.txt`` header and the
``.edf`` image) and one derived dataset per azimuthal integration.

Upstream's ``als733_saxs`` spec hard-codes one staff member as owner, PI and contact, a made-up
owner group and "UNKNOWN" proposal, and keeps placeholder metadata (institution, project). Its
successor (scicat_beamline PR #30) reads proposal and PI from the text header, and so does
this: the proposal's group (spaces as "_") owns the data, the beamline's group "7.3.3" when the
header names no proposal, and the beamline's group may always see it. Times are UTC.

Pure functions of what ``readers`` and the integration payload return: nothing here reads a
file or imports Dagster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bl832_assets.beamlines.bl733.geometry import Geometry
from bl832_assets.beamlines.bl733.readers import (
    EdfFrame,
    TextHeader,
    field_value,
    header_pixel_size,
)
from bl832_assets.resources.catalog.mapping import (
    derived_from,
    iso_utc,
    proposal_group,
    raw_origin,
    search_terms,
    unique,
)
from bl832_assets.resources.catalog.records import FileEntry

BEAMLINE = "7.3.3"
RAW_FORMAT = "EDF + text header"
KEYWORDS = ("SAXS", "ALS", BEAMLINE, "scattering")
SAMPLE_KEYS = ("sample", "sample name")
EMAIL_KEYS = ("email", "e-mail", "pi email", "pi e-mail", "contact email", "user email")
USED_SOFTWARE = ("pyFAI", "bl832_assets")
PROFILE_FORMAT = "CSV profile (q, I, sigma) and PNG plot"
# What the integration payload reports that describes the profile, kept as scientific metadata.
PROFILE_SUMMARY = ("q_unit", "q_min", "q_max", "peaks_q", "points", "masked_pixels")
_ADDRESS = re.compile(r"(?:mailto:)?\S+@\S+", re.IGNORECASE)


def pi_name(pi: str) -> str:
    """The PI's name as the header gives it, without an address typed beside it
    (``Dr. Jane Doe <jdoe @ lbl.gov>`` is ``Dr. Jane Doe``)."""
    name = _ADDRESS.sub(" ", re.sub(r"\s*@\s*", "@", pi))
    name = re.sub(r"[<>()\[\]\"']", " ", name)
    return " ".join(name.split()).strip(" ,;:-")


def _geometry(frame: EdfFrame, geometry: Geometry | None) -> dict[str, Any] | None:
    """The geometry the image would be integrated with, its pixel size from the EDF header
    where the settings leave it unset; None when the settings give none."""
    if geometry is None:
        return None
    size = header_pixel_size(frame.header)
    known = geometry if size is None else geometry.with_pixel_size(size)
    return known.model_dump(mode="json")


def raw_fields(
    text: TextHeader, frame: EdfFrame, image_mtime: float, geometry: Geometry | None = None
) -> dict[str, Any]:
    """The raw dataset of one pair, from its text header and image as ``readers.read_pair``
    returns them; ``image_mtime`` (the ``.edf``'s, POSIX seconds) is when it was taken, and
    ``geometry`` (the beamline's current one, if the settings know it) goes into its metadata.

    Contact: the header's email line, else an address typed into its PI line, else none.
    """
    stem = text.path.stem
    if frame.path.stem != stem:
        raise ValueError(f"{frame.path.name} is not the image of {text.path.name}")
    sample = field_value(text.fields, SAMPLE_KEYS)
    scientific: dict[str, Any] = {
        "edf_header": dict(frame.header),
        "text_header": text.fields,
        "image_shape": list(frame.data.shape),
    }
    if (known := _geometry(frame, geometry)) is not None:
        scientific["geometry"] = known
    fields: dict[str, Any] = {
        **raw_origin(
            BEAMLINE,
            proposal_group(text.proposal, BEAMLINE),
            pi_name(text.pi),
            field_value(text.fields, EMAIL_KEYS) or text.pi,
            proposal=text.proposal,
        ),
        "datasetName": stem,
        "sourceFolder": str(text.path.parent),
        "creationTime": iso_utc(image_mtime),
        "description": f"Scattering image {stem}" + (f" of {sample}" if sample else ""),
        "keywords": unique([*KEYWORDS, *_sample_tokens(stem, sample)]),
        "dataFormat": RAW_FORMAT,
        "scientificMetadata": scientific,
    }
    if sample:
        fields["sampleId"] = sample
    return fields


def _sample_tokens(stem: str, sample: str) -> list[str]:
    """Words of the stem and the header's sample (``agbh``, ``cal``, ``2m``, ``silver``…), so
    a user finds a sample by typing its code; single characters say nothing and are left out."""
    return [word for word in search_terms(f"{stem} {sample}") if len(word) > 1]


def integration_fields(
    raw: Mapping[str, Any],
    raw_pid: str,
    integration: Mapping[str, Any],
    files: Sequence[FileEntry],
) -> dict[str, Any]:
    """The derived dataset of a pair's azimuthal integration: ``raw`` is the pair's raw
    dataset as catalogued (pid ``raw_pid``), ``integration`` what ``run_integration``
    reported, ``files`` the profile and its plot. Owner and access are the raw dataset's."""
    stem = raw["datasetName"]
    return {
        **derived_from(raw, raw_pid, files),
        "datasetName": f"{stem} azimuthal integration",
        "sourceFolder": str(Path(str(integration["path"])).parent),
        "description": f"Azimuthal integration of {stem} into I(q) with pyFAI",
        "keywords": unique([*raw["keywords"], "azimuthal integration"]),
        "usedSoftware": list(USED_SOFTWARE),
        "jobParameters": {"geometry": integration["geometry"], "npt": integration["npt"]},
        "scientificMetadata": {
            "dataFormat": PROFILE_FORMAT,
            **{name: integration[name] for name in PROFILE_SUMMARY},
        },
    }
