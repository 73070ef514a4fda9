"""What a transfer reports back, in our own small types rather than a backend's task document."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TaskStatus(StrEnum):
    """Globus's task states that matter to a caller; a local task moves through the same ones."""

    ACTIVE = "ACTIVE"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class TransferResult:
    """A finished, successful copy. Failed copies raise ``TransferFailed`` instead."""

    task_id: str
    status: TaskStatus
    source: str
    destination: str
    relative_path: str
    bytes_total: int  # size of everything the copy covers, including skipped files
    bytes_transferred: int
    files_transferred: int
    files_skipped: int  # already identical at the destination (same size and sha256)
    # sha256 per file, keyed like ``TransferResource.checksums``: relative to relative_path,
    # or the file's name when a single file was copied.
    sha256: dict[str, str]
    seconds: float
    # The files this task really wrote (keys as for sha256); the rest were already identical.
    transferred: tuple[str, ...] = ()
