"""The object grid of a ptychography scan: how big it is and how much light each pixel got.

Shared by the synthetic scans (which draw the truth on it), the engine (which reconstructs on
it) and the previews, so that all three agree on where every frame's window lies. A window's
top-left corner is the probe position in whole object pixels, the smallest at 0.
"""

from __future__ import annotations

import numpy as np

WELL_LIT_FRACTION = 0.1  # of the brightest pixel's dose: outside, the object is barely measured


def object_shape(positions: np.ndarray, frame_shape: tuple[int, int]) -> tuple[int, int]:
    """The smallest grid every frame's window fits in."""
    rows, columns = np.asarray(positions).max(axis=0) + np.array(frame_shape)
    return int(rows), int(columns)


def illumination(probe: np.ndarray, positions: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The probe's intensity summed over every position: the dose each object pixel got."""
    total = np.zeros(shape)
    rows, columns = probe.shape
    intensity = np.abs(probe) ** 2
    for row, column in positions:
        total[row : row + rows, column : column + columns] += intensity
    return total


def well_lit(dose: np.ndarray, fraction: float = WELL_LIT_FRACTION) -> np.ndarray:
    """Where the dose reaches ``fraction`` of its maximum: the part of the object the scan
    determines; elsewhere a reconstruction shows its starting guess."""
    return dose >= fraction * dose.max()
