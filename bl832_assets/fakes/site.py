"""All four facility fakes around one site, and the settings that point the real SDKs at them.

The site looks like production from the orchestrator's side: every endpoint is a Globus
collection, only the beamline's storage (spot832, data832) is visible on this machine, NERSC
jobs see NERSC paths (the SF API fake maps them to folders under the site), and secrets come
from environment variables. Behind the fakes the work is real: Globus tasks copy between the
site's folders, Slurm jobs and Compute functions run the payload, SciCat keeps the records.
"""

from __future__ import annotations

import json
import secrets
import sys
import uuid
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bl832_assets.fakes.globus_compute import FakeGlobusCompute
from bl832_assets.fakes.globus_transfer import TOKEN as GLOBUS_AUTH_TOKEN
from bl832_assets.fakes.globus_transfer import FakeGlobus
from bl832_assets.fakes.scicat import FakeSciCat
from bl832_assets.fakes.sfapi import FakeSfApi
from bl832_assets.settings import DEFAULT_JOB_PATHS, DEFAULT_LAYOUT, _default_beamlines

with warnings.catch_warnings():  # authlib.jose warns that it is deprecated, on import
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey

_NAMESPACE = uuid.UUID("0b7c1a52-6f0e-4d55-9a3e-8c3f2b9e8320")

NERSC_PATHS = {
    "/global/cfs/cdirs/als/data_mover/8.3.2/raw": "nersc/cfs",
    "/pscratch/sd/a/alsdev/8.3.2/scratch": "nersc/pscratch",
    "/pscratch/sd/a/alsdev/8.3.2/jobs": "nersc/jobs",
    "/global/cfs/cdirs/als/data_mover/8.3.2/scratch": "nersc/cfs_results",
    # the other beamlines' NERSC endpoints, where settings say their jobs see them
    **{path: DEFAULT_LAYOUT[name][1] for name, path in DEFAULT_JOB_PATHS.items()},
}
"""What NERSC jobs see → the site folder the SF API fake maps it to."""

PTYCHOCAM_STANDIN = Path(__file__).with_name("ptychocam_standin.sh")
"""Plays upstream's ptychocam script in 7.0.1.2's GPU jobs: its command line, this engine."""
PTYCHOCAM_ITERATIONS = 40
"""Enough for the stand-in to reconstruct a synthetic scan well (object error ≈ 0.02; 20
iterations leave ≈ 0.04) in about a second."""

# No container runtime here: the fake's jobs run the payload from this installation, which is
# the "site environment" way of the NERSC template.
SITE_ENVIRONMENT_TEMPLATE = """#!/bin/bash
#SBATCH --job-name=bl832-$step
#SBATCH --account=$account
#SBATCH --qos=$qos
#SBATCH --time=$time_limit
#SBATCH --output=$jobs_root/$tag-%j.out
#SBATCH --error=$jobs_root/$tag-%j.err
set -euo pipefail
cd $jobs_root
$pipes_env
$command
"""


@dataclass
class FakeSite:
    """The running fakes, the settings that use them and the secrets those settings name."""

    home: Path
    globus: FakeGlobus
    sfapi: FakeSfApi
    compute: FakeGlobusCompute
    scicat: FakeSciCat
    settings: dict[str, Any]
    environment: dict[str, str]


def collection_id(endpoint: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, endpoint))


