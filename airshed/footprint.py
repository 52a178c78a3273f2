"""The receptor-oriented (backward) run: config -> stations -> backward particles -> footprints -> run file.

Entry point :func:`run_footprints` (``airshed footprint CONFIG`` or ``airshed run CONFIG --direction
backward``): reads the same inputs as a forward run (:func:`airshed.pipeline.study.prepare_study`),
releases particles in the receptor volume of every station of ``[receptors] stations`` (or
``--stations FILE``) over each ``[footprint] averaging_h`` period, moves them back to the start of the
run with the forward run's transport, removal and chemistry (:class:`airshed.model.backward.BackwardRun`),
folds their footprints with the emissions of every emission period as it goes (area sources in the 50 m
source layer of their cell, stacks in a layer around their effective height), and writes one CF NetCDF
file with the footprints and the folded concentrations per source region x sector x species (the
variables of a forward run's receptor series, so ``airshed scenario``, ``cooperate`` and ``performance``
read it unchanged).

:func:`forward_receptor_series` samples the same receptor volumes in a forward run
(:class:`airshed.model.backward.ReceptorSampledRun`) and :func:`duality` compares the two directions
entry by entry with their Monte-Carlo standard errors.

Receptor volume (the same in both directions): a square of ``receptor_width_m`` (default the grid cell size)
centred on the station, over the layer of ``receptor_depth_m`` (default the forward sampling depth) centred
on the station's height above ground and lowered to start at the ground (a 10 m intake and 50 m depth give
0-50 m, the layer a forward run's concentration averages over).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from airshed.config import AirshedConfig, dump_config
from airshed.cores.lagrangian import LagrangianCore
from airshed.cores.stacks import stack_release_height
from airshed.errors import AirshedInputError
from airshed.grids.grid import Grid
from airshed.inputs.observations import read_stations
from airshed.model.apportionment import transboundary_metrics
from airshed.model.backward import (
    BackwardRun,
    ReceptorSampledRun,
    fold_area_sources,
    receptor_boxes,
    stack_layers,
    time_reversed,
)
from airshed.model.release import AREA_RELEASE_DEPTH_M, SOURCE_ID_BITS, ReleaseTable
from airshed.physics.adjoint import AIR, AdjointSlots, adjoint_slots
from airshed.physics.mechanism import Mechanism
from airshed.pipeline.inputs import file_checksums
from airshed.pipeline.progress import ProgressBar
from airshed.pipeline.study import Study, emitted_rates, prepare_study, run_periods
from airshed.preflight import check_output_writable, check_stations, check_zero_out, output_path, region_names
from airshed.runner import set_numba_threads
from airshed.scenarios import emission_factors

log = logging.getLogger(__name__)

#: Offset added to the run's seed for the backward particles: their random numbers are then independent of
#: a forward run's with the same seed (the two directions are compared as independent estimates).
BACKWARD_SEED_OFFSET = 0x0BAC_C0A2D
#: Depth of the layer in which the footprint is taken, m: where area sources release their particles.
SOURCE_LAYER_M = AREA_RELEASE_DEPTH_M


@dataclass(frozen=True)
class Receptors:
    """Stations and their receptor volumes on the model grid (arrays of one value per station).

    ``x``, ``y``: projected centre, m; ``half_width``: half the box side, m; ``z_bottom``, ``z_top``: the
    layer, m above ground; ``region``: index of the source region whose boundary holds the station (-1 for
    ``outside``); ``number``: position in the station list, the part of the particle ids that names the
    station (so a run over some of the stations moves their particles as the run over all does).
    """

    ids: tuple[str, ...]
    names: tuple[str, ...]
    lon: np.ndarray
    lat: np.ndarray
    height: np.ndarray
    x: np.ndarray
    y: np.ndarray
    half_width: np.ndarray
    z_bottom: np.ndarray
    z_top: np.ndarray
    region: np.ndarray
    number: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, index) -> Receptors:
        """Return the receptors ``index`` (indices), in that order."""
        index = np.asarray(index, dtype=np.int64)
        return Receptors(tuple(self.ids[i] for i in index), tuple(self.names[i] for i in index),
                         *(getattr(self, f)[index] for f in ("lon", "lat", "height", "x", "y", "half_width",
                                                              "z_bottom", "z_top", "region", "number")))


def receptors_from_table(table: pd.DataFrame, grid: Grid, regions, width_m: float, depth_m: float,
                         source: str = "station list") -> Receptors:
    """Receptor volumes of a station table (:func:`airshed.inputs.observations.read_stations`) on a grid.

    Raises
    ------
    AirshedInputError
        A station whose receptor volume does not lie inside the grid (named with ``source``).
    """
    if not (width_m > 0 and depth_m > 0):
        raise AirshedInputError(f"receptor volume: width {width_m} m and depth {depth_m} m must be > 0")
    lon = table["lon"].to_numpy(dtype=float)
    lat = table["lat"].to_numpy(dtype=float)
    x, y = (np.asarray(v, dtype=float) for v in grid.lonlat_to_xy(lon, lat))
    half = 0.5 * width_m
    x_end, y_end = grid.x0 + grid.nx * grid.dx, grid.y0 + grid.ny * grid.dx
    inside = (np.isfinite(x) & np.isfinite(y) & (x - half >= grid.x0) & (x + half <= x_end)
              & (y - half >= grid.y0) & (y + half <= y_end))
    if not inside.all():
        k = int(np.flatnonzero(~inside)[0])
        raise AirshedInputError(
            f"{source}: station {table['id'].iloc[k]!r} at lon={lon[k]:g}, lat={lat[k]:g}: its receptor "
            f"volume ({width_m:g} m wide) does not lie inside the model grid ({int((~inside).sum())} "
            "station(s)); remove it or widen grid.bbox")
    height = table["height_m"].to_numpy(dtype=float)
    z_bottom = np.maximum(height - 0.5 * depth_m, 0.0)
    names = [regions.region_of_point(lo, la) for lo, la in zip(lon, lat, strict=True)]  # exact polygons
    region = np.array([regions.names.index(n) if n != "outside" else -1 for n in names])
    return Receptors(tuple(table["id"]), tuple(table["name"]), lon, lat, height, x, y,
                     np.full(x.size, half), z_bottom, z_bottom + depth_m, region.astype(np.int64),
                     np.arange(x.size, dtype=np.int64))


def receptor_volume(cfg: AirshedConfig, grid: Grid) -> tuple[float, float]:
    """Width and depth of the receptor volume, m (``[footprint]`` or the defaults)."""
    f = cfg.footprint
    width = f.receptor_width_m if f.receptor_width_m is not None else float(grid.dx)
    depth = f.receptor_depth_m if f.receptor_depth_m is not None else float(cfg.lagrangian.sampling_depth_m)
    return float(width), float(depth)


NO_STATIONS = ("no stations: set `receptors.stations` in the config or pass --stations FILE (a CSV with "
               "columns id, name, lon, lat and optionally height_m)")


def study_receptors(study: Study, stations: Path | None = None) -> Receptors:
    """Return the receptors of a study: ``stations`` or ``[receptors] stations``, on the study's grid."""
    cfg = study.cfg
    path = stations if stations is not None else cfg.receptors.stations
    if path is None:
        raise AirshedInputError(NO_STATIONS)
    width, depth = receptor_volume(cfg, study.grid)
    return receptors_from_table(read_stations(path), study.grid, study.inputs.regions, width, depth,
                                source=f"stations ({path})")


