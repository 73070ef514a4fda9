"""Measuring a copy *now*: sha256 and size of every file, where the copy is.

A name or a size proves nothing about bytes, and a checksum recorded weeks ago proves nothing
about today. Storage mounted here is hashed here (the transfer resource); storage that is not
is hashed by a job at its facility (the compute resource), as iRODS verifies a replica with a
checksum computed by the resource holding it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bl832_assets.digests import tree_digest
from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.resources.transfer.errors import ChecksumUnavailable, PathNotFound
from bl832_assets.settings import Settings


class CannotMeasure(Exception):
    """Nothing available can hash this copy where it is."""


@dataclass(frozen=True)
class Measurement:
    files: Mapping[str, str]
    sizes: Mapping[str, int]
    how: str

    @property
    def sha256(self) -> str:
        return tree_digest(self.files)

    @property
    def size_bytes(self) -> int:
        return sum(self.sizes.values())


@dataclass(frozen=True)
class Measurer:
    """Everything that can measure a copy at some endpoint."""

    settings: Settings
    transfer: TransferResource
    computes: Mapping[str, Any]  # facility → its ComputeResource
    context: Any  # the op's context, which a facility job reports through

    def measure(self, endpoint: str, relative_path: str) -> Measurement:
        """Raises ``PathNotFound`` when nothing is there, ``CannotMeasure`` when nothing can
        hash it."""
        if not self.transfer.exists(endpoint, relative_path):
            raise PathNotFound(endpoint, relative_path)
        try:
            files = self.transfer.checksums(endpoint, relative_path)
        except ChecksumUnavailable as unavailable:
            return self._remotely(endpoint, relative_path, unavailable)
        sizes = self.transfer.listing(endpoint, relative_path)
        return Measurement(files, sizes, "sha256 here")

    def _remotely(
        self, endpoint: str, relative_path: str, unavailable: ChecksumUnavailable
    ) -> Measurement:
        facility = self.settings.endpoints[endpoint].facility
        compute = self.computes.get(facility)
        if compute is None:
            raise CannotMeasure(f"{unavailable}; and no compute resource at {facility}")
        remote = compute.checksums(self.context, endpoint, relative_path)
        return Measurement(remote.files, remote.sizes, remote.how)
