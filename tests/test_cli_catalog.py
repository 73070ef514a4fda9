"""``bl832 catalog show PID``: where a catalog asset's ``show`` entry leads a scientist."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from bl832_assets.cli.main import main
from bl832_assets.resources.catalog import CatalogRecord, FileEntry, LocalCatalogResource
from bl832_assets.science.dx import read_metadata
from bl832_assets.science.synth import write_synthetic_scan

SCAN = "20260104_110000_shown"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    monkeypatch.setenv("BL832_HOME", str(site))
    monkeypatch.delenv("BL832_CONFIG", raising=False)
    return site


def _file(path: Path) -> FileEntry:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return FileEntry(str(path), path.stat().st_size, path.stat().st_mtime, digest)


def _catalogued(home: Path) -> tuple[CatalogRecord, CatalogRecord]:
    """A scan's raw record with a thumbnail, and its reconstruction's, as the assets make them."""
    scan = write_synthetic_scan(home / "data832" / "raw" / "F" / f"{SCAN}.h5", columns=32, rows=2)
    catalog = LocalCatalogResource(database=str(home / "catalog.sqlite"))
    raw = catalog.ingest_raw(
        str(scan), read_metadata(scan), [_file(scan)], thumbnail="data:image/png;base64,iVBO"
    )
    tiffs = home / "data832" / "scratch" / "F" / f"rec{SCAN}"
    tiffs.mkdir(parents=True)
    (tiffs / f"{SCAN}_00000.tiff").write_bytes(b"slice")
    derived = catalog.ingest_derived(
        raw.pid,
        SCAN,
        str(tiffs),
        f"{tiffs}.zarr",
        [_file(tiffs / f"{SCAN}_00000.tiff")],
        ["bl832_assets"],
        {"centre": 17.5},
    )
    return raw, derived


def test_show_prints_the_raw_record_its_files_and_thumbnail(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = _catalogued(home)
    scan = home / "data832" / "raw" / "F" / f"{SCAN}.h5"

    assert main(["catalog", "show", raw.pid]) == 0

    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"raw dataset {raw.pid}"
    assert re.search(rf"^  scan +{SCAN}$", out, re.MULTILINE)
    assert re.search(r"^  owner group +BLS-00564$", out, re.MULTILINE)
    assert re.search(rf"^  folder +{re.escape(str(scan.parent))}$", out, re.MULTILINE)
    assert "files: 1, " in out
    assert f"  {hashlib.sha256(scan.read_bytes()).hexdigest()}  " in out
    assert out.rstrip().endswith(f"{SCAN}.h5\nthumbnail: yes (image/png, 26 characters inline)")


def test_show_prints_a_reconstruction_with_its_input_and_parameters(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, derived = _catalogued(home)

    assert main(["catalog", "show", derived.pid]) == 0

    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"derived dataset {derived.pid}"
    assert re.search(rf"^  made from +{re.escape(raw.pid)}$", out, re.MULTILINE)
    assert re.search(r"^  parameters +centre=17\.5$", out, re.MULTILINE)
    assert f"rec{SCAN}/{SCAN}_00000.tiff" in out
    assert out.rstrip().endswith("thumbnail: none")


def test_show_of_an_unknown_pid_names_it_and_exits_1(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _catalogued(home)

    assert main(["catalog", "show", "bl832.local/nope"]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"bl832 catalog show: no dataset with pid 'bl832.local/nope' in {home / 'catalog.sqlite'}\n"
    )


def test_show_before_anything_was_catalogued_creates_no_catalog(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["catalog", "show", "bl832.local/first"]) == 1

    assert "'bl832.local/first'" in capsys.readouterr().err
    assert not (home / "catalog.sqlite").exists()


def test_show_on_a_scicat_site_gives_the_datasets_page(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "scicat.yaml"
    config.write_text(
        "backends: {catalog: scicat}\n"
        "catalog: {url: 'https://scicat.example/api/v3', frontend_url: 'https://data.example'}\n"
    )
    monkeypatch.setenv("BL832_CONFIG", str(config))

    assert main(["catalog", "show", "20.500.12269/abc"]) == 0

    assert capsys.readouterr().out == (
        "20.500.12269/abc is in SciCat: https://data.example/datasets/20.500.12269%2Fabc\n"
    )
