"""A freshly written AgBh calibrant pair per test, so no test can see another's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bl832_assets.beamlines.bl733.synth import Calibrant, write_calibrant_pair


@pytest.fixture
def calibrant(tmp_path: Path) -> Calibrant:
    """A 256 x 256 AgBh exposure (``agbh_cal_2m.txt`` + ``.edf``) under ``tmp_path/data733``."""
    return write_calibrant_pair(tmp_path / "data733")
