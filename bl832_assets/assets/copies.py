"""Copies of a scan's data between storage locations, made by the transfer resource.

One factory serves every hop (detector → beamline → facility, and results coming home), so all
copies are made, recorded and checked the same way. The source of a copy is wherever its newest
upstream asset says the data is, which is how a result comes home from whichever facility made
it most recently.

Every copy says where it lives, its size, its checksum and when retention will prune it; and
it carries on what its source knew about the science (``CARRIED_FROM_SOURCE``), so the copy
people open at home shows the previews, centre and facility job of the reconstruction itself.
"""

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, TypeVar

import dagster as dg

from bl832_assets import keys
from bl832_assets.assets.failures import retry_only_if_transient, retry_policy
from bl832_assets.assets.records import Recorded, export_controlled, newest_of, require_metadata
from bl832_assets.digests import tree_digest
from bl832_assets.partitions import scans
from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.resources.transfer.errors import ChecksumUnavailable
from bl832_assets.resources.transfer.results import TransferResult
from bl832_assets.retention.ledger import CopyFacts, CopyLedger, CopyRecord
from bl832_assets.retention.locations import asset_endpoints, dataset_of
from bl832_assets.retention.plan import DAY, needs_catalog_record, propose, safe_endpoints
from bl832_assets.retention.resource import LedgerResource
from bl832_assets.settings import Settings

_V = TypeVar("_V")

CARRIED_FROM_SOURCE = (
    "preview_xy",
    "preview_xz",
    "preview_yz",
    "histogram",
    "centre",
    "centre_confidence",
    "options",
    "facility",
    "facility_job_id",
    "facility_log",
    # other beamlines' products: 7.3.3's profile, 7.0.1.2's object
    "preview_profile",
    "peaks_q",
    "preview_amplitude",
    "preview_phase",
    "engine",
)
"""Entries a copy publishes again, unchanged, from its source's record where the source has
them: a result's science and provenance travel with it from the facility to home and on to
the archive, while a raw scan's copies, whose sources have none of them, carry nothing."""


def _location_metadata(settings: Settings, endpoint: str, relative: str) -> dict[str, object]:
    return {
        "endpoint": endpoint,
        "relative_path": relative,
        "path": dg.MetadataValue.path(settings.location_of(endpoint, relative)),
    }


def retention_of(settings: Settings, copy: CopyRecord) -> str:
    """When retention will prune ``copy`` and behind which copy, decided as the prune plan
    decides (``retention.plan``), for the asset's metadata."""
    days = settings.retention_days.get(copy.endpoint)
    if days is None:
        return f"kept: no retention at {copy.endpoint}"
    due = copy.made_at + days * DAY
    behind = safe_endpoints(settings, copy)
    if not behind:  # the plan's own reason for keeping it once it is due
        return f"kept: {propose(settings, {}, copy, due).reason}"
    holders = " or ".join(_asset_at(settings, endpoint, copy.dataset) for endpoint in behind)
    when = datetime.fromtimestamp(due, UTC).date().isoformat()
    span = f"{days:g} day" + ("" if days == 1 else "s")
    text = f"pruned after {span} (due {when}) once {holders} holds a verified copy"
    if needs_catalog_record(settings, copy):
        text += f" and {keys.CATALOG_RAW.to_user_string()} records the scan"
    return text


def _asset_at(settings: Settings, endpoint: str, dataset: str) -> str:
    """The asset whose copy of ``dataset`` lives on ``endpoint``, by the name people browse."""
    for key, where in asset_endpoints(settings).items():
        if where == endpoint and dataset_of(key) == dataset:
            return key.to_user_string()
    return endpoint


def _checksum_metadata(
    results: list[TransferResult], copies: list[CopyRecord | None]
) -> dict[str, object]:
    """The copy's tree digest and who measured it: this copy, where the destination could be
    hashed here, else its source, whose bytes the transfer task verified it holds. Nothing
    where neither was hashed."""
    if all(r.sha256 for r in results):
        merged = {name: digest for r in results for name, digest in r.sha256.items()}
        return {
            "sha256": tree_digest(merged),
            "sha256_of": f"this copy at {results[0].destination}",
        }
    if len(results) != 1 or copies[0] is None or copies[0].sha256 is None:
        return {}
    result, copy = results[0], copies[0]
    return {
        "sha256": copy.sha256,
        "sha256_of": f"the source at {result.source}, which task {result.task_id} verified "
        "this copy against",
    }


MANIFEST = "manifest"
"""Metadata naming a dataset's files when it has several (7.3.3's ``.txt`` and ``.edf``): each
is copied, hashed and recorded on its own, never their parent folder."""


