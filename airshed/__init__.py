"""airshed: where haze comes from.

Gaussian-plume and Lagrangian-particle dispersion with source apportionment by region and sector,
built for the Beijing-Tianjin-Hebei (Jing-Jin-Ji) region and usable anywhere.

The Python API (:mod:`airshed.api`): ``airshed.run(config, **overrides)`` runs a study and returns its
run file as an :class:`xarray.Dataset`, ``airshed.open_run(path)`` opens one, ``airshed.configure`` gives a
validated config; importing airshed registers the ``ds.airshed`` accessor
(:class:`airshed.outputs.accessor.RunAccessor`). The API is imported on first use, so ``import airshed``
stays light.
"""

import importlib
from typing import Any

# The Numba/OpenMP thread policy must be set before any kernel starts its threads (see airshed.jit).
from airshed import jit as _jit  # noqa: F401  (first: sets OMP_WAIT_POLICY before any kernel runs)
from airshed.outputs import accessor as _run_accessor  # noqa: F401  (registers ds.airshed)
from airshed.version import __version__

__all__ = ["__version__", "configure", "open_run", "run"]

_API = ("configure", "open_run", "run")


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("airshed.api"), name)
    raise AttributeError(f"module 'airshed' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
