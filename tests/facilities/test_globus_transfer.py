"""Contract tests: the Globus resource with the real, unpatched globus_sdk client against the
stateful fake Transfer and Auth services over HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import globus_sdk
import pytest

from bl832_assets.assets.copies import build_copy
from bl832_assets.fakes.globus_transfer import TOKEN, FakeGlobus
from bl832_assets.partitions import scans
from bl832_assets.resources.transfer.errors import (
    ChecksumUnavailable,
    ExportControlled,
    PathNotFound,
    RenameConflict,
    UnknownEndpoint,
    UnsafePath,
)
from bl832_assets.resources.transfer.globus import GlobusTransferResource
from bl832_assets.resources.transfer.globus_errors import GlobusRequestRefused, GlobusTaskFailed
from bl832_assets.retention.resource import LedgerResource
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

    result = transfer.copy(
        "spot832", "data832_raw", "2026/scan.h5", label="raw scan", export_controlled=False
    )

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

    result = transfer.copy(
        "spot832", "data832_raw", "recon/slices", label="tiff stack", export_controlled=False
    )

    assert result.files_transferred == 4
    assert _landed(fake, "recon/slices/sub/.zarray").read_text() == "{}"
    assert _landed(fake, "recon/slices/slice_2.tif").read_bytes() == bytes([2]) * 100


def test_failed_task_raises_with_nice_status_and_fatal_error(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _scan(fake)
    fake.next_task("FAILED")

    with pytest.raises(GlobusTaskFailed) as failure:
        transfer.copy(
            "spot832", "data832_raw", "2026/scan.h5", label="raw scan", export_controlled=False
        )

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
        transfer.copy(
            "spot832", "data832_raw", "2026/scan.h5", label="raw scan", export_controlled=False
        )


def test_inactive_task_is_a_failure_and_is_cancelled(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _scan(fake)
    fake.next_task("INACTIVE")

    with pytest.raises(GlobusTaskFailed, match="INACTIVE") as failure:
        transfer.copy(
            "spot832", "data832_raw", "2026/scan.h5", label="raw scan", export_controlled=False
        )

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
        impatient.copy(
            "spot832", "data832_raw", "2026/scan.h5", label="raw scan", export_controlled=False
        )

    assert fake.tasks[failure.value.task_id].status == "FAILED"


def test_lost_submit_reply_is_retried_without_a_second_task(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _scan(fake)
    fake.fail_requests("/v0.10/transfer", 500)

    result = transfer.copy(
        "spot832", "data832_raw", "2026/scan.h5", label="raw scan", export_controlled=False
    )

    assert _transfers(fake) == 2
    assert list(fake.tasks) == [result.task_id]


def test_retried_step_finds_its_task_instead_of_starting_another(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _scan(fake)

    first = transfer.copy(
        "spot832", "data832_raw", "2026/scan.h5", label="raw scan", export_controlled=False
    )
    again = transfer.copy(
        "spot832", "data832_raw", "2026/scan.h5", label="raw scan", export_controlled=False
    )

    assert again.task_id == first.task_id
    assert len(fake.tasks) == 1


def test_retried_step_after_a_failed_task_starts_exactly_one_new_task(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _scan(fake)
    fake.next_task("FAILED")
    with pytest.raises(GlobusTaskFailed):
        transfer.copy(
            "spot832", "data832_raw", "2026/scan.h5", label="raw scan", export_controlled=False
        )

    retried = transfer.copy(
        "spot832", "data832_raw", "2026/scan.h5", label="raw scan", export_controlled=False
    )
    once_more = transfer.copy(
        "spot832", "data832_raw", "2026/scan.h5", label="raw scan", export_controlled=False
    )

    assert once_more.task_id == retried.task_id
    assert len(fake.tasks) == 2
    assert _landed(fake, "2026/scan.h5").exists()


def test_refused_request_is_a_clear_error(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _scan(fake)
    fake.fail_requests("/v0.10/transfer", 400)

    with pytest.raises(GlobusRequestRefused, match="HTTP 400") as refused:
        transfer.copy(
            "spot832", "data832_raw", "2026/scan.h5", label="raw scan", export_controlled=False
        )

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
        "spot832", "data832_raw", "2026/scan.h5", label="raw scan", export_controlled=False
    )

    assert result.sha256 == {"scan.h5": _sha256(_landed(fake, "2026/scan.h5"))}
    assert result.sha256 == {"scan.h5": _sha256(scan)}
    assert result.bytes_total == scan.stat().st_size


def test_copy_to_an_unmounted_destination_records_no_sha256_but_its_total_size(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    stack = _stack(fake)
    transfer.copy(
        "spot832", "data832_raw", "recon/slices", label="tiff stack", export_controlled=False
    )
    (stack / "slice_3.tif").write_bytes(b"new")

    again = transfer.copy(
        "spot832", "data832_raw", "recon/slices", label="tiff stack, new", export_controlled=False
    )

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
        result = globus.copy(
            "spot832", "data832_raw", "2026/scan.h5", label="raw_copy scan", export_controlled=False
        )
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
        transfer.copy(
            "spot832", "nersc_cfs", "2026/scan.h5", label="raw scan", export_controlled=False
        )

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
        assets=[_detector_scan, copy],
        asset_checks=[check],
        resources={
            "transfer": transfer,
            "ledger": LedgerResource(url=f"sqlite:///{tmp_path / 'copies.sqlite'}"),
        },
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


# Export control, renames into the trash and delete tasks, against the fake -----------------


def _posts(fake: FakeGlobus, operation: str) -> int:
    return sum(1 for method, path in fake.requests if method == "POST" and path.endswith(operation))


def test_export_controlled_scan_is_refused_off_site_before_any_task(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _scan(fake)
    guarded = transfer.model_copy(update={"offsite": ["data832_raw"]})

    with pytest.raises(ExportControlled, match=r"2026/scan\.h5.*data832_raw.*outside"):
        guarded.copy(
            "spot832", "data832_raw", "2026/scan.h5", label="raw scan", export_controlled=True
        )

    assert not fake.tasks
    assert _transfers(fake) == 0
    assert not fake.collections[DATA].joinpath("raw").exists()


def test_export_controlled_scan_is_copied_on_site_and_may_come_home(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    scan = _scan(fake)
    # The detector's storage marked off site: copying from it is bringing the scan home.
    guarded = transfer.model_copy(update={"offsite": ["spot832"]})

    guarded.copy("spot832", "data832_raw", "2026/scan.h5", label="raw scan", export_controlled=True)

    assert _landed(fake, "2026/scan.h5").read_bytes() == scan.read_bytes()


def _raw(fake: FakeGlobus, relative: str, data: bytes = b"scan") -> Path:
    """A file at ``relative`` on data832_raw, as the collection's storage holds it."""
    path = _landed(fake, relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_rename_moves_a_file_into_trash_folders_it_creates(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _raw(fake, "2026/scan.h5")

    transfer.rename("data832_raw", "2026/scan.h5", ".trash/2026/scan.h5", label="retention")

    assert _landed(fake, ".trash/2026/scan.h5").read_bytes() == b"scan"
    assert not _landed(fake, "2026/scan.h5").exists()
    assert _posts(fake, "/mkdir") == 2  # .trash and .trash/2026: only the missing folders
    assert ("POST", f"/v0.10/operation/endpoint/{DATA}/rename") in fake.requests


def test_rename_moves_a_folder_with_everything_in_it(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _raw(fake, "recon/slices/slice_0.tif", b"0")
    _raw(fake, "recon/slices/sub/.zarray", b"{}")
    (fake.collections[DATA] / "raw" / ".trash").mkdir()

    transfer.rename("data832_raw", "recon/slices", ".trash/slices", label="retention")

    assert transfer.listing("data832_raw", ".trash/slices") == {"slice_0.tif": 1, "sub/.zarray": 2}
    assert not transfer.exists("data832_raw", "recon/slices")
    assert _posts(fake, "/mkdir") == 0


def test_rename_already_done_by_a_crashed_attempt_succeeds_without_renaming_again(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _raw(fake, "2026/scan.h5")
    transfer.rename("data832_raw", "2026/scan.h5", ".trash/scan.h5", label="retention")

    transfer.rename("data832_raw", "2026/scan.h5", ".trash/scan.h5", label="retention")

    assert _posts(fake, "/rename") == 1
    assert _landed(fake, ".trash/scan.h5").read_bytes() == b"scan"


def test_rename_whose_reply_was_lost_is_found_done(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _raw(fake, "2026/scan.h5")
    fake.fail_requests("/rename", 502)  # renamed, then the reply is lost; the SDK resends it

    transfer.rename("data832_raw", "2026/scan.h5", ".trash/scan.h5", label="retention")

    assert _posts(fake, "/rename") == 2
    assert _landed(fake, ".trash/scan.h5").read_bytes() == b"scan"


def test_rename_refused_by_globus_moves_nothing(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _raw(fake, "2026/scan.h5")
    fake.fail_requests("/rename", 403)

    with pytest.raises(GlobusRequestRefused, match="retention: rename") as refused:
        transfer.rename("data832_raw", "2026/scan.h5", ".trash/scan.h5", label="retention")

    assert refused.value.http_status == 403
    assert _landed(fake, "2026/scan.h5").exists()
    assert not _landed(fake, ".trash/scan.h5").exists()


def test_rename_of_nothing_is_path_not_found(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    with pytest.raises(PathNotFound) as missing:
        transfer.rename("data832_raw", "2026/scan.h5", ".trash/scan.h5", label="retention")

    assert missing.value.relative_path == "2026/scan.h5"
    assert _posts(fake, "/rename") == 0
    assert not fake.collections[DATA].joinpath("raw").exists()


def test_rename_never_overwrites_what_is_at_the_new_path(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    _raw(fake, "2026/scan.h5", b"new scan")
    _raw(fake, ".trash/scan.h5", b"older scan")

    with pytest.raises(RenameConflict):
        transfer.rename("data832_raw", "2026/scan.h5", ".trash/scan.h5", label="retention")

    assert _landed(fake, "2026/scan.h5").read_bytes() == b"new scan"
    assert _landed(fake, ".trash/scan.h5").read_bytes() == b"older scan"
    assert _posts(fake, "/rename") == 0


def test_the_fake_refuses_a_rename_onto_an_existing_path_as_globus_does(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    """The race the backend's own check cannot close: another writer fills the new path
    between the check and the rename. Globus (here the fake) must then refuse, not replace."""
    _raw(fake, "2026/scan.h5", b"new scan")
    _raw(fake, ".trash/scan.h5", b"older scan")
    client = globus_sdk.TransferClient(
        base_url=transfer.transfer_url, authorizer=globus_sdk.AccessTokenAuthorizer(TOKEN)
    )

    with pytest.raises(globus_sdk.GlobusAPIError) as refused:
        client.operation_rename(DATA, "/raw/2026/scan.h5", "/raw/.trash/scan.h5")

    assert refused.value.code == "ExternalError.RenameFailed.Exists"
    assert _landed(fake, ".trash/scan.h5").read_bytes() == b"older scan"


@pytest.mark.parametrize(
    ("old", "new"),
    [("../../spot832/2026/scan.h5", ".trash/scan.h5"), ("2026/scan.h5", "../escaped.h5")],
)
def test_rename_refuses_dot_dot_before_asking_globus(
    fake: FakeGlobus, transfer: GlobusTransferResource, old: str, new: str
) -> None:
    _scan(fake)
    _raw(fake, "2026/scan.h5")

    with pytest.raises(UnsafePath):
        transfer.rename("data832_raw", old, new, label="escape")

    assert not fake.requests
    assert _landed(fake, "2026/scan.h5").exists()


def _escape(fake: FakeGlobus, tmp_path: Path) -> Path:
    """A link inside data832_raw to a folder outside its collection; returns that folder."""
    outside = tmp_path / "outside"
    (outside / "key.h5").parent.mkdir()
    (outside / "key.h5").write_bytes(b"secret")
    _raw(fake, "2026/scan.h5")
    _landed(fake, "link").symlink_to(outside)
    return outside


@pytest.mark.parametrize(
    ("old", "new"), [("link/key.h5", ".trash/key.h5"), ("2026/scan.h5", "link/scan.h5")]
)
def test_rename_through_a_link_leading_out_of_the_collection_moves_nothing(
    fake: FakeGlobus, transfer: GlobusTransferResource, tmp_path: Path, old: str, new: str
) -> None:
    outside = _escape(fake, tmp_path)

    with pytest.raises(GlobusRequestRefused, match="HTTP 403"):
        transfer.rename("data832_raw", old, new, label="escape")
    with pytest.raises(UnsafePath, match="symbolic link"):
        _mounted(fake, transfer).rename("data832_raw", old, new, label="escape")

    assert sorted(p.name for p in outside.iterdir()) == ["key.h5"]
    assert _landed(fake, "2026/scan.h5").exists()
    assert _posts(fake, "/rename") == 0


def test_failed_delete_task_raises_and_deletes_nothing(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    kept = _raw(fake, ".trash/scan.h5")
    fake.next_task("FAILED")

    with pytest.raises(GlobusTaskFailed, match="PERMISSION_DENIED"):
        transfer.delete("data832_raw", ".trash/scan.h5", label="purge trash")

    assert kept.exists()


def _delete_task(
    fake: FakeGlobus, url: str, path: str, *, recursive: bool, ignore_missing: bool
) -> dict[str, object]:
    """Submit a delete straight through the SDK (the resource always asks for recursive and
    ignore_missing) and return the task once it ended."""
    client = globus_sdk.TransferClient(
        base_url=url, authorizer=globus_sdk.AccessTokenAuthorizer(TOKEN)
    )
    data = globus_sdk.DeleteData(DATA, recursive=recursive, ignore_missing=ignore_missing)
    data.add_item(path)
    task_id = client.submit_delete(data)["task_id"]
    while fake.tasks[task_id].status == "ACTIVE":
        time.sleep(0.01)
    return client.get_task(task_id).data


def test_fake_delete_task_fails_on_a_missing_path_unless_told_to_ignore_it(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    url = str(transfer.transfer_url)
    strict = _delete_task(fake, url, "/raw/never", recursive=True, ignore_missing=False)
    lenient = _delete_task(fake, url, "/raw/never", recursive=True, ignore_missing=True)

    assert strict["status"] == "FAILED"
    assert strict["fatal_error"]["code"] == "FILE_NOT_FOUND"
    assert lenient["status"] == "SUCCEEDED"


def test_fake_delete_task_removes_a_folder_only_when_recursive(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    url = str(transfer.transfer_url)
    kept = _raw(fake, "recon/slice.tif")

    flat = _delete_task(fake, url, "/raw/recon", recursive=False, ignore_missing=True)
    assert flat["status"] == "FAILED"
    assert kept.exists()

    deep = _delete_task(fake, url, "/raw/recon", recursive=True, ignore_missing=True)
    assert deep["status"] == "SUCCEEDED"
    assert not kept.parent.exists()


def test_fake_delete_task_removes_a_link_and_not_what_it_points_to(
    fake: FakeGlobus, transfer: GlobusTransferResource
) -> None:
    target = _raw(fake, "recon/slice.tif")
    _landed(fake, "latest").symlink_to(target.parent)

    done = _delete_task(
        fake, str(transfer.transfer_url), "/raw/latest", recursive=True, ignore_missing=True
    )

    assert done["status"] == "SUCCEEDED"
    assert not _landed(fake, "latest").is_symlink()
    assert target.read_bytes() == b"scan"
