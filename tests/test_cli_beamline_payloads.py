"""The 7.3.3 and 7.0.1.2 payload commands as an operator and a facility job meet them: synthetic
data written by hand, one JSON line of metadata out, one-line errors naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bl832_assets.beamlines.bl733.synth import DEFAULT_GEOMETRY, calibrant_q
from bl832_assets.cli.main import main

GEOMETRY_ARGS = [
    "--distance-m",
    str(DEFAULT_GEOMETRY.distance_m),
    "--wavelength-angstrom",
    str(DEFAULT_GEOMETRY.wavelength_angstrom),
    "--centre",
    *(str(c) for c in DEFAULT_GEOMETRY.beam_centre_px),
]


def _last_json(out: str) -> dict[str, object]:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["synth-saxs", str(tmp_path / "raw"), "--stem", "agbh.cal", "--seed", "3"]) == 0
    written = capsys.readouterr().out.split()
    assert written == [str(tmp_path / "raw" / f"agbh.cal{s}") for s in (".txt", ".edf")]
    return tmp_path / "raw" / "agbh.cal"


def test_integrate_of_a_synthetic_pair_finds_the_calibrant_rings(
    pair: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["integrate", str(pair), str(tmp_path / "out"), *GEOMETRY_ARGS]) == 0
    summary = _last_json(capsys.readouterr().out)
    assert Path(str(summary["path"])).is_file()
    assert Path(str(summary["plot_path"])).is_file()
    peaks = np.array(summary["peaks_q"])
    for ring in calibrant_q(4):  # the four AgBh rings crossing the default window
        assert np.abs(peaks - ring).min() < 0.003, (ring, peaks)
    assert "markdown" not in summary


def test_integrate_of_an_edf_with_previews_carries_the_inline_profile(
    pair: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edf = pair.with_name(pair.name + ".edf")
    argv = ["integrate", str(edf), str(tmp_path / "out"), *GEOMETRY_ARGS, "--npt", "300"]
    assert main([*argv, "--pixel-size-m", "172e-6", "--previews"]) == 0
    summary = _last_json(capsys.readouterr().out)
    assert summary["points"] == 300
    markdown = summary["markdown"]
    assert isinstance(markdown, dict) and markdown["preview_profile"].startswith("![")


def test_ptycho_of_a_synthetic_scan_writes_the_reconstruction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = tmp_path / "scan.cxi"
    assert main(["synth-cxi", str(scan), "--seed", "1"]) == 0
    assert capsys.readouterr().out.strip() == str(scan)
    out = tmp_path / "out"
    assert main(["ptycho", str(scan), str(out), "--iterations", "30", "--momentum", "0.5"]) == 0
    summary = _last_json(capsys.readouterr().out)
    assert summary["path"] == str(out / "scan_recon.cxi")
    assert (out / "scan_recon.cxi").is_file()
    assert summary["iterations"] == 30
    assert summary["params"] == {**summary["params"], "iterations": 30, "momentum": 0.5}


@pytest.mark.parametrize(
    "argv",
    [
        ["integrate", "{missing}.edf", "{out}", *GEOMETRY_ARGS],
        ["integrate", "{missing}", "{out}", *GEOMETRY_ARGS],
        ["ptycho", "{missing}.cxi", "{out}"],
    ],
    ids=["edf", "pair", "cxi"],
)
def test_a_missing_input_ends_as_one_line_naming_the_file(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing, out = tmp_path / "absent_scan", tmp_path / "out"
    assert main([a.format(missing=missing, out=out) for a in argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"bl832 {argv[0]}: error: ")
    assert "absent_scan" in lines[0]
    assert not out.exists()


def test_ptycho_refuses_out_of_range_parameters_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = tmp_path / "scan.cxi"
    assert main(["synth-cxi", str(scan)]) == 0
    assert main(["ptycho", str(scan), str(tmp_path / "out"), "--momentum", "2"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "momentum" in err


@pytest.mark.parametrize("out_dir", [True, False], ids=["both", "neither"])
def test_ptycho_wants_exactly_one_of_out_dir_and_in_place(
    out_dir: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = tmp_path / "scan.cxi"
    assert main(["synth-cxi", str(scan)]) == 0
    argv = ["ptycho", str(scan), *([str(tmp_path / "out")] if out_dir else [])]
    assert main([*argv, *(["--in-place"] if out_dir else [])]) == 1
    assert "exactly one of OUT_DIR and --in-place" in capsys.readouterr().err
