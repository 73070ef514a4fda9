"""The Dagster code location: the site's settings turned into assets, checks, sensor and
resources. ``dg dev``, ``dagster dev -w workspace.yaml`` and the CLI all load it from here."""

from __future__ import annotations

import dagster as dg

from bl832_assets import keys
from bl832_assets.assets.graph import build_asset_graph
from bl832_assets.flight_check import build_flight_check
from bl832_assets.resources.wiring import build_resources
from bl832_assets.retention.checks import build_retention_checks
from bl832_assets.retention.consistency import build_consistency_audits
from bl832_assets.retention.history import build_history_trim
from bl832_assets.retention.jobs import build_prune_jobs, build_restore_job
from bl832_assets.retention.partials import build_partial_sweep
from bl832_assets.sensors import build_new_scans_sensor
from bl832_assets.settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    graph = build_asset_graph(settings)
    flight_check, flight_check_schedule = build_flight_check(settings)
    # Other beamlines' storage is pruned from their own code locations.
    theirs = {e for section in settings.beamlines.values() for e in section.endpoints()}
    prune_jobs, prune_schedules = build_prune_jobs(
        settings, [e for e in settings.retention_days if e not in theirs]
    )
    audits, audit_schedules = build_consistency_audits(settings)
    maintenance = [build_history_trim(settings), build_partial_sweep(settings)]
    produced = dg.AssetSelection.all() - dg.AssetSelection.assets(keys.DETECTOR_RAW)
    return dg.Definitions(
        assets=[a for a in graph if not isinstance(a, dg.AssetChecksDefinition)],
        asset_checks=[a for a in graph if isinstance(a, dg.AssetChecksDefinition)]
        + build_retention_checks(settings),
        sensors=[build_new_scans_sensor(settings, produced)],
        jobs=[
            flight_check,
            *prune_jobs,
            build_restore_job(settings),
            *audits,
            *(j for j, _ in maintenance),
        ],
        schedules=[
            flight_check_schedule,
            *prune_schedules,
            *audit_schedules,
            *(s for _, s in maintenance),
        ],
        resources=build_resources(settings),
        # Runs mostly wait on transfers and facility jobs; one process keeps them re-attachable
        # and avoids SQLite write contention between step processes.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings())
