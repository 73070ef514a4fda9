"""The two commands a facility job runs (``bl832 recon`` and ``bl832 pyramid``), as functions.

Each returns JSON-friendly metadata, and reports it (with progress on the way) to Dagster when
launched through Pipes, so the asset shows slices, centre and scale without re-reading outputs.
Both report thumbnails small enough for the UI to render inline (``preview_xy``, ``preview_xz``,
``preview_yz``, ``histogram``), which the copies brought home carry on.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from bl832_assets.science.dx import read_metadata
from bl832_assets.science.options import ReconOptions
from bl832_assets.science.preview import (
    INLINE_SIZES,
    central_sections,
    inline_previews,
    markdown_gallery,
    write_section_previews,
)
from bl832_assets.science.pyramid import build_pyramid
from bl832_assets.science.recon import reconstruct_scan
from bl832_assets.science.reporting import Markdown, open_reporter

PREVIEW_SIZE = 256  # pixels on the long side: about 30 kB per PNG in the event log


def _size_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _previews(tiff_dir: Path, stem: str) -> dict[str, Markdown]:
    """Central sections and a histogram: a gallery small enough to ride along in the event log
    (``preview``), and the same as inline thumbnails, from one read of the sections."""
    sections = central_sections(tiff_dir, PREVIEW_SIZE)
    with tempfile.TemporaryDirectory() as scratch:
        gallery = markdown_gallery(write_section_previews(sections, scratch, stem, PREVIEW_SIZE))
    return {"preview": Markdown(gallery), **_inline(sections)}


def _inline(sections: dict[str, np.ndarray]) -> dict[str, Markdown]:
    """The thumbnails as Markdown, which Pipes hands to Dagster as Markdown values."""
    return {name: Markdown(text) for name, text in inline_previews(sections).items()}


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
            # What the product check needs of the input, wherever the scan came from (a
            # discovered historic scan has no detector record).
            "detector_rows": read_metadata(scan).rows,
            "centre": summary.centre.centre,
            "centre_method": summary.centre.method,
            "centre_confidence": summary.centre.confidence,
            "stage_seconds": summary.stage_seconds,
            **_previews(summary.output_dir, Path(scan).stem),
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
            # from the coarsest levels: a few chunks read, whatever the volume's size
            **_inline(central_sections(summary.path, INLINE_SIZES[0])),
            "seconds": round(summary.seconds, 3),
        }
        reporter.report(metadata)
    return metadata
