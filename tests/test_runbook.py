"""Every ``bl832`` and ``make`` command the runbook (docs/operations.md) tells an operator to
type exists, with the options it names: a runbook that drifted from the code fails here."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from bl832_assets.cli.main import _parser

REPO = Path(__file__).resolve().parent.parent
RUNBOOK = REPO / "docs" / "operations.md"
COMMAND = re.compile(r"`((?:bl832|make) [^`]+)`")


def _commands(program: str) -> list[str]:
    found = [c for c in COMMAND.findall(RUNBOOK.read_text()) if c.startswith(program + " ")]
    return sorted(set(found))


def test_the_runbook_names_commands_of_both_kinds() -> None:
    assert len(_commands("bl832")) >= 8
    assert len(_commands("make")) >= 3


@pytest.mark.parametrize("command", _commands("bl832"))
def test_every_bl832_command_parses(command: str) -> None:
    words = shlex.split(command)[1:]
    try:
        _parser().parse_args(words)
    except SystemExit as exc:
        pytest.fail(f"docs/operations.md names `{command}`, which bl832 refuses (exit {exc.code})")


@pytest.mark.parametrize("command", _commands("make"))
def test_every_make_target_exists(command: str) -> None:
    targets = shlex.split(command)[1:]
    # -n prints what would run without running it; a missing target exits 2.
    result = subprocess.run(
        ["make", "-n", *targets], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"`{command}`: {result.stderr.strip()}"
