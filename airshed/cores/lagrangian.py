"""The Lagrangian particle core: tagged particles carried from period to period, one run per region."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import xarray as xr

from airshed.cores import PeriodEmissions
from airshed.cores.stacks import stack_release_height
from airshed.model.lagrangian import LagrangianParameters, MetWindow, ParticleRun, turbulence_keys
from airshed.model.release import area_release_table, concatenate_release_tables, point_release_table

if TYPE_CHECKING:
    from airshed.config import AirshedConfig
    from airshed.physics.mechanism import Mechanism
    from airshed.pipeline.inputs import Inputs


class LagrangianCore:
    """Tagged particles carried from period to period, one :class:`ParticleRun` per source region.

    Each region's particles live in their own run with the region's sectors as tags, and every period all
    the runs are fed from one release table (with the full table's particle shares): a particle moves
    exactly as it would in a run over all sources, and a work unit (:mod:`airshed.pipeline.units`) can
    hold any set of regions. Period work that does not depend on the region (met window, emission rates,
    release heights, particle shares) is done once per period for all of them.
    """

    periods_independent: ClassVar[bool] = False

    @classmethod
    def output_period_hours(cls, cfg: AirshedConfig) -> int:
        """``lagrangian.output_interval_h``."""
        return cfg.lagrangian.output_interval_h

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
                 regions: range | None = None):
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
            **turbulence_keys(lg.turbulence, cfg.meteorology.roughness_length_m,
                              1e3 * (lg.met_resolution_km or cfg.grid.cell_km) if lg.mesoscale_motions
                              else None),
        )
        g = self.grid
        heights = np.asarray(cfg.meteorology.heights_m, dtype=float)
        self.z_levels = heights
        self.regions = range(len(self.em.regions)) if regions is None else regions
        self.sampling_classes = cfg.uncertainty.sampling_classes
        self.runs = [ParticleRun(g.x0, g.y0, g.dx, g.nx, g.ny, float(heights[-1]), self.em.nsector,
                                 self.params, cfg.run.seed, n_classes=self.sampling_classes)
                     for _ in self.regions]
        self.prow, self.pcol = g.cell_index(self.em.points.x, self.em.points.y)
        self.calm_hours = 0  # particles need no calm treatment

    def period(self, met0: xr.Dataset, met1: xr.Dataset, emissions: PeriodEmissions, t0: float, t1: float
               ) -> np.ndarray:
        """Mean concentration per tag of the regions and tracer over [t0, t1] s, (ntag, ntr, ny, nx), ug m-3.

        With particle sampling classes (``[uncertainty] particle_classes``) the classes come first,
        (n_classes, ntag, ntr, ny, nx): each class's part of the concentration (see :class:`ParticleRun`).
        The baseline rates of ``emissions`` (before zero-out and scenario factors) decide the particles,
        the factors only their masses (common random numbers, see :mod:`airshed.model.release`).
        """

        def both(name):
            return np.stack([met0[name].values, met1[name].values])

        L = both("obukhov_length")
        met = MetWindow(
            times=np.array([t0, t1]), z_levels=self.z_levels, u=both("u"), v=both("v"), w=both("w"),
            mixing_height=both("blh"), ustar=both("ustar"), wstar=both("wstar"), inv_L=1.0 / L,
            precip=both("precip"), share_step_met=len(self.runs) > 1,
        )
        ntr = len(self.tracers)

        def padded(rates):  # emitted species first, the secondary tracers are not emitted
            return np.hstack([rates, np.zeros((rates.shape[0], ntr - rates.shape[1]))])

        em = self.em
        tables = [area_release_table(em.area.x, em.area.y, float(self.grid.dx), em.area_tag,
                                     padded(emissions.area), allocation_rate=padded(emissions.baseline_area))]
        if em.points.n:
            p = self.cfg.plume
            h = stack_release_height(em.points, met0, self.prow, self.pcol, plume_rise=p.plume_rise,
                                     stack_tip_downwash=p.stack_tip_downwash,
                                     min_wind_speed=p.min_wind_speed_m_s)
            tables.append(point_release_table(em.points.x, em.points.y, h, em.point_tag,
                                              padded(emissions.points),
                                              allocation_rate=padded(emissions.baseline_points)))
        sources = concatenate_release_tables(*tables)
        share = self.runs[0].particle_shares(sources, t1 - t0)
        K = em.nsector
        region_of = sources.tag // K
        C = self.sampling_classes
        out = np.empty((C, len(self.regions) * K, ntr, self.grid.ny, self.grid.nx))
        for i, (r, run) in enumerate(zip(self.regions, self.runs, strict=True)):
            mine = region_of == r
            mine_sources = sources.take(mine, tag_offset=-r * K)
            tagged = run.advance(met, mine_sources, t0, t1, particle_share=share[mine])
            # rows (tag, class) tag-major -> classes first
            out[:, i * K:(i + 1) * K] = tagged.reshape(K, C, *tagged.shape[1:]).swapaxes(0, 1)
        return out if C > 1 else out[0]

    def budget(self) -> dict[str, np.ndarray]:
        """Particle mass budget (kg per tracer) so far: the regions' budgets summed in region order."""
        total: dict[str, np.ndarray] = {}
        for run in self.runs:
            for k, v in run.budget().items():
                total[k] = total.get(k, np.zeros_like(v)) + v
        return total
