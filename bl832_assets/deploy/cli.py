"""``bl832 deploy start|stop|status``: the production deployment as processes on this machine
(``make deploy-local``, ``make deploy-stop``, ``make deploy-status``)."""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import requests
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from bl832_assets.deploy.environment import Layout, database_url, environment, write_instance
from bl832_assets.deploy.locations import code_servers
from bl832_assets.deploy.services import (
    CodeLocation,
    LocationFailed,
    Service,
    metrics_available,
    services,
    start_groups,
)
from bl832_assets.deploy.supervisor import (
    DeployFailed,
    LocationDown,
    State,
    kill_stragglers,
    running,
    spawn,
    stop_groups,
    stragglers,
    wait_until_answering,
)
from bl832_assets.settings import Settings, load_settings

STOP_FIRST = ["daemon"]
"""Stopped before the rest, so no run is launched while the worker finishes its own."""

STOP_ALSO = ["metrics", "code-server"]
"""Stopped if recorded, though :func:`services` may not name them: the exporter of an
installation without it, and the one code server of a deployment started before each code
location had its own."""


def start() -> int:
    """Prepare the database and instance, then start what is not running, in order, each
    answering before the next group.

    A code location that cannot start (its code server does not answer, or the webserver cannot
    load it) is stopped and named, and the rest go on without it: separate code servers exist
    so that one beamline's code cannot hold up another's. Exit 2 then; a later ``start`` starts
    it and has the webserver load it. Any other failure, or no location at all, stops what this
    call started: exit 1."""
    settings = load_settings()
    layout = Layout.of(settings)
    env = environment(settings, os.environ)
    instance_file = write_instance(settings)
    created = ensure_database(env)
    os.environ.update(env)  # this process opens the instance the services will share
    migrate_and_apply_pools(settings)
    print(
        f"bl832 deploy: instance {instance_file} on database {env['DAGSTER_PG_DB']}"
        f"{' (created)' if created else ''}, migrated"
    )
    locations = {server.name: server.location for server in code_servers(settings)}
    webserver_was_running = running(layout, "webserver") is not None
    started: list[Service] = []
    down: dict[str, str] = {}  # location → why
    try:
        for group in start_groups(settings):
            fresh = []
            for service in group:
                pid = running(layout, service.name)
                if pid is not None:
                    print(f"{service.name}: already running (pid {pid})")
                    continue
                if isinstance(service.probe, CodeLocation) and down:
                    service = replace(service, probe=service.probe.without(list(down)))
                pid = spawn(layout, service, env)
                started.append(service)
                fresh.append((service, pid))
            for service, pid in fresh:
                if _answers(settings, layout, env, service, pid, down):
                    print(f"{service.name}: started (pid {pid}), answering {service.probe.what}")
            if len(down) == len(locations):
                raise DeployFailed("no code location could start")
    except DeployFailed as exc:
        print(f"bl832 deploy start: error: {exc}", file=sys.stderr)
        stop_groups(layout, [s.name for s in started], settings.deploy.stop_timeout_seconds, print)
        return 1
    if webserver_was_running:
        _reload(settings, [locations[s.name] for s in started if s.name in locations], down)
    if not metrics_available():
        print("metrics: not installed in this version (no `bl832 metrics`)")
    deploy = settings.deploy
    print(f"UI: http://{deploy.host}:{deploy.webserver_port}   logs: {layout.logs}")
    print(f"for dagster commands on this deployment: export DAGSTER_HOME={layout.dagster_home}")
    if down:
        for location, why in down.items():
            print(f"bl832 deploy start: code location {location} is down: {why}", file=sys.stderr)
        print(
            "the others run; fix what its log says, then `bl832 deploy start` again starts it "
            "and has the UI load it",
            file=sys.stderr,
        )
        return 2
    return 0


