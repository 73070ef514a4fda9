"""The SciCat field mapping of 8.3.2 scans (upstream's ``als_832_dx_4`` rules)."""

from __future__ import annotations

import pytest
from resource_support import SCAN, scan_metadata

from bl832_assets.resources.catalog import FileEntry
from bl832_assets.resources.catalog.mapping import (
    UNKNOWN_EMAIL,
    access_groups,
    clean_email,
    derived_dataset,
    origdatablock,
    owner_group,
    raw_dataset,
    search_terms,
)

SCAN_FILE = f"/data/raw/{SCAN}"
MTIME = 1_686_064_284.5  # 2023-06-06T15:11:24.5Z


def scan_entry(**changes: object) -> FileEntry:
    values: dict[str, object] = {"path": SCAN_FILE, "size": 1234, "mtime": MTIME, "sha256": "ab"}
    values.update(changes)
    return FileEntry(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("typed", "cleaned"),
    [
        ("  user@example.com  ", "user@example.com"),
        (" user @ example.com ", "user@example.com"),
        ("JSeto@LBL.GOV", "jseto@lbl.gov"),
        ('"Jong Seto" <jseto@lbl.gov>', "jseto@lbl.gov"),
        ("<mailto:jseto@lbl.gov>", "jseto@lbl.gov"),
        ("'jseto@lbl.gov'", "jseto@lbl.gov"),
        ("jseto@lbl.gov, dyparkinson@lbl.gov", "jseto@lbl.gov"),
        ("not an address; jseto@lbl.gov", "jseto@lbl.gov"),
        ("jseto@lbl.gov.", "jseto@lbl.gov"),
        ("None", UNKNOWN_EMAIL),
        ("   ", UNKNOWN_EMAIL),
        ("invalid-email", UNKNOWN_EMAIL),
        ("jseto@lbl", UNKNOWN_EMAIL),
        ("jseto@@lbl.gov", UNKNOWN_EMAIL),
        (None, UNKNOWN_EMAIL),
    ],
)
def test_clean_email_takes_the_first_valid_address(typed: str | None, cleaned: str) -> None:
    assert clean_email(typed) == cleaned


@pytest.mark.parametrize(
    ("proposal", "group"),
    [("BLS-00564", "BLS-00564"), (" BLS-00564 ", "BLS-00564"), ("None", "8.3.2"), ("", "8.3.2")],
)
def test_owner_group_is_the_proposal_else_the_beamline(proposal: str, group: str) -> None:
    assert owner_group(proposal) == group


@pytest.mark.parametrize(
    ("beamline", "groups"),
    [
        ("bl832", ["8.3.2"]),
        ('"BL832",', ["8.3.2"]),
        ("8.3.2", ["8.3.2"]),
        ("bl733", ["bl733", "8.3.2"]),
        ("", ["8.3.2"]),
    ],
)
def test_access_groups_are_the_cleaned_beamline_plus_8_3_2(
    beamline: str, groups: list[str]
) -> None:
    assert access_groups(beamline) == groups


def test_search_terms_split_the_file_name_into_lower_case_words_once() -> None:
    terms = search_terms("20230606_151124_Fungi1-fast_fungi1.h5")

    assert terms == ["20230606", "151124", "fungi1", "fast"]


def test_raw_dataset_follows_als_832_dx_4() -> None:
    dataset = raw_dataset(SCAN_FILE, scan_metadata(), [scan_entry()])

    assert dataset["type"] == "raw"
    assert dataset["owner"] == dataset["principalInvestigator"] == "Dula Parkinson"
    assert dataset["contactEmail"] == "jseto@lbl.gov"
    assert dataset["ownerGroup"] == dataset["proposalId"] == "BLS-00564"
    assert dataset["accessGroups"] == ["8.3.2"]
    assert dataset["creationLocation"] == dataset["instrumentId"] == "ALS 8.3.2"
    assert dataset["datasetName"] == "fungi1_fast"
    assert dataset["dataFormat"] == "DX"
    assert dataset["sourceFolder"] == "/data/raw/BLS-00564_dyparkinson"
    assert (dataset["size"], dataset["numberOfFiles"]) == (1234, 1)
    assert dataset["creationTime"] == "2023-06-06T15:11:24.500+00:00"
    assert "fungi1" in dataset["keywords"] and "h5" not in dataset["keywords"]
    assert dataset["description"] == " ".join(dataset["keywords"])
    assert dataset["isPublished"] is False
    assert dataset["scientificMetadata"] == {"process/acquisition/rotation/range": 180.0}
    assert dataset["runNumber"] == "20230606_151124_jong-seto_fungal-mycelia_roll-AQ_fungi1_fast"


def test_raw_dataset_without_proposal_or_sample_name() -> None:
    metadata = scan_metadata(proposal="None", sample_name=" ")

    dataset = raw_dataset(SCAN_FILE, metadata, [scan_entry()])

    assert dataset["ownerGroup"] == "8.3.2"
    assert "proposalId" not in dataset
    assert dataset["datasetName"] == dataset["runNumber"]


def test_raw_dataset_needs_the_scan_among_its_files() -> None:
    with pytest.raises(ValueError, match="not among the dataset's files"):
        raw_dataset(SCAN_FILE, scan_metadata(), [scan_entry(path="/data/raw/other.h5")])


def test_origdatablock_lists_files_relative_to_the_source_folder() -> None:
    block = origdatablock("/data/raw/BLS-00564_dyparkinson", [scan_entry(sha256="cafe")])

    assert block["chkAlg"] == "sha256"
    assert block["size"] == 1234
    assert block["dataFileList"] == [
        {
            "path": SCAN_FILE.rsplit("/", 1)[1],
            "size": 1234,
            "time": "2023-06-06T15:11:24.500+00:00",
            "chk": "cafe",
        }
    ]
    with pytest.raises(ValueError, match="not inside"):
        origdatablock("/data/scratch", [scan_entry()])


def test_derived_dataset_links_the_raw_one_and_shares_its_access() -> None:
    raw = raw_dataset(SCAN_FILE, scan_metadata(beamline="bl733"), [scan_entry()])
    folder = "/data/scratch/BLS-00564_dyparkinson"
    files = [
        FileEntry(f"{folder}/recscan/scan_00000.tiff", 10, MTIME, "aa"),
        FileEntry(f"{folder}/recscan.zarr/zarr.json", 5, MTIME + 60, "bb"),
    ]

    derived = derived_dataset(
        raw,
        raw_pid="bl832.local/1",
        scan_key="scan",
        tiff_folder=f"{folder}/recscan",
        zarr_folder=f"{folder}/recscan.zarr",
        files=files,
        used_software=["bl832 recon", "bl832 pyramid"],
        job_parameters={"center": 1280.5},
    )

    assert derived["type"] == "derived"
    assert derived["inputDatasets"] == ["bl832.local/1"]
    assert derived["usedSoftware"] == ["bl832 recon", "bl832 pyramid"]
    assert derived["jobParameters"] == {"center": 1280.5}
    for field in ("owner", "ownerGroup", "accessGroups", "contactEmail", "proposalId"):
        assert derived[field] == raw[field]
    assert derived["investigator"] == raw["principalInvestigator"]
    assert derived["sourceFolder"] == folder
    assert (derived["size"], derived["numberOfFiles"]) == (15, 2)
    assert derived["creationTime"] == "2023-06-06T15:12:24.500+00:00"
    assert derived["scientificMetadata"]["tiffFolder"] == "recscan"
    assert derived["scientificMetadata"]["zarrFolder"] == "recscan.zarr"
