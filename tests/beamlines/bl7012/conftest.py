"""A small synthetic 7.0.1.2 scan and its reconstruction, shared within each test module: the
reconstruction takes about half a second, and most tests only read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bl832_assets.beamlines.bl7012.cxi import read_scan
from bl832_assets.beamlines.bl7012.params import PieParams
from bl832_assets.beamlines.bl7012.reconstruct import PtychoResult, reconstruct
from bl832_assets.beamlines.bl7012.synth import SyntheticScan, write_synthetic_scan

SCAN_NAME = "NS_241125001_ccdframes_0_0.cxi"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SyntheticScan:
    """32 by 32 pixel frames, 50 positions at 70 % overlap, 1e6 photons a frame, seed 0."""
    return write_synthetic_scan(tmp_path_factory.mktemp("raw") / SCAN_NAME)


@pytest.fixture(scope="module")
def result(synthetic: SyntheticScan) -> PtychoResult:
    """The default engine's reconstruction of ``synthetic``."""
    return reconstruct(read_scan(synthetic.path), PieParams())


@pytest.fixture
def scan_path(synthetic: SyntheticScan, tmp_path: Path) -> Path:
    """A private copy of the synthetic scan, for tests that change or break it."""
    copy = tmp_path / SCAN_NAME
    copy.write_bytes(synthetic.path.read_bytes())
    return copy
