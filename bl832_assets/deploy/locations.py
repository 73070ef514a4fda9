"""The deployment's code locations, each served by a code server of its own, so one beamline's
code is restarted, or fails to load, without touching the others.

``LOCATIONS`` is the one list: the same names and modules as the repository's workspace.yaml
(``make dev``), and the locations of deploy/workspace.yaml, the systemd units and compose
(tests/deploy/test_deploy_files.py holds each of them to it). A location's code server listens
on ``deploy.code_server_port`` plus the location's place in this list.
"""

from __future__ import annotations

from dataclasses import dataclass

from bl832_assets.settings import Settings, SettingsError

LOCATIONS: dict[str, str] = {
    "bl832": "bl832_assets.definitions",
    "bl733": "bl832_assets.locations.bl733",
    "bl7012": "bl832_assets.locations.bl7012",
    "move_only": "bl832_assets.locations.move_only",
}
"""Code location name → the Python module its code server loads."""


def host_variable(location: str) -> str:
    """The variable deploy/workspace.yaml reads the location's code server host from."""
    return f"BL832_CODE_SERVER_HOST_{location.upper()}"


def port_variable(location: str) -> str:
    """The variable deploy/workspace.yaml reads the location's code server port from."""
    return f"BL832_CODE_SERVER_PORT_{location.upper()}"


@dataclass(frozen=True)
class CodeServer:
    """One location's code server: what it loads and where it listens."""

    location: str
    module: str
    host: str
    port: int

    @property
    def name(self) -> str:
        """The process's name in ``bl832 deploy`` (pid file, log, status) and its service's in
        compose (a host name there, hence no underscore)."""
        return f"code-server-{self.location.replace('_', '-')}"

    def address(self) -> dict[str, str]:
        """The workspace's variables for this location."""
        return {
            host_variable(self.location): self.host,
            port_variable(self.location): str(self.port),
        }


def code_servers(settings: Settings) -> list[CodeServer]:
    """Every location's code server, on consecutive ports from ``deploy.code_server_port``."""
    deploy = settings.deploy
    last = deploy.code_server_port + len(LOCATIONS) - 1
    if last > 65535:
        raise SettingsError(
            f"deploy.code_server_port: {deploy.code_server_port} leaves no room for "
            f"{len(LOCATIONS)} code servers on consecutive ports (the last would be {last})"
        )
    return [
        CodeServer(location, module, deploy.host, deploy.code_server_port + offset)
        for offset, (location, module) in enumerate(LOCATIONS.items())
    ]
