"""Any beamline's datasets in the catalog, the same on the local catalog and on SciCat (the real
pyscicat client against the fake backend): one dataset per (beamline, kind, key) however often
it is ingested, derived datasets linked to their raw one, 8.3.2's scans found among them."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from resource_support import SCAN, scan_metadata

from bl832_assets.beamline_settings import CatalogMapping
from bl832_assets.beamlines.bl733 import catalog as bl733
from bl832_assets.beamlines.bl733.dataset import Pair
from bl832_assets.beamlines.bl733.payload import run_integration
from bl832_assets.beamlines.bl733.readers import read_pair
from bl832_assets.beamlines.bl733.synth import DEFAULT_GEOMETRY, write_calibrant_pair
from bl832_assets.beamlines.bl7012 import catalog as bl7012
from bl832_assets.beamlines.bl7012.cxi import read_header
from bl832_assets.beamlines.bl7012.params import PieParams
from bl832_assets.beamlines.bl7012.payload import run_ptycho
from bl832_assets.beamlines.bl7012.synth import write_synthetic_scan
from bl832_assets.fakes.scicat import FakeSciCat
from bl832_assets.resources.catalog import (
    CatalogRecord,
    CatalogResource,
    DatasetNotFound,
    DatasetRecord,
    FileEntry,
    LocalCatalogResource,
)
from bl832_assets.resources.catalog.local import SCHEMA_VERSION
from bl832_assets.resources.catalog.mapping import raw_dataset
from bl832_assets.resources.catalog.move_only import raw_fields
from bl832_assets.resources.catalog.scicat import ScicatCatalogResource

PASSWORD = "ingestor-password"
THUMBNAIL = "data:image/png;base64,iVBORw0KGgo="
STEM = "agbh_cal_2m"
RACERS = 8

Count = Callable[[], int]


@pytest.fixture
def fake() -> FakeSciCat:
    return FakeSciCat(users={"ingestor": PASSWORD})


@pytest.fixture(params=["local", "scicat"])
def catalog(
    request: pytest.FixtureRequest, tmp_path: Path, fake: FakeSciCat
) -> Iterator[CatalogResource]:
    """Each test runs on both: the local catalog, and SciCat served by the fake."""
    if request.param == "local":
        yield LocalCatalogResource(database=str(tmp_path / "catalog.sqlite"))
        return
    with fake.serve() as url:
        yield ScicatCatalogResource(url=url, username="ingestor", password=PASSWORD)


@pytest.fixture
def datasets(catalog: CatalogResource, fake: FakeSciCat) -> Count:
    """How many datasets the catalog holds, read from its storage, not through the resource."""
    if isinstance(catalog, LocalCatalogResource):
        database = catalog.database

        def rows() -> int:
            with sqlite3.connect(database) as db:
                return int(db.execute("SELECT count(*) FROM datasets").fetchone()[0])

        return rows
    return lambda: len(fake.datasets)


def entries(*paths: Path, salt: str = "") -> tuple[FileEntry, ...]:
    """Datablock entries of files as they are on disk (``salt`` changes their checksums)."""
    return tuple(
        FileEntry(
            str(path),
            path.stat().st_size,
            path.stat().st_mtime,
            hashlib.sha256(path.read_bytes() + salt.encode()).hexdigest(),
        )
        for path in paths
    )


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    """A 7.3.3 calibrant pair, ``agbh_cal_2m.txt`` and ``.edf``."""
    return write_calibrant_pair(tmp_path / "data733", STEM).pair


def pair_record(pair: Pair, *, salt: str = "", thumbnail: str | None = THUMBNAIL) -> DatasetRecord:
    """The record a pair's raw dataset is ingested from."""
    text, frame = read_pair(pair)
    assert pair.image is not None
    fields = bl733.raw_fields(text, frame, pair.image.stat().st_mtime, DEFAULT_GEOMETRY)
    files = entries(*pair.files, salt=salt)
    return DatasetRecord(bl733.BEAMLINE, pair.stem, "raw", fields, files, thumbnail)


