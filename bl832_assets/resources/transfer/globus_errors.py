"""Errors of the Globus backend, carrying what Globus said (status, nice_status, fatal_error,
HTTP code) and never the credentials: the SDK's error text holds no request body or header."""

from __future__ import annotations

from typing import Any

import globus_sdk

from bl832_assets.resources.transfer.errors import TransferError, TransferFailed


class GlobusTaskFailed(TransferFailed):
    """A Globus task that did not succeed: FAILED, INACTIVE, or still running at the deadline."""

    def __init__(
        self,
        task: dict[str, Any],
        source: str,
        destination: str,
        relative_path: str,
        problem: str,
    ) -> None:
        self.status = str(task.get("status"))
        self.nice_status = task.get("nice_status")
        self.fatal_error = task.get("fatal_error")
        reason = f"{problem}; status {self.status}, nice_status {self.nice_status}"
        if self.fatal_error:
            reason += f", fatal_error {self.fatal_error}"
        super().__init__(str(task.get("task_id")), source, destination, relative_path, reason)


class GlobusRequestRefused(TransferError):
    """Globus refused a request (bad credentials or id, no permission, service down) after the
    SDK's own retries of transient errors."""

    def __init__(self, what: str, error: globus_sdk.GlobusAPIError) -> None:
        self.http_status = error.http_status
        self.code = error.code
        super().__init__(
            f"{what}: Globus answered HTTP {error.http_status} {error.code}: {error.message}"
        )
