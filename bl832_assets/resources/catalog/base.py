"""What the asset graph asks of the dataset catalog: record a raw scan and its reconstruction
as SciCat-shaped datasets, idempotently, and find them again.

Re-ingesting the same scan updates its record and keeps its pid, so a retried or re-run asset
never leaves duplicates behind for users to puzzle over.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from bl832_assets.science.dx import ScanMetadata


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


class CatalogResource(dg.ConfigurableResource, ABC):
    """A SciCat-like catalog of raw and derived datasets."""

    @abstractmethod
    def ingest_raw(
        self,
        scan_file: str,
        metadata: ScanMetadata,
        files: list[FileEntry],
        thumbnail: str | None = None,
    ) -> CatalogRecord:
        """Create or update the raw dataset of the scan at ``scan_file`` (keyed by its stem,
        the scan's partition key). ``files`` must include ``scan_file`` itself. ``thumbnail``
        (a PNG ``data:`` URI of the first projection) becomes the dataset's attachment."""

    @abstractmethod
    def ingest_derived(
        self,
        raw_pid: str,
        scan_key: str,
        tiff_folder: str,
        zarr_folder: str,
        files: list[FileEntry],
        used_software: list[str],
        job_parameters: Mapping[str, Any] | None = None,
    ) -> CatalogRecord:
        """Create or update the one derived dataset of a scan's reconstruction (the TIFF stack
        and its OME-Zarr pyramid), linked to ``raw_pid`` and sharing its owner and access."""

    @abstractmethod
    def get(self, pid: str) -> dict[str, Any] | None:
        """The dataset with ``pid``, with its datablock, or None."""

    @abstractmethod
    def find_raw(self, scan: str) -> CatalogRecord | None:
        """The raw dataset of a scan, given its key or the path of its file."""
