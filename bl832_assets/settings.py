"""The site as data: endpoints, decision switches, retention and backends, validated at load time.

Everything an operator may change without touching code lives here. A YAML file named by
``BL832_CONFIG`` overrides the defaults; with no file at all the platform runs on an embedded
site under ``$BL832_HOME`` (default ``./.bl832``), so a laptop needs no configuration.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bl832_assets.science.options import ReconOptions

FACILITIES = ("nersc", "alcf", "olcf")
"""HPC facilities that can reconstruct a scan, in the order their results are preferred."""


class SettingsError(ValueError):
    """The site configuration is unusable; the message names the file and the field."""


class _Model(BaseModel):
    # A misspelt key in a hand-written YAML file must fail, not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Model):
    """A storage location data can be copied to, the way a Globus collection is one."""

    facility: str = Field(description="Who runs the storage: als, nersc, alcf or olcf.")
    root: Path = Field(description="Folder on this machine (local backend) or collection root.")
    collection_id: str | None = Field(
        default=None, description="Globus collection UUID, used by the Globus backend only."
    )
    onsite: bool = Field(description="True when the storage is inside the ALS site.")


class HpcSite(_Model):
    """Where a facility keeps the raw input and the reconstruction outputs of a scan."""

    raw: str = Field(description="Endpoint receiving the raw scan copy.")
    scratch: str = Field(description="Endpoint where reconstructions are written.")


class Decision(_Model):
    """Runtime switches of the dispatcher, named as upstream's ``decision-settings``."""

    new_file_832: bool = Field(default=True, description="Copy new scans to beamline storage.")
    nersc_recon: bool = Field(default=True, description="Reconstruct new scans at NERSC.")
    alcf_recon: bool = Field(default=False, description="Reconstruct new scans at ALCF.")
    olcf_recon: bool = Field(default=False, description="Reconstruct new scans at OLCF.")

    def recon_facilities(self) -> tuple[str, ...]:
        return tuple(f for f in FACILITIES if getattr(self, f"{f}_recon"))


class SensorSettings(_Model):
    """How the detector folder is watched."""

    interval_seconds: int = Field(default=30, ge=1, description="Seconds between sensor ticks.")
    settle_seconds: float = Field(
        default=10.0,
        ge=0,
        description="A file unchanged for this long (or across two ticks) is complete.",
    )
    lookback_hours: float = Field(
        default=24.0,
        ge=0,
        description="On the very first tick, older files are history for a backfill, not news.",
    )
    max_scans_per_tick: int = Field(
        default=50, ge=1, description="Bound on the work one tick may start."
    )


class CatalogSettings(_Model):
    """The dataset catalog (SciCat in production, SQLite when local)."""

    url: str | None = Field(default=None, description="SciCat API base URL (scicat backend).")
    username: str | None = None
    password: SecretStr | None = None
    onsite: bool = Field(
        default=False,
        description="SciCat is shared beyond the beamline, so export-controlled scans skip it.",
    )


class GlobusSettings(_Model):
    """Confidential-client credentials for the Globus backend."""

    client_id: str | None = None
    client_secret: SecretStr | None = None


class Backends(_Model):
    """Which implementation serves each resource; ``local`` does the work on this machine."""

    transfer: Literal["local"] = "local"
    nersc: Literal["local"] = "local"
    alcf: Literal["local"] = "local"
    olcf: Literal["local"] = "local"
    catalog: Literal["local"] = "local"


def _default_endpoints() -> dict[str, Endpoint]:
    layout = {
        "spot832": ("als", "spot832"),
        "data832_raw": ("als", "data832/raw"),
        "data832_scratch": ("als", "data832/scratch"),
        "nersc_cfs": ("nersc", "nersc/cfs"),
        "nersc_pscratch": ("nersc", "nersc/pscratch"),
        "alcf_raw": ("alcf", "alcf/raw"),
        "alcf_scratch": ("alcf", "alcf/scratch"),
        "olcf_raw": ("olcf", "olcf/raw"),
        "olcf_scratch": ("olcf", "olcf/scratch"),
    }
    return {
        name: Endpoint(facility=facility, root=Path(root), onsite=facility == "als")
        for name, (facility, root) in layout.items()
    }


def _default_hpc() -> dict[str, HpcSite]:
    return {
        "nersc": HpcSite(raw="nersc_cfs", scratch="nersc_pscratch"),
        "alcf": HpcSite(raw="alcf_raw", scratch="alcf_scratch"),
        "olcf": HpcSite(raw="olcf_raw", scratch="olcf_scratch"),
    }


def _default_retention() -> dict[str, float]:
    # Upstream's values: spot832 1 day, data832 raw 35, data832 scratch 14, NERSC pscratch 7,
    # ALCF 1 (both raw and scratch).
    return {
        "spot832": 1,
        "data832_raw": 35,
        "data832_scratch": 14,
        "nersc_pscratch": 7,
        "alcf_raw": 1,
        "alcf_scratch": 1,
    }


class Settings(_Model):
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
    sensor: SensorSettings = Field(default_factory=SensorSettings)
    recon: ReconOptions = Field(
        default_factory=ReconOptions,
        description="Site-wide reconstruction options; a run's config overrides them per scan.",
    )
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    globus: GlobusSettings = Field(default_factory=GlobusSettings)
    backends: Backends = Field(default_factory=Backends)

    @model_validator(mode="after")
    def _resolve_and_check(self) -> Settings:
        home = self.home.expanduser().absolute()
        object.__setattr__(self, "home", home)
        resolved = {
            name: ep.model_copy(update={"root": (home / ep.root.expanduser()).absolute()})
            for name, ep in self.endpoints.items()
        }
        object.__setattr__(self, "endpoints", resolved)
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
        named.update({f"retention_days.{name}": name for name in self.retention_days})
        for where, endpoint in named.items():
            if endpoint not in self.endpoints:
                raise ValueError(f"{where}: unknown endpoint {endpoint!r}")
        for name, days in self.retention_days.items():
            if days < 0:
                raise ValueError(f"retention_days.{name}: must be >= 0, got {days}")
        if self.archive is not None and self.archive not in self.hpc:
            raise ValueError(f"archive: facility {self.archive!r} has no hpc entry")
        for facility in self.decision.recon_facilities():
            if facility not in self.hpc:
                raise ValueError(f"decision.{facility}_recon: facility has no hpc entry")
        return self

    def root(self, endpoint: str) -> Path:
        return self.endpoints[endpoint].root

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

    def location_is_onsite(self, location: str) -> bool:
        """Whether all storage of a location (``data832``, ``nersc``, ``catalog``) is on site."""
        if location == "catalog":
            return self.catalog.onsite
        used = [ep for ep in self.endpoints.values() if ep.facility == _facility_of(location)]
        return bool(used) and all(ep.onsite for ep in used)

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data with every secret replaced by ``**********``."""
        return self.model_dump(mode="json")


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
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"{source}: {problems}") from None
