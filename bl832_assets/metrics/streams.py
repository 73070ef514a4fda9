"""Reading an ever-growing record from where the last scrape stopped.

Counters must never go down, and a scrape must stay cheap on an event log of years. So each
stream keeps the storage id of the last record it counted and asks only for newer ones, oldest
first; and one scrape reads at most a budget of records, leaving the rest to the next scrape,
so a large backlog (the first scrape of an old site) never makes a scrape time out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dagster as dg

PAGE = 1000
"""Records asked for in one query."""

Fetch = Callable[[int | None, int], Sequence[dg.EventLogRecord]]
"""Records after a storage id (None: from the start), oldest first, at most a limit of them."""


@dataclass
class Budget:
    """Records one scrape may still read, and how many it has read."""

    left: int
    spent: int = 0

    def spend(self, count: int) -> None:
        self.left -= count
        self.spent += count


class Stream:
    """One query's records, each returned once, in storage order."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self.after: int | None = None

    def read(self, budget: Budget) -> list[dg.EventLogRecord]:
        """The records added since the last read, as many as the budget allows."""
        found: list[dg.EventLogRecord] = []
        while budget.left > 0:
            limit = min(PAGE, budget.left)
            records = self._fetch(self.after, limit)
            budget.spend(len(records))
            found += records
            if records:
                self.after = records[-1].storage_id
            if len(records) < limit:
                break
        return found


def materializations(instance: dg.DagsterInstance, key: dg.AssetKey) -> Stream:
    """The materializations of one asset, every partition."""

    def fetch(after: int | None, limit: int) -> Sequence[dg.EventLogRecord]:
        records_filter = dg.AssetRecordsFilter(asset_key=key, after_storage_id=after)
        return instance.fetch_materializations(records_filter, limit, ascending=True).records

    return Stream(fetch)


def run_failures(instance: dg.DagsterInstance) -> Stream:
    """The events that ended a run as failed, whatever failed it (a step, run monitoring)."""

    def fetch(after: int | None, limit: int) -> Sequence[dg.EventLogRecord]:
        records_filter = dg.RunStatusChangeRecordsFilter(
            event_type=dg.DagsterEventType.RUN_FAILURE, after_storage_id=after
        )
        return instance.fetch_run_status_changes(records_filter, limit, ascending=True).records

    return Stream(fetch)
