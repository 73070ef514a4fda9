"""The local catalog keeps one dataset per scan, however often and from wherever it is ingested."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from resource_support import SCAN, scan_metadata

from bl832_assets.resources.catalog import (
    DatasetNotFound,
    FileEntry,
    LocalCatalogResource,
)

SCAN_FILE = f"/data/raw/{SCAN}"
SCAN_KEY = Path(SCAN).stem
SCRATCH = "/data/scratch/BLS-00564_dyparkinson"
MTIME = 1_686_064_284.0


@pytest.fixture
def catalog(tmp_path: Path) -> LocalCatalogResource:
    return LocalCatalogResource(database=str(tmp_path / "catalog.sqlite"))


def scan_files(sha256: str = "aa") -> list[FileEntry]:
    return [FileEntry(SCAN_FILE, 1234, MTIME, sha256)]


def recon_files() -> list[FileEntry]:
    return [
        FileEntry(f"{SCRATCH}/rec{SCAN_KEY}/{SCAN_KEY}_00000.tiff", 10, MTIME, "t0"),
        FileEntry(f"{SCRATCH}/rec{SCAN_KEY}.zarr/zarr.json", 5, MTIME, "z0"),
    ]


def ingest_derived(catalog: LocalCatalogResource, raw_pid: str, software: str = "bl832 recon"):
    return catalog.ingest_derived(
        raw_pid,
        SCAN_KEY,
        f"{SCRATCH}/rec{SCAN_KEY}",
        f"{SCRATCH}/rec{SCAN_KEY}.zarr",
        recon_files(),
        [software],
        {"center": 1280.5},
    )


def rows(catalog: LocalCatalogResource) -> list[tuple[str, str]]:
    with sqlite3.connect(catalog.database) as db:
        return db.execute("SELECT type, scan_key FROM datasets ORDER BY type").fetchall()


def test_ingesting_a_scan_creates_a_dataset_with_a_scicat_like_pid(
    catalog: LocalCatalogResource,
) -> None:
    created = catalog.ingest_raw(SCAN_FILE, scan_metadata(), scan_files())

    assert created.created
    prefix, _, unique = created.pid.partition("/")
    assert prefix == "bl832.local" and len(unique) == 36
    assert created.record["pid"] == created.pid
    assert catalog.get(created.pid) == created.record
    block = created.record["origdatablocks"][0]
    assert block["dataFileList"][0]["chk"] == "aa"


def test_ingesting_the_same_scan_again_updates_it_and_keeps_its_pid(
    catalog: LocalCatalogResource,
) -> None:
    first = catalog.ingest_raw(SCAN_FILE, scan_metadata(), scan_files())

    again = catalog.ingest_raw(
        SCAN_FILE, scan_metadata(sample_name="fungi1 retake"), scan_files(sha256="bb")
    )

    assert again.pid == first.pid
    assert not again.created
    assert rows(catalog) == [("raw", SCAN_KEY)]
    stored = catalog.get(first.pid)
    assert stored is not None
    assert stored["datasetName"] == "fungi1 retake"
    assert stored["origdatablocks"][0]["dataFileList"][0]["chk"] == "bb"
    assert stored["createdAt"] == first.record["createdAt"]
    assert stored["updatedAt"] >= first.record["updatedAt"]


def test_find_raw_by_scan_key_or_by_path(catalog: LocalCatalogResource) -> None:
    created = catalog.ingest_raw(SCAN_FILE, scan_metadata(), scan_files())

    by_key = catalog.find_raw(SCAN_KEY)
    by_path = catalog.find_raw(f"/elsewhere/{SCAN}")

    assert by_key is not None and by_path is not None
    assert by_key.pid == by_path.pid == created.pid
    assert catalog.find_raw("20990101_000000_never") is None
    assert catalog.get("bl832.local/unknown") is None


def test_derived_dataset_is_linked_and_idempotent(catalog: LocalCatalogResource) -> None:
    raw = catalog.ingest_raw(SCAN_FILE, scan_metadata(), scan_files())

    derived = ingest_derived(catalog, raw.pid)
    again = ingest_derived(catalog, raw.pid, software="bl832 recon v2")

    assert derived.created and not again.created
    assert again.pid == derived.pid != raw.pid
    assert again.record["inputDatasets"] == [raw.pid]
    assert again.record["usedSoftware"] == ["bl832 recon v2"]
    assert again.record["accessGroups"] == raw.record["accessGroups"]
    assert rows(catalog) == [("derived", SCAN_KEY), ("raw", SCAN_KEY)]


def test_derived_dataset_of_an_unknown_raw_dataset_is_refused(
    catalog: LocalCatalogResource,
) -> None:
    with pytest.raises(DatasetNotFound, match=re.escape("bl832.local/missing")):
        ingest_derived(catalog, "bl832.local/missing")

    assert rows(catalog) == []


_INGEST_MANY = """
import sys
from bl832_assets.resources.catalog import FileEntry, LocalCatalogResource
from resource_support import scan_metadata
catalog = LocalCatalogResource(database=sys.argv[1])
for _ in range(20):
    catalog.ingest_raw(sys.argv[2], scan_metadata(), [FileEntry(sys.argv[2], 1, 0.0, "aa")])
"""


def test_concurrent_ingests_from_several_processes_make_one_dataset(
    catalog: LocalCatalogResource,
) -> None:
    here = str(Path(__file__).parents[1])  # tests/, where resource_support lives
    command = [sys.executable, "-c", _INGEST_MANY, catalog.database, SCAN_FILE]
    processes = [subprocess.Popen(command, cwd=here) for _ in range(4)]

    assert [process.wait(timeout=120) for process in processes] == [0, 0, 0, 0]
    assert rows(catalog) == [("raw", SCAN_KEY)]
