"""One dynamic partition per scan, keyed by the scan's file stem.

The key is what an operator types and what Dagster stores, so it is validated before it is
ever added: a bad file name is refused with a reason instead of becoming an unusable partition.
"""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath

import dagster as dg

scans = dg.DynamicPartitionsDefinition(name="scans")


def beamline_partitions(name: str) -> dg.DynamicPartitionsDefinition:
    """A sectioned beamline's datasets (``datasets_bl733``): its own set, since a stem means
    nothing across beamlines."""
    return dg.DynamicPartitionsDefinition(name=f"datasets_{name}")


SCAN_SUFFIX = ".h5"
MAX_KEY_LENGTH = 200


class BadScanName(ValueError):
    """A file name that cannot become a partition key; the message says why."""


def scan_key(relative_path: str) -> str:
    """The partition key of the scan at ``relative_path`` (relative to the detector root)."""
    return dataset_key(relative_path, (SCAN_SUFFIX,), noun="scan")


def dataset_key(
    relative_path: str, suffixes: tuple[str, ...] | list[str], noun: str = "file"
) -> str:
    """The partition key of the dataset whose file is at ``relative_path``: its stem, for any
    beamline, refused with the reason when it cannot be one."""
    name = PurePosixPath(relative_path).name
    suffix = next((s for s in suffixes if name.endswith(s)), None)
    if suffix is None:
        raise BadScanName(f"{relative_path!r}: not a {' or '.join(suffixes)} {noun}")
    stem = name[: -len(suffix)]
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
