"""Every beamline whose section says ``kind: move_only`` (9.3.1 by default): copies, catalog
records, retention and a flight check from settings alone, with no Python of its own. They
share this one location; their names carry each beamline's prefix."""

import dagster as dg

from bl832_assets.core.location import location_definitions
from bl832_assets.settings import load_settings


@dg.definitions
def defs() -> dg.Definitions:
    settings = load_settings()
    sections = [n for n, s in settings.beamlines.items() if s.kind == "move_only"]
    return location_definitions(settings, *sections)
