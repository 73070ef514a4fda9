"""The copy ledger as a Dagster resource: copy steps record what they made and claim the copies
they read and write, so a prune can never delete a copy in use."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

from bl832_assets.retention.ledger import Claim, CopyLedger, LeaseConflict


@functools.cache
def open_ledger(url: str) -> CopyLedger:
    """One ledger (one connection pool) per database per process."""
    return CopyLedger(url)


class LedgerResource(dg.ConfigurableResource):
    """Where the copy ledger lives and how long its claims hold."""

    url: str = Field(description="SQLAlchemy URL of the ledger (SQLite file or PostgreSQL).")
    lease_minutes: float = Field(
        default=720.0, description="A claim whose holder died lapses after this long."
    )
    wait_seconds: float = Field(
        default=300.0,
        description="How long a copy waits for a prune holding its destination before the "
        "step fails (and is retried).",
    )

    def ledger(self) -> CopyLedger:
        return open_ledger(self.url)

    @contextmanager
    def copying(self, holder: str, scan: str, source: str, destination: str) -> Iterator[None]:
        """Claim the destination exclusively and pin the source while a copy (or a facility
        job reading one copy and writing another) runs, waiting for a prune that holds either
        to finish."""
        claims = [Claim(scan, destination, exclusive=True), Claim(scan, source, exclusive=False)]
        ledger = self.ledger()
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                ledger.acquire(
                    holder,
                    claims,
                    purpose=f"copy {source} → {destination}",
                    seconds=self.lease_minutes * 60,
                )
                break
            except LeaseConflict:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(1.0)
        try:
            yield
        finally:
            ledger.release(holder)
