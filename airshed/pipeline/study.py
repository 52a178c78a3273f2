"""A study: what every work unit of a run shares, and the loop that feeds a core period by period.

:func:`prepare_study` reads the inputs and derives the periods, the receptor weights and the emission
factors of a zero-out or scenario run; it is deterministic, so every Dask worker rebuilds the same study
from the config. :func:`run_periods` feeds periods of the study to a core and its tagged fields to a
:class:`~airshed.pipeline.reduction.TaggedAccumulator`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from airshed.atomic_files import CACHE_FOLDER, make_folder
from airshed.config import AirshedConfig, ScenarioConfig
from airshed.cores import Core, PeriodEmissions, core_class
from airshed.errors import AirshedInputError
from airshed.grids.grid import Grid
from airshed.grids.sampling import PointSampler, point_sampler
from airshed.inputs.emissions.sources import EmissionSet
from airshed.inputs.meteorology import MetSource
from airshed.inputs.meteorology.common import check_period
from airshed.inputs.meteorology.formats import met_format
from airshed.inputs.observations import read_stations
from airshed.model.apportionment import receptor_weights
from airshed.outputs.netcdf import write_netcdf_atomic
from airshed.physics.mechanism import Mechanism
from airshed.pipeline.inputs import Inputs, cache_dir, read_inputs
from airshed.pipeline.reduction import HourSink, TaggedAccumulator
from airshed.scenarios import emission_factors, scenario_named, validate_scenario
from airshed.version import __version__

_MET_READ_LOCK = threading.RLock()


class MetByDay:
    """Hand out meteorology one day-long window at a time, keeping the last few windows read.

    Work units of one process (release windows, run one after the other) walk the same days, so windows
    are kept (at most ``max_windows``, oldest dropped first) instead of being read and interpolated again
    by every unit; a month of hourly data never sits in memory at once. With a ``cache`` folder each
    window, once derived on the model grid, is also written there (with the counts of the values its
    derivation adjusted) and read back by any later run or worker process with the same meteorology.
    """

    def __init__(self, met: MetSource, window_hours: int = 24, max_windows: int = 8,
                 cache: Path | None = None):
        self.met = met
        self.window = np.timedelta64(window_hours, "h")
        self.max_windows = max_windows
        self.cache = cache
        self._windows: dict[np.datetime64, xr.Dataset] = {}

    def at(self, t: np.datetime64) -> xr.Dataset:
        """Meteorology at time ``t``, reading the window [t, t + window] when no kept window holds ``t``."""
        t = np.datetime64(t, "ns")
        # Units on threads share this object, and the netCDF-C/HDF5 libraries under the met readers and the
        # window cache are not thread-safe (two units opening cached windows at once crashed the process).
        with _MET_READ_LOCK:
            for ds in self._windows.values():
                if ds.time.values[0] <= t <= ds.time.values[-1]:
                    return ds.sel(time=t)
            if len(self._windows) >= self.max_windows:
                self._windows.pop(next(iter(self._windows)))
            ds = self._read(t, min(t + self.window, self.met.times[-1]))
            self._windows[t] = ds
            return ds.sel(time=t)

    def _read(self, t0: np.datetime64, t1: np.datetime64) -> xr.Dataset:
        """Read the window [t0, t1] from the met source, or from the cache folder when it holds it."""
        if self.cache is None:
            return self.met.window(t0, t1)
        log = getattr(self.met, "adjustments", None)
        stamp = "_".join(np.datetime_as_string(t, unit="s").replace(":", "") for t in (t0, t1))
        path = self.cache / f"{stamp}.nc"
        if path.is_file():
            with xr.open_dataset(path) as cached:
                ds = cached.load()
            counts = json.loads(ds.attrs.pop(_ADJUSTMENTS_ATTR, "{}"))
            if log is not None and counts:
                log.merge(counts)
                adjusted = sum(sum(kinds.values()) for kinds in counts.values())
                logging.getLogger(__name__).warning(
                    "meteorology %s to %s (cached, derived before): %d value(s) adjusted (the run file's "
                    "attribute met_adjustments counts them)", t0, t1, adjusted)
            return ds
        ds = self.met.window(t0, t1)
        keys = {str(np.datetime_as_string(t, unit="s")) for t in ds.time.values}
        counts = {t: kinds for t, kinds in (log.counts.items() if log is not None else ()) if t in keys}
        make_folder(self.cache)
        write_netcdf_atomic(ds.assign_attrs({_ADJUSTMENTS_ATTR: json.dumps(counts)}), path,
                            compression_level=0, destination=CACHE_FOLDER)
        return ds


_ADJUSTMENTS_ATTR = "airshed_met_adjustments"


def met_cache_folder(cfg: AirshedConfig, inputs: Inputs, root: Path) -> Path | None:
    """Folder of the derived met windows of a built-in meteorology (None for met read from files).

    Keyed by the ``[meteorology]`` table, the run's start (the built-in episode starts there), the grid and
    the airshed version. Met from files is derived again by each run (a year at 9 km would fill a disk).
    """
    if met_format(cfg.meteorology.format).generate is None:
        return None
    g = inputs.grid
    key = json.dumps({"meteorology": cfg.meteorology.model_dump(mode="json"),
                      "start": cfg.run.start.isoformat(), "airshed": __version__,
                      "grid": [g.crs.to_wkt(), g.x0, g.y0, g.dx, g.nx, g.ny]}, sort_keys=True, default=str)
    return root / "met_windows" / hashlib.sha256(key.encode()).hexdigest()[:24]


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


def emitted_rates(emissions: EmissionSet, rates: np.ndarray, emitted: tuple[str, ...],
                  selected: list[str]) -> np.ndarray:
    """Rates (n, len(emitted)) kg/s from an EmissionSet's species axis; unselected species 0."""
    out = np.zeros((rates.shape[0], len(emitted)))
    for k, s in enumerate(emitted):
        if s in selected and s in emissions.species:
            out[:, k] = rates[:, emissions.species.index(s)]
    return out


