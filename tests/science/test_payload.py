"""The payload commands, alone and under Dagster Pipes (driven without Dagster itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from dagster_pipes import encode_param

from bl832_assets.science import dx
from bl832_assets.science.options import ReconOptions
from bl832_assets.science.payload import run_pyramid, run_recon

REPO = Path(__file__).resolve().parents[2]


def test_recon_then_pyramid_return_json_metadata_and_log_progress_to_stderr(
    scan: Path, tmp_path: Path, stem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    recon = run_recon(scan, tmp_path / "scratch", ReconOptions())
    assert recon["path"] == str(tmp_path / "scratch" / f"rec{stem}")
    assert recon["slices"] == 6 and recon["shape"] == [6, 64, 64]
    assert recon["pixel_size_um"] == pytest.approx(0.65)
    assert isinstance(recon["centre"], float) and recon["centre_method"] == "cross-correlation"
    assert recon["options"]["centre"] == recon["centre"]  # the options as used
    assert set(recon["stage_seconds"]) == {"read", "normalise", "rings", "reconstruct", "write"}
    assert recon["peak_rss_mb"] > 0
    assert recon["preview"].count("data:image/png;base64,") == 4  # xy, xz, yz, histogram
    pyramid = run_pyramid(Path(recon["path"]), tmp_path / "scratch" / f"rec{stem}.zarr")
    assert pyramid["levels"] == [[6, 64, 64]]
    assert pyramid["pixel_size_um"] == pytest.approx(0.65)
    json.dumps([recon, pyramid])
    assert "progress: 6/6 slices (100%)" in capsys.readouterr().err


def _run_under_pipes(tmp_path: Path, code: str) -> tuple[int, list[dict]]:
    """Run ``code`` in a fresh interpreter with the environment a Dagster Pipes subprocess
    client would give it, and return the exit code and the messages it sent back."""
    messages = tmp_path / "messages.jsonl"
    context = {
        "asset_keys": ["nersc/recon_tiff"],
        "code_version_by_asset_key": None,
        "provenance_by_asset_key": None,
        "partition_key": "scan",
        "partition_key_range": None,
        "partition_time_window": None,
        "run_id": "test-run",
        "job_name": None,
        "retry_number": 0,
        "extras": {},
    }
    env = {
        **os.environ,
        "DAGSTER_PIPES_CONTEXT": encode_param({"data": context}),
        "DAGSTER_PIPES_MESSAGES": encode_param({"path": str(messages)}),
    }
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True)
    lines = messages.read_text().splitlines() if messages.exists() else []
    return done.returncode, [json.loads(line) for line in lines]


def test_under_pipes_progress_and_materialization_go_to_dagster(scan: Path, tmp_path: Path) -> None:
    code = (
        "from pathlib import Path\n"
        "from bl832_assets.science.payload import run_recon\n"
        "from bl832_assets.science.options import ReconOptions\n"
        f"run_recon(Path({str(scan)!r}), Path({str(tmp_path / 'scratch')!r}), ReconOptions())\n"
    )
    returncode, messages = _run_under_pipes(tmp_path, code)
    assert returncode == 0
    logs = [m["params"]["message"] for m in messages if m["method"] == "log"]
    assert any("progress: 6/6 slices" in line for line in logs)
    (materialization,) = [m for m in messages if m["method"] == "report_asset_materialization"]
    metadata = materialization["params"]["metadata"]
    assert metadata["slices"]["raw_value"] == 6
    assert metadata["shape"] == {"raw_value": [6, 64, 64], "type": "json"}
    assert metadata["preview"]["type"] == "md"
    assert messages[-1]["method"] == "closed" and not messages[-1]["params"].get("exception")


def test_under_pipes_a_failure_is_reported_with_its_reason(scan: Path, tmp_path: Path) -> None:
    with h5py.File(scan, "r+") as f:
        del f[dx.FLATS]
    code = (
        "from pathlib import Path\n"
        "from bl832_assets.science.payload import run_recon\n"
        "from bl832_assets.science.options import ReconOptions\n"
        f"run_recon(Path({str(scan)!r}), Path({str(tmp_path / 'scratch')!r}), ReconOptions())\n"
    )
    returncode, messages = _run_under_pipes(tmp_path, code)
    assert returncode != 0
    exception = messages[-1]["params"]["exception"]
    assert exception["name"] == "ScanFormatError"
    assert dx.FLATS in exception["message"]
