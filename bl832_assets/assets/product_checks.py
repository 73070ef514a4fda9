"""Checks on reconstruction products, attached to every TIFF stack and every pyramid asset,
at the facility and at home alike."""

from pathlib import Path

import dagster as dg

from bl832_assets import keys
from bl832_assets.assets.records import newest_of, require_metadata
from bl832_assets.partitions import scans
from bl832_assets.science.options import ReconOptions
from bl832_assets.science.verify import halves, inspect_tiff_stack, pyramid_level_shapes


def _expected_slices(
    context: dg.AssetCheckExecutionContext, recorded: dict, reconstructions: list[dg.AssetKey]
) -> int:
    """Slices the options used promise for the detector rows of the scan reconstructed, as
    the reconstruction recorded them (a copy brought home may carry the options only).
    Reconstructions made before they reported the rows fall back to the detector's record."""
    if "options" not in recorded or "detector_rows" not in recorded:
        recorded = dict(newest_of(context, reconstructions).metadata)
    if "detector_rows" in recorded:
        rows = int(recorded["detector_rows"])
    else:
        rows = int(require_metadata(context, keys.DETECTOR_RAW)["shape"][1])
    return ReconOptions.from_mapping(dict(recorded["options"])).output_slices(rows)


def tiff_stack_check(
    asset_key: dg.AssetKey, reconstructions: list[dg.AssetKey]
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key,
        name="slices_complete_and_finite",
        description="One TIFF per reconstructed detector row, none holding NaN or infinity.",
        blocking=True,
        partitions_def=scans,
    )
    def check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        recorded = dict(require_metadata(context, asset_key))
        folder = Path(str(recorded["path"]))
        expected = _expected_slices(context, recorded, reconstructions)
        report = inspect_tiff_stack(folder)
        passed = report.slices == expected and not report.non_finite_slices
        return dg.AssetCheckResult(
            passed=passed,
            metadata={
                "slices": report.slices,
                "expected_slices": expected,
                "non_finite_slices": dg.MetadataValue.json(report.non_finite_slices[:50]),
                "slice_shapes": dg.MetadataValue.json(sorted(report.shapes)),
            },
        )

    return check


def pyramid_check(asset_key: dg.AssetKey) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key,
        name="levels_open_and_halve",
        description="Every pyramid level opens and halves the previous level's shape.",
        blocking=True,
        partitions_def=scans,
    )
    def check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        store = Path(str(require_metadata(context, asset_key)["path"]))
        try:
            shapes = pyramid_level_shapes(store)
        except (OSError, ValueError, KeyError) as exc:
            return dg.AssetCheckResult(
                passed=False, description=f"{store}: {exc}", metadata={"levels": 0}
            )
        return dg.AssetCheckResult(
            passed=bool(shapes) and halves(shapes),
            metadata={"levels": len(shapes), "shapes": dg.MetadataValue.json(shapes)},
        )

    return check
