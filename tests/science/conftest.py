"""Small synthetic scans, written fresh per test so no test can see another's files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bl832_assets.science.synth import write_synthetic_scan

STEM = "20240606_151124_synthetic_phantom"


@pytest.fixture
def stem() -> str:
    """The scan stem of ``make_scan``'s default name, as the beamline names files."""
    return STEM


@pytest.fixture
def make_scan(tmp_path: Path) -> Callable[..., Path]:
    """``make_scan(**synth_options)``: a scan under ``tmp_path/raw`` (64 columns, 6 rows unless
    told otherwise, enough for every test that does not score image quality)."""

    def make(name: str = STEM, **options: object) -> Path:
        options = {"columns": 64, "rows": 6, "angles": 121, **options}
        return write_synthetic_scan(tmp_path / "raw" / f"{name}.h5", **options)

    return make


@pytest.fixture
def scan(make_scan: Callable[..., Path]) -> Path:
    return make_scan()
