"""Helpers for tests that need scans on the detector."""

import os
import time
from pathlib import Path

from bl832_assets.science.synth import write_synthetic_scan
from bl832_assets.settings import Settings


def age(path: Path, seconds: float) -> None:
    """Pretend ``path`` was last written ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def detector_scan(site: Settings, relative: str, *, settled: bool = True, **options) -> Path:
    """A small synthetic scan written where the detector writes."""
    path = site.root(site.detector) / relative
    write_synthetic_scan(path, **{"columns": 32, "rows": 2, "angles": 31, **options})
    if settled:
        age(path, 60)
    return path