@contextmanager
def running_fakes(home: Path, *, poll_seconds: float = 0.2) -> Iterator[FakeSite]:
    """Start the four fakes for a site at ``home`` for the duration of the block."""
    home = home.absolute()
    folders = {name: home / folder for name, (_, folder) in DEFAULT_LAYOUT.items()}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    environment = {
        "GLOBUS_CLIENT_ID": str(uuid.uuid4()),
        "GLOBUS_CLIENT_SECRET": secrets.token_urlsafe(24),
        "SFAPI_CLIENT_ID": f"bl832{secrets.token_hex(4)}",
        "SFAPI_SECRET": _private_key(),
        "SCICAT_PASSWORD": secrets.token_urlsafe(24),
    }
    globus = FakeGlobus(
        {collection_id(name): folder for name, folder in folders.items()},
        environment["GLOBUS_CLIENT_ID"],
        environment["GLOBUS_CLIENT_SECRET"],
    )
    scicat = FakeSciCat(users={"ingestor": environment["SCICAT_PASSWORD"]})
    endpoints = {facility: str(uuid.uuid5(_NAMESPACE, facility)) for facility in ("alcf", "olcf")}
    sfapi = FakeSfApi(
        paths={path: home / folder for path, folder in NERSC_PATHS.items()},
        clients={environment["SFAPI_CLIENT_ID"]: environment["SFAPI_SECRET"]},
        job_environment={"BL832_PYTHON": sys.executable},  # the stand-in's interpreter
    )
    compute = FakeGlobusCompute(list(endpoints.values()), token=GLOBUS_AUTH_TOKEN)
    with ExitStack() as stack:
        globus_url, scicat_url, sfapi_url, compute_url = (
            stack.enter_context(fake.serve()) for fake in (globus, scicat, sfapi, compute)
        )
        urls = {
            "globus": globus_url,
            "sfapi": sfapi_url,
            "compute": compute_url,
            "scicat": scicat_url,
        }
        settings = _settings(home, urls, endpoints, poll_seconds)
        yield FakeSite(home, globus, sfapi, compute, scicat, settings, environment)


def _settings(
    home: Path, urls: dict[str, str], compute_endpoints: dict[str, str], poll_seconds: float
) -> dict[str, Any]:
    payload = f"{sys.executable} -m bl832_assets"
    nersc_root = {folder: path for path, folder in NERSC_PATHS.items()}
    return {
        "home": str(home),
        "endpoints": {
            name: {
                "facility": facility,
                # Only the beamline's own storage is mounted on the orchestrator's machine.
                "root": folder if facility == "als" else None,
                "collection_id": collection_id(name),
                "onsite": facility == "als",
                "job_path": DEFAULT_JOB_PATHS.get(name),
            }
            for name, (facility, folder) in DEFAULT_LAYOUT.items()
        },
        "backends": {
            "transfer": "globus",
            "nersc": "sfapi",
            "alcf": "globus_compute",
            "olcf": "globus_compute",
            "catalog": "scicat",
        },
        "globus": {
            "auth_url": urls["globus"],
            "transfer_url": urls["globus"],
            "compute_url": urls["compute"],
            "poll_seconds": poll_seconds,
        },
        "nersc": {
            "api_url": f"{urls['sfapi']}/api/v1.2",
            "token_url": f"{urls['sfapi']}/c2id/token",
            "poll_seconds": poll_seconds,
            "launcher": payload,
            "script_template": SITE_ENVIRONMENT_TEMPLATE,
            "raw_root": nersc_root["nersc/cfs"],
            "scratch_root": nersc_root["nersc/pscratch"],
            "jobs_root": nersc_root["nersc/jobs"],
        },
        "globus_compute": {
            facility: {
                "endpoint_id": endpoint_id,
                "raw_root": str(home / facility / "raw"),
                "scratch_root": str(home / facility / "scratch"),
                "payload": payload,
                "timeout_seconds": 600,
                "poll_seconds": poll_seconds,
            }
            for facility, endpoint_id in compute_endpoints.items()
        },
        "catalog": {"url": urls["scicat"], "username": "ingestor"},
        "beamlines": _beamlines(),
    }


def _beamlines() -> dict[str, Any]:
    """The default beamlines, 7.0.1.2's GPU job running the stand-in for ptychocam."""
    beamlines = {
        name: section.model_dump(mode="json") for name, section in _default_beamlines().items()
    }
    ptychography = beamlines["bl7012"]["ptychography"]
    ptychography["gpu"]["ptychocam_script"] = str(PTYCHOCAM_STANDIN)
    ptychography["tools"]["ptychocam"]["n_iter"] = PTYCHOCAM_ITERATIONS
    return beamlines


def _private_key() -> str:
    """A fresh RSA key as JWK JSON: the form of a Superfacility API client's secret."""
    return json.dumps(JsonWebKey.generate_key("RSA", 2048, is_private=True).as_dict(True))
