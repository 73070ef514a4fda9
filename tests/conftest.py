"""Shared fixtures: a temporary site with its own settings and Dagster instance."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from bl832_assets.settings import Decision, SensorSettings, Settings


@pytest.fixture(scope="session", autouse=True)
def interruptible_children() -> None:
    """Processes the tests start (webserver, daemon, fakes) stop on SIGTERM through SIGINT's
    handler, and inherit an ignored SIGINT: a suite started in the background (``make test &``)
    would have them ignore SIGTERM. Python sets SIGINT's handler only where it was not ignored."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def site(tmp_path: Path) -> Settings:
    """A site in a temporary folder; files settle after one second so tests stay quick."""
    return Settings(
        home=tmp_path / "site",
        sensor=SensorSettings(settle_seconds=1.0, lookback_hours=24),
        decision=Decision(),
    )


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as inst:
        yield inst
