"""The 7.3.3 integration command as a function: one image in, its profile, plot and peaks out.

It runs the same locally (through Dagster Pipes) and in a NERSC job, reporting progress and
results through ``bl832_assets.science.reporting`` like 8.3.2's payload. Its metadata carries
what the derived catalog record and the asset need without re-reading the outputs: where the
profile and its plot are, the q range, the peaks found, the geometry used and an inline
sparkline of the profile.
"""

from __future__ import annotations

import time
from pathlib import Path

from bl832_assets.beamlines.bl733.dataset import Pair
from bl832_assets.beamlines.bl733.geometry import Geometry
from bl832_assets.beamlines.bl733.integrate import (
    DEFAULT_NPT,
    Q_UNIT,
    find_peaks,
    integrate,
    write_profile,
)
from bl832_assets.beamlines.bl733.plots import inline_profile, write_profile_plot
from bl832_assets.beamlines.bl733.readers import (
    EdfFrame,
    frame_geometry,
    read_edf,
    read_mask,
    read_pair,
)
from bl832_assets.science.reporting import Markdown, open_reporter


def _frame(source: Pair | str | Path) -> tuple[str, EdfFrame]:
    """The image to integrate and the stem its outputs are named after. A pair must be
    complete: half a dataset is not integrated."""
    if isinstance(source, Pair):
        return source.stem, read_pair(source)[1]
    return Path(source).stem, read_edf(source)


def run_integration(
    source: Pair | str | Path,
    out_dir: str | Path,
    geometry: Geometry,
    *,
    npt: int = DEFAULT_NPT,
    mask_path: str | Path | None = None,
) -> dict[str, object]:
    """Integrate a pair's image (or an ``.edf`` file) into ``<out_dir>/<stem>_profile.csv``
    and plot it as ``<stem>_profile.png``; the pixel size comes from the EDF header unless
    ``geometry`` sets it, and ``mask_path`` names the beamline's mask file, if any."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    with open_reporter() as reporter:
        stem, frame = _frame(source)
        reporter.log(f"integrating {frame.path} into {out_dir} over {npt} q bins")
        geometry = frame_geometry(frame, geometry)
        mask = None if mask_path is None else read_mask(mask_path, frame.data.shape)
        profile = integrate(frame.data, geometry, npt=npt, mask=mask)
        peaks = find_peaks(profile)
        masked = frame.data < 0 if mask is None else (frame.data < 0) | mask
        written = write_profile(
            profile,
            out_dir / f"{stem}_profile.csv",
            comment=f"azimuthal integration of {frame.path.name}\n"
            f"geometry: {geometry.model_dump_json()}",
        )
        plot = write_profile_plot(profile, peaks, out_dir / f"{stem}_profile.png", title=stem)
        metadata: dict[str, object] = {
            "path": str(written),
            "plot_path": str(plot),
            "image": str(frame.path),
            "image_shape": list(frame.data.shape),
            "masked_pixels": int(masked.sum()),
            "geometry": geometry.model_dump(mode="json"),
            "npt": npt,
            "points": int(profile.q.size),
            "q_unit": Q_UNIT,
            "q_min": round(float(profile.q[0]), 6),
            "q_max": round(float(profile.q[-1]), 6),
            "peaks_q": [round(float(peak), 6) for peak in peaks],
            "preview_profile": Markdown(inline_profile(profile)),
            "seconds": round(time.perf_counter() - started, 3),
        }
        reporter.report(metadata)
    return metadata
