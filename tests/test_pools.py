"""Pools: every transfer step shares the `globus` pool, every facility step its facility's,
and the limits an operator writes in the settings are what the instance enforces."""

from pathlib import Path

import dagster as dg

from bl832_assets import keys
from bl832_assets.definitions import build_definitions
from bl832_assets.pools import apply_pool_limits
from bl832_assets.settings import Settings


def test_steps_are_in_the_pool_of_what_they_wait_on(tmp_path: Path) -> None:
    graph = build_definitions(Settings(home=tmp_path)).resolve_asset_graph()
    pools = {
        key.to_user_string(): graph.get(key).pools
        for key in graph.get_all_asset_keys()
        if graph.get(key).is_materializable
    }

    assert pools["data832/raw_scan"] == {"globus"}
    assert pools["nersc/raw_scan"] == {"globus"}
    assert pools["data832/recon_zarr"] == {"globus"}
    for facility in ("nersc", "alcf", "olcf"):
        assert pools[keys.key(facility, keys.RECON_TIFF).to_user_string()] == {facility}
        assert pools[keys.key(facility, keys.RECON_ZARR).to_user_string()] == {facility}


def test_limits_from_the_settings_reach_the_instance(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, pools={"globus": 6, "nersc": 1, "alcf": 3, "olcf": 2})
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        apply_pool_limits(instance, settings)
        apply_pool_limits(instance, settings)  # idempotent: a second apply changes nothing

        limits = {
            pool: instance.event_log_storage.get_concurrency_info(pool).slot_count
            for pool in settings.pools
        }
    assert limits == {"globus": 6, "nersc": 1, "alcf": 3, "olcf": 2}
