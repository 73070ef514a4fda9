"""Pool limits from the site's settings, applied to the Dagster instance.

Dagster keeps pool limits in the instance, not in code; the settings are where an operator
states them, and every site command (and ``bl832 pools`` before ``dagster dev``) writes them
there, so the UI's concurrency page and the settings file cannot disagree for long.
"""

from __future__ import annotations

import dagster as dg

from bl832_assets.settings import Settings


def apply_pool_limits(instance: dg.DagsterInstance, settings: Settings) -> dict[str, int]:
    """Set every pool named in the settings to its limit; returns what was set."""
    for pool, limit in settings.pools.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)
    return dict(settings.pools)