def _answers(
    settings: Settings,
    layout: Layout,
    env: dict[str, str],
    service: Service,
    pid: int,
    down: dict[str, str],
) -> bool:
    """Wait until ``service`` answers. A code server that cannot, or a location the webserver
    cannot load, is added to ``down`` with its reason and its code server stopped, so that a
    later ``start`` starts it afresh; False for such a code server. Any other failure raises."""
    servers = {server.name: server.location for server in code_servers(settings)}
    deploy = settings.deploy
    while True:
        try:
            wait_until_answering(layout, service, env, pid, deploy.start_timeout_seconds)
            return True
        except LocationDown as exc:
            location, why = exc.location, str(exc)
        except DeployFailed as exc:
            if service.name not in servers:
                raise
            location, why = servers[service.name], str(exc)
        print(f"bl832 deploy start: error: {why}", file=sys.stderr)
        server = next(name for name, served in servers.items() if served == location)
        stop_groups(layout, [server], deploy.stop_timeout_seconds, print)
        down[location] = why.splitlines()[0]
        if service.name == server:
            return False
        assert isinstance(service.probe, CodeLocation)
        service = replace(service, probe=service.probe.without(list(down)))


def _reload(settings: Settings, locations: list[str], down: dict[str, str]) -> None:
    """Code servers started under a running webserver: have it load their locations now (the
    daemon loads its workspace again within a minute by itself)."""
    deploy = settings.deploy
    probe = CodeLocation(f"http://{deploy.host}:{deploy.webserver_port}", ())
    for location in locations:
        if location in down:
            continue
        try:
            probe.reload(location)
        except (LocationFailed, requests.RequestException) as exc:
            down[location] = f"the webserver could not load it: {exc}"
            continue
        print(f"webserver: loaded code location {location}")


def stop() -> int:
    """SIGTERM to every process group (the daemon first), SIGKILL after the timeout; then no
    process of the deployment is left, in its group or outside."""
    settings = load_settings()
    layout = Layout.of(settings)
    timeout = settings.deploy.stop_timeout_seconds
    names = list(dict.fromkeys([*(s.name for s in services(settings)), *STOP_ALSO]))
    stop_groups(layout, STOP_FIRST, timeout, print)
    stop_groups(layout, [n for n in names if n not in STOP_FIRST], timeout, print)
    kill_stragglers(layout, print)
    left = list(stragglers(layout))
    if left:
        print(f"bl832 deploy stop: processes still there: {left}")
        return 1
    print("bl832 deploy: stopped; no process left")
    return 0


def status() -> int:
    """One line per process: pid, alive, answering. Exit 0 when all run and answer, else 3."""
    settings = load_settings()
    layout = Layout.of(settings)
    env = environment(settings, os.environ)
    os.environ.update(env)  # the daemon's heartbeats are read from the instance
    states = [state(layout, service, env) for service in services(settings)]
    rows = [("process", "pid", "alive", "answering", "checked")]
    rows += [
        (
            s.name,
            str(s.pid or "-"),
            "yes" if s.alive else "no",
            {True: "yes", False: "no", None: "-"}[s.answering],
            s.what,
        )
        for s in states
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print(f"pids: {layout.run}   logs: {layout.logs}   DAGSTER_HOME: {layout.dagster_home}")
    if not metrics_available():
        print("metrics: not installed in this version (no `bl832 metrics`)")
    return 0 if all(s.alive and s.answering for s in states) else 3


def state(layout: Layout, service: Service, env: dict[str, str]) -> State:
    pid = running(layout, service.name)
    what = service.probe.what
    try:
        answering = service.probe.answers(env) if pid is not None else None
    except LocationFailed as exc:
        answering, what = False, str(exc).splitlines()[0]
    return State(service.name, pid, pid is not None, answering, what)


def ensure_database(env: dict[str, str]) -> bool:
    """Create the deployment's database if the server lacks it; True when it was created."""
    name = env["DAGSTER_PG_DB"]
    server = sa.create_engine(
        database_url(env, "postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        with server.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.SQLAlchemyError as exc:
        raise OSError(
            f"PostgreSQL {env['DAGSTER_PG_HOST']}:{env['DAGSTER_PG_PORT']}: cannot open or "
            f"create database {name}: {exc.__class__.__name__}: {exc.orig or exc}"
        ) from None
    finally:
        server.dispose()
    return not exists


def migrate_and_apply_pools(settings: Settings) -> None:
    """``dagster instance migrate`` (idempotent) and the settings' pool limits."""
    import dagster as dg

    from bl832_assets.pools import apply_pool_limits

    with dg.DagsterInstance.get() as instance:
        instance.upgrade(lambda _line: None)
        apply_pool_limits(instance, settings)
