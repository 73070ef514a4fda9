"""7.0.1.2's part of its code location: a dataset is one CXI scan; its product is the
ptychographic reconstruction, run where the facility's backend says: upstream's tools
(ptychocam, cdtools) as a GPU Slurm job through the SF API, or the CPU engine (mPIE) on the
local backend. Either way the result is ``<stem>_recon.cxi`` (the scan with the object appended
as ``entry_1/image_<n>``, as upstream's tools write it), checked written and finite once home,
with previews of the object's amplitude and phase.

No ``from __future__ import annotations`` here: the asset's run config is a class made from the
site's settings, and Dagster reads the annotation as the class itself.
"""

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import dagster as dg

from bl832_assets.assets.copies import manifest_of
from bl832_assets.assets.records import require_metadata
from bl832_assets.beamline_settings import BeamlineSection, ProductPlacement
from bl832_assets.beamlines.bl7012.params import GpuJobSettings, PtychoRunConfig, job_commands
from bl832_assets.beamlines.bl7012.run_config import parameters, ptycho_config_class
from bl832_assets.core.code import DatasetFacts, ProductGraph, RawRecord
from bl832_assets.core.keys import BeamlineKeys
from bl832_assets.core.product import product_asset_options, run_product
from bl832_assets.resources.catalog.base import FileEntry
from bl832_assets.resources.compute.base import (
    BatchJob,
    ComputeOutcome,
    ComputeResource,
    PayloadJob,
)
from bl832_assets.settings import Settings

RECON_SUFFIX = "_recon.cxi"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def recon_name(scan: str) -> str:
    return f"{PurePosixPath(scan).stem}{RECON_SUFFIX}"


class Ptychography:
    """``BeamlineCode`` of 7.0.1.2."""

    product_kinds = frozenset({"cxi", "png"})

    def read(self, section: BeamlineSection, files: list[Path]) -> DatasetFacts:
        from bl832_assets.beamlines.bl7012.cxi import read_header

        header = read_header(files[0])
        return DatasetFacts(
            export_control=False,  # a CXI file declares nothing; the section's paths may
            metadata={
                "frames": header.frames,
                "frame_shape": list(header.frame_shape),
                "energy_ev": round(header.energy_ev, 3),
            },
        )

    def raw_record(self, section: BeamlineSection, key: str, files: list[Path]) -> RawRecord:
        from bl832_assets.beamlines.bl7012.catalog import raw_fields
        from bl832_assets.beamlines.bl7012.cxi import read_header

        path = files[0]
        return RawRecord(raw_fields(path, read_header(path), path.stat().st_mtime))

    def product(self, settings: Settings, keys: BeamlineKeys) -> ProductGraph:
        section = keys.section
        placement = keys.placement
        defaults = section.ptychography
        assert defaults is not None  # the section's validator ties it to kind ptychography
        PtychoConfig = ptycho_config_class(defaults)  # a class made from the site's settings
        on_gpus = getattr(settings.backends, placement.facility) == "sfapi"

        @dg.asset(
            **product_asset_options(
                settings,
                keys,
                kinds={"cxi", "gpu" if on_gpus else "cpu"},
                description="The scan's ptychographic reconstruction, <stem>_recon.cxi: "
                + (
                    "upstream's tools as a GPU Slurm job at NERSC."
                    if on_gpus
                    else "the CPU engine (mPIE) on the local backend."
                ),
            )
        )
        def ptycho(context: dg.AssetExecutionContext, config: PtychoConfig) -> dg.MaterializeResult:
            tools, pie = parameters(config)

            def reconstruct(
                compute: ComputeResource, inputs: list[str], output: str
            ) -> ComputeOutcome:
                if not on_gpus:
                    return compute.run_payload(
                        context,
                        PayloadJob(
                            step="ptycho",
                            inputs=((placement.input, inputs[0]),),
                            output_endpoint=placement.scratch,
                            output=output,
                            options=("--params", pie.model_dump_json()),
                        ),
                    )
                return _gpu_job(context, compute, placement, defaults.gpu, tools, inputs[0], output)

            return run_product(settings, keys, context, reconstruct)

        @dg.asset_check(
            asset=keys.product_home,
            name="reconstruction_is_sound",
            description="The reconstruction at home holds a complex 2-D object, every value "
            "finite; shows the object's amplitude and phase.",
            partitions_def=ptycho.partitions_def,
            blocking=True,
        )
        def reconstruction_is_sound(
            context: dg.AssetCheckExecutionContext,
        ) -> dg.AssetCheckResult:
            from bl832_assets.beamlines.bl7012.checks import check_finite, check_written
            from bl832_assets.beamlines.bl7012.cxi import read_image
            from bl832_assets.beamlines.bl7012.preview import inline_object_previews

            at_home = require_metadata(context, keys.product_home)
            path = (
                settings.root(placement.home)
                / manifest_of(at_home)[0]
                / recon_name(context.partition_key)
            )
            outcomes = [check_written(path), check_finite(path)]
            passed = all(o.passed for o in outcomes)
            shown = (
                {
                    k: dg.MetadataValue.md(v)
                    for k, v in inline_object_previews(read_image(path)).items()
                }
                if passed
                else {}
            )
            return dg.AssetCheckResult(
                passed=passed,
                description="; ".join(o.description for o in outcomes),
                metadata={
                    "path": dg.MetadataValue.path(str(path)),
                    **{k: v for o in outcomes for k, v in o.metadata.items() if k != "image"},
                    **shown,
                },
            )

        return [ptycho, reconstruction_is_sound]

    def derived_record(
        self,
        section: BeamlineSection,
        raw: Mapping[str, Any],
        raw_pid: str,
        product: Mapping[str, Any],
        files: list[FileEntry],
    ) -> Mapping[str, Any]:
        from bl832_assets.beamlines.bl7012.catalog import reconstruction_fields

        return reconstruction_fields(raw, raw_pid, _what_was_made(product, files), files)


