"""How much verification costs: plain ``cp``, the shell way (``cp`` then ``sha256sum`` of source
and copy), and our verified copy through ``LocalTransferResource.copy``.

    python benchmarks/bench_copy.py [--size-mib 1024] [--repeats 3]

Works under ``bench-out/`` in the repository (git-ignored), so every method copies within the
filesystem the site's endpoints would live on. Before every timed run the copy is deleted, all
dirty pages are written back (``sync``) and the source is evicted from the page cache with
``posix_fadvise(DONTNEED)``, so every method starts by reading the source from disk. Methods
take turns within each round, so drift of the machine affects them alike; the best round
counts. Our copy also fsyncs the result, which ``cp`` does not: the "cp + fsync" row shows what
that alone costs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pagecache import evict

from bl832_assets.resources.transfer import LocalTransferResource

REPO = Path(__file__).resolve().parent.parent
NAME = "scan.bin"


def make_source(path: Path, size_mib: int) -> None:
    """Random bytes, so no filesystem or page-cache trick can shortcut the copy."""
    with open(path, "wb") as out:
        for _ in range(size_mib):
            out.write(os.urandom(1 << 20))
        out.flush()
        os.fsync(out.fileno())


def start_cold(source: Path, destination: Path) -> None:
    destination.unlink(missing_ok=True)
    evict(source)


def sha256sum(path: Path) -> str:
    out = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True, text=True)
    return out.stdout.split()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the test file")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the best one counts")
    args = parser.parse_args()

    (REPO / "bench-out").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-copy-", dir=REPO / "bench-out"))
    try:
        run(work, args.size_mib, args.repeats)
    finally:
        shutil.rmtree(work)


def run(work: Path, size_mib: int, repeats: int) -> None:
    source_root, destination_root = work / "src", work / "dst"
    source_root.mkdir()
    destination_root.mkdir()
    source, destination = source_root / NAME, destination_root / NAME
    make_source(source, size_mib)
    transfer = LocalTransferResource(
        endpoints={"src": str(source_root), "dst": str(destination_root)},
        database=str(work / "tasks.sqlite"),
    )
    expected = sha256sum(source)

    def cp() -> None:
        subprocess.run(["cp", str(source), str(destination)], check=True)

    def cp_fsync() -> None:
        cp()
        fd = os.open(destination, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)

    def shell_way() -> None:
        cp()
        if sha256sum(source) != sha256sum(destination):
            raise SystemExit("cp produced a different file")

    def ours() -> None:
        result = transfer.copy("src", "dst", NAME, label="bench")
        if result.sha256[NAME] != expected or result.files_transferred != 1:
            raise SystemExit(f"verified copy misbehaved: {result}")

    methods: dict[str, Callable[[], None]] = {
        "cp": cp,
        "cp + fsync": cp_fsync,
        "cp + sha256sum x2": shell_way,
        "ours (verified)": ours,
    }
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, method in methods.items():
            start_cold(source, destination)
            started = time.perf_counter()
            method()
            times[name].append(time.perf_counter() - started)

    best = {name: min(runs) for name, runs in times.items()}
    gib = size_mib / 1024
    print(f"{size_mib} MiB file, best of {repeats}, cold source (fadvise DONTNEED) each run")
    print(f"{'method':<20} {'best s':>8} {'GiB/s':>7}   all runs (s)")
    for name, runs in times.items():
        spread = " ".join(f"{t:.2f}" for t in runs)
        print(f"{name:<20} {best[name]:8.2f} {gib / best[name]:7.2f}   {spread}")
    shell_ratio = best["cp + sha256sum x2"] / best["ours (verified)"]
    cp_ratio = best["ours (verified)"] / best["cp"]
    print(f"shell way / ours = {shell_ratio:.2f}  (goal >= 2)")
    print(f"ours / cp        = {cp_ratio:.2f}  (goal <= 3)")


if __name__ == "__main__":
    main()
