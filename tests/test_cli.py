"""The ``bl832`` command as a user meets it: exit codes, one-line errors, nothing left behind."""

import sqlite3
from pathlib import Path

import dagster as dg
import pytest

from bl832_assets.cli.main import main
from bl832_assets.resources.catalog.local import LocalCatalogResource


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    monkeypatch.setenv("BL832_HOME", str(site))
    monkeypatch.setenv("DAGSTER_HOME", str(site / "dagster"))
    monkeypatch.delenv("BL832_CONFIG", raising=False)
    return site


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_process_places_the_scan_and_materializes_the_decided_graph(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = tmp_path / "incoming" / "20260103_100000_cli.h5"
    assert main(["synth", str(scan), "--columns", "32", "--rows", "2", "--angles", "31"]) == 0
    assert main(["process", str(scan)]) == 0
    table = capsys.readouterr().out
    for asset in ("data832/raw_scan", "nersc/recon_zarr", "catalog/derived_dataset"):
        assert asset in table
    assert (home / "spot832" / "BLS-00564" / scan.name).read_bytes() == scan.read_bytes()
    assert (home / "data832" / "scratch" / "BLS-00564" / "rec20260103_100000_cli").is_dir()
    with dg.DagsterInstance.get() as instance:
        assert instance.get_dynamic_partitions("scans") == ["20260103_100000_cli"]
    catalog = LocalCatalogResource(database=str(home / "catalog.sqlite"))
    first = catalog.find_raw("20260103_100000_cli")
    # Processing again is allowed, finds every copy in place and updates the same records.
    assert main(["process", str(scan)]) == 0
    again = catalog.find_raw("20260103_100000_cli")
    assert first is not None and again is not None and again.pid == first.pid
    with sqlite3.connect(home / "catalog.sqlite") as db:
        assert db.execute("select count(*) from datasets").fetchone()[0] == 2  # raw + derived
    with sqlite3.connect(home / "transfers.sqlite") as db:
        skipped = db.execute("select sum(files_skipped) from tasks").fetchone()[0]
    assert skipped > 0


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("20260103_100001_text.h5", b"plain text, not HDF5", "HDF5"),
        ("bad..name.h5", b"", "'..'"),
    ],
)
def test_process_refuses_bad_input_naming_the_file_and_placing_nothing(
    home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes,
    reason: str,
) -> None:
    bad = tmp_path / name
    bad.write_bytes(content)
    assert main(["process", str(bad)]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert name in error and reason in error
    assert _files_under(home / "spot832") == []


def test_process_of_a_missing_file_names_it(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["process", str(tmp_path / "nowhere.h5")]) == 1
    assert "nowhere.h5" in capsys.readouterr().err


def test_recon_of_a_truncated_scan_fails_with_the_file_and_leaves_no_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = tmp_path / "20260103_100002_cut.h5"
    main(["synth", str(scan), "--columns", "32", "--rows", "2", "--angles", "31"])
    scan.write_bytes(scan.read_bytes()[: scan.stat().st_size // 2])
    assert main(["recon", str(scan), str(tmp_path / "out")]) == 1
    assert str(scan) in capsys.readouterr().err
    assert _files_under(tmp_path / "out") == []


def test_invalid_settings_file_fails_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("sensor: {interval_seconds: zero}\n")
    monkeypatch.setenv("BL832_CONFIG", str(config))
    assert main(["config", "show"]) == 1
    error = capsys.readouterr().err
    assert str(config) in error and "sensor.interval_seconds" in error


def test_demo_materializes_every_asset_of_the_graph(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "quick.yaml"
    config.write_text(f"home: {home}\nsensor: {{settle_seconds: 0.2}}\n")
    monkeypatch.setenv("BL832_CONFIG", str(config))
    assert main(["demo"]) == 0
    table = capsys.readouterr().out
    rows = {line.split()[0]: line for line in table.splitlines() if "/" in line.split(" ")[0]}
    expected = {
        f"{location}/{dataset}"
        for location in ("nersc", "alcf", "olcf")
        for dataset in ("raw_scan", "recon_tiff", "recon_zarr")
    } | {
        "data832/raw_scan",
        "data832/recon_tiff",
        "data832/recon_zarr",
        "archive/recon_tiff",
        "archive/recon_zarr",
        "catalog/raw_dataset",
        "catalog/derived_dataset",
    }
    # then one dataset of each other beamline, through its whole graph
    expected |= {
        "beegfs733/dataset",
        "nersc733/dataset",
        "catalog733/raw_dataset",
        "nersc733_scratch/profile",
        "beegfs733_analysis/profile",
        "catalog733/derived_dataset",
        "nersc7012/dataset",
        "catalog7012/raw_dataset",
        "nersc7012_scratch/ptycho",
        "data7012_recon/ptycho",
        "catalog7012/derived_dataset",
        "beegfs931/dataset",
        "nersc931/dataset",
        "catalog931/raw_dataset",
    }
    assert set(rows) == expected
    assert all("materialized" in row and "✗" not in row for row in rows.values())
    assert len(list((home / "previews").glob("*_middle_slice.png"))) == 1
