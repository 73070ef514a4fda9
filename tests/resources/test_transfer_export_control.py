"""The transfer layer refuses by itself to copy an export-controlled scan off site, whatever
its caller decided: before any task exists and before any byte moves."""

import sqlite3
import uuid
from pathlib import Path

import pytest
from resource_support import SCAN, files_in, root, write

from bl832_assets.resources.transfer import (
    ExportControlled,
    LocalTransferResource,
    TransferError,
)
from bl832_assets.resources.wiring import build_resources
from bl832_assets.settings import DEFAULT_LAYOUT, Settings


def task_count(transfer: LocalTransferResource) -> int:
    if not Path(transfer.database).exists():
        return 0
    with sqlite3.connect(transfer.database) as db:
        return db.execute("SELECT count(*) FROM tasks").fetchone()[0]


@pytest.fixture
def guarded(transfer: LocalTransferResource) -> LocalTransferResource:
    """The test site with NERSC's storage marked as outside the ALS site."""
    write(root(transfer, "spot832") / SCAN, b"controlled projections")
    return transfer.model_copy(update={"offsite": ["nersc_cfs"]})


def test_export_controlled_scan_is_refused_off_site_before_any_task(
    guarded: LocalTransferResource,
) -> None:
    guarded.copy("spot832", "data832_raw", SCAN, label="raw", export_controlled=True)

    with pytest.raises(ExportControlled) as refused:
        guarded.copy("spot832", "nersc_cfs", SCAN, label="to nersc", export_controlled=True)

    assert isinstance(refused.value, TransferError)
    message = str(refused.value)
    assert SCAN in message and "nersc_cfs" in message and "outside the ALS site" in message
    assert (refused.value.source, refused.value.destination) == ("spot832", "nersc_cfs")
    assert files_in(root(guarded, "nersc_cfs")) == []
    assert task_count(guarded) == 1  # the on-site copy only


def test_export_controlled_scan_is_still_copied_on_site(guarded: LocalTransferResource) -> None:
    result = guarded.copy("spot832", "data832_raw", SCAN, label="raw", export_controlled=True)

    assert (root(guarded, "data832_raw") / SCAN).read_bytes() == b"controlled projections"
    assert result.files_transferred == 1


def test_export_controlled_scan_may_come_home_from_off_site(
    guarded: LocalTransferResource,
) -> None:
    write(root(guarded, "nersc_cfs") / SCAN, b"reconstructed before the rule")

    guarded.copy("nersc_cfs", "data832_raw", SCAN, label="home", export_controlled=True)

    assert (root(guarded, "data832_raw") / SCAN).exists()


def test_other_scans_still_go_off_site(guarded: LocalTransferResource) -> None:
    guarded.copy("spot832", "nersc_cfs", SCAN, label="to nersc", export_controlled=False)

    assert files_in(root(guarded, "nersc_cfs")) == [SCAN]


def test_without_offsite_endpoints_nothing_is_refused(transfer: LocalTransferResource) -> None:
    write(root(transfer, "spot832") / SCAN, b"scan")

    transfer.copy("spot832", "nersc_cfs", SCAN, label="to nersc", export_controlled=True)

    assert transfer.offsite == []
    assert files_in(root(transfer, "nersc_cfs")) == [SCAN]


def test_the_site_settings_decide_which_endpoints_are_off_site(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    transfer = build_resources(settings)["transfer"]
    assert isinstance(transfer, LocalTransferResource)
    write(settings.root("spot832") / SCAN, b"controlled projections")

    with pytest.raises(ExportControlled):
        transfer.copy("spot832", "nersc_cfs", SCAN, label="to nersc", export_controlled=True)
    transfer.copy("spot832", "data832_raw", SCAN, label="raw", export_controlled=True)

    assert not (settings.root("nersc_cfs") / SCAN).exists()
    assert (settings.root("data832_raw") / SCAN).exists()
    assert sorted(transfer.offsite) == sorted(
        name for name, (facility, _) in DEFAULT_LAYOUT.items() if facility != "als"
    )


def test_the_globus_backend_gets_the_endpoints_marked_off_site(tmp_path: Path) -> None:
    endpoints = {
        name: {
            "facility": facility,
            "root": folder,
            "collection_id": str(uuid.uuid4()),
            "onsite": name != "data832_scratch",  # a site may mark any endpoint off site
        }
        for name, (facility, folder) in DEFAULT_LAYOUT.items()
    }
    settings = Settings(home=tmp_path, backends={"transfer": "globus"}, endpoints=endpoints)

    assert build_resources(settings)["transfer"].offsite == ["data832_scratch"]