def averaging_periods(study: Study) -> int:
    """Emission periods per receptor averaging period (checked against the run and the emission period)."""
    cfg = study.cfg
    if cfg.run.core != "lagrangian":
        raise AirshedInputError("footprints come from the particle core: set `run.core` = \"lagrangian\" "
                                "(its [lagrangian] transport and [chemistry] are used backward)")
    avg, period_h = cfg.footprint.averaging_h, study.period_h
    if avg % period_h or cfg.run.hours % avg:
        raise AirshedInputError(
            f"`footprint.averaging_h` = {avg}: expected a multiple of `lagrangian.output_interval_h` "
            f"({period_h} h) that divides the run ({cfg.run.hours} h)")
    return avg // period_h


def met_window(study: Study, k: int, z_levels: np.ndarray, met=None):
    """Return the particle core's met window of emission period k (forward time, s since the start).

    The fields at the two ends of the period, linear in time between them, as the forward core reads them.
    """
    from airshed.model.lagrangian import MetWindow

    edges, met = study.edges, (met if met is not None else study.met)
    met0, met1 = met.at(edges[k]), met.at(edges[k + 1])
    seconds = study.period_h * 3600.0

    def both(name):
        return np.stack([met0[name].values, met1[name].values])

    window = MetWindow(times=np.array([k * seconds, (k + 1) * seconds]), z_levels=z_levels, u=both("u"),
                       v=both("v"), w=both("w"), mixing_height=both("blh"), ustar=both("ustar"),
                       wstar=both("wstar"), inv_L=1.0 / both("obukhov_length"), precip=both("precip"))
    return window, met0


