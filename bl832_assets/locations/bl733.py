"""7.3.3 (SAXS/WAXS): pairs of text header and EDF image, copied to BeeGFS and NERSC, and
azimuthally integrated into 1-D profiles."""

import dagster as dg

from bl832_assets.core.location import location_definitions
from bl832_assets.settings import load_settings


@dg.definitions
def defs() -> dg.Definitions:
    return location_definitions(load_settings(), "bl733")
