"""``bl832 backfill``: reprocess or register historic scans as Dagster asset backfills.

The plan (which assets for which scans, split by export control) is made here from the site's
own records; the backfills are launched through the webserver, so the daemon runs them and they
show under Runs → Backfills like one launched from the UI. ``--wait`` follows them to the end.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

import dagster as dg
from pydantic import ValidationError

from bl832_assets import keys
from bl832_assets.assets.recon import ReconConfig
from bl832_assets.backfill.plan import (
    PRIORITY,
    TRIGGER,
    BackfillRefused,
    Choice,
    Part,
    Plan,
    SiteRecords,
    parents_of,
    plan,
    selected_assets,
)
from bl832_assets.backfill.webserver import BackfillStatus, Webserver, WebserverError
from bl832_assets.cli.site import site_instance
from bl832_assets.definitions import build_definitions
from bl832_assets.partitions import scans
from bl832_assets.queues import queue_tags
from bl832_assets.retention.resource import open_ledger
from bl832_assets.settings import Settings, load_settings

DAEMON_SILENT_AFTER = 60.0
"""Seconds without a heartbeat after which the backfill daemon counts as not running; it
beats every few seconds while alive."""

POLL_SECONDS = 2.0

NO_DAEMON = (
    "no dagster-daemon is running for this site, so no backfill can progress: start one with "
    "`make dev` (webserver and daemon) or `dagster-daemon run` with the same DAGSTER_HOME"
)


@dataclass(frozen=True)
class BackfillArgs:
    selection: str
    choice: Choice
    recon: list[str]
    title: str | None
    url: str
    wait: bool
    dry_run: bool


def run_backfill(args: BackfillArgs, settings: Settings | None = None) -> int:
    settings = settings or load_settings()
    defs = build_definitions(settings)
    try:
        assets = selected_assets(defs, args.selection)
        run_config = _recon_config(settings, assets, args.recon)
        instance = site_instance(settings)
        records = SiteRecords(
            registered=list(instance.get_dynamic_partitions(scans.name)),
            ledger=open_ledger(settings.ledger_url),
            parents=parents_of(defs),
            materialized=instance.get_materialized_partitions,
        )
        made = plan(settings, records, assets, args.choice)
    except BackfillRefused as exc:
        print(f"bl832 backfill: {exc}", file=sys.stderr)
        return 1
    _describe(made)
    if not made.parts:
        print(
            "backfill: no scan matches; nothing launched (see `bl832 discover` for scans "
            "stored before the platform knew them)"
        )
        return 0
    if args.dry_run:
        print("backfill: dry run, nothing launched")
        return 0
    server = Webserver(args.url)
    try:
        daemon_alive = _daemon_alive(server)
        if args.wait and not daemon_alive:
            print(f"bl832 backfill: {NO_DAEMON}; nothing launched", file=sys.stderr)
            return 1
        launched = [_launch(settings, server, part, args, run_config, made) for part in made.parts]
    except WebserverError as exc:
        print(f"bl832 backfill: {exc}", file=sys.stderr)
        return 1
    for part, backfill_id in zip(made.parts, launched, strict=True):
        print(
            f"backfill {backfill_id} launched: {part.label}, {len(part.scans)} scan(s); "
            f"follow it at {args.url.rstrip('/')}/runs/b/{backfill_id}"
        )
    if not daemon_alive:
        print(f"backfill: {NO_DAEMON}; it will run when one starts", file=sys.stderr)
    if not args.wait:
        return 0
    try:
        return _follow(server, launched, sys.stderr)
    except WebserverError as exc:
        print(f"bl832 backfill: {exc}", file=sys.stderr)
        return 1


def _recon_config(
    settings: Settings, assets: list[dg.AssetKey], overrides: list[str]
) -> dict[str, Any] | None:
    """``--recon name=value`` pairs as the run config of every selected reconstruction,
    checked against the site's options now rather than in the first run."""
    if not overrides:
        return None
    values: dict[str, str] = {}
    for pair in overrides:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise BackfillRefused(f"--recon {pair!r}: give NAME=VALUE, e.g. filter_name=hann")
        values[name.strip()] = value.strip()
    try:
        config = ReconConfig(**values)  # ty: ignore[invalid-argument-type]
        config.options(settings.recon)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BackfillRefused(f"--recon: {problems}") from exc
    except dg.Failure as exc:
        raise BackfillRefused(f"--recon: {exc.description}") from exc
    targets = [k for k in assets if k.path[-1] == keys.RECON_TIFF and k.path[0] in settings.hpc]
    if not targets:
        raise BackfillRefused("--recon applies to reconstructions, and the selection has none")
    chosen = config.model_dump(exclude_none=True)
    return {"ops": {k.to_python_identifier(): {"config": chosen} for k in targets}}


