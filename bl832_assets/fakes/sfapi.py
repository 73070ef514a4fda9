"""A stateful stand-in for the NERSC Superfacility API v1.2, served over real HTTP.

The real ``sfapi_client.Client`` talks to it unpatched: OAuth token (private_key_jwt), machine
status, job submission through a task, squeue/sacct rows, cancel and file download. Like NERSC's
OAuth server, the token endpoint only answers registered clients: the ``client_assertion`` must
be an RS256 JWT signed with the client's registered key, ``iss`` = ``sub`` = the client id,
``aud`` = the token URL and ``exp`` ahead; anything else gets 401 ``invalid_client``. Every API
route then wants a bearer token the endpoint issued and that has not expired, so a wrong client
id or key fails here as it would at NERSC instead of passing unnoticed. A submitted
job really runs: its script is executed with bash, NERSC paths in it rewritten to local folders,
so a payload writes its outputs, logs and Pipes messages where the resource will look for them.
Faults (HTTP errors, Slurm end states) are injected by the test that owns the fake.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import secrets
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from bl832_assets.fakes.http import serving

with warnings.catch_warnings():  # authlib 1.x announces joserfc; sfapi_client needs authlib.jose
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, JsonWebToken, Key
    from authlib.jose.errors import InvalidClaimError, JoseError

API_PREFIX = "/api/v1.2/"
TOKEN_PATH = "/c2id/token"
FIRST_JOB_ID = 40_000_000
TOKEN_SECONDS = 600
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# The algorithm sfapi_client's PrivateKeyJWT signs with; "none" or HMAC must not get through.
ASSERTIONS = JsonWebToken(["RS256"])


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
    """The fake's state; ``paths`` maps NERSC path prefixes (``/pscratch/sd/a/als``) to folders.

    ``clients`` registers the SF API clients: client id -> that client's key as JWK JSON. It has
    no default, so a fake never silently lets everyone in or no one. The key may be the private
    JWK a test hands the client as its secret (one value for both sides); only its public members
    are kept, which is all NERSC holds for a client and all a signature check needs.

    ``job_environment`` is exported to every job, on top of this process's environment: what
    NERSC's modules would provide, such as where the tools the jobs call find their Python.
    """

    paths: Mapping[str, Path]
    clients: Mapping[str, str] = field(kw_only=True)
    job_environment: Mapping[str, str] = field(default_factory=dict, kw_only=True)
    machine: str = "perlmutter"
    machine_status: str = "active"
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    submissions: list[str] = field(default_factory=list)
    _http_faults: list[tuple[int, str]] = field(default_factory=list)
    _next_end_state: str | None = None
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(FIRST_JOB_ID))
    _tasks: dict[str, dict[str, object]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _keys: dict[str, Key] = field(init=False, default_factory=dict)
    _tokens: dict[str, float] = field(init=False, default_factory=dict)
    url: str = ""

    def __post_init__(self) -> None:
        for client_id, jwk in self.clients.items():
            public = JsonWebKey.import_key(json.loads(jwk)).as_dict(is_private=False)
            self._keys[client_id] = JsonWebKey.import_key(public)

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
                ["bash", "-s"],
                stdin=subprocess.PIPE,
                stdout=stdout,
                stderr=stderr,
                cwd=workdir,
                env={**os.environ, **self.job_environment},
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

    # -- OAuth --------------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        """Client credentials with a private_key_jwt assertion, checked as NERSC's server does."""
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return _json({"error": "unsupported_grant_type"}, 400)
        if form.get("client_assertion_type") != JWT_BEARER:
            return _refused()
        claims_options = {
            "iss": {"essential": True},
            "sub": {"essential": True},
            "aud": {"essential": True, "value": request.base_url},  # the URL the client used
            "exp": {"essential": True},
        }
        try:
            claims = ASSERTIONS.decode(
                form.get("client_assertion", ""),
                self._assertion_key,
                claims_options=claims_options,
            )
            claims.validate()
        except JoseError:
            return _refused()
        if claims["sub"] != claims["iss"]:
            return _refused()
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + TOKEN_SECONDS
        return _json({"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_SECONDS})

    def _assertion_key(self, _header: object, payload: object) -> Key:
        """The registered key of the client the assertion claims to come from (``iss``)."""
        key = self._keys.get(payload.get("iss")) if isinstance(payload, dict) else None
        if key is None:
            raise InvalidClaimError("iss")
        return key

    def _authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expires = self._tokens.get(token) if scheme.lower() == "bearer" else None
        return expires is not None and time.monotonic() < expires

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
        if path == TOKEN_PATH and request.method == "POST":
            response = self._token(request)
        elif path.startswith(API_PREFIX) and not self._authorised(request):
            response = _json({"detail": "Not authenticated: a valid bearer token is needed"}, 401)
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


def _refused() -> Response:
    """RFC 6749's answer to failed client authentication, the same whichever check failed, so
    a probe learns nothing about which client ids exist."""
    return _json(
        {"error": "invalid_client", "error_description": "Client authentication failed"}, 401
    )


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
