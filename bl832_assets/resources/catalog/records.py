"""What goes into the catalog and what comes back, as plain frozen dataclasses.

Kept apart from the resources (``base.py``, which imports Dagster) so that the beamline packages'
catalog mappings, which import nothing of Dagster, can build and test records with them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

DatasetKind = Literal["raw", "derived"]
KINDS: tuple[DatasetKind, ...] = ("raw", "derived")
_BEAMLINE_ID = re.compile(r"^\d+(\.\d+)+$")  # dotted digits: "8.3.2", "7.0.1.2"


@dataclass(frozen=True)
class FileEntry:
    """One file of a dataset, as its datablock lists it."""

    path: str  # full path at the location catalogued; stored relative to the sourceFolder
    size: int
    mtime: float  # POSIX seconds
    sha256: str


@dataclass(frozen=True)
class CatalogRecord:
    """A dataset as the catalog holds it after an ingest or a lookup."""

    pid: str
    created: bool  # True only when this call created the dataset
    record: dict[str, Any]


@dataclass(frozen=True)
class DatasetRecord:
    """One dataset of any beamline, its SciCat fields already mapped by the beamline's mapping.

    ``(beamline, kind, key)`` names the dataset: ingesting the same three again updates it.
    The catalog adds what it owns: ``type`` (the kind), ``runNumber`` (the key), ``size`` and
    ``numberOfFiles`` (from ``files``), the datablock (``files`` relative to the sourceFolder)
    and the thumbnail attachment. ``accessGroups`` must hold the beamline's group (its id), as
    every mapping gives it: that is how SciCat finds a beamline's dataset again.
    """

    beamline: str  # dotted id, "7.3.3"
    key: str  # the dataset's partition key (its stem)
    kind: DatasetKind
    fields: Mapping[str, Any]  # SciCat dataset fields, as the beamline's mapping made them
    files: tuple[FileEntry, ...]
    thumbnail: str | None = None  # PNG data: URI

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem is not None:
            raise ValueError(f"{self.kind} dataset {self.key!r} of {self.beamline}: {problem}")

    def _problem(self) -> str | None:
        """Why the record cannot be catalogued, or None when it can."""
        if not _BEAMLINE_ID.match(self.beamline):
            return "the beamline must be a dotted id such as '7.3.3'"
        if self.kind not in KINDS:
            return f"kind must be one of {', '.join(KINDS)}"
        if not self.key or "/" in self.key:
            return "the key must be the dataset's stem, not empty and not a path"
        if not self.files:
            return "no files"
        if not self.fields.get("sourceFolder"):
            return "no sourceFolder, which the datablock's paths are relative to"
        if self.beamline not in self.fields.get("accessGroups", ()):
            return "accessGroups must include the beamline's group"
        if self.kind == "derived" and not self.fields.get("inputDatasets"):
            return "a derived dataset must name its inputDatasets"
        return None
