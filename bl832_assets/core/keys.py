"""A sectioned beamline's asset keys: ``<endpoint>/<dataset>``, so that every copy is its own
asset named for where it lies, unique across code locations because endpoints are unique; its
catalog records sit under ``catalog<id>`` (``catalog733``), apart from 8.3.2's ``catalog``."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from bl832_assets.beamline_settings import RAW, BeamlineSection, ProductPlacement


@dataclass(frozen=True)
class BeamlineKeys:
    name: str  # the section's name: bl733
    section: BeamlineSection

    @property
    def source(self) -> dg.AssetKey:
        return dg.AssetKey([self.section.source, RAW])

    def copy(self, endpoint: str) -> dg.AssetKey:
        return dg.AssetKey([endpoint, RAW])

    @property
    def copies(self) -> list[dg.AssetKey]:
        return [self.copy(endpoint) for endpoint in self.section.copies]

    @property
    def catalog_location(self) -> str:
        return f"catalog{self.name.removeprefix('bl')}"

    @property
    def catalog_raw(self) -> dg.AssetKey:
        return dg.AssetKey([self.catalog_location, "raw_dataset"])

    @property
    def catalog_derived(self) -> dg.AssetKey:
        return dg.AssetKey([self.catalog_location, "derived_dataset"])

    @property
    def placement(self) -> ProductPlacement:
        """Where the product is made and kept; an error for a beamline without one."""
        if self.section.product is None:
            raise ValueError(f"beamlines.{self.name}: kind {self.section.kind} has no product")
        return self.section.product

    @property
    def product(self) -> dg.AssetKey:
        """The product where the facility wrote it."""
        return dg.AssetKey([self.placement.scratch, str(self.section.product_dataset)])

    @property
    def product_home(self) -> dg.AssetKey:
        """The product's copy at home, which the derived record points at."""
        return dg.AssetKey([self.placement.home, str(self.section.product_dataset)])

    @property
    def group(self) -> str:
        return self.name
