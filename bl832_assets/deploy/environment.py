"""Where a deployment lives on this machine and the environment its processes share.

Addresses and secrets come from the environment (deploy/bl832.env.example lists them). For
``make deploy-local`` the ones left unset default to this machine's services: PostgreSQL on
127.0.0.1 with trust authentication, database ``bl832_deploy`` (created on first start, apart
from the ``test`` database the test suite uses), and RabbitMQ's loopback-only guest account.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from bl832_assets.deploy.locations import code_servers
from bl832_assets.settings import Settings, SettingsError

TEMPLATES = Path(__file__).resolve().parents[2] / "deploy"
"""The repository's deploy/ folder: instance and workspace templates, units, compose."""

BIN = Path(sys.executable).parent
"""The virtual environment's bin/, put first on every process's PATH (dagster-celery and the
local compute backend run commands from it)."""

LOCAL_SERVICES = {
    "DAGSTER_PG_HOST": "127.0.0.1",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "postgres",
    "DAGSTER_PG_PASSWORD": "",
    "DAGSTER_PG_DB": "bl832_deploy",
    "BL832_BROKER_URL": "pyamqp://guest:guest@127.0.0.1:5672//",
}
"""This machine's PostgreSQL and RabbitMQ, for whatever the environment leaves unset."""

CODE_SERVER_GRACE = "10"
"""Seconds a stopping code server waits for calls in flight (Dagster's default, 60 s, equals
``deploy.stop_timeout_seconds``, and one stuck call then meant SIGKILL). Runs execute in the
workers, not in code servers: what a stop cuts short is a read the webserver or daemon
repeats."""

MARKER = "BL832_DEPLOYMENT"
"""Set in every process of a deployment (to its folder), and inherited by everything they
start: how ``bl832 deploy stop`` finds a process that left its process group."""


@dataclass(frozen=True)
class Layout:
    """A deployment's folder: ``<home>/deploy`` with run/ (pid files), logs/ and dagster/
    (its DAGSTER_HOME, apart from the embedded site's SQLite instance)."""

    folder: Path

    @classmethod
    def of(cls, settings: Settings) -> Layout:
        return cls(settings.home / "deploy")

    @property
    def run(self) -> Path:
        return self.folder / "run"

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    @property
    def dagster_home(self) -> Path:
        return self.folder / "dagster"

    @property
    def workspace(self) -> Path:
        """deploy/workspace.yaml: one grpc_server entry per code location, each addressed by
        variables that :func:`environment` sets from the settings."""
        return TEMPLATES / "workspace.yaml"


def database_url(env: Mapping[str, str], database: str | None = None) -> str:
    """SQLAlchemy URL of the deployment's PostgreSQL (or of another database on it)."""
    user = quote(env["DAGSTER_PG_USER"], safe="")
    password = env.get("DAGSTER_PG_PASSWORD", "")
    credentials = f"{user}:{quote(password, safe='')}" if password else user
    host, port = env["DAGSTER_PG_HOST"], env["DAGSTER_PG_PORT"]
    name = database or env["DAGSTER_PG_DB"]
    return f"postgresql+psycopg2://{credentials}@{host}:{port}/{name}"


def environment(settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of every process of the deployment: ``base`` (the caller's, or an
    EnvironmentFile's) with this machine's services where it names none."""
    env = {**LOCAL_SERVICES, **base}
    # Celery's database result backend: the same PostgreSQL, written by workers, read by the
    # daemon's run monitoring.
    env.setdefault("BL832_RESULT_BACKEND", f"db+{database_url(env)}")
    layout = Layout.of(settings)
    env.setdefault("BL832_COMPUTE_LOGS", str(layout.folder / "compute_logs"))
    env.setdefault("DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD", CODE_SERVER_GRACE)
    env.update(
        {
            "BL832_HOME": str(settings.home),
            "DAGSTER_HOME": str(layout.dagster_home),
            "PATH": f"{BIN}{os.pathsep}{base.get('PATH', os.defpath)}",
            MARKER: str(layout.folder),
        }
    )
    # Where deploy/workspace.yaml finds each location's code server.
    for server in code_servers(settings):
        env.update(server.address())
    return env


def write_instance(settings: Settings) -> Path:
    """The deployment's dagster.yaml: deploy/dagster.yaml with the settings' deploy.instance
    merged over it, written anew on every start so an upgraded template takes effect."""
    template = TEMPLATES / "dagster.yaml"
    if not template.is_file():
        raise SettingsError(f"{template}: missing; run bl832 deploy from the repository checkout")
    text = template.read_text()
    if settings.deploy.instance:
        merged = _merged(yaml.safe_load(text), settings.deploy.instance)
        text = yaml.safe_dump(merged, sort_keys=False)
    target = Layout.of(settings).dagster_home / "dagster.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def _merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        inner = merged.get(key)
        if isinstance(value, Mapping) and isinstance(inner, Mapping):
            merged[key] = _merged(inner, value)
        else:
            merged[key] = value
    return merged
