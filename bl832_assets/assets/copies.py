"""Copies of a scan's data between storage locations, made by the transfer resource.

One factory serves every hop (detector → beamline → facility, and results coming home), so all
copies are made, recorded and checked the same way. The source of a copy is wherever its newest
upstream asset says the data is, which is how a result comes home from whichever facility made
it most recently.
"""

import hashlib
import time
from collections.abc import Mapping

import dagster as dg

from bl832_assets.assets.records import Recorded, newest_of, require_metadata
from bl832_assets.partitions import scans
from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.settings import Settings


def tree_digest(checksums: Mapping[str, str]) -> str:
    """One sha256 for a file or a folder, so a copy of either is compared by one value."""
    if len(checksums) == 1:
        return next(iter(checksums.values()))
    manifest = "".join(f"{name}\0{digest}\n" for name, digest in sorted(checksums.items()))
    return hashlib.sha256(manifest.encode()).hexdigest()


def _location_metadata(settings: Settings, endpoint: str, relative: str) -> dict[str, object]:
    return {
        "endpoint": endpoint,
        "relative_path": relative,
        "path": dg.MetadataValue.path(str(settings.root(endpoint) / relative)),
    }


def build_copy(
    settings: Settings,
    *,
    key: dg.AssetKey,
    upstreams: list[dg.AssetKey],
    destination: str,
    description: str,
    group: str,
    kinds: set[str],
) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition]:
    """A copy asset to ``destination`` from the newest of ``upstreams``, and its checksum check."""
    location = key.path[0]

    @dg.asset(
        key=key,
        deps=upstreams,
        partitions_def=scans,
        description=description,
        group_name=group,
        kinds=kinds,
        tags={"location": location},
        pool="globus",
    )
    def copy_asset(
        context: dg.AssetExecutionContext, transfer: TransferResource
    ) -> dg.MaterializeResult:
        source: Recorded = newest_of(context, upstreams)
        relative = str(source.metadata["relative_path"])
        started = time.monotonic()
        result = transfer.copy(
            str(source.metadata["endpoint"]),
            destination,
            relative,
            label=f"{key.to_user_string()} {context.partition_key}",
        )
        return dg.MaterializeResult(
            metadata={
                **_location_metadata(settings, destination, relative),
                "source_endpoint": result.source,
                "task_id": result.task_id,
                "size_bytes": result.bytes_total,
                "bytes_transferred": result.bytes_transferred,
                "files": result.files_transferred + result.files_skipped,
                "files_skipped": result.files_skipped,
                "sha256": tree_digest(result.sha256),
                "seconds": round(time.monotonic() - started, 3),
            }
        )

    @dg.asset_check(
        asset=key,
        name="copy_matches_source",
        description="The copy's sha256 equals the source's, file by file.",
        blocking=True,
        partitions_def=scans,
    )
    def copy_matches_source(
        context: dg.AssetCheckExecutionContext, transfer: TransferResource
    ) -> dg.AssetCheckResult:
        recorded = require_metadata(context, key)
        relative = str(recorded["relative_path"])
        copy = transfer.checksums(destination, relative)
        source_endpoint = str(recorded["source_endpoint"])
        if transfer.exists(source_endpoint, relative):
            reference, against = transfer.checksums(source_endpoint, relative), source_endpoint
        else:
            reference, against = {}, "the checksum recorded at copy time"
        differing = sorted(
            name for name in set(copy) | set(reference) if copy.get(name) != reference.get(name)
        )
        passed = not differing if reference else tree_digest(copy) == recorded["sha256"]
        return dg.AssetCheckResult(
            passed=passed,
            metadata={
                "compared_with": against,
                "files": len(copy),
                "differing": dg.MetadataValue.json(differing[:50]),
                "sha256": tree_digest(copy) if copy else "",
            },
            description=None if passed else f"{len(differing)} file(s) differ at {destination}",
        )

    return copy_asset, copy_matches_source
