"""Reconstruction at a facility: ``<facility>/recon_tiff`` and ``<facility>/recon_zarr``.

The facility's compute resource runs the payload next to its copy of the scan; the payload
reports slices, rotation centre and timings back through Dagster Pipes, and those figures
become the materialization's metadata.
"""


import dagster as dg

from bl832_assets import keys
from bl832_assets.assets.records import require_metadata
from bl832_assets.partitions import scans
from bl832_assets.resources.compute.base import ComputeOutcome
from bl832_assets.settings import Settings


def _materialization(
    settings: Settings, endpoint: str, outcome: ComputeOutcome
) -> dg.MaterializeResult:
    reported = {k: v for k, v in outcome.reported.items() if k not in ("path", "seconds")}
    if "seconds" in outcome.reported:  # the payload's own time, without queue and start-up
        reported["payload_seconds"] = outcome.reported["seconds"]
    return dg.MaterializeResult(
        metadata={
            **reported,
            "endpoint": endpoint,
            "relative_path": outcome.output,
            "path": dg.MetadataValue.path(str(settings.root(endpoint) / outcome.output)),
            "job_id": outcome.job_id,
            "seconds": round(outcome.seconds, 3),
        }
    )


def build_recon(settings: Settings, facility: str) -> list[dg.AssetsDefinition]:
    """The TIFF stack and the pyramid a facility makes from its raw copy."""
    scratch = settings.hpc[facility].scratch
    raw_key = keys.key(facility, keys.RAW_SCAN)
    tiff_key = keys.key(facility, keys.RECON_TIFF)
    zarr_key = keys.key(facility, keys.RECON_ZARR)
    common = {
        "partitions_def": scans,
        "group_name": facility,
        "tags": {"location": facility},
        "pool": facility,
        "required_resource_keys": {facility},
    }

    @dg.asset(
        key=tiff_key,
        deps=[raw_key],
        description=f"Float32 TIFF slices reconstructed at {facility.upper()}, one per detector "
        "row, in <folder>/rec<scan>/ on the facility's scratch storage.",
        kinds={"tiff", facility},
        **common,
    )
    def recon_tiff(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        raw = require_metadata(context, raw_key)
        outcome = getattr(context.resources, facility).reconstruct(
            context, str(raw["relative_path"])
        )
        return _materialization(settings, scratch, outcome)

    @dg.asset(
        key=zarr_key,
        deps=[tiff_key],
        description=f"OME-Zarr multiscale pyramid of the {facility.upper()} reconstruction, "
        "with its physical scale in micrometres, beside the TIFF folder.",
        kinds={"zarr", facility},
        **common,
    )
    def recon_zarr(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        tiffs = require_metadata(context, tiff_key)
        outcome = getattr(context.resources, facility).build_pyramid(
            context, str(tiffs["relative_path"])
        )
        return _materialization(settings, scratch, outcome)

    return [recon_tiff, recon_zarr]