@dataclass
class Study:
    """What every work unit of a run needs; :func:`prepare_study` rebuilds it identically in any process.

    The core loop runs as work units (:mod:`airshed.pipeline.units`): time chunks of a core whose periods
    are independent, source regions of one that carries state, each fed by :func:`run_periods`.
    """

    cfg: AirshedConfig
    inputs: Inputs
    mechanism: Mechanism
    zero_out: str | None
    scenario: str | None
    chosen: ScenarioConfig | None
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
            self.met = MetByDay(self.inputs.met, cache=met_cache_folder(self.cfg, self.inputs, cache_dir()))

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
    def core_class(self) -> type[Core]:
        """The configured core (``run.core``)."""
        return core_class(self.cfg.run.core)

    def core(self, start=None) -> Core:
        """Return a fresh core of the configured kind (a core with state: starting at ``start``)."""
        return self.core_class(self.cfg, self.inputs, self.mechanism, start)

    def accumulator(self, n_periods: int, tracers: tuple[str, ...], hour_sink: HourSink | None = None,
                    spread: np.ndarray | None = None) -> TaggedAccumulator:
        """Return an empty accumulator over ``n_periods`` periods and every tag (``spread``: see there)."""
        return TaggedAccumulator(n_periods, self.emissions.ntag, self.emissions.nsector, self.w_pop,
                                 self.mechanism, tracers, hour_sink, self.stations, spread)


