"""``bl832 metrics``: the Prometheus exporter, as its own long-running process.

Never from a sensor: sensor ticks run in the code server, which restarts on every reload, and
a run that never leaves the queue would never report itself. The exporter reads the site's
instance and records at each scrape; it stops on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import signal
import threading

from bl832_assets.cli.site import site_instance
from bl832_assets.metrics.collector import Bl832Collector
from bl832_assets.metrics.serve import PushTarget, exporting
from bl832_assets.settings import SettingsError, load_settings


def metrics(host: str | None, port: int | None, push: bool) -> int:
    settings = load_settings()
    config = settings.metrics
    target = None
    if push:
        if not config.pushgateway:
            raise SettingsError("metrics.pushgateway: --push needs the Pushgateway's address")
        target = PushTarget(config.pushgateway, config.job, config.push_interval_seconds)
    stop = threading.Event()
    for stopping in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stopping, lambda *_: stop.set())
    listen = (host or config.host, config.port if port is None else port)
    with site_instance(settings) as instance:
        collector = Bl832Collector(settings, instance)
        read = collector.catch_up()
        with exporting(collector, *listen, push=target) as url:
            print(
                f"bl832 metrics: serving {url} ({read} records read){_pushing(target)}", flush=True
            )
            stop.wait()
    return 0


def _pushing(target: PushTarget | None) -> str:
    if target is None:
        return ""
    return f"; pushing to {target.gateway} every {target.interval_seconds:g} s"
