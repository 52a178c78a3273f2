"""Prairie Grass (Barad 1958) with the Lagrangian particle core: the hook the validation driver calls.

Each run is simulated as a steady plume by the superposition principle: N particles are released at
t = 0 at the source height and followed until they have passed the last arc; the steady concentration
for a continuous release Q at a receptor volume V is C = Q * (total residence time of the particles in
V) / (N * V). Receptor volumes are annular sectors around the source centred on each arc: radial band
r (1 +- ARC_HALF_WIDTH), angle bins of ANGLE_BIN_DEG, height SAMPLER_HEIGHT +- SAMPLER_HALF_DEPTH.
The modelled arc maximum is the largest bin; CY is the sum over bins of C r d(theta).

Meteorology is used as given, with the conventions of :mod:`airshed.validation.prairie_grass` (wind at
2 m, z0 = 0.008 m, u* and L as tabulated, mixing height as tabulated or diagnosed for stable runs):

- mean wind profile u(z) from the 2 m wind by Monin-Obukhov similarity
  (:func:`airshed.physics.boundary_layer.wind_speed_at_height`) on levels from 0.1 m to 2 km (constant
  below 0.1 m), along x; no mean vertical wind;
- w* from u*, L and h (Deardorff, through the heat flux that gives L);
- turbulence: the model's scheme (``turbulence``: the 3-D model's default, ``"similarity"`` or
  ``"hanna"``) with its default floors and height rules: Hanna's as FLEXPART (T_Lu, T_Lv >= 10 s and
  T_Lw >= 30 s everywhere); the similarity scheme's profiles held below the roughness sublayer
  (20 z0 = 0.16 m), no floor on its time scales below 50 m (its horizontal time scales come from the
  same dissipation rate as T_Lw); vertical sub-steps of ``TURBULENCE_STEP_FRACTION`` T_Lw (0.1: the
  well-mixed condition holds near the ground, :data:`airshed.model.lagrangian.SIMILARITY_STEP_FRACTION`)
  taken by ``VERTICAL_INTEGRATOR``, the 3-D model's default integrator (until 6 Dec 2026 the kernel
  record's Euler step);
- no deposition (the observations are not corrected for SO2 loss either).

Nothing is tuned to the observations: N, the bins and the numerical parameters are fixed here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from airshed.model.lagrangian import LagrangianParameters, MetWindow, ParticleRun
from airshed.model.release import point_release_table
from airshed.physics import boundary_layer as bl
from airshed.physics.similarity import ROUGHNESS_SUBLAYER_OVER_Z0

PARTICLES = 20_000
ARC_HALF_WIDTH = 0.05
ANGLE_BIN_DEG = 2.0
SAMPLER_HALF_DEPTH_M = 0.75
TURBULENCE_STEP_FRACTION = 0.1
#: The config's default ``[lagrangian] vertical_integrator`` (a test keeps the two equal; this layer may not
#: import the config).
VERTICAL_INTEGRATOR = "baoab"
MAX_SUBSTEPS = 400
TIME_STEP_S = 1.0
LEVELS_M = np.array([0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 30.0, 50.0, 80.0,
                     120.0, 200.0, 350.0, 600.0, 1000.0, 2000.0])  # fmt: skip
_AIR_T_K = 293.15
_AIR_RHO = 1.2


def _meteorology(met_row: pd.Series) -> dict:
    from airshed.validation import prairie_grass as pg

    L = float(met_row["L_m"])
    ustar = float(met_row["ustar_m_s"])
    h = float(met_row["h_i_m"])
    if not h > 0:
        h = float(bl.diagnosed_mixing_height(ustar, L, pg.LATITUDE_DEG))
    inv_L = 1.0 / L if L != 0 else 0.0
    shf = bl.sensible_heat_flux_from_obukhov(ustar, L, _AIR_T_K, _AIR_RHO) if L != 0 else 0.0
    wstar = bl.convective_velocity_scale(shf, h, _AIR_T_K, _AIR_RHO)
    u_ref = float(met_row["wind_speed_m_s"])
    u = np.array(
        [bl.wind_speed_at_height(u_ref, pg.WIND_HEIGHT_M, z, pg.ROUGHNESS_LENGTH_M, inv_L) for z in LEVELS_M]
    )
    return {"inv_L": inv_L, "ustar": ustar, "h": h, "wstar": wstar, "u": u}


def _met_window(m: dict, duration: float) -> MetWindow:
    shape = (2, LEVELS_M.size, 2, 2)
    s2 = (2, 2, 2)
    u = np.broadcast_to(m["u"][None, :, None, None], shape).copy()
    return MetWindow(
        times=np.array([0.0, duration]), z_levels=LEVELS_M, u=u, v=np.zeros(shape), w=np.zeros(shape),
        mixing_height=np.full(s2, m["h"]), ustar=np.full(s2, m["ustar"]), wstar=np.full(s2, m["wstar"]),
        inv_L=np.full(s2, m["inv_L"]), precip=np.zeros(s2),
    )  # fmt: skip


def simulate_run(run: int, run_arcs: pd.DataFrame, met_row: pd.Series, seed: int = 1958,
                 turbulence: str | None = None) -> pd.DataFrame:
    """Modelled arc maximum (mg/m3) and crosswind integral CY (mg/m2) per arc distance of one run.

    Parameters
    ----------
    run : run number (part of the random seed, so each run has its own particles)
    run_arcs : the run's rows of the arcs table (Q_g_s, release_height_m, sampler_height_m, distance_m)
    met_row : the run's row of the meteorology table (L_m, ustar_m_s, h_i_m, wind_speed_m_s)
    seed : base random seed
    turbulence : turbulence scheme (``"similarity"`` or ``"hanna"``); default the model's

    Returns
    -------
    DataFrame with columns distance_m, cmax_mod, cy_mod.
    """
    from airshed.validation import prairie_grass as pg

    q_mg_s = float(run_arcs["Q_g_s"].iloc[0]) * 1000.0
    z_source = float(run_arcs["release_height_m"].iloc[0])
    z_sampler = float(run_arcs["sampler_height_m"].iloc[0])
    distances = np.array(sorted(run_arcs["distance_m"].unique()), dtype=float)
    m = _meteorology(met_row)
    u_slow = float(np.interp(z_sampler, LEVELS_M, m["u"]))
    duration = 2.0 * distances.max() * (1.0 + ARC_HALF_WIDTH) / max(u_slow, 0.3)
    half_size = 5.0 * distances.max()
    met = _met_window(m, duration)
    scheme = {} if turbulence is None else {"turbulence_scheme": turbulence}
    params = LagrangianParameters.for_species(
        ("SO2",), deposition_velocity_m_s=[0.0], wet_a_per_s=[0.0], max_time_step_s=TIME_STEP_S,
        turbulence_step_fraction=TURBULENCE_STEP_FRACTION, max_substeps=MAX_SUBSTEPS,
        vertical_integrator=VERTICAL_INTEGRATOR, sampling_depth_m=1.0,
        min_profile_height_m=ROUGHNESS_SUBLAYER_OVER_Z0 * pg.ROUGHNESS_LENGTH_M, **scheme,
    )  # fmt: skip
    sim = ParticleRun(
        -half_size, -half_size, half_size, 2, 2, LEVELS_M[-1], 1, params, seed * 1000 + int(run)
    )
    sim.release(
        point_release_table([0.0], [0.0], [z_source], [0], [[1.0]]), np.array([PARTICLES]), 0.0, 1.0, 0.0, 1.0
    )

    nbins = int(round(180.0 / ANGLE_BIN_DEG))
    residence = np.zeros((distances.size, nbins))
    nsteps = int(np.ceil(duration / TIME_STEP_S))
    for k in range(nsteps):
        sim.step_once(met, k * TIME_STEP_S, TIME_STEP_S)
        x, y, z = sim.x[: sim.n], sim.y[: sim.n], sim.z[: sim.n]
        near = np.abs(z - z_sampler) < SAMPLER_HALF_DEPTH_M
        r = np.hypot(x[near], y[near])
        theta = np.degrees(np.arctan2(y[near], x[near]))
        b = np.floor((theta + 90.0) / ANGLE_BIN_DEG).astype(np.int64)
        ok = (b >= 0) & (b < nbins)
        for a, d in enumerate(distances):
            inside = ok & (np.abs(r - d) < ARC_HALF_WIDTH * d)
            residence[a] += np.bincount(b[inside], minlength=nbins) * TIME_STEP_S
    dtheta = np.radians(ANGLE_BIN_DEG)
    volume = dtheta * 2.0 * ARC_HALF_WIDTH * distances**2 * 2.0 * SAMPLER_HALF_DEPTH_M  # annular sectors, m3
    conc = q_mg_s * residence / (PARTICLES * volume[:, None])  # mg/m3
    return pd.DataFrame(
        {
            "distance_m": distances.astype(int),
            "cmax_mod": conc.max(axis=1),
            "cy_mod": conc.sum(axis=1) * dtheta * distances,
        }
    )
