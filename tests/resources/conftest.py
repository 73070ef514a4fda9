"""Real folders, real files and a real SQLite file for each test: the local backends are the
thing under test, so nothing of ours is replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from bl832_assets.resources.transfer import LocalTransferResource


@pytest.fixture
def transfer(tmp_path: Path) -> LocalTransferResource:
    roots = {name: tmp_path / name for name in ("spot832", "data832_raw", "nersc_cfs")}
    for root in roots.values():
        root.mkdir()
    return LocalTransferResource(
        endpoints={name: str(root) for name, root in roots.items()},
        database=str(tmp_path / "transfers.sqlite"),
    )
