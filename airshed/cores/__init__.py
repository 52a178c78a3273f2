"""Dispersion cores: the :class:`Core` contract and the registry that ``run.core`` is checked against.

A core turns one period's emissions and meteorology into near-surface concentrations per tag (source
region x sector) and tracer. The pipeline never asks which core it runs: everything it needs to know is
in the contract below. A new core is one module holding a class that satisfies :class:`Core` plus one
line in :data:`CORES`; ``run.core`` then accepts its name.

The registry holds import paths (``"package.module:Class"``, like entry points), so reading a config does
not import the kernels of every core.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Protocol

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

    from airshed.config import AirshedConfig
    from airshed.physics.mechanism import Mechanism
    from airshed.pipeline.inputs import Inputs

__all__ = ["CORES", "Core", "PeriodEmissions", "core_class", "core_names"]


class PeriodEmissions(NamedTuple):
    """Emission rates of one period, kg s-1 per source and emitted species (the mechanism's order).

    ``area`` (n_area, E) and ``points`` (n_points, E) are the rates to disperse, after zero-out and
    scenario factors; ``baseline_area`` and ``baseline_points`` are the rates before those factors. A
    stochastic core decides its particles from the baseline and scales only their masses by the factors,
    so a zero-out or scenario run moves the same particles as the baseline (common random numbers).
    """

    area: np.ndarray
    points: np.ndarray
    baseline_area: np.ndarray
    baseline_points: np.ndarray


class Core(Protocol):
    """What the pipeline needs of a dispersion core.

    Construction: ``Core(cfg, inputs, mechanism, start)`` with the validated config, the run's
    :class:`~airshed.pipeline.inputs.Inputs`, the chemistry :class:`~airshed.physics.mechanism.Mechanism`
    and ``start``, where a core with state begins (None: the start of the run; see
    :attr:`periods_independent`).

    Contract:

    - :meth:`period` is called for the periods of a work unit in order, each exactly once; it returns the
      mean concentration over the period, ug m-3, shape (n_tags of ``regions``, len(:attr:`tracers`), ny,
      nx), tag = region (counted from the first of ``regions``) x n_sectors + sector. Concentrations
      must be linear in the emission rates (tagging equals zero-out) and reproducible bit for bit. A
      stochastic core with independent sampling classes (batch means) may instead return the classes'
      parts with the classes first, (n_classes, n_tags, ...): their sum is the concentration, and the
      pipeline derives the Monte Carlo standard errors from them.
    - :attr:`periods_independent`: True when a period's result depends only on that period's inputs (a
      steady-state core); the run is then split into chunks of periods, and a scenario window covering
      part of the run can be evaluated from stored contributions. False when a core carries state from
      period to period (particles in the air); units are then runs of release windows, and the core also
      provides ``window_periods_of(cfg)``, ``period_by_window`` (each live window's fields, as
      :class:`~airshed.model.lagrangian.SparseField` where sparse), ``finished``
      (budgets of the windows that ended), ``close()`` and ``pending_mass()``
      (:class:`~airshed.cores.lagrangian.LagrangianCore`).
    - :meth:`output_period_hours` is the length of one period, h (the run's length is a multiple of it;
      :meth:`check_config` says so otherwise).
    - :meth:`budget` returns the core's mass budget so far (kg per tracer for each term of
      :data:`airshed.outputs.runfile.BUDGET_TERMS`), or None for a core that keeps none; budgets of work
      units are summed.
    - :attr:`calm_hours` counts the periods in which a calm wind was raised to the core's threshold (0 for
      a core without a calm treatment); summed over work units.
    """

    periods_independent: ClassVar[bool]
    tracers: tuple[str, ...]
    calm_hours: int

    def __init__(self, cfg: AirshedConfig, inputs: Inputs, mechanism: Mechanism,
                 start: object = None) -> None: ...

    @classmethod
    def output_period_hours(cls, cfg: AirshedConfig) -> int:
        """Length of one output period, h."""
        ...

    @classmethod
    def check_config(cls, cfg: AirshedConfig) -> None:
        """Raise ValueError (naming the key) when ``cfg`` cannot run on this core."""
        ...

    def period(self, met0: xr.Dataset, met1: xr.Dataset, emissions: PeriodEmissions, t0: float,
               t1: float) -> np.ndarray:
        """Mean concentration per tag and tracer over [t0, t1] s since the start of the run."""
        ...

    def budget(self) -> dict[str, np.ndarray] | None:
        """Mass budget so far (kg per tracer and term), or None."""
        ...


CORES: dict[str, str | type[Core]] = {
    "plume": "airshed.cores.plume:PlumeCore",
    "lagrangian": "airshed.cores.lagrangian:LagrangianCore",
}
"""Registered cores: ``run.core`` name -> ``"module:Class"`` (replaced by the class once imported) or
the class itself. Dask workers in other processes see a core registered by an import path, or by a
module they import."""


def core_names() -> tuple[str, ...]:
    """Names of the registered cores (the allowed values of ``run.core``)."""
    return tuple(CORES)


def core_class(name: str) -> type[Core]:
    """Return the class of the core registered as ``name`` (imported on first use)."""
    if name not in CORES:
        raise KeyError(f"no core {name!r}; registered cores: {', '.join(CORES)}")
    core = CORES[name]
    if isinstance(core, str):
        module, _, attribute = core.partition(":")
        core = CORES[name] = getattr(importlib.import_module(module), attribute)
    return core