def integration_record(pair: Pair, raw: CatalogRecord, npt: int = 500) -> DatasetRecord:
    """The derived record of the pair's integration into ``analysis/`` beside it."""
    integration = run_integration(pair, pair.folder / "analysis", DEFAULT_GEOMETRY, npt=npt)
    files = entries(Path(str(integration["path"])), Path(str(integration["plot_path"])))
    fields = bl733.integration_fields(raw.record, raw.pid, integration, files)
    return DatasetRecord(bl733.BEAMLINE, pair.stem, "derived", fields, files)


def test_a_pair_is_one_raw_dataset_with_its_files_and_thumbnail(
    catalog: CatalogResource, pair: Pair
) -> None:
    record = pair_record(pair)

    ingested = catalog.ingest_dataset(record)

    assert ingested.created
    stored = ingested.record
    assert (stored["type"], stored["runNumber"], stored["datasetName"]) == ("raw", STEM, STEM)
    assert stored["ownerGroup"] == "ALS-12345" and stored["principalInvestigator"] == "Jane Doe"
    assert stored["size"] == sum(f.size for f in record.files)
    assert stored["numberOfFiles"] == 2
    (block,) = stored["origdatablocks"]
    assert [f["path"] for f in block["dataFileList"]] == [f"{STEM}.txt", f"{STEM}.edf"]
    assert [f["chk"] for f in block["dataFileList"]] == [f.sha256 for f in record.files]
    (attachment,) = stored["attachments"]
    assert (attachment["thumbnail"], attachment["caption"]) == (THUMBNAIL, "raw image")
    found = catalog.find_dataset("7.3.3", STEM, "raw")
    assert found is not None and (found.pid, found.created) == (ingested.pid, False)
    assert catalog.get(ingested.pid) == found.record


def test_reingesting_updates_the_one_dataset_and_keeps_its_pid(
    catalog: CatalogResource, datasets: Count, pair: Pair
) -> None:
    first = catalog.ingest_dataset(pair_record(pair))

    again = catalog.ingest_dataset(
        pair_record(pair, salt="changed", thumbnail="data:image/png;base64,AAAA")
    )

    assert (again.pid, again.created) == (first.pid, False)
    assert datasets() == 1
    checksums = [
        [f["chk"] for f in record["origdatablocks"][0]["dataFileList"]]
        for record in (first.record, again.record)
    ]
    assert checksums[1] == [f.sha256 for f in pair_record(pair, salt="changed").files]
    assert checksums[0] != checksums[1]
    assert [a["thumbnail"] for a in again.record["attachments"]] == ["data:image/png;base64,AAAA"]


def test_a_derived_dataset_is_linked_to_its_raw_one_and_idempotent(
    catalog: CatalogResource, datasets: Count, pair: Pair
) -> None:
    raw = catalog.ingest_dataset(pair_record(pair))

    derived = catalog.ingest_dataset(integration_record(pair, raw))
    again = catalog.ingest_dataset(integration_record(pair, raw, npt=800))

    assert derived.created and derived.pid != raw.pid
    assert (again.pid, again.created) == (derived.pid, False)
    stored = again.record
    assert stored["type"] == "derived"
    assert stored["inputDatasets"] == [raw.pid]
    assert stored["jobParameters"]["npt"] == 800
    assert (stored["ownerGroup"], stored["accessGroups"]) == (
        raw.record["ownerGroup"],
        raw.record["accessGroups"],
    )
    assert [f["path"] for f in stored["origdatablocks"][0]["dataFileList"]] == [
        f"{STEM}_profile.csv",
        f"{STEM}_profile.png",
    ]
    found = catalog.find_dataset("7.3.3", STEM, "derived")
    assert found is not None and found.pid == derived.pid
    assert datasets() == 2


def test_a_derived_dataset_of_an_uncatalogued_raw_one_is_refused(
    catalog: CatalogResource, datasets: Count, pair: Pair, tmp_path: Path
) -> None:
    elsewhere = LocalCatalogResource(database=str(tmp_path / "elsewhere.sqlite"))
    raw = elsewhere.ingest_dataset(pair_record(pair))

    with pytest.raises(DatasetNotFound, match=raw.pid):
        catalog.ingest_dataset(integration_record(pair, raw))

    assert datasets() == 0


