"""Which assets a sectioned beamline's dataset gets, and its export-control rule: policy as
data, per beamline. ``refuse`` (7.3.3) turns the dataset away before anything is registered;
``skip_offsite`` (8.3.2's rule, 7.0.1.2 here) keeps every copy, record and job on site."""

from __future__ import annotations

from fnmatch import fnmatch

import dagster as dg

from bl832_assets.core.keys import BeamlineKeys
from bl832_assets.settings import Settings


class ExportControlRefused(ValueError):
    """An export-controlled dataset at a beamline whose rule is to refuse it."""


def listed_as_controlled(keys: BeamlineKeys, relative_paths: list[str]) -> bool:
    """Whether the section's ``export_control.paths`` patterns name one of the files."""
    patterns = keys.section.export_control.paths
    return any(fnmatch(path, pattern) for path in relative_paths for pattern in patterns)


def decide_dataset(
    settings: Settings, keys: BeamlineKeys, *, export_control: bool
) -> frozenset[dg.AssetKey]:
    """Every copy, the raw record, and the product with its home copy and derived record; for
    an export-controlled dataset only what stays on site, or nothing at all (``refuse``)."""
    section = keys.section
    if export_control and section.export_control.action == "refuse":
        raise ExportControlRefused(
            f"export controlled, and beamline {section.id} refuses such datasets "
            "(beamlines.<name>.export_control.action: refuse): nothing is registered or copied"
        )
    onsite = {name for name, endpoint in settings.endpoints.items() if endpoint.onsite}
    chosen = {keys.copy(e) for e in section.copies if not export_control or e in onsite}
    catalogued = section.catalog.enabled and (not export_control or settings.catalog.onsite)
    if catalogued:
        chosen.add(keys.catalog_raw)
    product = section.product
    if product is not None and (
        not export_control or {product.input, product.scratch, product.home} <= onsite
    ):
        chosen |= {keys.product, keys.product_home}
        if catalogued:
            chosen.add(keys.catalog_derived)
    return frozenset(chosen)
