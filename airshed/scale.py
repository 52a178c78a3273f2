"""Scale a run out: work units, the Dask scheduler that runs them, and the merge of their results.

Only the pipeline knows Dask (this module and :mod:`airshed.run`); kernels, readers and writers never do.
``[compute] scheduler`` picks where the work units run: ``"serial"`` (in this process, one after the
other), ``"threads"`` (threads of this process), ``"local-cluster"`` (``workers`` processes on this machine,
each limited to ``memory_limit``) or ``"tcp://host:port"`` (the workers of a running
``dask.distributed`` scheduler, e.g. started by dask-jobqueue on Slurm or PBS; they must see the same
input files and have airshed installed).

Work is partitioned where the physics allows, and the partition never changes the result:

- **Plume core**: every hour is an independent steady state, so a unit is a chunk of
  ``chunk_hours`` consecutive hours. Hourly fields are concatenated; the period sums are added in chunk
  order. A serial run uses the same chunks, so any assignment of chunks to workers gives the serial
  result to the last bit (and the un-chunked sum to ~1e-15 relative).
- **Particle core**: particles never interact, tagging makes contributions additive, and a particle's id
  and random path depend only on (period, source, index within the source) with the particles of every
  period allocated from the full source table (:mod:`airshed.model.release`). So a unit is one source
  region over the whole run: it moves only that region's particles, exactly as a run over all sources
  moves them. A serial run is one unit holding every region, each with its own particle state, advanced
  together period by period (one met window and one release table per period for all). Per-tag sums
  involve one region's particles only; the total concentration, the receptor totals and the mass budget
  are sums over regions taken in region order, the same reduction in a serial run and on a cluster, so
  results are bit-identical for any number or kind of workers.
- **Members** (zero-out runs, scenarios): one task per member (:func:`run_members`).

Units reduce inside the worker (a :class:`~airshed.run.TaggedAccumulator` over their hours and tags):
what travels back is the unit's hourly concentration, its period-summed tagged fields and its hourly
receptor-region series, never hourly tagged fields. A worker that dies (killed, out of memory) has its
units rerun elsewhere by Dask: results are merged only when a unit has finished, and a rerun gives the
same bits, so the output is unaffected; a unit that takes down ``distributed.scheduler.allowed-failures``
+ 1 workers stops the run with :class:`ClusterError` and no output file is written.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from airshed.config import EMITTED_SPECIES, AirshedConfig, ComputeConfig, dump_config
from airshed.errors import AirshedInputError
from airshed.outputs.netcdf import IncrementalNetCDF
from airshed.outputs.runfile import OUTPUT_SPECIES
from airshed.run import (
    Study,
    TaggedAccumulator,
    _progress,
    prepare_study,
    run_periods,
    run_study,
    station_totals,
)

log = logging.getLogger(__name__)

SERIAL, THREADS, LOCAL_CLUSTER = "serial", "threads", "local-cluster"
CONNECT_TIMEOUT_S = 20
"""Seconds to wait for a remote scheduler to answer."""


class ClusterError(AirshedInputError):
    """The configured Dask scheduler cannot be reached, or its workers keep dying on a work unit."""


@dataclass(frozen=True)
class WorkUnit:
    """Periods ``[first, stop)`` of the run, for the source ``regions`` (particle core) or all (None)."""

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


def work_units(core: str, n_periods: int, n_regions: int, chunk_hours: int, split_regions: bool = True
               ) -> list[WorkUnit]:
    """Return the work units: chunks of ``chunk_hours`` periods (plume), source regions (particles).

    A particle run not sent to Dask (``split_regions`` False) is one unit of all regions: their runs
    advance period by period together and share each period's met and emissions.
    """
    if core == "plume":
        starts = range(0, n_periods, chunk_hours)
        return [WorkUnit(i, a, min(a + chunk_hours, n_periods)) for i, a in enumerate(starts)]
    if not split_regions:
        return [WorkUnit(0, 0, n_periods, range(n_regions))]
    return [WorkUnit(r, 0, n_periods, range(r, r + 1)) for r in range(n_regions)]


@dataclass
class UnitResult:
    """What a work unit sends back: its reduced fields, emitted mass of its tags, budget, calm hours."""

    unit: WorkUnit
    accumulator: TaggedAccumulator
    emitted: np.ndarray
    budget: dict[str, np.ndarray] | None
    calm_hours: int


class RunTotals:
    """The merge of a run's work units, in unit order, into the run file and the period sums.

    Hours computed for every tag (plume time chunks, a particle run over all regions) go to the run file
    as soon as they arrive. Units of some source regions each hold a part of every hour: their hourly
    totals are added in region order and written when the last unit is in.
    """

    def __init__(self, study: Study, run_file: IncrementalNetCDF):
        em = study.emissions
        ns, nq = len(OUTPUT_SPECIES), len(study.receptors)
        self.run_file, self.n_sectors, self.n_hours = run_file, em.nsector, study.n_periods
        self.contribution_sum = np.zeros((em.ntag, ns, *study.grid.shape))
        self.receptor_contribution_sum = np.zeros((nq, em.ntag, ns))
        self.emitted = np.zeros((em.ntag, len(EMITTED_SPECIES)))
        self.budget: dict[str, np.ndarray] | None = None
        self.calm_hours = 0
        self._partial: tuple[np.ndarray, ...] | None = None

    def write_hours(self, first: int, concentration: np.ndarray, receptor_concentration: np.ndarray,
                    receptor_contribution: np.ndarray,
                    station_contribution: np.ndarray | None = None) -> None:
        """Write hours ``first, first + 1, ...`` of every tag to the run file (station series if given)."""
        n, nq, _, ns = receptor_contribution.shape
        self.run_file.write("concentration", first, concentration)
        self.run_file.write("pm25", first, concentration[:, OUTPUT_SPECIES.index("PM2.5")])
        self.run_file.write("receptor_concentration", first, receptor_concentration)
        self.run_file.write("receptor_contribution", first,
                            receptor_contribution.reshape(n, nq, -1, self.n_sectors, ns))
        if station_contribution is not None:
            nst = station_contribution.shape[1]
            self.run_file.write("station_concentration", first, station_totals(station_contribution,
                                                                               self.n_sectors))
            self.run_file.write("station_contribution", first,
                                station_contribution.reshape(n, nst, -1, self.n_sectors, ns))

    def write_hour(self, hour: int, *fields: np.ndarray) -> None:
        """Write one finished hour (the hour sink of a unit over all tags)."""
        self.write_hours(hour, *(f[None] for f in fields))

    def merge(self, result: UnitResult) -> None:
        """Add a finished unit (units arrive in unit order)."""
        unit, acc = result.unit, result.accumulator
        tags = unit.tags(self.n_sectors)
        acc.check_complete()
        self.contribution_sum[tags] += acc.contribution_sum
        self.receptor_contribution_sum[:, tags] += acc.receptor_contribution_sum
        if acc.hourly is not None:
            if acc.contribution_sum.shape[0] == self.contribution_sum.shape[0]:
                self.write_hours(unit.first, *acc.hourly)
            else:
                concentration, receptor_concentration, receptor_contribution = acc.hourly[:3]
                if self._partial is None:
                    nq, ns = receptor_concentration.shape[1:]
                    ntag = self.contribution_sum.shape[0]
                    self._partial = (np.zeros((self.n_hours, *concentration.shape[1:])),
                                     np.zeros((self.n_hours, nq, ns)),
                                     np.zeros((self.n_hours, nq, ntag, ns)),
                                     *(np.zeros((self.n_hours, s.shape[1], ntag, ns))
                                       for s in acc.hourly[3:]))
                hours = slice(unit.first, unit.stop)
                self._partial[0][hours] += concentration
                self._partial[1][hours] += receptor_concentration
                self._partial[2][hours, :, tags] = receptor_contribution
                for kept, stations in zip(self._partial[3:], acc.hourly[3:], strict=True):
                    kept[hours, :, tags] = stations
        self.emitted[tags] += result.emitted
        if result.budget is not None:
            if self.budget is None:
                self.budget = {k: np.zeros_like(v) for k, v in result.budget.items()}
            for k, v in result.budget.items():
                self.budget[k] += v
        self.calm_hours += result.calm_hours

    def close(self) -> RunTotals:
        """Write the hours that region units added up; return self."""
        if self._partial is not None:
            self.write_hours(0, *self._partial)
            self._partial = None
        return self


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with one OpenBLAS thread (restored after).

    OpenBLAS splits a matrix product differently for different thread counts, which changes the last bits
    of the receptor-region sums; Dask starts workers with one BLAS thread, the main process has one per
    core. Units run with one BLAS thread everywhere, so a unit gives the same bits wherever it runs. (The
    OpenBLAS bundled with NumPy is found among the process's loaded libraries; elsewhere this is a no-op.)
    """
    get, set_ = _openblas_thread_functions()
    if get is None:
        yield
        return
    before = get()
    set_(1)
    try:
        yield
    finally:
        set_(before)


