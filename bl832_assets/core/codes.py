"""Which code serves each kind of beamline section: the one place that knows the beamline
packages, so the core, the CLI and the code locations find a section's code by its kind."""

from __future__ import annotations

from bl832_assets.beamline_settings import BeamlineSection
from bl832_assets.core.code import BeamlineCode


def code_for(section: BeamlineSection) -> BeamlineCode:
    if section.kind == "saxs":
        from bl832_assets.beamlines.bl733.code import Saxs

        return Saxs()
    if section.kind == "ptychography":
        from bl832_assets.beamlines.bl7012.code import Ptychography

        return Ptychography()
    from bl832_assets.core.move_only import MoveOnly

    return MoveOnly()