class BackwardMet:
    """Meteorology read in day-long windows that end at the requested time (the backward run walks back)."""

    def __init__(self, met, window_hours: int = 24, max_windows: int = 2):
        self.met, self.window, self.max_windows = met, np.timedelta64(window_hours, "h"), max_windows
        self._windows: dict = {}

    def at(self, t):
        """Meteorology at ``t``, reading [t - window, t] when no kept window holds it."""
        t = np.datetime64(t, "ns")
        for ds in self._windows.values():
            if ds.time.values[0] <= t <= ds.time.values[-1]:
                return ds.sel(time=t)
        if len(self._windows) >= self.max_windows:
            self._windows.pop(next(iter(self._windows)))
        ds = self.met.window(max(t - self.window, self.met.times[0]), t)
        self._windows[t] = ds
        return ds.sel(time=t)


# --------------------------------------------------------------------------------------------------
# The backward run
# --------------------------------------------------------------------------------------------------
@dataclass
class BackwardResult:
    """What a backward run computed (P averaging periods, Q stations, B batches, E emitted species).

    ``contribution[P, Q, B, ntag, nslot]``: each batch's folded contribution per tag and slot, ug m-3 (an
    estimate from that batch's particles alone); ``footprint[P, Q, npath, ncell]`` and
    ``stack_footprint[P, Q, npath, nstack]``: s (all batches); ``in_domain_at_start[P, Q]``: fraction of the
    released particles still inside the domain at the start of the run; ``emitted[ntag, E]``: kg emitted
    over the run; ``particles[P, Q]``: particles released.
    """

    slots: AdjointSlots
    pathways: np.ndarray
    contribution: np.ndarray
    footprint: np.ndarray
    stack_footprint: np.ndarray
    in_domain_at_start: np.ndarray
    emitted: np.ndarray
    particles: np.ndarray
    particles_per_hour: int


