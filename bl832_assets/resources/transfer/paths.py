"""Rules for the relative paths a copy names, shared by every transfer backend.

A relative path is joined onto the root of two endpoints; if it could climb out of a root, a
typo or a hostile file name could read or overwrite anything the service account can reach.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from bl832_assets.resources.transfer.errors import UnsafePath


def safe_relative_path(relative_path: str) -> PurePosixPath:
    """The path as a POSIX relative path, or ``UnsafePath`` saying why it is refused."""
    if "\x00" in relative_path:
        raise UnsafePath(relative_path, "contains a NUL byte")
    path = PurePosixPath(relative_path)
    if path.is_absolute():
        raise UnsafePath(relative_path, "is absolute; give it relative to the endpoint root")
    if ".." in path.parts:
        raise UnsafePath(relative_path, "contains '..' and could leave the endpoint root")
    if not path.parts:
        raise UnsafePath(relative_path, "names the endpoint root itself, not a file or folder")
    return path


def join_under_root(root: Path, relative_path: PurePosixPath) -> Path:
    """``root / relative_path``, refused if a symbolic link inside the root leads outside it."""
    joined = root / relative_path
    if not joined.resolve().is_relative_to(root.resolve()):
        raise UnsafePath(str(relative_path), f"leads outside {root} through a symbolic link")
    return joined
