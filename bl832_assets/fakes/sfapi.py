"""A stateful stand-in for the NERSC Superfacility API v1.2, served over real HTTP.

The real ``sfapi_client.Client`` talks to it unpatched: OAuth token (private_key_jwt), machine
status, job submission through a task, squeue/sacct rows, cancel and file download. A submitted
job really runs: its script is executed with bash, NERSC paths in it rewritten to local folders,
so a payload writes its outputs, logs and Pipes messages where the resource will look for them.
Faults (HTTP errors, Slurm end states) are injected by the test that owns the fake.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from bl832_assets.fakes.http import serving

API_PREFIX = "/api/v1.2/"
TOKEN_PATH = "/c2id/token"
FIRST_JOB_ID = 40_000_000


@dataclass
class FakeJob:
    """One Slurm job: its script, its state and, once finished, its exit code."""

    jobid: str
    script: str
    state: str = "PENDING"
    exit_code: int = 0
    forced_state: str | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def finished(self) -> bool:
        return self.state not in ("PENDING", "RUNNING")

    def squeue_row(self) -> dict[str, str]:
        return {"jobid": self.jobid, "state": self.state, "name": "bl832", "reason": "None"}

    def sacct_row(self) -> dict[str, str]:
        return {
            "jobid": self.jobid,
            "jobname": "bl832",
            "state": self.state,
            "exitcode": f"{self.exit_code}:0",
        }


@dataclass
class FakeSfApi:
    """The fake's state; ``paths`` maps NERSC path prefixes (``/pscratch/sd/a/als``) to folders."""

    paths: Mapping[str, Path]
    machine: str = "perlmutter"
    machine_status: str = "active"
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    submissions: list[str] = field(default_factory=list)
    _http_faults: list[tuple[int, str]] = field(default_factory=list)
    _next_end_state: str | None = None
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(FIRST_JOB_ID))
    _tasks: dict[str, dict[str, object]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    # -- fault injection -------------------------------------------------------------------

    def fail_next_requests(self, status: int, count: int = 1, matching: str = "") -> None:
        """Answer the next ``count`` API requests whose ``"METHOD route"`` starts with
        ``matching`` (e.g. ``"GET compute/jobs"``) with HTTP ``status``; tokens never fail."""
        self._http_faults.extend([(status, matching)] * count)

    def _fault(self, request: Request, route: str) -> int | None:
        for fault in self._http_faults:
            if f"{request.method} {route}".startswith(fault[1]):
                self._http_faults.remove(fault)
                return fault[0]
        return None

    def end_next_job_as(self, state: str) -> None:
        """Make the next submitted job end in ``state`` (TIMEOUT, OUT_OF_MEMORY, CANCELLED)."""
        self._next_end_state = state

    # -- paths --------------------------------------------------------------------------------

    def local(self, nersc_path: str) -> Path:
        """The local folder standing in for ``nersc_path``."""
        for prefix, folder in self.paths.items():
            if nersc_path == prefix or nersc_path.startswith(prefix.rstrip("/") + "/"):
                return Path(folder) / nersc_path[len(prefix) :].lstrip("/")
        raise FileNotFoundError(nersc_path)

    def _localise(self, script: str) -> str:
        for prefix, folder in self.paths.items():
            script = script.replace(prefix, str(folder))
        return script

    # -- jobs ---------------------------------------------------------------------------------

    def _submit(self, script: str) -> str:
        with self._lock:
            jobid = str(next(self._ids))
            job = FakeJob(jobid, script, forced_state=self._next_end_state)
            self._next_end_state = None
            self.jobs[jobid] = job
            self.submissions.append(jobid)
        threading.Thread(target=self._run, args=(job,), daemon=True).start()
        return jobid

    def _sbatch_path(self, script: str, option: str, jobid: str, default: Path) -> Path:
        match = re.search(rf"^#SBATCH\s+--{option}[= ](\S+)", script, re.MULTILINE)
        return Path(match.group(1).replace("%j", jobid)) if match else default

    def _run(self, job: FakeJob) -> None:
        script = self._localise(job.script)
        workdir = next(iter(self.paths.values()))
        workdir.mkdir(parents=True, exist_ok=True)  # Slurm starts a job in an existing folder
        out = self._sbatch_path(script, "output", job.jobid, workdir / f"slurm-{job.jobid}.out")
        err = self._sbatch_path(script, "error", job.jobid, out)
        out.parent.mkdir(parents=True, exist_ok=True)
        err.parent.mkdir(parents=True, exist_ok=True)
        with out.open("ab") as stdout, err.open("ab") as stderr:
            job.process = subprocess.Popen(
                ["bash", "-s"], stdin=subprocess.PIPE, stdout=stdout, stderr=stderr, cwd=workdir
            )
            if job.state == "CANCELLED":  # cancelled before it started
                job.process.kill()
            if job.state == "PENDING":
                job.state = "RUNNING"
            job.process.communicate(script.encode())
        code = job.process.returncode
        if job.state == "CANCELLED":
            return
        job.exit_code = code if code >= 0 else 128 - code
        job.state = job.forced_state or ("COMPLETED" if code == 0 else "FAILED")

    def _cancel(self, jobid: str) -> None:
        job = self.jobs[jobid]
        if job.finished:
            return
        job.state = "CANCELLED"
        if job.process is not None:
            job.process.terminate()

    def wait_all(self, timeout: float = 60.0) -> None:
        """Block until every job has ended: tests inspect outputs only after that."""
        for job in list(self.jobs.values()):
            if job.process is not None:
                job.process.wait(timeout)

    # -- HTTP ---------------------------------------------------------------------------------

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve for the block (``self.url`` is the base); jobs still running are killed."""
        with serving(self.wsgi) as url:
            self.url = url
            try:
                yield url
            finally:
                for job in self.jobs.values():
                    if job.process is not None and job.process.poll() is None:
                        job.process.kill()

    def _task(self, result: Mapping[str, object]) -> Response:
        task_id = str(len(self._tasks) + 1)
        self._tasks[task_id] = {"id": task_id, "status": "completed", "result": json.dumps(result)}
        return _json({"task_id": task_id, "status": "OK", "error": None})

    def _jobs_get(self, request: Request) -> Response:
        wanted = {
            value.split("=", 1)[1]
            for value in request.args.getlist("kwargs")
            if value.startswith("jobid=")
        }
        sacct = request.args.get("sacct", "false").lower() == "true"
        jobs = [job for job in self.jobs.values() if not wanted or job.jobid in wanted]
        rows = (
            [job.sacct_row() for job in jobs]
            if sacct
            else [job.squeue_row() for job in jobs if not job.finished]
        )
        return _json({"status": "OK", "output": rows, "error": None})

    def _download(self, nersc_path: str) -> Response:
        try:
            data = self.local(nersc_path).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return _json({"status": "ERROR", "file": None, "error": f"No such file: {nersc_path}"})
        encoded = base64.b64encode(data).decode()
        return _json({"status": "OK", "file": encoded, "is_binary": True, "error": None})

    def _api(self, request: Request, route: str) -> Response:
        machine = self.machine
        if route == f"status/{machine}":
            return _json(
                {
                    "name": machine,
                    "full_name": machine,
                    "description": "",
                    "system_type": "compute",
                    "notes": [],
                    "status": self.machine_status,
                    "updated_at": "2026-01-01T00:00:00",
                }
            )
        if route == f"compute/jobs/{machine}" and request.method == "POST":
            return self._task(
                {"status": "ok", "jobid": self._submit(request.form["job"]), "error": None}
            )
        if route == f"compute/jobs/{machine}":
            return self._jobs_get(request)
        if route.startswith(f"compute/jobs/{machine}/") and request.method == "DELETE":
            self._cancel(route.rsplit("/", 1)[1])
            return _json({"status": "OK", "output": {}, "error": None})
        if route.startswith("tasks/") and route[6:] in self._tasks:
            return _json(self._tasks[route[6:]])
        if route.startswith(f"utilities/download/{machine}/"):
            return self._download("/" + route.split("/", 3)[3].lstrip("/"))
        return _json({"status": "ERROR", "error": f"no such route: {route}"}, 404)

    def wsgi(self, environ: dict, start_response):  # type: ignore[no-untyped-def]
        request = Request(environ)
        path = unquote(environ.get("RAW_URI", request.path).split("?", 1)[0])
        if path == TOKEN_PATH:
            response = _json(
                {"access_token": "fake-token", "token_type": "Bearer", "expires_in": 600}
            )
        elif path.startswith(API_PREFIX):
            route = path[len(API_PREFIX) :]
            status = self._fault(request, route)
            response = (
                self._api(request, route)
                if status is None
                else _json({"detail": "injected fault"}, status)
            )
        else:
            response = _json({"detail": "not found"}, 404)
        return response(environ, start_response)


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
