"""7.3.3's section of the site settings: how its images are integrated.

Distance, wavelength and beam centre belong to the beamline's current configuration (a
calibrant fixes them), not to the files, so they are settings; the embedded site uses the
synthetic calibrant's geometry, which makes its profiles checkable against the truth.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bl832_assets.beamlines.bl733.geometry import CALIBRANT_GEOMETRY, Geometry
from bl832_assets.settings_parts import Strict

DEFAULT_NPT = 1000


class IntegrationSettings(Strict):
    """Azimuthal integration of every image into a 1-D profile."""

    geometry: Geometry = Field(
        default=CALIBRANT_GEOMETRY, description="The beamline's calibrated geometry."
    )
    npt: int = Field(default=DEFAULT_NPT, ge=10, description="q bins of each profile.")
    mask: Path | None = Field(
        default=None,
        description="Mask EDF (nonzero where pixels are not used), as the facility's jobs see "
        "it; none: only negative (dead) pixels are masked.",
    )

    def options(self) -> list[str]:
        """The ``bl832 integrate`` options that say all of this."""
        geometry = self.geometry
        options = [
            "--distance-m",
            repr(geometry.distance_m),
            "--wavelength-angstrom",
            repr(geometry.wavelength_angstrom),
            "--centre",
            *(repr(value) for value in geometry.beam_centre_px),
            "--npt",
            str(self.npt),
        ]
        if geometry.pixel_size_m is not None:
            options += ["--pixel-size-m", repr(geometry.pixel_size_m[0])]
        if self.mask is not None:
            options += ["--mask", str(self.mask)]
        return options
