"""Reading what an upstream asset recorded about a scan.

Paths are not in partition keys (a key is the scan's stem), so each asset finds where its
input lives in the metadata its upstream asset recorded for the same partition. Dagster's
event log is the single source of truth for "where is this scan's copy".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg


class MissingUpstream(dg.Failure):
    """An asset ran before the asset it reads from was materialized for this scan."""


@dataclass(frozen=True)
class Recorded:
    """The newest materialization of an asset for one scan, as plain values, and as the typed
    entries they came from, which a downstream asset can publish again unchanged."""

    asset_key: dg.AssetKey
    metadata: Mapping[str, Any]
    timestamp: float
    entries: Mapping[str, dg.MetadataValue]

    def carried(self, names: Sequence[str]) -> dict[str, dg.MetadataValue]:
        """The entries among ``names`` that this record has, typed as recorded."""
        return {name: self.entries[name] for name in names if name in self.entries}


def latest_record(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str
) -> Recorded | None:
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
    )
    if not result.records:
        return None
    record = result.records[0]
    materialization = record.asset_materialization
    if materialization is None:
        return None
    entries = materialization.metadata
    values = {name: value.value for name, value in entries.items()}
    return Recorded(asset_key, values, record.timestamp, entries)


def newest_of(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    asset_keys: list[dg.AssetKey],
) -> Recorded:
    """The most recent materialization among several candidate upstreams of this scan."""
    found = [
        r for k in asset_keys if (r := latest_record(context.instance, k, context.partition_key))
    ]
    if not found:
        names = ", ".join(k.to_user_string() for k in asset_keys)
        raise MissingUpstream(
            description=f"none of {names} is materialized for scan {context.partition_key!r}",
            allow_retries=False,
        )
    return max(found, key=lambda r: r.timestamp)


def require_metadata(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    asset_key: dg.AssetKey,
) -> Mapping[str, Any]:
    return newest_of(context, [asset_key]).metadata


def export_controlled(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    declared_by: list[dg.AssetKey],
) -> bool:
    """The scan's export-control flag as its file declared it, read from the first of
    ``declared_by`` that recorded one (the detector's observation, or the beamline copy a
    discovery of historic scans recorded). A scan with no such record is treated as
    controlled: the transfer layer then keeps it on site."""
    for key in declared_by:
        record = latest_record(context.instance, key, context.partition_key)
        if record is not None and "export_control" in record.metadata:
            return bool(record.metadata["export_control"])
    return True
