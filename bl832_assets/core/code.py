"""What a beamline adds to the core: how to read a dataset, how the catalog records it, and the
product it makes. A move-only beamline adds nothing (``bl832_assets.core.move_only``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import dagster as dg

from bl832_assets.beamline_settings import BeamlineSection
from bl832_assets.core.keys import BeamlineKeys
from bl832_assets.resources.catalog.base import FileEntry
from bl832_assets.settings import Settings


@dataclass(frozen=True)
class DatasetFacts:
    """What reading a settled dataset told: whether its files declare it export controlled,
    and what the source asset shows about it (shape, proposal, sample...)."""

    export_control: bool
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RawRecord:
    """A raw dataset's catalog fields, mapped by the beamline, and its pictures: the
    catalog's thumbnail (a PNG ``data:`` URI) and the UI's inline Markdown one."""

    fields: Mapping[str, Any]
    thumbnail: str | None = None
    inline: str | None = None


ProductGraph = list[dg.AssetsDefinition | dg.AssetChecksDefinition]


class BeamlineCode(Protocol):
    """The part of a beamline that is its own. Every method may raise ``ValueError`` (a
    ``ScanFormatError``) naming the file and the problem."""

    product_kinds: frozenset[str]
    """What the product is made of, as the UI tags its copies (``csv``, ``cxi``)."""

    def read(self, section: BeamlineSection, files: list[Path]) -> DatasetFacts:
        """Validate a settled dataset (its files, in the section's suffix order)."""
        ...

    def raw_record(self, section: BeamlineSection, key: str, files: list[Path]) -> RawRecord:
        """The raw dataset's catalog record, from the files on beamline storage."""
        ...

    def product(self, settings: Settings, keys: BeamlineKeys) -> ProductGraph:
        """The product asset (``keys.product``) and its checks; none for a move-only one."""
        ...

    def derived_record(
        self,
        section: BeamlineSection,
        raw: Mapping[str, Any],
        raw_pid: str,
        product: Mapping[str, Any],
        files: list[FileEntry],
    ) -> Mapping[str, Any]:
        """The product's catalog fields: ``raw`` is the raw record as catalogued, ``product``
        the product asset's metadata, ``files`` its copy at home."""
        ...
