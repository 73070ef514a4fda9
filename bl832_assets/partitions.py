"""One dynamic partition per scan, keyed by the scan's file stem.

The key is what an operator types and what Dagster stores, so it is validated before it is
ever added: a bad file name is refused with a reason instead of becoming an unusable partition.
"""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath

import dagster as dg

scans = dg.DynamicPartitionsDefinition(name="scans")

SCAN_SUFFIX = ".h5"
MAX_KEY_LENGTH = 200


class BadScanName(ValueError):
    """A file name that cannot become a partition key; the message says why."""


def scan_key(relative_path: str) -> str:
    """The partition key of the scan at ``relative_path`` (relative to the detector root)."""
    name = PurePosixPath(relative_path).name
    if not name.endswith(SCAN_SUFFIX):
        raise BadScanName(f"{relative_path!r}: not a {SCAN_SUFFIX} scan")
    stem = name[: -len(SCAN_SUFFIX)]
    if not stem:
        raise BadScanName(f"{relative_path!r}: empty scan name")
    if any(unicodedata.category(ch).startswith("C") for ch in relative_path):
        raise BadScanName(f"{relative_path!r}: control character in the path")
    if "\\" in stem:
        raise BadScanName(f"{relative_path!r}: path separator in the scan name")
    if ".." in stem:
        raise BadScanName(f"{relative_path!r}: '..' in the scan name")
    if any(part == ".." for part in PurePosixPath(relative_path).parts):
        raise BadScanName(f"{relative_path!r}: '..' in the path")
    if "|" in stem or "," in stem:
        # Dagster reserves '|' for multi-partition keys; ',' breaks partition-range selection.
        raise BadScanName(f"{relative_path!r}: '|' or ',' in the scan name")
    if len(stem) > MAX_KEY_LENGTH:
        raise BadScanName(f"{relative_path!r}: scan name longer than {MAX_KEY_LENGTH} characters")
    if stem != stem.strip():
        raise BadScanName(f"{relative_path!r}: leading or trailing whitespace in the scan name")
    return stem
