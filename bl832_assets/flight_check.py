"""Transfer flight check: every 12 hours a small probe file flies the route every new scan takes
(detector → beamline raw storage → archive facility), each hop is verified against the probe's
sha256, and the probe is removed from every endpoint it may have reached.

Why: a broken route (expired Globus consent, full quota, endpoint down) otherwise shows only
when a scan needs it, usually during beam time. The probe finds it hours earlier, names the
hop that broke, and costs a few KiB twice a day. The schedule therefore starts RUNNING: a health
check that someone must remember to switch on is off when it is needed.

Where the probe starts: the transfer interface copies and deletes but cannot create a file,
since scans are written by the detector, not by us. The probe is written straight into the
detector endpoint's folder, ``settings.root(settings.detector)``, under a hidden temporary name
and then renamed, so no reader ever sees half a probe. With the local backend that folder is the
endpoint; in production the orchestrator host must mount spot832 at that path (the mount the
scan sensor watches); if it does not, the first hop fails and says so.

Out of the scan sensor's way: the probe is ``_flight_check/<run_id>.probe``, unique per run;
the sensor registers only ``*.h5`` files and skips hidden ones.

Verification: after a hop, ``transfer.checksums`` at the destination must equal the probe's
sha256. Globus cannot hash a remote file and raises ``ChecksumUnavailable``; there the copy's
SUCCEEDED task, which Globus ran with verify_checksum, is the proof, and the metadata says
``verified_by: globus verify_checksum`` rather than claim a hash nobody computed here.

Failure: a failed hop does not raise at once, because Dagster would then skip the clean-up.
It records its error, later hops do not fly, the probe is removed, and the last op fails the
run with the hop named ("hop 2 data832_raw → nersc_cfs failed: ...").
"""

import dataclasses
import hashlib
import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import dagster as dg

from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.resources.transfer.copying import partial_name
from bl832_assets.resources.transfer.errors import ChecksumMismatch, ChecksumUnavailable
from bl832_assets.settings import Settings

PROBE_FOLDER = "_flight_check"
PROBE_BYTES = 4096
CRON = "0 */12 * * *"
VERIFIED_HERE = "sha256 at destination"
VERIFIED_BY_GLOBUS = "globus verify_checksum"


@dataclass(frozen=True)
class Hop:
    """What one hop of the probe did; ``error`` is set when it failed."""

    number: int
    source: str
    destination: str
    task_id: str | None = None
    seconds: float = 0.0
    verified_by: str | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return f"hop {self.number} {self.source} → {self.destination}"

    def metadata(self, sha256: str) -> dict[str, Any]:
        return {
            "hop": self.name,
            "source": self.source,
            "destination": self.destination,
            "task_id": self.task_id or "",
            "seconds": round(self.seconds, 3),
            "sha256": sha256,
            "verified_by": self.verified_by or "",
            "outcome": "failed" if self.error else "verified",
            "error": self.error or "",
        }


@dataclass(frozen=True)
class Removal:
    """The probe's removal from one endpoint; ``error`` is set when it is still there."""

    endpoint: str
    task_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Flight:
    """The probe and everything done with it so far, handed from op to op."""

    relative_path: str
    sha256: str
    origin: str
    hops: tuple[Hop, ...] = ()
    removals: tuple[Removal, ...] = ()

    @property
    def failed_hop(self) -> Hop | None:
        return next((hop for hop in self.hops if hop.error), None)

    def reached(self) -> list[str]:
        """Endpoints the probe may be on: where it started and every destination attempted,
        since a failed copy can leave a file behind."""
        return [self.origin, *(hop.destination for hop in self.hops)]


@dataclass(frozen=True)
class Route:
    """Where a beamline's data flies: the probe starts on ``origin`` (its source, whose
    folder this machine sees) and takes each hop in order. 8.3.2's is a chain, a sectioned
    beamline's a fan-out from its source to each copy."""

    origin: str
    hops: tuple[tuple[str, str], ...]
    job_name: str = "transfer_flight_check"

    @property
    def text(self) -> str:
        return ", ".join(f"{src} → {dst}" for src, dst in self.hops)


def flight_route(settings: Settings) -> list[str]:
    """The endpoints a new scan travels through, in order."""
    route = [settings.detector, settings.beamline_raw]
    if settings.archive is not None:
        route.append(settings.hpc[settings.archive].raw)
    return route


def scan_route(settings: Settings) -> Route:
    """8.3.2's: the detector → beamline storage → the archive facility chain."""
    return Route(settings.detector, tuple(itertools.pairwise(flight_route(settings))))


