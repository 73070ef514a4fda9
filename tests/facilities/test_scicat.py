"""The SciCat catalog, through the real pyscicat client, against the fake backend over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from pyscicat.client import ScicatClient, ScicatCommError
from pyscicat.model import RawDataset
from resource_support import scan_metadata

from bl832_assets.fakes.scicat import FakeSciCat
from bl832_assets.resources.catalog import CatalogError, CatalogRecord, DatasetNotFound, FileEntry
from bl832_assets.resources.catalog.mapping import raw_dataset
from bl832_assets.resources.catalog.scicat import (
    CatalogRejected,
    CatalogUnavailable,
    ExportControlled,
    ScicatCatalogResource,
)
from bl832_assets.science.dx import ScanMetadata

KEY = "20230606_151124_jong-seto_fungal-mycelia_roll-AQ_fungi1_fast"
SCAN_FILE = f"/data/raw/BLS-00564_dyparkinson/{KEY}.h5"
SCRATCH = "/data/scratch/BLS-00564_dyparkinson"
MTIME = 1_686_064_284.0
PASSWORD = "ingestor-password"
THUMBNAIL = "data:image/png;base64,iVBORw0KGgo="
RACERS = 8


def metadata(export_control: bool = False) -> ScanMetadata:
    return scan_metadata(path=SCAN_FILE, export_control=export_control)


def scan_files(sha256: str = "aa") -> list[FileEntry]:
    return [FileEntry(SCAN_FILE, 1234, MTIME, sha256)]


def recon_files() -> list[FileEntry]:
    return [
        FileEntry(f"{SCRATCH}/rec{KEY}/{KEY}_00000.tiff", 10, MTIME, "t0"),
        FileEntry(f"{SCRATCH}/rec{KEY}.zarr/zarr.json", 5, MTIME, "z0"),
    ]


@pytest.fixture
def fake() -> FakeSciCat:
    return FakeSciCat(users={"ingestor": PASSWORD})


@pytest.fixture
def url(fake: FakeSciCat) -> Iterator[str]:
    with fake.serve() as base_url:
        yield base_url


@pytest.fixture
def catalog(url: str) -> ScicatCatalogResource:
    return ScicatCatalogResource(url=url, username="ingestor", password=PASSWORD)


def ingest_raw(catalog: ScicatCatalogResource, sha256: str = "aa", thumbnail: str = THUMBNAIL):
    return catalog.ingest_raw(SCAN_FILE, metadata(), scan_files(sha256), thumbnail)


def ingest_derived(catalog: ScicatCatalogResource, raw_pid: str, software: str = "recon 1"):
    return catalog.ingest_derived(
        raw_pid,
        KEY,
        f"{SCRATCH}/rec{KEY}",
        f"{SCRATCH}/rec{KEY}.zarr",
        recon_files(),
        [software],
        {"center": 1280.5},
    )


def test_raw_dataset_holds_the_local_mappings_fields_and_datablock(
    catalog: ScicatCatalogResource, fake: FakeSciCat
) -> None:
    ingested = ingest_raw(catalog)

    assert ingested.created
    assert ingested.pid.startswith("20.500.12269/")
    expected = raw_dataset(SCAN_FILE, metadata(), scan_files())
    assert {k: ingested.record[k] for k in expected} == expected
    (block,) = ingested.record["origdatablocks"]
    assert block["chkAlg"] == "sha256"
    assert (
        block["dataFileList"][0] | {"path": f"{KEY}.h5", "size": 1234, "chk": "aa"}
        == (block["dataFileList"][0])
    )
    assert catalog.get(ingested.pid) == ingested.record
    assert set(fake.datasets) == {ingested.pid}


def test_thumbnail_becomes_the_raw_datasets_attachment(catalog: ScicatCatalogResource) -> None:
    record = ingest_raw(catalog).record

    (attachment,) = record["attachments"]
    assert attachment["thumbnail"] == THUMBNAIL
    assert attachment["caption"] == "raw image"
    assert attachment["ownerGroup"] == "BLS-00564"


def test_reingest_updates_the_one_dataset_its_datablock_and_thumbnail(
    catalog: ScicatCatalogResource, fake: FakeSciCat
) -> None:
    first = ingest_raw(catalog)
    again = ingest_raw(catalog, sha256="bb", thumbnail="data:image/png;base64,AAAA")

    assert (again.pid, again.created) == (first.pid, False)
    assert len(fake.datasets) == len(fake.origdatablocks) == len(fake.attachments) == 1
    assert again.record["origdatablocks"][0]["dataFileList"][0]["chk"] == "bb"
    assert again.record["attachments"][0]["thumbnail"] == "data:image/png;base64,AAAA"
    assert catalog.find_raw(SCAN_FILE).pid == first.pid  # type: ignore[union-attr]


def test_derived_dataset_is_linked_to_its_raw_pid_and_updated_on_reingest(
    catalog: ScicatCatalogResource, fake: FakeSciCat
) -> None:
    raw = ingest_raw(catalog)
    derived = ingest_derived(catalog, raw.pid)
    again = ingest_derived(catalog, raw.pid, software="recon 2")

    assert derived.created and derived.record["type"] == "derived"
    assert derived.record["inputDatasets"] == [raw.pid]
    assert derived.record["ownerGroup"] == raw.record["ownerGroup"]
    assert (again.pid, again.created) == (derived.pid, False)
    assert again.record["usedSoftware"] == ["recon 2"]
    assert len(fake.datasets) == 2 and len(fake.origdatablocks) == 2


def race(url: str, ingest: Callable[[ScicatCatalogResource], CatalogRecord]) -> list[CatalogRecord]:
    """``ingest`` run by RACERS threads at once, each through its own resource (and login), as
    separate Dagster runs would; the barrier releases them together to widen the race."""
    barrier = threading.Barrier(RACERS)

    def one() -> CatalogRecord:
        catalog = ScicatCatalogResource(url=url, username="ingestor", password=PASSWORD)
        barrier.wait(timeout=30)
        return ingest(catalog)

    with ThreadPoolExecutor(RACERS) as pool:
        return [f.result() for f in [pool.submit(one) for _ in range(RACERS)]]


def test_concurrent_raw_ingests_of_one_scan_make_one_dataset_datablock_and_thumbnail(
    url: str, fake: FakeSciCat
) -> None:
    results = race(url, ingest_raw)

    (dataset,) = [d for d in fake.datasets.values() if d["type"] == "raw"]
    assert dataset["runNumber"] == KEY
    assert {r.pid for r in results} == {dataset["pid"]}
    assert [r.created for r in results].count(True) == 1
    assert [b["datasetId"] for b in fake.origdatablocks.values()] == [dataset["pid"]]
    assert [a["datasetId"] for a in fake.attachments.values()] == [dataset["pid"]]


def test_concurrent_derived_ingests_of_one_scan_make_one_dataset_and_datablock(
    url: str, fake: FakeSciCat, catalog: ScicatCatalogResource
) -> None:
    raw = ingest_raw(catalog)

    results = race(url, lambda racer: ingest_derived(racer, raw.pid))

    (dataset,) = [d for d in fake.datasets.values() if d["type"] == "derived"]
    assert dataset["inputDatasets"] == [raw.pid]
    assert {r.pid for r in results} == {dataset["pid"]}
    assert [r.created for r in results].count(True) == 1
    blocks = [b for b in fake.origdatablocks.values() if b["datasetId"] == dataset["pid"]]
    assert len(blocks) == 1


def test_a_dataset_already_holding_our_pid_is_patched_not_duplicated(
    url: str, fake: FakeSciCat
) -> None:
    catalog = ScicatCatalogResource(url=url, token=fake.issue_token(), datablock_wait_seconds=0)
    pid = catalog.dataset_pid("raw\n" + KEY)
    stale = raw_dataset(SCAN_FILE, metadata(), scan_files()) | {"runNumber": "renamed elsewhere"}
    fake.datasets[pid] = {**stale, "pid": pid, "createdAt": "2023-06-06T15:11:24.000Z"}

    ingested = ingest_raw(catalog)

    assert (ingested.pid, ingested.created) == (pid, False)
    assert ingested.record["runNumber"] == KEY
    assert len(fake.datasets) == 1


def test_a_dataset_left_without_datablock_gets_one_after_the_wait(
    url: str, fake: FakeSciCat
) -> None:
    made_by_another_tool = raw_dataset(SCAN_FILE, metadata(), scan_files())
    fake.datasets["elsewhere/1"] = {**made_by_another_tool, "pid": "elsewhere/1", "createdAt": ""}
    catalog = ScicatCatalogResource(url=url, token=fake.issue_token(), datablock_wait_seconds=0.3)

    ingested = ingest_raw(catalog)

    assert (ingested.pid, ingested.created) == ("elsewhere/1", False)
    assert len(fake.datasets) == len(fake.origdatablocks) == 1
    assert ingested.record["origdatablocks"][0]["dataFileList"][0]["chk"] == "aa"


def test_a_thumbnail_create_refused_for_its_id_patches_that_attachment(
    catalog: ScicatCatalogResource, fake: FakeSciCat
) -> None:
    first = ingest_raw(catalog)
    (attachment,) = fake.attachments.values()
    attachment["caption"] = "renamed by a curator"  # so the next ingest does not find it

    again = ingest_raw(catalog, thumbnail="data:image/png;base64,AAAA")

    assert fake.requests.count(("POST", f"Datasets/{first.pid}/attachments")) == 2
    assert [a["thumbnail"] for a in again.record["attachments"]] == ["data:image/png;base64,AAAA"]


def test_derived_of_an_uncatalogued_raw_is_refused(catalog: ScicatCatalogResource) -> None:
    with pytest.raises(DatasetNotFound):
        ingest_derived(catalog, "20.500.12269/missing")


def test_find_raw_and_get_return_none_for_unknown_scans(catalog: ScicatCatalogResource) -> None:
    assert catalog.find_raw("nothing_here") is None
    assert catalog.get("20.500.12269/missing") is None


def test_export_controlled_scan_is_refused_before_any_request(
    catalog: ScicatCatalogResource, fake: FakeSciCat
) -> None:
    with pytest.raises(ExportControlled):
        catalog.ingest_raw(SCAN_FILE, metadata(export_control=True), scan_files(), THUMBNAIL)

    assert fake.requests == []


def test_a_field_the_backend_does_not_know_is_a_typed_400(url: str, fake: FakeSciCat) -> None:
    fake.unknown_fields = frozenset({"runNumber"})
    catalog = ScicatCatalogResource(url=url, token=fake.issue_token())

    with pytest.raises(CatalogRejected) as rejected:
        ingest_raw(catalog)

    assert rejected.value.status == 400
    assert "property runNumber should not exist" in rejected.value.message


def test_a_conflict_is_a_typed_409(catalog: ScicatCatalogResource, fake: FakeSciCat) -> None:
    fake.fail_next(409, message="Dataset already exists", where="POST datasets")
    with pytest.raises(CatalogRejected) as rejected:
        ingest_raw(catalog)

    assert (rejected.value.status, rejected.value.message) == (409, "Dataset already exists")


def test_a_server_error_is_catalog_unavailable_with_its_status(url: str, fake: FakeSciCat) -> None:
    catalog = ScicatCatalogResource(url=url, token=fake.issue_token())
    fake.fail_next(503, message="database down")

    with pytest.raises(CatalogUnavailable, match="HTTP 503: database down"):
        ingest_raw(catalog)


def test_a_failed_login_is_typed_by_its_status(url: str, fake: FakeSciCat) -> None:
    catalog = ScicatCatalogResource(url=url, username="ingestor", password=PASSWORD)
    fake.fail_next(503, message="auth backend down", where="auth/login")
    with pytest.raises(CatalogUnavailable, match="HTTP 503: auth backend down"):
        catalog.get("x")

    fake.fail_next(403, where="auth/login")
    with pytest.raises(CatalogRejected) as refused:
        catalog.get("x")
    assert refused.value.status == 403


def test_secrets_stay_out_of_error_messages(url: str, fake: FakeSciCat) -> None:
    token = fake.issue_token()
    fake.fail_next(500, message=f"echoing access_token={token} and {PASSWORD}")
    with pytest.raises(CatalogUnavailable) as failed:
        ScicatCatalogResource(url=url, token=token, password=PASSWORD).get("x")
    assert token not in str(failed.value) and PASSWORD not in str(failed.value)

    with pytest.raises(CatalogRejected) as refused:
        ScicatCatalogResource(url=url, username="ingestor", password="wrong-secret").get("x")
    assert refused.value.status == 401 and "wrong-secret" not in str(refused.value)

    closed = "http://127.0.0.1:9/api/v3"  # nothing listens on the discard port
    with pytest.raises(CatalogUnavailable) as unreachable:
        ScicatCatalogResource(url=closed, token=token).get("x")
    assert token not in str(unreachable.value) and unreachable.value.__cause__ is None


def test_fake_rejects_missing_required_fields_and_duplicate_pids(
    url: str, fake: FakeSciCat
) -> None:
    client = ScicatClient(base_url=url, token=fake.issue_token())
    dataset = RawDataset(
        pid="20.500.12269/fixed",
        owner="o",
        ownerGroup="g",
        contactEmail="a@b.org",
        sourceFolder="/data",
        creationTime="2023-06-06T15:11:24Z",
        principalInvestigator="pi",
        creationLocation="ALS 8.3.2",
    )
    with pytest.raises(ScicatCommError, match="datasetName should not be empty"):
        client.datasets_create(dataset)

    dataset.datasetName = "named"
    assert client.datasets_create(dataset) == "20.500.12269/fixed"
    with pytest.raises(ScicatCommError, match="409"):
        client.datasets_create(dataset)
    assert client.datasets_get_one("20.500.12269/fixed")["datasetName"] == "named"


def test_without_token_or_credentials_nothing_is_sent(url: str, fake: FakeSciCat) -> None:
    with pytest.raises(CatalogError, match="needs a token, or a username and password"):
        ScicatCatalogResource(url=url, username="ingestor").get("x")
    assert fake.requests == []
