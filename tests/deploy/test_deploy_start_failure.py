"""``bl832 deploy start`` that cannot bring a process up says which and why, and stops what it
had started: a failed start leaves no process behind."""

from __future__ import annotations

import socket
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from dagster_services import run_bl832
from deployment_support import fresh_database, site_settings

from bl832_assets.deploy.environment import MARKER, Layout, environment
from bl832_assets.deploy.supervisor import stragglers
from bl832_assets.settings import Settings

pytestmark = pytest.mark.postgres


def test_a_taken_webserver_port_fails_start_and_leaves_no_process(tmp_path: Path) -> None:
    data = site_settings(tmp_path, f"t{uuid.uuid4().hex[:8]}", instance={})
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump(data))
    settings = Settings.model_validate(data)
    with socket.socket() as taken, fresh_database("bl832_deploy_fail") as database:
        taken.bind(("127.0.0.1", settings.deploy.webserver_port))
        taken.listen()
        env = environment(settings, {"BL832_CONFIG": str(config), "DAGSTER_PG_DB": database})
        env = {**{k: v for k, v in env.items() if k != MARKER}, "HOME": str(tmp_path)}
        try:
            result = run_bl832(env, "deploy", "start", timeout=300, check=False)
        finally:
            left = list(stragglers(Layout.of(settings)))
            for pid in left:
                subprocess.run(["kill", "-9", str(pid)], check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "bl832 deploy start: error: webserver exited before answering" in result.stderr
    assert "stopped code-server" in result.stdout
    assert left == []
    assert not any(Layout.of(settings).run.glob("*.pid"))
