"""Reconstruction at a facility: ``<facility>/recon_tiff`` and ``<facility>/recon_zarr``.

The facility's compute resource runs the payload next to its copy of the scan; the payload
reports slices, rotation centre, timings and previews back through Dagster Pipes, and those
become the materialization's metadata, with which facility made it, its job and where the
job's log is. Reconstruction options come from the site settings, overridden per run from the
launchpad (``ReconConfig``). The pyramid repeats the centre and options of the reconstruction
it was built from, so the pyramid's copies show them too.
"""

import time
from contextlib import AbstractContextManager

import dagster as dg
from pydantic import Field

from bl832_assets import keys
from bl832_assets.assets.copies import retention_of
from bl832_assets.assets.failures import retry_only_if_transient, retry_policy
from bl832_assets.assets.records import export_controlled, newest_of, require_metadata
from bl832_assets.partitions import scans
from bl832_assets.resources.compute.base import ComputeOutcome, ComputeResource
from bl832_assets.retention.ledger import CopyFacts, CopyRecord
from bl832_assets.retention.resource import LedgerResource
from bl832_assets.science.options import OptionsError, ReconOptions
from bl832_assets.settings import Settings

FROM_RECONSTRUCTION = ("centre", "centre_method", "centre_confidence", "options")
"""What the pyramid repeats from the reconstruction it was built from."""


class ReconConfig(dg.Config):
    """Per-run overrides of the site's reconstruction options; unset fields keep the site's."""

    centre: float | None = Field(
        default=None, description="Rotation axis in detector columns (default: found from data)."
    )
    first_slice: int | None = Field(default=None, description="First detector row to reconstruct.")
    last_slice: int | None = Field(
        default=None, description="Detector row to stop before (default: the last row)."
    )
    angle_step: int | None = Field(
        default=None, description="Use every n-th projection, for a quick look."
    )
    binning: int | None = Field(default=None, description="Average 2x2 or 4x4 pixels first.")
    filter_name: str | None = Field(
        default=None, description="butterworth, ramp, shepp-logan, cosine, hamming, hann, parzen."
    )
    engine: str | None = Field(default=None, description="dfi (direct Fourier) or fbp.")
    ring_removal: str | None = Field(default=None, description="fw, sort or none.")

    def options(self, defaults: ReconOptions) -> ReconOptions:
        try:
            return defaults.overridden(**self.model_dump())
        except OptionsError as exc:
            raise dg.Failure(description=f"run config: {exc}", allow_retries=False) from exc


def _claims(
    context: dg.AssetExecutionContext, reads: str, writes: str
) -> AbstractContextManager[None]:
    """While a facility job runs, its input is pinned and its output location claimed, so no
    prune removes the scan it reads or the product it is rewriting."""
    ledger: LedgerResource = context.resources.ledger
    holder = f"compute:{context.run.run_id}:{context.asset_key.to_user_string()}"
    return ledger.copying(holder, context.partition_key, reads, writes)


def _record_product(
    context: dg.AssetExecutionContext, endpoint: str, output: str
) -> CopyRecord | None:
    """A facility's product enters the ledger when it is made, so its scratch copy can be
    pruned even if it never comes home; a product made again replaces the record of the one
    before. Its checksum is filled in by the copy that brings it home, which hashes it.
    Returns the product's record."""
    ledger: LedgerResource = context.resources.ledger
    dataset = context.asset_key.path[-1]
    ledger.ledger().record_made(
        CopyFacts(
            scan=context.partition_key,
            endpoint=endpoint,
            dataset=dataset,
            asset_key=context.asset_key.to_user_string(),
            relative_path=output,
            size_bytes=None,
            files=None,
            sha256=None,
            made_at=time.time(),
            made_by=context.run.run_id,
            export_controlled=export_controlled(context, keys.DECLARING_EXPORT_CONTROL),
        )
    )
    return ledger.ledger().get(context.partition_key, endpoint, dataset)


def _materialization(
    settings: Settings,
    facility: str,
    outcome: ComputeOutcome,
    product: CopyRecord | None,
    carried: dict[str, dg.MetadataValue] | None = None,
) -> dg.MaterializeResult:
    endpoint = settings.hpc[facility].scratch
    reported = {k: v for k, v in outcome.reported.items() if k not in ("path", "seconds")}
    if "seconds" in outcome.reported:  # the payload's own time, without queue and start-up
        reported["payload_seconds"] = outcome.reported["seconds"].value
    return dg.MaterializeResult(
        metadata={
            **(carried or {}),
            **reported,
            "endpoint": endpoint,
            "relative_path": outcome.output,
            "path": dg.MetadataValue.path(settings.location_of(endpoint, outcome.output)),
            "facility": facility,
            "facility_job_id": outcome.job_id,
            "facility_log": outcome.log,
            **({"retention": retention_of(settings, product)} if product else {}),
            "seconds": round(outcome.seconds, 3),
        }
    )


def build_recon(settings: Settings, facility: str) -> list[dg.AssetsDefinition]:
    """The TIFF stack and the pyramid a facility makes from its raw copy."""
    scratch = settings.hpc[facility].scratch
    raw_key = keys.key(facility, keys.RAW_SCAN)
    tiff_key = keys.key(facility, keys.RECON_TIFF)
    name = facility.upper()
    common = {
        "partitions_def": scans,
        "group_name": facility,
        "tags": {"location": facility},
        "pool": facility,
        "required_resource_keys": {facility, "ledger"},
        "retry_policy": retry_policy(settings),
    }

    def compute(context: dg.AssetExecutionContext) -> ComputeResource:
        return getattr(context.resources, facility)

    @dg.asset(
        key=tiff_key,
        deps=[raw_key],
        description=f"Float32 TIFF slices reconstructed at {name}, one per detector row, in "
        "<folder>/rec<scan>/ on the facility's scratch storage.",
        kinds={"tiff", facility},
        **common,
    )
    def recon_tiff(context: dg.AssetExecutionContext, config: ReconConfig) -> dg.MaterializeResult:
        scan = str(require_metadata(context, raw_key)["relative_path"])
        options = config.options(settings.recon)
        with (
            retry_only_if_transient(f"{name} reconstruction"),
            _claims(context, settings.hpc[facility].raw, scratch),
        ):
            outcome = compute(context).reconstruct(context, scan, options)
            product = _record_product(context, scratch, outcome.output)
        return _materialization(settings, facility, outcome, product)

    @dg.asset(
        key=keys.key(facility, keys.RECON_ZARR),
        deps=[tiff_key],
        description=f"OME-Zarr multiscale pyramid of the {name} reconstruction, with its "
        "physical scale in micrometres, beside the TIFF folder.",
        kinds={"zarr", facility},
        **common,
    )
    def recon_zarr(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        reconstruction = newest_of(context, [tiff_key])
        tiffs = str(reconstruction.metadata["relative_path"])
        with retry_only_if_transient(f"{name} pyramid"), _claims(context, scratch, scratch):
            outcome = compute(context).build_pyramid(context, tiffs)
            product = _record_product(context, scratch, outcome.output)
        carried = reconstruction.carried(FROM_RECONSTRUCTION)
        return _materialization(settings, facility, outcome, product, carried)

    return [recon_tiff, recon_zarr]