def run_backward(study: Study, receptors: Receptors, progress: bool = False) -> BackwardResult:
    """Run the backward particles of ``receptors`` over the study and fold their footprints (module doc)."""
    cfg, em, grid = study.cfg, study.emissions, study.grid
    per_avg = averaging_periods(study)
    n_avg = study.n_periods // per_avg
    nq, nb = len(receptors), cfg.footprint.batches
    period_s = study.period_h * 3600.0
    # particles per station, period and batch; the same in every emission period of an averaging period
    per_emission_period = -(-cfg.footprint.particles_per_period // (per_avg * nb))
    mechanism = study.mechanism
    core = LagrangianCore(cfg, study.inputs, mechanism)  # forward parameters (moves no particles)
    params = core.params
    slots = adjoint_slots(mechanism.tracers, params.conversions)
    _, slot_emitted = slots.output_matrix(mechanism.output_composition, mechanism.output_species,
                                          mechanism.emitted)
    pathways = np.array([0] + [s for s in range(slots.size) if slot_emitted[s] >= 0], dtype=np.int64)
    z_levels = np.asarray(cfg.meteorology.heights_m, dtype=float)
    n_rows = n_avg * nq * nb
    run = BackwardRun(grid.x0, grid.y0, grid.dx, grid.nx, grid.ny, float(z_levels[-1]), n_rows, params, slots,
                      (cfg.run.seed + BACKWARD_SEED_OFFSET) % (1 << 64), SOURCE_LAYER_M, em.points.n)
    ncell = grid.nx * grid.ny
    contribution = np.zeros((n_rows, em.ntag, slots.size))
    footprint = np.zeros((n_avg, nq, pathways.size, ncell))
    stack_fp = np.zeros((n_avg, nq, pathways.size, em.points.n))
    emitted = np.zeros((em.ntag, len(mechanism.emitted)))
    row_period = np.repeat(np.arange(n_avg), nq * nb)
    # particle ids name the station by its position in the station list, and the batch
    source_id = (receptors.number[:, None] * nb + np.arange(nb)[None, :]).ravel()
    if source_id.max(initial=0) >= 1 << SOURCE_ID_BITS:
        raise AirshedInputError(f"too many stations x batches for the particle ids (at most "
                                f"2**{SOURCE_ID_BITS})")
    weights = np.tile(slots.initial_weights(), (nq * nb, 1))
    n_per_source = np.full(nq * nb, per_emission_period, dtype=np.int64)
    area_cell = (em.area.row.astype(np.int64) * grid.nx + em.area.col).astype(np.int64)
    area_tag = em.area_tag.astype(np.int64)
    prow, pcol = core.prow, core.pcol
    scale = 1.0 / (grid.dx * grid.dx * SOURCE_LAYER_M)
    selected = list(cfg.run.species)
    t_end = study.n_periods * period_s
    met = BackwardMet(study.inputs.met)

    with ProgressBar(progress, study.n_periods, "backward particles", unit="h") as advance:
        for k in reversed(range(study.n_periods)):
            p = k // per_avg
            window, met0 = met_window(study, k, z_levels, met)
            rows = p * nq * nb + np.arange(nq * nb)
            table = ReleaseTable(
                np.repeat(receptors.x, nb), np.repeat(receptors.y, nb), np.repeat(receptors.half_width, nb),
                np.repeat(receptors.z_bottom, nb), np.repeat(receptors.z_top, nb), rows,
                np.zeros((nq * nb, slots.size)), source_id=source_id)
            layers = None
            if em.points.n:
                pp = cfg.plume
                heights = stack_release_height(em.points, met0, prow, pcol, plume_rise=pp.plume_rise,
                                               stack_tip_downwash=pp.stack_tip_downwash,
                                               min_wind_speed=pp.min_wind_speed_m_s)
                layers = stack_layers(em.points.x, em.points.y, heights, SOURCE_LAYER_M, grid.x0, grid.y0,
                                      grid.dx, grid.nx, grid.ny)
            tau0 = t_end - (k + 1) * period_s
            run.advance(time_reversed(window, t_end), table, tau0, tau0 + period_s, n_per_source, weights,
                        layers)
            # the emissions of period k, as the forward core takes them (pipeline.study.run_periods)
            t0, t1 = study.edges[k], study.edges[k + 1]
            area_rates, point_rates = em.rates_at(pd.Timestamp(t0 + (t1 - t0) / 2))
            sa, sp = emission_factors(study.chosen, em, t0, t1, study.edges[0], study.edges[-1])
            emitted_species = mechanism.emitted
            area_rates = emitted_rates(em, area_rates, emitted_species, selected) * (study.fa[:, None] * sa)
            point_rates = emitted_rates(em, point_rates, emitted_species, selected) * (study.fp[:, None] * sp)
            np.add.at(emitted, em.area_tag, area_rates * period_s)
            np.add.at(emitted, em.point_tag, point_rates * period_s)
            active = row_period >= p
            fold_area_sources(run.footprint, active, area_cell, area_tag, np.ascontiguousarray(area_rates),
                              slot_emitted, scale, contribution)
            if em.points.n:
                stack_rate = np.where(slot_emitted[None, :] >= 0,
                                      point_rates[:, np.maximum(slot_emitted, 0)], 0.0)  # (nstack, nslot)
                per_stack = run.stack_footprint * stack_rate.T[None] * scale  # (rows, nslot, nstack)
                # stacks in order (np.add.at adds repeated tags one after the other: a fixed order)
                np.add.at(contribution, (slice(None), em.point_tag), per_stack.transpose(0, 2, 1))
            footprint += run.footprint[:, pathways].reshape(n_avg, nq, nb, pathways.size, ncell).sum(axis=2)
            stack_fp += run.stack_footprint[:, pathways].reshape(n_avg, nq, nb, pathways.size, -1).sum(axis=2)
            advance()
    released = per_emission_period * per_avg  # per station, period and batch
    alive = run.alive_per_row().reshape(n_avg, nq, nb).sum(axis=2)
    # each batch's own estimate: its particle-seconds folded with the emissions over its particles, kg -> ug
    result_contribution = contribution.reshape(n_avg, nq, nb, em.ntag, slots.size) * (1e9 / released)
    return BackwardResult(
        slots=slots, pathways=pathways, contribution=result_contribution,
        footprint=footprint / (released * nb), stack_footprint=stack_fp / (released * nb),
        in_domain_at_start=alive / (released * nb), emitted=emitted,
        particles=np.full((n_avg, nq), released * nb, dtype=np.int64),
        particles_per_hour=per_emission_period * nb // study.period_h)


def station_series(result: BackwardResult, mechanism: Mechanism) -> tuple[np.ndarray, np.ndarray | None]:
    """Folded concentrations per output species: (mean, standard error or None), each [P, Q, ntag, S] ug m-3.

    The mean is over the batches (each an independent estimate); the standard error is that of the mean
    (sample standard deviation of the batch estimates over sqrt(B)), None with one batch.
    """
    per_batch = backward_per_batch(result, mechanism)
    nb = per_batch.shape[2]
    mean = per_batch.mean(axis=2)
    stderr = per_batch.std(axis=2, ddof=1) / np.sqrt(nb) if nb > 1 else None
    return mean, stderr


def run_footprints(cfg: AirshedConfig, output: Path | None = None, stations: Path | None = None,
                   progress: bool = True, zero_out: str | None = None, scenario: str | None = None) -> Path:
    """Run the backward particles of a config's stations and write the footprint file; returns its path.

    Parameters
    ----------
    cfg
        Validated configuration (``run.core`` = "lagrangian").
    output
        Overrides ``run.output``.
    stations
        Station list CSV, instead of ``[receptors] stations``.
    progress
        Show progress bars.
    zero_out, scenario
        As :func:`airshed.runner.run_study`: emissions of a region switched off, or a scenario's changes (the
        folding applies them; the particles do not depend on them).
    """
    from airshed.jit import thread_info
    from airshed.outputs.footprint_file import footprint_dataset
    from airshed.outputs.netcdf import write_netcdf_atomic

    wall0 = time.perf_counter()
    set_numba_threads(cfg.compute.threads)
    path = output_path(cfg, output)
    check_output_writable(path)
    # the arguments before any input is read (reading the met of a long run takes minutes)
    check_zero_out(zero_out, region_names(cfg))
    if stations is None and cfg.receptors.stations is None:
        raise AirshedInputError(NO_STATIONS)
    check_stations(cfg, stations)
    study = prepare_study(cfg, zero_out, scenario, progress)
    averaging_periods(study)
    receptors = study_receptors(study, stations)
    result = run_backward(study, receptors, progress)
    width, depth = receptor_volume(cfg, study.grid)
    station_file = stations if stations is not None else cfg.receptors.stations
    attrs = {
        "input_files": json.dumps(file_checksums(study.inputs.input_files + [Path(station_file)])),
        "zero_out_region": zero_out or "",
        "scenario": scenario or "",
        "receptor_width_m": width,
        "receptor_depth_m": depth,
        **{k: str(v) for k, v in thread_info().items()},
    }
    ds = footprint_dataset(study, receptors, result, *station_series(result, study.mechanism), SOURCE_LAYER_M,
                           transboundary_metrics, dump_config(cfg), attrs)
    ds.attrs["wall_time_s"] = round(time.perf_counter() - wall0, 3)
    write_netcdf_atomic(ds, path, compression_level=cfg.outputs.compression_level)
    log.info("wrote %s in %.1f s", path, time.perf_counter() - wall0)
    if cfg.outputs.maps:
        from airshed.outputs.footprint_maps import write_footprint_figures

        write_footprint_figures(path)
    if cfg.outputs.report:
        log.warning("outputs.report: the HTML report covers forward runs; a footprint run writes maps only")
    return path


# --------------------------------------------------------------------------------------------------
# The forward run sampled in the same receptor volumes, and the duality check
# --------------------------------------------------------------------------------------------------
def forward_receptor_series(study: Study, receptors: Receptors, batches: int, progress: bool = False
                            ) -> np.ndarray:
    """Forward particle run sampled in the receptor volumes: per-batch estimates [P, Q, B, ntag, S] ug m-3.

    The study's forward core (every source region, the forward seed) with each release window's particles
    in a :class:`~airshed.model.backward.ReceptorSampledRun` over the receptors' boxes, all adding to one
    box sum; averaged over the
    ``[footprint] averaging_h`` periods. Each batch's estimate comes from its random group of particles
    alone (scaled by B), so their mean is the estimate and their spread its standard error.
    """
    cfg, em, grid = study.cfg, study.emissions, study.grid
    per_avg = averaging_periods(study)
    n_avg = study.n_periods // per_avg
    core = study.core()
    boxes = receptor_boxes(receptors.x, receptors.y, receptors.half_width, receptors.z_bottom,
                           receptors.z_top, grid.x0, grid.y0, grid.dx, grid.nx, grid.ny)
    z_top = float(cfg.meteorology.heights_m[-1])
    tracers = study.mechanism.tracers
    box_sum = np.zeros((len(receptors), batches, em.ntag, len(tracers)))

    def sampled_run(first_period: int) -> ReceptorSampledRun:
        run = ReceptorSampledRun(grid.x0, grid.y0, grid.dx, grid.nx, grid.ny, z_top, em.ntag, core.params,
                                 cfg.run.seed, boxes, batches, first_period=first_period)
        run.box_sum = box_sum  # every window adds to the one sum
        return run

    core.new_run = sampled_run
    sums = np.zeros((n_avg, len(receptors), batches, em.ntag, len(tracers)))
    done = [0]

    def collect() -> None:
        sums[done[0] // per_avg] += box_sum
        box_sum[:] = 0.0
        done[0] += 1

    acc = study.accumulator(study.n_periods, tracers)
    with ProgressBar(progress, study.n_periods, "forward particles", unit="h") as advance:
        def after() -> None:
            collect()
            advance()

        run_periods(study, core, acc, range(study.n_periods), advance=after)
    volume = (2.0 * receptors.half_width) ** 2 * (receptors.z_top - receptors.z_bottom)
    seconds = cfg.footprint.averaging_h * 3600.0
    conc = sums * (1e9 * batches / seconds) / volume[None, :, None, None, None]
    return np.einsum("pqbtr,or->pqbto", conc, study.mechanism.output_matrix(tracers))


@dataclass
class DualityTable:
    """Forward and backward source-region x receptor matrices of one species, with their standard errors.

    ``forward``, ``backward``, ``forward_se``, ``backward_se``: [Q, R] ug m-3, run-mean over the averaging
    periods, sectors summed; ``z``: (backward - forward) / combined standard error. Each direction's
    standard error is the spread of its batch estimates, but at least its *resolution* for that source
    region, r: the contribution of its smallest detection (the smallest nonzero batch estimate of the region
    over every receptor, over the number of batches), the error of an entry no particle reached. A forward
    entry is moreover a Poisson count: each forward particle has a tiny chance of crossing the receptor box,
    so an entry is a sum over a handful of hits whose spread over a few batches (or none) does not measure
    its error. A compound Poisson sum with expectation m and hits of at least r has a variance of at least
    m r, so the forward error is at least sqrt(m r), m the mean of the two directions' values (the score
    test's error under the hypothesis that they agree). A backward particle visits a source region often,
    so the bound does not hold there and its batches' spread is used. ``testable``: False where a direction
    never detected the region at any receptor (no resolution to compare with); those entries have z = 0 and
    are reported apart (:meth:`summary`).
    """

    species: str
    receptors: tuple[str, ...]
    sources: tuple[str, ...]
    forward: np.ndarray
    backward: np.ndarray
    forward_se: np.ndarray
    backward_se: np.ndarray
    z: np.ndarray
    testable: np.ndarray

    @property
    def total_ratio(self) -> float:
        """Backward over forward of the sum of all entries (the emission-weighted total)."""
        return float(self.backward.sum() / self.forward.sum())

    @property
    def max_abs_z(self) -> float:
        """Largest |z| over the testable entries."""
        return float(np.abs(self.z[self.testable]).max()) if self.testable.any() else 0.0

    def summary(self) -> dict:
        """Return the table's statistics as a JSON-able dict."""
        nonzero = ((self.forward != 0) | (self.backward != 0)) & self.testable
        total = np.maximum(self.forward.sum(axis=1, keepdims=True), 1e-300)
        apart = ~self.testable & ((self.forward != 0) | (self.backward != 0))
        share = np.maximum(self.forward, self.backward) / total
        return {"species": self.species, "entries": int(nonzero.sum()), "max_abs_z": self.max_abs_z,
                "within_3_se": int((np.abs(self.z[nonzero]) <= 3.0).sum()),
                "within_2_se": int((np.abs(self.z[nonzero]) <= 2.0).sum()),
                "mean_z2": float(np.mean(self.z[nonzero] ** 2)) if nonzero.any() else 0.0,
                "total_forward": float(self.forward.sum()), "total_backward": float(self.backward.sum()),
                "total_ratio": self.total_ratio, "untestable_entries": int(apart.sum()),
                "untestable_max_share_of_receptor_total": float(share[apart].max()) if apart.any() else 0.0}


def duality(forward: np.ndarray, backward: np.ndarray, species: str, output_species: tuple[str, ...],
            receptor_names: tuple[str, ...], source_names: tuple[str, ...], n_sectors: int) -> DualityTable:
    """Compare per-batch estimates [P, Q, B, ntag, S] of the two directions for one output species.

    ``output_species`` names the last axis (the mechanism's output species).
    """
    s = output_species.index(species)

    def matrix(per_batch):
        P, Q, B, T, _ = per_batch.shape
        by_region = per_batch[..., s].reshape(P, Q, B, T // n_sectors, n_sectors).sum(axis=4).mean(axis=0)
        mean = by_region.mean(axis=1)
        se = by_region.std(axis=1, ddof=1) / np.sqrt(B)
        smallest = np.where(by_region > 0, by_region, np.inf).min(axis=(0, 1)) / B  # per source region
        return mean, se, smallest

    f, f_se, f_res = matrix(forward)
    b, b_se, b_res = matrix(backward)
    f_floor, b_floor = (np.where(np.isfinite(r), r, 0.0)[None, :] for r in (f_res, b_res))
    pooled = 0.5 * (f + b)  # the entry's value if the two directions agree
    fse = np.maximum(f_se, np.maximum(f_floor, np.sqrt(pooled * f_floor)))
    bse = np.maximum(b_se, b_floor)
    testable = np.broadcast_to(np.isfinite(f_res) & np.isfinite(b_res), f.shape).copy()
    combined = np.sqrt(fse ** 2 + bse ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(testable & (combined > 0), (b - f) / combined, 0.0)
    return DualityTable(species, tuple(receptor_names), tuple(source_names), f, b, fse, bse, z, testable)


def backward_per_batch(result: BackwardResult, mechanism: Mechanism) -> np.ndarray:
    """Return the backward run's per-batch estimates per output species, [P, Q, B, ntag, S] ug m-3."""
    to_output, _ = result.slots.output_matrix(mechanism.output_composition, mechanism.output_species,
                                              mechanism.emitted)
    return np.einsum("pqbts,os->pqbto", result.contribution, to_output)


__all__ = ["AIR", "BackwardResult", "DualityTable", "Receptors", "backward_per_batch", "duality",
           "forward_receptor_series", "run_backward", "run_footprints", "station_series", "study_receptors"]