def write_probe(folder: Path, relative_path: str, data: bytes) -> None:
    """Write ``data`` at ``folder / relative_path`` under a hidden temporary name, then rename
    it into place, so a half-written probe is never seen under its final name."""
    final = folder / relative_path
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(partial_name(final.name, "probe"))
    try:
        with open(temporary, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        temporary.replace(final)
    finally:
        temporary.unlink(missing_ok=True)


def fly(transfer: TransferResource, flight: Flight, hop: Hop, *, label: str) -> Hop:
    """Copy the probe over ``hop`` and verify it at the destination; any error is recorded in
    the returned hop rather than raised, so that the probe is still cleaned up."""
    started = time.monotonic()
    task_id = None
    try:
        result = transfer.copy(
            hop.source,
            hop.destination,
            flight.relative_path,
            label=label,
            export_controlled=False,  # the probe is made-up bytes, not a scan
        )
        task_id = result.task_id
        verified_by = _verify(transfer, hop.destination, flight)
    except Exception as exc:  # whatever went wrong, the probe must still be removed
        return dataclasses.replace(
            hop,
            task_id=getattr(exc, "task_id", task_id),
            seconds=time.monotonic() - started,
            error=f"{type(exc).__name__}: {exc}",
        )
    return dataclasses.replace(
        hop, task_id=task_id, seconds=time.monotonic() - started, verified_by=verified_by
    )


def _verify(transfer: TransferResource, endpoint: str, flight: Flight) -> str:
    """How the copy at ``endpoint`` was proven equal to the probe; raises if it differs."""
    try:
        checksums = transfer.checksums(endpoint, flight.relative_path)
    except ChecksumUnavailable:
        # Only reached after copy() returned, i.e. a SUCCEEDED task with verify_checksum.
        return VERIFIED_BY_GLOBUS
    actual = checksums.get(PurePosixPath(flight.relative_path).name, "missing")
    if actual != flight.sha256:
        raise ChecksumMismatch(f"{endpoint}:{flight.relative_path}", flight.sha256, actual)
    return VERIFIED_HERE


def _hop_op(number: int, source: str, destination: str) -> dg.OpDefinition:
    @dg.op(
        name=f"hop_{number}",
        description=f"Copy the probe {source} → {destination} and verify its sha256 there.",
        pool="globus",
    )
    def hop_op(
        context: dg.OpExecutionContext, transfer: TransferResource, flight: Flight
    ) -> Flight:
        hop = Hop(number, source, destination)
        if flight.failed_hop is not None:
            context.log.warning(f"{hop.name} not flown: {flight.failed_hop.name} failed")
            context.add_output_metadata({"hop": hop.name, "outcome": "not flown"})
            return flight
        hop = fly(transfer, flight, hop, label=f"flight check hop {number} {context.run.run_id}")
        if hop.error:
            context.log.error(f"{hop.name} failed: {hop.error}")
        context.add_output_metadata(hop.metadata(flight.sha256))
        return dataclasses.replace(flight, hops=(*flight.hops, hop))

    return hop_op


def build_flight_check(
    settings: Settings, route: Route | None = None
) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    """The flight-check job over a beamline's route (8.3.2's by default) and its 12-hourly
    schedule. The probe is named after the run, so each flight writes a file never seen
    before: a copy of the same file every time would prove nothing about writes."""
    route = route or scan_route(settings)
    probe_root = settings.root(route.origin)
    hops = [_hop_op(n, src, dst) for n, (src, dst) in enumerate(route.hops, start=1)]

    @dg.op(description="Write a probe of random bytes into the source folder.")
    def launch_probe(context: dg.OpExecutionContext) -> Flight:
        relative = f"{PROBE_FOLDER}/{context.run.run_id}.probe"
        data = os.urandom(PROBE_BYTES)
        write_probe(probe_root, relative, data)
        flight = Flight(relative, hashlib.sha256(data).hexdigest(), route.origin)
        context.add_output_metadata(
            {
                "endpoint": route.origin,
                "relative_path": relative,
                "path": dg.MetadataValue.path(str(probe_root / relative)),
                "size_bytes": len(data),
                "sha256": flight.sha256,
            }
        )
        return flight

    @dg.op(description="Delete the probe from every endpoint it may have reached.", pool="globus")
    def remove_probe(
        context: dg.OpExecutionContext, transfer: TransferResource, flight: Flight
    ) -> Flight:
        removals = []
        for endpoint in flight.reached():
            try:
                task_id = transfer.delete(
                    endpoint,
                    flight.relative_path,
                    label=f"flight check clean-up {context.run.run_id}",
                )
                removals.append(Removal(endpoint, task_id))
            except Exception as exc:  # try every endpoint; the report op fails the run
                context.log.error(f"probe left on {endpoint}: {exc}")
                removals.append(Removal(endpoint, error=f"{type(exc).__name__}: {exc}"))
        context.add_output_metadata(
            {
                "removed_from": dg.MetadataValue.json(
                    [r.endpoint for r in removals if r.error is None]
                ),
                "delete_task_ids": dg.MetadataValue.json(
                    {r.endpoint: r.task_id for r in removals if r.task_id}
                ),
            }
        )
        return dataclasses.replace(flight, removals=tuple(removals))

    @dg.op(description="Fail the run, naming the hop, when any hop or the clean-up failed.")
    def report(context: dg.OpExecutionContext, flight: Flight) -> str:
        metadata: dict[str, Any] = {
            "route": route.text,
            "probe": flight.relative_path,
            "sha256": flight.sha256,
            "hops": dg.MetadataValue.json([hop.metadata(flight.sha256) for hop in flight.hops]),
        }
        problems = []
        failed = flight.failed_hop
        if failed is not None:
            problems.append(f"{failed.name} failed: {failed.error}")
            metadata.update(failed_hop=failed.name, error=failed.error)
        left = [r for r in flight.removals if r.error]
        if left:
            problems.extend(f"probe left on {r.endpoint}: {r.error}" for r in left)
            metadata["probe_left_on"] = dg.MetadataValue.json([r.endpoint for r in left])
        if problems:
            raise dg.Failure(description="; ".join(problems), metadata=metadata)
        context.add_output_metadata(metadata)
        return f"{len(flight.hops)} hops verified; probe removed from {', '.join(flight.reached())}"

    @dg.job(
        name=route.job_name,
        description="A probe file flies the data's route, verified per hop, then is removed.",
    )
    def transfer_flight_check() -> None:
        flight = launch_probe()
        for hop in hops:
            flight = hop(flight)
        report(remove_probe(flight))

    schedule = dg.ScheduleDefinition(
        name=f"{route.job_name}_every_12h",
        job=transfer_flight_check,
        cron_schedule=CRON,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every 12 hours, so a broken transfer route shows before a scan needs it.",
    )
    return transfer_flight_check, schedule
