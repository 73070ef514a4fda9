"""The retry rule: which failures may pass if the step runs again, and what a final one looks
like to the retry policy."""

import dagster as dg
import httpx
import pytest
import requests

from bl832_assets.assets.failures import is_transient, retry_only_if_transient
from bl832_assets.resources.catalog.errors import DatasetNotFound
from bl832_assets.resources.catalog.scicat import CatalogRejected, CatalogUnavailable
from bl832_assets.resources.transfer.errors import ChecksumMismatch, TransferFailed
from bl832_assets.resources.transfer.globus_errors import GlobusTaskFailed


def _task(status: str) -> GlobusTaskFailed:
    return GlobusTaskFailed({"task_id": "t1", "status": status}, "a", "b", "x.h5", "ended")


def _http_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://127.0.0.1/api/v1.2/compute/jobs/perlmutter")
    response = httpx.Response(status, request=request)
    return httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (_task("INACTIVE"), True),
        (_task("FAILED"), False),
        (ChecksumMismatch("/data/x.h5", "aa", "bb"), False),
        (TransferFailed("t1", "a", "b", "x.h5", "source vanished"), False),
        (CatalogUnavailable("SciCat failed datasets_create with HTTP 503"), True),
        (CatalogRejected("datasets_create", 400, "property bogus should not exist"), False),
        (CatalogRejected("datasets_create", 409, "exists"), False),
        (DatasetNotFound("20.500.12269/x"), False),
        (requests.ConnectionError("refused"), True),
        (httpx.ConnectError("refused"), True),
        (TimeoutError("timed out"), True),
        (_http_error(502), True),
        (_http_error(429), True),
        (_http_error(403), False),
        (ValueError("bad options"), False),
    ],
)
def test_only_failures_that_may_pass_are_transient(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_a_final_failure_bypasses_the_retry_policy_and_names_what_failed() -> None:
    with pytest.raises(dg.Failure) as failure, retry_only_if_transient("copy to nersc_cfs"):
        raise ChecksumMismatch("/data/x.h5", "aa", "bb")

    assert failure.value.allow_retries is False
    assert failure.value.description.startswith("copy to nersc_cfs: ChecksumMismatch: /data/x.h5")
    assert failure.value.metadata["retried"].value is False


def test_a_transient_failure_reaches_the_retry_policy_unchanged() -> None:
    with pytest.raises(GlobusTaskFailed), retry_only_if_transient("copy to nersc_cfs"):
        raise _task("INACTIVE")
