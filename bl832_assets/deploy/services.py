"""The deployment's processes, in the order they start: what each runs and how it shows it
answers. The systemd units (deploy/systemd/) and compose (deploy/compose.yaml) run the same
commands."""

from __future__ import annotations

import importlib.util
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import requests

from bl832_assets.deploy.environment import BIN, Layout
from bl832_assets.deploy.locations import LOCATIONS, CodeServer, code_servers
from bl832_assets.settings import Settings

CELERY_APP = "bl832_assets.deploy.celery_app"

CODE_SERVER_HEALTH = "DagsterApi"
"""The service a Dagster code server reports SERVING once it listens."""


class Probe(Protocol):
    """Whether a running process does its job; ``what`` says what was asked, for status."""

    what: str

    def answers(self, env: Mapping[str, str]) -> bool: ...


@dataclass(frozen=True)
class GrpcHealth:
    """A code server's standard gRPC health check. An open port is not enough: it may be
    another program's, while the code server that failed to bind it is still exiting."""

    host: str
    port: int

    @property
    def what(self) -> str:
        return f"grpc health {self.host}:{self.port}"

    def answers(self, env: Mapping[str, str]) -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(f"{self.host}:{self.port}") as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=CODE_SERVER_HEALTH), timeout=2
                )
            except grpc.RpcError:
                return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING


@dataclass(frozen=True)
class Page:
    url: str

    @property
    def what(self) -> str:
        return self.url

    def answers(self, env: Mapping[str, str]) -> bool:
        try:
            return requests.get(self.url, timeout=5).ok
        except requests.RequestException:
            return False


WORKSPACE = """{ workspaceOrError { ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


RELOAD = """mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) {
  __typename
  ... on WorkspaceLocationEntry {
    locationOrLoadError { __typename ... on PythonError { message } } }
  ... on PythonError { message } ... on UnauthorizedError { message }
  ... on ReloadNotSupported { message } ... on RepositoryLocationNotFound { message } } }"""


class LocationFailed(RuntimeError):
    """The webserver answers, but a code location failed to load; the message says which and
    why."""

    def __init__(self, location: str, why: str) -> None:
        super().__init__(f"code location {location}: {why}")
        self.location = location


@dataclass(frozen=True)
class CodeLocation:
    """The webserver's GraphQL lists every named code location, each loaded (a load error is
    raised)."""

    url: str
    names: tuple[str, ...]
    down: tuple[str, ...] = ()
    """Locations whose code server did not start: their load error is expected, not raised."""

    @property
    def what(self) -> str:
        return f"{self.url} ({len(self.names)} code locations loaded)"

    def answers(self, env: Mapping[str, str]) -> bool:
        try:
            response = requests.post(f"{self.url}/graphql", json={"query": WORKSPACE}, timeout=10)
            entries = response.json()["data"]["workspaceOrError"].get("locationEntries") or []
        except (requests.RequestException, ValueError, KeyError, TypeError):
            return False
        for entry in entries:
            error = entry["locationOrLoadError"] or {}
            if error.get("__typename") == "PythonError" and entry["name"] not in self.down:
                raise LocationFailed(entry["name"], error["message"])
        loaded = {e["name"] for e in entries if e["loadStatus"] == "LOADED"}
        return set(self.names) <= loaded

    def without(self, down: list[str]) -> CodeLocation:
        """This probe for a webserver started while the ``down`` locations' servers are not."""
        names = tuple(n for n in self.names if n not in down)
        return CodeLocation(self.url, names, tuple(down))

    def reload(self, location: str) -> None:
        """Have the webserver load ``location`` again (its code server was started after it)."""
        response = requests.post(
            f"{self.url}/graphql",
            json={"query": RELOAD, "variables": {"name": location}},
            timeout=60,
        )
        response.raise_for_status()
        result = response.json()["data"]["reloadRepositoryLocation"]
        error = result.get("locationOrLoadError") or result
        if "message" in error:
            raise LocationFailed(location, error["message"])


@dataclass(frozen=True)
class Heartbeat:
    """The daemon's heartbeats in the instance, none older than ``max_age`` seconds."""

    max_age: float = 90.0

    @property
    def what(self) -> str:
        return "daemon heartbeats"

    def answers(self, env: Mapping[str, str]) -> bool:
        import dagster as dg

        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            beats = instance.get_daemon_heartbeats()
        return bool(beats) and all(time.time() - b.timestamp < self.max_age for b in beats.values())


@dataclass(frozen=True)
class CeleryPing:
    worker: str

    @property
    def what(self) -> str:
        return f"celery ping {self.worker}"

    def answers(self, env: Mapping[str, str]) -> bool:
        from celery import Celery

        app = Celery(broker=env["BL832_BROKER_URL"])
        try:
            replies = app.control.ping(destination=[self.worker], timeout=2.0)
        except OSError:
            return False
        finally:
            app.close()
        return any(self.worker in reply for reply in replies)


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    probe: Probe


def worker_name(settings: Settings) -> str:
    """The local worker's Celery name (``%h`` expanded as Celery does)."""
    return f"{settings.deploy.worker_name}@{socket.gethostname()}"


def metrics_available() -> bool:
    """Whether this installation has the ``bl832 metrics`` exporter."""
    return importlib.util.find_spec("bl832_assets.cli.metrics") is not None


def code_server(server: CodeServer) -> Service:
    """``dagster code-server start`` for one location (bl832-code-server@.service runs the
    same)."""
    return Service(
        server.name,
        [
            str(BIN / "dagster"),
            "code-server",
            "start",
            "-h",
            server.host,
            "-p",
            str(server.port),
            "-m",
            server.module,
            "--location-name",
            server.location,
        ],
        GrpcHealth(server.host, server.port),
    )


def services(settings: Settings) -> list[Service]:
    """Every process, in the order of :func:`start_groups`."""
    return [service for group in start_groups(settings) for service in group]


def start_groups(settings: Settings) -> list[list[Service]]:
    """The code servers first, one per location, started together (the webserver and daemon
    load the code from them), then the rest."""
    deploy, layout = settings.deploy, Layout.of(settings)
    workspace = str(layout.workspace)
    queues = deploy.worker_queues or settings.queues.all()
    rest = [
        Service(
            "webserver",
            [
                str(BIN / "dagster-webserver"),
                "-h",
                deploy.host,
                "-p",
                str(deploy.webserver_port),
                "-w",
                workspace,
            ],
            CodeLocation(f"http://{deploy.host}:{deploy.webserver_port}", tuple(LOCATIONS)),
        ),
        Service("daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace], Heartbeat()),
        Service(
            "worker",
            [
                str(BIN / "celery"),
                "-A",
                CELERY_APP,
                "worker",
                "-Q",
                ",".join(queues),
                "-c",
                str(deploy.worker_concurrency),
                "-n",
                worker_name(settings),
                "--prefetch-multiplier=1",
                "--without-mingle",
                "--without-gossip",
                "-l",
                "INFO",
            ],
            CeleryPing(worker_name(settings)),
        ),
    ]
    if metrics_available():
        metrics = settings.metrics
        rest.append(
            Service(
                "metrics",
                [str(BIN / "bl832"), "metrics"],
                Page(f"http://{metrics.host}:{metrics.port}/metrics"),
            )
        )
    return [[code_server(server) for server in code_servers(settings)], rest]