def _describe(made: Plan) -> None:
    for part in made.parts:
        names = ", ".join(k.to_user_string() for k in part.assets)
        print(f"backfill plan: {len(part.scans)} scan(s), {part.label}: {names}")
        if part.added:
            print(
                f"backfill plan: added {', '.join(part.added)}: some of these scans never "
                "had it, and the selection reads it"
            )
    if made.controlled and made.withheld:
        print(
            f"backfill plan: {made.controlled} export-controlled scan(s) get no "
            f"{', '.join(made.withheld)}"
        )
    if made.unflagged:
        print(
            f"backfill plan: {made.unflagged} scan(s) have no recorded export-control flag "
            "and are treated as controlled"
        )
    if made.undated:
        print(
            f"backfill plan: {made.undated} scan(s) have no known date and are left out by "
            "--since/--until (use --match or --scans for them)"
        )


def _daemon_alive(server: Webserver) -> bool:
    beat = server.backfill_daemon_heartbeat()
    return beat is not None and time.time() - beat < DAEMON_SILENT_AFTER


def _launch(
    settings: Settings,
    server: Webserver,
    part: Part,
    args: BackfillArgs,
    run_config: dict[str, Any] | None,
    made: Plan,
) -> str:
    title = args.title or f"bl832 backfill {args.selection}"
    if len(made.parts) > 1:
        title = f"{title} ({part.label})"
    recon_ops = {k.to_python_identifier() for k in part.assets}
    config = None
    if run_config is not None:
        ops = {op: c for op, c in run_config["ops"].items() if op in recon_ops}
        config = {"ops": ops} if ops else None
    return server.launch(
        [list(k.path) for k in part.assets],
        part.scans,
        # The queue, too, so a deployment's per-queue limit holds backfill runs in Dagster's
        # queue rather than in the broker.
        tags={"dagster/priority": str(PRIORITY), **TRIGGER, **queue_tags(settings, part.assets)},
        title=_identifier(title),
        description=f"bl832 backfill {args.selection}: {len(part.scans)} scan(s), {part.label}",
        run_config=config,
    )


def _identifier(title: str) -> str:
    """Dagster accepts backfill titles of letters, digits, spaces and a few marks only."""
    allowed = "".join(c if c.isalnum() or c in " _-" else " " for c in title)
    return " ".join(allowed.split())[:100]


def _follow(server: Webserver, backfill_ids: list[str], stream: TextIO) -> int:
    """Poll until every backfill has finished; a bar on ``stream``; 1 if any partition failed."""
    started = time.monotonic()
    while True:
        statuses = [server.status(b) for b in backfill_ids]
        _bar(statuses, time.monotonic() - started, stream)
        if all(s.finished for s in statuses):
            break
        time.sleep(POLL_SECONDS)
    stream.write("\n")
    failed = sum(s.failed for s in statuses)
    for status in statuses:
        print(
            f"backfill {status.id}: {status.status}, {status.done - status.failed}/"
            f"{status.targeted} asset partitions materialized, {status.failed} failed"
        )
    ok = failed == 0 and all(s.status in ("COMPLETED", "COMPLETED_SUCCESS") for s in statuses)
    if not ok:
        print(
            "backfill: some partitions failed; open the backfill page above for their runs, "
            "fix the cause and launch the same selection again (done scans are redone)",
            file=sys.stderr,
        )
    return 0 if ok else 1


def _bar(statuses: list[BackfillStatus], seconds: float, stream: TextIO, width: int = 30) -> None:
    targeted = sum(s.targeted for s in statuses)
    done = sum(s.done for s in statuses)
    running = sum(a.in_progress for s in statuses for a in s.assets)
    failed = sum(s.failed for s in statuses)
    filled = width * done // targeted if targeted else 0
    stream.write(
        f"\rbackfill [{'#' * filled}{'.' * (width - filled)}] {done}/{targeted} asset "
        f"partitions, {running} running, {failed} failed, {seconds:.0f} s"
    )
    stream.flush()
