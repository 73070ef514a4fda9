"""The two commands a facility job runs (``bl832 recon`` and ``bl832 pyramid``), as functions.

Each returns JSON-friendly metadata, and reports it (with progress on the way) to Dagster when
launched through Pipes, so the asset shows slices, centre and scale without re-reading outputs.
"""

from __future__ import annotations

from pathlib import Path

from bl832_assets.science.pyramid import build_pyramid
from bl832_assets.science.recon import reconstruct_scan
from bl832_assets.science.reporting import open_reporter


def _size_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run_recon(scan: Path, out_dir: Path) -> dict[str, object]:
    """Reconstruct ``scan`` into ``<out_dir>/rec<stem>/``."""
    with open_reporter() as reporter:
        reporter.log(f"reconstructing {scan} into {out_dir}")
        summary = reconstruct_scan(scan, out_dir, progress=reporter.progress)
        metadata: dict[str, object] = {
            "path": str(summary.output_dir),
            "size_bytes": _size_bytes(summary.output_dir),
            "slices": summary.slices,
            "shape": list(summary.shape),
            "centre": summary.centre,
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
            "size_bytes": _size_bytes(summary.path),
            "levels": [list(shape) for shape in summary.levels],
            "pixel_size_um": summary.pixel_size_um,
            "seconds": round(summary.seconds, 3),
        }
        reporter.report(metadata)
    return metadata
