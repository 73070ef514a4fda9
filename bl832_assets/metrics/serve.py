"""Serving the collector at ``/metrics``, and pushing it to a Pushgateway for a site that
collects that way (as upstream pushes its transfer gauges). Both expose one registry holding
only the collector, so a scrape and a push carry the same numbers."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, push_to_gateway, start_http_server
from prometheus_client.registry import Collector

PUSH_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class PushTarget:
    gateway: str  # host:port or URL of the Pushgateway
    job: str
    interval_seconds: float


class Pusher:
    """Pushes the registry at once and then every interval, from its own thread, until
    stopped. A push that fails is reported and tried again at the next interval: a
    Pushgateway restarting must not stop the exporter."""

    def __init__(self, registry: CollectorRegistry, target: PushTarget) -> None:
        self._registry = registry
        self._target = target
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bl832-push", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            try:
                push_to_gateway(
                    self._target.gateway,
                    job=self._target.job,
                    registry=self._registry,
                    timeout=PUSH_TIMEOUT_SECONDS,
                )
            except OSError as exc:  # refused, unreachable, or an HTTP error status
                print(f"bl832 metrics: push to {self._target.gateway}: {exc}", file=sys.stderr)
            if self._stop.wait(self._target.interval_seconds):
                return


@contextmanager
def exporting(
    collector: Collector, host: str, port: int, push: PushTarget | None = None
) -> Iterator[str]:
    """Serve ``collector`` (and push it, given a target) for the block; yields the address
    of its metrics page (port 0 picks a free port)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server, thread = start_http_server(port, addr=host, registry=registry)
    pusher = Pusher(registry, push) if push else None
    if pusher:
        pusher.start()
    try:
        yield f"http://{host}:{server.server_port}/metrics"
    finally:
        if pusher:
            pusher.stop()
        server.shutdown()
        server.server_close()
        thread.join()
