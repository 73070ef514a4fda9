"""The scattering geometry an image is integrated with: sample-detector distance, wavelength,
beam centre and pixel size.

7.3.3's EDF files carry only the pixel size (in the camserver's title line); distance, energy
and beam centre belong to the beamline's current configuration, which a calibrant image fixes,
so they come from settings. This is a pydantic model so that settings are checked when loaded,
not when the first image fails to integrate.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

PixelSize = tuple[PositiveFloat, PositiveFloat]


class Geometry(BaseModel):
    """A flat detector normal to the beam, described the way pyFAI's PONI and Fit2D do."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    distance_m: Annotated[
        PositiveFloat, Field(description="Sample to detector distance along the beam, in metres.")
    ]
    wavelength_angstrom: Annotated[
        PositiveFloat, Field(description="X-ray wavelength in ångström (12.398 / energy in keV).")
    ]
    beam_centre_px: Annotated[
        tuple[float, float],
        Field(
            description="Where the direct beam meets the detector, (row, column) in pixels from "
            "the image's first corner: pixel (i, j) spans i..i+1 and j..j+1, so the centre of "
            "the first pixel is (0.5, 0.5). May lie outside the image."
        ),
    ]
    pixel_size_m: Annotated[
        PixelSize | None,
        Field(
            description="(row, column) pixel size in metres; leave unset to take it from the "
            "EDF header's '# Pixel_size' line."
        ),
    ] = None

    def with_pixel_size(self, pixel_size_m: PixelSize) -> Geometry:
        """This geometry with the pixel size filled in, unless the settings already set it."""
        if self.pixel_size_m is not None:
            return self
        return Geometry.model_validate({**self.model_dump(), "pixel_size_m": pixel_size_m})


CALIBRANT_GEOMETRY = Geometry(
    distance_m=0.5, wavelength_angstrom=1.2398, beam_centre_px=(48.3, 52.7)
)
"""The synthetic calibrant's geometry (``synth``): the embedded site's default, so that its
profiles can be checked against the rings' true q."""
