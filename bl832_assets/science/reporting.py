"""Progress and results of a payload, told to Dagster when Dagster launched it, else to stderr.

The payload runs the same way from a Slurm script, a Globus Compute function, the local compute
backend (through Dagster Pipes) or a terminal; only this module knows which. ``dagster_pipes``
is imported lazily so the payload also runs where it is not installed.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType

from bl832_assets.science.preview import INLINE_MARKDOWN_LIMIT

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


class Markdown(str):
    """Text that Dagster should render as Markdown (previews as inline images)."""


def _type_of(value: object) -> str | None:
    if isinstance(value, Markdown):
        return "md"
    return "json" if isinstance(value, list | dict) else None


def _typed(metadata: Mapping[str, object]) -> dict[str, object]:
    """Lists and dicts tagged as JSON and Markdown as Markdown: Dagster would otherwise guess."""
    return {
        key: value if (kind := _type_of(value)) is None else {"raw_value": value, "type": kind}
        for key, value in metadata.items()
    }


MARKDOWN_KEY = "markdown"
"""Where ``printable(..., previews=True)`` puts Markdown values, so JSON keeps their type."""


def printable(metadata: Mapping[str, object], *, previews: bool = False) -> dict[str, object]:
    """The metadata as one JSON object. A terminal gets no images; a caller that turns the line
    back into Dagster metadata (a Globus Compute function's) asks for the ``previews`` small
    enough to render inline, under ``MARKDOWN_KEY``. The full gallery never travels this way."""
    plain = {key: value for key, value in metadata.items() if not isinstance(value, Markdown)}
    if previews:
        plain[MARKDOWN_KEY] = {
            key: str(value)
            for key, value in metadata.items()
            if isinstance(value, Markdown) and len(value) < INLINE_MARKDOWN_LIMIT
        }
    return plain


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def open_reporter() -> Iterator[Reporter]:
    """A reporter for this process. Under Pipes, an exception escaping the block is reported to
    Dagster as the step's failure before it propagates."""
    pipes = _pipes_module()
    if pipes is None or not pipes.PipesEnvVarParamsLoader().is_dagster_pipes_process():
        yield Reporter(_to_stderr, lambda metadata: None)
        return
    with pipes.open_dagster_pipes() as context:
        yield Reporter(
            context.log.info,
            lambda metadata: context.report_asset_materialization(metadata=_typed(metadata)),
        )
