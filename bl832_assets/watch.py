"""Incremental watching of the detector folder, free of Dagster so it can be tested on files alone.

A tick must stay cheap however many old scans sit in the folder. The cursor keeps a change-time
watermark: a file whose inode has not changed since the watermark cannot be new, and a folder
whose modification time is older than the watermark cannot have gained an entry, so such folders
are walked for sub-folders only and their files are never stat'ed. Files seen but not yet
complete are remembered with their size and mtime, and are complete once they have not
changed for ``settle_seconds`` or between two ticks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bl832_assets.partitions import SCAN_SUFFIX


@dataclass
class WatchCursor:
    """What the watcher remembers between ticks; serialised into the sensor cursor."""

    watermark_ns: int | None = None  # newest inode change time already looked at
    at_watermark: list[str] = field(default_factory=list)  # files seen with exactly that ctime
    pending: dict[str, list[int]] = field(default_factory=dict)  # path -> [size, mtime_ns]
    # Settled files of datasets still missing a file (half a 7.3.3 pair): path ->
    # [first settled, ns; 1 once reported as incomplete]. Written only when there are some.
    held: dict[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> str:
        state: dict[str, object] = {
            "watermark_ns": self.watermark_ns,
            "at_watermark": self.at_watermark,
            "pending": self.pending,
        }
        if self.held:
            state["held"] = self.held
        return json.dumps(state, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> WatchCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            watermark_ns=data.get("watermark_ns"),
            at_watermark=list(data.get("at_watermark", [])),
            pending={k: list(v) for k, v in data.get("pending", {}).items()},
            held={k: list(v) for k, v in data.get("held", {}).items()},
        )


@dataclass(frozen=True)
class Candidate:
    """A file that looks complete: not changed for the settle time or between two ticks."""

    relative_path: str
    path: Path
    size: int
    mtime_ns: int
    ctime_ns: int


@dataclass
class Observation:
    """The outcome of one look at the folder."""

    settled: list[Candidate]
    cursor: WatchCursor
    history: int = 0  # files left alone on the first tick because they predate the lookback
    folders_walked: int = 0
    folders_listed: int = 0
    files_examined: int = 0

    def summary(self) -> str:
        return (
            f"walked {self.folders_walked} folders, listed {self.folders_listed}, "
            f"examined {self.files_examined} files, {len(self.settled)} settled, "
            f"{len(self.cursor.pending)} still being written, {self.history} left to backfill"
        )


def _folders(root: Path) -> Iterator[tuple[os.stat_result, list[os.DirEntry[str]]]]:
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            info = folder.stat()
            with os.scandir(folder) as listing:
                entries = list(listing)
        except FileNotFoundError:
            continue  # removed while we walked: retention or the operator tidying up
        # Hidden folders are not the detector's: retention's trash (.trash) holds scans that
        # were pruned, and they must not come back as news.
        stack.extend(
            Path(e.path)
            for e in entries
            if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
        )
        yield info, entries


def observe(
    root: Path,
    cursor: WatchCursor,
    *,
    now_ns: int,
    settle_seconds: float,
    lookback_hours: float,
    suffixes: tuple[str, ...] = (SCAN_SUFFIX,),
) -> Observation:
    """Look at ``root`` once and report the files ending in one of ``suffixes`` that are
    ready to be processed."""
    first_tick = cursor.watermark_ns is None
    watermark = cursor.watermark_ns or 0
    done_at_watermark = set(cursor.at_watermark)
    oldest_news = now_ns - int(lookback_hours * 3600e9)
    settle_ns = int(settle_seconds * 1e9)
    obs = Observation(settled=[], cursor=WatchCursor(held=dict(cursor.held)))
    fresh: dict[str, os.stat_result] = {}
    changed_at: dict[str, int] = {}  # inode change time of every file looked at
    newest = watermark
    for info, entries in _folders(root):
        obs.folders_walked += 1
        if not first_tick and info.st_mtime_ns < watermark:
            continue
        obs.folders_listed += 1
        for entry in entries:
            if (
                not entry.name.endswith(suffixes)
                or entry.name.startswith(".")  # temporaries and other tools' sidecar files
                or entry.is_dir(follow_symlinks=False)
            ):
                continue
            relative = Path(entry.path).relative_to(root).as_posix()
            if relative in cursor.pending:
                continue  # looked at below, whatever its times
            obs.files_examined += 1
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            changed_at[relative] = st.st_ctime_ns
            newest = max(newest, st.st_ctime_ns)
            if first_tick:
                if st.st_mtime_ns < oldest_news:
                    obs.history += 1
                    continue
            elif st.st_ctime_ns < watermark or (
                st.st_ctime_ns == watermark and relative in done_at_watermark
            ):
                continue
            fresh[relative] = st
    for relative in cursor.pending:
        try:
            fresh[relative] = (root / relative).stat()
        except FileNotFoundError:
            continue  # deleted before it settled: nothing to do
        obs.files_examined += 1
        changed_at[relative] = fresh[relative].st_ctime_ns
        newest = max(newest, fresh[relative].st_ctime_ns)
    for relative, st in sorted(fresh.items()):
        previous = cursor.pending.get(relative)
        unchanged = previous == [st.st_size, st.st_mtime_ns]
        if unchanged or now_ns - st.st_mtime_ns >= settle_ns:
            obs.settled.append(
                Candidate(relative, root / relative, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            )
        else:
            obs.cursor.pending[relative] = [st.st_size, st.st_mtime_ns]
    # Only file-system timestamps move the watermark: the kernel stamps files from a coarse
    # clock that can lag the wall clock by a tick, so a watermark taken from the wall clock
    # could pass over a file created just after an empty look.
    obs.cursor.watermark_ns = newest
    at_watermark = {r for r, ctime in changed_at.items() if ctime == obs.cursor.watermark_ns}
    if newest == watermark:
        at_watermark |= done_at_watermark
    obs.cursor.at_watermark = sorted(at_watermark)
    return obs
