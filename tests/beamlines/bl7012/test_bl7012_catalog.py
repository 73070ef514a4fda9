"""7.0.1.2's catalog mapping: a CXI scan as a raw dataset (the beamline's group owns it, since
the file names no proposal) and its reconstruction as a derived dataset linked to it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bl832_assets.beamlines.bl7012.catalog import (
    BEAMLINE,
    DATA_FORMAT,
    raw_fields,
    reconstruction_fields,
)
from bl832_assets.beamlines.bl7012.cxi import read_header
from bl832_assets.beamlines.bl7012.params import PieParams
from bl832_assets.beamlines.bl7012.payload import run_ptycho
from bl832_assets.beamlines.bl7012.synth import ENERGY_EV, SyntheticScan
from bl832_assets.resources.catalog.mapping import UNKNOWN_EMAIL
from bl832_assets.resources.catalog.records import FileEntry

TAKEN = 1_732_545_000.0  # 2024-11-25T14:30:00Z
RAW_PID = "bl832.local/raw-7012"
ITERATIONS = 3  # the mapping only reads what a run reports, not how good it is


def fields_of(synthetic: SyntheticScan, **owner: str) -> dict[str, Any]:
    return raw_fields(synthetic.path, read_header(synthetic.path), TAKEN, **owner)


def test_a_scan_without_a_proposal_is_owned_by_the_beamline_group(
    synthetic: SyntheticScan,
) -> None:
    fields = fields_of(synthetic)

    assert fields["ownerGroup"] == BEAMLINE == "7.0.1.2"
    assert fields["accessGroups"] == [BEAMLINE]
    assert "proposalId" not in fields
    assert fields["owner"] == fields["principalInvestigator"] == "unknown"
    assert fields["contactEmail"] == UNKNOWN_EMAIL
    assert (fields["creationLocation"], fields["instrumentId"]) == ("ALS 7.0.1.2", "7.0.1.2")


def test_a_known_proposal_pi_and_address_make_the_owner(synthetic: SyntheticScan) -> None:
    fields = fields_of(
        synthetic, proposal=" ALS 09876 ", pi=" Ada Lovelace ", contact_email="<ADA@lbl.gov>"
    )

    assert fields["proposalId"] == "ALS 09876"
    assert fields["ownerGroup"] == "ALS_09876"
    assert fields["accessGroups"] == ["ALS_09876", BEAMLINE]
    assert fields["owner"] == fields["principalInvestigator"] == "Ada Lovelace"
    assert fields["contactEmail"] == "ada@lbl.gov"


def test_raw_dataset_describes_the_scan_from_its_header(synthetic: SyntheticScan) -> None:
    fields = fields_of(synthetic)

    assert fields["datasetName"] == synthetic.path.stem == "NS_241125001_ccdframes_0_0"
    assert fields["sourceFolder"] == str(synthetic.path.parent)
    assert fields["creationTime"] == "2024-11-25T14:30:00.000+00:00"
    assert fields["dataFormat"] == DATA_FORMAT == "CXI"
    assert {"ptychography", "ALS", BEAMLINE} <= set(fields["keywords"])
    scientific = fields["scientificMetadata"]
    assert scientific["energy_ev"] == pytest.approx(ENERGY_EV)
    assert scientific["frames"] == scientific["positions"] == len(synthetic.positions)
    assert scientific["frame_shape"] == [32, 32]
    assert scientific["probe_guess"] is True


def test_reconstruction_is_a_derived_dataset_of_the_scan(
    synthetic: SyntheticScan, tmp_path: Path
) -> None:
    raw = fields_of(synthetic, proposal="ALS-09876", pi="Ada Lovelace")
    run = run_ptycho(synthetic.path, tmp_path / "recon", PieParams(iterations=ITERATIONS))
    files = [
        FileEntry(str(run[name]), 100, TAKEN + 60, "ab")
        for name in ("path", "amplitude_png", "phase_png")
    ]

    derived = reconstruction_fields(raw, RAW_PID, run, files)

    assert derived["datasetName"] == "NS_241125001_ccdframes_0_0 ptychographic reconstruction"
    assert derived["inputDatasets"] == [RAW_PID]
    assert derived["usedSoftware"] == ["mPIE"]
    assert derived["jobParameters"] == PieParams(iterations=ITERATIONS).model_dump()
    for field in ("owner", "contactEmail", "ownerGroup", "accessGroups", "proposalId"):
        assert derived[field] == raw[field]
    assert derived["investigator"] == "Ada Lovelace"
    assert derived["sourceFolder"] == str(tmp_path / "recon")
    assert derived["creationTime"] == "2024-11-25T14:31:00.000+00:00"
    scientific = derived["scientificMetadata"]
    assert scientific["object_shape"] == run["object_shape"]
    assert scientific["final_error"] == run["final_error"]
    assert scientific["image"] == "entry_1/image_1"
    assert "dataFormat" not in derived  # SciCat's derived datasets have no such field


def test_a_reconstruction_without_files_is_refused(synthetic: SyntheticScan) -> None:
    run = {"path": "/x/r.cxi", "engine": "mPIE", "params": {}, "final_error": 0.1}

    with pytest.raises(ValueError, match="has no files"):
        reconstruction_fields(fields_of(synthetic), RAW_PID, run, [])


def test_the_mapping_imports_no_dagster() -> None:
    code = "import sys, bl832_assets.beamlines.bl7012.catalog; sys.exit('dagster' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
