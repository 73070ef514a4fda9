"""What a rename still has to do, decided from what exists now rather than from what the last
attempt reported, so a retention step killed half-way (or a reply lost after the rename took
place) is simply run again, by every backend alike."""

from __future__ import annotations

from bl832_assets.resources.transfer.errors import PathNotFound, RenameConflict


def rename_pending(
    endpoint: str,
    relative_path: str,
    new_relative_path: str,
    *,
    label: str,
    old_exists: bool,
    new_exists: bool,
) -> bool:
    """True when the rename is still to be done, False when an earlier attempt already did it.

    Raises ``RenameConflict`` when both paths exist (never overwrite) and ``PathNotFound`` when
    neither does: then the data is neither where it was nor where it was going.
    """
    if old_exists and new_exists:
        raise RenameConflict(endpoint, relative_path, new_relative_path, label)
    if not old_exists and not new_exists:
        raise PathNotFound(endpoint, relative_path)
    return old_exists
