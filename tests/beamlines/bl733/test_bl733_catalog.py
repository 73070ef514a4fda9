"""7.3.3's catalog mapping: one raw dataset per pair, owned by the proposal its text header
names (never a hard-coded person), and its azimuthal integration as a derived dataset."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bl832_assets.beamlines.bl733.catalog import (
    BEAMLINE,
    RAW_FORMAT,
    USED_SOFTWARE,
    integration_fields,
    pi_name,
    raw_fields,
)
from bl832_assets.beamlines.bl733.geometry import Geometry
from bl832_assets.beamlines.bl733.payload import run_integration
from bl832_assets.beamlines.bl733.readers import read_pair
from bl832_assets.beamlines.bl733.synth import DEFAULT_GEOMETRY, Calibrant, write_calibrant_pair
from bl832_assets.resources.catalog.mapping import UNKNOWN_EMAIL
from bl832_assets.resources.catalog.records import FileEntry

TAKEN = 1_717_686_684.25  # 2024-06-06T15:11:24.25Z
RAW_PID = "bl832.local/raw-733"


def fields_of(calibrant: Calibrant, geometry: Geometry | None = None) -> dict[str, Any]:
    """The raw fields of a written pair, its image dated ``TAKEN``."""
    assert calibrant.pair.image is not None
    os.utime(calibrant.pair.image, (TAKEN, TAKEN))
    text, frame = read_pair(calibrant.pair)
    return raw_fields(text, frame, calibrant.pair.image.stat().st_mtime, geometry)


def messy_pair(folder: Path, *, proposal: str, pi: str, extra: str = "") -> Calibrant:
    """A pair whose header says ``proposal`` and ``pi`` as typed, plus ``extra`` lines."""
    calibrant = write_calibrant_pair(folder, "kapton_B13_2m", proposal=proposal, pi=pi)
    assert calibrant.pair.text is not None
    with calibrant.pair.text.open("a", encoding="utf-8", newline="") as header:
        header.write(extra)
    return calibrant


def test_raw_dataset_is_owned_by_the_headers_proposal_and_pi(calibrant: Calibrant) -> None:
    fields = fields_of(calibrant)

    assert fields["datasetName"] == "agbh_cal_2m"
    assert fields["ownerGroup"] == fields["proposalId"] == "ALS-12345"
    assert fields["accessGroups"] == ["ALS-12345", BEAMLINE]
    assert fields["owner"] == fields["principalInvestigator"] == "Jane Doe"
    assert fields["contactEmail"] == UNKNOWN_EMAIL  # the header names no address
    assert (fields["creationLocation"], fields["instrumentId"]) == ("ALS 7.3.3", "7.3.3")
    assert fields["sourceFolder"] == str(calibrant.pair.folder)
    assert fields["creationTime"] == "2024-06-06T15:11:24.250+00:00"
    assert fields["dataFormat"] == RAW_FORMAT
    assert fields["sampleId"] == "AgBh (silver behenate) 25 °C"


def test_keywords_are_the_techniques_and_the_sample_codes(calibrant: Calibrant) -> None:
    keywords = fields_of(calibrant)["keywords"]

    assert keywords == [
        "SAXS",
        "ALS",
        "7.3.3",
        "scattering",
        *["agbh", "cal", "2m", "silver", "behenate", "25"],
    ]


def test_scientific_metadata_keeps_both_headers_apart_and_the_geometry(
    calibrant: Calibrant,
) -> None:
    scientific = fields_of(calibrant, DEFAULT_GEOMETRY)["scientificMetadata"]

    assert scientific["edf_header"]["title"] == "# Pixel_size 172e-6 m x 172e-6 m"
    assert scientific["text_header"]["ALS Proposal #"] == "ALS-12345"
    assert scientific["text_header"]["M1 Pitch"] == ["0.202033", "0.202057"]
    assert scientific["image_shape"] == [256, 256]
    # The settings' geometry, its pixel size taken from the EDF header.
    assert scientific["geometry"]["pixel_size_m"] == [172e-6, 172e-6]
    assert scientific["geometry"]["distance_m"] == DEFAULT_GEOMETRY.distance_m


def test_without_a_geometry_in_the_settings_none_is_recorded(calibrant: Calibrant) -> None:
    assert "geometry" not in fields_of(calibrant)["scientificMetadata"]


def test_a_messy_header_still_yields_the_proposal_group_pi_and_address(tmp_path: Path) -> None:
    calibrant = messy_pair(
        tmp_path, proposal="  ALS  12345 ", pi="  Dr. Jane Doe <JDoe @ LBL.gov>  "
    )

    fields = fields_of(calibrant)

    assert fields["proposalId"] == "ALS  12345"
    assert fields["ownerGroup"] == "ALS_12345"
    assert fields["accessGroups"] == ["ALS_12345", BEAMLINE]
    assert fields["owner"] == fields["principalInvestigator"] == "Dr. Jane Doe"
    assert fields["contactEmail"] == "jdoe@lbl.gov"


def test_the_headers_email_line_is_the_contact(tmp_path: Path) -> None:
    calibrant = messy_pair(
        tmp_path,
        proposal="ALS-12345",
        pi="Jane Doe <jane@example.org>",
        extra='E-mail : "Beam Team" <BeamTeam@LBL.gov>, other@lbl.gov\r\n',
    )

    assert fields_of(calibrant)["contactEmail"] == "beamteam@lbl.gov"


@pytest.mark.parametrize("proposal", ["", "None", "   "])
def test_without_a_proposal_the_beamline_group_owns_the_data(tmp_path: Path, proposal: str) -> None:
    fields = fields_of(messy_pair(tmp_path, proposal=proposal, pi=""))

    assert fields["ownerGroup"] == BEAMLINE
    assert fields["accessGroups"] == [BEAMLINE]
    assert "proposalId" not in fields
    assert fields["owner"] == fields["principalInvestigator"] == "unknown"


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("Jane Doe", "Jane Doe"),
        ("Jane Doe <jdoe@lbl.gov>", "Jane Doe"),
        ("'Jane Doe' (mailto:JDoe@LBL.gov)", "Jane Doe"),
        ("Jane Doe, jdoe @ lbl.gov", "Jane Doe"),
        ("jdoe@lbl.gov", ""),
    ],
)
def test_pi_name_leaves_out_addresses(typed: str, name: str) -> None:
    assert pi_name(typed) == name


def test_a_text_header_and_another_stems_image_are_refused(tmp_path: Path) -> None:
    one = write_calibrant_pair(tmp_path, "one")
    other = write_calibrant_pair(tmp_path, "other")
    text, _ = read_pair(one.pair)
    _, frame = read_pair(other.pair)

    with pytest.raises(ValueError, match=re.escape("other.edf is not the image of one.txt")):
        raw_fields(text, frame, 0.0)


def test_integration_is_a_derived_dataset_of_the_raw_one(
    calibrant: Calibrant, tmp_path: Path
) -> None:
    raw = fields_of(calibrant)
    integration = run_integration(calibrant.pair, tmp_path / "analysis", DEFAULT_GEOMETRY)
    files = [
        FileEntry(str(integration[name]), 100, TAKEN + 60, "ab") for name in ("path", "plot_path")
    ]

    derived = integration_fields(raw, RAW_PID, integration, files)

    assert derived["datasetName"] == "agbh_cal_2m azimuthal integration"
    assert derived["inputDatasets"] == [RAW_PID]
    assert derived["usedSoftware"] == list(USED_SOFTWARE) == ["pyFAI", "bl832_assets"]
    assert derived["jobParameters"] == {
        "geometry": integration["geometry"],
        "npt": integration["npt"],
    }
    for field in ("owner", "contactEmail", "ownerGroup", "accessGroups", "proposalId"):
        assert derived[field] == raw[field]
    assert derived["investigator"] == raw["principalInvestigator"]
    assert derived["sourceFolder"] == str(tmp_path / "analysis")
    assert derived["creationTime"] == "2024-06-06T15:12:24.250+00:00"
    scientific = derived["scientificMetadata"]
    assert scientific["peaks_q"] == integration["peaks_q"] and scientific["peaks_q"]
    assert scientific["q_min"] < scientific["q_max"]
    assert "dataFormat" not in derived  # SciCat's derived datasets have no such field


def test_the_mapping_imports_no_dagster() -> None:
    code = "import sys, bl832_assets.beamlines.bl733.catalog; sys.exit('dagster' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
