"""The Lagrangian particle core: tagged particles carried from period to period, one run per release window.

A particle's whole life belongs to the release window (``lagrangian.release_window_h`` of emission
periods) in which it was released: each window's particles live in their own :class:`ParticleRun` with
every tag, its concentrations and mass budget are kept apart, and the run adds the windows up in window
order. The
windows are a fixed partition of the run (they do not depend on ``[compute]``), so any grouping of windows
into work units (:mod:`airshed.pipeline.units`) gives the bits of the serial run. A particle's id and
random numbers depend only on (period, source, index within the source and period) and the step within
the period, and the particle credit of every source at the start of a window is a function of the
emissions before it (:func:`release_credit_at`), so a window moves exactly the particles it moves in a run
from the start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, NamedTuple

import numpy as np
import xarray as xr

from airshed.cores import PeriodEmissions
from airshed.cores.stacks import stack_release_height
from airshed.model.lagrangian import (
    LagrangianParameters,
    MetWindow,
    ParticleRun,
    SparseField,
    gridding_buffers,
    turbulence_keys,
    vertical_substep_keys,
)
from airshed.model.release import (
    ParticleCredit,
    allocation_weights,
    area_release_table,
    concatenate_release_tables,
    point_release_table,
)

if TYPE_CHECKING:
    from airshed.config import AirshedConfig
    from airshed.physics.mechanism import Mechanism
    from airshed.pipeline.inputs import Inputs

def release_window_periods(cfg: AirshedConfig) -> int:
    """Output periods per release window: ``lagrangian.release_window_h`` in whole periods, at least one.

    The windows are the fixed partition of a particle run into independent pieces of work and of its sums.
    """
    return max(1, cfg.lagrangian.release_window_h // cfg.lagrangian.output_interval_h)


class ReleaseStart(NamedTuple):
    """Where a core starts: its first emission period and the particle credit of every source then.

    ``credit`` (n_sources,), ``pending`` (n_sources, n_tracers) kg and ``released`` (n_sources,) particles
    are the state of :class:`~airshed.model.release.ParticleCredit` over the study's full source table
    (area sources, then stacks) before ``period``.
    """

    period: int
    credit: np.ndarray
    pending: np.ndarray
    released: np.ndarray


class LagrangianCore:
    """Tagged particles carried from period to period, one :class:`ParticleRun` per release window.

    Every period the core releases into the run of the period's window (from one release table of all
    sources and one particle credit) and moves the particles of every window still holding some; the met
    window of the period is shared by them. :meth:`period_by_window` returns each live window's
    concentrations, :meth:`period` their sum. ``start`` (default: period 0 with fresh credit) is where
    the core begins (a work unit of later windows).
    """

    periods_independent: ClassVar[bool] = False

    @classmethod
    def output_period_hours(cls, cfg: AirshedConfig) -> int:
        """``lagrangian.output_interval_h``."""
        return cfg.lagrangian.output_interval_h

    @classmethod
    def window_periods_of(cls, cfg: AirshedConfig) -> int:
        """Output periods per release window (:func:`release_window_periods`)."""
        return release_window_periods(cfg)

    @classmethod
    def check_config(cls, cfg: AirshedConfig) -> None:
        """Require a run of a whole number of output intervals."""
        hours = (cfg.run.end - cfg.run.start).total_seconds() / 3600.0
        interval = cfg.lagrangian.output_interval_h
        if hours % interval:
            raise ValueError(
                f"the run lasts {hours:g} h, not a multiple of `lagrangian.output_interval_h` ({interval} h)"
            )

    def __init__(self, cfg: AirshedConfig, inputs: Inputs, mechanism: Mechanism,
                 start: ReleaseStart | None = None):
        self.cfg, self.grid, self.em = cfg, inputs.grid, inputs.emissions
        self.tracers = mechanism.tracers
        lg = cfg.lagrangian
        self.params = LagrangianParameters.for_species(
            self.tracers,
            deposition_velocity_m_s=dict(mechanism.dry_deposition_velocity_m_s),
            wet_a_per_s=mechanism.per_tracer("wet_scavenging_a_per_s"),
            wet_b=mechanism.per_tracer("wet_scavenging_b"),
            decay_per_s=mechanism.per_tracer("decay_per_s"),
            conversions=mechanism.conversions,
            particles_per_hour=lg.particles_per_hour * lg.output_interval_h,
            max_time_step_s=lg.max_time_step_s,
            cfl=lg.cfl,
            sampling_depth_m=lg.sampling_depth_m,
            horizontal_turbulence=lg.horizontal_turbulence,
            vertical_integrator=lg.vertical_integrator,
            # FLEXPART (advance.f90) has no vertical turbulence above the boundary layer in the troposphere
            **({} if lg.free_vertical_diffusion else {"k_free_vertical_m2_s": 0.0}),
            **({} if lg.vertical_step_fraction is None
               else vertical_substep_keys(lg.turbulence, lg.vertical_step_fraction, lg.max_time_step_s)),
            **turbulence_keys(lg.turbulence, cfg.meteorology.roughness_length_m,
                              1e3 * (lg.met_resolution_km or cfg.grid.cell_km) if lg.mesoscale_motions
                              else None),
        )
        g = self.grid
        self.z_levels = np.asarray(cfg.meteorology.heights_m, dtype=float)
        self.window_periods = release_window_periods(cfg)
        self.sampling_classes = cfg.uncertainty.sampling_classes
        self.runs: dict[int, ParticleRun] = {}  # live release windows, in window order
        self.finished: dict[int, dict[str, np.ndarray]] = {}  # budgets of windows whose particles are gone
        self.credit = ParticleCredit(len(self.tracers))
        self.period_index = 0
        if start is not None:
            self.period_index = start.period
            self.credit.restore(start.credit, start.pending, start.released)
        rows = self.em.ntag * self.sampling_classes
        gridding = gridding_buffers(rows, len(self.params.species), g.ny * g.nx)
        self.new_run: Callable[[int], ParticleRun] = lambda k: ParticleRun(
            g.x0, g.y0, g.dx, g.nx, g.ny, float(self.z_levels[-1]), self.em.ntag, self.params, cfg.run.seed,
            first_period=k, n_classes=self.sampling_classes, gridding=gridding)  # windows share the buffers
        self.prow, self.pcol = g.cell_index(self.em.points.x, self.em.points.y)
        self.calm_hours = 0  # particles need no calm treatment

    def release_rates(self, emissions: PeriodEmissions) -> tuple[np.ndarray, np.ndarray]:
        """Rates and allocation rates (n_sources, n_tracers) kg s-1 of the full source table, areas first.

        Emitted species first; the secondary tracers are not emitted.
        """
        na, ne = self.em.area.n, emissions.area.shape[1]
        rate = np.zeros((na + self.em.points.n, len(self.tracers)))
        alloc = np.zeros_like(rate)
        rate[:na, :ne], alloc[:na, :ne] = emissions.area, emissions.baseline_area
        if self.em.points.n:
            rate[na:, :ne], alloc[na:, :ne] = emissions.points, emissions.baseline_points
        return rate, alloc

    def allocate(self, rate: np.ndarray, allocation_rate: np.ndarray, period_s: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One period's particles per source, mass per particle and particles released before the period.

        From the credit, which is updated.
        """
        budget = round(self.params.particles_per_hour * period_s / 3600.0)
        share = allocation_weights(allocation_rate) * float(budget)
        n, mass = self.credit.allocate(np.arange(rate.shape[0]), share, rate * period_s)
        return n, mass, self.credit.released[: n.size] - n

    def period(self, met0: xr.Dataset, met1: xr.Dataset, emissions: PeriodEmissions | None, t0: float,
               t1: float) -> np.ndarray:
        """Mean concentration per tag and tracer over [t0, t1] s, (ntag, ntr, ny, nx), ug m-3.

        The sum of :meth:`period_by_window` over the live windows, in window order. With particle sampling
        classes (``[uncertainty] particle_classes``) the classes come first, (n_classes, ntag, ntr, ny, nx):
        each class's part of the concentration (see :class:`~airshed.model.lagrangian.ParticleRun`).
        """
        shape = (self.em.ntag, len(self.tracers), self.grid.ny, self.grid.nx)
        total = np.zeros(shape if self.sampling_classes == 1 else (self.sampling_classes, *shape))
        for _, field in self.period_by_window(met0, met1, emissions, t0, t1):
            if isinstance(field, SparseField):  # x + 0.0 == x: only the pairs the window touched
                field.add_to(total)
            else:
                total += field
        return total

    def period_by_window(self, met0: xr.Dataset, met1: xr.Dataset, emissions: PeriodEmissions | None,
                         t0: float, t1: float) -> list[tuple[int, SparseField | np.ndarray]]:
        """Release this period's particles (none when ``emissions`` is None) and move every live window's.

        Returns ``[(window, concentration)]`` in window order, concentration (ntag, ntr, ny, nx) ug m-3
        over [t0, t1] s, a :class:`~airshed.model.lagrangian.SparseField` of the cells the window's
        particles were gridded in (with sampling classes a dense array, classes first, as in
        :meth:`period`). The baseline rates
        of ``emissions`` (before zero-out and scenario factors) decide
        the particles, the factors only their masses (common random numbers, see
        :mod:`airshed.model.release`). A window whose particles have all left is moved to
        :attr:`finished` with its mass budget.
        """
        k = self.period_index
        self.period_index += 1

        def both(name):
            return np.stack([met0[name].values, met1[name].values])

        L = both("obukhov_length")
        window = k // self.window_periods
        if emissions is not None and window not in self.runs:
            self.runs[window] = self.new_run(k)
        met = MetWindow(
            times=np.array([t0, t1]), z_levels=self.z_levels, u=both("u"), v=both("v"), w=both("w"),
            mixing_height=both("blh"), ustar=both("ustar"), wstar=both("wstar"), inv_L=1.0 / L,
            precip=both("precip"), share_step_met=len(self.runs) > 1,
        )
        sources, allocation = None, None
        if emissions is not None:
            em = self.em
            rate, alloc = self.release_rates(emissions)
            na = em.area.n
            tables = [area_release_table(em.area.x, em.area.y, float(self.grid.dx), em.area_tag, rate[:na],
                                         allocation_rate=alloc[:na])]
            if em.points.n:
                p = self.cfg.plume
                h = stack_release_height(em.points, met0, self.prow, self.pcol, plume_rise=p.plume_rise,
                                         stack_tip_downwash=p.stack_tip_downwash,
                                         min_wind_speed=p.min_wind_speed_m_s)
                tables.append(point_release_table(em.points.x, em.points.y, h, em.point_tag, rate[na:],
                                                  allocation_rate=alloc[na:]))
            sources = concatenate_release_tables(*tables)
            allocation = self.allocate(rate, alloc, t1 - t0)
        out = []
        for w, run in list(self.runs.items()):
            mine = w == window and emissions is not None
            field = run.advance(met, sources if mine else None, t0, t1,
                                allocation=allocation if mine else None)
            if self.sampling_classes > 1:  # rows (tag, class) tag-major -> classes first
                field = field.dense()
                field = field.reshape(-1, self.sampling_classes, *field.shape[1:]).swapaxes(0, 1)
            out.append((w, field))
            if not mine and run.n_alive() == 0:
                self.finished[w] = run.budget()
                del self.runs[w]
        return out

    def close(self) -> None:
        """End the core's run: every live window is finished (its particles stay airborne)."""
        for w, run in self.runs.items():
            self.finished[w] = run.budget()
        self.runs.clear()

    def pending_mass(self) -> np.ndarray:
        """Mass emitted but not yet released (held at the sources), kg per tracer."""
        return self.credit.pending_mass()

    def budget(self) -> dict[str, np.ndarray]:
        """Particle mass budget (kg per tracer) so far: the windows' budgets in order, pending added."""
        budgets = dict(sorted({**self.finished, **{w: r.budget() for w, r in self.runs.items()}}.items()))
        return window_budget_total(list(budgets.values()), self.pending_mass())


