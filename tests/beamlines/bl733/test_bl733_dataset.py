"""A 7.3.3 dataset is a .txt + .edf pair with one stem, complete only when both have arrived."""

from __future__ import annotations

from pathlib import Path

from bl832_assets.beamlines.bl733.dataset import Pair, find_pairs, is_skipped, pairs_in_folder


def test_a_pair_arriving_one_file_at_a_time_is_incomplete_until_the_edf_lands(
    tmp_path: Path,
) -> None:
    (tmp_path / "sample_2m.txt").write_text("PI: Jane Doe\n")

    [waiting] = pairs_in_folder(tmp_path)

    assert not waiting.complete
    assert waiting.missing == (tmp_path / "sample_2m.edf",)
    assert waiting.files == (tmp_path / "sample_2m.txt",)

    (tmp_path / "sample_2m.edf").write_bytes(b"{}")
    [arrived] = pairs_in_folder(tmp_path)

    assert arrived.complete
    assert arrived.missing == ()
    assert arrived.files == (tmp_path / "sample_2m.txt", tmp_path / "sample_2m.edf")


def test_an_image_without_its_header_reports_the_missing_txt() -> None:
    [pair] = find_pairs(["/data733/2024/agb_2m.edf"])

    assert not pair.complete
    assert pair.missing == (Path("/data733/2024/agb_2m.txt"),)


def test_a_listing_in_any_order_groups_by_folder_and_stem() -> None:
    listing = [
        "/d/day2/a.edf",
        "/d/day1/a.txt",
        "/d/day1/b.edf",
        "/d/day1/a.edf",
        "/d/day2/a.txt",
    ]

    pairs = find_pairs(listing)

    assert [(p.folder.name, p.stem, p.complete) for p in pairs] == [
        ("day1", "a", True),
        ("day1", "b", False),
        ("day2", "a", True),
    ]
    assert pairs[0] == Pair(Path("/d/day1"), "a", Path("/d/day1/a.txt"), Path("/d/day1/a.edf"))


def test_test_exposures_and_other_files_are_not_datasets() -> None:
    listing = [
        "/d/autoexpose_0001.txt",
        "/d/autoexpose_0001.edf",
        "/d/sample_beamstop_test_2m.edf",
        "/d/sample_sfloat_2m.gb",
        "/d/scicat_ingest_log.log",
        "/d/analysis",
        "/d/sample_2m.txt",
        "/d/sample_2m.edf",
    ]

    assert [pair.stem for pair in find_pairs(listing)] == ["sample_2m"]


def test_only_the_file_name_decides_a_skip_not_its_folder() -> None:
    assert is_skipped("/d/AutoExpose_3.edf")
    assert not is_skipped("/data733/autoexpose/sample_2m.edf")
    assert [p.stem for p in find_pairs(["/data733/autoexpose/s.txt"])] == ["s"]


def test_folder_listing_ignores_subfolders(tmp_path: Path) -> None:
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "sample_2m.txt").write_text("x: 1\n")
    (tmp_path / "sample_2m.edf").write_bytes(b"{}")

    [pair] = pairs_in_folder(tmp_path)

    assert pair.folder == tmp_path
    assert pair.missing == (tmp_path / "sample_2m.txt",)
