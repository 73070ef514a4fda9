"""ALCF and OLCF: the payload runs as a Globus Compute function on the facility's endpoint.

Submission and results use the SDK ``Client``'s REST path (register the function, ``run``,
poll ``get_result``), not the ``Executor``: the Executor receives results only over AMQP with
a private message protocol, so it cannot be tested against a local service, while the REST
path is the same service, same serialization and same endpoint, fully testable. Polling every
few seconds is nothing next to a reconstruction's minutes.

The payload's Pipes channel does not cross a Globus Compute endpoint, so the function returns
the one JSON line the payload prints on stdout (its metadata, with the inline previews) and
that becomes the asset's metadata.

A retried step re-attaches to the task it already submitted (``job_records``), so a lost
connection while waiting never runs the payload twice.

Hashing runs ``bl832 hash`` through the same function: its one JSON line is the answer, and
exit code and walltime are judged as for a reconstruction. So do other beamlines' payloads, and
a batch job's commands, as one ``bash -c`` script whose exit code is judged the same way.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import dagster as dg
import globus_sdk
from globus_compute_sdk import Client
from globus_compute_sdk.errors import TaskExecutionFailed, TaskPending
from globus_compute_sdk.sdk.client import _ComputeWebClient
from globus_compute_sdk.serialize import AllCodeStrategies
from globus_sdk.scopes import ComputeScopes
from pydantic import Field

from bl832_assets.resources.compute.base import (
    BatchJob,
    ComputeFailed,
    ComputeOutcome,
    ComputeResource,
    PayloadJob,
    RemoteChecksums,
    StepContext,
)
from bl832_assets.resources.compute.globus_compute_function import run_payload
from bl832_assets.resources.compute.job_records import (
    forget_job,
    record_job,
    record_key,
    recorded_job,
)
from bl832_assets.resources.compute.remote_hashing import hash_step, read_answer
from bl832_assets.science.options import ReconOptions
from bl832_assets.science.reporting import MARKDOWN_KEY

COMPUTE_SERVICE = "https://compute.api.globus.org"  # Globus's own, when compute_url is empty


class GlobusComputeResource(ComputeResource):
    """One facility's Globus Compute endpoint (ALCF or OLCF: same mechanism, own settings)."""

    facility: str = Field(description="Facility this endpoint belongs to (alcf, olcf).")
    endpoint_id: str = Field(description="UUID of the facility's Globus Compute endpoint.")
    raw_root: str = Field(description="Folder on the facility holding its raw scan copies.")
    scratch_root: str = Field(description="Folder on the facility for reconstructions.")
    environment_setup: str = Field(
        default="",
        description="Shell lines run before the payload to enter the allocation's environment, "
        "e.g. 'module load conda; conda activate /eagle/IRIProd/ALS/env'.",
    )
    payload: str = Field(
        default="bl832", description="The payload command inside that environment."
    )
    timeout_seconds: float = Field(
        default=1200.0,
        description="Walltime of one job; past it the function kills the payload and the "
        "asset fails (upstream's 1200 s, issue #45).",
    )
    queue_seconds: float = Field(
        default=600.0,
        description="How long a task may wait for a worker (the batch queue) on top of the "
        "walltime before the asset gives up. The service cannot cancel a task, so one that "
        "starts later still runs, bounded by the walltime.",
    )
    poll_seconds: float = Field(default=5.0, description="Interval between result polls.")
    client_id: str = Field(default="", description="Globus Auth confidential client id.")
    client_secret: str = Field(default="", description="Its secret (an EnvVar in wiring).")
    access_token: str = Field(
        default="",
        description="A bearer token used as-is instead of the client credentials (tests).",
    )
    compute_url: str = Field(
        default="", description="Base URL of the Compute service; empty for Globus's own."
    )
    auth_url: str = Field(
        default="", description="Base URL of Globus Auth; empty for Globus's own."
    )

    def _client(self) -> Client:
        """A checked SDK client: a bearer token if given, else the confidential client's
        client-credentials grant (the same auth as the Transfer resource, so one Globus Auth
        address serves both)."""
        if self.access_token:
            authorizer: globus_sdk.authorizers.GlobusAuthorizer = globus_sdk.AccessTokenAuthorizer(
                self.access_token
            )
        else:
            auth_client = globus_sdk.ConfidentialAppAuthClient(
                client_id=self.client_id,
                client_secret=self.client_secret,
                base_url=self.auth_url or None,
            )
            authorizer = globus_sdk.ClientCredentialsAuthorizer(auth_client, ComputeScopes.all)
        auth: dict[str, Any] = {"authorizer": authorizer}
        client = Client(
            **auth, do_version_check=False, code_serialization_strategy=AllCodeStrategies()
        )
        if self.compute_url:
            # The SDK takes no base URL; its own integration tests swap the web client so.
            client._compute_web_client = _ComputeWebClient(base_url=self.compute_url, **auth)
        client.version_check()
        return client

    def _run(
        self,
        context: dg.AssetExecutionContext,
        step: str,
        args: list[str],
        output: str,
        listed: str | None = None,
    ) -> ComputeOutcome:
        """Run ``bl832 <step> <args>``; ``listed`` is the output folder's facility path when it
        is not ``output`` on scratch."""
        started = time.monotonic()
        task_id, result = self._task(
            context,
            record_key(context, self.facility, step),
            f"{self.facility} {step}",
            [*shlex.split(self.payload), step, *args],
            listed or str(PurePosixPath(self.scratch_root) / output),
        )
        return self._outcome(task_id, output, _reported(result), started)

    def _outcome(
        self,
        task_id: str,
        output: str,
        reported: Mapping[str, dg.MetadataValue],
        started: float,
    ) -> ComputeOutcome:
        # The function returns the payload's stderr tail with its result, kept by the service
        # under the task: that record is the job's log.
        log = dg.MetadataValue.url(f"{self.compute_url or COMPUTE_SERVICE}/v2/tasks/{task_id}")
        return ComputeOutcome(task_id, output, reported, time.monotonic() - started, log)

    def _task(
        self, context: StepContext, key: str, description: str, command: list[str], output: str
    ) -> tuple[str, dict]:
        """Run ``command`` in a task (or re-attach to the one recorded under ``key``) and
        return the task id and the function's result once the payload exited well."""
        task_id = recorded_job(context, key)
        try:
            client = self._client()
            if task_id is None:
                function_id = client.register_function(run_payload)
                task_id = client.run(
                    command,
                    self.environment_setup,
                    output,
                    self.timeout_seconds,
                    endpoint_id=self.endpoint_id,
                    function_id=function_id,
                )
                record_job(context, key, task_id)
                context.log.info(f"{description}: Globus Compute task {task_id}")
            else:
                context.log.info(f"{description}: re-attached to Globus Compute task {task_id}")
            return task_id, self._wait(client, task_id, f"{description} task {task_id}")
        except globus_sdk.GlobusAPIError as error:
            raise ComputeFailed(
                description=f"{description}: Globus Compute answered {error.http_status}: "
                f"{error.message}",
                allow_retries=error.http_status >= 500,
            ) from error
        except globus_sdk.NetworkError as error:
            raise ComputeFailed(
                description=f"{description}: Globus Compute unreachable: {error}"
            ) from error

    def _wait(self, client: Client, task_id: str, description: str) -> dict:
        """Poll until the task ends; a failed exit code or walltime is a failure here."""
        deadline = time.monotonic() + self.timeout_seconds + self.queue_seconds
        while True:
            try:
                result = client.get_result(task_id)
                break
            except TaskPending:
                if time.monotonic() > deadline:
                    raise ComputeFailed(
                        description=f"{description}: no result within the walltime and "
                        f"{self.queue_seconds:.0f} s of queueing",
                        allow_retries=False,
                    ) from None
                time.sleep(self.poll_seconds)
            except TaskExecutionFailed as error:
                raise ComputeFailed(
                    description=f"{description}: the function failed:\n{error.remote_data}",
                    allow_retries=False,
                ) from error
        if result["timed_out"] or result["exit_code"] != 0:
            why = (
                f"timed out after {self.timeout_seconds:.0f} s"
                if result["timed_out"]
                else f"exited with code {result['exit_code']}"
            )
            raise ComputeFailed(
                description=f"{description} on {result['host']} {why}:\n{result['stderr_tail']}",
                metadata={
                    "exit_code": result["exit_code"],
                    "stderr_tail": dg.MetadataValue.text(result["stderr_tail"]),
                },
                allow_retries=False,
            )
        return result

    def reconstruct(
        self, context: dg.AssetExecutionContext, scan: str, options: ReconOptions
    ) -> ComputeOutcome:
        relative = PurePosixPath(scan)
        out_dir = PurePosixPath(self.scratch_root) / relative.parent
        output = (relative.parent / f"rec{relative.stem}").as_posix()
        args = [str(PurePosixPath(self.raw_root) / relative), str(out_dir)]
        command = [*args, "--options", options.to_json(), "--previews"]
        return self._run(context, "recon", command, output)

    def build_pyramid(self, context: dg.AssetExecutionContext, tiff_folder: str) -> ComputeOutcome:
        scratch = PurePosixPath(self.scratch_root)
        output = f"{tiff_folder}.zarr"
        return self._run(
            context,
            "pyramid",
            [str(scratch / tiff_folder), str(scratch / output), "--previews"],
            output,
        )

    def run_payload(self, context: dg.AssetExecutionContext, job: PayloadJob) -> ComputeOutcome:
        """As a reconstruction: ``--previews`` (every payload command takes it) brings the UI's
        inline previews back in the one metadata line, as Pipes would have."""
        args = [*self.payload_arguments(job), "--previews"]
        listed = self.facility_path(job.output_endpoint, job.output)
        return self._run(context, job.step, args, job.output, listed)

    def run_batch(self, context: dg.AssetExecutionContext, job: BatchJob) -> ComputeOutcome:
        listed = self.facility_path(job.output_endpoint, job.output)
        started = time.monotonic()
        key = record_key(context, self.facility, f"batch-{job.name}")
        description = f"{self.facility} batch job {job.name}"
        task_id, _ = self._task(context, key, description, ["bash", "-c", job.script()], listed)
        return self._outcome(task_id, job.output, {}, started)

    def checksums(self, context: StepContext, endpoint: str, relative_path: str) -> RemoteChecksums:
        """A retried step re-attaches to its hash task; once read, the record is forgotten, so
        hashing the same path again later in the step measures it again."""
        target = self.facility_path(endpoint, relative_path)
        key = record_key(context, self.facility, hash_step(endpoint, relative_path))
        command = [*shlex.split(self.payload), "hash", target]
        task_id, result = self._task(context, key, f"{self.facility} hash", command, "")
        forget_job(context, key)
        how = f"sha256 by {self.facility} Globus Compute task {task_id} on {result['host']}"
        return read_answer(str(result["metadata_line"]), task_id, how)


def _reported(result: Mapping[str, object]) -> dict[str, dg.MetadataValue]:
    """The payload's metadata line, typed for Dagster, plus where and how long it ran."""
    line = str(result["metadata_line"])
    payload: dict[str, object] = json.loads(line) if line.startswith("{") else {}
    previews = payload.pop(MARKDOWN_KEY, None) or {}
    reported = {key: _typed(value) for key, value in payload.items()}
    reported |= {key: dg.MetadataValue.md(str(text)) for key, text in previews.items()}
    reported["host"] = dg.MetadataValue.text(str(result["host"]))
    reported["output_listing"] = _typed(result["listing"])
    return reported


def _typed(value: object) -> dg.MetadataValue:
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    if isinstance(value, list | dict):
        return dg.MetadataValue.json(value)
    if value is None:
        return dg.MetadataValue.null()
    return dg.MetadataValue.text(str(value))
