"""What the pipeline asks of a reconstruction engine, apart from how any engine does it."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from bl832_assets.science.filters import FilterName


class ReconEngine(Protocol):
    """Turns a slab of sinograms into slices on the grid of ``engines.geometry``.

    ``reconstruct`` takes float32 minus-log sinograms (slices, angles, columns), the angles in
    radians as stored and the rotation axis as a detector column, and returns float32 slices
    (slices, columns, columns) in attenuation per pixel length. Padding the detector and
    cropping back are the engine's own business; dividing by the pixel size and masking the
    circle are the caller's. Implementations must be safe to call from several threads at
    once, because the pipeline reconstructs one slab per core.
    """

    name: str

    def reconstruct(
        self,
        sinograms: np.ndarray,
        theta: np.ndarray,
        centre: float,
        *,
        filter_name: FilterName = "butterworth",
    ) -> np.ndarray: ...