def test_a_ptychography_scan_and_its_reconstruction(
    catalog: CatalogResource, tmp_path: Path
) -> None:
    scan = write_synthetic_scan(tmp_path / "data7012" / "NS_241125001_ccdframes_0_0.cxi")
    key = scan.path.stem
    (scan_file,) = entries(scan.path)
    fields = bl7012.raw_fields(scan.path, read_header(scan.path), scan_file.mtime)
    raw = catalog.ingest_dataset(DatasetRecord("7.0.1.2", key, "raw", fields, (scan_file,)))
    run = run_ptycho(scan.path, tmp_path / "recon", PieParams(iterations=3))
    files = entries(*(Path(str(run[name])) for name in ("path", "amplitude_png", "phase_png")))
    derived_fields = bl7012.reconstruction_fields(raw.record, raw.pid, run, files)

    derived = catalog.ingest_dataset(
        DatasetRecord("7.0.1.2", key, "derived", derived_fields, files)
    )

    assert raw.record["ownerGroup"] == "7.0.1.2" and raw.record["dataFormat"] == "CXI"
    assert derived.record["inputDatasets"] == [raw.pid]
    assert derived.record["usedSoftware"] == ["mPIE"]
    assert derived.record["numberOfFiles"] == 3
    found = catalog.find_dataset("7.0.1.2", key, "derived")
    assert found is not None and found.pid == derived.pid


