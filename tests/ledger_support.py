"""The copy ledger in the tests: a copy's facts as discovery records them, and the one invariant
no fault may break (every scan keeps a copy whose bytes match its record).

Shared by the retention tests (``tests/retention``, ``tests/facilities``), discovery, the
consistency audit and the backfill plan."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable

from resource_support import FOLDER

from bl832_assets import keys
from bl832_assets.digests import tree_digest
from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.resources.transfer.errors import TransferError
from bl832_assets.retention.ledger import CopyFacts, CopyLedger, CopyRecord, CopyState


def copy_facts(scan: str, **changes: object) -> CopyFacts:
    """The raw scan ``scan`` on the beamline's raw storage as discovery records it: one file
    of 10 bytes in ``FOLDER``, not hashed yet, seen now; tests change only what they are
    about."""
    facts = CopyFacts(
        scan=scan,
        endpoint="data832_raw",
        dataset=keys.RAW_SCAN,
        asset_key=keys.BEAMLINE_RAW.to_user_string(),
        relative_path=f"{FOLDER}/{scan}.h5",
        size_bytes=10,
        files=1,
        sha256=None,
        made_at=time.time(),
        made_by="discovered",
        export_controlled=False,
    )
    return dataclasses.replace(facts, **changes)  # type: ignore[arg-type]


def measured_now(disk: TransferResource, copy: CopyRecord) -> str | None:
    """The copy's tree digest where it lies now, or None when it is gone or cannot be read."""
    try:
        if not disk.exists(copy.endpoint, copy.relative_path):
            return None
        return tree_digest(disk.checksums(copy.endpoint, copy.relative_path))
    except TransferError:
        return None


def assert_no_scan_lost(
    disk: TransferResource, endpoints: Iterable[str], ledger: CopyLedger
) -> None:
    """For every scan and dataset the ledger records at ``endpoints``, at least one PRESENT
    copy still holds, as ``disk`` reads it now, the bytes recorded for it."""
    recorded: dict[tuple[str, str], list[CopyRecord]] = {}
    for endpoint in endpoints:
        for copy in ledger.at(endpoint, tuple(CopyState)):
            recorded.setdefault((copy.scan, copy.dataset), []).append(copy)
    assert recorded, "the ledger records no copies at all"
    for (scan, dataset), copies in sorted(recorded.items()):
        intact = [
            c
            for c in copies
            if c.state is CopyState.PRESENT
            and c.sha256 is not None
            and measured_now(disk, c) == c.sha256
        ]
        assert intact, (
            f"{scan} {dataset} is lost: no PRESENT copy matches its record; "
            + ", ".join(f"{c.endpoint}={c.state.value}" for c in copies)
        )