def _openblas_thread_functions():
    import ctypes

    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        return None, None
    for path in paths:
        lib = ctypes.CDLL(path)
        for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("openblas", "")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                set_.argtypes = [ctypes.c_int]
                return get, set_
    return None, None


def run_unit(study: Study, unit: WorkUnit, hour_sink=None, advance=None) -> UnitResult:
    """Run one work unit in this process.

    ``hour_sink`` receives each finished hour (see :class:`~airshed.run.TaggedAccumulator`) instead of the
    unit keeping them; ``advance`` is called after each period (a progress bar).
    """
    with single_threaded_blas():
        core = study.core(unit.regions)
        n_regions = None if unit.regions is None else len(unit.regions)
        sink = None if hour_sink is None else (lambda hour, *fields: hour_sink(unit.first + hour, *fields))
        acc = study.accumulator(unit.stop - unit.first, n_regions, sink)
        emitted = run_periods(study, core, acc, range(unit.first, unit.stop), advance)
        tags = unit.tags(study.emissions.nsector)
        return UnitResult(unit, acc, emitted[tags], core.budget(), int(getattr(core, "calm_hours", 0)))


# ---------------------------------------------------------------------------------------------------
# Work units on Dask workers
# ---------------------------------------------------------------------------------------------------
_STUDIES: dict[str, Study] = {}
"""This process's study (inputs read once per worker process and run, not once per unit)."""


