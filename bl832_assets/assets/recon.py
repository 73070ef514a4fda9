"""Reconstruction at a facility: ``<facility>/recon_tiff`` and ``<facility>/recon_zarr``.

The facility's compute resource runs the payload next to its copy of the scan; the payload
reports slices, rotation centre and timings back through Dagster Pipes, and those figures
become the materialization's metadata.
"""


from collections.abc import Callable

import dagster as dg

from bl832_assets import keys
from bl832_assets.assets.records import require_metadata
from bl832_assets.partitions import scans
from bl832_assets.resources.compute.base import ComputeOutcome, ComputeResource
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


Step = Callable[[ComputeResource, dg.AssetExecutionContext, str], ComputeOutcome]


def _facility_step(
    settings: Settings,
    facility: str,
    *,
    key: dg.AssetKey,
    upstream: dg.AssetKey,
    description: str,
    kind: str,
    step: Step,
) -> dg.AssetsDefinition:
    """An asset made by a payload job at ``facility`` from the data ``upstream`` recorded."""
    scratch = settings.hpc[facility].scratch

    @dg.asset(
        key=key,
        deps=[upstream],
        description=description,
        kinds={kind, facility},
        partitions_def=scans,
        group_name=facility,
        tags={"location": facility},
        pool=facility,
        required_resource_keys={facility},
    )
    def facility_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        source = str(require_metadata(context, upstream)["relative_path"])
        outcome = step(getattr(context.resources, facility), context, source)
        return _materialization(settings, scratch, outcome)

    return facility_asset


def build_recon(settings: Settings, facility: str) -> list[dg.AssetsDefinition]:
    """The TIFF stack and the pyramid a facility makes from its raw copy."""
    tiff_key = keys.key(facility, keys.RECON_TIFF)
    name = facility.upper()
    return [
        _facility_step(
            settings,
            facility,
            key=tiff_key,
            upstream=keys.key(facility, keys.RAW_SCAN),
            description=f"Float32 TIFF slices reconstructed at {name}, one per detector row, "
            "in <folder>/rec<scan>/ on the facility's scratch storage.",
            kind="tiff",
            step=lambda compute, context, scan: compute.reconstruct(context, scan),
        ),
        _facility_step(
            settings,
            facility,
            key=keys.key(facility, keys.RECON_ZARR),
            upstream=tiff_key,
            description=f"OME-Zarr multiscale pyramid of the {name} reconstruction, with its "
            "physical scale in micrometres, beside the TIFF folder.",
            kind="zarr",
            step=lambda compute, context, tiffs: compute.build_pyramid(context, tiffs),
        ),
    ]
