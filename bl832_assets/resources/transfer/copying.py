"""A verified copy of one file, the way Globus copies with sync_level=checksum and
verify_checksum: skip a destination that already matches, otherwise write a temporary file,
prove its sha256 equals the source's, and only then rename it into place.

Verification costs three passes over the data (copy, hash source, hash copy). Run one after
the other, as ``cp && sha256sum src && sha256sum dst`` does, they triple the time of a copy.
Here the kernel copies (``copy_file_range``) while one thread hashes the source and another
hashes the copy right behind the copier, so the passes overlap and the whole costs little more
than the slowest of them. Hashing and these system calls release the GIL, so threads suffice.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bl832_assets.resources.transfer.errors import ChecksumMismatch

COPY_CHUNK = 8 << 20  # bytes per copy step; the copy's hasher trails the copier by one step
READ_CHUNK = 1 << 20  # fits in CPU caches, which hashing from a buffer benefits from
PARTIAL_MARKER = ".partial-"

# copy_file_range errors that mean "not here" (an old kernel, another filesystem type), after
# which the same copy is done through user space instead.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}
_CAN_EVICT = hasattr(os, "posix_fadvise")  # absent on macOS, where copies just stay cached


@dataclass(frozen=True)
class FileOutcome:
    """The verified state of one destination file after ``sync_file``."""

    sha256: str
    size: int
    copied: bool  # False when the destination already held the same bytes


def partial_name(name: str, tag: str) -> str:
    """Name of the temporary file for ``name``: hidden, so globbing readers and sensors pass it
    by, and tagged with the task, so two tasks writing the same file never share one."""
    return f".{name}{PARTIAL_MARKER}{tag}"


def is_partial(name: str) -> bool:
    """Whether ``name`` is a temporary file of a copy in flight (or of one killed mid-way)."""
    return name.startswith(".") and PARTIAL_MARKER in name


def sha256_file(path: Path) -> str:
    with open(path, "rb", buffering=0) as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def sync_file(source: Path, destination: Path, *, tag: str) -> FileOutcome:
    """Make ``destination`` a verified copy of ``source`` unless it already is one."""
    size = source.stat().st_size
    if destination.is_file() and destination.stat().st_size == size:
        with ThreadPoolExecutor(2) as pool:
            theirs = pool.submit(sha256_file, destination)
            ours = sha256_file(source)
            if theirs.result() == ours:
                return FileOutcome(ours, size, copied=False)
    return copy_verified(source, destination, tag=tag)


def copy_verified(source: Path, destination: Path, *, tag: str) -> FileOutcome:
    """Copy through a temporary file that replaces ``destination`` only once verified.

    Whatever goes wrong, the temporary file is removed and ``destination`` is left as it was.
    The source's modification time is kept, so the acquisition time survives every hop.
    """
    temp = destination.with_name(partial_name(destination.name, tag))
    with open(source, "rb", buffering=0) as src:
        # Opened before the try: if the name were taken, the file is another task's to remove.
        dst = open(temp, "xb+", buffering=0)  # noqa: SIM115
        try:
            with dst:
                size, expected, actual = _copy_and_hash(src.fileno(), dst.fileno())
                if actual != expected:
                    raise ChecksumMismatch(str(destination), expected, actual)
                stat = os.fstat(src.fileno())
                os.utime(dst.fileno(), ns=(stat.st_atime_ns, stat.st_mtime_ns))
                os.fsync(dst.fileno())
            os.replace(temp, destination)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    _fsync_directory(destination.parent)
    return FileOutcome(expected, size, copied=True)


def _copy_and_hash(src_fd: int, dst_fd: int) -> tuple[int, str, str]:
    """Copy ``src_fd`` into ``dst_fd``; return the size and the sha256 of source and copy.

    The source is hashed through the same open file the copier reads, so a file renamed over
    the source mid-copy cannot be hashed in place of the one copied.
    """
    progress = _Progress()
    with ThreadPoolExecutor(2) as pool:
        source_hash = pool.submit(_hash_fd, src_fd, lambda offset: None, evict=False)
        copy_hash = pool.submit(_hash_fd, dst_fd, progress.wait_past, evict=_CAN_EVICT)
        try:
            size = _copy_fd(src_fd, dst_fd, progress.advance)
        finally:
            progress.close()
        return size, source_hash.result(), copy_hash.result()


def _copy_fd(src_fd: int, dst_fd: int, advance: Callable[[int], None]) -> int:
    """Copy until the end of the source, reporting each step; return the bytes copied."""
    step = _kernel_step if hasattr(os, "copy_file_range") else _user_step
    copied = 0
    while True:
        try:
            count = step(src_fd, dst_fd, copied)
        except OSError as exc:
            if copied or step is _user_step or exc.errno not in _NO_KERNEL_COPY:
                raise
            step = _user_step
            continue
        if count == 0:
            return copied
        copied += count
        advance(count)


def _kernel_step(src_fd: int, dst_fd: int, offset: int) -> int:
    return os.copy_file_range(src_fd, dst_fd, COPY_CHUNK, offset, offset)


def _user_step(src_fd: int, dst_fd: int, offset: int) -> int:
    data = memoryview(os.pread(src_fd, READ_CHUNK, offset))
    written = 0
    while written < len(data):
        written += os.pwrite(dst_fd, data[written:], offset + written)
    return len(data)


def _hash_fd(fd: int, wait_past: Callable[[int], int | None], *, evict: bool) -> str:
    """sha256 of an open file read with ``pread`` (the copier's offsets stay untouched).

    ``wait_past(offset)`` blocks until more than ``offset`` bytes may be read and returns how
    many, or returns None to mean "read to the end of the file". With ``evict``, each hashed
    range is dropped from the page cache: that starts writing it to disk at once, so the final
    fsync has little left to wait for, and a large scan does not push everything else out of
    memory.
    """
    digest = hashlib.sha256()
    buffer = bytearray(READ_CHUNK)
    view = memoryview(buffer)
    offset = 0
    while True:
        limit = wait_past(offset)
        want = READ_CHUNK if limit is None else min(READ_CHUNK, limit - offset)
        if want <= 0:
            return digest.hexdigest()
        count = os.preadv(fd, [view[:want]], offset)
        if count == 0:
            return digest.hexdigest()
        digest.update(view[:count])
        if evict:
            os.posix_fadvise(fd, offset, count, os.POSIX_FADV_DONTNEED)
        offset += count


class _Progress:
    """How far the copier has written, so the copy can be hashed right behind it."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._written = 0
        self._closed = False

    def advance(self, count: int) -> None:
        with self._changed:
            self._written += count
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait_past(self, offset: int) -> int:
        """Block until more than ``offset`` bytes are written or the copier has stopped; return
        the bytes written (equal to ``offset`` once everything has been read)."""
        with self._changed:
            self._changed.wait_for(lambda: self._written > offset or self._closed)
            return self._written


def _fsync_directory(path: Path) -> None:
    """Make a rename in ``path`` durable: without it a crash can undo the rename."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
