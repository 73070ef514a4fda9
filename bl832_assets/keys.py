"""Asset keys are ``<location>/<dataset>``: each location's copy is its own asset, with its own
retention and its own failure modes, so the key scheme is spelled out once, here."""

from __future__ import annotations

import dagster as dg

DETECTOR = "spot832"
BEAMLINE = "data832"
CATALOG = "catalog"
ARCHIVE = "archive"  # the archive's results copies; its raw copy is the archive facility's

RAW_SCAN = "raw_scan"
RECON_TIFF = "recon_tiff"
RECON_ZARR = "recon_zarr"
RAW_DATASET = "raw_dataset"
DERIVED_DATASET = "derived_dataset"


def key(location: str, dataset: str) -> dg.AssetKey:
    return dg.AssetKey([location, dataset])


def location_of(asset_key: dg.AssetKey) -> str:
    return asset_key.path[0]


DETECTOR_RAW = key(DETECTOR, RAW_SCAN)
BEAMLINE_RAW = key(BEAMLINE, RAW_SCAN)
BEAMLINE_TIFF = key(BEAMLINE, RECON_TIFF)
BEAMLINE_ZARR = key(BEAMLINE, RECON_ZARR)
CATALOG_RAW = key(CATALOG, RAW_DATASET)
CATALOG_DERIVED = key(CATALOG, DERIVED_DATASET)
ARCHIVE_TIFF = key(ARCHIVE, RECON_TIFF)
ARCHIVE_ZARR = key(ARCHIVE, RECON_ZARR)

DECLARING_EXPORT_CONTROL = [DETECTOR_RAW, BEAMLINE_RAW]
"""Assets whose records carry a scan's export-control flag, as read from its file: the
detector's observation of a new scan, the beamline copy of a discovered historic one."""
