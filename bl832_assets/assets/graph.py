"""The whole per-scan asset graph for a site, built from its settings."""

from __future__ import annotations

import dagster as dg

from bl832_assets import keys
from bl832_assets.assets.catalog import build_catalog
from bl832_assets.assets.copies import build_copy
from bl832_assets.assets.detector import detector_raw_scan
from bl832_assets.assets.home import build_home
from bl832_assets.assets.product_checks import pyramid_check, tiff_stack_check
from bl832_assets.assets.recon import build_recon
from bl832_assets.settings import Settings

AssetGraph = list[dg.AssetsDefinition | dg.AssetSpec | dg.AssetChecksDefinition]


def build_asset_graph(settings: Settings) -> AssetGraph:
    graph: AssetGraph = [detector_raw_scan, *build_catalog(settings)]
    graph += build_copy(
        settings,
        key=keys.BEAMLINE_RAW,
        upstreams=[keys.DETECTOR_RAW],
        destination=settings.beamline_raw,
        description="The scan on beamline storage (data832), copied from the detector with "
        "its checksum verified: the copy every other location is made from.",
        group="raw",
        kinds={"hdf5"},
    )
    for facility, site in settings.hpc.items():
        graph += build_copy(
            settings,
            key=keys.key(facility, keys.RAW_SCAN),
            upstreams=[keys.BEAMLINE_RAW],
            destination=site.raw,
            description=f"The scan's copy at {facility.upper()}, input of its reconstruction.",
            group=facility,
            kinds={"hdf5"},
        )
        graph += build_recon(settings, facility)
    graph += build_home(settings)
    reconstructions = [keys.key(f, keys.RECON_TIFF) for f in settings.hpc]
    # Products are checked wherever this machine can read them: always at home, and at a
    # facility only when its scratch storage is visible here (the local backend).
    readable = [f for f, site in settings.hpc.items() if settings.visible(site.scratch)]
    graph += [
        tiff_stack_check(keys.key(location, keys.RECON_TIFF), reconstructions)
        for location in [*readable, keys.BEAMLINE]
    ]
    graph += [
        pyramid_check(keys.key(location, keys.RECON_ZARR))
        for location in [*readable, keys.BEAMLINE]
    ]
    return graph
