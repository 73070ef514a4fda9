"""The two commands a facility job runs (``bl832 recon`` and ``bl832 pyramid``), as functions.

Each returns JSON-friendly metadata, and reports it (with progress on the way) to Dagster when
launched through Pipes, so the asset shows slices, centre and scale without re-reading outputs.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

from bl832_assets.science.options import ReconOptions
from bl832_assets.science.preview import markdown_gallery, write_previews
from bl832_assets.science.pyramid import build_pyramid
from bl832_assets.science.recon import reconstruct_scan
from bl832_assets.science.reporting import Markdown, open_reporter

PREVIEW_SIZE = 256  # pixels on the long side: about 30 kB per PNG in the event log


def _size_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _previews(tiff_dir: Path, stem: str) -> Markdown:
    """Central sections and a histogram, small enough to ride along in the event log."""
    with tempfile.TemporaryDirectory() as scratch:
        return Markdown(
            markdown_gallery(write_previews(tiff_dir, scratch, stem, max_size=PREVIEW_SIZE))
        )


def run_recon(scan: Path, out_dir: Path, options: ReconOptions) -> dict[str, object]:
    """Reconstruct ``scan`` into ``<out_dir>/rec<stem>/``."""
    with open_reporter() as reporter:
        reporter.log(f"reconstructing {scan} into {out_dir} with {options.to_json()}")
        summary = reconstruct_scan(scan, out_dir, options, progress=reporter.progress)
        metadata: dict[str, object] = {
            "path": str(summary.output_dir),
            "size_bytes": _size_bytes(summary.output_dir),
            "slices": summary.slices,
            "options": asdict(summary.options),
            "shape": list(summary.shape),
            "centre": summary.centre.centre,
            "centre_method": summary.centre.method,
            "centre_confidence": summary.centre.confidence,
            "stage_seconds": summary.stage_seconds,
            "preview": _previews(summary.output_dir, Path(scan).stem),
            "peak_rss_mb": summary.peak_rss_mb,
            "pixel_size_um": summary.pixel_size_um,
            "min_value": summary.min_value,
            "max_value": summary.max_value,
            "seconds": round(summary.seconds, 3),
        }
        reporter.report(metadata)
    return metadata


def run_pyramid(tiff_dir: Path, out_zarr: Path) -> dict[str, object]:
    """Turn the TIFF slices in ``tiff_dir`` into the OME-Zarr image ``out_zarr``."""
    with open_reporter() as reporter:
        reporter.log(f"building pyramid {out_zarr} from {tiff_dir}")
        summary = build_pyramid(tiff_dir, out_zarr)
        metadata: dict[str, object] = {
            "path": str(summary.path),
            "size_bytes": summary.bytes_written,
            "mb_per_s": round(summary.mb_per_s, 1),
            "levels": [list(shape) for shape in summary.levels],
            "pixel_size_um": summary.pixel_size_um,
            "seconds": round(summary.seconds, 3),
        }
        reporter.report(metadata)
    return metadata
