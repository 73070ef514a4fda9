"""The 7.0.1.2 local reconstruction as a function: one CXI scan in, a CXI reconstruction out.

It runs the same through Dagster Pipes, from a terminal or in a job, reporting progress and
results through ``bl832_assets.science.reporting`` like 8.3.2's payload. The raw scan is not
modified (its checksum is what the copies and the pruning are verified against): the result goes
to ``<out_dir>/<stem>_recon.cxi``, holding the scan's geometry, positions and probe guess and
the object as the next ``entry_1/image_<n>/data`` (a rerun adds one) with the final probe: the
layout upstream's tools append to the scan itself. In place (no ``out_dir``), it does what
those tools do, appending to the file it is given: for a job standing in for them, on the
facility's working copy, never on the raw scan. Its metadata carries what the asset, its checks
and the derived catalog record need without re-reading the outputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bl832_assets.beamlines.bl7012.cxi import read_scan, write_image
from bl832_assets.beamlines.bl7012.grid import well_lit
from bl832_assets.beamlines.bl7012.params import PieParams
from bl832_assets.beamlines.bl7012.preview import inline_object_previews, write_object_pngs
from bl832_assets.beamlines.bl7012.reconstruct import reconstruct
from bl832_assets.science.reporting import Markdown, Reporter, open_reporter

ENGINE = "mPIE"
ERROR_TAIL = 10  # iterations of error history reported: enough to see convergence or stalling
PROGRESS_STEPS = 10  # log lines over a run


def _progress(reporter: Reporter, iterations: int) -> Callable[[int, float], None]:
    every = max(iterations // PROGRESS_STEPS, 1)

    def log(done: int, error: float) -> None:
        if done % every == 0 or done == iterations:
            reporter.log(f"iteration {done}/{iterations}: Fourier error {error:.4g}")

    return log


def run_ptycho(cxi: str | Path, out_dir: str | Path | None, params: PieParams) -> dict[str, object]:
    """Reconstruct the scan ``cxi`` into ``<out_dir>/<stem>_recon.cxi``, or with ``out_dir``
    ``None`` into ``cxi`` itself, with PNG previews beside the result, and report what was
    made."""
    started = time.perf_counter()
    cxi = Path(cxi)
    stem = cxi.stem
    output = cxi if out_dir is None else Path(out_dir) / f"{stem}_recon.cxi"
    with open_reporter() as reporter:
        reporter.log(f"reconstructing {cxi} into {output} with {ENGINE} {params.model_dump()}")
        scan = read_scan(cxi)
        result = reconstruct(scan, params, _progress(reporter, params.iterations))
        image = write_image(
            output,
            result.object,
            illumination=result.probe,
            notes={"engine": ENGINE, "parameters": params.model_dump_json(), "input": str(cxi)},
            header=scan.header,
        )
        lit = well_lit(result.illumination())
        pngs = write_object_pngs(result.object, output.parent, stem, lit)
        header = scan.header
        metadata: dict[str, object] = {
            "path": str(output),
            "image": image,
            "input": str(cxi),
            "engine": ENGINE,
            "params": params.model_dump(),
            "iterations": params.iterations,
            "error_tail": [round(e, 6) for e in result.errors[-ERROR_TAIL:]],
            "final_error": result.errors[-1],
            "frames": header.frames,
            "frame_shape": list(header.frame_shape),
            "object_shape": list(result.object.shape),
            "energy_ev": round(header.energy_ev, 3),
            "object_pixel_m": list(header.object_pixel_m),
            "amplitude_png": str(pngs["amplitude"]),
            "phase_png": str(pngs["phase"]),
            **{k: Markdown(v) for k, v in inline_object_previews(result.object, lit).items()},
            "size_bytes": output.stat().st_size,
            "reconstruction_seconds": round(result.seconds, 3),
            "seconds": round(time.perf_counter() - started, 3),
        }
        reporter.report(metadata)
    return metadata
