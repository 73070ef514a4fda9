"""``run_ptycho`` end to end on a synthetic scan: the result written where the metadata says,
checked, previewed, close to the truth, and the raw scan untouched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from bl832_assets.beamlines.bl7012.accuracy import object_error
from bl832_assets.beamlines.bl7012.checks import check_finite, check_written
from bl832_assets.beamlines.bl7012.cxi import read_image
from bl832_assets.beamlines.bl7012.grid import well_lit
from bl832_assets.beamlines.bl7012.params import PieParams
from bl832_assets.beamlines.bl7012.payload import ERROR_TAIL, run_ptycho
from bl832_assets.beamlines.bl7012.synth import SyntheticScan
from bl832_assets.science.reporting import Markdown, printable


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_ptycho_writes_a_checked_reconstruction_and_reports_it(
    synthetic: SyntheticScan, scan_path: Path, tmp_path: Path
) -> None:
    raw = _sha(scan_path)

    metadata = run_ptycho(scan_path, tmp_path / "out", PieParams())

    output = Path(str(metadata["path"]))
    assert output == tmp_path / "out" / "NS_241125001_ccdframes_0_0_recon.cxi"
    assert metadata["image"] == "entry_1/image_1" and metadata["engine"] == "mPIE"
    assert check_written(output, tuple(metadata["object_shape"])).passed
    assert check_finite(output).passed
    assert _sha(scan_path) == raw  # the raw scan is never written to
    image = read_image(output)
    error = object_error(image, synthetic.object, well_lit(synthetic.illumination(), 0.25))
    assert error < 0.05, error


def test_metadata_reports_progress_previews_and_files(scan_path: Path, tmp_path: Path) -> None:
    metadata = run_ptycho(scan_path, tmp_path, PieParams(iterations=20))

    assert metadata["iterations"] == 20
    tail = metadata["error_tail"]
    assert isinstance(tail, list) and len(tail) == ERROR_TAIL
    assert tail[-1] == round(float(metadata["final_error"]), 6)
    assert metadata["frames"] == 50 and metadata["frame_shape"] == [32, 32]
    assert metadata["energy_ev"] == 800.0
    assert float(metadata["seconds"]) >= float(metadata["reconstruction_seconds"]) > 0
    for key in ("amplitude_png", "phase_png"):
        assert Path(str(metadata[key])).is_file()
    for key in ("preview_amplitude", "preview_phase"):
        assert isinstance(metadata[key], Markdown) and len(metadata[key]) < 1000
    json.dumps(printable(metadata, previews=True))  # travels as one JSON line from a job


def test_a_rerun_appends_the_next_image_group_atomically(scan_path: Path, tmp_path: Path) -> None:
    first = run_ptycho(scan_path, tmp_path, PieParams(iterations=2))
    second = run_ptycho(scan_path, tmp_path, PieParams(iterations=3, seed=4))

    assert first["path"] == second["path"] and second["image"] == "entry_1/image_2"
    output = Path(str(second["path"]))
    assert not np.array_equal(read_image(output, "entry_1/image_1"), read_image(output))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
