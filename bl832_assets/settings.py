"""The site as data: endpoints, decision switches, retention and backends, validated at load time.

Everything an operator may change without touching code lives here. A YAML file named by
``BL832_CONFIG`` overrides the defaults; with no file at all the platform runs on an embedded
site under ``$BL832_HOME`` (default ``./.bl832``), so a laptop needs no configuration.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bl832_assets.beamline_settings import (
    BeamlineSection,
    CatalogMapping,
    ExportControlPolicy,
    ProductPlacement,
    beamline_datasets,
    check_name,
)
from bl832_assets.beamlines.bl733.settings import IntegrationSettings
from bl832_assets.beamlines.bl7012.settings import PtychographySettings
from bl832_assets.science.options import ReconOptions
from bl832_assets.settings_parts import SensorSettings, Strict

FACILITIES = ("nersc", "alcf", "olcf")
"""HPC facilities that can reconstruct a scan, in the order their results are preferred."""


class SettingsError(ValueError):
    """The site configuration is unusable; the message names the file and the field."""


class Endpoint(Strict):
    """A storage location data can be copied to, the way a Globus collection is one."""

    facility: str = Field(description="Who runs the storage: als, nersc, alcf or olcf.")
    root: Path | None = Field(
        description="Where this machine sees the endpoint's files (relative to home). Every "
        "endpoint has one with the local backend; with Globus, the beamline's own storage is "
        "mounted here and a facility's is not (null)."
    )
    collection_id: str | None = Field(
        default=None, description="Globus collection UUID, used by the Globus backend only."
    )
    collection_path: str = Field(
        default="/", description="The endpoint's folder inside its Globus collection."
    )
    onsite: bool = Field(description="True when the storage is inside the ALS site.")
    job_path: str | None = Field(
        default=None,
        description="Where the facility's jobs see the endpoint's root (NERSC: a CFS or "
        "pscratch path), for a beamline's product jobs that read or write it.",
    )

    @field_validator("collection_id")
    @classmethod
    def _a_collection_is_a_uuid(cls, value: str | None) -> str | None:
        """Upstream's registry carries placeholders ("TBD") that fail only when a transfer
        first runs; here they fail when the settings load. Several endpoints may name one
        collection with different ``collection_path`` roots (BeeGFS, NERSC's alsdev)."""
        if value is not None:
            try:
                uuid.UUID(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a Globus collection UUID") from None
        return value


class HpcSite(Strict):
    """Where a facility keeps the raw input and the reconstruction outputs of a scan."""

    raw: str = Field(description="Endpoint receiving the raw scan copy.")
    scratch: str = Field(description="Endpoint where reconstructions are written.")


class Decision(Strict):
    """Runtime switches of the dispatcher, named as upstream's ``decision-settings``."""

    new_file_832: bool = Field(default=True, description="Copy new scans to beamline storage.")
    nersc_recon: bool = Field(default=True, description="Reconstruct new scans at NERSC.")
    alcf_recon: bool = Field(default=False, description="Reconstruct new scans at ALCF.")
    olcf_recon: bool = Field(default=False, description="Reconstruct new scans at OLCF.")

    def recon_facilities(self) -> tuple[str, ...]:
        return tuple(f for f in FACILITIES if getattr(self, f"{f}_recon"))


class _Credentials(Strict):
    """A section that reaches a service. Secrets are named by environment variable, never
    written in: a settings file is copied, shown and committed, and a resource given an
    ``EnvVar`` keeps the value out of Dagster's run config and UI."""

    SECRETS: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _refuse_inline_secrets(cls, data: Any) -> Any:
        for name in cls.SECRETS:
            if isinstance(data, dict) and name in data:
                raise ValueError(
                    f"{name}: secrets are not kept in settings; put it in an environment "
                    f"variable and name that variable in {name}_env"
                )
        return data


class CatalogSettings(_Credentials):
    """The dataset catalog (SciCat in production, SQLite when local)."""

    url: str | None = Field(default=None, description="SciCat API base URL (scicat backend).")
    frontend_url: str | None = Field(
        default=None,
        description="SciCat frontend where people browse datasets; a catalog asset links to "
        "<frontend_url>/datasets/<pid>. Default: the API URL without its /api/vN path.",
    )
    username: str | None = Field(default=None, description="Functional account to log in as.")
    password_env: str = Field(
        default="SCICAT_PASSWORD", description="Environment variable holding its password."
    )
    token_env: str = Field(
        default="SCICAT_TOKEN",
        description="Environment variable holding an API token, used when no username is set.",
    )
    pid_prefix: str = Field(default="20.500.12269", description="The facility's PID prefix.")
    onsite: bool = Field(
        default=False,
        description="SciCat is shared beyond the beamline, so export-controlled scans skip it.",
    )

    SECRETS = ("password", "token")


class GlobusSettings(_Credentials):
    """The confidential client used for Globus Transfer and Globus Compute, and the services'
    addresses (left empty for Globus's own)."""

    client_id_env: str = Field(
        default="GLOBUS_CLIENT_ID", description="Environment variable holding the client id."
    )
    client_secret_env: str = Field(
        default="GLOBUS_CLIENT_SECRET", description="Environment variable holding its secret."
    )
    auth_url: str | None = Field(default=None, description="Globus Auth base URL.")
    transfer_url: str | None = Field(default=None, description="Globus Transfer base URL.")
    compute_url: str | None = Field(default=None, description="Globus Compute base URL.")
    poll_seconds: float = Field(default=15.0, gt=0, description="Seconds between task polls.")
    max_wait_seconds: float = Field(
        default=6 * 3600, gt=0, description="Deadline of a transfer task."
    )

    SECRETS = ("client_secret",)


class NerscSettings(_Credentials):
    """Slurm jobs on a NERSC machine through the Superfacility API (``backends.nersc: sfapi``)."""

    api_url: str = Field(default="https://api.nersc.gov/api/v1.2", description="SF API base.")
    token_url: str = Field(
        default="https://oidc.nersc.gov/c2id/token", description="OAuth token endpoint."
    )
    client_id_env: str = Field(
        default="SFAPI_CLIENT_ID", description="Environment variable holding the client id."
    )
    secret_env: str = Field(
        default="SFAPI_SECRET",
        description="Environment variable holding the client's private key (JWK JSON).",
    )
    key_path: Path | None = Field(
        default=None, description="Instead of the two variables: a chmod-600 SF API key file."
    )
    machine: str = "perlmutter"
    account: str = Field(default="als", description="Slurm account (NERSC project).")
    qos: str = Field(default="realtime", description="Slurm QoS.")
    constraint: str = Field(default="cpu", description="Slurm node constraint.")
    time_limit: str = Field(default="00:30:00", description="Slurm wall-clock limit.")
    image: str = Field(
        default="registry.nersc.gov/als/bl832:latest", description="Payload container image."
    )
    launcher: str = Field(default="bl832", description="How a job invokes the payload CLI.")
    script_template: str | None = Field(
        default=None, description="Batch script template; empty for the built-in one."
    )
    raw_root: str = Field(
        default="/global/cfs/cdirs/als/data_mover/8.3.2/raw",
        description="Where NERSC jobs see the raw scan copies.",
    )
    scratch_root: str = Field(
        default="/pscratch/sd/a/alsdev/8.3.2/scratch", description="Where jobs write results."
    )
    results_root: str = Field(
        default="/global/cfs/cdirs/als/data_mover/8.3.2/scratch",
        description="Where jobs see the long-term copy of results (CFS).",
    )
    jobs_root: str = Field(
        default="/pscratch/sd/a/alsdev/8.3.2/jobs", description="Job logs and Pipes messages."
    )
    poll_seconds: float = Field(default=15.0, gt=0)

    SECRETS = ("secret",)


class ComputeEndpointSettings(Strict):
    """A facility reached through Globus Compute (``backends.alcf: globus_compute``)."""

    endpoint_id: str = Field(description="UUID of the facility's Globus Compute endpoint.")
    raw_root: str = Field(description="Where the endpoint sees the raw scan copies.")
    scratch_root: str = Field(description="Where the endpoint writes results.")
    environment_setup: str = Field(
        default="", description="Shell lines entering the allocation's environment."
    )
    payload: str = Field(default="bl832", description="The payload command there.")
    timeout_seconds: float = Field(default=1200.0, gt=0, description="Walltime of one job.")
    queue_seconds: float = Field(default=600.0, ge=0, description="Tolerated queue wait.")
    poll_seconds: float = Field(default=5.0, gt=0)


class RetrySettings(Strict):
    """Retries of a step that failed for a passing reason (network, 5xx, INACTIVE task).
    A checksum mismatch, a refused request or a failed job is never retried."""

    max_retries: int = Field(default=3, ge=0)
    delay_seconds: float = Field(default=30.0, ge=0, description="First delay; doubles after.")


def _default_pools() -> dict[str, int]:
    return {"globus": 4, "nersc": 2, "alcf": 2, "olcf": 2}


class Backends(Strict):
    """Which implementation serves each resource; ``local`` does the work on this machine."""

    transfer: Literal["local", "globus"] = "local"
    nersc: Literal["local", "sfapi"] = "local"
    alcf: Literal["local", "globus_compute"] = "local"
    olcf: Literal["local", "globus_compute"] = "local"
    catalog: Literal["local", "scicat"] = "local"


DEFAULT_LAYOUT = {
    "spot832": ("als", "spot832"),
    "data832_raw": ("als", "data832/raw"),
    "data832_scratch": ("als", "data832/scratch"),
    "nersc_cfs": ("nersc", "nersc/cfs"),
    "nersc_pscratch": ("nersc", "nersc/pscratch"),
    "nersc_cfs_results": ("nersc", "nersc/cfs_results"),
    "alcf_raw": ("alcf", "alcf/raw"),
    "alcf_scratch": ("alcf", "alcf/scratch"),
    "olcf_raw": ("olcf", "olcf/raw"),
    "olcf_scratch": ("olcf", "olcf/scratch"),
    # 7.3.3: the BeeGFS staging collection is one for every beamline, one root each
    "data733": ("als", "data733"),
    "beegfs733": ("als", "beegfs/bl733/raw"),
    "beegfs733_analysis": ("als", "beegfs/bl733/analysis"),
    "nersc733": ("nersc", "nersc/cfs733"),
    "nersc733_scratch": ("nersc", "nersc/pscratch733"),
    # 7.0.1.2: reconstructions come home beside the data, never under the watched folder
    "data7012": ("als", "data7012/raw"),
    "data7012_recon": ("als", "data7012/recon"),
    "nersc7012": ("nersc", "nersc/cfs7012"),
    "nersc7012_scratch": ("nersc", "nersc/pscratch7012"),
    # 9.3.1, the move-only beamline
    "data931": ("als", "data931"),
    "beegfs931": ("als", "beegfs/bl931/raw"),
    "nersc931": ("nersc", "nersc/cfs931"),
}
"""Endpoint → (facility, folder under the site home) of the embedded site."""

DEFAULT_JOB_PATHS = {
    "nersc733": "/global/cfs/cdirs/als/data_mover/7.3.3/raw",
    "nersc733_scratch": "/pscratch/sd/a/alsdev/7.3.3/scratch",
    "nersc7012": "/global/cfs/cdirs/als/gsharing/data_mover/7012",
    "nersc7012_scratch": "/pscratch/sd/a/alsdev/7.0.1.2/scratch",
    "nersc931": "/global/cfs/cdirs/als/data_mover/9.3.1/raw",
}
"""Where NERSC jobs see the beamlines' NERSC endpoints (upstream's config.yml roots)."""


def _default_endpoints() -> dict[str, Endpoint]:
    return {
        name: Endpoint(
            facility=facility,
            root=Path(root),
            onsite=facility == "als",
            job_path=DEFAULT_JOB_PATHS.get(name),
        )
        for name, (facility, root) in DEFAULT_LAYOUT.items()
    }


def _default_beamlines() -> dict[str, BeamlineSection]:
    """7.3.3 and 7.0.1.2 as upstream runs them (with what upstream only plans), and 9.3.1 as
    its unmerged pull request describes it: a beamline that only moves data."""
    return {
        "bl733": BeamlineSection(
            id="7.3.3",
            kind="saxs",
            source="data733",
            dataset="pair",
            suffixes=[".txt", ".edf"],
            skip_names=["autoexpose", "beamstop_test"],
            copies=["beegfs733", "nersc733"],
            export_control=ExportControlPolicy(action="refuse"),
            retention_days={"data733": 180, "nersc733_scratch": 7},
            safe_copies={"data733": ["nersc733"], "nersc733_scratch": ["beegfs733_analysis"]},
            product=ProductPlacement(
                input="nersc733", scratch="nersc733_scratch", home="beegfs733_analysis"
            ),
            integration=IntegrationSettings(),
        ),
        "bl7012": BeamlineSection(
            id="7.0.1.2",
            kind="ptychography",
            source="data7012",
            suffixes=[".cxi"],
            copies=["nersc7012"],
            export_control=ExportControlPolicy(action="skip_offsite"),
            retention_days={"nersc7012_scratch": 7},
            safe_copies={"nersc7012_scratch": ["data7012_recon"]},
            product=ProductPlacement(
                input="nersc7012", scratch="nersc7012_scratch", home="data7012_recon"
            ),
            ptychography=PtychographySettings(),
        ),
        "bl931": BeamlineSection(
            id="9.3.1",
            source="data931",
            suffixes=[".h5"],
            copies=["beegfs931", "nersc931"],
            retention_days={"data931": 180},
            safe_copies={"data931": ["nersc931"]},
            catalog=CatalogMapping(keywords=["spectroscopy", "ALS", "9.3.1"], data_format="HDF5"),
        ),
    }


def _default_hpc() -> dict[str, HpcSite]:
    return {
        "nersc": HpcSite(raw="nersc_cfs", scratch="nersc_pscratch"),
        "alcf": HpcSite(raw="alcf_raw", scratch="alcf_scratch"),
        "olcf": HpcSite(raw="olcf_raw", scratch="olcf_scratch"),
    }


def _default_retention() -> dict[str, float]:
    # Upstream's values: spot832 1 day, data832 raw 35, data832 scratch 14, NERSC pscratch 7,
    # ALCF 1 (both raw and scratch); OLCF as ALCF. The archive (NERSC CFS) keeps for ever.
    return {
        "spot832": 1,
        "data832_raw": 35,
        "data832_scratch": 14,
        "nersc_pscratch": 7,
        "alcf_raw": 1,
        "alcf_scratch": 1,
        "olcf_raw": 1,
        "olcf_scratch": 1,
    }


RAW_DATASET = "raw_scan"
RESULT_DATASETS = ("recon_tiff", "recon_zarr")


def _behind(endpoint: str, *datasets: str) -> dict[str, list[str]]:
    return {dataset: [endpoint] for dataset in datasets}


def _default_safe_copies() -> dict[str, dict[str, list[str]]]:
    # Upstream prunes after checking only that a file of the same name exists elsewhere (or
    # not at all, for data832 raw). Here each pruned location names where a verified copy
    # must stand: raw behind the next hop towards the archive, results behind the archive's
    # results copy, facility scratch behind the copy brought home.
    return {
        "spot832": _behind("data832_raw", RAW_DATASET),
        "data832_raw": _behind("nersc_cfs", RAW_DATASET),
        "data832_scratch": _behind("nersc_cfs_results", *RESULT_DATASETS),
        "nersc_pscratch": _behind("data832_scratch", *RESULT_DATASETS),
        "alcf_raw": _behind("data832_raw", RAW_DATASET),
        "alcf_scratch": _behind("data832_scratch", *RESULT_DATASETS),
        "olcf_raw": _behind("data832_raw", RAW_DATASET),
        "olcf_scratch": _behind("data832_scratch", *RESULT_DATASETS),
    }


class HistorySettings(Strict):
    """How long each kind of row of Dagster's own event log is kept, in days (Dagster's
    database-tuning recipe). Runs and asset, observation and check events are kept for ever."""

    debug_days: int = Field(default=7, ge=1, description="Plain DEBUG log lines.")
    log_days: int = Field(
        default=60, ge=1, description="Plain log lines at INFO, WARNING or any other level."
    )
    transient_days: int = Field(
        default=30, ge=1, description="Transient event types (history.TRANSIENT_EVENTS)."
    )
    batch_size: int = Field(
        default=5000, ge=1, description="Rows deleted per transaction; bounds lock time."
    )


class RetentionSettings(Strict):
    """How old copies are pruned. The days per endpoint are ``retention_days``; this section
    says behind which verified copies each may go, and how deletion proceeds."""

    safe_copies: dict[str, dict[str, list[str]]] = Field(
        default_factory=_default_safe_copies,
        description="Endpoint → dataset (raw_scan, recon_tiff, recon_zarr) → endpoints where a "
        "copy verified at prune time allows deleting this one. A dataset not named is never "
        "pruned from that endpoint.",
    )
    grace_days: float = Field(
        default=2.0,
        ge=0,
        description="Days a pruned copy waits in its endpoint's trash before it is purged; 0 "
        "purges at once.",
    )
    trash_folder: str = Field(
        default=".trash", description="Folder inside each endpoint holding pruned copies."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the copy ledger (leases, pins, trash); default: SQLite "
        "in the site folder. Production: the deployment's PostgreSQL "
        "(postgresql+psycopg2://...).",
    )
    audit_log: Path | None = Field(
        default=None,
        description="Append-only JSON-lines log of every deletion and refusal; default "
        "<home>/retention/audit.jsonl. Outlives Dagster's trimmed event log.",
    )
    prune_cron: str = Field(default="17 * * * *", description="When each location is pruned.")
    purge_after_crash_minutes: float = Field(
        default=60.0,
        gt=0,
        description="A deletion left half-done by a crash is resumed after this long.",
    )
    lease_minutes: float = Field(
        default=720.0,
        gt=0,
        description="How long a copy's or a prune's claim on a scan's copy holds if its "
        "holder dies without releasing it.",
    )
    future_tolerance_seconds: float = Field(
        default=300.0,
        ge=0,
        description="A copy recorded as made further than this in the future is refused: "
        "a clock is wrong, so its age means nothing.",
    )
    consistency_cron: str = Field(
        default="0 5 * * 0", description="When each location's consistency audit runs."
    )
    partial_max_age_hours: float = Field(
        default=24.0,
        gt=0,
        description="Hidden .partial-* files of killed copies untouched this long are swept.",
    )
    history: HistorySettings = Field(default_factory=HistorySettings)
    consistency_threshold: float = Field(
        default=0.10,
        gt=0,
        le=1,
        description="A consistency audit that finds more than this fraction of copies lost or "
        "dark stops without acting: the listing, not the data, is likely wrong.",
    )


class MetricsSettings(Strict):
    """The Prometheus exporter (``bl832 metrics``): where it listens, and where it pushes for
    a site that collects through a Pushgateway. It reads the site's records and holds no
    secret."""

    host: str = Field(default="127.0.0.1", description="Address the exporter listens on.")
    port: int = Field(default=9832, ge=1, le=65535, description="Port of its /metrics page.")
    pushgateway: str | None = Field(
        default=None,
        description="Pushgateway address (host:port or URL) that `bl832 metrics --push` "
        "pushes to; empty for a site Prometheus scrapes directly.",
    )
    push_interval_seconds: float = Field(
        default=30.0, gt=0, description="Seconds between two pushes."
    )
    job: str = Field(default="bl832", description="The push's job label on the Pushgateway.")


class QueueSettings(Strict):
    """The Celery queue of each kind of work (``bl832_assets/queues.py`` picks one per run and
    tags it ``dagster-celery/queue``). Only a deployment whose instance launches runs on Celery
    (deploy/dagster.yaml) reads the tag; the embedded site ignores it."""

    transfers: str = Field(
        default="transfers",
        description="Copy-only runs (new scans without reconstruction, prunes, restores, "
        "audits): any host with the data mounts.",
    )
    facility: str = Field(
        default="facility",
        description="Runs whose heavy steps are jobs at a facility (sfapi, globus_compute "
        "backends): they mostly wait, so one worker holds many.",
    )
    local_recon: str = Field(
        default="local-recon",
        description="Runs that reconstruct on the worker itself (a facility on the local "
        "backend): CPU-bound, so as many at once as the host has cores for.",
    )

    def all(self) -> list[str]:
        return [self.transfers, self.facility, self.local_recon]


class DeploySettings(Strict):
    """``bl832 deploy start|stop|status``: the deployment's processes on this machine. Database
    and broker addresses and secrets come from the environment (deploy/bl832.env.example)."""

    host: str = Field(default="127.0.0.1", description="Address the services listen on.")
    webserver_port: int = Field(default=3000, ge=1, le=65535)
    code_server_port: int = Field(
        default=4266,
        ge=1,
        le=65535,
        description="Port of the first code location's code server; each code location has "
        "its own, on consecutive ports in the order of bl832_assets/deploy/locations.py "
        "(default: bl832 4266, bl733 4267, bl7012 4268, move_only 4269).",
    )
    worker_queues: list[str] | None = Field(
        default=None, description="Queues the local Celery worker serves; default: all of them."
    )
    worker_concurrency: int = Field(
        default=2, ge=1, description="Runs the local Celery worker executes at once."
    )
    worker_name: str = Field(
        default="bl832",
        description="The local Celery worker's name before @host; unique among the workers "
        "sharing the broker.",
    )
    start_timeout_seconds: float = Field(
        default=180.0, gt=0, description="How long each process may take to answer."
    )
    stop_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long each process may take to stop on SIGTERM before SIGKILL (the "
        "worker finishes its runs in that time).",
    )
    instance: dict[str, Any] = Field(
        default_factory=dict,
        description="Instance settings merged over deploy/dagster.yaml when the deployment "
        "writes its DAGSTER_HOME (e.g. run_monitoring intervals).",
    )


class Settings(Strict):
    """The whole site. Relative endpoint roots are resolved against ``home``."""

    home: Path = Field(description="Site folder: endpoints, catalog, task log, DAGSTER_HOME.")
    endpoints: dict[str, Endpoint] = Field(default_factory=_default_endpoints)
    detector: str = Field(default="spot832", description="Endpoint the detector writes to.")
    beamline_raw: str = Field(default="data832_raw", description="Beamline raw storage.")
    beamline_scratch: str = Field(
        default="data832_scratch", description="Beamline storage for results brought home."
    )
    hpc: dict[str, HpcSite] = Field(default_factory=_default_hpc)
    archive: str | None = Field(
        default="nersc",
        description="Facility that receives every new scan's long-term raw copy (upstream: NERSC).",
    )
    decision: Decision = Field(default_factory=Decision)
    retention_days: dict[str, float] = Field(default_factory=_default_retention)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    archive_results: str | None = Field(
        default="nersc_cfs_results",
        description="Endpoint keeping every reconstruction for ever (upstream: NERSC CFS "
        "data_mover/8.3.2/scratch), so beamline scratch can be pruned behind it.",
    )
    sensor: SensorSettings = Field(default_factory=SensorSettings)
    recon: ReconOptions = Field(
        default_factory=ReconOptions,
        description="Site-wide reconstruction options; a run's config overrides them per scan.",
    )
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    globus: GlobusSettings = Field(default_factory=GlobusSettings)
    nersc: NerscSettings = Field(default_factory=NerscSettings)
    globus_compute: dict[str, ComputeEndpointSettings] = Field(
        default_factory=dict,
        description="Facility → its Globus Compute endpoint, for backends set to globus_compute.",
    )
    backends: Backends = Field(default_factory=Backends)
    pools: dict[str, int] = Field(
        default_factory=_default_pools,
        description="Steps that may run at once per pool: globus (transfers) and one per "
        "facility (its jobs). Applied to the Dagster instance by `bl832 pools`.",
    )
    retries: RetrySettings = Field(default_factory=RetrySettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    queues: QueueSettings = Field(default_factory=QueueSettings)
    deploy: DeploySettings = Field(default_factory=DeploySettings)
    beamlines: dict[str, BeamlineSection] = Field(
        default_factory=_default_beamlines,
        description="Beamlines besides 8.3.2, each served by the same core in a code location "
        "of its own (bl733, bl7012; move-only ones together).",
    )

    @model_validator(mode="after")
    def _resolve_and_check(self) -> Settings:
        home = self.home.expanduser().absolute()
        object.__setattr__(self, "home", home)
        self._fit_defaults_to_endpoints()
        resolved = {
            name: ep
            if ep.root is None
            else ep.model_copy(update={"root": (home / ep.root.expanduser()).absolute()})
            for name, ep in self.endpoints.items()
        }
        object.__setattr__(self, "endpoints", resolved)
        self._adopt_beamline_retention()
        named = {
            "detector": self.detector,
            "beamline_raw": self.beamline_raw,
            "beamline_scratch": self.beamline_scratch,
        }
        for facility, site in self.hpc.items():
            if facility not in FACILITIES:
                raise ValueError(f"hpc.{facility}: unknown facility (known: {FACILITIES})")
            named[f"hpc.{facility}.raw"] = site.raw
            named[f"hpc.{facility}.scratch"] = site.scratch
        if self.archive_results is not None:
            named["archive_results"] = self.archive_results
        named.update({f"retention_days.{name}": name for name in self.retention_days})
        for name, datasets in self.retention.safe_copies.items():
            named[f"retention.safe_copies.{name}"] = name
            for dataset, safe in datasets.items():
                named.update(
                    {
                        f"retention.safe_copies.{name}.{dataset}[{i}]": ep
                        for i, ep in enumerate(safe)
                    }
                )
        for where, endpoint in named.items():
            if endpoint not in self.endpoints:
                raise ValueError(f"{where}: unknown endpoint {endpoint!r}")
        for name, days in self.retention_days.items():
            if days < 0:
                raise ValueError(f"retention_days.{name}: must be >= 0, got {days}")
            if not self.retention.safe_copies.get(name):
                raise ValueError(
                    f"retention_days.{name}: retention.safe_copies.{name} names no safe copy, "
                    "so pruning it could delete the last copy"
                )
        if self.archive is not None and self.archive not in self.hpc:
            raise ValueError(f"archive: facility {self.archive!r} has no hpc entry")
        for facility in self.decision.recon_facilities():
            if facility not in self.hpc:
                raise ValueError(f"decision.{facility}_recon: facility has no hpc entry")
        self._check_backends()
        return self

    def _adopt_beamline_retention(self) -> None:
        """Each section's retention joins the site's policy, keyed by the datasets it holds, so
        that one ledger and one pruner serve every beamline; an endpoint is pruned by one
        policy only."""
        days = dict(self.retention_days)
        safe = dict(self.retention.safe_copies)
        owner: dict[str, str] = {}
        for name, section in self.beamlines.items():
            for endpoint in section.endpoints():
                # An endpoint's assets are named after it: two beamlines there would clash.
                if owner.setdefault(endpoint, name) != name:
                    raise ValueError(
                        f"beamlines.{name}: endpoint {endpoint!r} is already "
                        f"beamlines.{owner[endpoint]}'s; give each beamline its own (two may "
                        "share a Globus collection with different collection_path roots)"
                    )
        for name, section in self.beamlines.items():
            check_name(name)
            where = f"beamlines.{name}"
            for endpoint in section.endpoints():
                if endpoint not in self.endpoints:
                    raise ValueError(f"{where}: unknown endpoint {endpoint!r}")
            if self.endpoints[section.source].root is None:
                raise ValueError(
                    f"{where}.source: {section.source} must be visible on this machine (its "
                    "sensor watches it)"
                )
            if section.product is not None and section.product.facility not in self.hpc:
                raise ValueError(f"{where}.product.facility: no hpc entry for it")
            held = beamline_datasets(section)
            for endpoint, limit in section.retention_days.items():
                behind = section.safe_copies.get(endpoint, [])
                policy = {dataset: list(behind) for dataset in held.get(endpoint, [])}
                if safe.get(endpoint, policy) != policy:
                    raise ValueError(
                        f"{where}.safe_copies.{endpoint}: retention.safe_copies.{endpoint} "
                        "says otherwise; name an endpoint's safe copies in one place"
                    )
                if not behind:
                    raise ValueError(
                        f"{where}.retention_days.{endpoint}: safe_copies names no safe copy, "
                        "so pruning it could delete the last copy"
                    )
                if limit < 0:
                    raise ValueError(f"{where}.retention_days.{endpoint}: must be >= 0")
                unknown = [other for other in behind if other not in self.endpoints]
                if unknown:
                    raise ValueError(f"{where}.safe_copies.{endpoint}: unknown {unknown}")
                # The site's retention_days may shorten or lengthen a beamline's (the demo
                # does); a dump of these settings loads back with both, equal.
                days.setdefault(endpoint, limit)
                safe[endpoint] = policy
        object.__setattr__(self, "retention_days", days)
        retention = self.retention.model_copy(update={"safe_copies": safe})
        object.__setattr__(self, "retention", retention)

    def _fit_defaults_to_endpoints(self) -> None:
        """A site that lists its own endpoints gets the default retention policy only where
        it has the endpoints that policy names; what it writes itself is checked strictly."""
        given = self.model_fields_set
        known = set(self.endpoints)
        if "beamlines" not in given:
            fitted = {
                name: section
                for name, section in self.beamlines.items()
                if known.issuperset(section.endpoints())
            }
            object.__setattr__(self, "beamlines", fitted)
        if "archive_results" not in given and self.archive_results not in known:
            object.__setattr__(self, "archive_results", None)
        if "retention" not in given:
            fitted = {
                name: {d: safe for d, safe in datasets.items() if known.issuperset(safe)}
                for name, datasets in self.retention.safe_copies.items()
                if name in known
            }
            fitted = {name: datasets for name, datasets in fitted.items() if datasets}
            policy = self.retention.model_copy(update={"safe_copies": fitted})
            object.__setattr__(self, "retention", policy)
        if "retention_days" not in given:
            days = {
                n: d for n, d in self.retention_days.items() if self.retention.safe_copies.get(n)
            }
            object.__setattr__(self, "retention_days", days)

    def _check_backends(self) -> None:
        """Each backend finds what it needs here, so a gap fails at load, not mid-run."""
        beamline = (self.detector, self.beamline_raw, self.beamline_scratch)
        for name, endpoint in self.endpoints.items():
            if self.backends.transfer == "local" and endpoint.root is None:
                raise ValueError(f"endpoints.{name}.root: the local transfer backend needs it")
            if self.backends.transfer == "globus" and endpoint.collection_id is None:
                raise ValueError(f"endpoints.{name}.collection_id: the Globus backend needs it")
            if name in beamline and endpoint.root is None:
                raise ValueError(
                    f"endpoints.{name}.root: beamline storage must be visible on this machine "
                    "(the sensor, the catalog and the checks read it)"
                )
        for facility in FACILITIES:
            wanted = getattr(self.backends, facility) == "globus_compute"
            if wanted and facility not in self.globus_compute:
                raise ValueError(f"globus_compute.{facility}: backends.{facility} needs it")
        if self.backends.catalog == "scicat" and not self.catalog.url:
            raise ValueError("catalog.url: the scicat backend needs it")
        for pool, limit in self.pools.items():
            if limit < 1:
                raise ValueError(f"pools.{pool}: must be >= 1, got {limit}")

    def root(self, endpoint: str) -> Path:
        """The endpoint's folder on this machine; an error for storage not visible here."""
        root = self.endpoints[endpoint].root
        if root is None:
            raise SettingsError(f"endpoints.{endpoint}: not visible on this machine (no root)")
        return root

    def visible(self, endpoint: str) -> bool:
        return self.endpoints[endpoint].root is not None

    def location_of(self, endpoint: str, relative: str) -> str:
        """Where data is, for people: a path on this machine, else its Globus address."""
        ep = self.endpoints[endpoint]
        if ep.root is not None:
            return str(ep.root / relative)
        inside = f"{ep.collection_path.rstrip('/')}/{relative}"
        return f"globus://{ep.collection_id}{inside}"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def catalog_db(self) -> Path:
        return self.home / "catalog.sqlite"

    @property
    def transfer_db(self) -> Path:
        return self.home / "transfers.sqlite"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def ledger_url(self) -> str:
        return self.retention.database_url or f"sqlite:///{self.home / 'copies.sqlite'}"

    @property
    def audit_log(self) -> Path:
        return self.retention.audit_log or self.home / "retention" / "audit.jsonl"

    def location_is_onsite(self, location: str) -> bool:
        """Whether all storage of a location (``data832``, ``nersc``, ``catalog``) is on site."""
        if location == "catalog":
            return self.catalog.onsite
        if location == "archive":
            return self.archive_results is not None and self.endpoints[self.archive_results].onsite
        used = [ep for ep in self.endpoints.values() if ep.facility == _facility_of(location)]
        return bool(used) and all(ep.onsite for ep in used)

    def secret_variables(self) -> list[str]:
        """The environment variables the chosen backends read secrets from."""
        wanted: list[str] = []
        uses_globus = self.backends.transfer == "globus" or "globus_compute" in (
            self.backends.alcf,
            self.backends.olcf,
        )
        if uses_globus:
            wanted += [self.globus.client_id_env, self.globus.client_secret_env]
        if self.backends.nersc == "sfapi" and self.nersc.key_path is None:
            wanted += [self.nersc.client_id_env, self.nersc.secret_env]
        if self.backends.catalog == "scicat":
            wanted.append(
                self.catalog.password_env if self.catalog.username else self.catalog.token_env
            )
        return wanted


def _facility_of(location: str) -> str:
    return "als" if location in ("spot832", "data832") else location


class Environment(BaseSettings):
    """The two environment variables that locate the site."""

    model_config = SettingsConfigDict(env_prefix="BL832_", extra="ignore")

    home: Path = Path(".bl832")
    config: Path | None = None


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, env: Mapping[str, str], where: str = "") -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string; an unset variable is an error."""
    if isinstance(value, dict):
        return {
            k: expand_env(v, env, f"{where}.{k}" if where else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_env(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise SettingsError(f"{where}: environment variable {name} is not set")

    return _ENV_REF.sub(substitute, value)


def load_settings(config: str | Path | None = None) -> Settings:
    """Load the site from ``config`` (or ``$BL832_CONFIG``), falling back to the embedded site."""
    located = Environment()
    path = Path(config) if config is not None else located.config
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise SettingsError(f"{path}: cannot read: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise SettingsError(f"{path}: not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise SettingsError(f"{path}: top level must be a mapping")
        try:
            data = expand_env(loaded or {}, os.environ)
        except SettingsError as exc:
            raise SettingsError(f"{path}: {exc}") from exc
    data.setdefault("home", str(located.home))
    source = str(path) if path is not None else "default settings"
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: "
            f"{err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise SettingsError(f"{source}: {problems}") from None
