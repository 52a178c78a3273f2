"""One run end to end: config -> study -> work units -> the run file (and its figures and report).

The stages live in :mod:`airshed.pipeline` (inputs, study, reduction, work units, accumulation) and
:mod:`airshed.scale` (where the units run); this module opens the run file, runs the units into it and
writes the period variables and the provenance.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from pathlib import Path

import numba
import numpy as np
import xarray as xr

from airshed.config import AirshedConfig, dump_config
from airshed.jit import thread_info
from airshed.outputs.netcdf import IncrementalNetCDF
from airshed.outputs.runfile import (
    HOURLY_VARIABLES,
    STATION_VARIABLES,
    run_file_skeleton,
    run_summary_dataset,
    with_stations,
)
from airshed.pipeline.accumulation import check_budget, summarize_run
from airshed.pipeline.inputs import Inputs, file_checksums
from airshed.pipeline.progress import ProgressBar
from airshed.pipeline.study import prepare_study
from airshed.pipeline.units import single_threaded_blas
from airshed.preflight import preflight_run
from airshed.scale import SERIAL, run_core, worker_threads

log = logging.getLogger(__name__)


def set_numba_threads(threads: int | None) -> None:
    """Use ``threads`` Numba threads (at most the configured maximum; None: all)."""
    n = numba.config.NUMBA_NUM_THREADS if threads is None else min(threads, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(max(1, n))


def unit_thread_info(cfg: AirshedConfig) -> dict:
    """:func:`~airshed.jit.thread_info` with ``numba_threads`` the threads each work unit ran on.

    A Dask run's units run in the workers with :func:`~airshed.scale.worker_threads` threads each (a
    remote scheduler's workers choose their own), not with this process's count.
    """
    info = thread_info()
    if cfg.compute.scheduler != SERIAL:
        threads = worker_threads(cfg.compute)
        info["numba_threads"] = threads if threads is not None else "set by each Dask worker"
    return info


def run_study(cfg: AirshedConfig, output: Path | None = None, zero_out: str | None = None,
              progress: bool = True, scenario: str | None = None, inputs: Inputs | None = None) -> Path:
    """Run one study end to end and write its run file; returns the file's path.

    Parameters
    ----------
    cfg
        Validated configuration.
    output
        Overrides ``run.output``.
    zero_out
        Name of a region whose emissions are removed (the brute-force check of the attribution).
    progress
        Show a progress bar.
    scenario
        Name of a ``[[scenarios]]`` entry of ``cfg`` whose emission changes are applied (a full scenario run).
    inputs
        The inputs of ``cfg`` already read (:func:`airshed.pipeline.inputs.read_inputs`); read when None.
    """
    wall0 = time.perf_counter()
    set_numba_threads(cfg.compute.threads)
    path = preflight_run(cfg, output)  # output writable, disk space and memory, before any input is read
    study = prepare_study(cfg, zero_out, scenario, progress, inputs)
    inputs, em, grid, mechanism = study.inputs, study.emissions, study.grid, study.mechanism
    population = inputs.population if inputs.population is not None else np.zeros(grid.shape)
    fractions = np.asarray(inputs.regions.fractions)
    skeleton = run_file_skeleton(grid, study.edges, tuple(inputs.regions.names), tuple(em.sectors),
                                 mechanism, population, fractions)
    hourly = HOURLY_VARIABLES
    if study.stations is not None:
        s = study.stations
        skeleton = with_stations(skeleton, s.ids, s.names, s.lon, s.lat)
        hourly = HOURLY_VARIABLES | STATION_VARIABLES

    with IncrementalNetCDF(path, skeleton, hourly, cfg.outputs.compression_level,
                           cfg.outputs.time_chunk_hours) as run_file:
        result = run_core(study, run_file, progress)
        mass_budget, budget_error = check_budget(result.budget)
        with single_threaded_blas():
            summary = summarize_run(
                result.contribution_sum, result.receptor_contribution_sum, study.n_periods, em.nsector,
                study.w_area, emission_total=result.emitted.reshape(len(em.regions), em.nsector, -1) / 1000.0,
                population=population, region_fraction=fractions, own_source=np.array(study.receptors),
                mechanism=mechanism, mass_budget=mass_budget,
            )
        attrs: dict = {}
        if result.class_receptor_contribution_sum is not None:  # particle sampling classes
            from airshed.uncertainty.sampling import sampling_errors

            errors = sampling_errors(
                result.class_receptor_contribution_sum, result.class_contribution_sum, study.n_periods,
                em.nsector, np.array(study.receptors), summary.population_region, mechanism,
                list(em.regions), [em.regions[q] for q in study.receptors], cfg.lagrangian.particles_per_hour)
            summary.extra.update(errors.variables)
            attrs.update(errors.attrs)
        attrs |= {
            "run_name": cfg.run.name,
            "core": cfg.run.core,
            "seed": cfg.run.seed,
            "start": cfg.run.start.isoformat(),
            "end": cfg.run.end.isoformat(),
            "time_coverage_start": cfg.run.start.isoformat(),
            "time_coverage_end": cfg.run.end.isoformat(),
            "zero_out_region": zero_out or "",
            "scenario": scenario or "",
            "airshed_config": dump_config(cfg),
            "input_files": json.dumps(file_checksums(inputs.input_files)),
            "calm_hours": result.calm_hours,
            "mass_budget_max_relative_error": budget_error,
            "met_derived": json.dumps(getattr(inputs.met, "derived", {})),
            "met_adjustments": json.dumps(result.met_adjustments.totals()),
            **({"station_sampling": study.stations.method} if study.stations is not None else {}),
            **{k: str(v) for k, v in unit_thread_info(cfg).items()},
        }
        rest = run_summary_dataset(summary, skeleton, attrs, mechanism,
                                   budget_tracers=result.tracers if mass_budget is not None else None)
        rest.attrs["wall_time_s"] = round(time.perf_counter() - wall0, 3)
        # the inventory ensemble goes into the file before it appears: an interrupted run leaves no run
        # file without the ranges its config asks for
        run_file.finish(rest, complete=partial(_add_inventory_ensemble, cfg) if cfg.uncertainty.members
                        else None)
    log.info("wrote %s in %.1f s", path, time.perf_counter() - wall0)
    write_requested_documents(cfg, path, progress)
    return path


def _add_inventory_ensemble(cfg: AirshedConfig, unpublished: Path) -> None:
    from airshed.uncertainty.ensemble import add_inventory_ensemble

    add_inventory_ensemble(unpublished, cfg, in_place=True)


def write_requested_documents(cfg: AirshedConfig, run_path: Path, progress: bool = False) -> None:
    """Figures and the HTML report of a finished run, when ``[outputs]`` asks for them."""
    steps = int(cfg.outputs.maps) + int(cfg.outputs.report)
    if not steps:
        return
    bar = ProgressBar(progress, steps, "figures and report", unit="steps")
    drawn: dict[str, bytes] | None = {} if cfg.outputs.report else None  # each figure drawn once
    with xr.open_dataset(run_path) as ds, bar as advance:
        if cfg.outputs.maps:
            from airshed.outputs.plots import write_figures
            from airshed.outputs.report import REPORT_DPI

            # write_figures makes the folder, and removes it again if no figure could be written
            folder = run_path.with_name(f"{run_path.stem}_figures")
            for figure in write_figures(ds, folder, report_pngs=drawn, report_dpi=REPORT_DPI):
                log.info("wrote %s", figure)
            advance()
        if cfg.outputs.report:
            from airshed.outputs.report import write_report

            log.info("wrote %s", write_report(ds, run_path.with_suffix(".html"), run_path=run_path,
                                              figure_pngs=drawn or None))
            advance()
