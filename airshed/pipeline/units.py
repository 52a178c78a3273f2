"""Work units: how a run splits into independent pieces of work, and running one in this process.

Work is partitioned where the physics allows, and the partition never changes the result:

- A core whose periods are independent (the plume core: every hour is a steady state) is split into
  chunks of ``chunk_hours`` consecutive periods. Hourly fields are concatenated; the period sums are
  added in chunk order. A serial run uses the same chunks, so any assignment of chunks to workers gives
  the serial result to the last bit.
- A core that carries state (the particle core) is split by release window
  (``lagrangian.release_window_h``): a particle's whole life belongs to the window
  in which it was released, particles never interact, and a particle's id and random path depend only on
  (period, source, index within the source) and the step within the period. A unit is a run of
  consecutive windows with every source region: it releases particles during its windows (starting from
  the particle credit a run from the start holds then, :func:`~airshed.cores.lagrangian.release_credit_at`)
  and moves them until they have all left the domain or the run ends, reading only the meteorology of
  those periods. Each window's concentrations are reduced on their own (:class:`WindowResult`) and the run
  adds the windows up in window order, so a serial run (one unit of every window) and any grouping of
  windows into units give the same bits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from airshed.cores import Core
from airshed.cores.lagrangian import release_credit_at
from airshed.pipeline.reduction import HourlyFields, HourSink, TaggedAccumulator
from airshed.pipeline.study import Study, period_emissions, period_rates, run_periods


@dataclass(frozen=True)
class WorkUnit:
    """Periods ``[first, stop)`` of the run: hours of a core without state, or the release periods of one.

    ``windows`` are the release windows of a unit of a core with state (None otherwise) and ``start`` the
    core's starting state (:class:`~airshed.cores.lagrangian.ReleaseStart`; None: the start of the run).
    """

    index: int
    first: int
    stop: int
    windows: range | None = None
    start: object = None

    def describe(self, region_names: list[str] | None = None) -> str:
        """Say what the unit computes, e.g. ``periods 24-47`` or ``release windows 2-3 (periods 48-95)``."""
        periods = f"periods {self.first}-{self.stop - 1}"
        if self.windows is None:
            return periods
        w = self.windows
        return f"release window{'s' if len(w) > 1 else ''} {w.start}-{w.stop - 1} ({periods})"

    def with_start(self, start: object) -> WorkUnit:
        """Return the unit with its core's starting state."""
        return WorkUnit(self.index, self.first, self.stop, self.windows, start)


def work_units(core: type[Core], n_periods: int, chunk_hours: int, window_periods: int = 24,
               n_units: int = 1) -> list[WorkUnit]:
    """Return the work units: chunks of ``chunk_hours`` periods, or ``n_units`` runs of release windows.

    A core with state is split into release windows of ``window_periods`` periods, shared out in order
    and as evenly as possible among at most ``n_units`` units (see module docstring).
    """
    if core.periods_independent:
        starts = range(0, n_periods, chunk_hours)
        return [WorkUnit(i, a, min(a + chunk_hours, n_periods)) for i, a in enumerate(starts)]
    n_windows = -(-n_periods // window_periods)
    n_units = max(1, min(n_units, n_windows))
    bounds = [round(i * n_windows / n_units) for i in range(n_units + 1)]
    return [WorkUnit(i, a * window_periods, min(b * window_periods, n_periods), range(a, b))
            for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))]


def with_starts(study: Study, units: list[WorkUnit]) -> Iterator[WorkUnit]:
    """Yield ``units`` (in order) with the starting state of their core, computed as they are needed.

    A unit of release windows that does not start the run starts from the particle credit of a run from
    the start (one pass over the emissions of the earlier periods, no particles moved); other units are
    yielded as they are.
    """
    credit_core, done = None, 0
    for u in units:
        if u.windows is None or u.first == 0:
            yield u
            continue
        if credit_core is None:
            credit_core = study.core()
        start = release_credit_at(credit_core, lambda k: period_rates(study, k),
                                  study.period_h * 3600.0, range(done, u.first))
        done = u.first
        yield u.with_start(start)


@dataclass
class WindowResult:
    """What one release window adds to the run: its reduced fields from hour ``first`` on, emission, budget.

    ``hourly`` holds the window's hourly fields (a leading hour axis, from ``first``), or None when they
    went to an hour sink. With particle sampling classes the two ``class_*`` sums are those of
    :class:`~airshed.pipeline.reduction.TaggedAccumulator` (None without).
    """

    window: int
    first: int
    hourly: dict[str, np.ndarray] | None
    contribution_sum: np.ndarray
    receptor_contribution_sum: np.ndarray
    emitted: np.ndarray
    budget: dict[str, np.ndarray]
    class_receptor_contribution_sum: np.ndarray | None = None
    class_contribution_sum: np.ndarray | None = None


@dataclass
class UnitResult:
    """What a work unit sends back: its reduced fields, emitted mass of its tags, budget, calm hours.

    ``budget`` is per tracer of ``tracers`` (the core's), kg for each budget term, or None. A unit of
    release windows sends ``windows`` (in window order) instead of ``accumulator``, ``emitted`` and
    ``budget``, and ``pending``, the mass still held at the sources after its last release, kg per tracer.
    ``cpu_s`` is the CPU time the unit took in its process (for sizing a cluster).
    """

    unit: WorkUnit
    accumulator: TaggedAccumulator | None
    emitted: np.ndarray | None
    tracers: tuple[str, ...]
    budget: dict[str, np.ndarray] | None
    calm_hours: int
    met_adjustments: dict[str, dict[str, int]] = field(default_factory=dict)
    windows: list[WindowResult] | None = None
    pending: np.ndarray | None = None
    cpu_s: float = 0.0


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