def manifest_of(metadata: Mapping[str, Any]) -> list[str]:
    """The relative paths a copy moves: the manifest's files, else the one ``relative_path``."""
    if MANIFEST in metadata:
        return [str(path) for path in metadata[MANIFEST]]
    return [str(metadata["relative_path"])]


def ledger_dataset(key: dg.AssetKey, relative: str, manifest: bool) -> str:
    """The ledger's dataset of one copied file: the asset's dataset, and for a manifest the
    file's suffix too (``raw.txt``, ``raw.edf``), so retention verifies each file."""
    dataset = key.path[-1]
    return f"{dataset}{PurePosixPath(relative).suffix}" if manifest else dataset


def build_copy(
    settings: Settings,
    *,
    key: dg.AssetKey,
    upstreams: list[dg.AssetKey],
    destination: str,
    description: str,
    group: str,
    kinds: set[str],
    partitions_def: dg.PartitionsDefinition = scans,
    declared_by: list[dg.AssetKey] = keys.DECLARING_EXPORT_CONTROL,
) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition]:
    """A copy asset to ``destination`` from the newest of ``upstreams``, and its checksum check.
    ``declared_by`` are the assets recording the dataset's export-control flag."""
    location = key.path[0]

    @dg.asset(
        key=key,
        deps=upstreams,
        partitions_def=partitions_def,
        description=description,
        group_name=group,
        kinds=kinds,
        tags={"location": location},
        pool="globus",
        retry_policy=retry_policy(settings),
    )
    def copy_asset(
        context: dg.AssetExecutionContext, transfer: TransferResource, ledger: LedgerResource
    ) -> dg.MaterializeResult:
        source: Recorded = newest_of(context, upstreams)
        files = manifest_of(source.metadata)
        source_endpoint = str(source.metadata["endpoint"])
        controlled = export_controlled(context, declared_by)
        holder = f"copy:{context.run.run_id}:{key.to_user_string()}:{context.partition_key}"
        started = time.monotonic()
        results: list[TransferResult] = []
        copies: list[CopyRecord | None] = []
        with (
            retry_only_if_transient(f"copy to {destination}"),
            ledger.copying(holder, context.partition_key, source_endpoint, destination),
        ):
            for relative in files:
                result = transfer.copy(
                    source_endpoint,
                    destination,
                    relative,
                    label=f"{key.to_user_string()} {context.partition_key}",
                    export_controlled=controlled,
                )
                dataset = ledger_dataset(key, relative, MANIFEST in source.metadata)
                results.append(result)
                copies.append(
                    record_copy(ledger.ledger(), context, source, result, controlled, dataset)
                )
        copy = copies[0]
        return dg.MaterializeResult(
            metadata={
                **_location_metadata(settings, destination, files[0]),
                **({MANIFEST: dg.MetadataValue.json(files)} if MANIFEST in source.metadata else {}),
                **source.carried(CARRIED_FROM_SOURCE),
                "source_endpoint": source_endpoint,
                "export_control": controlled,
                "task_id": ", ".join(r.task_id for r in results),
                "size_bytes": sum(r.bytes_total for r in results),
                "bytes_transferred": sum(r.bytes_transferred for r in results),
                "files": sum(r.files_transferred + r.files_skipped for r in results),
                "files_skipped": sum(r.files_skipped for r in results),
                # Which files this copy wrote; the first hundred, a TIFF stack has thousands.
                "transferred_files": dg.MetadataValue.json(
                    [name for r in results for name in r.transferred][:100]
                ),
                **_checksum_metadata(results, copies),
                **({"retention": retention_of(settings, copy)} if copy else {}),
                "seconds": round(time.monotonic() - started, 3),
            }
        )

    @dg.asset_check(
        asset=key,
        name="copy_matches_source",
        description="The copy's sha256 equals the source's, file by file; where this machine "
        "cannot hash the copy (Globus, storage not mounted here), its file names and sizes.",
        blocking=True,
        partitions_def=partitions_def,
    )
    def copy_matches_source(
        context: dg.AssetCheckExecutionContext, transfer: TransferResource
    ) -> dg.AssetCheckResult:
        recorded = require_metadata(context, key)
        files = manifest_of(recorded)
        try:
            copy = _merged(transfer.checksums, destination, files)
        except ChecksumUnavailable:
            return _compare_sizes(transfer, recorded, destination)
        reference = _source_checksums(transfer, str(recorded["source_endpoint"]), files)
        if reference is None and "sha256" not in recorded:
            return _compare_sizes(transfer, recorded, destination)  # nothing hashed to compare
        return _compare_checksums(copy, reference, recorded, destination)

    return copy_asset, copy_matches_source


def _merged(
    measure: Callable[[str, str], dict[str, _V]], endpoint: str, files: list[str]
) -> dict[str, _V]:
    """One measurement (checksums, listing) of every file of a dataset, keyed as one."""
    merged: dict[str, _V] = {}
    for relative in files:
        merged |= measure(endpoint, relative)
    return merged


