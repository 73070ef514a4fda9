"""Errors raised by the payload, kept free of Dagster so they travel to HPC jobs unchanged."""

from __future__ import annotations

from pathlib import Path


class ScanFormatError(ValueError):
    """A dataset file does not follow its beamline's layout (8.3.2 Data Exchange, 7.3.3 EDF and
    text headers, 7.0.1.2 CXI).

    Carries the file and the offending field so that the message an operator reads in the
    Dagster UI names both, and callers can still branch on them.
    """

    def __init__(self, path: str | Path, field: str, problem: str) -> None:
        self.path = Path(path)
        self.field = field
        self.problem = problem
        super().__init__(f"{self.path}: {field}: {problem}")


class StackFormatError(ValueError):
    """A folder of reconstructed TIFF slices cannot be turned into a pyramid.

    Names the offending file (or the folder, when it holds no slices) because a stack of
    thousands of slices is only debuggable when the message points at the one that is wrong.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
