"""The payload commands of 7.3.3 (``integrate``, ``synth-saxs``) and 7.0.1.2 (``ptycho``,
``synth-cxi``): what facility jobs run, and what an operator runs by hand to try them.

Like ``recon`` and ``pyramid``, a payload command prints its metadata as one JSON line; a synth
command prints the paths it wrote. The beamline modules are imported only by the command that
uses them, so that ``bl832`` starts quickly.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
from pathlib import Path
from typing import Any

COMMANDS = ("integrate", "ptycho", "synth-saxs", "synth-cxi")
_PIE_FIELDS = ("iterations", "object_step", "probe_step", "probe_start", "momentum", "seed")
_PREVIEWS_HELP = "include the UI's inline previews in the JSON"


def add_parsers(commands: Any) -> None:
    """Add the commands to ``commands``, the ``bl832`` parser's subparsers."""
    _add_integrate(commands)
    _add_ptycho(commands)

    saxs = commands.add_parser(
        "synth-saxs", help="write a synthetic 7.3.3 AgBh calibrant pair (.txt and .edf)"
    )
    saxs.add_argument("folder", type=Path, help="folder to write STEM.txt and STEM.edf into")
    saxs.add_argument("--stem", default="agbh_cal_2m", help="the pair's name (default %(default)s)")
    saxs.add_argument("--seed", type=int, default=0)

    cxi = commands.add_parser("synth-cxi", help="write a synthetic 7.0.1.2 ptychography scan")
    cxi.add_argument("out", type=Path, help="path of the .cxi file to write")
    cxi.add_argument("--seed", type=int, default=0)


def _add_integrate(commands: Any) -> None:
    integrate = commands.add_parser(
        "integrate", help="integrate a 7.3.3 image into OUT_DIR/<stem>_profile.csv and .png"
    )
    integrate.add_argument(
        "source",
        type=Path,
        metavar="PAIR_OR_EDF",
        help="an .edf image, or a pair as FOLDER/STEM (or its .txt): both files must be there",
    )
    integrate.add_argument("out_dir", type=Path)
    integrate.add_argument(
        "--distance-m", type=float, required=True, help="sample to detector distance, metres"
    )
    integrate.add_argument(
        "--wavelength-angstrom", type=float, required=True, help="X-ray wavelength, ångström"
    )
    integrate.add_argument(
        "--centre",
        type=float,
        nargs=2,
        required=True,
        metavar=("ROW", "COL"),
        help="beam centre in pixels from the image's first corner",
    )
    integrate.add_argument(
        "--pixel-size-m", type=float, help="square pixel size (default: the EDF header's)"
    )
    integrate.add_argument("--npt", type=int, help="q bins of the profile")
    integrate.add_argument("--mask", type=Path, help="mask EDF, nonzero where pixels are not used")
    integrate.add_argument("--previews", action="store_true", help=_PREVIEWS_HELP)


def _add_ptycho(commands: Any) -> None:
    ptycho = commands.add_parser(
        "ptycho",
        help="reconstruct a 7.0.1.2 CXI scan into OUT_DIR/<stem>_recon.cxi, or with --in-place "
        "into the CXI file itself (mPIE)",
    )
    ptycho.add_argument("cxi", type=Path)
    ptycho.add_argument("out_dir", type=Path, nargs="?", help="omitted with --in-place")
    ptycho.add_argument(
        "--in-place",
        action="store_true",
        help="append the reconstruction to CXI as its next entry_1/image_<n>, as upstream's "
        "tools do; previews go beside it",
    )
    ptycho.add_argument("--params", help="all PieParams as JSON (what facility jobs pass)")
    ptycho.add_argument("--iterations", type=int, help="passes over every position")
    ptycho.add_argument("--object-step", type=float, help="rPIE's alpha for the object")
    ptycho.add_argument("--probe-step", type=float, help="rPIE's alpha for the probe")
    ptycho.add_argument("--probe-start", type=int, help="iterations before the probe moves")
    ptycho.add_argument("--momentum", type=float, help="mPIE's momentum; 0: plain rPIE")
    ptycho.add_argument("--seed", type=int, help="seeds the order positions are visited in")
    ptycho.add_argument("--previews", action="store_true", help=_PREVIEWS_HELP)


def run(args: argparse.Namespace) -> int | None:
    """Run ``args.command`` if it is one of these commands and return its exit status;
    ``None`` if it is not. Errors propagate to ``main``, which prints them as one line."""
    if args.command == "integrate":
        return _print_json(_integrate(args), args.previews)
    if args.command == "ptycho":
        from bl832_assets.beamlines.bl7012.payload import run_ptycho

        if args.in_place == (args.out_dir is not None):
            raise ValueError("give exactly one of OUT_DIR and --in-place (write into the CXI)")
        params = _pie_params(args)
        return _print_json(run_ptycho(_existing(args.cxi), args.out_dir, params), args.previews)
    if args.command == "synth-saxs":
        from bl832_assets.beamlines.bl733.synth import write_calibrant_pair

        calibrant = write_calibrant_pair(args.folder, args.stem, seed=args.seed)
        for path in calibrant.pair.files:
            print(path)
        return 0
    if args.command == "synth-cxi":
        from bl832_assets.beamlines.bl7012.synth import write_synthetic_scan

        print(write_synthetic_scan(args.out, seed=args.seed).path)
        return 0
    return None


def _print_json(summary: dict[str, object], previews: bool) -> int:
    from bl832_assets.science.reporting import printable

    print(json.dumps(printable(summary, previews=previews)))
    return 0


def _integrate(args: argparse.Namespace) -> dict[str, object]:
    from bl832_assets.beamlines.bl733.dataset import IMAGE_SUFFIX, TEXT_SUFFIX, Pair
    from bl832_assets.beamlines.bl733.geometry import Geometry
    from bl832_assets.beamlines.bl733.payload import run_integration

    geometry = Geometry(
        distance_m=args.distance_m,
        wavelength_angstrom=args.wavelength_angstrom,
        beam_centre_px=tuple(args.centre),
        pixel_size_m=None if args.pixel_size_m is None else (args.pixel_size_m,) * 2,
    )
    source: Pair | Path = args.source
    if args.source.suffix.lower() != IMAGE_SUFFIX:
        # FOLDER/STEM or FOLDER/STEM.txt; a stem may hold dots of its own.
        folder = args.source.parent
        stem = args.source.stem if args.source.suffix.lower() == TEXT_SUFFIX else args.source.name
        text, image = folder / f"{stem}{TEXT_SUFFIX}", folder / f"{stem}{IMAGE_SUFFIX}"
        source = Pair(
            folder, stem, text if text.is_file() else None, image if image.is_file() else None
        )
    else:
        _existing(args.source)
    options: dict[str, Any] = {"mask_path": None if args.mask is None else _existing(args.mask)}
    if args.npt is not None:
        options["npt"] = args.npt
    return run_integration(source, args.out_dir, geometry, **options)


def _existing(path: Path) -> Path:
    """``path``, checked before any work starts, so that a missing input ends as one line
    naming the file and the reason (the readers name only the file)."""
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    return path


def _pie_params(args: argparse.Namespace) -> Any:
    from bl832_assets.beamlines.bl7012.params import PieParams

    base = PieParams.model_validate_json(args.params) if args.params else PieParams()
    given = {name: getattr(args, name) for name in _PIE_FIELDS if getattr(args, name) is not None}
    return PieParams.model_validate({**base.model_dump(), **given})