def _study_key(cfg: AirshedConfig, zero_out: str | None, scenario: str | None) -> str:
    return json.dumps([dump_config(cfg), zero_out, scenario])


def _remember(study: Study) -> None:
    _STUDIES.clear()
    _STUDIES[_study_key(study.cfg, study.zero_out, study.scenario)] = study


def run_unit_task(cfg: AirshedConfig, zero_out: str | None, scenario: str | None, unit: WorkUnit,
                  threads: int | None) -> UnitResult:
    """Dask task: run ``unit`` of the study (read in this worker process at its first unit)."""
    if threads is not None:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    key = _study_key(cfg, zero_out, scenario)
    if key not in _STUDIES:
        _remember(prepare_study(cfg, zero_out, scenario))
    return run_unit(_STUDIES[key], unit)


def worker_threads(compute: ComputeConfig) -> int | None:
    """Numba threads per worker: ``compute.threads``, or the cores shared out among local workers."""
    if compute.threads is not None:
        return compute.threads
    if compute.scheduler == LOCAL_CLUSTER:
        return max(1, (os.cpu_count() or 1) // compute.workers)
    if compute.scheduler == THREADS:
        return 1
    return None


@contextmanager
def dask_client(compute: ComputeConfig) -> Iterator[object]:
    """Yield a ``dask.distributed.Client`` for ``[compute]`` (a cluster it starts is closed on exit)."""
    from dask.distributed import Client, LocalCluster

    if compute.scheduler == SERIAL:
        raise ValueError("the serial scheduler runs without a Dask client")
    if compute.scheduler in (THREADS, LOCAL_CLUSTER):
        processes = compute.scheduler == LOCAL_CLUSTER
        cluster = LocalCluster(
            n_workers=compute.workers if processes else 1,
            threads_per_worker=1 if processes else compute.workers,
            processes=processes,
            memory_limit=compute.memory_limit,
            dashboard_address=":0",  # a free port: never the 8787 of another cluster
        )
        with cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(compute.scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"compute.scheduler = {compute.scheduler!r}: no Dask scheduler answered within "
            f"{CONNECT_TIMEOUT_S} s ({exc}); start one (`dask scheduler`) or use 'local-cluster'"
        ) from None
    with client:
        yield client


def _results_on_cluster(client, study: Study, units: list[WorkUnit]) -> Iterator[UnitResult]:
    """Run the units on the client's workers; yield their results in unit order as they finish."""
    from dask.distributed import as_completed
    from distributed.scheduler import KilledWorker

    cfg = study.cfg
    threads = worker_threads(cfg.compute)
    futures = [client.submit(run_unit_task, cfg, study.zero_out, study.scenario, u, threads, pure=False,
                             key=f"airshed-unit-{u.index}-{os.getpid()}-{id(study)}") for u in units]
    waiting: dict[int, UnitResult] = {}
    nxt = 0
    try:
        for future in as_completed(futures):
            try:
                result = future.result()
            except KilledWorker:
                unit = units[futures.index(future)]
                raise ClusterError(
                    f"work unit {unit.describe(list(study.emissions.regions))} killed every Dask worker it "
                    "ran on (the distributed.scheduler.allowed-failures limit); a worker dies when it runs "
                    f"out of memory (compute.memory_limit = {cfg.compute.memory_limit!r}) or is stopped. "
                    "No output was written"
                ) from None
            future.release()
            waiting[result.unit.index] = result
            while nxt in waiting:
                yield waiting.pop(nxt)
                nxt += 1
    finally:
        for future in futures:
            future.cancel()


def run_core(study: Study, run_file: IncrementalNetCDF, progress: bool = True) -> RunTotals:
    """Run the work units of ``study`` where ``[compute]`` says; merge them in order into ``run_file``."""
    cfg, em = study.cfg, study.emissions
    serial = cfg.compute.scheduler == SERIAL
    units = work_units(cfg.run.core, study.n_periods, len(em.regions), cfg.compute.chunk_hours,
                       split_regions=not serial)
    totals = RunTotals(study, run_file)
    if serial:
        with _progress(progress, study.n_periods, f"{cfg.run.core} core", unit="periods") as advance:
            for u in units:
                # the particle run over all regions writes every hour as soon as it is done; plume chunks
                # are written a chunk at a time when merged
                sink = None if u.regions is None else totals.write_hour
                totals.merge(run_unit(study, u, sink, advance))
        return totals.close()
    label = f"{cfg.run.core} core, {len(units)} units ({cfg.compute.scheduler})"
    with _progress(progress, len(units), label, unit="units") as advance:
        _remember(study)  # the threads scheduler reuses this process's inputs
        with dask_client(cfg.compute) as client:
            for result in _results_on_cluster(client, study, units):
                totals.merge(result)
                advance()
    return totals.close()


# ---------------------------------------------------------------------------------------------------
# Members: zero-out runs and scenarios, one task each
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Member:
    """One run of a study: its output file, optionally a zeroed-out region or a ``[[scenarios]]`` entry."""

    output: Path
    zero_out: str | None = None
    scenario: str | None = None


def _member_task(cfg: AirshedConfig, member: Member, threads: int | None) -> Path:
    if threads is not None:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    serial = cfg.model_copy(update={"compute": cfg.compute.model_copy(update={"scheduler": SERIAL})})
    return run_study(serial, output=member.output, zero_out=member.zero_out, progress=False,
                     scenario=member.scenario)


def run_members(cfg: AirshedConfig, members: list[Member]) -> list[Path]:
    """Run several members of a study (each a full serial run) on ``[compute]``'s scheduler, one per task."""
    if cfg.compute.scheduler == SERIAL:
        return [_member_task(cfg, m, cfg.compute.threads) for m in members]
    with dask_client(cfg.compute) as client:
        futures = client.map(_member_task, [cfg] * len(members), members,
                             [worker_threads(cfg.compute)] * len(members), pure=False)
        return client.gather(futures)