def move_only_record(folder: Path, key: str, settings: CatalogMapping) -> DatasetRecord:
    """A 9.3.1 dataset: two files nobody reads, catalogued from settings alone."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{key}.h5", folder / f"{key}_log.txt"]
    for number, path in enumerate(paths):
        path.write_bytes(b"x" * (number + 10))
    files = entries(*paths)
    return DatasetRecord("9.3.1", key, "raw", raw_fields("9.3.1", key, files, settings), files)


def test_a_move_only_beamlines_dataset_is_catalogued_from_its_settings(
    catalog: CatalogResource, tmp_path: Path
) -> None:
    settings = CatalogMapping(
        owner_group="bl931-users",
        access_groups=["als-staff"],
        keywords=["tender X-ray", "spectroscopy"],
        data_format="HDF5",
        contact_email="BL931 team <bl931@lbl.gov>",
    )
    record = move_only_record(tmp_path / "data931" / "2026", "scan_0042", settings)

    stored = catalog.ingest_dataset(record).record

    assert stored["ownerGroup"] == "bl931-users"
    assert stored["accessGroups"] == ["bl931-users", "als-staff", "9.3.1"]
    assert (stored["creationLocation"], stored["instrumentId"]) == ("ALS 9.3.1", "9.3.1")
    assert stored["contactEmail"] == "bl931@lbl.gov"
    assert stored["principalInvestigator"] == "unknown"
    assert stored["keywords"] == ["tender X-ray", "spectroscopy", "ALS", "9.3.1", "scan", "0042"]
    assert stored["dataFormat"] == "HDF5"
    assert stored["sourceFolder"] == str(tmp_path / "data931" / "2026")
    assert (stored["size"], stored["numberOfFiles"]) == (21, 2)
    assert stored["creationTime"] == record.fields["creationTime"]


def test_the_same_stem_at_two_beamlines_is_two_datasets(
    catalog: CatalogResource, datasets: Count, tmp_path: Path
) -> None:
    at_733 = catalog.ingest_dataset(
        pair_record(write_calibrant_pair(tmp_path / "data733", "sample1").pair)
    )
    at_931 = catalog.ingest_dataset(
        move_only_record(tmp_path / "data931", "sample1", CatalogMapping())
    )

    assert at_733.pid != at_931.pid and datasets() == 2
    assert catalog.find_dataset("7.3.3", "sample1", "raw").pid == at_733.pid  # type: ignore[union-attr]
    assert catalog.find_dataset("9.3.1", "sample1", "raw").pid == at_931.pid  # type: ignore[union-attr]
    assert catalog.find_dataset("7.0.1.2", "sample1", "raw") is None
    assert catalog.find_dataset("7.3.3", "sample1", "derived") is None


def test_8_3_2_scans_are_found_as_beamline_8_3_2(catalog: CatalogResource) -> None:
    scan_file = f"/data/raw/{SCAN}"
    key = Path(SCAN).stem
    created = catalog.ingest_raw(
        scan_file, scan_metadata(), [FileEntry(scan_file, 1234, 1_686_064_284.0, "aa")]
    )

    found = catalog.find_dataset("8.3.2", key, "raw")

    assert found is not None and found.pid == created.pid
    assert catalog.find_dataset("7.3.3", key, "raw") is None


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"beamline": "bl733"}, "dotted id"),
        ({"kind": "processed"}, "kind must be one of raw, derived"),
        ({"key": "data/agbh_cal_2m"}, "not a path"),
        ({"files": ()}, "no files"),
        ({"fields": {"accessGroups": ["ALS-12345"], "sourceFolder": "/d"}}, "beamline's group"),
        ({"fields": {"accessGroups": ["7.3.3"]}}, "no sourceFolder"),
        ({"kind": "derived"}, "must name its inputDatasets"),
    ],
)
def test_a_record_the_catalog_could_not_find_again_is_refused(
    changes: dict[str, object], problem: str
) -> None:
    values: dict[str, object] = {
        "beamline": "7.3.3",
        "key": STEM,
        "kind": "raw",
        "fields": {"accessGroups": ["ALS-12345", "7.3.3"], "sourceFolder": "/data733"},
        "files": (FileEntry(f"/data733/{STEM}.edf", 1, 0.0, "aa"),),
    }
    with pytest.raises(ValueError, match=problem):
        DatasetRecord(**{**values, **changes})  # type: ignore[arg-type]


def test_concurrent_ingests_of_one_pair_make_one_dataset(
    catalog: CatalogResource, datasets: Count, pair: Pair
) -> None:
    """As concurrent runs would: SciCat has no unique key on what names a dataset, so this is
    the pid derived from it meeting a 409; locally, the UNIQUE constraint."""
    record = pair_record(pair)
    barrier = threading.Barrier(RACERS)

    def one() -> CatalogRecord:
        barrier.wait(timeout=30)
        return catalog.ingest_dataset(record)  # each call its own connection or login

    with ThreadPoolExecutor(RACERS) as pool:
        results = [future.result() for future in [pool.submit(one) for _ in range(RACERS)]]

    assert datasets() == 1
    assert len({r.pid for r in results}) == 1
    assert [r.created for r in results].count(True) == 1
    stored = catalog.get(results[0].pid)
    assert stored is not None
    assert len(stored["origdatablocks"]) == len(stored["attachments"]) == 1


_OLD_SCHEMA = """
CREATE TABLE datasets (
    pid TEXT PRIMARY KEY,
    type TEXT NOT NULL CHECK (type IN ('raw', 'derived')),
    scan_key TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (type, scan_key)
)
"""


def test_a_catalog_written_before_beamlines_opens_with_its_scans_as_8_3_2s(
    tmp_path: Path,
) -> None:
    database = tmp_path / "catalog.sqlite"
    scan_file = f"/data/raw/{SCAN}"
    key = Path(SCAN).stem
    files = [FileEntry(scan_file, 1234, 1_686_064_284.0, "aa")]
    old = raw_dataset(scan_file, scan_metadata(), files)
    with sqlite3.connect(database) as db:
        db.execute(_OLD_SCHEMA)
        db.execute(
            "INSERT INTO datasets VALUES ('bl832.local/old', 'raw', ?, ?, ?, ?)",
            (key, json.dumps(old), "2024-01-01", "2024-01-01"),
        )
    catalog = LocalCatalogResource(database=str(database))

    found = catalog.find_raw(scan_file)
    again = catalog.ingest_raw(scan_file, scan_metadata(), files)
    other = catalog.ingest_dataset(move_only_record(tmp_path / "data931", key, CatalogMapping()))

    assert found is not None and found.pid == "bl832.local/old"
    assert found.record["createdAt"] == "2024-01-01"
    assert (again.pid, again.created) == ("bl832.local/old", False)
    assert other.created and other.pid != again.pid
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute(
            "SELECT beamline, scan_key FROM datasets ORDER BY beamline"
        ).fetchall() == [
            ("8.3.2", key),
            ("9.3.1", key),
        ]
