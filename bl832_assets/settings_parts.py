"""Pieces of the settings shared by the site and by each beamline's section, kept apart so
that a beamline's section can be declared beside the site without an import cycle."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    # A misspelt key in a hand-written YAML file must fail, not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class SensorSettings(Strict):
    """How the detector folder is watched."""

    interval_seconds: int = Field(default=30, ge=1, description="Seconds between sensor ticks.")
    settle_seconds: float = Field(
        default=10.0,
        ge=0,
        description="A file unchanged for this long (or across two ticks) is complete.",
    )
    lookback_hours: float = Field(
        default=24.0,
        ge=0,
        description="On the very first tick, older files are history for a backfill, not news.",
    )
    max_scans_per_tick: int = Field(
        default=50, ge=1, description="Bound on the work one tick may start."
    )
    incomplete_after_minutes: float = Field(
        default=30.0,
        gt=0,
        description="A dataset of several files (a 7.3.3 pair) still missing one this long "
        "after the first settled is reported, once; it is taken whenever the file comes.",
    )
