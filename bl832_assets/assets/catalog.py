"""Catalog records: ``catalog/raw_dataset`` and ``catalog/derived_dataset``.

A scan is registered from its beamline copy, so the record points at storage that outlives the
detector's one-day retention; the reconstruction is registered once it is home, linked to the
raw record. Re-registering a scan updates its record and keeps its identifier.
"""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg

from bl832_assets import keys
from bl832_assets.assets.records import require_metadata
from bl832_assets.partitions import scans
from bl832_assets.resources.catalog.base import CatalogRecord, CatalogResource, FileEntry
from bl832_assets.science.dx import read_metadata


def _entries(root: Path) -> list[FileEntry]:
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return [FileEntry.from_path(p) for p in files]


def _record_metadata(record: CatalogRecord, started: float) -> dict[str, object]:
    fields = record.record
    return {
        "pid": record.pid,
        "created": record.created,
        "owner_group": str(fields.get("ownerGroup", "")),
        "access_groups": dg.MetadataValue.json(fields.get("accessGroups", [])),
        "source_folder": str(fields.get("sourceFolder", "")),
        "size_bytes": int(fields.get("size", 0)),
        "files": int(fields.get("numberOfFiles", 0)),
        "seconds": round(time.monotonic() - started, 3),
    }


@dg.asset(
    key=keys.CATALOG_RAW,
    deps=[keys.BEAMLINE_RAW],
    partitions_def=scans,
    group_name="catalog",
    kinds={"scicat"},
    tags={"location": keys.CATALOG},
)
def raw_dataset(context: dg.AssetExecutionContext, catalog: CatalogResource) -> dg.MaterializeResult:
    """The raw scan's catalog record, with people, proposal and instrument metadata from the file."""
    started = time.monotonic()
    copy = Path(str(require_metadata(context, keys.BEAMLINE_RAW)["path"]))
    record = catalog.ingest_raw(
        scan_key=context.partition_key,
        metadata=read_metadata(copy),
        files=_entries(copy),
    )
    return dg.MaterializeResult(metadata=_record_metadata(record, started))


@dg.asset(
    key=keys.CATALOG_DERIVED,
    deps=[keys.CATALOG_RAW, keys.BEAMLINE_TIFF, keys.BEAMLINE_ZARR],
    partitions_def=scans,
    group_name="catalog",
    kinds={"scicat"},
    tags={"location": keys.CATALOG},
)
def derived_dataset(
    context: dg.AssetExecutionContext, catalog: CatalogResource
) -> dg.MaterializeResult:
    """The reconstruction's catalog record (TIFF stack and pyramid), linked to the raw record."""
    started = time.monotonic()
    raw = require_metadata(context, keys.CATALOG_RAW)
    tiffs = require_metadata(context, keys.BEAMLINE_TIFF)
    pyramid = require_metadata(context, keys.BEAMLINE_ZARR)
    tiff_folder, zarr_folder = Path(str(tiffs["path"])), Path(str(pyramid["path"]))
    record = catalog.ingest_derived(
        raw_pid=str(raw["pid"]),
        scan_key=context.partition_key,
        folders=[tiff_folder, zarr_folder],
        files=_entries(tiff_folder) + _entries(zarr_folder),
        parameters={
            k: tiffs[k] for k in ("centre", "slices", "pixel_size_um") if k in tiffs
        },
    )
    return dg.MaterializeResult(metadata=_record_metadata(record, started))