def prepare_study(cfg: AirshedConfig, zero_out: str | None = None, scenario: str | None = None,
                  progress: bool = False, inputs: Inputs | None = None) -> Study:
    """Read a run's inputs and derive everything its work units share (see :class:`Study`).

    ``inputs``: the run's inputs already read (those of ``cfg``: an ensemble shares them between members).
    """
    inputs = read_inputs(cfg, progress) if inputs is None else inputs
    em, grid = inputs.emissions, inputs.grid
    period_h = core_class(cfg.run.core).output_period_hours(cfg)
    n_periods = cfg.run.hours // period_h
    edges = (np.datetime64(cfg.run.start.replace(tzinfo=None), "ns")
             + np.arange(n_periods + 1) * np.timedelta64(period_h, "h"))
    check_period(inputs.met.times, edges[0], edges[-1], inputs.met.label)  # the whole run, before computing
    fractions = np.asarray(inputs.regions.fractions)
    receptors = [k for k, n in enumerate(inputs.regions.names) if n != "outside"]
    w_area = receptor_weights(fractions[receptors], grid.cell_area)
    w_pop = receptor_weights(fractions[receptors], grid.cell_area,
                             inputs.population if inputs.population is not None else None)
    fa, fp = zero_out_mask(em, zero_out)
    chosen = scenario_named(cfg, scenario) if scenario is not None else None
    if chosen is not None:
        validate_scenario(chosen, em.regions, cfg.run.start, cfg.run.end, cfg.source)
    stations = None
    if cfg.receptors.stations is not None:
        table = read_stations(cfg.receptors.stations)
        stations = point_sampler(grid, table["id"], table["name"], table["lon"], table["lat"],
                                 cfg.receptors.sampling,
                                 source=f"receptors.stations ({cfg.receptors.stations})")
    return Study(cfg, inputs, cfg.chemistry.mechanism(), zero_out, scenario, chosen, period_h, edges,
                 receptors, w_pop, w_area, fa, fp, stations=stations)


def period_emissions(study: Study, k: int) -> tuple[PeriodEmissions, np.ndarray]:
    """Emission rates of period ``k`` (zero-out and scenario applied) and the mass emitted per tag, kg.

    The mass is (ntag, E) over the period, per tag and emitted species, for every tag of the run.
    """
    em, rates = study.emissions, period_rates(study, k)
    seconds = study.period_h * 3600.0
    emitted = np.zeros((em.ntag, len(study.mechanism.emitted)))
    np.add.at(emitted, em.area_tag, rates.area * seconds)
    np.add.at(emitted, em.point_tag, rates.points * seconds)
    return rates, emitted


def period_rates(study: Study, k: int) -> PeriodEmissions:
    """Emission rates of period ``k``, zero-out and scenario applied (no mass: :func:`period_emissions`)."""
    cfg, em, edges, chosen = study.cfg, study.emissions, study.edges, study.chosen
    emitted_species = study.mechanism.emitted
    selected = list(cfg.run.species)
    t0, t1 = edges[k], edges[k + 1]
    area_rates, point_rates = em.rates_at(pd.Timestamp(t0 + (t1 - t0) / 2))
    # per source and species: zero-out x scenario (mean factor over the period)
    sa, sp = emission_factors(chosen, em, t0, t1, edges[0], edges[-1])
    base_area = emitted_rates(em, area_rates, emitted_species, selected)
    base_points = emitted_rates(em, point_rates, emitted_species, selected)
    return PeriodEmissions(base_area * (study.fa[:, None] * sa), base_points * (study.fp[:, None] * sp),
                           base_area, base_points)


def run_periods(study: Study, core: Core, acc: TaggedAccumulator, periods: range,
                advance: Callable[[], None] | None = None) -> np.ndarray:
    """Feed ``periods`` to ``core`` and add its fields to ``acc`` (period ``periods.start`` first).

    Returns the mass emitted over the periods per tag and emitted species, (ntag, E) kg, summed in
    period order. ``advance`` is called after each period.
    """
    em, edges, met = study.emissions, study.edges, study.met
    emitted = np.zeros((em.ntag, len(study.mechanism.emitted)))  # kg
    seconds = study.period_h * 3600.0
    for k in periods:
        rates, mass = period_emissions(study, k)
        emitted += mass
        tagged = core.period(met.at(edges[k]), met.at(edges[k + 1]), rates, k * seconds, (k + 1) * seconds)
        acc.add(k - periods.start, tagged)
        if advance is not None:
            advance()
    return emitted
