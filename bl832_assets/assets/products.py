"""A facility's product, made by a job next to its input, whatever the beamline: the claims
that keep retention off its input and output while the job runs, its record in the copy
ledger, and its materialization."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager

import dagster as dg

from bl832_assets.assets.copies import retention_of
from bl832_assets.assets.records import export_controlled
from bl832_assets.resources.compute.base import ComputeOutcome
from bl832_assets.retention.ledger import CopyFacts, CopyRecord
from bl832_assets.retention.resource import LedgerResource
from bl832_assets.settings import Settings


def claims(
    context: dg.AssetExecutionContext, reads: str, writes: str
) -> AbstractContextManager[None]:
    """While a facility job runs, its input is pinned and its output location claimed, so no
    prune removes the scan it reads or the product it is rewriting."""
    ledger: LedgerResource = context.resources.ledger
    holder = f"compute:{context.run.run_id}:{context.asset_key.to_user_string()}"
    return ledger.copying(holder, context.partition_key, reads, writes)


def record_product(
    context: dg.AssetExecutionContext,
    endpoint: str,
    output: str,
    declared_by: list[dg.AssetKey],
) -> CopyRecord | None:
    """A facility's product enters the ledger when it is made, so its scratch copy can be
    pruned even if it never comes home; a product made again replaces the record of the one
    before. Its checksum is filled in by the copy that brings it home, which hashes it.
    Returns the product's record."""
    ledger: LedgerResource = context.resources.ledger
    dataset = context.asset_key.path[-1]
    ledger.ledger().record_made(
        CopyFacts(
            scan=context.partition_key,
            endpoint=endpoint,
            dataset=dataset,
            asset_key=context.asset_key.to_user_string(),
            relative_path=output,
            size_bytes=None,
            files=None,
            sha256=None,
            made_at=time.time(),
            made_by=context.run.run_id,
            export_controlled=export_controlled(context, declared_by),
        )
    )
    return ledger.ledger().get(context.partition_key, endpoint, dataset)


def product_materialization(
    settings: Settings,
    facility: str,
    endpoint: str,
    outcome: ComputeOutcome,
    product: CopyRecord | None,
    carried: dict[str, dg.MetadataValue] | None = None,
) -> dg.MaterializeResult:
    """What a product's asset shows: the payload's report, where the output is, which job of
    which facility made it and when retention will prune it there."""
    reported = {k: v for k, v in outcome.reported.items() if k not in ("path", "seconds")}
    if "seconds" in outcome.reported:  # the payload's own time, without queue and start-up
        reported["payload_seconds"] = outcome.reported["seconds"].value
    return dg.MaterializeResult(
        metadata={
            **(carried or {}),
            **reported,
            "endpoint": endpoint,
            "relative_path": outcome.output,
            "path": dg.MetadataValue.path(settings.location_of(endpoint, outcome.output)),
            "facility": facility,
            "facility_job_id": outcome.job_id,
            "facility_log": outcome.log,
            **({"retention": retention_of(settings, product)} if product else {}),
            "seconds": round(outcome.seconds, 3),
        }
    )
