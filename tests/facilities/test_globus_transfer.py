"""Contract tests: the Globus resource with the real, unpatched globus_sdk client against the
stateful fake Transfer and Auth services over HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from bl832_assets.assets.copies import build_copy
from bl832_assets.fakes.globus_transfer import FakeGlobus
from bl832_assets.partitions import scans
from bl832_assets.resources.transfer.errors import (
    ChecksumUnavailable,
    PathNotFound,
    UnknownEndpoint,
)
from bl832_assets.resources.transfer.globus import GlobusTransferResource
from bl832_assets.resources.transfer.globus_errors import GlobusRequestRefused, GlobusTaskFailed
from bl832_assets.settings import Settings

SECRET = "s3cret-never-printed"
CLIENT_ID = "7c5e2a1b-0000-4000-8000-000000000832"
SPOT = "11111111-1111-4111-8111-111111111111"
DATA = "22222222-2222-4222-8222-222222222222"


@pytest.fixture
def fake(tmp_path: Path) -> FakeGlobus:
    folders = {SPOT: tmp_path / "spot832", DATA: tmp_path / "data832"}
    for folder in folders.values():
        folder.mkdir()
    return FakeGlobus(folders, CLIENT_ID, SECRET)


@pytest.fixture
def transfer(fake: FakeGlobus) -> Iterator[GlobusTransferResource]:
    with fake.serve() as url:
        yield GlobusTransferResource(
            collections={"spot832": SPOT, "data832_raw": DATA},
            roots={"data832_raw": "/raw"},
            client_id=CLIENT_ID,
            client_secret=SECRET,
            transfer_url=url,
            auth_url=url,
            poll_seconds=0.05,
            max_wait_seconds=2,
            max_retries=2,
        )


def _scan(fake: FakeGlobus) -> Path:
    scan = fake.collections[SPOT] / "2026" / "scan.h5"
    scan.parent.mkdir()
    scan.write_bytes(b"projection data" * 1000)
    return scan


def _landed(fake: FakeGlobus, relative: str) -> Path:
    return fake.collections[DATA] / "raw" / relative


def _transfers(fake: FakeGlobus) -> int:
    return sum(1 for method, path in fake.requests if (method, path) == ("POST", "/v0.10/transfer"))


def test_file_copy_lands_under_the_destination_root(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    scan = _scan(fake)

    result = transfer.copy("spot832", "data832_raw", "2026/scan.h5", label="raw scan")

    assert _landed(fake, "2026/scan.h5").read_bytes() == scan.read_bytes()
    assert result.files_transferred == 1
    assert result.bytes_transferred == scan.stat().st_size
    assert transfer.successful_transfers(result.task_id) == [("/2026/scan.h5", "/raw/2026/scan.h5")]
    assert transfer.exists("data832_raw", "2026/scan.h5")
    assert not transfer.exists("data832_raw", "2026/other.h5")


def test_folder_copy_is_recursive(fake: FakeGlobus, transfer: GlobusTransferResource) -> None:
    stack = fake.collections[SPOT] / "recon" / "slices"
    (stack / "sub").mkdir(parents=True)
    for index in range(3):
        (stack / f"slice_{index}.tif").write_bytes(bytes([index]) * 100)
    (stack / "sub" / ".zarray").write_text("{}")

    result = transfer.copy("spot832", "data832_raw", "recon/slices", label="tiff stack")

    assert result.files_transferred == 4
    assert _landed(fake, "recon/slices/sub/.zarray").read_text() == "{}"
    assert _landed(fake, "recon/slices/slice_2.tif").read_bytes() == bytes([2]) * 100


def test_failed_task_raises_with_nice_status_and_fatal_error(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _scan(fake)
    fake.next_task("FAILED")

    with pytest.raises(GlobusTaskFailed) as failure:
        transfer.copy("spot832", "data832_raw", "2026/scan.h5", label="raw scan")

    assert failure.value.status == "FAILED"
    assert failure.value.fatal_error == {
        "code": "PERMISSION_DENIED",
        "description": "Permission denied on destination",
    }
    assert "PERMISSION_DENIED" in str(failure.value)


@pytest.mark.parametrize("outcome", ["QUOTA", "DEADLINE"])
def test_quota_and_expired_deadline_are_failures(
    fake: FakeGlobus, transfer: GlobusTransferResource, outcome: str
) -> None:
    _scan(fake)
    fake.next_task(outcome)

    with pytest.raises(GlobusTaskFailed, match=f"{outcome}_EXCEEDED"):
        transfer.copy("spot832", "data832_raw", "2026/scan.h5", label="raw scan")


def test_inactive_task_is_a_failure_and_is_cancelled(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _scan(fake)
    fake.next_task("INACTIVE")

    with pytest.raises(GlobusTaskFailed, match="INACTIVE") as failure:
        transfer.copy("spot832", "data832_raw", "2026/scan.h5", label="raw scan")

    assert failure.value.nice_status == "PERMISSION_DENIED"
    assert fake.tasks[failure.value.task_id].status == "FAILED"
    assert not _landed(fake, "2026/scan.h5").exists()


def test_task_running_past_the_wait_is_cancelled_and_fails(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _scan(fake)
    fake.next_task("STALL")
    impatient = transfer.model_copy(update={"max_wait_seconds": 0.3})

    with pytest.raises(GlobusTaskFailed, match="still running") as failure:
        impatient.copy("spot832", "data832_raw", "2026/scan.h5", label="raw scan")

    assert fake.tasks[failure.value.task_id].status == "FAILED"


def test_lost_submit_reply_is_retried_without_a_second_task(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _scan(fake)
    fake.fail_requests("/v0.10/transfer", 500)

    result = transfer.copy("spot832", "data832_raw", "2026/scan.h5", label="raw scan")

    assert _transfers(fake) == 2
    assert list(fake.tasks) == [result.task_id]


def test_retried_step_finds_its_task_instead_of_starting_another(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _scan(fake)

    first = transfer.copy("spot832", "data832_raw", "2026/scan.h5", label="raw scan")
    again = transfer.copy("spot832", "data832_raw", "2026/scan.h5", label="raw scan")

    assert again.task_id == first.task_id
    assert len(fake.tasks) == 1


def test_retried_step_after_a_failed_task_starts_exactly_one_new_task(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _scan(fake)
    fake.next_task("FAILED")
    with pytest.raises(GlobusTaskFailed):
        transfer.copy("spot832", "data832_raw", "2026/scan.h5", label="raw scan")

    retried = transfer.copy("spot832", "data832_raw", "2026/scan.h5", label="raw scan")
    once_more = transfer.copy("spot832", "data832_raw", "2026/scan.h5", label="raw scan")

    assert once_more.task_id == retried.task_id
    assert len(fake.tasks) == 2
    assert _landed(fake, "2026/scan.h5").exists()


def test_refused_request_is_a_clear_error(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _scan(fake)
    fake.fail_requests("/v0.10/transfer", 400)

    with pytest.raises(GlobusRequestRefused, match="HTTP 400") as refused:
        transfer.copy("spot832", "data832_raw", "2026/scan.h5", label="raw scan")

    assert refused.value.http_status == 400


def test_wrong_secret_fails_without_revealing_it(transfer: GlobusTransferResource) -> None:
    wrong = transfer.model_copy(update={"client_secret": "wrong-" + SECRET})

    with pytest.raises(GlobusRequestRefused) as refused:
        wrong.exists("spot832", "2026/scan.h5")

    assert SECRET not in str(refused.value)
    assert SECRET not in repr(refused.value.__cause__)


def _mounted(fake: FakeGlobus, transfer: GlobusTransferResource) -> GlobusTransferResource:
    """The resource as the orchestrator host sees it: beamline storage mounted on it."""
    mounts = {"spot832": str(fake.collections[SPOT]), "data832_raw": str(_landed(fake, ""))}
    return transfer.model_copy(update={"mounts": mounts})


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stack(fake: FakeGlobus) -> Path:
    """A reconstruction folder with a nested, hidden file, as a Zarr pyramid has."""
    stack = fake.collections[SPOT] / "recon" / "slices"
    (stack / "sub").mkdir(parents=True)
    for index in range(3):
        (stack / f"slice_{index}.tif").write_bytes(bytes([index]) * (100 + index))
    (stack / "sub" / ".zarray").write_text("{}")
    return stack


def test_checksums_are_not_invented_for_an_unmounted_endpoint(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _scan(fake)

    with pytest.raises(ChecksumUnavailable, match="not mounted") as unavailable:
        transfer.checksums("spot832", "2026/scan.h5")

    assert (unavailable.value.endpoint, unavailable.value.relative_path) == (
        "spot832",
        "2026/scan.h5",
    )


def test_checksums_through_a_mount_are_the_files_sha256(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    scan = _scan(fake)
    stack = _stack(fake)
    mounted = _mounted(fake, transfer)

    assert mounted.checksums("spot832", "2026/scan.h5") == {"scan.h5": _sha256(scan)}
    assert mounted.checksums("spot832", "recon/slices") == {
        "slice_0.tif": _sha256(stack / "slice_0.tif"),
        "slice_1.tif": _sha256(stack / "slice_1.tif"),
        "slice_2.tif": _sha256(stack / "slice_2.tif"),
        "sub/.zarray": _sha256(stack / "sub" / ".zarray"),
    }
    with pytest.raises(PathNotFound):
        mounted.checksums("spot832", "2026/never.h5")
    with pytest.raises(UnknownEndpoint):
        mounted.checksums("nersc_cfs", "2026/scan.h5")


def test_listing_of_a_file_and_a_nested_folder_has_the_real_sizes(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    scan = _scan(fake)
    stack = _stack(fake)

    assert transfer.listing("spot832", "2026/scan.h5") == {"scan.h5": scan.stat().st_size}
    assert transfer.listing("spot832", "recon/slices") == {
        name: (stack / name).stat().st_size
        for name in ("slice_0.tif", "slice_1.tif", "slice_2.tif", "sub/.zarray")
    }
    assert set(transfer.listing("spot832", "recon/slices")) == set(
        _mounted(fake, transfer).checksums("spot832", "recon/slices")
    )


def test_listing_of_nothing_raises_path_not_found(transfer: GlobusTransferResource) -> None:
    with pytest.raises(PathNotFound):
        transfer.listing("spot832", "2026/scan.h5")
    with pytest.raises(PathNotFound):
        transfer.listing("spot832", "missing/folder/scan.h5")


def test_copy_to_a_mounted_destination_records_its_sha256(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    scan = _scan(fake)

    result = _mounted(fake, transfer).copy(
        "spot832", "data832_raw", "2026/scan.h5", label="raw scan"
    )

    assert result.sha256 == {"scan.h5": _sha256(_landed(fake, "2026/scan.h5"))}
    assert result.sha256 == {"scan.h5": _sha256(scan)}
    assert result.bytes_total == scan.stat().st_size


def test_copy_to_an_unmounted_destination_records_no_sha256_but_its_total_size(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    stack = _stack(fake)
    transfer.copy("spot832", "data832_raw", "recon/slices", label="tiff stack")
    (stack / "slice_3.tif").write_bytes(b"new")

    again = transfer.copy("spot832", "data832_raw", "recon/slices", label="tiff stack, new")

    assert again.sha256 == {}
    assert again.files_skipped == 4
    assert again.bytes_transferred == 3
    assert again.bytes_total == sum(f.stat().st_size for f in stack.rglob("*") if f.is_file())


def test_mkdir_creates_a_folder_and_accepts_an_existing_one(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    transfer.mkdir("spot832", "new")
    transfer.mkdir("spot832", "new")

    assert (fake.collections[SPOT] / "new").is_dir()


def test_delete_removes_a_folder_and_tolerates_a_missing_one(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    stack = fake.collections[DATA] / "raw" / "recon"
    stack.mkdir(parents=True)
    (stack / "slice.tif").write_bytes(b"x")

    transfer.delete("data832_raw", "recon", label="prune recon")
    transfer.delete("data832_raw", "never-there", label="prune missing")

    assert not stack.exists()


def test_step_retry_in_dagster_reuses_the_task_and_keeps_the_secret_out(
    fake: FakeGlobus, transfer: GlobusTransferResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    _scan(fake)
    monkeypatch.setenv("TEST_GLOBUS_SECRET", SECRET)
    attempts: list[str] = []

    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=1))
    def raw_copy(globus: GlobusTransferResource) -> dg.MaterializeResult:
        result = globus.copy("spot832", "data832_raw", "2026/scan.h5", label="raw_copy scan")
        attempts.append(result.task_id)
        if len(attempts) == 1:
            raise RuntimeError("step dies after the copy; Dagster retries it")
        return dg.MaterializeResult(metadata={"task_id": result.task_id})

    wired = transfer.model_copy(update={"client_secret": dg.EnvVar("TEST_GLOBUS_SECRET")})
    with dg.instance_for_test() as instance:
        first = dg.materialize([raw_copy], resources={"globus": wired}, instance=instance)
        second = dg.materialize([raw_copy], resources={"globus": wired}, instance=instance)
        logs = repr(instance.all_logs(first.run_id)) + repr(first.dagster_run)

    assert first.success and second.success
    assert attempts[0] == attempts[1] != attempts[2]
    assert len(fake.tasks) == 2  # one per run, none per retry
    assert SECRET not in logs


def test_auth_outage_is_retried_by_the_sdk(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _scan(fake)
    fake.fail_requests("/v2/oauth2/token", 503)

    assert transfer.exists("spot832", "2026/scan.h5")


def test_unknown_endpoint_is_refused_before_any_task(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    with pytest.raises(UnknownEndpoint, match="nersc_cfs"):
        transfer.copy("spot832", "nersc_cfs", "2026/scan.h5", label="raw scan")

    assert not fake.tasks


# The copy asset and its blocking check, run by Dagster against the fake ---------------------

SCAN_KEY = "scan"
COPY_KEY = dg.AssetKey(["data832", "raw_scan"])
CHECK_KEY = dg.AssetCheckKey(COPY_KEY, "copy_matches_source")


@dg.asset(key=["spot832", "raw_scan"], partitions_def=scans)
def _detector_scan() -> dg.MaterializeResult:
    """Where the detector wrote the scan, as the real detector asset records it."""
    return dg.MaterializeResult(metadata={"endpoint": "spot832", "relative_path": "2026/scan.h5"})


def _run(
    tmp_path: Path,
    transfer: GlobusTransferResource,
    instance: dg.DagsterInstance,
    *,
    only_check: bool = False,
) -> dg.AssetCheckEvaluation:
    """Copy the scan and check the copy (or only check it again); the check's evaluation."""
    copy, check = build_copy(
        Settings(home=tmp_path / "site"),
        key=COPY_KEY,
        upstreams=[_detector_scan.key],
        destination="data832_raw",
        description="The scan's beamline copy.",
        group="test",
        kinds={"globus"},
    )
    defs = dg.Definitions(
        assets=[_detector_scan, copy], asset_checks=[check], resources={"transfer": transfer}
    )
    job = defs.resolve_implicit_global_asset_job_def()
    if only_check:
        job = job.get_subset(asset_selection=set(), asset_check_selection={CHECK_KEY})
    result = job.execute_in_process(instance=instance, partition_key=SCAN_KEY, raise_on_error=False)
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


