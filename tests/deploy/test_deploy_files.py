"""The deployment's files agree with each other and with the code: the production instance
loads on PostgreSQL from the environment alone, every process runs the same command in the
systemd units and in compose, each code location of workspace.yaml has a code server of its own
on its own port everywhere, the queues they serve are the ones runs are routed to, and every
variable they read is in the example environment file, with no secret written anywhere."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from deployment_support import fresh_database

from bl832_assets.deploy.environment import LOCAL_SERVICES, TEMPLATES, environment
from bl832_assets.deploy.launcher import SiteCeleryRunLauncher
from bl832_assets.deploy.locations import (
    LOCATIONS,
    CodeServer,
    code_servers,
    host_variable,
    port_variable,
)
from bl832_assets.deploy.services import code_server, services
from bl832_assets.queues import QUEUE_TAG
from bl832_assets.retention.jobs import PRUNE_TAG
from bl832_assets.settings import (
    Backends,
    CatalogSettings,
    DeploySettings,
    QueueSettings,
    Settings,
    SettingsError,
)

REPO = TEMPLATES.parent
UNITS = TEMPLATES / "systemd"
SERVICES = sorted(UNITS.glob("*.service"))
CODE_SERVER_UNIT = "bl832-code-server@"
LOCATION_FILE = "/opt/bl832/deploy/systemd/locations/%i.env"
DEFAULT_SERVERS = code_servers(Settings(home=Path("/tmp/site")))
"""Each location's code server with the default settings: the ports the units and compose use."""


def _env_refs(node: Any) -> set[str]:
    """Every ``{env: NAME}`` in a loaded YAML document."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node)) if node else set()
    return set()


def _example() -> dict[str, str]:
    lines = (TEMPLATES / "bl832.env.example").read_text().splitlines()
    pairs = [li.split("=", 1) for li in lines if li and not li.startswith("#")]
    return {name: value for name, value in pairs}


def _unit(path: Path) -> dict[str, list[str]]:
    """A unit's keys (section-less) and their values, in order."""
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def _unit_environment(path: Path) -> dict[str, str]:
    return dict(v.split("=", 1) for v in _unit(path).get("Environment", []))


def _location_file(location: str) -> dict[str, str]:
    """deploy/systemd/locations/LOCATION.env, as systemd reads it for that instance."""
    path = UNITS / "locations" / f"{location}.env"
    lines = path.read_text().splitlines()
    return dict(li.split("=", 1) for li in lines if li and not li.startswith("#"))


def _addresses(servers: list[CodeServer]) -> dict[str, str]:
    return {name: value for server in servers for name, value in server.address().items()}


