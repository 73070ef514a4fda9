"""Dagster Pipes messages from a NERSC job, read back through the Superfacility API.

The payload writes its Pipes messages as JSON lines to a file in the job's working folder (the
standard ``{"path": ...}`` writer params, relative, so the same script works whatever that
folder is mounted as inside a container); Dagster cannot open that file, so this reader
downloads it through the SF API while the job runs and once more when it ends, handing over
only new lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg


class DownloadedMessageReader(dg.PipesMessageReader):
    """Tells the payload to write ``name`` in its working folder and reads it back from
    ``path`` on the facility through ``download``, which returns the file's text or ``None``
    while it does not exist yet."""

    def __init__(self, name: str, path: str, download: Callable[[str], str | None]) -> None:
        self.name = name
        self.path = path
        self._download = download
        self._handler: dg.PipesMessageHandler | None = None
        self._handled = 0

    @contextmanager
    def read_messages(self, handler: dg.PipesMessageHandler) -> Iterator[dict[str, str]]:
        self._handler = handler
        try:
            yield {"path": self.name}
        finally:
            self.pull()
            self._handler = None

    def pull(self) -> None:
        """Hand Dagster the complete lines written since the last pull."""
        text = self._download(self.path) if self._handler is not None else None
        if not text:
            return
        lines = text.splitlines()
        if not text.endswith("\n"):
            lines = lines[:-1]  # the payload is still writing this one
        for line in lines[self._handled :]:
            if line.strip():
                self._handler.handle_message(json.loads(line))  # type: ignore[union-attr]
        self._handled = max(self._handled, len(lines))

    def no_messages_debug_text(self) -> str:
        return f"Downloaded the messages file {self.path} through the Superfacility API."
