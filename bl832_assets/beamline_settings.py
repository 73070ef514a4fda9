"""A beamline other than 8.3.2 as data: where its datasets arrive, where they are copied, what
is kept how long behind which copy, what export control does, how the catalog records them and
which product (if any) the beamline's own code makes.

A section with ``kind: move_only`` needs no Python at all (upstream's template beamlines: copy
to staging and NERSC, catalog, prune, flight check); ``saxs`` (7.3.3) and ``ptychography``
(7.0.1.2) name the beamline code that adds its product. 8.3.2 is the site's top level, so a
settings file written before beamlines had sections still loads as 8.3.2 alone.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from bl832_assets.beamlines.bl733.settings import IntegrationSettings
from bl832_assets.beamlines.bl7012.settings import PtychographySettings
from bl832_assets.settings_parts import SensorSettings, Strict

_DOTTED_ID = re.compile(r"^\d+(\.\d+){1,3}$")
_NAME = re.compile(r"^bl[0-9a-z]+$")
RAW = "dataset"
"""The raw dataset's name in asset keys and the copy ledger, for every sectioned beamline."""
PRODUCTS = {"saxs": "profile", "ptychography": "ptycho"}
"""The product dataset's name of each kind of beamline code."""


class ExportControlPolicy(Strict):
    """What happens to an export-controlled dataset, and which datasets are.

    8.3.2's rule (``skip_offsite``: copies stay on site) is the site's; 7.3.3's upstream
    dispatcher refuses the dataset outright (``refuse``: nothing is registered or copied)."""

    action: Literal["refuse", "skip_offsite"] = Field(
        default="refuse", description="refuse the dataset, or keep every copy on site."
    )
    paths: list[str] = Field(
        default_factory=list,
        description="Glob patterns, relative to the source endpoint, of export-controlled "
        "datasets (e.g. a proposal's folder); the beamline's reader may flag others from "
        "their files.",
    )


class CatalogMapping(Strict):
    """The beamline's catalog records: whether there are any, and for a move-only beamline
    (which has no code to read its files) everything they say beyond the files themselves."""

    enabled: bool = Field(default=True, description="Record each dataset in the catalog.")
    owner_group: str | None = Field(
        default=None, description="SciCat group owning the datasets; unset: the beamline's id."
    )
    access_groups: list[str] = Field(
        default_factory=list,
        description="Groups that may also see them; the beamline's own group always may.",
    )
    keywords: list[str] = Field(
        default_factory=list, description="Keywords of every dataset, e.g. the technique."
    )
    instrument: str | None = Field(
        default=None, description="creationLocation; unset: 'ALS <beamline id>'."
    )
    data_format: str | None = Field(default=None, description="dataFormat, e.g. 'HDF5'.")
    principal_investigator: str | None = Field(
        default=None, description="PI recorded for every dataset; unset: 'unknown'."
    )
    contact_email: str | None = Field(
        default=None, description="Contact address, e.g. the beamline scientists' list."
    )


class ProductPlacement(Strict):
    """Where the beamline's product is made and kept: read from the facility copy ``input``,
    written on ``scratch`` by a job of ``facility``, and copied ``home``."""

    facility: str = Field(default="nersc", description="The compute facility (hpc key).")
    input: str = Field(description="Endpoint of the raw copy the job reads.")
    scratch: str = Field(description="Endpoint the job writes its output on.")
    home: str = Field(description="Endpoint the output is copied back to, and catalogued from.")


