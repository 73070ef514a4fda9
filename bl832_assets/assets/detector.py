"""``spot832/raw_scan``: the scan as the detector wrote it.

Dagster does not produce this file, it observes it: the ``new_scans`` sensor (or ``bl832
process``) reports a materialization with the facts every later step needs, chiefly the scan's
path relative to the detector folder, which the partition key deliberately leaves out.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from bl832_assets import keys
from bl832_assets.partitions import scans
from bl832_assets.science.dx import ScanMetadata

detector_raw_scan = dg.AssetSpec(
    keys.DETECTOR_RAW,
    description=__doc__,
    partitions_def=scans,
    group_name="raw",
    kinds={"hdf5"},
    tags={"location": keys.DETECTOR},
)


def observed(
    key: str, relative_path: str, path: Path, metadata: ScanMetadata
) -> dg.AssetMaterialization:
    """The event that records a settled scan file on the detector."""
    stat = path.stat()
    return dg.AssetMaterialization(
        asset_key=keys.DETECTOR_RAW,
        partition=key,
        metadata={
            "endpoint": keys.DETECTOR,
            "relative_path": relative_path,
            "path": dg.MetadataValue.path(str(path)),
            "size_bytes": stat.st_size,
            "mtime": stat.st_mtime,
            "shape": list(metadata.shape),
            "export_control": metadata.export_control,
            "proposal": metadata.proposal,
            "sample": metadata.sample_name,
        },
    )
