"""7.3.3's part of its code location: a dataset is a ``.txt`` header and ``.edf`` image pair,
read for proposal, PI and export control; its record maps as ``als733_saxs`` should have; its
product is the azimuthal integration of the image, run by the facility's compute resource
(a local process, or a NERSC job through the SF API) and checked once it is home."""

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
from PIL import Image

from bl832_assets.assets.copies import manifest_of
from bl832_assets.assets.records import require_metadata
from bl832_assets.beamline_settings import BeamlineSection
from bl832_assets.beamlines.bl733.dataset import Pair
from bl832_assets.core.code import DatasetFacts, ProductGraph, RawRecord
from bl832_assets.core.keys import BeamlineKeys
from bl832_assets.core.product import product_asset_options, run_product
from bl832_assets.resources.catalog.base import FileEntry
from bl832_assets.resources.compute.base import ComputeOutcome, ComputeResource, PayloadJob
from bl832_assets.settings import Settings

EXPORT_CONTROL_KEYS = ("export control", "export controlled")
"""Header lines by which the control program marks a dataset export controlled."""
YES = frozenset({"yes", "y", "true", "1"})
MIN_POINTS = 10


def _pair(files: list[Path]) -> Pair:
    text, image = files
    return Pair(text.parent, text.stem, text, image)


class Saxs:
    """``BeamlineCode`` of 7.3.3."""

    product_kinds = frozenset({"csv", "png"})

    def read(self, section: BeamlineSection, files: list[Path]) -> DatasetFacts:
        from bl832_assets.beamlines.bl733.readers import field_value, read_metadata

        metadata = read_metadata(_pair(files))
        text_fields = {k: v for k, v in metadata.scientific.items() if isinstance(v, str | list)}
        flag = field_value(text_fields, EXPORT_CONTROL_KEYS).strip().lower()
        return DatasetFacts(
            export_control=flag in YES,
            metadata={
                "proposal": metadata.proposal,
                "pi": metadata.pi,
                "image_shape": list(metadata.shape),
                "dtype": metadata.dtype,
            },
        )

    def raw_record(self, section: BeamlineSection, key: str, files: list[Path]) -> RawRecord:
        from bl832_assets.beamlines.bl733.catalog import raw_fields
        from bl832_assets.beamlines.bl733.readers import read_pair
        from bl832_assets.beamlines.bl733.thumbnail import write_thumbnail
        from bl832_assets.science.preview import data_uri, inline_markdown

        text, frame = read_pair(_pair(files))
        geometry = section.integration.geometry if section.integration else None
        fields = raw_fields(text, frame, frame.path.stat().st_mtime, geometry)
        with tempfile.TemporaryDirectory() as scratch:
            png = write_thumbnail(frame.data, Path(scratch) / "thumbnail.png")
            with Image.open(png) as picture:
                inline = inline_markdown(picture.convert("L"), "scattering image")
            return RawRecord(fields, thumbnail=data_uri(png), inline=inline)

    def product(self, settings: Settings, keys: BeamlineKeys) -> ProductGraph:
        section = keys.section
        integration = section.integration
        placement = keys.placement
        assert integration is not None  # the section's validator ties it to kind saxs

        @dg.asset(
            **product_asset_options(
                settings,
                keys,
                kinds={"csv", "pyfai"},
                description="The image's azimuthal integration (pyFAI) into I(q), with its "
                "plot and peaks, made next to the facility's copy of the pair.",
            )
        )
        def profile(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
            def integrate(
                compute: ComputeResource, inputs: list[str], output: str
            ) -> ComputeOutcome:
                job = PayloadJob(
                    step="integrate",
                    inputs=((placement.input, inputs[0]),),
                    output_endpoint=placement.scratch,
                    output=output,
                    options=tuple(integration.options()),
                )
                return compute.run_payload(context, job)

            return run_product(settings, keys, context, integrate)

        @dg.asset_check(
            asset=keys.product_home,
            name="profile_is_sound",
            description="The profile at home has enough q bins, q rising, intensities finite "
            "and at least one peak: an integration that really integrated.",
            partitions_def=profile.partitions_def,
        )
        def profile_is_sound(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
            from bl832_assets.beamlines.bl733.integrate import find_peaks, read_profile

            at_home = require_metadata(context, keys.product_home)
            folder = settings.root(placement.home) / manifest_of(at_home)[0]
            found = sorted(folder.glob("*_profile.csv"))
            if not found:
                return dg.AssetCheckResult(
                    passed=False, description=f"no *_profile.csv in {folder}"
                )
            curve = read_profile(found[0])
            problems = []
            if curve.q.size < MIN_POINTS:
                problems.append(f"{curve.q.size} q bins")
            if not np.all(np.diff(curve.q) > 0):
                problems.append("q does not rise")
            if not np.all(np.isfinite(curve.intensity)):
                problems.append("intensities not finite")
            peaks = find_peaks(curve) if not problems else np.array([])
            if not problems and peaks.size == 0:
                problems.append("no peak")
            return dg.AssetCheckResult(
                passed=not problems,
                description="; ".join(problems) or None,
                metadata={
                    "profile": dg.MetadataValue.path(str(found[0])),
                    "points": int(curve.q.size),
                    "peaks_q": dg.MetadataValue.json([round(float(p), 6) for p in peaks]),
                },
            )

        return [profile, profile_is_sound]

    def derived_record(
        self,
        section: BeamlineSection,
        raw: Mapping[str, Any],
        raw_pid: str,
        product: Mapping[str, Any],
        files: list[FileEntry],
    ) -> Mapping[str, Any]:
        from bl832_assets.beamlines.bl733.catalog import integration_fields

        return integration_fields(raw, raw_pid, product, files)
