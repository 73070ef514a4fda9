"""Turning a settled scan file into a registered partition and a decided set of assets.

Shared by the ``new_scans`` sensor and by ``bl832 process``, so both refuse the same bad files
for the same reasons and both start exactly the assets the decision function picks.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from bl832_assets.assets.detector import observed
from bl832_assets.decision import decide
from bl832_assets.partitions import scan_key, scans
from bl832_assets.queues import QUEUE_TAG, queue_for_assets
from bl832_assets.science.dx import read_metadata
from bl832_assets.settings import Settings


@dataclass(frozen=True)
class Dispatch:
    """Everything needed to register one scan and start its run."""

    key: str
    relative_path: str
    materialization: dg.AssetMaterialization
    assets: frozenset[dg.AssetKey]
    queue: str  # the Celery queue of its run (bl832_assets/queues.py)

    def run_request(self, **tags: str) -> dg.RunRequest:
        return dg.RunRequest(
            run_key=self.key,
            partition_key=self.key,
            asset_selection=sorted(self.assets, key=lambda k: k.to_user_string()),
            tags={"bl832/scan": self.key, QUEUE_TAG: self.queue, **tags},
        )


def prepare(settings: Settings, relative_path: str) -> Dispatch:
    """Validate the scan at ``relative_path`` under the detector root and decide its assets.

    Raises ``BadScanName`` or ``ScanFormatError`` (both ``ValueError``) with the reason.
    """
    key = scan_key(relative_path)
    path = settings.root(settings.detector) / relative_path
    metadata = read_metadata(path)
    assets = decide(settings, export_control=metadata.export_control)
    return Dispatch(
        key=key,
        relative_path=relative_path,
        materialization=observed(key, relative_path, path, metadata),
        assets=assets,
        queue=queue_for_assets(settings, assets),
    )


def register(instance: dg.DagsterInstance, result: dg.SensorResult) -> None:
    """Do what the sensor daemon does with a sensor result, for callers outside the daemon."""
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            new = [
                k
                for k in request.partition_keys
                if not instance.has_dynamic_partition(request.partitions_def_name, k)
            ]
            instance.add_dynamic_partitions(request.partitions_def_name, new)
    for event in result.asset_events or []:
        instance.report_runless_asset_event(event)


def as_sensor_result(dispatch: Dispatch, **tags: str) -> dg.SensorResult:
    """The sensor result that would have announced ``dispatch``."""
    return dg.SensorResult(
        run_requests=[dispatch.run_request(**tags)],
        dynamic_partitions_requests=[scans.build_add_request([dispatch.key])],
        asset_events=[dispatch.materialization],
    )
