"""Per-scan reconstruction options, as one small value that travels from the site settings and
the Dagster launchpad through a job's command line into the payload and its outputs.

A plain dataclass: the payload stays a numerical program with no configuration framework, and
pydantic (for the settings) still validates it, through ``__post_init__``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, get_args

from bl832_assets.science.engines import engine_names
from bl832_assets.science.filters import FilterName
from bl832_assets.science.rings import StripeMethod

FILTERS: tuple[str, ...] = get_args(FilterName)
RING_METHODS: tuple[str, ...] = get_args(StripeMethod)
BINNINGS = (1, 2, 4)


class OptionsError(ValueError):
    """An option value the payload cannot honour; the message names the option."""


@dataclass(frozen=True)
class ReconOptions:
    """How to reconstruct one scan. ``None`` and the defaults mean "as the beamline does"."""

    centre: float | None = None  # rotation axis in detector columns; None: found from the data
    first_slice: int = 0  # detector rows [first_slice, last_slice) are reconstructed
    last_slice: int | None = None  # None: to the last row
    angle_step: int = 1  # use every n-th projection: a quicker, noisier look
    binning: int = 1  # average binning x binning detector pixels before reconstructing
    filter_name: str = "butterworth"
    engine: str = "dfi"
    ring_removal: str = "sort"  # evidence in docs/reconstruction.md

    def __post_init__(self) -> None:
        if self.binning not in BINNINGS:
            raise OptionsError(f"binning: must be one of {BINNINGS}, got {self.binning}")
        if self.angle_step < 1:
            raise OptionsError(f"angle_step: must be at least 1, got {self.angle_step}")
        if self.first_slice < 0:
            raise OptionsError(f"first_slice: must be >= 0, got {self.first_slice}")
        if self.last_slice is not None and self.last_slice <= self.first_slice:
            raise OptionsError(
                f"last_slice: must be greater than first_slice ({self.first_slice}), "
                f"got {self.last_slice}"
            )
        for name, value, known in (
            ("filter_name", self.filter_name, FILTERS),
            ("engine", self.engine, engine_names()),  # a registered GPU engine counts too
            ("ring_removal", self.ring_removal, RING_METHODS),
        ):
            if value not in known:
                raise OptionsError(f"{name}: {value!r} is not one of {', '.join(known)}")

    def rows(self, detector_rows: int) -> range:
        """The detector rows reconstructed, before binning; checked against the scan."""
        stop = detector_rows if self.last_slice is None else self.last_slice
        if stop > detector_rows:
            raise OptionsError(
                f"last_slice: {stop} is past the scan's {detector_rows} detector rows"
            )
        return range(self.first_slice, stop)

    def output_slices(self, detector_rows: int) -> int:
        """How many TIFF slices a scan with ``detector_rows`` rows yields."""
        return len(self.rows(detector_rows)) // self.binning

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> ReconOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise OptionsError(f"{', '.join(unknown)}: unknown option(s)")
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> ReconOptions:
        return cls.from_mapping(json.loads(text))

    def overridden(self, **changes: Any) -> ReconOptions:
        """These options with every non-None value of ``changes`` applied."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
