"""7.0.1.2 (COSMIC ptychography): CXI scans copied to NERSC and reconstructed there on GPUs
(here on the CPU with the local backend)."""

import dagster as dg

from bl832_assets.core.location import location_definitions
from bl832_assets.settings import load_settings


@dg.definitions
def defs() -> dg.Definitions:
    return location_definitions(load_settings(), "bl7012")
