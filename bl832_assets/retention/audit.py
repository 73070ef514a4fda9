"""The retention audit trail: one JSON line per deletion, refusal, purge and restore, appended
and fsync'd before the action is reported done.

It lives outside Dagster's event log on purpose: that log is trimmed (``history.py``), and the
question "where did this scan's copy go, and what stood behind it" must be answerable years
later, from a file an operator can read with ``grep``.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one entry durably and return it (with its id and time)."""
        entry = {"id": uuid.uuid4().hex, "event": event, "time": time.time(), **fields}
        line = json.dumps(entry, sort_keys=True, default=str) + "\n"
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:  # the new file's name must survive a crash too
            folder = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        return entry

    def entries(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with self.path.open() as stream:
            for line in stream:
                if line.strip():
                    yield json.loads(line)
