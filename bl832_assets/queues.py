"""Which Celery queue a run goes to: one queue per kind of work, so a worker host serves only
what it can reach and runs that wait on a facility never queue behind a local reconstruction.

The choice is made here and nowhere else. Runs carry it as the tag ``dagster-celery/queue``,
which ``CeleryRunLauncher`` reads (deploy/dagster.yaml) and the embedded site's launcher
ignores. The sensor and the prune jobs tag their runs when they create them; the deployment's
launcher (``bl832_assets.deploy.launcher``) picks a queue here for any run that arrives
without one (a backfill, a run launched from the UI).
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from bl832_assets import keys
from bl832_assets.settings import FACILITIES, Settings

QUEUE_TAG = "dagster-celery/queue"
"""The run tag dagster-celery's run launcher routes on."""

_RECON_DATASETS = {keys.RECON_TIFF, keys.RECON_ZARR}


def queue_for_assets(settings: Settings, assets: Iterable[dg.AssetKey]) -> str:
    """``local_recon`` when a facility on the local backend computes one of ``assets`` (a
    reconstruction, or a beamline's product),
    ``facility`` when a remote facility does, else ``transfers``: copies and records only, and
    every op job of the site (prunes, restores, audits, maintenance), which has no assets."""
    products = {
        (section.product.scratch, section.product_dataset): section.product.facility
        for section in settings.beamlines.values()
        if section.product is not None
    }
    computing = {
        keys.location_of(key)
        for key in assets
        if keys.location_of(key) in FACILITIES and key.path[-1] in _RECON_DATASETS
    } | {products[where] for key in assets if (where := tuple(key.path)) in products}
    if any(getattr(settings.backends, facility) == "local" for facility in computing):
        return settings.queues.local_recon
    if computing:
        return settings.queues.facility
    return settings.queues.transfers


def queue_tags(settings: Settings, assets: Iterable[dg.AssetKey] = ()) -> dict[str, str]:
    """The tag routing a run of ``assets``; a job without assets (a prune) is copy work."""
    return {QUEUE_TAG: queue_for_assets(settings, assets)}
