"""Which implementation serves each resource key, decided by the site's settings alone."""

from __future__ import annotations

import dagster as dg

from bl832_assets.resources.catalog.local import LocalCatalogResource
from bl832_assets.resources.compute.local import LocalComputeResource
from bl832_assets.resources.transfer.local import LocalTransferResource
from bl832_assets.settings import Settings


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """Resource keys: ``transfer``, ``catalog`` and one per HPC facility (``nersc``...)."""
    resources: dict[str, dg.ConfigurableResource] = {
        "transfer": LocalTransferResource(
            endpoints={name: str(ep.root) for name, ep in settings.endpoints.items()},
            database=str(settings.transfer_db),
        ),
        "catalog": LocalCatalogResource(database=str(settings.catalog_db)),
    }
    for facility, site in settings.hpc.items():
        resources[facility] = LocalComputeResource(
            facility=facility,
            raw_root=str(settings.root(site.raw)),
            scratch_root=str(settings.root(site.scratch)),
            jobs_root=str(settings.jobs_dir),
        )
    return resources
