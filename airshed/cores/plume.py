"""The Gaussian-plume core: hour by hour steady plumes from every area sub-source and stack.

The core carries the mechanism's tracers: every emitted species in its own plume, lost at its first-order
rate and by dry deposition, and every product of a conversion formed in its precursor's plume along the
travel time (:mod:`airshed.model.plume_chemistry`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import xarray as xr

from airshed.cores import PeriodEmissions
from airshed.model.plume import (
    PreparedSources,
    area_sources_as_points,
    plume_concentration_grid,
    plume_sources_for_species,
    prepare_plume_geometry,
)
from airshed.model.plume_chemistry import chain_log_table, plume_sources_for_product
from airshed.physics.dispersion_schemes import dispersion_scheme
from airshed.physics.removal import wet_scavenging_rates

if TYPE_CHECKING:
    from airshed.config import AirshedConfig
    from airshed.physics.mechanism import Mechanism
    from airshed.pipeline.inputs import Inputs


def _direction_from_deg(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Direction the wind blows from, degrees clockwise from grid +y."""
    return np.degrees(np.arctan2(-u, -v)) % 360.0


class PlumeCore:
    """Hour-by-hour steady Gaussian plumes from every area sub-source and stack onto the cell centres.

    Every hour is its own steady state of that hour's emissions and met (valid at the end of the hour,
    the hour-ending convention of AERMET), so hours are independent work.
    """

    periods_independent: ClassVar[bool] = True

    @classmethod
    def output_period_hours(cls, cfg: AirshedConfig) -> int:
        """One hour."""
        return 1

    @classmethod
    def check_config(cls, cfg: AirshedConfig) -> None:
        """Every config the schema accepts runs on the plume core."""

    def __init__(self, cfg: AirshedConfig, inputs: Inputs, mechanism: Mechanism,
                 start: object = None):
        self.cfg, self.grid, self.mechanism = cfg, inputs.grid, mechanism
        self.tracers = mechanism.tracers
        for c in mechanism.conversions:
            if c.precursor not in mechanism.emitted:
                raise ValueError(f"the plume core forms products of emitted species only, not of "
                                 f"{c.precursor} ({c.precursor} -> {c.product})")
        self.scheme = dispersion_scheme(cfg.plume.dispersion)
        em = inputs.emissions
        n_sub = cfg.plume.area_source_subcells
        ax, ay, _, parent, sy0 = area_sources_as_points(em.area.x, em.area.y, float(self.grid.dx),
                                                        np.zeros(em.area.n), n_sub)
        prow, pcol = self.grid.cell_index(em.points.x, em.points.y)
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

    def period(self, met0: xr.Dataset, met1: xr.Dataset, emissions: PeriodEmissions, t0: float, t1: float
               ) -> np.ndarray:
        """Hourly mean concentration per tag and tracer (ntag, ntracer, ny, nx), ug m-3.

        Steady state with the met valid at the end of the hour (hour-ending convention of AERMET). Every
        tracer is lost along the plume at its first-order rate (decay, conversion into products, wet
        scavenging: :meth:`first_order_loss`) and by dry deposition (source depletion); each conversion
        forms its product in the precursor's plume.
        """
        g, p, m = self.grid, self.cfg.plume, self.mechanism
        # area rates are per cell: each sub-point carries 1/n_sub^2; kg/s -> ug/s gives ug/m3
        q_all = np.concatenate([emissions.area[self.parent] / self.n_sub2, emissions.points]) * 1.0e9
        out = np.zeros((self.ntag, len(self.tracers), g.ny, g.nx))
        on = np.flatnonzero((q_all > 0).any(axis=1))
        if on.size == 0:
            return out
        r, k = self.row[on], self.col[on]
        met = {name: met1[name].values[r, k] for name in ("u10", "v10", "z0", "ustar", "obukhov_length",
                                                           "blh", "pg_class", "t2m", "wstar", "precip")}
        # wind, rise, sigmas, regimes: once per hour for every emitting source, shared by the species
        geometry = prepare_plume_geometry(
            self.x[on], self.y[on], self.tag[on], self.stack_height[on],
            wind_speed=np.hypot(met["u10"], met["v10"]),
            wind_direction_deg=_direction_from_deg(met["u10"], met["v10"]), wind_height=10.0,
            roughness_length=met["z0"], ustar=met["ustar"], obukhov_length=met["obukhov_length"],
            mixing_height=np.maximum(met["blh"], p.receptor_height_m + 1.0),
            pg_class=met["pg_class"].astype(np.int64), air_temperature=met["t2m"], option=self.scheme,
            diameter=self.diameter[on], exit_velocity=self.exit_velocity[on],
            stack_temperature=np.where(self.exit_temperature[on] > 0, self.exit_temperature[on], met["t2m"]),
            sigma_y0=self.sigma_y0[on], wstar=met["wstar"], receptor_height=p.receptor_height_m,
            x_max=p.max_distance_km * 1000.0, sigma_y_cutoff=p.sigma_y_cutoff,
            min_wind_speed=p.min_wind_speed_m_s, plume_rise=p.plume_rise,
            stack_tip_downwash=p.stack_tip_downwash, lid_penetration=p.lid_penetration,
        )
        loss = {name: self.first_order_loss(name, met["precip"]) for name in self.tracers}

        def add(tracer: str, prepared: PreparedSources) -> None:
            conc = plume_concentration_grid(prepared, g.x[0], g.y[0], g.dx, g.dx, g.nx, g.ny, self.ntag,
                                            skip=True)
            out[:, self.tracers.index(tracer)] += conc.reshape(self.ntag, g.ny, g.nx)

        vd = m.dry_deposition_velocity_m_s
        for e, name in enumerate(m.emitted):
            q = q_all[on, e]
            if (q > 0).any():
                add(name, plume_sources_for_species(geometry, q, loss[name], vd[name]))
        for c in m.conversions:
            q = q_all[on, m.emitted.index(c.precursor)]
            if c.rate_per_s > 0.0 and (q > 0).any():
                table = chain_log_table(geometry, c.rate_per_s, c.yield_, loss[c.precursor], loss[c.product],
                                        vd[c.precursor], vd[c.product])
                add(c.product, plume_sources_for_product(geometry, q, table))
        self.calm_hours += int(np.any(geometry.calm))
        return out

    def first_order_loss(self, tracer: str, precipitation: np.ndarray) -> np.ndarray:
        """First-order loss of a tracer along each source's plume, s-1.

        Decay, conversions out of the tracer, and below-cloud scavenging A P^B at the precipitation rate P
        of the source's cell (mm/h), taken as uniform along the plume for the hour: the wet depletion
        exp(-Lambda x/u) of ISC3's wet deposition (US EPA 1995, ISC3 User's Guide vol. II,
        EPA-454/B-95-003b) with the mechanism's NAME coefficients, the Lambda the particle core applies to
        each particle.
        """
        m = self.mechanism
        a, b = m.wet_scavenging_a_per_s[tracer], m.wet_scavenging_b[tracer]
        wet = wet_scavenging_rates(precipitation, a, b)
        return m.decay_per_s[tracer] + m.conversion_rate_of(tracer) + wet

    def budget(self) -> None:
        """Return None: the plume core keeps no mass budget."""
        return None