class BeamlineSection(Strict):
    """One beamline served by the shared core (see the module docstring)."""

    id: str = Field(description="The beamline's dotted id: 7.3.3, 7.0.1.2.")
    kind: Literal["move_only", "saxs", "ptychography"] = Field(
        default="move_only", description="Which beamline code adds a product, if any."
    )
    source: str = Field(description="Endpoint the instrument writes to; watched for datasets.")
    dataset: Literal["file", "pair"] = Field(
        default="file",
        description="A dataset is one file, or a pair of files sharing a stem (one per suffix).",
    )
    suffixes: list[str] = Field(
        default_factory=lambda: [".h5"],
        min_length=1,
        description="Suffixes of a dataset's files: any of them for 'file', each for 'pair'.",
    )
    skip_names: list[str] = Field(
        default_factory=list,
        description="Name fragments of files that are never data (alignment shots).",
    )
    copies: list[str] = Field(
        min_length=1, description="Endpoints each dataset is copied to from the source."
    )
    export_control: ExportControlPolicy = Field(default_factory=ExportControlPolicy)
    retention_days: dict[str, float] = Field(
        default_factory=dict, description="Endpoint → days its copies are kept."
    )
    safe_copies: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Endpoint → endpoints where a verified copy allows deleting this one.",
    )
    catalog: CatalogMapping = Field(default_factory=CatalogMapping)
    product: ProductPlacement | None = Field(
        default=None, description="Where the product is made (saxs, ptychography)."
    )
    integration: IntegrationSettings | None = Field(
        default=None, description="7.3.3's azimuthal integration (kind saxs)."
    )
    ptychography: PtychographySettings | None = Field(
        default=None, description="7.0.1.2's reconstruction (kind ptychography)."
    )
    sensor: SensorSettings = Field(default_factory=SensorSettings)

    @model_validator(mode="after")
    def _consistent(self) -> BeamlineSection:
        if not _DOTTED_ID.match(self.id):
            raise ValueError(f"id: {self.id!r} is not a dotted beamline id such as 7.0.1.2")
        if self.dataset == "pair" and len(self.suffixes) != 2:
            raise ValueError("suffixes: a pair has exactly two suffixes")
        if any(not s.startswith(".") or s.lower() != s for s in self.suffixes):
            raise ValueError("suffixes: each starts with '.' and is lower case")
        wants_product = self.kind != "move_only"
        if wants_product != (self.product is not None):
            raise ValueError(
                f"product: kind {self.kind} {'needs' if wants_product else 'has no'} one"
            )
        if (self.kind == "saxs") != (self.integration is not None):
            raise ValueError("integration: set for kind saxs, and only for it")
        if (self.kind == "ptychography") != (self.ptychography is not None):
            raise ValueError("ptychography: set for kind ptychography, and only for it")
        if self.source in self.copies:
            raise ValueError("copies: the source cannot be a copy of itself")
        return self

    def endpoints(self) -> list[str]:
        """Every endpoint the beamline uses, the source first."""
        named = [self.source, *self.copies]
        if self.product is not None:
            named += [self.product.input, self.product.scratch, self.product.home]
        return list(dict.fromkeys(named))

    @property
    def product_dataset(self) -> str | None:
        return PRODUCTS.get(self.kind)

    def raw_datasets(self) -> list[str]:
        """The ledger's dataset names of a raw copy: one per file of a pair, so that each file
        is hashed, verified and pruned on its own record."""
        if self.dataset == "pair":
            return [f"{RAW}{suffix}" for suffix in self.suffixes]
        return [RAW]


def beamline_datasets(section: BeamlineSection) -> dict[str, list[str]]:
    """Endpoint → the ledger datasets the beamline keeps there: what its retention applies to."""
    held: dict[str, list[str]] = {}
    for endpoint in [section.source, *section.copies]:
        held.setdefault(endpoint, []).extend(section.raw_datasets())
    if section.product is not None and section.product_dataset is not None:
        for endpoint in (section.product.scratch, section.product.home):
            held.setdefault(endpoint, []).append(section.product_dataset)
    return held


def check_name(name: str) -> None:
    """A section's name is its code location's and its jobs' prefix: ``bl`` and letters or
    digits, so that it is a valid Dagster name and cannot collide with 8.3.2's."""
    if not _NAME.match(name) or name == "bl832":
        raise ValueError(
            f"beamlines.{name}: a section is named bl<id> without dots (bl733, bl7012), "
            "and 8.3.2 is the site's top level"
        )
