"""``bl832``: the command line of the platform and of its payload.

Payload commands (``recon``, ``pyramid``, ``synth``, and 7.3.3's and 7.0.1.2's in
``beamline_payloads``) are what facility jobs run; site commands
(``process``, ``demo``, ``config show``, ``catalog show``, ``dev``) act on the site. Every
failure ends with one line naming the file and the reason, and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from bl832_assets.cli import beamline_payloads
from bl832_assets.science.engines import engine_names
from bl832_assets.science.options import FILTERS, RING_METHODS, OptionsError, ReconOptions
from bl832_assets.settings import SettingsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bl832", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="write a synthetic 8.3.2 scan (Data Exchange HDF5)")
    synth.add_argument("out", type=Path, help="path of the .h5 file to write")
    synth.add_argument("--columns", type=int, default=128, help="detector columns (rays)")
    synth.add_argument("--rows", type=int, default=8, help="detector rows (slices)")
    synth.add_argument("--angles", type=int, default=181, help="projection angles over 180°")
    synth.add_argument(
        "--centre-offset",
        type=float,
        default=0.0,
        help="rotation axis offset from the detector centre, in pixels",
    )
    synth.add_argument(
        "--export-control", action="store_true", help="flag the scan as export controlled"
    )
    synth.add_argument("--no-noise", action="store_true", help="noise-free projections")
    synth.add_argument("--seed", type=int, default=0)

    recon = commands.add_parser("recon", help="reconstruct SCAN.h5 into OUT_DIR/rec<stem>/")
    recon.add_argument("scan", type=Path)
    recon.add_argument("out_dir", type=Path)
    recon.add_argument("--options", help="all options as JSON (what facility jobs pass)")
    recon.add_argument("--centre", type=float, help="rotation axis, detector columns")
    recon.add_argument("--slices", help="detector rows FIRST:STOP to reconstruct")
    recon.add_argument("--angle-step", type=int, help="use every n-th projection")
    recon.add_argument("--bin", type=int, dest="binning", choices=(1, 2, 4))
    recon.add_argument("--filter", dest="filter_name", choices=FILTERS)
    recon.add_argument("--engine", choices=engine_names())
    recon.add_argument("--rings", dest="ring_removal", choices=RING_METHODS)
    recon.add_argument(
        "--previews", action="store_true", help="include the UI's inline previews in the JSON"
    )

    pyramid = commands.add_parser("pyramid", help="build an OME-Zarr pyramid from a TIFF folder")
    pyramid.add_argument("tiff_dir", type=Path)
    pyramid.add_argument("out_zarr", type=Path)
    pyramid.add_argument(
        "--previews", action="store_true", help="include the UI's inline previews in the JSON"
    )

    beamline_payloads.add_parsers(commands)

    hashing = commands.add_parser(
        "hash", help="print the sha256 and size of a file or of every file in a folder (JSON)"
    )
    hashing.add_argument("path", type=Path)

    process = commands.add_parser(
        "process", help="place a scan on the detector and materialize its decided assets"
    )
    process.add_argument("scan", type=Path)
    process.add_argument("--folder", help="proposal folder on the detector (default: proposal)")

    demo = commands.add_parser("demo", help="synthesise a scan and run it through the whole graph")
    demo.add_argument(
        "--facilities",
        choices=("local", "fake"),
        default="local",
        help="local: the embedded backends; fake: the production resources against local "
        "fakes of Globus, NERSC, Globus Compute and SciCat",
    )
    demo.add_argument(
        "--beamline",
        help="one beamline, by id (8.3.2, 7.3.3, 7.0.1.2, 9.3.1) or section name (bl733); "
        "default: 8.3.2 and then every beamline the settings configure",
    )

    commands.add_parser("pools", help="apply the settings' pool limits to the site's instance")

    prune = commands.add_parser(
        "prune", help="delete copies past their retention, each behind a verified copy"
    )
    prune.add_argument("--location", help="one endpoint (default: every pruned endpoint)")
    prune.add_argument(
        "--dry-run", action="store_true", help="decide and verify, but change nothing"
    )

    restore = commands.add_parser(
        "restore", help="bring a pruned copy back from its trash or a verified copy"
    )
    restore.add_argument("scan", help="the scan's partition key (its file name without .h5)")
    restore.add_argument("--location", required=True, help="endpoint the copy was pruned from")

    from datetime import date  # YYYY-MM-DD, an operator's way to say "scans from March"

    discover = commands.add_parser(
        "discover", help="register the scans already stored on an endpoint (historic scans)"
    )
    discover.add_argument("endpoint", help="endpoint holding raw scans, e.g. data832_raw")
    discover.add_argument("prefix", nargs="?", default="", help="only this folder of it")
    discover.add_argument(
        "--since", type=date.fromisoformat, help="files modified on or after YYYY-MM-DD"
    )
    discover.add_argument(
        "--until", type=date.fromisoformat, help="files modified on or before YYYY-MM-DD"
    )
    discover.add_argument("--match", help="glob on the path relative to the endpoint")
    discover.add_argument(
        "--dry-run", action="store_true", help="validate and count, but register nothing"
    )

    backfill = commands.add_parser(
        "backfill",
        help="launch a Dagster asset backfill of registered scans (the daemon runs it)",
    )
    backfill.add_argument(
        "selection",
        help="assets: a key with + for what depends on it (nersc/recon_tiff+), or Dagster "
        'selection syntax (key:"data832/raw_scan", group:results)',
    )
    backfill.add_argument(
        "--since", type=date.fromisoformat, help="scans taken on or after YYYY-MM-DD"
    )
    backfill.add_argument(
        "--until", type=date.fromisoformat, help="scans taken on or before YYYY-MM-DD"
    )
    backfill.add_argument("--match", help="glob on the scan key")
    backfill.add_argument("--scans", type=Path, help="file of scan keys, one per line")
    backfill.add_argument(
        "--recon",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="reconstruction option for this backfill (filter_name=hann, centre=1012.5, ...)",
    )
    backfill.add_argument("--title", help="the backfill's name in the UI")
    backfill.add_argument(
        "--url",
        default=os.environ.get("BL832_DAGSTER_URL", "http://127.0.0.1:3000"),
        help="the site's Dagster webserver (default $BL832_DAGSTER_URL or %(default)s)",
    )
    backfill.add_argument(
        "--wait", action="store_true", help="follow the backfill; exit 1 if a partition failed"
    )
    backfill.add_argument("--dry-run", action="store_true", help="print the plan, launch nothing")

    metrics = commands.add_parser(
        "metrics", help="serve the site's Prometheus metrics (and push them, with --push)"
    )
    metrics.add_argument("--host", help="address to listen on (default: metrics.host)")
    metrics.add_argument("--port", type=int, help="port to listen on (default: metrics.port)")
    metrics.add_argument(
        "--push", action="store_true", help="also push to metrics.pushgateway every interval"
    )

    deploy = commands.add_parser(
        "deploy", help="the production deployment on this machine (PostgreSQL, Celery)"
    )
    deploy.add_argument("action", choices=("start", "stop", "status"))

    config = commands.add_parser("config", help="inspect the site settings")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    config_commands.add_parser("show", help="print the effective settings (they hold no secrets)")

    catalog = commands.add_parser("catalog", help="read the site's dataset catalog")
    catalog_commands = catalog.add_subparsers(dest="catalog_command", required=True)
    catalog_show = catalog_commands.add_parser(
        "show", help="print a dataset: fields, files with checksums, thumbnail"
    )
    catalog_show.add_argument("pid", help="the dataset's pid, as a catalog asset shows it")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Partitioned asset checks are a Dagster preview feature we rely on knowingly (see
    # docs/architecture.md); the warning is for library authors, not for a beamline user.
    warnings.filterwarnings("ignore", message=".*is currently in preview")
    # Dagster's selection parser calls one of its own beta parameters (``group:`` selections).
    warnings.filterwarnings("ignore", message=".*include_sources.*is currently in beta")
    try:
        status = beamline_payloads.run(args)
        if status is not None:
            return status
        if args.command == "synth":
            from bl832_assets.science.synth import write_synthetic_scan

            path = write_synthetic_scan(
                args.out,
                columns=args.columns,
                rows=args.rows,
                angles=args.angles,
                centre_offset=args.centre_offset,
                noise=not args.no_noise,
                export_control=args.export_control,
                seed=args.seed,
            )
            print(path)
            return 0
        if args.command == "recon":
            from bl832_assets.science.payload import run_recon
            from bl832_assets.science.reporting import printable

            summary = run_recon(args.scan, args.out_dir, _recon_options(args))
            print(json.dumps(printable(summary, previews=args.previews)))
            return 0
        if args.command == "pyramid":
            from bl832_assets.science.payload import run_pyramid
            from bl832_assets.science.reporting import printable

            summary = run_pyramid(args.tiff_dir, args.out_zarr)
            print(json.dumps(printable(summary, previews=args.previews)))
            return 0
        if args.command == "hash":
            from bl832_assets.science.hashing import hash_path

            print(json.dumps(hash_path(args.path).to_json_dict()))
            return 0
        if args.command == "config":
            import yaml

            from bl832_assets.settings import load_settings

            settings = load_settings()
            print(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False), end="")
            for variable in settings.secret_variables():
                print(f"# {variable}: {'set' if variable in os.environ else 'NOT SET'}")
            return 0
        if args.command == "catalog":
            from bl832_assets.cli.catalog import show

            return show(args.pid)
        if args.command == "process":
            from bl832_assets.cli.site import process

            return process(args.scan, args.folder)
        if args.command == "pools":
            from bl832_assets.cli.site import pools

            return pools()
        if args.command == "prune":
            from bl832_assets.cli.retention import prune

            return prune(args.location, args.dry_run)
        if args.command == "restore":
            from bl832_assets.cli.retention import restore

            return restore(args.scan, args.location)
        if args.command == "discover":
            from bl832_assets.cli.discover import run_discover
            from bl832_assets.discovery import DiscoverOptions

            return run_discover(
                DiscoverOptions(
                    args.endpoint, args.prefix, args.since, args.until, args.match, args.dry_run
                )
            )
        if args.command == "backfill":
            from bl832_assets.backfill.plan import Choice
            from bl832_assets.cli.backfill import BackfillArgs, run_backfill

            return run_backfill(
                BackfillArgs(
                    selection=args.selection,
                    choice=Choice(args.since, args.until, args.match, args.scans),
                    recon=args.recon,
                    title=args.title,
                    url=args.url,
                    wait=args.wait,
                    dry_run=args.dry_run,
                )
            )
        if args.command == "metrics":
            from bl832_assets.cli.metrics import metrics

            return metrics(args.host, args.port, args.push)
        if args.command == "deploy":
            from bl832_assets.deploy import cli as deployment

            return getattr(deployment, args.action)()
        if args.command == "demo":
            from bl832_assets.cli.site import demo

            return demo(args.facilities, args.beamline)
    except (SettingsError, ValueError, OSError) as exc:
        print(f"bl832 {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    raise AssertionError(f"unhandled command {args.command}")


def _recon_options(args: argparse.Namespace) -> ReconOptions:
    base = ReconOptions.from_json(args.options) if args.options else ReconOptions()
    first, last = None, None
    if args.slices:
        start, _, stop = args.slices.partition(":")
        try:
            first, last = int(start or 0), int(stop) if stop else None
        except ValueError:
            raise OptionsError(f"--slices: expected FIRST:STOP, got {args.slices!r}") from None
    return base.overridden(
        centre=args.centre,
        first_slice=first,
        last_slice=last,
        angle_step=args.angle_step,
        binning=args.binning,
        filter_name=args.filter_name,
        engine=args.engine,
        ring_removal=args.ring_removal,
    )


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split())
