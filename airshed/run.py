"""The one pipeline: config -> inputs -> a core -> apportionment -> run file.

Everything that wires pieces together lives here and only here: readers produce arrays on the grid,
kernels take plain arrays, writers take arrays. Cores hand back, for every hour, the concentration of
each tracer split by tag (tag = source region x sector); :class:`TaggedAccumulator` reduces those to the
run file's compact layout (period-mean tagged fields, hourly tagged receptor-region means).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import xarray as xr

from airshed import __version__
from airshed.config import EMITTED_SPECIES, TRACERS, AirshedConfig, dump_config
from airshed.errors import AirshedInputError
from airshed.grids.grid import Grid
from airshed.grids.regions import RegionSet, build_regions
from airshed.grids.sampling import PointSampler, point_sampler
from airshed.inputs.builtin_inventory import ensure_builtin_inventory
from airshed.inputs.builtin_met import BuiltinMetParameters, ensure_builtin_met
from airshed.inputs.emissions.gridded import read_gridded_emissions
from airshed.inputs.emissions.points import EmissionDataWarning, merge_point_tables, read_point_sources
from airshed.inputs.emissions.sources import EmissionSet, build_emission_set
from airshed.inputs.emissions.temporal import TemporalProfiles
from airshed.inputs.meteorology import open_meteorology
from airshed.inputs.observations import read_stations
from airshed.inputs.population import builtin_population
from airshed.jit import thread_info
from airshed.model.apportionment import receptor_weights, source_receptor_matrix, transboundary_metrics
from airshed.outputs.netcdf import IncrementalNetCDF, write_netcdf_atomic
from airshed.outputs.runfile import (
    BUDGET_TERMS,
    HOURLY_VARIABLES,
    OUTPUT_SPECIES,
    STATION_VARIABLES,
    RunSummary,
    run_file_skeleton,
    run_summary_dataset,
    with_stations,
)
from airshed.physics.mechanism import default_mechanism
from airshed.scenarios import emission_factors, scenario_named, validate_scenario

log = logging.getLogger(__name__)

MECHANISM = default_mechanism()
PRECURSOR_OF: dict[str, str | None] = {name: MECHANISM.precursor_of(name) for name in OUTPUT_SPECIES}
"""The emitted species whose emissions make each output species (None: PM2.5, a sum of several)."""


def tracer_to_output_matrix(tracers: tuple[str, ...] = TRACERS) -> np.ndarray:
    """(n_output_species, n_tracers) 0/1 matrix: output species = matrix @ tracers (the mechanism's)."""
    return MECHANISM.output_matrix(tracers)


class TaggedAccumulator:
    """Reduce a work unit's hourly tagged tracer fields to the run file's arrays.

    Every hour gives the total concentration field, the population-weighted receptor-region series per
    tag and their total; over the hours the accumulator sums the fields per tag (for the period means).
    Sums over tags are taken region by region (a region's sectors, then the regions in order starting
    from zero), which is how the units of a run split by source region are merged: so a run over all
    regions and its split into regions give the same bits. The hourly arrays go to ``hour_sink(hour,
    concentration, receptor_concentration, receptor_contribution)`` as soon as an hour is done, or are
    kept (:attr:`hourly`) for a unit that sends them back.

    Parameters
    ----------
    n_hours
        Hours (periods) of the unit.
    n_regions, n_sectors
        Tag axis is ``region * n_sectors + sector`` (regions of the unit).
    weights_population
        (n_receptor, ny, nx) normalised population weights of the receptor regions
        (see :func:`~airshed.model.apportionment.receptor_weights`).
    tracers
        Names of the tracer axis of the fields passed to :meth:`add`.
    hour_sink
        Called with each finished hour instead of keeping it.
    stations
        Monitoring stations (``[receptors] stations``): each hour's tagged fields are also sampled there
        (:func:`sample_stations`) and handed on as a fourth hourly array, (n_station, n_tags, S).
    """

    def __init__(self, n_hours: int, n_regions: int, n_sectors: int, weights_population: np.ndarray,
                 tracers: tuple[str, ...] = TRACERS, hour_sink=None, stations: PointSampler | None = None):
        nq, ny, nx = weights_population.shape
        ns, ntag = len(OUTPUT_SPECIES), n_regions * n_sectors
        self.n_hours, self.n_regions, self.n_sectors = n_hours, n_regions, n_sectors
        self.to_output = tracer_to_output_matrix(tracers)
        self.w_pop = weights_population.reshape(nq, ny * nx)
        self.contribution_sum = np.zeros((ntag, ns, ny, nx))
        self.receptor_contribution_sum = np.zeros((nq, ntag, ns))
        self.hour_sink = hour_sink
        self.stations = stations
        self.hourly = None if hour_sink is not None else (
            np.zeros((n_hours, ns, ny, nx)), np.zeros((n_hours, nq, ns)), np.zeros((n_hours, nq, ntag, ns)),
            *(() if stations is None else (np.zeros((n_hours, len(stations), ntag, ns)),)))
        self._seen = np.zeros(n_hours, dtype=bool)

    def add(self, hour: int, tagged: np.ndarray) -> None:
        """Add one hour's mean concentration, (n_tags, n_tracers, ny, nx) in ug m-3."""
        ntag, ntr, ny, nx = tagged.shape
        K = self.n_sectors
        # (S, tracers) @ (tag, tracers, cells): one small product per tag, contiguous (tag, S, cells)
        out = np.matmul(self.to_output, tagged.reshape(ntag, ntr, ny * nx)).reshape(ntag, -1, ny, nx)
        ns = out.shape[1]
        self.contribution_sum += out
        concentration = np.zeros((ns, ny, nx))
        receptor_contribution = np.empty((self.w_pop.shape[0], ntag, ns))
        receptor_concentration = np.zeros((self.w_pop.shape[0], ns))
        for r in range(self.n_regions):
            part = out[r * K:(r + 1) * K]
            concentration += part.sum(axis=0)
            rc = (self.w_pop @ part.reshape(K * ns, ny * nx).T).reshape(-1, K, ns)
            receptor_contribution[:, r * K:(r + 1) * K] = rc
            receptor_concentration += rc.sum(axis=1)
        self.receptor_contribution_sum += receptor_contribution
        hours = (concentration, receptor_concentration, receptor_contribution)
        if self.stations is not None:
            hours += (sample_stations(out, self.stations),)
        if self.hour_sink is not None:
            self.hour_sink(hour, *hours)
        else:
            for kept, value in zip(self.hourly, hours, strict=True):
                kept[hour] = value
        self._seen[hour] = True

    def check_complete(self) -> None:
        """Fail when an hour of the unit was never added."""
        if not self._seen.all():
            missing = np.flatnonzero(~self._seen)
            raise RuntimeError(f"core returned no result for hours {missing[:5].tolist()} ...")


def sample_stations(tagged: np.ndarray, stations: PointSampler) -> np.ndarray:
    """Read one hour's tagged output fields (n_tags, S, ny, nx) at the stations: (n_station, n_tags, S).

    Each station's value is the weighted sum of the cells of its :class:`~airshed.grids.sampling.PointSampler`
    (bilinear between cell centres, or the cell value), so the tags still add up to the sampled total.
    """
    ntag, ns, ny, nx = tagged.shape
    return stations.sample(tagged.reshape(ntag, ns, ny * nx))


def station_totals(station_contribution: np.ndarray, n_sectors: int) -> np.ndarray:
    """Sum (..., n_station, n_tags, S) over the tags region by region, in region order: (..., n_station, S).

    The same order of additions as every other sum over tags, so a run split into region units gives the
    bits of a serial run.
    """
    total = np.zeros(station_contribution.shape[:-2] + station_contribution.shape[-1:])
    for r in range(station_contribution.shape[-2] // n_sectors):
        total += station_contribution[..., r * n_sectors:(r + 1) * n_sectors, :].sum(axis=-2)
    return total


def summarize_run(contribution_sum: np.ndarray, receptor_contribution_sum: np.ndarray, n_hours: int,
                  n_sectors: int, weights_area: np.ndarray, emission_total: np.ndarray,
                  population: np.ndarray, region_fraction: np.ndarray, own_source: np.ndarray,
                  mass_budget: np.ndarray | None = None) -> RunSummary:
    """Period means, source-receptor tables and cross-border metrics from a run's sums over its hours.

    Parameters
    ----------
    contribution_sum
        (R * K, S, ny, nx) hourly fields per tag summed over the hours, ug m-3.
    receptor_contribution_sum
        (Q, R * K, S) population-weighted receptor-region series per tag summed over the hours, ug m-3.
    n_hours
        Hours (periods) summed.
    n_sectors
        K.
    weights_area
        (Q, ny, nx) normalised area weights of the receptor regions.
    emission_total
        (R, K, E) tonnes emitted over the run.
    population
        (ny, nx) persons per cell.
    region_fraction
        (R, ny, nx) region masks (source regions, "outside" included).
    own_source
        (Q,) index of each receptor region on the source-region axis.
    mass_budget
        Optional (n_terms, E) particle mass budget, kg.
    """
    ntag, ns, ny, nx = contribution_sum.shape
    K, R = n_sectors, ntag // n_sectors
    contribution = (contribution_sum / n_hours).reshape(R, K, ns, ny, nx)
    sr = (receptor_contribution_sum / n_hours).reshape(-1, R, K, ns).sum(axis=2)  # (Q, R, S), population
    sr_area = source_receptor_matrix(contribution.sum(axis=1), weights_area)
    nq = sr.shape[0]
    pop_region = np.array([(region_fraction[own_source[q]] * population).sum() for q in range(nq)])
    metrics = {k: np.zeros((nq, ns)) for k in ("transboundary_share", "import_concentration",
                                              "import_exposure", "export_exposure", "net_export_exposure")}
    for s in range(ns):
        m = transboundary_metrics(sr[:, :, s], own_source, pop_region)
        for k in metrics:
            metrics[k][:, s] = m[k]
    pm25_sr = np.zeros((nq, R, len(EMITTED_SPECIES)))
    for part in ("PM2.5_primary", "sulfate", "nitrate"):
        pm25_sr[:, :, EMITTED_SPECIES.index(PRECURSOR_OF[part])] += sr[:, :, OUTPUT_SPECIES.index(part)]
    return RunSummary(
        contribution=contribution,
        source_receptor=sr,
        source_receptor_area=sr_area,
        metrics=metrics,
        pm25_source_receptor=pm25_sr,
        emission_total=emission_total,
        population_region=pop_region,
        mass_budget=mass_budget,
    )


# ---------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """Folder for regenerated built-in inputs: ``$AIRSHED_CACHE_DIR`` or ``~/.cache/airshed``."""
    path = Path(os.environ.get("AIRSHED_CACHE_DIR", Path.home() / ".cache" / "airshed"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Inputs:
    """Everything read for a run, on the model grid."""

    grid: Grid
    regions: RegionSet
    population: np.ndarray
    emissions: EmissionSet
    met: object
    input_files: list[Path]


def open_met(cfg: AirshedConfig, grid: Grid) -> tuple[object, list[Path]]:
    """Open the configured meteorology (the built-in episode is written to the cache first)."""
    m = cfg.meteorology
    if m.format == "builtin":
        params = BuiltinMetParameters(**m.builtin.model_dump())
        paths = ensure_builtin_met(cache_dir() / "met", cfg.run.start, params)
        fmt = "era5"
    else:
        paths, fmt = list(m.paths), m.format
    met = open_meteorology(fmt, paths, grid, m.heights_m, variables=dict(m.variables) or None,
                           roughness_length_m=m.roughness_length_m)
    return met, list(paths)


def regridded_emissions(files: list[Path], grid: Grid) -> xr.Dataset:
    """Gridded emissions on the model grid, cached on disk by input files (path, size, mtime) and grid.

    Exact polygon regridding of a 0.1 degree inventory takes seconds to tens of seconds; studies rerun
    the same inventory on the same grid many times (scenarios, zero-out checks, ensembles).
    """
    key = json.dumps({"files": [(str(Path(f).resolve()), Path(f).stat().st_size, Path(f).stat().st_mtime_ns)
                                for f in files],
                      "grid": [grid.crs.to_wkt(), grid.x0, grid.y0, grid.dx, grid.nx, grid.ny],
                      "airshed": __version__})
    path = cache_dir() / "regridded" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.nc"
    if path.is_file():
        with xr.open_dataset(path) as cached:
            return cached.load()
    ds = read_gridded_emissions(files, grid)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_netcdf_atomic(ds, path, compression_level=1)
    return ds


def load_emissions(cfg: AirshedConfig, regions: RegionSet) -> tuple[EmissionSet, list[Path]]:
    """Read gridded and point emissions (and the built-in inventory), tagged by region and sector."""
    e = cfg.emissions
    gridded_files = [Path(p) for p in e.gridded]
    point_files = [Path(p) for p in e.points]
    if e.inventory == "builtin":
        nc, csv_path = ensure_builtin_inventory(cache_dir() / "inventory", e.builtin.year)
        gridded_files.insert(0, nc)
        point_files.insert(0, csv_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EmissionDataWarning)
        gridded = regridded_emissions(gridded_files, regions.grid) if gridded_files else None
        points = merge_point_tables([read_point_sources(p, regions.grid) for p in point_files]) \
            if point_files else None
    for w in caught:
        log.warning("%s", w.message)
    profiles = TemporalProfiles.builtin("china" if e.temporal_profiles == "typical" else "flat")
    return build_emission_set(regions, gridded, points, profiles), gridded_files + point_files


def read_inputs(cfg: AirshedConfig, progress: bool = False) -> Inputs:
    """Grid, region masks, population, emissions and meteorology of a run (a step bar when ``progress``)."""
    if cfg.regions.population not in ("builtin", "none"):
        raise AirshedInputError(
            f"regions.population = {cfg.regions.population}: reading a population file is not supported yet; "
            "use 'builtin' or 'none'")
    with _progress(progress, 4, "reading inputs", unit="steps") as advance:
        grid = cfg.grid.build()
        regions = build_regions(grid, cfg.regions.spec, cfg.regions.name_column)
        advance()
        population = builtin_population(grid) if cfg.regions.population == "builtin" else None
        advance()
        emissions, emission_files = load_emissions(cfg, regions)
        advance()
        met, met_files = open_met(cfg, grid)
        advance()
    return Inputs(grid, regions, population, emissions, met, met_files + emission_files)


def emitted_rates(emissions: EmissionSet, rates: np.ndarray, selected: list[str]) -> np.ndarray:
    """Rates (n, len(EMITTED_SPECIES)) kg/s from an EmissionSet's species axis; unselected species 0."""
    out = np.zeros((rates.shape[0], len(EMITTED_SPECIES)))
    for k, s in enumerate(EMITTED_SPECIES):
        if s in selected and s in emissions.species:
            out[:, k] = rates[:, emissions.species.index(s)]
    return out


def file_checksums(paths: list[Path]) -> list[dict[str, str]]:
    """``[{path, sha256}]`` of input files, for provenance."""
    out = []
    for p in paths:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        out.append({"path": str(p), "sha256": h.hexdigest()})
    return out


# ---------------------------------------------------------------------------------------------------
# Meteorology by day
# ---------------------------------------------------------------------------------------------------
class MetByDay:
    """Hand out meteorology one day-long window at a time, keeping the last few windows read.

    Work units of one process (the particle core's source regions, run one after the other) walk the same
    days, so windows are kept (at most ``max_windows``, oldest dropped first) instead of being read and
    interpolated again by every unit; a month of hourly data never sits in memory at once.
    """

    def __init__(self, met, window_hours: int = 24, max_windows: int = 8):
        self.met = met
        self.window = np.timedelta64(window_hours, "h")
        self.max_windows = max_windows
        self._windows: dict[np.datetime64, xr.Dataset] = {}

    def at(self, t: np.datetime64):
        """Meteorology at time ``t``, reading the window [t, t + window] when no kept window holds ``t``."""
        t = np.datetime64(t, "ns")
        for ds in self._windows.values():
            if ds.time.values[0] <= t <= ds.time.values[-1]:
                return ds.sel(time=t)
        if len(self._windows) >= self.max_windows:
            self._windows.pop(next(iter(self._windows)))
        ds = self.met.window(t, min(t + self.window, self.met.times[-1]))
        self._windows[t] = ds
        return ds.sel(time=t)


def _direction_from_deg(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Direction the wind blows from, degrees clockwise from grid +y."""
    return np.degrees(np.arctan2(-u, -v)) % 360.0


def stack_release_height(points, met, row: np.ndarray, col: np.ndarray, *, plume_rise: bool = True,
                         stack_tip_downwash: bool = True, min_wind_speed: float = 1.0) -> np.ndarray:
    """Effective release height of stacks (m): :func:`airshed.physics.plume_rise.effective_stack_height`.

    Wind at the stack top from the 10 m wind by the similarity profile (not below 10 m, floored at
    ``min_wind_speed``), as the plume core does (:func:`airshed.model.plume.plume_wind_speed`).
    """
    from airshed.model.plume import plume_wind_speed
    from airshed.physics import plume_rise as rise

    t_air = met["t2m"].values[row, col]
    speed10 = np.hypot(met["u10"].values, met["v10"].values)[row, col]
    u_stack = np.maximum(plume_wind_speed(speed10, 10.0, points.stack_height, met["z0"].values[row, col],
                                          met["obukhov_length"].values[row, col]), min_wind_speed)
    stack_temp = np.where(points.exit_temperature > 0, points.exit_temperature, t_air)
    he, _ = rise.effective_stack_height(points.stack_height, points.diameter, points.exit_velocity,
                                        stack_temp, t_air, u_stack, met["pg_class"].values[row, col],
                                        plume_rise=plume_rise, stack_tip_downwash=stack_tip_downwash)
    return he


# ---------------------------------------------------------------------------------------------------
# Cores
# ---------------------------------------------------------------------------------------------------
class PlumeCore:
    """Hour-by-hour steady Gaussian plumes from every area sub-source and stack onto the cell centres."""

    tracers: tuple[str, ...] = EMITTED_SPECIES

    def __init__(self, cfg: AirshedConfig, inputs: Inputs):
        from airshed.model.plume import area_sources_as_points
        from airshed.physics.dispersion import DISPERSION_OPTIONS

        self.cfg, self.grid = cfg, inputs.grid
        self.option = DISPERSION_OPTIONS[cfg.plume.dispersion]
        em = inputs.emissions
        n_sub = cfg.plume.area_source_subcells
        ax, ay, _, parent, sy0 = area_sources_as_points(em.area.x, em.area.y, float(self.grid.dx),
                                                        np.zeros(em.area.n), n_sub)
        prow, pcol = self.grid.cell_index(em.points.x, em.points.y)
        self.n_area_points = ax.size
        self.parent, self.n_sub2 = parent, n_sub * n_sub
        self.x = np.concatenate([ax, em.points.x])
        self.y = np.concatenate([ay, em.points.y])
        self.row = np.concatenate([em.area.row[parent], prow]).astype(np.int64)
        self.col = np.concatenate([em.area.col[parent], pcol]).astype(np.int64)
        self.tag = np.concatenate([em.area_tag[parent], em.point_tag]).astype(np.int64)
        zeros = np.zeros(ax.size)
        self.stack_height = np.concatenate([zeros, em.points.stack_height])
        self.diameter = np.concatenate([zeros, em.points.diameter])
        self.exit_velocity = np.concatenate([zeros, em.points.exit_velocity])
        self.exit_temperature = np.concatenate([zeros, em.points.exit_temperature])
        self.sigma_y0 = np.concatenate([np.full(ax.size, sy0), np.zeros(em.points.n)])
        self.ntag = em.ntag
        self.calm_hours = 0

    def period(self, met0, met1, area_rates: np.ndarray, point_rates: np.ndarray, t0: float, t1: float
               ) -> np.ndarray:
        """Hourly mean concentration per tag and tracer (ntag, ntracer, ny, nx), ug m-3.

        Steady state with the met valid at the end of the hour (hour-ending convention of AERMET).
        """
        from airshed.model.plume import (
            plume_concentration_grid,
            plume_sources_for_species,
            prepare_plume_geometry,
        )

        g, p, c = self.grid, self.cfg.plume, self.cfg.chemistry
        # area rates are per cell: each sub-point carries 1/n_sub^2; kg/s -> ug/s gives ug/m3
        q_all = np.concatenate([area_rates[self.parent] / self.n_sub2, point_rates]) * 1.0e9
        out = np.zeros((self.ntag, len(self.tracers), g.ny, g.nx))
        on = np.flatnonzero((q_all > 0).any(axis=1))
        if on.size == 0:
            return out
        r, k = self.row[on], self.col[on]
        met = {name: met1[name].values[r, k] for name in ("u10", "v10", "z0", "ustar", "obukhov_length",
                                                           "blh", "pg_class", "t2m", "wstar")}
        # wind, rise, sigmas, regimes: once per hour for every emitting source, shared by the species
        geometry = prepare_plume_geometry(
            self.x[on], self.y[on], self.tag[on], self.stack_height[on],
            wind_speed=np.hypot(met["u10"], met["v10"]),
            wind_direction_deg=_direction_from_deg(met["u10"], met["v10"]), wind_height=10.0,
            roughness_length=met["z0"], ustar=met["ustar"], obukhov_length=met["obukhov_length"],
            mixing_height=np.maximum(met["blh"], p.receptor_height_m + 1.0),
            pg_class=met["pg_class"].astype(np.int64), air_temperature=met["t2m"], option=self.option,
            diameter=self.diameter[on], exit_velocity=self.exit_velocity[on],
            stack_temperature=np.where(self.exit_temperature[on] > 0, self.exit_temperature[on], met["t2m"]),
            sigma_y0=self.sigma_y0[on], wstar=met["wstar"], receptor_height=p.receptor_height_m,
            x_max=p.max_distance_km * 1000.0, sigma_y_cutoff=p.sigma_y_cutoff,
            min_wind_speed=p.min_wind_speed_m_s, plume_rise=p.plume_rise,
            stack_tip_downwash=p.stack_tip_downwash, lid_penetration=p.lid_penetration,
        )
        for s, name in enumerate(self.tracers):
            q = q_all[on, s]
            if not (q > 0).any():
                continue
            prepared = plume_sources_for_species(geometry, q, c.decay_per_s[name],
                                                 c.dry_deposition_velocity_m_s[name])
            conc = plume_concentration_grid(prepared, g.x[0], g.y[0], g.dx, g.dx, g.nx, g.ny, self.ntag,
                                            skip=True)
            out[:, s] = conc.reshape(self.ntag, g.ny, g.nx)
        self.calm_hours += int(np.any(geometry.calm))
        return out

    def budget(self) -> None:
        """Return None: the plume core keeps no particle budget."""
        return None


class LagrangianCore:
    """Tagged particles carried from period to period, one :class:`ParticleRun` per source region.

    Each region's particles live in their own run with the region's sectors as tags, and every period all
    the runs are fed from one release table (with the full table's particle shares): a particle moves
    exactly as it would in a run over all sources, and a unit of the run (:mod:`airshed.scale`) can hold
    any set of regions. Period work that does not depend on the region (met window, emission rates,
    release heights, particle shares) is done once per period for all of them.
    """

    tracers: tuple[str, ...] = TRACERS

    def __init__(self, cfg: AirshedConfig, inputs: Inputs, regions: range | None = None):
        from airshed.model.lagrangian import LagrangianParameters, ParticleRun

        self.cfg, self.grid, self.em = cfg, inputs.grid, inputs.emissions
        c, lg = cfg.chemistry, cfg.lagrangian
        self.params = LagrangianParameters.for_species(
            TRACERS,
            deposition_velocity_m_s=dict(c.dry_deposition_velocity_m_s),
            wet_a_per_s=[c.wet_scavenging_a_per_s[s] for s in TRACERS],
            wet_b=[c.wet_scavenging_b[s] for s in TRACERS],
            decay_per_s=[c.decay_per_s[s] for s in TRACERS],
            so2_to_sulfate_per_s=c.so2_to_sulfate_per_hour / 3600.0,
            nox_to_nitrate_per_s=c.nox_to_nitrate_per_hour / 3600.0,
            particles_per_hour=lg.particles_per_hour * lg.output_interval_h,
            max_time_step_s=lg.max_time_step_s,
            cfl=lg.cfl,
            sampling_depth_m=lg.sampling_depth_m,
            horizontal_turbulence=lg.horizontal_turbulence,
        )
        g = self.grid
        heights = np.asarray(cfg.meteorology.heights_m, dtype=float)
        self.z_levels = heights
        self.regions = range(len(self.em.regions)) if regions is None else regions
        self.runs = [ParticleRun(g.x0, g.y0, g.dx, g.nx, g.ny, float(heights[-1]), self.em.nsector,
                                 self.params, cfg.run.seed) for _ in self.regions]
        self.prow, self.pcol = g.cell_index(self.em.points.x, self.em.points.y)

    def period(self, met0, met1, area_rates: np.ndarray, point_rates: np.ndarray, t0: float, t1: float,
               allocation_rates: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Mean concentration per tag of the regions and tracer over [t0, t1] s, (ntag, ntr, ny, nx), ug m-3.

        ``allocation_rates`` (area, point; default the rates themselves) are the baseline rates before
        zero-out and scenario factors: they decide the particles, the factors only their masses (common
        random numbers, see :mod:`airshed.model.release`).
        """
        from airshed.model.lagrangian import MetWindow
        from airshed.model.release import area_release_table, concatenate_release_tables, point_release_table

        def both(name):
            return np.stack([met0[name].values, met1[name].values])

        L = both("obukhov_length")
        met = MetWindow(
            times=np.array([t0, t1]), z_levels=self.z_levels, u=both("u"), v=both("v"), w=both("w"),
            mixing_height=both("blh"), ustar=both("ustar"), wstar=both("wstar"), inv_L=1.0 / L,
            precip=both("precip"), share_step_met=len(self.runs) > 1,
        )
        ntr = len(TRACERS)
        area_alloc, point_alloc = (area_rates, point_rates) if allocation_rates is None else allocation_rates

        def padded(rates):  # emitted species first, the secondary tracers are not emitted
            return np.hstack([rates, np.zeros((rates.shape[0], ntr - rates.shape[1]))])

        em = self.em
        tables = [area_release_table(em.area.x, em.area.y, float(self.grid.dx), em.area_tag,
                                     padded(area_rates), allocation_rate=padded(area_alloc))]
        if em.points.n:
            p = self.cfg.plume
            h = stack_release_height(em.points, met0, self.prow, self.pcol, plume_rise=p.plume_rise,
                                     stack_tip_downwash=p.stack_tip_downwash,
                                     min_wind_speed=p.min_wind_speed_m_s)
            tables.append(point_release_table(em.points.x, em.points.y, h, em.point_tag, padded(point_rates),
                                              allocation_rate=padded(point_alloc)))
        sources = concatenate_release_tables(*tables)
        share = self.runs[0].particle_shares(sources, t1 - t0)
        K = em.nsector
        region_of = sources.tag // K
        out = np.empty((len(self.regions) * K, ntr, self.grid.ny, self.grid.nx))
        for i, (r, run) in enumerate(zip(self.regions, self.runs, strict=True)):
            mine = region_of == r
            out[i * K:(i + 1) * K] = run.advance(met, sources.take(mine, tag_offset=-r * K), t0, t1,
                                                 particle_share=share[mine])
        return out

    def budget(self) -> dict[str, np.ndarray]:
        """Particle mass budget (kg per tracer) so far: the regions' budgets summed in region order."""
        total: dict[str, np.ndarray] = {}
        for run in self.runs:
            for k, v in run.budget().items():
                total[k] = total.get(k, np.zeros_like(v)) + v
        return total


# ---------------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------------
def _set_threads(threads: int | None) -> None:
    n = numba.config.NUMBA_NUM_THREADS if threads is None else min(threads, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(max(1, n))


def zero_out_mask(emissions: EmissionSet, region: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Emission factors (area, points) that remove one region's sources (all ones when ``region`` is None)."""
    fa, fp = np.ones(emissions.area.n), np.ones(emissions.points.n)
    if region is not None:
        if region not in emissions.regions:
            raise AirshedInputError(f"--zero-out {region!r}: unknown region; valid regions: "
                                    f"{', '.join(emissions.regions)}")
        r = emissions.regions.index(region)
        fa[emissions.area.region == r] = 0.0
        fp[emissions.points.region == r] = 0.0
    return fa, fp


@dataclass
class Study:
    """What every work unit of a run needs; :func:`prepare_study` rebuilds it identically in any process.

    The core loop runs as work units (:mod:`airshed.scale`): time chunks of the plume core, source
    regions of the particle core, each fed by :func:`run_periods`.
    """

    cfg: AirshedConfig
    inputs: Inputs
    zero_out: str | None
    scenario: str | None
    chosen: object | None
    period_h: int
    edges: np.ndarray
    receptors: list[int]
    w_pop: np.ndarray
    w_area: np.ndarray
    fa: np.ndarray
    fp: np.ndarray
    met: MetByDay | None = None
    stations: PointSampler | None = None

    def __post_init__(self) -> None:
        if self.met is None:
            self.met = MetByDay(self.inputs.met)

    @property
    def emissions(self) -> EmissionSet:
        """Tagged emissions of the run."""
        return self.inputs.emissions

    @property
    def grid(self) -> Grid:
        """Model grid."""
        return self.inputs.grid

    @property
    def n_periods(self) -> int:
        """Output periods (hours of the plume core, output intervals of the particle core)."""
        return self.edges.size - 1

    @property
    def tracers(self) -> tuple[str, ...]:
        """Tracers the core carries."""
        return PlumeCore.tracers if self.cfg.run.core == "plume" else LagrangianCore.tracers

    def core(self, regions: range | None = None) -> PlumeCore | LagrangianCore:
        """Return a fresh core of the configured kind (the particle core moving ``regions``' particles)."""
        return PlumeCore(self.cfg, self.inputs) if self.cfg.run.core == "plume" else \
            LagrangianCore(self.cfg, self.inputs, regions)

    def accumulator(self, n_periods: int, n_regions: int | None = None, hour_sink=None) -> TaggedAccumulator:
        """Return an empty accumulator over ``n_periods`` periods and ``n_regions`` regions (default all)."""
        em = self.emissions
        return TaggedAccumulator(n_periods, len(em.regions) if n_regions is None else n_regions, em.nsector,
                                 self.w_pop, self.tracers, hour_sink, self.stations)


def prepare_study(cfg: AirshedConfig, zero_out: str | None = None, scenario: str | None = None,
                  progress: bool = False) -> Study:
    """Read a run's inputs and derive everything its work units share (see :class:`Study`)."""
    inputs = read_inputs(cfg, progress)
    em, grid = inputs.emissions, inputs.grid
    period_h = cfg.lagrangian.output_interval_h if cfg.run.core == "lagrangian" else 1
    n_periods = cfg.run.hours // period_h
    edges = (np.datetime64(cfg.run.start.replace(tzinfo=None), "ns")
             + np.arange(n_periods + 1) * np.timedelta64(period_h, "h"))
    fractions = np.asarray(inputs.regions.fractions)
    receptors = [k for k, n in enumerate(inputs.regions.names) if n != "outside"]
    w_area = receptor_weights(fractions[receptors], grid.cell_area)
    w_pop = receptor_weights(fractions[receptors], grid.cell_area,
                             inputs.population if inputs.population is not None else None)
    fa, fp = zero_out_mask(em, zero_out)
    chosen = scenario_named(cfg, scenario) if scenario is not None else None
    if chosen is not None:
        validate_scenario(chosen, em.regions, cfg.run.start, cfg.run.end)
    stations = None
    if cfg.receptors.stations is not None:
        table = read_stations(cfg.receptors.stations)
        stations = point_sampler(grid, table["id"], table["name"], table["lon"], table["lat"],
                                 cfg.receptors.sampling,
                                 source=f"receptors.stations ({cfg.receptors.stations})")
    return Study(cfg, inputs, zero_out, scenario, chosen, period_h, edges, receptors, w_pop, w_area, fa, fp,
                 stations=stations)


def run_periods(study: Study, core: PlumeCore | LagrangianCore, acc: TaggedAccumulator, periods: range,
                advance=None) -> np.ndarray:
    """Feed ``periods`` to ``core`` and add its fields to ``acc`` (period ``periods.start`` first).

    Returns the mass emitted over the periods per tag and emitted species, (ntag, E) kg, for every tag of
    the run (a core of some regions only moves their particles). ``advance`` is called after each period.
    """
    cfg, em, edges, chosen = study.cfg, study.emissions, study.edges, study.chosen
    fa, fp, period_h = study.fa, study.fp, study.period_h
    emitted = np.zeros((em.ntag, len(EMITTED_SPECIES)))  # kg
    met = study.met
    selected = list(cfg.run.species)
    for k in periods:
        t0, t1 = edges[k], edges[k + 1]
        mid = t0 + (t1 - t0) / 2
        area_rates, point_rates = em.rates_at(pd.Timestamp(mid))
        # per source and species: zero-out x scenario (mean factor over the period)
        sa, sp = emission_factors(chosen, em, t0, t1, edges[0], edges[-1])
        baseline = emitted_rates(em, area_rates, selected), emitted_rates(em, point_rates, selected)
        area_rates = baseline[0] * (fa[:, None] * sa)
        point_rates = baseline[1] * (fp[:, None] * sp)
        seconds = period_h * 3600.0
        np.add.at(emitted, em.area_tag, area_rates * seconds)
        np.add.at(emitted, em.point_tag, point_rates * seconds)
        common = {"allocation_rates": baseline} if isinstance(core, LagrangianCore) else {}
        tagged = core.period(met.at(t0), met.at(t1), area_rates, point_rates,
                             k * seconds, (k + 1) * seconds, **common)
        acc.add(k - periods.start, tagged)
        if advance is not None:
            advance()
    return emitted


def run_study(cfg: AirshedConfig, output: Path | None = None, zero_out: str | None = None,
              progress: bool = True, scenario: str | None = None) -> Path:
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
    """
    wall0 = time.perf_counter()
    _set_threads(cfg.compute.threads)
    path = Path(output) if output is not None else Path(cfg.run.output)
    if not path.parent.is_dir():
        raise AirshedInputError(f"output folder {path.parent} does not exist (run.output / --output)")
    study = prepare_study(cfg, zero_out, scenario, progress)
    inputs, em, grid = study.inputs, study.emissions, study.grid
    population = inputs.population if inputs.population is not None else np.zeros(grid.shape)
    fractions = np.asarray(inputs.regions.fractions)
    skeleton = run_file_skeleton(grid, study.edges, tuple(inputs.regions.names), tuple(em.sectors),
                                 EMITTED_SPECIES, population, fractions)
    hourly = HOURLY_VARIABLES
    if study.stations is not None:
        s = study.stations
        skeleton = with_stations(skeleton, s.ids, s.names, s.lon, s.lat)
        hourly = HOURLY_VARIABLES | STATION_VARIABLES
    from airshed.scale import run_core

    with IncrementalNetCDF(path, skeleton, hourly, cfg.outputs.compression_level,
                           cfg.outputs.time_chunk_hours) as run_file:
        result = run_core(study, run_file, progress)
        mass_budget, budget_error = _check_budget(result.budget)
        summary = summarize_run(
            result.contribution_sum, result.receptor_contribution_sum, study.n_periods, em.nsector,
            study.w_area, emission_total=result.emitted.reshape(len(em.regions), em.nsector, -1) / 1000.0,
            population=population, region_fraction=fractions, own_source=np.array(study.receptors),
            mass_budget=mass_budget,
        )
        attrs = {
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
            **({"station_sampling": study.stations.method} if study.stations is not None else {}),
            **{k: str(v) for k, v in thread_info().items()},
        }
        rest = run_summary_dataset(summary, skeleton, attrs,
                                   budget_tracers=study.tracers if mass_budget is not None else None)
        rest.attrs["wall_time_s"] = round(time.perf_counter() - wall0, 3)
        run_file.finish(rest)
    log.info("wrote %s in %.1f s", path, time.perf_counter() - wall0)
    write_requested_documents(cfg, path, progress)
    return path


def write_requested_documents(cfg: AirshedConfig, run_path: Path, progress: bool = False) -> None:
    """Figures and the HTML report of a finished run, when ``[outputs]`` asks for them."""
    steps = int(cfg.outputs.maps) + int(cfg.outputs.report)
    if not steps:
        return
    bar = _progress(progress, steps, "figures and report", unit="steps")
    with xr.open_dataset(run_path) as ds, bar as advance:
        if cfg.outputs.maps:
            from airshed.outputs.plots import write_figures

            folder = run_path.with_name(f"{run_path.stem}_figures")
            folder.mkdir(exist_ok=True)
            for figure in write_figures(ds, folder):
                log.info("wrote %s", figure)
            advance()
        if cfg.outputs.report:
            from airshed.outputs.report import write_report

            log.info("wrote %s", write_report(ds, run_path.with_suffix(".html"), run_path=run_path))
            advance()


BUDGET_TOLERANCE = 1e-9
"""Largest relative mass-budget residual a run accepts (issue: checked in every run)."""


def _check_budget(budget: dict[str, np.ndarray] | None) -> tuple[np.ndarray | None, float]:
    """Budget as a (term, tracer) array and its largest relative residual; fail when it does not close."""
    if budget is None:
        return None, 0.0
    scale = np.maximum(budget["emitted"] + budget["produced"], 1e-300)
    rel = np.abs(budget["residual"]) / scale
    err = float(rel.max()) if rel.size else 0.0
    if err > BUDGET_TOLERANCE:
        raise RuntimeError(f"particle mass budget does not close: relative residual {err:.3e} > "
                           f"{BUDGET_TOLERANCE:g}")
    return np.stack([budget[t] for t in BUDGET_TERMS]), err


class _progress:
    """Rich progress bar over the run's periods (a no-op when ``enabled`` is False)."""

    def __init__(self, enabled: bool, total: int, label: str, unit: str = "h"):
        self.enabled, self.total, self.label, self.unit = enabled, total, label, unit

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                             TextColumn(f"{{task.completed}}/{{task.total}} {self.unit}"),
                             TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
        self._bar.__enter__()
        task = self._bar.add_task(self.label, total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc):
        if self.enabled:
            self._bar.__exit__(*exc)
        return False
