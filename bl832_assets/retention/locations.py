"""Which endpoint and dataset each location asset's copy lives on: the bridge between asset
keys (what people browse) and endpoints (what retention prunes)."""

from __future__ import annotations

import dagster as dg

from bl832_assets import keys
from bl832_assets.settings import Settings


def asset_endpoints(settings: Settings) -> dict[dg.AssetKey, str]:
    """Asset key → the endpoint holding that asset's copy of a scan."""
    placed = {
        keys.DETECTOR_RAW: settings.detector,
        keys.BEAMLINE_RAW: settings.beamline_raw,
        keys.BEAMLINE_TIFF: settings.beamline_scratch,
        keys.BEAMLINE_ZARR: settings.beamline_scratch,
    }
    for facility, site in settings.hpc.items():
        placed[keys.key(facility, keys.RAW_SCAN)] = site.raw
        placed[keys.key(facility, keys.RECON_TIFF)] = site.scratch
        placed[keys.key(facility, keys.RECON_ZARR)] = site.scratch
    if settings.archive_results is not None:
        placed[keys.ARCHIVE_TIFF] = settings.archive_results
        placed[keys.ARCHIVE_ZARR] = settings.archive_results
    return placed


def dataset_of(asset_key: dg.AssetKey) -> str:
    return asset_key.path[-1]


def assets_at(settings: Settings, endpoint: str) -> list[dg.AssetKey]:
    return [key for key, where in asset_endpoints(settings).items() if where == endpoint]
