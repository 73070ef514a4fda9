"""Starting a timed run cold: what a benchmark reads must come from disk, not from memory."""

from __future__ import annotations

import os
from pathlib import Path


def evict(path: Path) -> None:
    """Write back dirty pages, then drop ``path`` from the page cache."""
    os.sync()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
