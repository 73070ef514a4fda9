"""SciCat-shaped records of 8.3.2 scans, following upstream's ``als_832_dx_4`` ingester, and
the rules every beamline's mapping shares (cleaning an email, the group of a proposal, what a
derived dataset takes from its raw one, what the catalog adds to any record).

Pure functions: what a record says is decided here once, so the local catalog and SciCat
store the same fields, and the rules (who owns a dataset, who may see it) are tested without
any catalog running. Nothing here imports Dagster, so the beamline packages use it freely.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from bl832_assets.resources.catalog.records import DatasetKind, DatasetRecord, FileEntry
from bl832_assets.science.dx import ScanMetadata

BEAMLINE_GROUP = "8.3.2"
UNKNOWN_EMAIL = "unknown@example.com"
UNKNOWN_OWNER = "unknown"
SCAN_SUFFIX = ".h5"
DERIVED_FORMAT = "TIFF, OME-Zarr"
THUMBNAIL_CAPTIONS: dict[DatasetKind, str] = {"raw": "raw image", "derived": "result image"}

_EMAIL = re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}")
_BEAMLINE_ALIASES = {"bl832": BEAMLINE_GROUP}


def scan_key_of(scan: str) -> str:
    """The scan's key (its partition key) from a key or from the path of its file."""
    return PurePosixPath(scan).name.removesuffix(SCAN_SUFFIX)


def clean_email(raw: str | None) -> str:
    """The first valid address in what the experimenter typed, lower-cased.

    The field is free text: quoted names, ``<angle brackets>``, ``mailto:``, spaces around the
    ``@``, several addresses, "None". SciCat refuses a dataset whose contactEmail is not an
    address, so anything without one becomes ``unknown@example.com``.
    """
    text = (raw or "").lower().replace("mailto:", " ")
    text = re.sub(r"[\"'<>(),;]", " ", text)
    text = re.sub(r"\s*@\s*", "@", text)
    found = _EMAIL.search(text)
    return found.group(0) if found else UNKNOWN_EMAIL


def stated(raw: str | None) -> str | None:
    """A free-text field's value, stripped, or None where the file says there is none ("",
    "None")."""
    value = (raw or "").strip()
    return None if value.lower() in ("", "none") else value


def proposal_of(raw: str | None) -> str | None:
    """The proposal id, or None where the file says there is none ("", "None")."""
    return stated(raw)


def owner_group(proposal: str | None) -> str:
    """The proposal's group owns the data; without a proposal the beamline staff do."""
    return proposal_of(proposal) or BEAMLINE_GROUP


def proposal_group(proposal: str | None, beamline: str) -> str:
    """The group owning a beamline's dataset: its proposal's, spelled as upstream's newer
    ingesters spell it (spaces as "_"), or without a proposal the beamline's own (its id)."""
    found = proposal_of(proposal)
    return "_".join(found.split()) if found else beamline


def unique(values: Iterable[str]) -> list[str]:
    """The non-empty values, each once, in their first order."""
    return [value for value in dict.fromkeys(values) if value]


def raw_origin(
    beamline: str,
    owner_group: str,
    pi: str | None,
    contact_email: str | None,
    *,
    proposal: str | None = None,
    access: Sequence[str] = (),
    instrument: str | None = None,
) -> dict[str, Any]:
    """Who a beamline's raw dataset belongs to and where it was taken, for any beamline but
    8.3.2 (whose rules are ``raw_dataset``'s): the PI as owner ("unknown" when nobody is
    named), a cleaned contact address, ``owner_group`` owning it and, beside ``access``, the
    beamline's own group seeing it (the catalog finds a beamline's datasets by that group),
    the instrument ``ALS <id>`` unless named, and the proposal when there is one."""
    person = stated(pi) or UNKNOWN_OWNER
    fields: dict[str, Any] = {
        "owner": person,
        "principalInvestigator": person,
        "contactEmail": clean_email(contact_email),
        "ownerGroup": owner_group,
        "accessGroups": unique([owner_group, *access, beamline]),
        "creationLocation": instrument or f"ALS {beamline}",
        "instrumentId": beamline,
    }
    found = proposal_of(proposal)
    if found is not None:
        fields["proposalId"] = found
    return fields


def access_groups(beamline: str | None) -> list[str]:
    """The beamline's group (``bl832`` is spelled ``8.3.2`` in SciCat), plus the 8.3.2 staff."""
    cleaned = re.sub(r"[\"',\s]", "", beamline or "").lower()
    return unique([_BEAMLINE_ALIASES.get(cleaned, cleaned), BEAMLINE_GROUP])


def search_terms(file_name: str) -> list[str]:
    """Words of the scan's name, so a user finds "fungi1" by typing it: split on anything not
    a letter or digit, lower-cased, each kept once, in order."""
    stem = file_name.removesuffix(SCAN_SUFFIX)
    words = (word.lower() for word in re.split(r"[^0-9A-Za-z]+", stem) if word)
    return list(dict.fromkeys(words))


