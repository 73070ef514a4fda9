"""Publish files and folders all at once, so that a watcher, a transfer or a rerun never sees a
half-written result under its final name: a killed job leaves only a hidden ``.partial`` sibling.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``final`` to write into; publish it under ``final`` on success.

    The sibling lives in the same folder so the final rename never crosses a file system. A
    previous result under ``final`` is replaced (reruns overwrite), and on failure the temporary
    is removed, so the caller's exception leaves the folder as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.partial-{os.getpid()}")
    _remove(temporary)
    try:
        yield temporary
        _publish(temporary, final)
    except BaseException:
        _remove(temporary)
        raise


def _publish(temporary: Path, final: Path) -> None:
    # os.replace swaps a file atomically but refuses a non-empty folder, so an older folder is
    # first moved aside; in between no complete-looking result exists, which is the safe side.
    if temporary.is_dir() and final.exists():
        retired = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, retired)
        os.replace(temporary, final)
        _remove(retired)
    else:
        os.replace(temporary, final)
