"""Partition keys from file names, and the one decision function."""

from __future__ import annotations

from pathlib import Path

import pytest

from bl832_assets import keys
from bl832_assets.decision import decide
from bl832_assets.partitions import BadScanName, scan_key
from bl832_assets.settings import Decision, Settings


def test_key_is_the_stem_and_folder_is_not_part_of_it() -> None:
    assert scan_key("BLS-00564_dyp/20230606_151124_fungi1_fast.h5") == "20230606_151124_fungi1_fast"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("F/evil..name.h5", "'..'"),
        ("../escape.h5", "'..'"),
        ("F/with\\backslash.h5", "separator"),
        ("F/bell\x07.h5", "control character"),
        ("F/new\nline.h5", "control character"),
        ("F/" + "x" * 201 + ".h5", "longer than 200"),
        ("F/a|b.h5", "'|'"),
        ("F/notes.txt", "not a .h5"),
        ("F/.h5", "empty"),
    ],
)
def test_bad_names_are_refused_with_a_reason(name: str, reason: str) -> None:
    with pytest.raises(BadScanName, match=reason.replace("|", r"\|").replace(".", r"\.")):
        scan_key(name)


def _settings(tmp_path: Path, **switches: bool) -> Settings:
    return Settings(home=tmp_path, decision=Decision(**switches))


def _names(selected: frozenset) -> set[str]:
    return {k.to_user_string() for k in selected}


def test_default_switches_copy_archive_and_reconstruct_at_nersc(tmp_path: Path) -> None:
    assert _names(decide(_settings(tmp_path), export_control=False)) == {
        "data832/raw_scan",
        "nersc/raw_scan",
        "nersc/recon_tiff",
        "nersc/recon_zarr",
        "data832/recon_tiff",
        "data832/recon_zarr",
        "archive/recon_tiff",
        "archive/recon_zarr",
        "catalog/raw_dataset",
        "catalog/derived_dataset",
    }


def test_only_new_file_switch_moves_and_registers(tmp_path: Path) -> None:
    settings = _settings(tmp_path, new_file_832=True, nersc_recon=False)
    assert _names(decide(settings, export_control=False)) == {
        "data832/raw_scan",
        "nersc/raw_scan",
        "catalog/raw_dataset",
    }


def test_recon_without_new_file_still_needs_the_beamline_copy(tmp_path: Path) -> None:
    settings = _settings(tmp_path, new_file_832=False, nersc_recon=False, alcf_recon=True)
    selected = decide(settings, export_control=False)
    assert keys.BEAMLINE_RAW in selected
    assert keys.key("alcf", keys.RECON_ZARR) in selected
    assert keys.key("nersc", keys.RAW_SCAN) not in selected


def test_export_controlled_scan_gets_nothing_off_site(tmp_path: Path) -> None:
    settings = _settings(tmp_path, alcf_recon=True, olcf_recon=True)
    assert _names(decide(settings, export_control=True)) == {"data832/raw_scan"}


def test_everything_off_decides_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path, new_file_832=False, nersc_recon=False)
    assert decide(settings, export_control=False) == frozenset()
