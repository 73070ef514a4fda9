"""A ``bl832`` command prints its own output and nothing from its dependencies: no Authlib
deprecation notice, no Dagster beta or preview warning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["config", "show"],
        ["prune", "--dry-run"],
        ["backfill", "group:catalog", "--dry-run"],
        ["discover", "data832_raw", "--dry-run"],
    ],
    ids=lambda c: " ".join(c),
)
def test_a_command_prints_no_dependency_warning(tmp_path: Path, command: list[str]) -> None:
    home = tmp_path / "site"
    (home / "data832" / "raw").mkdir(parents=True)
    env = {
        **os.environ,
        "BL832_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "PYTHONWARNINGS": "",
    }
    env.pop("BL832_CONFIG", None)
    result = subprocess.run(
        [str(BIN / "bl832"), *command], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    assert "warn" not in result.stderr.lower(), result.stderr