def record_copy(
    ledger: CopyLedger,
    context: dg.AssetExecutionContext,
    source: Recorded,
    result: TransferResult,
    controlled: bool,
    dataset: str,
) -> CopyRecord | None:
    """Put both ends of a verified copy in the ledger: the new copy, made now, and its source,
    first seen when its own asset was recorded. Where the destination could not be hashed
    here (Globus, not mounted), its bytes are the source's, proven by the task's checksum
    verification, so the source's digest stands for both. Returns the new copy's record."""
    scan, key = context.partition_key, context.asset_key
    digest = tree_digest(result.sha256) if result.sha256 else None
    files = result.files_transferred + result.files_skipped
    seen = CopyFacts(
        scan=scan,
        endpoint=result.source,
        dataset=dataset,
        asset_key=source.asset_key.to_user_string(),
        relative_path=result.relative_path,
        size_bytes=result.bytes_total,
        files=files,
        sha256=digest,
        made_at=source.timestamp,
        made_by="observed",  # only a copy nobody recorded yet is inserted: the detector's file
        export_controlled=controlled,
    )
    ledger.record_seen(seen)
    if digest is None:
        recorded = ledger.get(scan, result.source, dataset)
        digest = recorded.sha256 if recorded else None
    ledger.record_made(
        CopyFacts(
            scan=scan,
            endpoint=result.destination,
            dataset=dataset,
            asset_key=key.to_user_string(),
            relative_path=result.relative_path,
            size_bytes=result.bytes_total,
            files=files,
            sha256=digest,
            made_at=time.time(),
            made_by=context.run.run_id,
            export_controlled=controlled,
        )
    )
    return ledger.get(scan, result.destination, dataset)


def _differing(copy: Mapping[str, object], reference: Mapping[str, object]) -> list[str]:
    """Files missing on one side or different between the two, by name."""
    return sorted(
        name for name in set(copy) | set(reference) if copy.get(name) != reference.get(name)
    )


def _source_checksums(
    transfer: TransferResource, source: str, files: list[str]
) -> dict[str, str] | None:
    """The source's sha256 per file; None when it is gone (retention pruned it) or cannot be
    hashed from here, and only the copy's own record is left to compare with."""
    if not all(transfer.exists(source, relative) for relative in files):
        return None
    try:
        return _merged(transfer.checksums, source, files)
    except ChecksumUnavailable:
        return None


def _compare_checksums(
    copy: Mapping[str, str],
    reference: Mapping[str, str] | None,
    recorded: Mapping[str, Any],
    destination: str,
) -> dg.AssetCheckResult:
    """sha256 file by file against the source, or the copy's tree digest against the one
    recorded at copy time when the source cannot be read (then a differing copy names all of
    its files: one digest cannot tell which)."""
    if reference is not None:
        differing = _differing(copy, reference)
        passed, against = not differing, str(recorded["source_endpoint"])
    else:
        passed = tree_digest(copy) == recorded["sha256"]
        differing, against = ([] if passed else sorted(copy)), "the checksum recorded at copy time"
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "compared": "sha256",
            "compared_with": against,
            "files": len(copy),
            "differing": dg.MetadataValue.json(differing[:50]),
            "sha256": tree_digest(copy) if copy else "",
        },
        description=None if passed else f"{len(differing)} file(s) differ at {destination}",
    )


def _compare_sizes(
    transfer: TransferResource, recorded: Mapping[str, Any], destination: str
) -> dg.AssetCheckResult:
    """Names and sizes of the copy against the source's, when no hash of the copy can be made
    here. The bytes themselves were proven by Globus (verify_checksum) when the task ran; this
    catches what can happen after: a truncated, missing or extra file. Against a source that is
    gone, only the file count and total size recorded at copy time are left to compare."""
    files = manifest_of(recorded)
    source = str(recorded["source_endpoint"])
    copy = _merged(transfer.listing, destination, files)
    if all(transfer.exists(source, relative) for relative in files):
        differing = _differing(copy, _merged(transfer.listing, source, files))
        passed, against = not differing, source
    else:
        passed = (len(copy), sum(copy.values())) == (recorded["files"], recorded["size_bytes"])
        differing, against = ([] if passed else sorted(copy)), "the sizes recorded at copy time"
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "compared": "sizes",
            "compared_with": against,
            "verified_by": f"Globus verify_checksum, task {recorded['task_id']}",
            "files": len(copy),
            "size_bytes": sum(copy.values()),
            "differing": dg.MetadataValue.json(differing[:50]),
        },
        description=None
        if passed
        else f"{len(differing)} file(s) differ in name or size at {destination}: "
        + ", ".join(differing[:5]),
    )
