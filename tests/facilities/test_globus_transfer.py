"""Contract tests: the Globus resource with the real, unpatched globus_sdk client against the
stateful fake Transfer and Auth services over HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from bl832_assets.fakes.globus_transfer import FakeGlobus, serve
from bl832_assets.resources.transfer.errors import UnknownEndpoint
from bl832_assets.resources.transfer.globus import GlobusTransferResource
from bl832_assets.resources.transfer.globus_errors import (
    ChecksumUnavailable,
    GlobusRequestRefused,
    GlobusTaskFailed,
)

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
    with serve(fake) as url:
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


def test_checksums_are_not_invented(transfer: GlobusTransferResource) -> None:
    with pytest.raises(ChecksumUnavailable):
        transfer.checksums("spot832", "2026/scan.h5")


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
