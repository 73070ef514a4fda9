"""Transfer errors as types, so callers branch on the kind and operators read path and reason."""

from __future__ import annotations


class TransferError(Exception):
    """Base of every error the transfer resources raise."""


class UnknownEndpoint(TransferError):
    """A copy named an endpoint the site does not define; usually a settings typo."""

    def __init__(self, endpoint: str, known: list[str]) -> None:
        self.endpoint = endpoint
        self.known = known
        super().__init__(f"unknown endpoint {endpoint!r} (known: {', '.join(known) or 'none'})")


class UnsafePath(TransferError):
    """A relative path that could reach outside its endpoint root; refused before any I/O."""

    def __init__(self, relative_path: str, problem: str) -> None:
        self.relative_path = relative_path
        self.problem = problem
        super().__init__(f"refused path {relative_path!r}: {problem}")


class PathNotFound(TransferError):
    """Nothing exists at a relative path of an endpoint."""

    def __init__(self, endpoint: str, relative_path: str) -> None:
        self.endpoint = endpoint
        self.relative_path = relative_path
        super().__init__(f"{endpoint}:{relative_path} does not exist")


class ChecksumMismatch(TransferError):
    """The bytes written differ from the bytes read: the source changed during the copy, or
    storage corrupted it. The copy is discarded rather than put under the final name."""

    def __init__(self, path: str, expected: str, actual: str) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(f"{path}: sha256 of the copy is {actual}, source is {expected}")


class ChecksumUnavailable(TransferError):
    """This machine cannot hash the files at an endpoint: the backend has no remote checksum
    API (Globus verifies checksums inside a transfer but never returns them) and the endpoint's
    storage is not mounted here. Callers fall back to a weaker proof, such as comparing sizes,
    instead of a backend inventing hashes it never computed."""

    def __init__(self, endpoint: str, relative_path: str, reason: str) -> None:
        self.endpoint = endpoint
        self.relative_path = relative_path
        self.reason = reason
        super().__init__(f"{endpoint}:{relative_path}: no checksums available: {reason}")


class TransferFailed(TransferError):
    """A transfer task ended FAILED. Raised instead of returning, so a failed copy can never be
    mistaken for a finished one (upstream's ``task_wait`` returned True on FAILED)."""

    def __init__(
        self, task_id: str, source: str, destination: str, relative_path: str, reason: str
    ) -> None:
        self.task_id = task_id
        self.source = source
        self.destination = destination
        self.relative_path = relative_path
        self.reason = reason
        super().__init__(
            f"copy of {relative_path!r} from {source} to {destination} failed "
            f"(task {task_id}): {reason}"
        )


class RenameConflict(TransferError):
    """Both the path to move and its new path exist: a rename never overwrites, since what is
    already at the new path may be the only copy of other data (an earlier scan in the trash)."""

    def __init__(
        self, endpoint: str, relative_path: str, new_relative_path: str, label: str
    ) -> None:
        self.endpoint = endpoint
        self.relative_path = relative_path
        self.new_relative_path = new_relative_path
        super().__init__(
            f"{label}: will not rename {endpoint}:{relative_path} to {new_relative_path}: "
            "both exist, and a rename never overwrites"
        )


class ExportControlled(TransferError):
    """A copy of an export-controlled scan to storage outside the ALS site, refused by the
    transfer layer itself: the asset graph already keeps such scans on site, and this is the
    second line of defence should a caller ever get that decision wrong."""

    def __init__(self, source: str, destination: str, relative_path: str) -> None:
        self.source = source
        self.destination = destination
        self.relative_path = relative_path
        super().__init__(
            f"refused to copy {relative_path!r} from {source} to {destination}: the scan is "
            f"export controlled and {destination} stores data outside the ALS site"
        )
