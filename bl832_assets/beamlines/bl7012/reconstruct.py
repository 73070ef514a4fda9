"""Ptychographic reconstruction on the CPU: the momentum-accelerated ptychographic iterative engine
(mPIE, built on rPIE).

The local backend's engine, for small scans on a workstation and in tests; at NERSC the job runs
upstream's cdtools or ptychocam on GPUs instead. cdtools itself was measured on the 50-position
test scan (cdtools-py 0.3.2, CPU torch 2.13.0, two cores): it installs in ~30 s but brings
~750 MB of PyTorch, takes 5.7 s for 100 epochs (object error 0.09) and 16 s for 300 (0.07),
and crashes with upstream's default ``simulate_probe_translation=True`` on 3-D CXI translations.
This engine, NumPy alone, takes ~0.5 s for 100 iterations (error ~0.015). So the local path
is ours.

Both come from Maiden, Johnson & Li, Optica 4, 736 (2017). rPIE visits the positions one at a
time in a random order, replaces the modulus of the exit wave's far field with the measured one,
and corrects the object and the probe by the difference; its step ``alpha`` mixes the local
probe intensity with its maximum, so weakly lit pixels still move but never blow up. mPIE adds
momentum after each pass. On the test scans (a probe guess without the beam's phase curvature)
rPIE alone needed 200-300 iterations and sometimes stalled at twice the usual error; with
momentum 0.7, 100 iterations reach 0.013-0.016 on every seed tried. The visiting order comes
from ``seed``, so a run repeats.

Positions are rounded to whole object pixels. Ptychography fixes the object only up to a global
phase, a linear phase ramp shared with the probe, and a shift of object and probe together;
``bl832_assets.beamlines.bl7012.accuracy`` removes those before comparing with a known object.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bl832_assets.beamlines.bl7012.cxi import CxiScan
from bl832_assets.beamlines.bl7012.grid import illumination, object_shape
from bl832_assets.beamlines.bl7012.params import PieParams

TINY = 1e-12  # keeps the modulus replacement finite where the far field is exactly zero


@dataclass(frozen=True)
class PtychoResult:
    """A reconstruction: the object on its grid, the final probe, and how it got there."""

    object: np.ndarray  # complex (rows, columns)
    probe: np.ndarray  # complex, frame-sized
    positions: np.ndarray  # (frames, 2) int: each probe window's top-left (row, column)
    errors: list[float]  # Fourier error per iteration: Σ(|Ψ| - √I)² / ΣI
    seconds: float

    def illumination(self) -> np.ndarray:
        """The final probe's dose on the object."""
        return illumination(self.probe, self.positions, self.object.shape)


def initial_probe(scan: CxiScan) -> np.ndarray:
    """The file's probe guess, or one from the data (the inverse transform of the mean measured
    amplitude, flat phase), scaled so its far field carries the frames' mean photon count."""
    frames = scan.frames
    probe = scan.header.probe
    if probe is None:
        amplitude = np.sqrt(frames.mean(axis=0))
        probe = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(amplitude), norm="ortho"))
    power = np.sum(np.abs(probe) ** 2)
    return probe * np.sqrt(frames.sum(axis=(1, 2)).mean() / power)


def _update(target: np.ndarray, other: np.ndarray, difference: np.ndarray, step: float) -> None:
    """rPIE's correction of ``target`` (object patch or probe) in place, ``other`` the factor
    it was multiplied by."""
    weight = np.abs(other) ** 2
    target += np.conj(other) * difference / ((1 - step) * weight + step * weight.max())


class _Momentum:
    """mPIE's acceleration: after each pass, the pass's net change is remembered with decay
    ``eta`` and that much more of it applied, so changes that persist from pass to pass (the
    slow modes a poor probe guess leaves) speed up, while ones that oscillate cancel."""

    def __init__(self, start: np.ndarray) -> None:
        self._last = start.copy()
        self._velocity = np.zeros_like(start)

    def push(self, current: np.ndarray, eta: float) -> None:
        """Update ``current`` in place."""
        self._velocity = eta * self._velocity + (current - self._last)
        current += eta * self._velocity
        self._last = current.copy()


def reconstruct(
    scan: CxiScan,
    params: PieParams,
    on_iteration: Callable[[int, float], None] | None = None,
) -> PtychoResult:
    """Reconstruct ``scan`` with mPIE; ``on_iteration(done, error)`` after each iteration."""
    started = time.perf_counter()
    rows, columns = scan.header.frame_shape
    positions = np.rint(scan.header.positions_px()).astype(int)
    obj = np.ones(object_shape(positions, (rows, columns)), dtype=np.complex128)
    probe = initial_probe(scan).astype(np.complex128)
    # Measured moduli, unshifted to the FFT's layout once instead of each visit.
    moduli = np.sqrt(np.fft.ifftshift(scan.frames, axes=(1, 2)).astype(np.float64))
    total = float(np.sum(moduli**2))
    rng = np.random.default_rng(params.seed)
    object_momentum, probe_momentum = _Momentum(obj), _Momentum(probe)
    errors: list[float] = []
    for iteration in range(params.iterations):
        misfit = 0.0
        for index in rng.permutation(len(positions)):
            row, column = positions[index]
            patch = obj[row : row + rows, column : column + columns]
            exit_wave = probe * patch
            spectrum = np.fft.fft2(exit_wave, norm="ortho")
            modulus = np.abs(spectrum)
            misfit += float(np.sum((modulus - moduli[index]) ** 2))
            corrected = np.fft.ifft2(spectrum * moduli[index] / (modulus + TINY), norm="ortho")
            difference = corrected - exit_wave
            previous = patch.copy()
            _update(patch, probe, difference, params.object_step)
            if iteration >= params.probe_start:
                _update(probe, previous, difference, params.probe_step)
        errors.append(misfit / total)
        object_momentum.push(obj, params.momentum)
        if iteration >= params.probe_start:
            probe_momentum.push(probe, params.momentum)
        if on_iteration is not None:
            on_iteration(iteration + 1, errors[-1])
    return PtychoResult(obj, probe, positions, errors, time.perf_counter() - started)