def _met_log(study: Study) -> dict[str, dict[str, int]]:
    met_log = getattr(study.inputs.met, "adjustments", None)
    return dict(met_log.counts) if met_log is not None else {}


def run_unit(study: Study, unit: WorkUnit, hour_sink: HourSink | None = None,
             advance: Callable[[], None] | None = None,
             window_sink: Callable[[WindowResult], None] | None = None) -> UnitResult:
    """Run one work unit in this process.

    ``hour_sink`` receives each finished hour (see :class:`~airshed.pipeline.reduction.TaggedAccumulator`)
    instead of the unit keeping them; ``advance`` is called after each period (a progress bar). A unit of
    release windows hands each finished window to ``window_sink`` (in window order) instead of keeping it.
    """
    cpu0 = time.process_time()
    with single_threaded_blas():
        if unit.windows is not None:
            result = _run_release_windows(study, unit, hour_sink, advance, window_sink)
        else:
            core = study.core()
            sink = None
            if hour_sink is not None:
                def sink(hour: int, fields: HourlyFields) -> None:
                    hour_sink(unit.first + hour, fields)
            acc = study.accumulator(unit.stop - unit.first, core.tracers, sink)
            emitted = run_periods(study, core, acc, range(unit.first, unit.stop), advance)
            result = UnitResult(unit, acc, emitted, core.tracers, core.budget(), core.calm_hours,
                                _met_log(study))
    result.cpu_s = time.process_time() - cpu0
    return result


class _HourFold:
    """Sum the release windows' fields of one hour in window order, starting from zero."""

    def __init__(self) -> None:
        self.fields: dict[str, np.ndarray] | None = None

    def add(self, fields: HourlyFields) -> None:
        if self.fields is None:
            self.fields = {name: np.zeros_like(value) for name, value in fields.items()}
        for name, value in fields.items():
            self.fields[name] += value


def _run_release_windows(study: Study, unit: WorkUnit, hour_sink: HourSink | None,
                         advance: Callable[[], None] | None,
                         window_sink: Callable[[WindowResult], None] | None) -> UnitResult:
    """Release the particles of ``unit``'s windows and follow them to the end (see module docstring).

    With ``hour_sink`` (a unit of every window: the serial run) the windows' fields of each hour are added
    up here, in window order, and handed on when the hour is done; otherwise each window keeps its hours.
    """
    core = study.core(unit.start)
    # the windows' accumulators are used one at a time: they share the buffer sparse hours are spread into
    spread = np.zeros((study.emissions.ntag, len(core.tracers), study.grid.ny * study.grid.nx))
    edges, met, seconds = study.edges, study.met, study.period_h * 3600.0
    wp = core.window_periods
    n_periods = study.n_periods
    accs: dict[int, TaggedAccumulator] = {}
    kept: dict[int, list[dict[str, np.ndarray]]] = {}
    emitted: dict[int, np.ndarray] = {}
    done: dict[int, WindowResult] = {}
    out: list[WindowResult] = []
    next_window = unit.windows.start
    fold: _HourFold | None = None

    def keeper(w: int) -> HourSink:
        def keep(hour: int, fields: HourlyFields) -> None:
            if fold is not None:
                fold.add(fields)
            else:
                kept[w].append(dict(fields))
        return keep

    def finish(w: int, budget: dict[str, np.ndarray]) -> None:
        nonlocal next_window
        acc = accs.pop(w)
        hours = kept.pop(w, None)
        hourly = None
        if hours is not None:
            hourly = {name: np.stack([h[name] for h in hours]) for name in hours[0]} if hours else {}
        done[w] = WindowResult(w, w * wp, hourly, acc.contribution_sum, acc.receptor_contribution_sum,
                               emitted.pop(w), budget, acc.class_receptor_contribution_sum,
                               acc.class_contribution_sum)
        while next_window in done:  # hand windows on in window order
            result = done.pop(next_window)
            if window_sink is not None:
                window_sink(result)
            else:
                out.append(result)
            next_window += 1

    k = unit.first
    while k < n_periods and (k < unit.stop or core.runs):
        rates = None
        if k < unit.stop:
            rates, mass = period_emissions(study, k)
            w = k // wp
            if w not in accs:
                accs[w] = study.accumulator(n_periods - w * wp, core.tracers, keeper(w), spread)
                kept[w] = [] if hour_sink is None else None
                emitted[w] = np.zeros_like(mass)
            emitted[w] += mass
        fold = _HourFold() if hour_sink is not None else None
        for w, tagged in core.period_by_window(met.at(edges[k]), met.at(edges[k + 1]), rates, k * seconds,
                                               (k + 1) * seconds):
            accs[w].add(k - w * wp, tagged)
        if fold is not None:
            hour_sink(k, fold.fields)
        for w in sorted(core.finished):
            finish(w, core.finished.pop(w))
        if advance is not None:
            advance()
        k += 1
    core.close()
    for w in sorted(core.finished):
        finish(w, core.finished.pop(w))
    return UnitResult(unit, None, None, core.tracers, None, core.calm_hours, _met_log(study), out,
                      core.pending_mass())
