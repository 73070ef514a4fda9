"""Catalog records: ``catalog/raw_dataset`` and ``catalog/derived_dataset``.

A scan is registered from its beamline copy, so the record points at storage that outlives the
detector's one-day retention; the reconstruction is registered once it is home, linked to the
raw record. Re-registering a scan updates its record and keeps its identifier. Each record
links to where people read it: its SciCat page, or the command printing it from the local
catalog.
"""

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from PIL import Image

from bl832_assets import keys
from bl832_assets.assets.failures import retry_only_if_transient, retry_policy
from bl832_assets.assets.records import newest_of, require_metadata
from bl832_assets.partitions import scans
from bl832_assets.resources.catalog.base import CatalogRecord, CatalogResource, FileEntry
from bl832_assets.resources.catalog.local import show_command
from bl832_assets.resources.catalog.scicat import dataset_page
from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.science.dx import read_metadata
from bl832_assets.science.preview import (
    data_uri,
    inline_markdown,
    write_projection_thumbnail,
)
from bl832_assets.settings import FACILITIES, Settings


def file_entries(location: Path, checksums: Mapping[str, str]) -> list[FileEntry]:
    """Datablock entries for a file or folder, with the checksums the copy verified."""

    def entry(path: Path, name: str) -> FileEntry:
        stat = path.stat()
        return FileEntry(str(path), stat.st_size, stat.st_mtime, checksums[name])

    if location.is_file():
        return [entry(location, location.name)]
    return [entry(location / name, name) for name in sorted(checksums)]


def _link(settings: Settings, pid: str) -> dict[str, object]:
    """Where a scientist reads the record: its SciCat page (``dataset_url``), or for the local
    catalog the command that prints it (``show``)."""
    if settings.backends.catalog == "scicat":
        page = dataset_page(str(settings.catalog.url), pid, settings.catalog.frontend_url)
        return {"dataset_url": dg.MetadataValue.url(page)}
    return {"show": show_command(pid)}


def record_metadata(settings: Settings, record: CatalogRecord, started: float) -> dict[str, object]:
    fields = record.record
    return {
        "pid": record.pid,
        **_link(settings, record.pid),
        "created": record.created,
        "owner_group": str(fields.get("ownerGroup", "")),
        "access_groups": dg.MetadataValue.json(fields.get("accessGroups", [])),
        "source_folder": str(fields.get("sourceFolder", "")),
        "size_bytes": int(fields.get("size", 0)),
        "files": int(fields.get("numberOfFiles", 0)),
        "seconds": round(time.monotonic() - started, 3),
    }


def _raw_sha256(transfer: TransferResource, copy: Mapping[str, Any]) -> str:
    """The checksum the beamline copy recorded; a historic scan found by ``bl832 discover`` was
    never hashed (discovery reads headers only), so it is hashed now, where it lies."""
    if "sha256" in copy:
        return str(copy["sha256"])
    name = Path(str(copy["relative_path"])).name
    return transfer.checksums(str(copy["endpoint"]), str(copy["relative_path"]))[name]


def build_catalog(settings: Settings) -> list[dg.AssetsDefinition]:
    """The two catalog records of a scan, retried under the site's rule for passing failures."""
    policy = retry_policy(settings)

    @dg.asset(
        key=keys.CATALOG_RAW,
        retry_policy=policy,
        deps=[keys.BEAMLINE_RAW],
        partitions_def=scans,
        group_name="catalog",
        kinds={"scicat"},
        tags={"location": keys.CATALOG},
    )
    def raw_dataset(
        context: dg.AssetExecutionContext, catalog: CatalogResource, transfer: TransferResource
    ) -> dg.MaterializeResult:
        """The raw scan's catalog record: people, proposal and instrument metadata from the file."""
        started = time.monotonic()
        copy = require_metadata(context, keys.BEAMLINE_RAW)
        path = Path(str(copy["path"]))
        with tempfile.TemporaryDirectory() as scratch:
            png = write_projection_thumbnail(path, Path(scratch) / "thumbnail.png")
            thumbnail = data_uri(png)  # the catalog's, full size
            with Image.open(png) as picture:  # the UI's, small enough to render inline
                inline = inline_markdown(picture.convert("L"), "first projection")
        metadata = read_metadata(path)
        files = file_entries(path, {path.name: _raw_sha256(transfer, copy)})
        with retry_only_if_transient("catalog raw dataset"):
            record = catalog.ingest_raw(str(path), metadata, files, thumbnail=thumbnail)
        return dg.MaterializeResult(
            metadata={
                **record_metadata(settings, record, started),
                "thumbnail": dg.MetadataValue.md(inline),
            }
        )

    @dg.asset(
        key=keys.CATALOG_DERIVED,
        retry_policy=policy,
        deps=[keys.CATALOG_RAW, keys.BEAMLINE_TIFF, keys.BEAMLINE_ZARR],
        partitions_def=scans,
        group_name="catalog",
        kinds={"scicat"},
        tags={"location": keys.CATALOG},
    )
    def derived_dataset(
        context: dg.AssetExecutionContext, catalog: CatalogResource, transfer: TransferResource
    ) -> dg.MaterializeResult:
        """The reconstruction's catalog record (TIFF stack and pyramid), linked to the raw one."""
        started = time.monotonic()
        raw = require_metadata(context, keys.CATALOG_RAW)
        tiffs = require_metadata(context, keys.BEAMLINE_TIFF)
        recon = newest_of(context, [keys.key(f, keys.RECON_TIFF) for f in FACILITIES]).metadata
        pyramid = require_metadata(context, keys.BEAMLINE_ZARR)
        files = [
            entry
            for product in (tiffs, pyramid)
            for entry in file_entries(
                Path(str(product["path"])),
                transfer.checksums(str(product["endpoint"]), str(product["relative_path"])),
            )
        ]
        with retry_only_if_transient("catalog derived dataset"):
            record = catalog.ingest_derived(
                raw_pid=str(raw["pid"]),
                scan_key=context.partition_key,
                tiff_folder=str(tiffs["path"]),
                zarr_folder=str(pyramid["path"]),
                files=files,
                used_software=["bl832_assets"],
                job_parameters={
                    k: recon[k]
                    for k in ("centre", "centre_method", "slices", "pixel_size_um", "options")
                    if k in recon
                },
            )
        return dg.MaterializeResult(metadata=record_metadata(settings, record, started))

    return [raw_dataset, derived_dataset]
