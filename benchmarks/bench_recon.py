"""Reconstruction speed and quality against the CPU peers, on the same noise-free sinograms.

    python benchmarks/bench_recon.py [--sizes 2560x1313,512x361] [--methods ...]

For each size (columns x angles) the phantom's exact sinograms (``analytic``) are written once
under ``bench-out/`` and every method (``peers``) reconstructs them in two worker processes,
one per core, one thread each, which is how the pipeline uses a node. Workers first warm up
(imports, JIT, library set-up and, for fast methods, one real-size slice, so per-scan tables
such as our engine's sample geometry are built as they would be once per scan), meet at a
barrier, then each reconstructs its half of the slices. The time counted is from the first
worker's start to the last worker's end: slices/s is for the whole 2-core machine.

Slow peers (astra, scikit-image) reconstruct one slice per core at ALS size, once; the other
peers four slices there and eight at the small size, ours sixteen and sixty-four (--slices),
best of --rounds. SSIM is measured on the first two slices, which
every method reconstructs, against the true slice drawn in the method's own frame, inside the
reconstruction circle. "ratio" is ours slices/s over the method's, at the same size and in the
same run; the goal is >= 10 over the fastest peer at equal or better SSIM.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from analytic import circle, sinogram, ssim_in_circle, theta_half_turn, truth
from peers import METHODS, OURS

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench-out" / "recon"
FIRST_ROW = 1072  # middle of the 2160-row detector: every feature of the phantom is in view
SCORED = 2  # slices every method reconstructs, and SSIM is averaged over
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)
WORKERS = 2


@dataclass(frozen=True)
class Size:
    columns: int
    angles: int

    @classmethod
    def parse(cls, text: str) -> Size:
        columns, angles = text.lower().split("x")
        return cls(int(columns), int(angles))

    def __str__(self) -> str:
        return f"{self.columns}x{self.angles}"

    @property
    def als(self) -> bool:
        return self.columns >= 2048


@dataclass(frozen=True)
class Result:
    method: str
    size: Size
    slices: int
    seconds: float  # wall time on both cores, best round
    ssim: float

    @property
    def slices_per_second(self) -> float:
        return self.slices / self.seconds

    @property
    def seconds_per_slice(self) -> float:
        """Time one core spends on one slice."""
        return self.seconds * WORKERS / self.slices


def sinogram_file(size: Size, slices: int) -> Path:
    """The slab of exact sinograms for ``size``, made once and kept under ``bench-out/``."""
    path = WORK / f"sinograms-{size}-{FIRST_ROW}-{slices}.npy"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        theta = theta_half_turn(size.angles)
        slab = np.stack([sinogram(FIRST_ROW + i, size.columns, theta) for i in range(slices)])
        np.save(path.with_suffix(".partial.npy"), slab)
        os.replace(path.with_suffix(".partial.npy"), path)
    return path


# Worker-process state: set by the pool initializer, read by the task.
_state: dict[str, Any] = {}


def _start_worker(name: str, path: Path, angles: int, warm_up: bool, barrier: Any) -> None:
    slab = np.load(path, mmap_mode="r")
    theta = theta_half_turn(angles)
    method = METHODS[name]
    method.reconstruct(
        np.ascontiguousarray(slab[:1, ::8, ::8]), theta[::8], (slab.shape[-1] // 8 - 1) / 2
    )
    if warm_up:
        method.reconstruct(np.ascontiguousarray(slab[:1]), theta, (slab.shape[-1] - 1) / 2)
    _state.update(method=method, slab=slab, theta=theta)
    barrier.wait()


def _ready(_: int) -> None:
    """Returns once the pool's workers have passed their barrier."""


def _reconstruct(indices: list[int]) -> tuple[float, float, dict[int, np.ndarray]]:
    """Reconstruct slices ``indices`` as one slab; returns start, end and the scored images."""
    slab = np.ascontiguousarray(_state["slab"][indices])  # read before the clock starts
    columns = slab.shape[-1]
    started = time.perf_counter()
    images = _state["method"].reconstruct(slab, _state["theta"], (columns - 1) / 2)
    ended = time.perf_counter()
    return started, ended, {i: images[k] for k, i in enumerate(indices) if i < SCORED}


