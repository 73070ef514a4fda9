"""Reconstruction at a facility: ``<facility>/recon_tiff`` and ``<facility>/recon_zarr``.

The facility's compute resource runs the payload next to its copy of the scan; the payload
reports slices, rotation centre, timings and previews back through Dagster Pipes, and those
become the materialization's metadata, with which facility made it, its job and where the
job's log is. Reconstruction options come from the site settings, overridden per run from the
launchpad (``ReconConfig``). The pyramid repeats the centre and options of the reconstruction
it was built from, so the pyramid's copies show them too.
"""

import dagster as dg
from pydantic import Field

from bl832_assets import keys
from bl832_assets.assets.failures import retry_only_if_transient, retry_policy
from bl832_assets.assets.products import claims, product_materialization, record_product
from bl832_assets.assets.records import newest_of, require_metadata
from bl832_assets.partitions import scans
from bl832_assets.resources.compute.base import ComputeResource
from bl832_assets.science.options import OptionsError, ReconOptions
from bl832_assets.settings import Settings

DECLARED = keys.DECLARING_EXPORT_CONTROL

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
            claims(context, settings.hpc[facility].raw, scratch),
        ):
            outcome = compute(context).reconstruct(context, scan, options)
            product = record_product(
                context, scratch, outcome.output, keys.DECLARING_EXPORT_CONTROL
            )
        return product_materialization(settings, facility, scratch, outcome, product)

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
        with retry_only_if_transient(f"{name} pyramid"), claims(context, scratch, scratch):
            outcome = compute(context).build_pyramid(context, tiffs)
            product = record_product(
                context, scratch, outcome.output, keys.DECLARING_EXPORT_CONTROL
            )
        carried = reconstruction.carried(FROM_RECONSTRUCTION)
        return product_materialization(settings, facility, scratch, outcome, product, carried)

    return [recon_tiff, recon_zarr]
