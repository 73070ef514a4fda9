"""A sectioned beamline's product: made by a job of its facility from the facility's raw copy,
recorded in the ledger, then copied home. The beamline's code says which job (the payload
command, or a GPU batch job); the rest is the same for every beamline, and for 8.3.2's
reconstructions (``assets/products.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

import dagster as dg

from bl832_assets.assets.copies import build_copy, manifest_of
from bl832_assets.assets.failures import retry_only_if_transient, retry_policy
from bl832_assets.assets.products import claims, product_materialization, record_product
from bl832_assets.assets.records import require_metadata
from bl832_assets.core.keys import BeamlineKeys
from bl832_assets.partitions import beamline_partitions
from bl832_assets.resources.compute.base import ComputeOutcome, ComputeResource
from bl832_assets.settings import Settings

ProductJob = Callable[[ComputeResource, list[str], str], ComputeOutcome]
"""(the facility, the raw copy's files relative to its endpoint, the output folder relative to
the scratch endpoint) → the finished job."""


def product_asset_options(
    settings: Settings, keys: BeamlineKeys, *, kinds: set[str], description: str
) -> dict[str, Any]:
    """The ``dg.asset`` arguments of a beamline's product asset."""
    placement = keys.placement
    return {
        "key": keys.product,
        "deps": [keys.copy(placement.input)],
        "partitions_def": beamline_partitions(keys.name),
        "group_name": keys.group,
        "kinds": {*kinds, placement.facility},
        "tags": {"location": placement.scratch},
        "pool": placement.facility,
        "required_resource_keys": {placement.facility, "ledger"},
        "retry_policy": retry_policy(settings),
        "description": description,
    }


def output_folder(first_input: str, key: str) -> str:
    """``<the dataset's folder>/<key>``: one folder per dataset, beside where its raw copy
    lies, so a product never mixes with another dataset's."""
    return (PurePosixPath(first_input).parent / key).as_posix()


def run_product(
    settings: Settings, keys: BeamlineKeys, context: dg.AssetExecutionContext, job: ProductJob
) -> dg.MaterializeResult:
    """Run ``job`` on the dataset's raw copy at the facility, with the input pinned and the
    output claimed against retention, and record what it made."""
    placement = keys.placement
    inputs = manifest_of(require_metadata(context, keys.copy(placement.input)))
    output = output_folder(inputs[0], context.partition_key)
    compute: ComputeResource = getattr(context.resources, placement.facility)
    with (
        retry_only_if_transient(f"{keys.section.id} {keys.product.path[-1]}"),
        claims(context, placement.input, placement.scratch),
    ):
        outcome = job(compute, inputs, output)
        product = record_product(context, placement.scratch, outcome.output, [keys.source])
    return product_materialization(
        settings, placement.facility, placement.scratch, outcome, product
    )


def build_product_home(
    settings: Settings, keys: BeamlineKeys, kinds: set[str]
) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition]:
    """The product's copy at home, verified against the facility's."""
    placement = keys.placement
    return build_copy(
        settings,
        key=keys.product_home,
        upstreams=[keys.product],
        destination=placement.home,
        description=f"The {keys.section.id} product brought home to {placement.home}, with "
        "its checksum verified; the copy the derived record points at.",
        group=keys.group,
        kinds=kinds,
        partitions_def=beamline_partitions(keys.name),
        declared_by=[keys.source],
    )
