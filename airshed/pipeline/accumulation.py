"""Accumulate finished work units into the run file and the run's period sums; summarise the run.

:class:`RunTotals` merges unit results in unit order: hours of a time chunk go to the run file as soon as
they arrive; the release windows of particle units are added up in window order and an hour is written
when no later window can add to it. :func:`summarize_run` turns the period sums into the run file's
period variables; :func:`check_budget` fails a run whose mass budget does not close.
"""

from __future__ import annotations

import numpy as np

from airshed.cores.lagrangian import window_budget_total
from airshed.inputs.meteorology.plausibility import AdjustmentLog
from airshed.model.apportionment import source_receptor_matrix, transboundary_metrics
from airshed.outputs.netcdf import IncrementalNetCDF
from airshed.outputs.runfile import BUDGET_TERMS, RunSummary
from airshed.physics.mechanism import Mechanism
from airshed.pipeline.reduction import HourlyFields, station_totals
from airshed.pipeline.study import Study
from airshed.pipeline.units import UnitResult, WindowResult


class RunTotals:
    """The merge of a run's work units, in unit order, into the run file and the period sums.

    Hours of a time chunk go to the run file as soon as it arrives. Release windows (units of a core with
    state) each add to the hours from their first until their particles are gone: they are added up in
    window order (from zero, the order a serial run uses), and an hour is written once the windows that
    can still add to it have all arrived.
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
        self._hours: dict[int, dict[str, np.ndarray]] = {}  # hours of release windows not yet written
        self._written = 0  # hours before this one are in the run file (release windows)
        self._window_budgets: list[dict[str, np.ndarray]] = []
        self._pending: np.ndarray | None = None
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
        self._written = hour + 1

    def merge(self, result: UnitResult) -> None:
        """Add a finished unit (units arrive in unit order)."""
        unit, acc = result.unit, result.accumulator
        if result.windows is not None:
            for window in result.windows:
                self.merge_window(window)
            self._pending = result.pending
            self._write_hours_before(unit.stop)
        else:
            acc.check_complete()
            self.contribution_sum += acc.contribution_sum
            self.receptor_contribution_sum += acc.receptor_contribution_sum
            if acc.hourly is not None:
                self.write_hours(unit.first, acc.hourly)
            self.emitted += result.emitted
            if result.budget is not None:
                if self.budget is None:
                    self.budget = {k: np.zeros_like(v) for k, v in result.budget.items()}
                for k, v in result.budget.items():
                    self.budget[k] += v
            self._add_classes(acc.class_receptor_contribution_sum, acc.class_contribution_sum)
        self.tracers = result.tracers
        self.calm_hours += result.calm_hours
        self.met_adjustments.merge(result.met_adjustments)

    def merge_window(self, window: WindowResult) -> None:
        """Add a finished release window (windows arrive in window order)."""
        self.contribution_sum += window.contribution_sum
        self.receptor_contribution_sum += window.receptor_contribution_sum
        self.emitted += window.emitted
        self._add_classes(window.class_receptor_contribution_sum, window.class_contribution_sum)
        self._window_budgets.append(window.budget)
        if window.hourly:
            n = next(iter(window.hourly.values())).shape[0]
            for i in range(n):
                hour = self._hours.get(window.first + i)
                if hour is None:
                    hour = self._hours[window.first + i] = {
                        name: np.zeros(value.shape[1:]) for name, value in window.hourly.items()}
                for name, value in window.hourly.items():
                    hour[name] += value[i]

    def _write_hours_before(self, stop: int) -> None:
        """Write the added-up hours before ``stop`` (no later window adds to them)."""
        while self._written < stop and self._written in self._hours:
            first, block = self._written, []
            while self._written < stop and self._written in self._hours:
                block.append(self._hours.pop(self._written))
                self._written += 1
            self.write_hours(first, {name: np.stack([h[name] for h in block]) for name in block[0]})
        if self._written < stop:
            raise RuntimeError(f"no release window gave hour {self._written} of the run")

    def _add_classes(self, receptor_sum: np.ndarray | None, field_sum: np.ndarray | None) -> None:
        """Add sampling-class sums (C, Q, ntag, S) and (C, R, S, ny, nx) of a unit or window (None: none)."""
        if receptor_sum is None:
            return
        if self.class_receptor_contribution_sum is None:
            self.class_receptor_contribution_sum = np.zeros_like(receptor_sum)
            self.class_contribution_sum = np.zeros_like(field_sum)
        self.class_receptor_contribution_sum += receptor_sum
        self.class_contribution_sum += field_sum

    def close(self) -> RunTotals:
        """Write the hours that release windows added up; total their budgets; return self."""
        if self._pending is not None:
            self._write_hours_before(self.n_hours)
            self.budget = window_budget_total(self._window_budgets, self._pending)
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
