"""Peak memory of the payload, reported with its results so that job sizes can be planned."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb() -> float:
    """This process's largest resident set so far, in MiB.

    Read from ``VmHWM`` rather than ``getrusage``: Linux keeps ``ru_maxrss`` across ``exec``,
    so a payload started by a large process would report its launcher's peak as its own.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise OSError("/proc/self/status has no VmHWM line")
