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

from bl832_assets.beamline_settings import CatalogMapping
from bl832_assets.resources.catalog.mapping import (
    iso_utc,
    raw_origin,
    search_terms,
    unique,
)
from bl832_assets.resources.catalog.records import FileEntry


def raw_fields(
    beamline: str, key: str, files: Sequence[FileEntry], catalog: CatalogMapping
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
