"""sha256 of a file or folder, measured where the storage is: the ``bl832 hash`` payload.

Retention deletes a copy only after both it and the copy kept elsewhere were hashed just
before; storage the orchestrator cannot see is hashed by this payload in a facility job. Its
answer must be keyed exactly as the transfer resources' ``checksums``, or the two sides of a
comparison would never match: a file by its name, a folder's files by POSIX paths relative to
it, temporary files of copies in flight left out (they are not data), sorted.
"""

from __future__ import annotations

import errno
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

PARTIAL_MARKER = ".partial-"
HASH_WORKERS = 8  # hashing releases the GIL; a folder of TIFFs waits on storage, not one core


@dataclass(frozen=True)
class Hashed:
    """What the payload prints: each file's sha256 and size, keyed the same way."""

    files: dict[str, str]
    sizes: dict[str, int]

    def to_json_dict(self) -> dict[str, dict[str, str] | dict[str, int]]:
        return {"files": self.files, "sizes": self.sizes}


def is_partial(name: str) -> bool:
    """A hidden temporary file a copy writes before renaming it into place."""
    return name.startswith(".") and PARTIAL_MARKER in name


def files_at(path: Path) -> dict[str, Path]:
    """The data files at ``path``, keyed and sorted as ``checksums`` keys them; symbolic links
    to folders are not followed, as ``os.walk`` does not, so a folder is hashed once."""
    if path.is_file():
        return {path.name: path}
    if not path.is_dir():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    found: dict[str, Path] = {}
    for folder, _, names in os.walk(path):
        for name in names:
            file = Path(folder, name)
            if not is_partial(name) and file.is_file():
                found[file.relative_to(path).as_posix()] = file
    return dict(sorted(found.items()))


def _measure(path: Path) -> tuple[str, int]:
    """sha256 and size of one open file, so both describe the same bytes even if the name is
    replaced meanwhile."""
    with open(path, "rb", buffering=0) as stream:
        size = os.fstat(stream.fileno()).st_size
        return hashlib.file_digest(stream, "sha256").hexdigest(), size


def hash_path(path: Path, workers: int = HASH_WORKERS) -> Hashed:
    """Hash every data file at ``path``, ``workers`` at once; ``FileNotFoundError`` when
    nothing is there."""
    files = files_at(path)
    with ThreadPoolExecutor(workers) as pool:
        measured = dict(zip(files, pool.map(_measure, files.values()), strict=True))
    return Hashed(
        {key: digest for key, (digest, _) in measured.items()},
        {key: size for key, (_, size) in measured.items()},
    )
