"""A sectioned beamline's catalog records: the raw dataset, registered from an on-site copy
that outlives the source's retention, and the product's derived dataset, linked to it. The
beamline's code maps the fields; the core collects files, checksums and links, the same way
for every beamline."""

import time
from pathlib import Path

import dagster as dg

from bl832_assets.assets.catalog import file_entries, record_metadata
from bl832_assets.assets.copies import manifest_of
from bl832_assets.assets.failures import retry_only_if_transient, retry_policy
from bl832_assets.assets.records import newest_of, require_metadata
from bl832_assets.core.code import BeamlineCode
from bl832_assets.core.keys import BeamlineKeys
from bl832_assets.partitions import beamline_partitions
from bl832_assets.resources.catalog.base import CatalogResource, DatasetRecord, FileEntry
from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.settings import Settings


def registered_from(settings: Settings, keys: BeamlineKeys) -> str:
    """The copy a raw record points at: the first on-site copy this machine sees (upstream's
    7.3.3 registers from BeeGFS staging), else the source itself."""
    section = keys.section
    for endpoint in section.copies:
        if settings.endpoints[endpoint].onsite and settings.visible(endpoint):
            return endpoint
    return section.source


def _files(
    transfer: TransferResource, endpoint: str, root: Path, paths: list[str]
) -> list[FileEntry]:
    """Datablock entries of the files (or folders) at ``paths`` with their sha256 measured
    where they lie: the copy's own record holds one digest for all of them."""
    entries: list[FileEntry] = []
    for relative in paths:
        location = root / relative
        checksums = transfer.checksums(endpoint, relative)
        entries += file_entries(location, checksums)
    return entries


def build_beamline_catalog(
    settings: Settings, keys: BeamlineKeys, code: BeamlineCode
) -> list[dg.AssetsDefinition]:
    """The raw record, and for a beamline with a product, its derived record."""
    section = keys.section
    partitions = beamline_partitions(keys.name)
    policy = retry_policy(settings)
    home = registered_from(settings, keys)
    home_key = keys.source if home == section.source else keys.copy(home)
    tags = {"location": keys.catalog_location}

    @dg.asset(
        key=keys.catalog_raw,
        deps=[home_key],
        partitions_def=partitions,
        group_name=keys.group,
        kinds={"scicat"},
        tags=tags,
        retry_policy=policy,
        description=f"The {section.id} dataset's raw catalog record, from its copy on {home}: "
        "owner, proposal and scientific metadata read from its files.",
    )
    def raw_dataset(
        context: dg.AssetExecutionContext, catalog: CatalogResource, transfer: TransferResource
    ) -> dg.MaterializeResult:
        started = time.monotonic()
        copy = require_metadata(context, home_key)
        root = settings.root(home)
        relatives = manifest_of(copy)
        # The mapping and the checksums too: a file the mapping cannot read fails once.
        with retry_only_if_transient(f"catalog {section.id} raw dataset"):
            mapped = code.raw_record(section, context.partition_key, [root / r for r in relatives])
            record = DatasetRecord(
                beamline=section.id,
                key=context.partition_key,
                kind="raw",
                fields=mapped.fields,
                files=tuple(_files(transfer, home, root, relatives)),
                thumbnail=mapped.thumbnail,
            )
            result = catalog.ingest_dataset(record)
        shown = {"thumbnail": dg.MetadataValue.md(mapped.inline)} if mapped.inline else {}
        return dg.MaterializeResult(
            metadata={**record_metadata(settings, result, started), **shown}
        )

    if section.product is None:
        return [raw_dataset]
    product_home = section.product.home

    @dg.asset(
        key=keys.catalog_derived,
        deps=[keys.catalog_raw, keys.product_home],
        partitions_def=partitions,
        group_name=keys.group,
        kinds={"scicat"},
        tags=tags,
        retry_policy=policy,
        description=f"The {section.id} product's derived catalog record, linked to the raw one.",
    )
    def derived_dataset(
        context: dg.AssetExecutionContext, catalog: CatalogResource, transfer: TransferResource
    ) -> dg.MaterializeResult:
        started = time.monotonic()
        raw = require_metadata(context, keys.catalog_raw)
        product = newest_of(context, [keys.product]).metadata
        at_home = require_metadata(context, keys.product_home)
        relatives = manifest_of(at_home)
        pid = str(raw["pid"])
        catalogued = catalog.get(pid)
        if catalogued is None:
            raise dg.Failure(
                description=f"raw record {pid} is not in the catalog; materialize "
                f"{keys.catalog_raw.to_user_string()} again first",
                allow_retries=False,
            )
        home_root = settings.root(product_home)
        folder = home_root / relatives[0]
        # The mapping too: a run it cannot describe fails once, not after every retry's delay.
        with retry_only_if_transient(f"catalog {section.id} derived dataset"):
            files = _files(transfer, product_home, home_root, relatives)
            fields = code.derived_record(section, catalogued, pid, product, files)
            record = DatasetRecord(
                beamline=section.id,
                key=context.partition_key,
                kind="derived",
                # The copy at home is what people open, wherever the facility wrote it first.
                fields={
                    **fields,
                    "sourceFolder": str(folder if folder.is_dir() else folder.parent),
                },
                files=tuple(files),
            )
            result = catalog.ingest_dataset(record)
        return dg.MaterializeResult(metadata=record_metadata(settings, result, started))

    return [raw_dataset, derived_dataset]
