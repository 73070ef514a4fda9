"""The site's dagster.yaml, loaded as Dagster loads it: a typo there would only show when the
daemon starts at the beamline."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from bl832_assets.retention.jobs import PRUNE_TAG

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def site_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return dg.DagsterInstance.get()


def test_two_prunes_of_one_location_never_run_at_once(site_instance: dg.DagsterInstance) -> None:
    limits = site_instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {
        "key": PRUNE_TAG,
        "value": {"applyLimitPerUniqueValue": True},
        "limit": 1,
    } in limits


def test_the_community_dialog_does_not_cover_the_ui(site_instance: dg.DagsterInstance) -> None:
    assert site_instance.nux_enabled is False