def measure(name: str, size: Size, slices: int, path: Path, rounds: int) -> Result:
    """Time ``name`` on ``slices`` slices split over the workers; best of ``rounds``."""
    context = mp.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    warm_up = not (size.als and METHODS[name].slow)
    halves = [list(part) for part in np.array_split(np.arange(slices), WORKERS)]
    best, images = float("inf"), {}
    with context.Pool(WORKERS, _start_worker, (name, path, size.angles, warm_up, barrier)) as pool:
        pool.map(_ready, range(WORKERS), chunksize=1)
        for _ in range(rounds):
            parts = pool.map(_reconstruct, halves, chunksize=1)
            wall = max(p[1] for p in parts) - min(p[0] for p in parts)
            best = min(best, wall)
            for part in parts:
                images.update(part[2])
    method = METHODS[name]
    frame = method.frame(size.columns)
    inside = circle(size.columns, frame)
    scores = [
        ssim_in_circle(truth(FIRST_ROW + i, size.columns, frame), images[i], inside)
        for i in range(SCORED)
    ]
    return Result(name, size, slices, best, float(np.mean(scores)))


def slices_for(name: str, size: Size, ours_slices: int) -> int:
    if name == OURS:
        return ours_slices if size.als else 4 * ours_slices
    if size.als:
        return WORKERS if METHODS[name].slow else 2 * WORKERS
    return 4 * WORKERS


def report(results: list[Result]) -> None:
    print(
        f"{'method':<16} {'size':>10} {'slices':>6} {'s/slice':>8} {'slices/s':>9} "
        f"{'SSIM':>6} {'ratio':>7}"
    )
    for size in dict.fromkeys(r.size for r in results):
        row = [r for r in results if r.size == size]
        ours = next((r for r in row if r.method == OURS), None)
        for r in row:
            ratio = ours.slices_per_second / r.slices_per_second if ours else float("nan")
            print(
                f"{r.method:<16} {size!s:>10} {r.slices:>6} {r.seconds_per_slice:8.3f} "
                f"{r.slices_per_second:9.3f} {r.ssim:6.3f} {ratio:7.1f}"
            )
        peers = [r for r in row if r.method != OURS]
        if ours and peers:
            fastest = max(peers, key=lambda r: r.slices_per_second)
            ratio = ours.slices_per_second / fastest.slices_per_second
            verdict = "met" if ratio >= 10 and ours.ssim >= fastest.ssim else "NOT met"
            print(
                f"  {size}: ours / fastest peer ({fastest.method}) = {ratio:.1f}x, "
                f"SSIM {ours.ssim:.3f} vs {fastest.ssim:.3f}: goal {verdict}"
            )
    print(
        "s/slice: one core's time per slice; slices/s: both cores together; ratio: ours "
        "slices/s over the row's. Settings:"
    )
    for name in dict.fromkeys(r.method for r in results):
        print(f"  {name}: {METHODS[name].settings}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2560x1313,512x361", help="COLUMNSxANGLES,...")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument("--slices", type=int, default=16, help="ours at ALS size (>= 8)")
    parser.add_argument("--rounds", type=int, default=2, help="best of; slow peers at ALS size: 1")
    args = parser.parse_args()
    for variable in THREAD_VARIABLES:  # inherited by the spawned workers
        os.environ[variable] = "1"
    names = [n.strip() for n in args.methods.split(",")]
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise SystemExit(f"unknown methods {unknown}; known: {list(METHODS)}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    results = []
    for size in map(Size.parse, args.sizes.split(",")):
        counts = {name: slices_for(name, size, args.slices) for name in names}
        path = sinogram_file(size, max(counts.values()))
        for name in names:
            rounds = 1 if (size.als and METHODS[name].slow) else args.rounds
            result = measure(name, size, counts[name], path, rounds)
            print(
                f"  {name} {size}: {result.seconds:.2f} s for {result.slices} slices, "
                f"SSIM {result.ssim:.3f}",
                flush=True,
            )
            results.append(result)
    report(results)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
