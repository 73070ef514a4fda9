"""What the asset graph asks of the dataset catalog: record any beamline's raw and derived
datasets as SciCat-shaped records, idempotently, and find them again.

Re-ingesting the same dataset updates its record and keeps its pid, so a retried or re-run asset
never leaves duplicates behind for users to puzzle over. 8.3.2 has its own entry points
(``ingest_raw``, ``ingest_derived``), which map its scans here; every other beamline maps its
datasets itself and hands them over as a ``DatasetRecord`` (``ingest_dataset``).

The records (``FileEntry``, ``CatalogRecord``, ``DatasetRecord``) are defined in ``records.py``,
free of Dagster, and are importable from here as well.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import dagster as dg

from bl832_assets.resources.catalog.records import (
    CatalogRecord,
    DatasetKind,
    DatasetRecord,
    FileEntry,
)
from bl832_assets.science.dx import ScanMetadata

__all__ = ["CatalogRecord", "CatalogResource", "DatasetRecord", "FileEntry"]


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

    @abstractmethod
    def ingest_dataset(self, record: DatasetRecord) -> CatalogRecord:
        """Create or update the dataset ``record`` names (beamline, kind, key) with its fields,
        its files as the datablock and its thumbnail as the attachment. A derived dataset's
        ``inputDatasets`` must be catalogued already (``DatasetNotFound`` otherwise)."""

    @abstractmethod
    def find_dataset(self, beamline: str, key: str, kind: DatasetKind) -> CatalogRecord | None:
        """The dataset of ``beamline`` with this key and kind, or None. 8.3.2's scans are found
        here too, as beamline "8.3.2"."""
