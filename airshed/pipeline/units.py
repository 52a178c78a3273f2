"""Work units: how a run splits into independent pieces of work, and running one in this process.

Work is partitioned where the physics allows, and the partition never changes the result:

- A core whose periods are independent (the plume core: every hour is a steady state) is split into
  chunks of ``chunk_hours`` consecutive periods. Hourly fields are concatenated; the period sums are
  added in chunk order. A serial run uses the same chunks, so any assignment of chunks to workers gives
  the serial result to the last bit.
- A core that carries state (the particle core) is split by source region: particles never interact,
  tagging makes contributions additive, and a particle's id and random path depend only on (period,
  source, index within the source) with the particles of every period allocated from the full source
  table (:mod:`airshed.model.release`). So a unit is one source region over the whole run. A run that is
  not sent to Dask is one unit holding every region, each with its own particle state, advanced together
  period by period (one met window and one release table per period for all).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from airshed.cores import Core
from airshed.pipeline.reduction import HourlyFields, HourSink, TaggedAccumulator
from airshed.pipeline.study import Study, run_periods


@dataclass(frozen=True)
class WorkUnit:
    """Periods ``[first, stop)`` of the run, for the source ``regions`` (a core with state) or all (None)."""

    index: int
    first: int
    stop: int
    regions: range | None = None

    def describe(self, region_names: list[str] | None = None) -> str:
        """Say what the unit computes, e.g. ``periods 24-47`` or ``source region Beijing``."""
        if self.regions is None:
            return f"periods {self.first}-{self.stop - 1}"
        names = [region_names[r] if region_names else str(r) for r in self.regions]
        return f"source region {names[0]}" if len(names) == 1 else f"source regions {', '.join(names)}"

    def tags(self, n_sectors: int) -> slice:
        """Return the unit's slice of the run's tag axis."""
        if self.regions is None:
            return slice(None)
        return slice(self.regions.start * n_sectors, self.regions.stop * n_sectors)


def work_units(core: type[Core], n_periods: int, n_regions: int, chunk_hours: int, split_regions: bool = True
               ) -> list[WorkUnit]:
    """Return the work units: chunks of ``chunk_hours`` periods, or source regions (see module docstring).

    A run of a core with state that is not sent to Dask (``split_regions`` False) is one unit of all
    regions: their states advance period by period together and share each period's met and emissions.
    """
    if core.periods_independent:
        starts = range(0, n_periods, chunk_hours)
        return [WorkUnit(i, a, min(a + chunk_hours, n_periods)) for i, a in enumerate(starts)]
    if not split_regions:
        return [WorkUnit(0, 0, n_periods, range(n_regions))]
    return [WorkUnit(r, 0, n_periods, range(r, r + 1)) for r in range(n_regions)]


@dataclass
class UnitResult:
    """What a work unit sends back: its reduced fields, emitted mass of its tags, budget, calm hours.

    ``budget`` is per tracer of ``tracers`` (the core's), kg for each budget term, or None.
    """

    unit: WorkUnit
    accumulator: TaggedAccumulator
    emitted: np.ndarray
    tracers: tuple[str, ...]
    budget: dict[str, np.ndarray] | None
    calm_hours: int
    met_adjustments: dict[str, dict[str, int]] = field(default_factory=dict)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with one BLAS thread (restored after; ``threadpoolctl``).

    OpenBLAS and MKL split a matrix product differently for different thread counts, which changes the
    last bits of the receptor-region sums; Dask starts workers with one BLAS thread, the main process has
    one per core. Every product of a run is taken with one BLAS thread, so it gives the same bits in any
    process (measured: with the process's default threads, the area-weighted source-receptor matrix of
    the same run differed by 1 ulp from one run to the next).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def run_unit(study: Study, unit: WorkUnit, hour_sink: HourSink | None = None,
             advance: Callable[[], None] | None = None) -> UnitResult:
    """Run one work unit in this process.

    ``hour_sink`` receives each finished hour (see :class:`~airshed.pipeline.reduction.TaggedAccumulator`)
    instead of the unit keeping them; ``advance`` is called after each period (a progress bar).
    """
    with single_threaded_blas():
        core = study.core(unit.regions)
        n_regions = None if unit.regions is None else len(unit.regions)
        sink = None
        if hour_sink is not None:
            def sink(hour: int, fields: HourlyFields) -> None:
                hour_sink(unit.first + hour, fields)
        acc = study.accumulator(unit.stop - unit.first, core.tracers, n_regions, sink)
        emitted = run_periods(study, core, acc, range(unit.first, unit.stop), advance)
        tags = unit.tags(study.emissions.nsector)
        met_log = getattr(study.inputs.met, "adjustments", None)
        return UnitResult(unit, acc, emitted[tags], core.tracers, core.budget(), core.calm_hours,
                          dict(met_log.counts) if met_log is not None else {})
