"""Transitional: the two names other modules still import from here, now defined elsewhere.

Back-projection moved to ``engines.backprojection``, the filters and ``padded_width`` to
``filters``, ``circular_mask`` to ``engines.geometry``. Delete this module once ``recon`` and
``centre`` import from there.
"""

from bl832_assets.science.engines.geometry import circular_mask
from bl832_assets.science.filters import padded_width

__all__ = ["circular_mask", "padded_width"]