def window_budget_total(budgets: list[dict[str, np.ndarray]], pending: np.ndarray) -> dict[str, np.ndarray]:
    """Sum release windows' budgets in order; add the mass pending at the sources; recompute the residual.

    The residual of the sum is emitted + produced - airborne - sinks (see :meth:`ParticleRun.budget`).
    """
    total: dict[str, np.ndarray] = {}
    for b in budgets:
        for k, v in b.items():
            total[k] = total.get(k, np.zeros_like(v)) + v
    if not total:
        return {}
    total["emitted"] = total["emitted"] + pending
    total["airborne"] = total["airborne"] + pending
    sinks = sum(v for k, v in total.items() if k not in ("emitted", "produced", "airborne", "residual"))
    total["residual"] = total["emitted"] + total["produced"] - total["airborne"] - sinks
    return total


def release_credit_at(core: LagrangianCore, period_rates: Callable[[int], PeriodEmissions], period_s: float,
                      periods: range) -> ReleaseStart:
    """Advance ``core``'s particle credit over ``periods`` without moving particles; the credit at their end.

    ``period_rates(k)`` gives period k's emissions. The credit of a source depends on its own emissions
    only, so this is what a run from the start holds at the end of ``periods``.
    """
    for k in periods:
        core.allocate(*core.release_rates(period_rates(k)), period_s)
    n = core.credit.credit.size
    return ReleaseStart(periods.stop, core.credit.credit.copy(), core.credit.pending.copy(),
                        core.credit.released[:n].copy())
