"""Accumulate finished work units into the run file and the run's period sums; summarise the run.

:class:`RunTotals` merges unit results in unit order: hours computed for every tag go to the run file as
soon as they arrive, the hourly totals of units that each hold some source regions are added in region
order and written when the last one is in. :func:`summarize_run` turns the period sums into the run
file's period variables; :func:`check_budget` fails a run whose mass budget does not close.
"""

from __future__ import annotations

import numpy as np

from airshed.inputs.meteorology.plausibility import AdjustmentLog
from airshed.model.apportionment import source_receptor_matrix, transboundary_metrics
from airshed.outputs.netcdf import IncrementalNetCDF
from airshed.outputs.runfile import BUDGET_TERMS, RunSummary
from airshed.physics.mechanism import Mechanism
from airshed.pipeline.reduction import HourlyFields, station_totals
from airshed.pipeline.study import Study
from airshed.pipeline.units import UnitResult


class RunTotals:
    """The merge of a run's work units, in unit order, into the run file and the period sums.

    Hours computed for every tag (time chunks, a run of all regions) go to the run file as soon as they
    arrive. Units of some source regions each hold a part of every hour: their hourly totals are added in
    region order and written when the last unit is in.
    """

    def __init__(self, study: Study, run_file: IncrementalNetCDF):
        em, mechanism = study.emissions, study.mechanism
        ns, nq = len(mechanism.output_species), len(study.receptors)
        self.run_file, self.n_sectors, self.n_hours = run_file, em.nsector, study.n_periods
        self.pm25 = mechanism.output_species.index("PM2.5")
        self.contribution_sum = np.zeros((em.ntag, ns, *study.grid.shape))
        self.receptor_contribution_sum = np.zeros((nq, em.ntag, ns))
        self.emitted = np.zeros((em.ntag, len(mechanism.emitted)))
        self.budget: dict[str, np.ndarray] | None = None
        self.tracers: tuple[str, ...] = ()
        self.calm_hours = 0
        self.met_adjustments = AdjustmentLog()
        self._partial: dict[str, np.ndarray] | None = None
        # particle sampling classes (TaggedAccumulator): (C, Q, ntag, S) and (C, R, S, ny, nx) over the hours
        self.class_receptor_contribution_sum: np.ndarray | None = None
        self.class_contribution_sum: np.ndarray | None = None

    def write_hours(self, first: int, fields: HourlyFields) -> None:
        """Write hours ``first, first + 1, ...`` of every tag to the run file (fields with an hour axis)."""
        concentration, receptor_contribution = fields["concentration"], fields["receptor_contribution"]
        n, nq, _, ns = receptor_contribution.shape
        self.run_file.write("concentration", first, concentration)
        self.run_file.write("pm25", first, concentration[:, self.pm25])
        self.run_file.write("receptor_concentration", first, fields["receptor_concentration"])
        self.run_file.write("receptor_contribution", first,
                            receptor_contribution.reshape(n, nq, -1, self.n_sectors, ns))
        if "station_contribution" in fields:
            stations = fields["station_contribution"]
            self.run_file.write("station_concentration", first, station_totals(stations, self.n_sectors))
            self.run_file.write("station_contribution", first,
                                stations.reshape(n, stations.shape[1], -1, self.n_sectors, ns))

    def write_hour(self, hour: int, fields: HourlyFields) -> None:
        """Write one finished hour (the hour sink of a unit over all tags)."""
        self.write_hours(hour, {name: value[None] for name, value in fields.items()})

    def merge(self, result: UnitResult) -> None:
        """Add a finished unit (units arrive in unit order)."""
        unit, acc = result.unit, result.accumulator
        tags = unit.tags(self.n_sectors)
        acc.check_complete()
        self.contribution_sum[tags] += acc.contribution_sum
        self.receptor_contribution_sum[:, tags] += acc.receptor_contribution_sum
        if acc.hourly is not None:
            if acc.contribution_sum.shape[0] == self.contribution_sum.shape[0]:
                self.write_hours(unit.first, acc.hourly)
            else:
                self._add_partial_hours(unit.first, unit.stop, tags, acc.hourly)
        if acc.class_receptor_contribution_sum is not None:
            self._merge_classes(tags, acc)
        self.emitted[tags] += result.emitted
        self.tracers = result.tracers
        if result.budget is not None:
            if self.budget is None:
                self.budget = {k: np.zeros_like(v) for k, v in result.budget.items()}
            for k, v in result.budget.items():
                self.budget[k] += v
        self.calm_hours += result.calm_hours
        self.met_adjustments.merge(result.met_adjustments)

    def _merge_classes(self, tags: slice, acc) -> None:
        """Add a unit's sampling-class sums (its tags, and its regions of the gridded sums)."""
        rc, fields = acc.class_receptor_contribution_sum, acc.class_contribution_sum
        if self.class_receptor_contribution_sum is None:
            ntag, n_classes = self.contribution_sum.shape[0], rc.shape[0]
            self.class_receptor_contribution_sum = np.zeros((n_classes, rc.shape[1], ntag, rc.shape[3]))
            self.class_contribution_sum = np.zeros((n_classes, ntag // self.n_sectors, *fields.shape[2:]))
        self.class_receptor_contribution_sum[:, :, tags] += rc
        K = self.n_sectors
        regions = slice(None) if tags.start is None else slice(tags.start // K, tags.stop // K)
        self.class_contribution_sum[:, regions] += fields

    def _add_partial_hours(self, first: int, stop: int, tags: slice, hourly: HourlyFields) -> None:
        """Add the hours of a unit of some source regions to the run's hourly totals."""
        if self._partial is None:
            n_hours, ntag = self.n_hours, self.contribution_sum.shape[0]
            nq, ns = hourly["receptor_concentration"].shape[1:]
            self._partial = {
                "concentration": np.zeros((n_hours, *hourly["concentration"].shape[1:])),
                "receptor_concentration": np.zeros((n_hours, nq, ns)),
                "receptor_contribution": np.zeros((n_hours, nq, ntag, ns)),
            }
            if "station_contribution" in hourly:
                nst = hourly["station_contribution"].shape[1]
                self._partial["station_contribution"] = np.zeros((n_hours, nst, ntag, ns))
        hours = slice(first, stop)
        self._partial["concentration"][hours] += hourly["concentration"]
        self._partial["receptor_concentration"][hours] += hourly["receptor_concentration"]
        self._partial["receptor_contribution"][hours, :, tags] = hourly["receptor_contribution"]
        if "station_contribution" in hourly:
            self._partial["station_contribution"][hours, :, tags] = hourly["station_contribution"]

    def close(self) -> RunTotals:
        """Write the hours that region units added up; return self."""
        if self._partial is not None:
            self.write_hours(0, self._partial)
            self._partial = None
        return self


def summarize_run(contribution_sum: np.ndarray, receptor_contribution_sum: np.ndarray, n_hours: int,
                  n_sectors: int, weights_area: np.ndarray, emission_total: np.ndarray,
                  population: np.ndarray, region_fraction: np.ndarray, own_source: np.ndarray,
                  mechanism: Mechanism, mass_budget: np.ndarray | None = None) -> RunSummary:
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
    mechanism
        The chemistry: output species, and the emitted species each part of PM2.5 comes from.
    mass_budget
        Optional (n_terms, n_tracers) mass budget, kg.
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
    pm25_sr = np.zeros((nq, R, len(mechanism.emitted)))
    for part, origin in mechanism.components("PM2.5"):
        pm25_sr[:, :, mechanism.emitted.index(origin)] += sr[:, :, mechanism.output_species.index(part)]
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


BUDGET_TOLERANCE = 1e-9
"""Largest relative mass-budget residual a run accepts (issue: checked in every run)."""


def check_budget(budget: dict[str, np.ndarray] | None) -> tuple[np.ndarray | None, float]:
    """Budget as a (term, tracer) array and its largest relative residual; fail when it does not close."""
    if budget is None:
        return None, 0.0
    scale = np.maximum(budget["emitted"] + budget["produced"], 1e-300)
    rel = np.abs(budget["residual"]) / scale
    err = float(rel.max()) if rel.size else 0.0
    if err > BUDGET_TOLERANCE:
        raise RuntimeError(f"mass budget does not close: relative residual {err:.3e} > "
                           f"{BUDGET_TOLERANCE:g}")
    return np.stack([budget[t] for t in BUDGET_TERMS]), err
