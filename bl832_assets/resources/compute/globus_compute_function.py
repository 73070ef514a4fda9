"""The function a Globus Compute endpoint runs: one payload command in the allocation's
environment, with its exit code checked by the caller.

It is shipped as source text (the SDK's ``AllCodeStrategies``), so it imports only the standard
library, inside its body: the endpoint's worker has neither this package's modules nor its
globals. Upstream's wrapper returned a string and ignored the exit code; this one returns what
the caller needs to judge the job: exit code, stderr tail, the payload's metadata line and the
output folder's listing.
"""

from __future__ import annotations


def run_payload(
    command: list[str],
    environment_setup: str,
    output: str,
    walltime_seconds: float,
    stderr_lines: int = 20,
) -> dict:
    """Run ``command`` after ``environment_setup`` (shell lines, e.g. ``module load ...``);
    ``output`` is the folder whose listing comes back (empty for none).

    The service has no way to cancel a running task, so the walltime is enforced here: past
    it the payload's whole process group is killed and ``timed_out`` is set.
    """
    import os
    import shlex
    import signal
    import subprocess
    import time

    script = shlex.join(command)
    if environment_setup.strip():
        script = f"{environment_setup}\nexec {script}"
    started = time.monotonic()
    process = subprocess.Popen(
        ["bash", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    timed_out = False
    try:
        stdout, stderr = process.communicate(timeout=walltime_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    lines = stdout.strip().splitlines()
    listing = sorted(os.listdir(output)) if os.path.isdir(output) else []
    return {
        "exit_code": process.returncode,
        "timed_out": timed_out,
        "stderr_tail": "\n".join(stderr.splitlines()[-stderr_lines:]),
        "metadata_line": lines[-1] if lines else "",
        "listing": listing,
        "host": os.uname().nodename,
        "seconds": time.monotonic() - started,
    }
