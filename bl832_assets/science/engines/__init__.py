"""Reconstruction engines by name: ``dfi`` (direct Fourier, the default) and ``fbp``.

Each engine's module is imported only when that engine is asked for, so a facility
environment without one engine's library (``finufft``, or later a GPU package) can still run
the others; the project never requires a GPU.
"""

from __future__ import annotations

from collections.abc import Callable

from bl832_assets.science.engines.base import ReconEngine

__all__ = ["DEFAULT_ENGINE", "ReconEngine", "engine_names", "get_engine", "register_engine"]

DEFAULT_ENGINE = "dfi"


def _fourier() -> ReconEngine:
    from bl832_assets.science.engines.fourier import FourierEngine

    return FourierEngine()


def _backprojection() -> ReconEngine:
    from bl832_assets.science.engines.backprojection import BackprojectionEngine

    return BackprojectionEngine()


_FACTORIES: dict[str, Callable[[], ReconEngine]] = {"dfi": _fourier, "fbp": _backprojection}


def register_engine(name: str, factory: Callable[[], ReconEngine]) -> None:
    """Make ``get_engine(name)`` build engines with ``factory``."""
    _FACTORIES[name] = factory


def engine_names() -> tuple[str, ...]:
    return tuple(sorted(_FACTORIES))


def get_engine(name: str = DEFAULT_ENGINE) -> ReconEngine:
    """A fresh engine with its default settings; ValueError naming the known engines."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ValueError(f"unknown engine {name!r}; expected one of {', '.join(engine_names())}")
    return factory()
