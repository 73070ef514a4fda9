"""Progress and results of a payload, told to Dagster when Dagster launched it, else to stderr.

The payload runs the same way from a Slurm script, a Globus Compute function, the local compute
backend (through Dagster Pipes) or a terminal; only this module knows which. ``dagster_pipes``
is imported lazily so the payload also runs where it is not installed.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType

PROGRESS_STEP_PERCENT = 5  # enough to watch a job move without flooding the event log


class Reporter:
    """The three things a payload says: a log line, how far it is, and what it produced."""

    def __init__(
        self, log: Callable[[str], None], publish: Callable[[Mapping[str, object]], None]
    ) -> None:
        self._log = log
        self._publish = publish
        self._last_percent = -PROGRESS_STEP_PERCENT

    def log(self, message: str) -> None:
        self._log(message)

    def progress(self, done: int, total: int) -> None:
        """Log ``done/total``, at most once per ``PROGRESS_STEP_PERCENT`` and always at the end."""
        percent = 100 * done // max(total, 1)
        if done >= total or percent >= self._last_percent + PROGRESS_STEP_PERCENT:
            self._last_percent = percent
            self._log(f"progress: {done}/{total} slices ({percent}%)")

    def report(self, metadata: Mapping[str, object]) -> None:
        self._publish(metadata)


def _pipes_module() -> ModuleType | None:
    try:
        return importlib.import_module("dagster_pipes")
    except ImportError:
        return None


def _typed(metadata: Mapping[str, object]) -> dict[str, object]:
    """Lists and dicts tagged as JSON, which Dagster would otherwise have to guess."""
    return {
        key: {"raw_value": value, "type": "json"} if isinstance(value, list | dict) else value
        for key, value in metadata.items()
    }


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def open_reporter() -> Iterator[Reporter]:
    """A reporter for this process. Under Pipes, an exception escaping the block is reported to
    Dagster as the step's failure before it propagates."""
    pipes = _pipes_module()
    if pipes is None or not pipes.PipesEnvVarParamsLoader().is_dagster_pipes_process():
        yield Reporter(_to_stderr, lambda metadata: _to_stderr(f"result: {json.dumps(metadata)}"))
        return
    with pipes.open_dagster_pipes() as context:
        yield Reporter(
            context.log.info,
            lambda metadata: context.report_asset_materialization(metadata=_typed(metadata)),
        )
