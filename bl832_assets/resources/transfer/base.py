"""What the asset graph asks of data movement: copy a scan's file or folder between named
endpoints, prove a copy is intact, and delete what is no longer wanted.

Endpoints are names, never paths: a Globus collection has no path on the orchestrator's
machine, so nothing here may assume one. The same relative path names the data on both ends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import dagster as dg
from pydantic import Field

from bl832_assets.resources.transfer.errors import ExportControlled
from bl832_assets.resources.transfer.results import TransferResult


class TransferResource(dg.ConfigurableResource, ABC):
    """Copies data between named endpoints (``spot832``, ``data832_raw``, ``nersc_cfs``, …)."""

    offsite: list[str] = Field(
        default_factory=list,
        description="Endpoint names whose storage is outside the ALS site; an export-controlled "
        "scan is never copied to them.",
    )

    @abstractmethod
    def copy(
        self,
        source: str,
        destination: str,
        relative_path: str,
        *,
        label: str,
        export_controlled: bool,
    ) -> TransferResult:
        """Copy the file or folder (recursively) at ``relative_path`` from ``source`` to the
        same relative path on ``destination``, skipping files already identical there.

        Blocks until the task ends. Raises ``TransferFailed`` when it fails; ``UnknownEndpoint``,
        ``UnsafePath`` or ``ExportControlled`` (an ``export_controlled`` scan to an ``offsite``
        destination) when the request is refused before any task exists. Files present only at
        the destination are left alone: a copy never deletes.
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

    @abstractmethod
    def rename(
        self, endpoint: str, relative_path: str, new_relative_path: str, *, label: str
    ) -> None:
        """Move the file or folder at ``relative_path`` to ``new_relative_path`` on the same
        endpoint, creating missing folders above the new path. Nothing is copied, so moving a
        scan into the endpoint's trash (``.trash/…``) is instant and can be undone by moving it
        back, until the trash is purged.

        Safe to repeat after a crash: when only the new path exists the move is already done and
        this returns. Raises ``RenameConflict`` when both paths exist (nothing is overwritten),
        ``PathNotFound`` when neither does, and ``UnknownEndpoint`` or ``UnsafePath`` (for
        either path) before anything moves. ``label`` names the step that asked, in errors.
        """

    def refuse_export_controlled(
        self, source: str, destination: str, relative_path: str, *, export_controlled: bool
    ) -> None:
        """Raise ``ExportControlled`` when an export-controlled scan would leave the site.

        Every backend calls this before it creates a task, so the rule holds whichever backend
        a site runs and whatever the caller decided."""
        if export_controlled and destination in self.offsite:
            raise ExportControlled(source, destination, relative_path)
