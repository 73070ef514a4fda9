"""Which implementation serves each resource key, decided by the site's settings alone.

Secrets reach resources as ``dg.EnvVar``: Dagster resolves them when a step starts and shows
only the variable's name in the UI and in run config, so no secret is ever stored with a run.
"""

from __future__ import annotations

import dagster as dg

from bl832_assets.resources.catalog.local import LocalCatalogResource
from bl832_assets.resources.catalog.scicat import ScicatCatalogResource
from bl832_assets.resources.compute.globus_compute import GlobusComputeResource
from bl832_assets.resources.compute.local import LocalComputeResource
from bl832_assets.resources.compute.nersc import NerscComputeResource
from bl832_assets.resources.compute.slurm_script import DEFAULT_TEMPLATE
from bl832_assets.resources.transfer.globus import GlobusTransferResource
from bl832_assets.resources.transfer.local import LocalTransferResource
from bl832_assets.retention.resource import LedgerResource
from bl832_assets.settings import Settings


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """Resource keys: ``transfer``, ``catalog`` and one per HPC facility (``nersc``...)."""
    resources: dict[str, dg.ConfigurableResource] = {
        "transfer": _transfer(settings),
        "catalog": _catalog(settings),
        "ledger": LedgerResource(
            url=settings.ledger_url, lease_minutes=settings.retention.lease_minutes
        ),
    }
    for facility in settings.hpc:
        resources[facility] = _compute(settings, facility)
    return resources


def _transfer(settings: Settings) -> dg.ConfigurableResource:
    offsite = [name for name, endpoint in settings.endpoints.items() if endpoint.onsite is False]
    if settings.backends.transfer == "local":
        return LocalTransferResource(
            endpoints={name: str(settings.root(name)) for name in settings.endpoints},
            database=str(settings.transfer_db),
            offsite=offsite,
        )
    globus = settings.globus
    return GlobusTransferResource(
        offsite=offsite,
        collections={name: str(ep.collection_id) for name, ep in settings.endpoints.items()},
        roots={name: ep.collection_path for name, ep in settings.endpoints.items()},
        mounts={name: str(ep.root) for name, ep in settings.endpoints.items() if ep.root},
        client_id=dg.EnvVar(globus.client_id_env),
        client_secret=dg.EnvVar(globus.client_secret_env),
        transfer_url=globus.transfer_url,
        auth_url=globus.auth_url,
        poll_seconds=globus.poll_seconds,
        max_wait_seconds=globus.max_wait_seconds,
    )


def _catalog(settings: Settings) -> dg.ConfigurableResource:
    if settings.backends.catalog == "local":
        return LocalCatalogResource(database=str(settings.catalog_db))
    catalog = settings.catalog
    login: dict[str, object] = (
        {"username": catalog.username, "password": dg.EnvVar(catalog.password_env)}
        if catalog.username
        else {"token": dg.EnvVar(catalog.token_env)}
    )
    return ScicatCatalogResource(url=str(catalog.url), pid_prefix=catalog.pid_prefix, **login)


def _compute(settings: Settings, facility: str) -> dg.ConfigurableResource:
    backend = getattr(settings.backends, facility)
    site = settings.hpc[facility]
    if backend == "local":
        return LocalComputeResource(
            facility=facility,
            raw_root=str(settings.root(site.raw)),
            scratch_root=str(settings.root(site.scratch)),
            jobs_root=str(settings.jobs_dir),
            endpoint_roots={
                name: str(settings.root(name))
                for name, endpoint in settings.endpoints.items()
                if endpoint.facility == facility and settings.visible(name)
            },
        )
    if backend == "sfapi":
        nersc = settings.nersc
        credentials: dict[str, object] = (
            {"key_path": str(nersc.key_path)}
            if nersc.key_path
            else {
                "client_id": dg.EnvVar(nersc.client_id_env),
                "secret": dg.EnvVar(nersc.secret_env),
            }
        )
        roots = {**_job_paths(settings, facility), site.raw: nersc.raw_root}
        roots[site.scratch] = nersc.scratch_root
        results = settings.archive_results  # the endpoint keeping results long-term
        if results is not None and settings.endpoints[results].facility == facility:
            roots[results] = nersc.results_root
        return NerscComputeResource(
            **credentials,
            **nersc.model_dump(
                exclude={
                    "client_id_env",
                    "secret_env",
                    "key_path",
                    "script_template",
                    "results_root",
                }
            ),
            script_template=nersc.script_template or DEFAULT_TEMPLATE,
            endpoint_roots=roots,
        )
    endpoint = settings.globus_compute[facility]
    globus = settings.globus
    return GlobusComputeResource(
        facility=facility,
        **endpoint.model_dump(),
        client_id=dg.EnvVar(globus.client_id_env),
        client_secret=dg.EnvVar(globus.client_secret_env),
        auth_url=globus.auth_url or "",
        compute_url=globus.compute_url or "",
        endpoint_roots={
            **_job_paths(settings, facility),
            site.raw: endpoint.raw_root,
            site.scratch: endpoint.scratch_root,
        },
    )


def _job_paths(settings: Settings, facility: str) -> dict[str, str]:
    """The facility's endpoints its jobs see where settings say (other beamlines' storage)."""
    return {
        name: endpoint.job_path
        for name, endpoint in settings.endpoints.items()
        if endpoint.facility == facility and endpoint.job_path
    }
