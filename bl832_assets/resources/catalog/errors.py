"""Catalog errors as types, so an asset can tell a missing input from a broken catalog."""

from __future__ import annotations


class CatalogError(Exception):
    """Base of every error the catalog resources raise."""


class DatasetNotFound(CatalogError):
    """A dataset an ingest depends on (the raw input of a derived one) is not catalogued."""

    def __init__(self, pid: str) -> None:
        self.pid = pid
        super().__init__(f"no dataset with pid {pid!r} in the catalog")
