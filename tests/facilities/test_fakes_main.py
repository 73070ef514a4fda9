"""``python -m bl832_assets.fakes`` serves all four fakes and writes the settings and secrets
an operator needs to point the platform at them; those settings load and reach the fakes."""

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import requests
import yaml

from bl832_assets.definitions import build_definitions
from bl832_assets.settings import load_settings


def test_fakes_serve_until_interrupted_with_settings_that_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "facilities"
    process = subprocess.Popen(
        [sys.executable, "-m", "bl832_assets.fakes", "--home", str(home)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("serving until"):
                break
        config, secrets = home / "facilities.yaml", home / "facilities.env"
        assert oct(secrets.stat().st_mode & 0o777) == "0o600"
        environment = {
            name: shlex.split(value)[0]
            for name, value in (line.split("=", 1) for line in secrets.read_text().splitlines())
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        settings = load_settings(config)
        assert settings.backends.transfer == "globus" and settings.backends.catalog == "scicat"
        assert set(settings.secret_variables()) == set(environment)
        dg.Definitions.validate_loadable(build_definitions(settings))  # what `make dev` loads
        printed = "".join(lines)
        assert all(value not in printed for value in environment.values())
        login = requests.post(
            f"{settings.catalog.url}/auth/login",
            json={"username": "ingestor", "password": os.environ["SCICAT_PASSWORD"]},
            timeout=10,
        )
        assert login.ok and yaml.safe_load(config.read_text())["home"] == str(home)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
