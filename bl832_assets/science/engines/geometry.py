"""The reconstruction grid and what every engine needs to sample it the same way.

Convention (``bl832_assets.science.phantom``): the output is a C-by-C grid centred on the
rotation axis; pixel (iy, ix) sits at ``x = ix - (C - 1) / 2``, ``y = iy - (C - 1) / 2`` and
projects onto detector column ``centre + x·cos θ + y·sin θ``, θ as stored.
"""

from __future__ import annotations

import numpy as np


def check_inputs(sinograms: np.ndarray, theta: np.ndarray) -> None:
    """Refuse shapes an engine would otherwise mis-read silently (a transposed slab)."""
    if sinograms.ndim != 3 or theta.ndim != 1 or sinograms.shape[1] != theta.size:
        raise ValueError(
            f"expected sinograms (slices, angles, columns) and theta (angles,); got "
            f"{sinograms.shape} and {theta.shape}"
        )


def angle_weights(theta: np.ndarray) -> np.ndarray:
    """Per-projection weights summing to π: the trapezoid rule over the angles actually taken.

    With 0..180° inclusive the two end projections are mirror images and share one weight;
    a 360° scan counts each direction twice and is halved.
    """
    order = np.argsort(theta)
    sorted_theta = theta[order]
    gaps = np.diff(sorted_theta)
    weights = np.zeros_like(sorted_theta, dtype=np.float64)
    weights[:-1] += gaps / 2
    weights[1:] += gaps / 2
    if weights.sum() <= 0:
        raise ValueError("need at least two distinct projection angles")
    result = np.empty_like(weights)
    result[order] = weights * (np.pi / weights.sum())
    return result


def pad_columns(sinograms: np.ndarray, width: int) -> tuple[np.ndarray, int]:
    """Edge-pad the detector axis to ``width``; returns the result and its left padding.

    Edge values, not zeros, fill the padding: a sample wider than the field of view would
    otherwise show a bright rim where its projection is cut off.
    """
    columns = sinograms.shape[-1]
    left = (width - columns) // 2
    pad = [(0, 0)] * (sinograms.ndim - 1) + [(left, width - columns - left)]
    return np.pad(sinograms, pad, mode="edge"), left


def circular_mask(image: np.ndarray) -> np.ndarray:
    """Zero everything outside the inscribed circle, in place, where not every angle saw the
    sample and the values are artefacts (as ``tomopy.circ_mask`` does upstream)."""
    size = image.shape[-1]
    grid = np.arange(size) - (size - 1) / 2
    outside = grid[None, :] ** 2 + grid[:, None] ** 2 > (size / 2) ** 2
    image[..., outside] = 0
    return image
