"""What the asset graph asks of data movement: copy a scan's file or folder between named
endpoints, prove a copy is intact, and delete what is no longer wanted.

Endpoints are names, never paths: a Globus collection has no path on the orchestrator's
machine, so nothing here may assume one. The same relative path names the data on both ends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import dagster as dg

from bl832_assets.resources.transfer.results import TransferResult


class TransferResource(dg.ConfigurableResource, ABC):
    """Copies data between named endpoints (``spot832``, ``data832_raw``, ``nersc_cfs``, …)."""

    @abstractmethod
    def copy(
        self, source: str, destination: str, relative_path: str, *, label: str
    ) -> TransferResult:
        """Copy the file or folder (recursively) at ``relative_path`` from ``source`` to the
        same relative path on ``destination``, skipping files already identical there.

        Blocks until the task ends. Raises ``TransferFailed`` when it fails, ``UnknownEndpoint``
        or ``UnsafePath`` when the request is refused before any task exists. Files present only
        at the destination are left alone: a copy never deletes.
        """

    @abstractmethod
    def checksums(self, endpoint: str, relative_path: str) -> dict[str, str]:
        """sha256 of every file at ``relative_path``: keys are paths relative to it, or the file's
        name for a single file. Raises ``PathNotFound`` when nothing is there, and
        ``ChecksumUnavailable`` when this machine cannot hash that endpoint's files."""

    @abstractmethod
    def listing(self, endpoint: str, relative_path: str) -> dict[str, int]:
        """Size in bytes of every file at ``relative_path``, keyed exactly as ``checksums`` keys
        them. Every backend can list where it cannot hash, so a copy can still be compared by
        names and sizes. Raises ``PathNotFound`` when nothing is there."""

    @abstractmethod
    def exists(self, endpoint: str, relative_path: str) -> bool:
        """Whether a file or folder exists at ``relative_path`` on ``endpoint``."""

    @abstractmethod
    def delete(self, endpoint: str, relative_path: str, *, label: str) -> str:
        """Delete the file or folder (recursively) at ``relative_path`` on ``endpoint`` and
        return the id of the task that did it. Blocks until the task ends.

        Nothing there is fine: retries and clean-ups after a partial failure repeat deletes.
        Raises ``TransferFailed`` when the delete fails, ``UnknownEndpoint`` or ``UnsafePath``
        when it is refused before any task exists (the endpoint root itself is never deleted).
        """
