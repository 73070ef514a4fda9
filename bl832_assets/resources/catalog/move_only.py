"""The catalog record of a beamline that only moves data (9.3.1, 5.3.1, the dichroism pair):
a raw dataset mapped from its settings and its files alone, since such a beamline has no
Python of its own to read its files with.

Upstream's move-only beamlines ingest nothing: their template's SciCat step is a placeholder
(9.3.1's, commented out, names a spec that does not exist). This gives them the record shape
of every other beamline: owner group and access from settings (the beamline's group when
settings name none), the stem as name and key, folder and time from the files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bl832_assets.resources.catalog.mapping import (
    iso_utc,
    raw_origin,
    search_terms,
    unique,
)
from bl832_assets.resources.catalog.records import FileEntry


class MoveOnlyCatalog(BaseModel):
    """What a move-only beamline's settings say about its datasets' catalog records."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    owner_group: str | None = Field(
        default=None, description="SciCat group owning the datasets; unset: the beamline's id."
    )
    access_groups: list[str] = Field(
        default_factory=list,
        description="Groups that may also see them; the beamline's own group always may.",
    )
    keywords: list[str] = Field(
        default_factory=list, description="Keywords of every dataset, e.g. the technique."
    )
    instrument: str | None = Field(
        default=None, description="creationLocation; unset: 'ALS <beamline id>'."
    )
    data_format: str | None = Field(default=None, description="dataFormat, e.g. 'HDF5'.")
    principal_investigator: str | None = Field(
        default=None, description="PI recorded for every dataset; unset: 'unknown'."
    )
    contact_email: str | None = Field(
        default=None, description="Contact address, e.g. the beamline scientists' list."
    )


def raw_fields(
    beamline: str, key: str, files: Sequence[FileEntry], catalog: MoveOnlyCatalog
) -> dict[str, Any]:
    """The raw dataset ``key`` of ``beamline``, made of ``files`` (full paths at the location
    catalogued): its folder is the files' common folder, its time the newest file's, when the
    dataset was complete."""
    if not files:
        raise ValueError(f"dataset {key!r} of {beamline} has no files")
    fields: dict[str, Any] = {
        **raw_origin(
            beamline,
            catalog.owner_group or beamline,
            catalog.principal_investigator,
            catalog.contact_email,
            access=catalog.access_groups,
            instrument=catalog.instrument,
        ),
        "datasetName": key,
        "sourceFolder": os.path.commonpath([str(PurePosixPath(f.path).parent) for f in files]),
        "creationTime": iso_utc(max(f.mtime for f in files)),
        "description": f"{key}, moved from ALS {beamline}",
        "keywords": unique([*catalog.keywords, "ALS", beamline, *search_terms(key)]),
    }
    if catalog.data_format:
        fields["dataFormat"] = catalog.data_format
    return fields