@pytest.fixture
def dagster(instance: dg.DagsterInstance) -> dg.DagsterInstance:
    """The shared test instance, knowing the one scan these runs copy."""
    instance.add_dynamic_partitions(scans.name, [SCAN_KEY])
    return instance


def _copy_metadata(instance: dg.DagsterInstance) -> dict[str, object]:
    event = instance.get_latest_materialization_event(COPY_KEY)
    assert event is not None and event.asset_materialization is not None
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def test_check_compares_sizes_where_the_copy_cannot_be_hashed_and_fails_a_truncated_file(
    fake: FakeGlobus,
    transfer: GlobusTransferResource,
    dagster: dg.DagsterInstance,
    tmp_path: Path,
) -> None:
    _scan(fake)

    passed = _run(tmp_path, transfer, dagster)

    recorded = _copy_metadata(dagster)
    assert "sha256" not in recorded
    assert passed.passed
    assert passed.metadata["compared"].value == "sizes"
    assert passed.metadata["compared_with"].value == "spot832"
    assert passed.metadata["verified_by"].value == (
        f"Globus verify_checksum, task {recorded['task_id']}"
    )

    with _landed(fake, "2026/scan.h5").open("r+b") as copy:
        copy.truncate(100)
    failed = _run(tmp_path, transfer, dagster, only_check=True)

    assert not failed.passed
    assert failed.metadata["differing"].value == ["scan.h5"]
    assert "scan.h5" in (failed.description or "")


