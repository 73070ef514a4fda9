"""Which assets a scan gets: one pure function, shared by the sensor, ``bl832 process`` and
backfills, so that a scan is treated the same however it enters the platform."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from bl832_assets import keys
from bl832_assets.settings import Settings


def decide(settings: Settings, *, export_control: bool) -> frozenset[dg.AssetKey]:
    """The assets to materialize for a new scan.

    The detector copy is observed, never materialized. The beamline copy comes first because
    every facility copy is made from it. A recon branch brings its results home and registers
    them. Export-controlled scans get nothing at an off-site location, whatever the switches say.
    """
    decision = settings.decision
    facilities = decision.recon_facilities()
    selected: set[dg.AssetKey] = set()
    if decision.new_file_832 or facilities:
        selected.add(keys.BEAMLINE_RAW)
    if decision.new_file_832:
        # Upstream's move flow sends every new scan to the archive (NERSC), then registers it.
        selected.add(keys.CATALOG_RAW)
        if settings.archive is not None:
            selected.add(keys.key(settings.archive, keys.RAW_SCAN))
    archived = (
        {keys.ARCHIVE_TIFF, keys.ARCHIVE_ZARR} if settings.archive_results is not None else set()
    )
    for facility in facilities:
        selected |= archived
        selected |= {
            keys.key(facility, keys.RAW_SCAN),
            keys.key(facility, keys.RECON_TIFF),
            keys.key(facility, keys.RECON_ZARR),
            keys.BEAMLINE_TIFF,
            keys.BEAMLINE_ZARR,
            keys.CATALOG_RAW,
            keys.CATALOG_DERIVED,
        }
    return permitted(settings, selected, export_control=export_control)


def permitted(
    settings: Settings, assets: Iterable[dg.AssetKey], *, export_control: bool
) -> frozenset[dg.AssetKey]:
    """The part of ``assets`` a scan may have: all of them, or for an export-controlled scan
    only those on site. Backfills apply it to the assets an operator picked."""
    allowed = set(assets)
    if export_control:
        allowed = {k for k in allowed if settings.location_is_onsite(keys.location_of(k))}
        # A result can only come home from an off-site facility, which is now excluded.
        allowed -= {keys.BEAMLINE_TIFF, keys.BEAMLINE_ZARR}
    return frozenset(allowed)