def iso_utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def raw_dataset(
    scan_file: str, metadata: ScanMetadata, files: Sequence[FileEntry]
) -> dict[str, Any]:
    """The raw dataset of a scan, as SciCat's create-raw-dataset request body."""
    scan = _entry_for(scan_file, files)
    path = PurePosixPath(scan_file)
    terms = search_terms(path.name)
    pi = metadata.pi.strip() or UNKNOWN_OWNER
    dataset: dict[str, Any] = {
        "type": "raw",
        "owner": pi,
        "principalInvestigator": pi,
        "contactEmail": clean_email(metadata.experimenter_email),
        "ownerGroup": owner_group(metadata.proposal),
        "accessGroups": access_groups(metadata.beamline),
        "creationLocation": metadata.instrument_name,
        "instrumentId": metadata.instrument_name,
        "datasetName": metadata.sample_name.strip() or scan_key_of(scan_file),
        "runNumber": scan_key_of(scan_file),
        "dataFormat": "DX",
        "sourceFolder": str(path.parent),
        "size": sum(f.size for f in files),
        "numberOfFiles": len(files),
        "creationTime": iso_utc(scan.mtime),
        "description": " ".join(terms),
        "keywords": terms,
        "isPublished": False,
        "scientificMetadata": dict(metadata.scientific),
    }
    proposal = proposal_of(metadata.proposal)
    if proposal is not None:
        dataset["proposalId"] = proposal
    return dataset


def derived_dataset(
    raw: Mapping[str, Any],
    *,
    raw_pid: str,
    scan_key: str,
    tiff_folder: str,
    zarr_folder: str,
    files: Sequence[FileEntry],
    used_software: Sequence[str],
    job_parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One derived dataset for a scan's reconstruction: the TIFF stack and its pyramid.

    Owner and access come from the raw dataset, so whoever may see a scan may see its
    reconstruction. Both folders sit side by side (``rec<stem>/``, ``rec<stem>.zarr/``), so
    the sourceFolder is their common parent and the datablock lists exactly their files.
    SciCat's derived-dataset schema has no ``dataFormat``; the format goes in the scientific
    metadata instead.
    """
    folder = os.path.commonpath([tiff_folder, zarr_folder])
    return {
        "type": "derived",
        **derived_from(raw, raw_pid, files),
        "usedSoftware": list(used_software),
        "jobParameters": dict(job_parameters or {}),
        "datasetName": f"{raw['datasetName']} (reconstruction)",
        "runNumber": scan_key,
        "sourceFolder": folder,
        "size": sum(f.size for f in files),
        "numberOfFiles": len(files),
        "description": f"Reconstruction of {scan_key}: TIFF stack and OME-Zarr pyramid",
        "keywords": [*raw["keywords"], "reconstruction"],
        "isPublished": False,
        "scientificMetadata": {
            "dataFormat": DERIVED_FORMAT,
            "tiffFolder": _relative(tiff_folder, folder),
            "zarrFolder": _relative(zarr_folder, folder),
        },
    }


def derived_from(
    raw: Mapping[str, Any], raw_pid: str, files: Sequence[FileEntry]
) -> dict[str, Any]:
    """What any derived dataset takes from the raw dataset ``raw`` (its record, pid
    ``raw_pid``): owner and access, so whoever may see the data may see what was made of it,
    the link back to it, and as its creation time the newest of its own ``files``."""
    if not files:
        raise ValueError(f"derived dataset of {raw_pid!r} has no files")
    fields: dict[str, Any] = {
        "owner": raw["owner"],
        "investigator": raw["principalInvestigator"],
        "contactEmail": raw["contactEmail"],
        "ownerGroup": raw["ownerGroup"],
        "accessGroups": list(raw["accessGroups"]),
        "inputDatasets": [raw_pid],
        "creationTime": iso_utc(max(f.mtime for f in files)),
    }
    if "proposalId" in raw:
        fields["proposalId"] = raw["proposalId"]
    return fields


def dataset_body(record: DatasetRecord) -> dict[str, Any]:
    """Any beamline's dataset as SciCat's create request takes it: the record's mapped fields,
    with what the catalog decides itself (type, runNumber, size, file count) over them."""
    return {
        "isPublished": False,
        **record.fields,
        "type": record.kind,
        "runNumber": record.key,
        "size": sum(f.size for f in record.files),
        "numberOfFiles": len(record.files),
    }


def origdatablock(source_folder: str, files: Sequence[FileEntry]) -> dict[str, Any]:
    """The dataset's file list with sizes and sha256, paths relative to its sourceFolder."""
    return {
        "size": sum(f.size for f in files),
        "chkAlg": "sha256",
        "dataFileList": [
            {
                "path": _relative(f.path, source_folder),
                "size": f.size,
                "time": iso_utc(f.mtime),
                "chk": f.sha256,
            }
            for f in files
        ],
    }


def _entry_for(scan_file: str, files: Sequence[FileEntry]) -> FileEntry:
    for entry in files:
        if entry.path == scan_file:
            return entry
    raise ValueError(f"{scan_file} is not among the dataset's files")


def _relative(path: str, folder: str) -> str:
    try:
        return str(PurePosixPath(path).relative_to(folder))
    except ValueError:
        raise ValueError(f"{path} is not inside the dataset's folder {folder}") from None
