"""Results brought home: ``data832/recon_tiff`` and ``data832/recon_zarr``.

Whichever facility reconstructed the scan most recently is the source, so switching a scan
from NERSC to ALCF needs no change here, and the beamline always holds the newest result.
"""

from __future__ import annotations

import dagster as dg

from bl832_assets import keys
from bl832_assets.assets.copies import build_copy
from bl832_assets.settings import Settings


def build_home(settings: Settings) -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    facilities = list(settings.hpc)
    tiff = build_copy(
        settings,
        key=keys.BEAMLINE_TIFF,
        upstreams=[keys.key(f, keys.RECON_TIFF) for f in facilities],
        destination=settings.beamline_scratch,
        description="The newest facility reconstruction's TIFF folder, copied to beamline "
        "scratch storage where scientists open it.",
        group="results",
        kinds={"tiff"},
    )
    zarr = build_copy(
        settings,
        key=keys.BEAMLINE_ZARR,
        upstreams=[keys.key(f, keys.RECON_ZARR) for f in facilities],
        destination=settings.beamline_scratch,
        description="The newest facility pyramid, copied to beamline scratch storage for viewers.",
        group="results",
        kinds={"zarr"},
    )
    return [*tiff, *zarr, *_archived(settings)]


def _archived(settings: Settings) -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    """The archive's own copy of each result (upstream: NERSC CFS data_mover/8.3.2/scratch,
    kept for ever), made from the copy at home, so that home can be pruned behind it without
    ever holding the only copy."""
    if settings.archive_results is None:
        return []
    made = []
    for home_key, kind in ((keys.BEAMLINE_TIFF, "tiff"), (keys.BEAMLINE_ZARR, "zarr")):
        made += build_copy(
            settings,
            key=keys.key(keys.ARCHIVE, home_key.path[-1]),
            upstreams=[home_key],
            destination=settings.archive_results,
            description=f"The archive's copy of the results brought home ({kind}), on "
            f"{settings.archive_results}, never pruned: beamline scratch is pruned behind it.",
            group="results",
            kinds={kind},
        )
    return made
