"""The dataset catalog: the interface, the SciCat field mappings, and the local SQLite catalog.

The resources (and with them Dagster) load on first use of their names, so the beamline
packages import the records and the shared mapping rules (``records``, ``mapping``,
``move_only``) without Dagster, as they promise.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from bl832_assets.resources.catalog.errors import CatalogError, DatasetNotFound
from bl832_assets.resources.catalog.records import CatalogRecord, DatasetRecord, FileEntry

if TYPE_CHECKING:
    from bl832_assets.resources.catalog.base import CatalogResource
    from bl832_assets.resources.catalog.local import LocalCatalogResource

_RESOURCES = {"CatalogResource": "base", "LocalCatalogResource": "local"}

__all__ = [
    "CatalogError",
    "CatalogRecord",
    "CatalogResource",
    "DatasetNotFound",
    "DatasetRecord",
    "FileEntry",
    "LocalCatalogResource",
]


def __getattr__(name: str) -> Any:
    if name not in _RESOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_RESOURCES[name]}"), name)
