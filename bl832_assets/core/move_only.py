"""The code of a beamline that has none: its datasets are files that are checked readable and
non-empty, copied, catalogued from settings and pruned, and nothing is made from them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bl832_assets.beamline_settings import BeamlineSection
from bl832_assets.core.code import DatasetFacts, ProductGraph, RawRecord
from bl832_assets.core.keys import BeamlineKeys
from bl832_assets.resources.catalog.base import FileEntry
from bl832_assets.resources.catalog.move_only import raw_fields
from bl832_assets.science.errors import ScanFormatError
from bl832_assets.settings import Settings

HDF5_SUFFIXES = (".h5", ".hdf5", ".nxs", ".cxi")


class MoveOnly:
    """``BeamlineCode`` from settings alone."""

    product_kinds = frozenset()

    def read(self, section: BeamlineSection, files: list[Path]) -> DatasetFacts:
        for path in files:
            if path.stat().st_size == 0:
                raise ScanFormatError(path, "dataset", "empty file")
            if path.suffix in HDF5_SUFFIXES:
                _check_hdf5(path)
            else:
                with path.open("rb") as stream:  # unreadable (permissions) says so here
                    stream.read(1)
        return DatasetFacts(export_control=False, metadata={"files": len(files)})

    def raw_record(self, section: BeamlineSection, key: str, files: list[Path]) -> RawRecord:
        entries = [FileEntry(str(p), p.stat().st_size, p.stat().st_mtime, "") for p in files]
        return RawRecord(raw_fields(section.id, key, entries, section.catalog))

    def product(self, settings: Settings, keys: BeamlineKeys) -> ProductGraph:
        return []

    def derived_record(
        self,
        section: BeamlineSection,
        raw: Mapping[str, Any],
        raw_pid: str,
        product: Mapping[str, Any],
        files: list[FileEntry],
    ) -> Mapping[str, Any]:
        raise ValueError(f"beamline {section.id} moves data only: it has no derived dataset")


def _check_hdf5(path: Path) -> None:
    """An HDF5 file h5py can open: a truncated or still-open file is refused by name."""
    from bl832_assets.science.hdf5 import open_readable

    def refuse(where: Path, error: OSError) -> ScanFormatError:
        return ScanFormatError(where, "HDF5", f"not a readable HDF5 file ({error})")

    with open_readable(path, refuse):
        pass