def test_check_compares_sizes_with_the_record_once_the_source_is_gone(
    fake: FakeGlobus,
    transfer: GlobusTransferResource,
    dagster: dg.DagsterInstance,
    tmp_path: Path,
) -> None:
    scan = _scan(fake)
    assert _run(tmp_path, transfer, dagster).passed
    scan.unlink()  # pruned by the detector's retention

    intact = _run(tmp_path, transfer, dagster, only_check=True)
    with _landed(fake, "2026/scan.h5").open("r+b") as copy:
        copy.truncate(100)
    truncated = _run(tmp_path, transfer, dagster, only_check=True)

    assert intact.passed
    assert intact.metadata["compared_with"].value == "the sizes recorded at copy time"
    assert not truncated.passed
    assert truncated.metadata["differing"].value == ["scan.h5"]


def test_check_compares_sha256_where_the_copy_is_mounted(
    fake: FakeGlobus,
    transfer: GlobusTransferResource,
    dagster: dg.DagsterInstance,
    tmp_path: Path,
) -> None:
    scan = _scan(fake)
    mounted = _mounted(fake, transfer)

    passed = _run(tmp_path, mounted, dagster)
    assert _copy_metadata(dagster)["sha256"] == _sha256(scan)
    copy = _landed(fake, "2026/scan.h5")
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes: only a hash sees it
    copy.write_bytes(bytes(data))
    scan.unlink()
    failed = _run(tmp_path, mounted, dagster, only_check=True)

    assert passed.passed
    assert passed.metadata["compared"].value == "sha256"
    assert not failed.passed
    assert failed.metadata["compared_with"].value == "the checksum recorded at copy time"
    assert failed.metadata["differing"].value == ["scan.h5"]
