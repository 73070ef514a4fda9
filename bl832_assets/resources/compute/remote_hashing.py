"""The parts of hashing a facility's storage that every compute backend shares: one job record
per path, and reading the payload's answer. Where the path is for the facility's jobs is
``ComputeResource.facility_path``, shared with payload and batch jobs.
"""

from __future__ import annotations

import hashlib
import json

from bl832_assets.resources.compute.base import ComputeFailed, RemoteChecksums


def hash_step(endpoint: str, relative_path: str) -> str:
    """The job-record step of hashing one path: a step may hash several paths (the copy to
    delete and the one kept), and each must re-attach only to its own job."""
    digest = hashlib.sha256(f"{endpoint}:{relative_path}".encode()).hexdigest()[:12]
    return f"hash-{digest}"


def read_answer(stdout: str, job_id: str, how: str) -> RemoteChecksums:
    """The last line ``bl832 hash`` printed, as checksums; a job that printed anything else
    (a wrong launcher, an old image) is a failure, never an empty folder."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        answer = json.loads(lines[-1])
        files, sizes = answer["files"], answer["sizes"]
        if not isinstance(files, dict) or not isinstance(sizes, dict):
            raise TypeError("files and sizes must be objects")
    except (IndexError, ValueError, KeyError, TypeError) as error:
        tail = "\n".join(lines[-5:])
        raise ComputeFailed(
            description=f"{how}: the job did not print a hash answer ({error}):\n{tail}",
            allow_retries=False,
        ) from None
    return RemoteChecksums(
        {str(k): str(v) for k, v in files.items()},
        {str(k): int(v) for k, v in sizes.items()},
        job_id,
        how,
    )
