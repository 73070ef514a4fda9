"""A real deployment for the tests: ``bl832 deploy start`` on a temporary site, against a
PostgreSQL database created for the test and dropped after it, and Celery queues of its own on
the machine's RabbitMQ (so a ``make deploy-local`` running beside it is never touched).

Every process the deployment starts is stopped by its recorded process group when the test
module ends, whatever happened: ``bl832 deploy stop`` first, then SIGKILL to every group ever
recorded and to every process still carrying the deployment's marker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import kombu
import yaml
from dagster_services import free_port, free_ports, run_bl832
from postgres_support import fresh_database

from bl832_assets.deploy.environment import LOCAL_SERVICES, MARKER, Layout, _merged, environment
from bl832_assets.deploy.locations import LOCATIONS, code_servers
from bl832_assets.deploy.supervisor import recorded_pid, stragglers
from bl832_assets.settings import Settings

CODE_SERVERS = tuple(s.name for s in code_servers(Settings(home=Path("/tmp/site"))))
"""One code server process per code location (code-server-bl832, code-server-bl733, ...)."""
PROCESSES = (*CODE_SERVERS, "webserver", "daemon", "worker", "metrics")


def delete_queues(names: list[str]) -> None:
    with kombu.Connection(LOCAL_SERVICES["BL832_BROKER_URL"]) as connection:
        for name in names:
            with suppress(Exception):
                connection.default_channel.queue_delete(name)


@dataclass
class Deployment:
    """A deployment's site, the environment its commands run with, and every process group
    it ever recorded."""

    folder: Path
    settings: Settings
    env: dict[str, str]
    seen: set[int] = field(default_factory=set)
    extra: dict[str, int] = field(default_factory=dict)  # processes a caller added (by name)

    @property
    def layout(self) -> Layout:
        return Layout.of(self.settings)

    def deploy(self, action: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """``bl832 deploy ACTION``, as an operator runs it (its exit status is the caller's to
        check)."""
        result = run_bl832(self.env, "deploy", action, timeout=timeout, check=False)
        self.remember()
        return result

    def remember(self) -> dict[str, int]:
        """The pid (= process group) of each recorded process, remembered for the cleanup."""
        pids = {n: p for n in PROCESSES if (p := recorded_pid(self.layout, n)) is not None}
        self.seen.update(pids.values())
        return pids

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.layout.dagster_home))

    def kill_everything(self) -> None:
        for pgid in self.seen:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        for pid in stragglers(self.layout):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def site_settings(folder: Path, tag: str, instance: dict[str, Any]) -> dict[str, Any]:
    """A copy-only site (new scans go home and to the archive; no reconstruction) that notices a
    scan within seconds, on free ports, with queues and a worker name of its own."""
    queues = {
        "transfers": f"{tag}-transfers",
        "facility": f"{tag}-facility",
        "local_recon": f"{tag}-local-recon",
    }
    return {
        "home": str(folder / "site"),
        "sensor": {"settle_seconds": 1.0, "interval_seconds": 2, "lookback_hours": 24},
        "decision": {"nersc_recon": False},
        "queues": queues,
        "metrics": {"port": free_port()},
        "deploy": {
            "webserver_port": free_port(),
            "code_server_port": free_ports(len(LOCATIONS)),
            "worker_name": f"{tag}-worker",
            "worker_concurrency": 1,
            "stop_timeout_seconds": 30,
            "instance": instance,
        },
    }


@contextmanager
def deployment(
    folder: Path, instance: dict[str, Any], settings: dict[str, Any] | None = None
) -> Iterator[Deployment]:
    """A started deployment (``settings`` merged over the test site's); everything it ran is
    gone, its database dropped and its queues deleted when the block ends."""
    tag = f"t{uuid.uuid4().hex[:8]}"
    data = _merged(site_settings(folder, tag, instance), settings or {})
    config = folder / "settings.yaml"
    config.write_text(yaml.safe_dump(data))
    settings = Settings.model_validate(data)
    with fresh_database("bl832_deploy_test") as database:
        base = {
            **{k: v for k, v in os.environ.items() if k != MARKER},
            "BL832_CONFIG": str(config),
            "DAGSTER_PG_DB": database,
        }
        env = environment(settings, base)
        env.pop(MARKER)  # only the deployment's own processes carry it, never the test's
        site = Deployment(folder, settings, env)
        try:
            started = site.deploy("start")
            assert started.returncode == 0, started.stdout + started.stderr
            yield site
        finally:
            try:
                site.deploy("stop", timeout=120)
            finally:
                site.kill_everything()
                delete_queues(settings.queues.all())


@contextmanager
def environment_of(site: Deployment) -> Iterator[None]:
    """This process's environment set to the deployment's, to open its instance."""
    saved = dict(os.environ)
    os.environ.update(site.env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
