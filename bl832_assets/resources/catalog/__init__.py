"""The dataset catalog: the interface, the SciCat field mapping, and the local SQLite catalog."""

from bl832_assets.resources.catalog.base import CatalogRecord, CatalogResource, FileEntry
from bl832_assets.resources.catalog.errors import CatalogError, DatasetNotFound
from bl832_assets.resources.catalog.local import LocalCatalogResource

__all__ = [
    "CatalogError",
    "CatalogRecord",
    "CatalogResource",
    "DatasetNotFound",
    "FileEntry",
    "LocalCatalogResource",
]
