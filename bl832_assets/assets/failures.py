"""The platform's retry rule, in one place: a step is retried, with growing delays, only when
it failed for a passing reason (the network, a facility answering 5xx, a Globus task gone
INACTIVE). A checksum mismatch, a refused request or a failed job is final: running it again
would only repeat it, or hide a real problem behind a later success.

Assets call resources inside ``retry_only_if_transient``; a final failure becomes a
``dg.Failure`` that bypasses the retry policy, a passing one is re-raised for the policy.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import globus_sdk
import httpx
import requests

from bl832_assets.resources.catalog.scicat import CatalogUnavailable
from bl832_assets.resources.transfer.globus_errors import GlobusRequestRefused, GlobusTaskFailed
from bl832_assets.retention.ledger import LeaseConflict
from bl832_assets.settings import Settings

_NETWORK = (
    ConnectionError,
    TimeoutError,
    requests.ConnectionError,
    requests.Timeout,
    httpx.TransportError,
    globus_sdk.NetworkError,
)


def is_transient(error: BaseException) -> bool:
    """Whether trying the same step again later may succeed."""
    if isinstance(error, GlobusTaskFailed):
        return error.status == "INACTIVE"  # credentials or endpoint paused; resumable
    if isinstance(error, GlobusRequestRefused):
        return error.http_status is None or error.http_status == 429 or error.http_status >= 500
    if isinstance(error, (CatalogUnavailable, LeaseConflict, *_NETWORK)):
        return True
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def retry_policy(settings: Settings) -> dg.RetryPolicy:
    return dg.RetryPolicy(
        max_retries=settings.retries.max_retries,
        delay=settings.retries.delay_seconds,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


@contextmanager
def retry_only_if_transient(what: str) -> Iterator[None]:
    """Let a transient error through to the retry policy; make any other error final."""
    try:
        yield
    except dg.Failure:
        raise  # the resource already decided (a failed Slurm job, a refused Compute task)
    except Exception as error:
        if is_transient(error):
            raise
        raise dg.Failure(
            description=f"{what}: {type(error).__name__}: {error}",
            metadata={"error": type(error).__name__, "retried": False},
            allow_retries=False,
        ) from error