def _gpu_job(
    context: dg.AssetExecutionContext,
    compute: ComputeResource,
    placement: ProductPlacement,
    gpu: GpuJobSettings,
    tools: PtychoRunConfig,
    scan: str,
    output: str,
) -> ComputeOutcome:
    """Upstream's tools on a GPU node, on a copy of the scan in the output folder."""

    target = compute.facility_path(placement.scratch, f"{output}/{recon_name(scan)}")
    commands = [
        ("mkdir", "-p", compute.facility_path(placement.scratch, output)),
        # upstream's tools write into the file they read: a copy, never the raw scan
        ("cp", compute.facility_path(placement.input, scan), target),
        *(tuple(c) for c in job_commands(tools, gpu, target).values()),
    ]
    chosen = [t for t in ("cdtools", "ptychocam") if getattr(tools, f"do_{t}")]
    job = BatchJob(
        name=_UNSAFE.sub("_", f"ptycho_{PurePosixPath(scan).stem}"),
        commands=tuple(commands),
        output_endpoint=placement.scratch,
        output=output,
        slurm={
            "account": gpu.account,
            "qos": gpu.qos,
            "constraint": gpu.constraint,
            "gpus": str(gpu.gpus),
            "time_limit": gpu.time_limit,
        },
    )
    outcome = compute.run_batch(context, job)
    told = {
        "engine": dg.MetadataValue.text(" + ".join(chosen)),
        "params": dg.MetadataValue.json(tools.model_dump(mode="json")),
        "gpus": dg.MetadataValue.int(gpu.gpus),
    }
    return dataclasses.replace(outcome, reported={**outcome.reported, **told})


def _what_was_made(product: Mapping[str, Any], files: list[FileEntry]) -> dict[str, Any]:
    """The run as the derived record describes it: what the payload reported (the CPU
    engine), completed from the file at home where a GPU job reports nothing of its own."""
    from bl832_assets.beamlines.bl7012.cxi import image_names, read_header, read_image

    recon = next(Path(f.path) for f in files if f.path.endswith(RECON_SUFFIX))
    made = dict(product)
    if "image" not in made:
        made["image"] = image_names(recon)[-1]
    if "object_shape" not in made:
        made["object_shape"] = list(read_image(recon).shape)
    if "object_pixel_m" not in made:  # upstream's tools keep the scan's geometry in the file
        made["object_pixel_m"] = list(read_header(recon).object_pixel_m)
    if "iterations" not in made:
        made["iterations"] = made.get("params", {}).get("ptychocam", {}).get("n_iter")
    made["path"] = str(recon)
    return made
