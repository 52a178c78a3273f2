"""Scale a run out: where its work units run (this process or Dask workers) and the merge of their results.

Only the pipeline knows Dask (this module, :mod:`airshed.runner` and the config's memory-size check); kernels,
readers and writers never do. ``[compute] scheduler`` picks where the work units
(:mod:`airshed.pipeline.units`) run: ``"serial"`` (in this process, one after the other), ``"threads"``
(threads of this process), ``"local-cluster"`` (``workers`` processes on this machine, each limited to
``memory_limit``) or ``"tcp://host:port"`` (the workers of a running ``dask.distributed`` scheduler, e.g.
started by dask-jobqueue on Slurm or PBS; they must see the same input files and have airshed installed).

The partition never changes the result (see :mod:`airshed.pipeline.units`). Units reduce inside the worker
(a :class:`~airshed.pipeline.reduction.TaggedAccumulator` over their hours and tags): what travels back is
the unit's hourly concentration, its period-summed tagged fields and its hourly receptor-region series,
never hourly tagged fields (a unit of release windows sends them per window). Results are merged in unit
order (:class:`~airshed.pipeline.accumulation.RunTotals`). A particle run is split into
:func:`unit_count` units of consecutive release windows.
A worker that dies (killed, out of memory) has its units rerun elsewhere by Dask: results are merged only
when a unit has finished, and a rerun gives the same bits, so the output is unaffected; a unit that takes
down ``distributed.scheduler.allowed-failures`` + 1 workers stops the run with :class:`ClusterError` and
no output file is written.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import numba

from airshed.config import AirshedConfig, ComputeConfig, dump_config
from airshed.errors import AirshedInputError
from airshed.outputs.netcdf import IncrementalNetCDF
from airshed.pipeline.accumulation import RunTotals
from airshed.pipeline.progress import ProgressBar
from airshed.pipeline.study import Study, prepare_study
from airshed.pipeline.units import UnitResult, WorkUnit, run_unit, with_starts, work_units

log = logging.getLogger(__name__)

SERIAL, THREADS, LOCAL_CLUSTER = "serial", "threads", "local-cluster"
T = TypeVar("T")
CONNECT_TIMEOUT_S = 20
"""Seconds to wait for a remote scheduler to answer."""


class ClusterError(AirshedInputError):
    """The configured Dask scheduler cannot be reached, or its workers keep dying on a work unit."""


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
    import dask
    from dask.distributed import Client, LocalCluster

    if compute.scheduler == SERIAL:
        raise ValueError("the serial scheduler runs without a Dask client")
    if compute.scheduler in (THREADS, LOCAL_CLUSTER):
        processes = compute.scheduler == LOCAL_CLUSTER
        # worker processes compile into Numba caches of their own (numba issue 4807; airshed.jit)
        mode = os.environ.get("AIRSHED_NUMBA_CACHE", "per-process")
        env = {"AIRSHED_NUMBA_CACHE": mode} if processes else {}
        # workers sample their thread stacks every 10 ms for the dashboard's profile (measured: about 1 % of
        # a worker's CPU over its wall time); nobody reads it here, and the nannies pass this config on
        with dask.config.set({"distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(
                n_workers=compute.workers if processes else 1,
                threads_per_worker=1 if processes else compute.workers,
                processes=processes,
                # an in-process worker measures the memory of this whole process, so a limit on it would
                # pause the run's only worker for good (no message) once the process grows past 80 % of
                # the limit; a threads run is checked against the machine's memory instead (preflight)
                memory_limit=compute.memory_limit if processes else 0,
                dashboard_address=":0",  # a free port: never the 8787 of another cluster
                **({"env": env} if env else {}),
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


UNITS_PER_WORKER = 3
"""Release-window units per worker thread of a particle run (:func:`unit_count`)."""
MAX_WINDOWS_PER_UNIT = 4
"""Most release windows in one unit: a unit keeps each window's period sums (a tagged field, ~0.1 GB on
the 9 km JJJ grid) and hours until it ends, so this bounds a worker's memory whatever the run's length."""


def unit_count(study: Study, worker_slots: int) -> int:
    """How many units a run of a core with state is split into.

    :data:`UNITS_PER_WORKER` per worker slot, at most one per release window, and at least enough for
    :data:`MAX_WINDOWS_PER_UNIT` windows per unit. Windows cost unequally (the last ones of a run follow
    their particles for less time), so a worker that finishes early must find another unit: measured on
    the default case (5 windows, 2 workers), 2 units per worker gave units of 77.7, 69.2, 61.2 and 15.1
    CPU s (one worker 130 s, the other 93 s: at most 1.71x over one worker), one unit per window lets the
    two finish within a window of each other. Each unit interpolates the meteorology of its particles'
    tail itself (measured: 4 units cost 1.06x the CPU of 2 units), so no more units than that.
    """
    if study.core_class.periods_independent:
        return 1  # time chunks of chunk_hours instead
    window = study.core_class.window_periods_of(study.cfg)
    n_windows = -(-study.n_periods // window)
    return max(1, min(n_windows, UNITS_PER_WORKER * worker_slots), -(-n_windows // MAX_WINDOWS_PER_UNIT))


def _results_on_cluster(client, study: Study, units: list[WorkUnit]) -> Iterator[UnitResult]:
    """Run the units on the client's workers; yield their results in unit order as they finish.

    Units are submitted as soon as their starting state is known (:func:`with_starts`).
    """
    from dask.distributed import as_completed
    from distributed.scheduler import KilledWorker

    cfg = study.cfg
    threads = worker_threads(cfg.compute)
    futures = []
    done = as_completed()
    for u in with_starts(study, units):
        future = client.submit(run_unit_task, cfg, study.zero_out, study.scenario, u, threads, pure=False,
                               key=f"airshed-unit-{u.index}-{os.getpid()}-{id(study)}")
        futures.append(future)
        done.add(future)
    waiting: dict[int, UnitResult] = {}
    nxt = 0
    try:
        for future in done:
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


def map_members(compute: ComputeConfig, task: Callable[..., T], arguments: Sequence[tuple],
                progress: bool = True, label: str = "members") -> Iterator[T]:
    """Run ``task(*args)`` for each entry of ``arguments`` where ``[compute]`` says; yield results in order.

    The runs of an ensemble (meteorology members: each a whole study, :mod:`airshed.members`):
    ``"serial"`` and ``"threads"`` run them one after the other in this process (each member writes a run
    file, and HDF5 under netCDF4 is not thread-safe: two members writing from threads of one process
    crash it); ``"local-cluster"`` and a ``tcp://`` scheduler submit each as one Dask task (a member runs
    its own work units serially inside its worker process, with :func:`worker_threads` Numba threads).
    ``task`` must be a module-level function (workers import it). A member that kills every worker it
    runs on stops the ensemble with :class:`ClusterError`.
    """
    arguments = list(arguments)
    if compute.scheduler in (SERIAL, THREADS):
        with ProgressBar(progress, len(arguments), label, unit="members") as advance:
            for args in arguments:
                yield task(*args)
                advance()
        return
    from dask.distributed import as_completed
    from distributed.scheduler import KilledWorker

    threads = worker_threads(compute)
    with ProgressBar(progress, len(arguments), f"{label} ({compute.scheduler})", unit="members") as advance, \
            dask_client(compute) as client:
        futures = [client.submit(_member_task, task, args, threads, pure=False,
                                 key=f"airshed-member-{j}-{os.getpid()}-{id(arguments)}")
                   for j, args in enumerate(arguments)]
        index = {f.key: j for j, f in enumerate(futures)}
        done: dict[int, T] = {}
        nxt = 0
        try:
            for future in as_completed(futures):
                try:
                    done[index[future.key]] = future.result()
                except KilledWorker:
                    raise ClusterError(
                        f"{label}: member {index[future.key]} killed every Dask worker it ran on (out of "
                        f"memory at compute.memory_limit = {compute.memory_limit!r}, or stopped)") from None
                future.release()
                advance()
                while nxt in done:
                    yield done.pop(nxt)
                    nxt += 1
        finally:
            for future in futures:
                future.cancel()


def _member_task(task: Callable[..., T], args: tuple, threads: int | None) -> T:
    """Dask task: one member with ``threads`` Numba threads."""
    if threads is not None:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    return task(*args)


def run_core(study: Study, run_file: IncrementalNetCDF, progress: bool = True) -> RunTotals:
    """Run the work units of ``study`` where ``[compute]`` says; merge them in order into ``run_file``."""
    cfg = study.cfg
    core = study.core_class
    serial = cfg.compute.scheduler == SERIAL
    window = getattr(core, "window_periods_of", lambda cfg: 1)(cfg)
    totals = RunTotals(study, run_file)
    if serial:
        units = work_units(core, study.n_periods, cfg.compute.chunk_hours, window, 1)
        with ProgressBar(progress, study.n_periods, f"{cfg.run.core} core", unit="periods") as advance:
            for u in units:
                # a unit of every release window writes each hour as soon as it is done, time chunks are
                # written a chunk at a time when merged
                sink = totals.write_hour if u.windows is not None else None
                totals.merge(run_unit(study, u, sink, advance, totals.merge_window))
        return totals.close()
    with dask_client(cfg.compute) as client:
        slots = sum(client.nthreads().values()) or 1
        units = work_units(core, study.n_periods, cfg.compute.chunk_hours, window, unit_count(study, slots))
        label = f"{cfg.run.core} core, {len(units)} units ({cfg.compute.scheduler})"
        with ProgressBar(progress, len(units), label, unit="units") as advance:
            _remember(study)  # the threads scheduler reuses this process's inputs
            unit_cpu = []
            for result in _results_on_cluster(client, study, units):
                totals.merge(result)
                unit_cpu.append(result.cpu_s)
                advance()
    log.info("work units: %d, CPU s in the workers per unit: %s (sum %.2f)", len(units),
             json.dumps([round(c, 3) for c in unit_cpu]), sum(unit_cpu))
    return totals.close()