@pytest.fixture(scope="module")
def production_instance(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """deploy/dagster.yaml as the daemon loads it, with only the environment filled in."""
    with fresh_database("bl832_instance_test") as database, pytest.MonkeyPatch.context() as env:
        for name, value in {**LOCAL_SERVICES, "DAGSTER_PG_DB": database}.items():
            env.setenv(name, value)
        env.setenv("BL832_RESULT_BACKEND", "db+postgresql+psycopg2://postgres@127.0.0.1/x")
        env.setenv("BL832_COMPUTE_LOGS", "/tmp/bl832-compute-logs-test")
        env.setenv("DAGSTER_HOME", str(tmp_path_factory.mktemp("dagster_home")))
        with dg.DagsterInstance.from_config(str(TEMPLATES)) as instance:
            yield instance


@pytest.mark.postgres
def test_the_production_instance_stores_everything_in_postgres(production_instance) -> None:
    storage = production_instance.get_ref().storage_data
    assert storage.class_name == "DagsterPostgresStorage"
    assert production_instance.run_storage.__class__.__name__ == "PostgresRunStorage"


@pytest.mark.postgres
def test_the_production_instance_launches_runs_onto_celery(production_instance) -> None:
    launcher = production_instance.run_launcher
    assert isinstance(launcher, SiteCeleryRunLauncher)
    assert launcher.supports_check_run_worker_health
    assert launcher.default_queue == QueueSettings().transfers


@pytest.mark.postgres
def test_the_production_instance_monitors_limits_and_retries_runs(production_instance) -> None:
    instance = production_instance
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_max_runtime_seconds > 0
    # Crashed runs are failed and retried from failure, never resumed (see dagster.yaml).
    assert instance.run_monitoring_max_resume_run_attempts == 0
    assert instance.run_retries_enabled and instance.run_retries_max_retries >= 1
    assert instance.nux_enabled is False
    assert instance.get_settings("telemetry")["enabled"] is False
    # The queue is looked at every second, not Dagster's default 5 s.
    assert instance.run_coordinator.dequeue_interval_seconds == 1
    limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    keys = {(lim["key"], str(lim.get("value"))) for lim in limits}
    assert ("dagster/backfill", "None") in keys
    assert (PRUNE_TAG, str({"applyLimitPerUniqueValue": True})) in keys
    # One limit per queue, so runs a queue's workers cannot take yet wait QUEUED in Dagster
    # rather than STARTING in the broker, where the start timeout would fail them.
    assert {v for k, v in keys if k == QUEUE_TAG} == set(QueueSettings().all())


def test_the_instance_and_compose_write_no_secret() -> None:
    instance = yaml.safe_load((TEMPLATES / "dagster.yaml").read_text())
    db = instance["storage"]["postgres"]["postgres_db"]
    assert {k: v for k, v in db.items() if k != "scheme"} == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "username": {"env": "DAGSTER_PG_USER"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
        "port": {"env": "DAGSTER_PG_PORT"},
    }
    assert db["scheme"] == "postgresql+psycopg2"
    launcher = instance["run_launcher"]["config"]
    assert launcher["broker"] == {"env": "BL832_BROKER_URL"}
    assert launcher["backend"] == {"env": "BL832_RESULT_BACKEND"}
    compose = (TEMPLATES / "compose.yaml").read_text()
    for line in compose.splitlines():
        if re.search(r"(PASSWORD|PASS|SECRET|TOKEN)\w*:", line):
            assert "${" in line.split(":", 1)[1], line


def test_the_example_environment_names_every_variable_the_deployment_reads() -> None:
    example = _example()
    read = _env_refs(yaml.safe_load((TEMPLATES / "dagster.yaml").read_text()))
    read |= _env_refs(yaml.safe_load((TEMPLATES / "workspace.yaml").read_text()))
    # ${NAME} is compose's interpolation; $${NAME} is left to the container's shell.
    read |= set(re.findall(r"(?<!\$)\$\{(\w+)", (TEMPLATES / "compose.yaml").read_text()))
    celery_app = (REPO / "bl832_assets" / "deploy" / "celery_app.py").read_text()
    read |= set(re.findall(r'_required\("(\w+)"\)', celery_app))
    # The secrets of a site on every production backend, as `bl832 config show` lists them.
    production = Settings(
        home=Path("/tmp/site"),
        backends=Backends(nersc="sfapi", catalog="scicat"),
        catalog=CatalogSettings(url="https://scicat.example.org/api/v3"),
    )
    read |= set(production.secret_variables())
    read |= {"BL832_CONFIG", "BL832_HOME", "SCICAT_PASSWORD", "GLOBUS_CLIENT_ID"}
    read -= {"BL832_HOST_SITE", "BL832_HOST_SETTINGS"}  # compose's host paths, defaulted
    assert read <= set(example), sorted(read - set(example))
    for name, value in example.items():
        secret = re.search("PASSWORD|SECRET|TOKEN|BROKER_URL|RESULT_BACKEND", name)
        assert not secret or value == "" or "change-me" in value, f"{name}={value}"


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_each_unit_reads_secrets_from_the_environment_file_and_restarts(path: Path) -> None:
    unit = _unit(path)
    # A code server also reads its location's module and port, after (over) the secrets.
    own = [LOCATION_FILE] if path.stem == CODE_SERVER_UNIT else []
    assert unit["EnvironmentFile"] == ["/etc/bl832/bl832.env", *own]
    environment = dict(v.split("=", 1) for v in unit["Environment"])
    assert environment["DAGSTER_HOME"]
    assert environment["PATH"].startswith("/opt/bl832/.venv/bin:")
    assert unit["Restart"] == ["on-failure"]
    [command] = unit["ExecStart"]
    assert command.startswith("/opt/bl832/.venv/bin/")
    assert "password" not in path.read_text().lower()


def test_the_deployment_serves_the_code_locations_of_the_workspace() -> None:
    """One list of locations (bl832_assets/deploy/locations.py): the repository's workspace.yaml
    loads the same modules under the same names, and deploy/workspace.yaml reaches each at the
    variables ``bl832 deploy`` sets."""
    development = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"]
    loaded = {
        e["python_module"]["location_name"]: e["python_module"]["module_name"] for e in development
    }
    assert list(loaded.items()) == list(LOCATIONS.items())
    production = yaml.safe_load((TEMPLATES / "workspace.yaml").read_text())["load_from"]
    assert [e["grpc_server"] for e in production] == [
        {
            "host": {"env": host_variable(location)},
            "port": {"env": port_variable(location)},
            "location_name": location,
        }
        for location in LOCATIONS
    ]


def test_each_location_gets_a_code_server_on_consecutive_ports_from_the_settings() -> None:
    settings = Settings(home=Path("/tmp/site"), deploy=DeploySettings(code_server_port=5100))
    servers = code_servers(settings)
    assert [(s.location, s.module, s.port) for s in servers] == [
        (location, module, 5100 + offset)
        for offset, (location, module) in enumerate(LOCATIONS.items())
    ]
    # The deployment's environment points deploy/workspace.yaml at exactly those.
    env = environment(settings, {})
    for server in servers:
        assert env[host_variable(server.location)] == "127.0.0.1"
        assert env[port_variable(server.location)] == str(server.port)
    # Each runs as a process of its own, all started before the webserver and the daemon.
    names = [service.name for service in services(settings)]
    assert names[: len(LOCATIONS)] == [server.name for server in servers]
    assert len(set(names)) == len(names)
    assert [server.port for server in DEFAULT_SERVERS] == [4266, 4267, 4268, 4269]


def test_code_server_ports_past_65535_are_refused() -> None:
    settings = Settings(home=Path("/tmp/site"), deploy=DeploySettings(code_server_port=65534))
    with pytest.raises(SettingsError, match=r"deploy\.code_server_port: 65534 leaves no room"):
        code_servers(settings)


def test_the_units_run_the_commands_bl832_deploy_runs() -> None:
    commands = {p.stem: _unit(p)["ExecStart"][0].split() for p in SERVICES}
    assert commands[CODE_SERVER_UNIT][1:] == [
        "code-server", "start", "-h", "127.0.0.1", "-p", "${BL832_LOCATION_PORT}",
        "-m", "${BL832_LOCATION_MODULE}", "--location-name", "%i",
    ]  # fmt: skip
    for server in DEFAULT_SERVERS:
        own = _location_file(server.location)
        assert set(own) == {"BL832_LOCATION_PORT", "BL832_LOCATION_MODULE"}
        instance = [
            own.get(word[2:-1], word) if word.startswith("${") else word
            for word in commands[CODE_SERVER_UNIT]
        ]
        instance = [server.location if word == "%i" else word for word in instance]
        assert instance[1:] == code_server(server).argv[1:], server.location
    assert sorted(p.stem for p in (UNITS / "locations").glob("*.env")) == sorted(LOCATIONS)
    # The webserver and the daemon reach every code server where it listens, and come after it.
    wanted = [f"bl832-code-server@{location}.service" for location in LOCATIONS]
    for name in ("bl832-webserver", "bl832-daemon"):
        unit = UNITS / f"{name}.service"
        assert _addresses(DEFAULT_SERVERS).items() <= _unit_environment(unit).items(), name
        assert _unit(unit)["After"] == [" ".join(wanted)]
        assert _unit(unit)["Wants"] == [" ".join(wanted)]
    assert commands["bl832-webserver"][0].endswith("/dagster-webserver")
    assert commands["bl832-daemon"][1:3] == ["run", "-w"]
    worker = commands["bl832-worker@"]
    assert worker[1:4] == ["-A", "bl832_assets.deploy.celery_app", "worker"]
    assert worker[worker.index("-Q") + 1] == "%i"
    assert commands["bl832-metrics"][1:] == ["metrics"]
    target = (UNITS / "bl832.target").read_text()
    for queue in QueueSettings().all():
        assert f"bl832-worker@{queue}.service" in target
    for location in LOCATIONS:
        assert f"bl832-code-server@{location}.service" in target


def test_the_units_verify_with_systemd(tmp_path: Path) -> None:
    """systemd-analyze verify, on copies pointing at this checkout and this user."""
    verify = shutil.which("systemd-analyze")
    assert verify, "systemd-analyze is part of this machine's systemd package"
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    for source in [*SERVICES, UNITS / "bl832.target"]:
        text = source.read_text().replace("/opt/bl832", str(REPO))
        text = re.sub(r"(?m)^(User|Group)=.*$", "", text)
        (tmp_path / source.name).write_text(text + f"\n# verified as {user}\n")
    (tmp_path / "bl832-worker@transfers.service").write_text(
        (tmp_path / "bl832-worker@.service").read_text()
    )
    for location in LOCATIONS:
        (tmp_path / f"bl832-code-server@{location}.service").write_text(
            (tmp_path / "bl832-code-server@.service").read_text()
        )
    templates = {"bl832-worker@.service", "bl832-code-server@.service"}
    names = [p.name for p in tmp_path.iterdir() if p.name not in templates]
    result = subprocess.run(
        [verify, "verify", "--man=no", *(f"./{n}" for n in sorted(names))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"SYSTEMD_LOG_LEVEL": "warning", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_compose_runs_every_process_with_one_worker_per_queue() -> None:
    compose = yaml.safe_load((TEMPLATES / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "rabbitmq", "webserver", "daemon", "metrics"} <= set(services)
    served = set()
    for name, service in services.items():
        if name.startswith("worker-"):
            command = service["command"].split()
            served.add(command[command.index("-Q") + 1])
            assert command[:4] == ["celery", "-A", "bl832_assets.deploy.celery_app", "worker"]
        if name not in ("postgres", "rabbitmq"):
            assert service["env_file"] == "bl832.env"
            assert service["restart"] == "on-failure"
    assert served == set(QueueSettings().all())
    # One code server per location, each on its own port; the webserver and the daemon reach
    # each by its service's name and wait until every one is healthy.
    servers = {name for name in services if name.startswith("code-server")}
    assert servers == {server.name for server in DEFAULT_SERVERS}
    addresses = services["webserver"]["environment"]
    for server in DEFAULT_SERVERS:
        service = services[server.name]
        assert service["command"].split() == [
            "dagster", "code-server", "start", "-h", "0.0.0.0", "-p", str(server.port),
            "-m", server.module, "--location-name", server.location,
        ]  # fmt: skip
        assert service["healthcheck"]["test"][-1] == str(server.port)
        assert addresses[host_variable(server.location)] == server.name
        assert addresses[port_variable(server.location)] == str(server.port)
        for name in ("webserver", "daemon"):
            assert services[name]["depends_on"][server.name] == {"condition": "service_healthy"}


def test_make_targets_are_the_bl832_deploy_commands() -> None:
    makefile = (REPO / "Makefile").read_text()
    for target, action in [
        ("deploy-local", "start"),
        ("deploy-stop", "stop"),
        ("deploy-status", "status"),
    ]:
        body = makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
        assert f"$(BIN)/bl832 deploy {action}" in body
