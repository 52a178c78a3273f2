"""Surface-layer and boundary-layer similarity: stability functions, u*, L, w*, mixing height, PG class.

Scalar helpers are Numba-compiled with :func:`airshed.jit.inline` so the dispersion kernels can call them;
they are ordinary callables from Python too. Array versions (used by the meteorology readers) are
Numba loops over those same scalar helpers, so each formula is typed exactly once.

Conventions
-----------
- Sensible heat flux ``H`` in W m-2, **positive upward** (surface heating the air).
- Obukhov length ``L`` in m: negative when unstable (H > 0), positive when stable, and clipped to
  +/- :data:`NEUTRAL_OBUKHOV_LENGTH_M` (= 1e5 m) when the surface layer is neutral. Functions that take
  a stability argument take ``inv_L = 1/L`` (m-1) so that neutral is simply 0.
- Heights are metres above ground (above the zero-plane displacement, which airshed takes as 0).

Constants: von Karman constant 0.4 (Hogstrom 1996, Boundary-Layer Meteorol. 78:215), g = 9.81 m s-2,
cp = 1004 J kg-1 K-1, Rd = 287.05 J kg-1 K-1.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from airshed.jit import inline, kernel

VON_KARMAN = 0.4
"""von Karman constant (-)."""
GRAVITY = 9.81
"""Gravitational acceleration, m s-2."""
STANDARD_GRAVITY = 9.80665
"""WMO standard gravity used to turn geopotential (m2 s-2) into geopotential height (m)."""
CP_DRY_AIR = 1004.0
"""Specific heat of dry air at constant pressure, J kg-1 K-1."""
R_DRY_AIR = 287.05
"""Gas constant of dry air, J kg-1 K-1."""
EARTH_ROTATION = 7.2921e-5
"""Angular velocity of the Earth, rad s-1."""
NEUTRAL_OBUKHOV_LENGTH_M = 1.0e5
"""|L| above which the surface layer is taken as neutral; L is clipped to +/- this value, m."""
MIN_MIXING_HEIGHT_M = 20.0
"""Numerical floor of the diagnosed mixing height, m (guards against u* -> 0 in calm stable nights)."""
PROFILE_MIN_HEIGHT_FACTOR = 7.0
"""Similarity profiles are evaluated no lower than this multiple of z0 (AERMOD's lower bound, 7 z0)."""

# Beljaars & Holtslag (1991) stable-function constants, their eq. (28)-(32).
_BH_A = 1.0
_BH_B = 2.0 / 3.0
_BH_C = 5.0
_BH_D = 0.35


# --- stability functions -----------------------------------------------------------------------------
@inline
def stability_psi_m(zeta: float) -> float:
    """Integrated stability function for momentum, psi_m(zeta), zeta = z/L.

    Unstable (zeta < 0): Businger-Dyer form phi_m = (1 - 16 zeta)^(-1/4) (Dyer 1974, Boundary-Layer
    Meteorol. 7:363) integrated by Paulson (1970, J. Appl. Meteorol. 9:857, eq. 4):
    psi_m = 2 ln((1+x)/2) + ln((1+x^2)/2) - 2 atan(x) + pi/2, x = (1 - 16 zeta)^(1/4).
    Stable (zeta >= 0): Beljaars & Holtslag (1991, J. Appl. Meteorol. 30:327, eq. 28),
    -psi_m = a zeta + b (zeta - c/d) exp(-d zeta) + b c/d with a=1, b=2/3, c=5, d=0.35, which stays
    bounded for very stable conditions where the linear Dyer form (psi_m = -5 zeta) does not.
    """
    if zeta < 0.0:
        x = (1.0 - 16.0 * zeta) ** 0.25
        return (
            2.0 * math.log(0.5 * (1.0 + x))
            + math.log(0.5 * (1.0 + x * x))
            - 2.0 * math.atan(x)
            + 0.5 * math.pi
        )
    return -(_BH_A * zeta + _BH_B * (zeta - _BH_C / _BH_D) * math.exp(-_BH_D * zeta) + _BH_B * _BH_C / _BH_D)


@inline
def stability_psi_h(zeta: float) -> float:
    """Integrated stability function for heat, psi_h(zeta), zeta = z/L.

    Unstable: phi_h = (1 - 16 zeta)^(-1/2) (Dyer 1974), integrated psi_h = 2 ln((1 + y)/2),
    y = (1 - 16 zeta)^(1/2) (Paulson 1970, eq. 5). Stable: Beljaars & Holtslag (1991, eq. 32),
    -psi_h = (1 + 2 a zeta / 3)^(3/2) + b (zeta - c/d) exp(-d zeta) + b c/d - 1.
    """
    if zeta < 0.0:
        y = (1.0 - 16.0 * zeta) ** 0.5
        return 2.0 * math.log(0.5 * (1.0 + y))
    return -(
        (1.0 + 2.0 * _BH_A * zeta / 3.0) ** 1.5
        + _BH_B * (zeta - _BH_C / _BH_D) * math.exp(-_BH_D * zeta)
        + _BH_B * _BH_C / _BH_D
        - 1.0
    )


@inline
def _momentum_profile_factor(z: float, z0: float, inv_L: float) -> float:
    """ln(z/z0) - psi_m(z/L) + psi_m(z0/L): u(z) = u*/k times this (Monin-Obukhov similarity)."""
    return math.log(z / z0) - stability_psi_m(z * inv_L) + stability_psi_m(z0 * inv_L)


@inline
def wind_speed_at_height(u_ref: float, z_ref: float, z: float, z0: float, inv_L: float) -> float:
    """Wind speed at height z from the speed at z_ref by the Monin-Obukhov log-linear profile, m/s.

    u(z) = u_ref [ln(z/z0) - psi_m(z/L) + psi_m(z0/L)] / [ln(z_ref/z0) - psi_m(z_ref/L) + psi_m(z0/L)]
    (e.g. Stull 1988, An Introduction to Boundary Layer Meteorology, eq. 9.7.5h, with psi_m of
    :func:`stability_psi_m`). Both heights are clipped to at least ``7 z0`` (the lower bound of the
    similarity profile in AERMOD), so the speed is constant below 7 z0 instead of going to zero at z0.
    The profile is surface-layer similarity: above ~0.1 of the mixing height it is an extrapolation.

    Parameters
    ----------
    u_ref : reference wind speed, m/s, at height z_ref (m above ground).
    z : height wanted, m above ground.
    z0 : aerodynamic roughness length, m (> 0).
    inv_L : inverse Obukhov length 1/L, m-1 (0 = neutral).
    """
    z_min = PROFILE_MIN_HEIGHT_FACTOR * z0
    z_eff = max(z, z_min)
    z_ref_eff = max(z_ref, z_min)
    return u_ref * _momentum_profile_factor(z_eff, z0, inv_L) / _momentum_profile_factor(z_ref_eff, z0, inv_L)


@inline
def friction_velocity(u_ref: float, z_ref: float, z0: float, inv_L: float) -> float:
    """Friction velocity u* from the wind speed at z_ref, roughness and stability, m/s.

    u* = k u_ref / [ln(z_ref/z0) - psi_m(z_ref/L) + psi_m(z0/L)] (Monin-Obukhov similarity; Stull 1988
    eq. 9.7.5h). z_ref is clipped to at least 7 z0 as in :func:`wind_speed_at_height`.
    """
    z_ref_eff = max(z_ref, PROFILE_MIN_HEIGHT_FACTOR * z0)
    return VON_KARMAN * u_ref / _momentum_profile_factor(z_ref_eff, z0, inv_L)


@inline
def obukhov_length(ustar: float, shf: float, t_k: float, rho: float) -> float:
    """Monin-Obukhov length L = -rho cp T u*^3 / (k g H), m (Obukhov 1946; Stull 1988 eq. 5.7c).

    ``shf`` is the kinematic-equivalent sensible heat flux H in W m-2, positive upward, so L < 0 when
    unstable. |L| is clipped to :data:`NEUTRAL_OBUKHOV_LENGTH_M` (neutral), keeping the sign of -H
    (+1e5 m when H = 0).
    """
    num = -rho * CP_DRY_AIR * t_k * ustar * ustar * ustar
    den = VON_KARMAN * GRAVITY * shf
    if abs(num) >= NEUTRAL_OBUKHOV_LENGTH_M * abs(den):
        return NEUTRAL_OBUKHOV_LENGTH_M if shf <= 0.0 else -NEUTRAL_OBUKHOV_LENGTH_M
    return num / den


@inline
def _ustar_residual(
    ustar: float, u_ref: float, z_ref: float, z0: float, shf: float, t_k: float, rho: float
) -> float:
    """u* minus the u* that the profile gives back for L(u*, H): zero at a consistent u*."""
    return ustar - friction_velocity(u_ref, z_ref, z0, 1.0 / obukhov_length(ustar, shf, t_k, rho))


@inline
def friction_velocity_from_heat_flux(
    u_ref: float, z_ref: float, z0: float, shf: float, t_k: float, rho: float
) -> float:
    """Friction velocity u* consistent with wind, roughness and sensible heat flux H (W m-2 up), m/s.

    Solves u* = k u / [ln(z/z0) - psi_m(z/L) + psi_m(z0/L)] with L = L(u*, H) (:func:`obukhov_length`;
    Businger-Dyer/Dyer 1974 functions when unstable, Beljaars & Holtslag 1991 when stable).
    Fixed-point iteration from the neutral value to a relative change of 1e-8 (a contraction when
    unstable; when stable it converges to the upper root if there is one). Stable cases where it
    collapses to the floor: the residual has an upper (physical) root and a small-u* root, or none when
    -H exceeds the largest flux the profile can carry (light wind, strong cooling; cf. Venkatram 1980,
    Boundary-Layer Meteorol. 19:481). The upper root is bracketed on a
    log-spaced scan of [1e-3 m/s, neutral u*] and bisected; without a root the u* of least relative
    residual (closest to the flux-limited state) is returned. Never below 1e-3 m/s.
    """
    u_neutral = max(friction_velocity(u_ref, z_ref, z0, 0.0), 1.0e-3)
    ustar = u_neutral
    for _ in range(100):
        new = max(friction_velocity(u_ref, z_ref, z0, 1.0 / obukhov_length(ustar, shf, t_k, rho)), 1.0e-3)
        if abs(new - ustar) <= 1.0e-8 * ustar:
            if shf >= 0.0 or new > 1.0e-3:
                return new
            break
        ustar = new
    if shf >= 0.0:
        return ustar
    n_scan = 48
    ratio = (u_neutral / 1.0e-3) ** (1.0 / (n_scan - 1))
    best_u = u_neutral
    best_r = _ustar_residual(u_neutral, u_ref, z_ref, z0, shf, t_k, rho) / u_neutral
    upper = u_neutral
    for k in range(n_scan - 2, -1, -1):
        lower = 1.0e-3 * ratio**k
        r = _ustar_residual(lower, u_ref, z_ref, z0, shf, t_k, rho)
        if r <= 0.0:
            for _ in range(45):  # bisection of the upper root in [lower, upper]
                mid = 0.5 * (lower + upper)
                if _ustar_residual(mid, u_ref, z_ref, z0, shf, t_k, rho) <= 0.0:
                    lower = mid
                else:
                    upper = mid
            return 0.5 * (lower + upper)
        if r / lower < best_r:
            best_r = r / lower
            best_u = lower
        upper = lower
    return best_u


@inline
def sensible_heat_flux_from_obukhov(ustar: float, obukhov_l: float, t_k: float, rho: float) -> float:
    """Sensible heat flux H (W m-2, upward) that gives Obukhov length L with u*.

    The definition of L (:func:`obukhov_length`) solved for H: H = -rho cp T u*^3 / (k g L).
    """
    return -rho * CP_DRY_AIR * t_k * ustar * ustar * ustar / (VON_KARMAN * GRAVITY * obukhov_l)


@inline
def convective_velocity_scale(shf: float, mixing_height: float, t_k: float, rho: float) -> float:
    """Deardorff convective velocity scale w* = (g H h / (rho cp T))^(1/3), m/s; 0 when H <= 0.

    Deardorff (1970, J. Atmos. Sci. 27:1211, eq. 3); H in W m-2 upward, h the mixing height in m.
    """
    if shf <= 0.0:
        return 0.0
    return (GRAVITY * shf * mixing_height / (rho * CP_DRY_AIR * t_k)) ** (1.0 / 3.0)


@inline
def coriolis_parameter(lat_deg: float) -> float:
    """Coriolis parameter f = 2 Omega sin(latitude), s-1."""
    return 2.0 * EARTH_ROTATION * math.sin(math.radians(lat_deg))


@inline
def diagnosed_mixing_height(ustar: float, obukhov_l: float, lat_deg: float) -> float:
    """Mixing height when the meteorology gives none, m.

    Stable and neutral surface layers: the smaller of the Zilitinkevich (1972, Boundary-Layer Meteorol.
    3:141) stable height h = 0.4 sqrt(u* L / |f|) and the neutral Rossby-number scaling h = 0.3 u*/|f|
    (e.g. Garratt 1992, The Atmospheric Boundary Layer, ch. 6). Under convective conditions h grows with
    the time-integrated heat flux and cannot be diagnosed from one time step; then the neutral value is
    returned as a lower estimate (callers should use the convective height from the met when present).
    Floored at :data:`MIN_MIXING_HEIGHT_M`; |f| is taken at no less than 10 degrees latitude.
    """
    f = max(abs(coriolis_parameter(lat_deg)), abs(coriolis_parameter(10.0)))
    h = 0.3 * ustar / f
    if obukhov_l > 0.0:
        h = min(h, 0.4 * math.sqrt(ustar * obukhov_l / f))
    return max(h, MIN_MIXING_HEIGHT_M)


@inline
def air_density(pressure_pa: float, t_k: float) -> float:
    """Dry-air density from the ideal gas law rho = p / (Rd T), kg m-3."""
    return pressure_pa / (R_DRY_AIR * t_k)


@inline
def hypsometric_thickness(p_bottom_pa: float, p_top_pa: float, t_mean_k: float) -> float:
    """Thickness of a layer between two pressures, dz = Rd T / g ln(p_bottom/p_top), m (hypsometric eq.)."""
    return R_DRY_AIR * t_mean_k / STANDARD_GRAVITY * math.log(p_bottom_pa / p_top_pa)


# --- Pasquill-Gifford classes --------------------------------------------------------------------------
# Seinfeld & Pandis (2006, Atmospheric Chemistry and Physics, 2nd ed., ch. 18) fit of Golder's
# (1972, Boundary-Layer Meteorol. 3:47) nomogram: 1/L = a + b log10(z0) for each class A..F.
_GOLDER_A = np.array([-0.096, -0.037, -0.002, 0.0, 0.004, 0.035])
_GOLDER_B = np.array([0.029, 0.029, 0.018, 0.0, -0.018, -0.036])


@inline
def pasquill_class_from_obukhov(inv_L: float, z0: float) -> int:
    """Pasquill-Gifford class (1..6 = A..F) from 1/L (m-1) and roughness length z0 (m).

    Golder (1972) related the classes to L and z0; Seinfeld & Pandis (2006) give the lines
    1/L = a + b log10(z0) with (a, b) = A (-0.096, 0.029), B (-0.037, 0.029), C (-0.002, 0.018),
    D (0, 0), E (0.004, -0.018), F (0.035, -0.036). We take each line as the centre of its class and the
    class boundaries half-way between neighbouring lines. z0 is clipped to 1e-4..3 m (Golder's range
    is 1 mm..0.5 m; outside it the fit is extrapolated).
    """
    lz = math.log10(min(max(z0, 1.0e-4), 3.0))
    centre_prev = _GOLDER_A[0] + _GOLDER_B[0] * lz
    for k in range(1, 6):
        centre = _GOLDER_A[k] + _GOLDER_B[k] * lz
        if inv_L < 0.5 * (centre_prev + centre):
            return k
        centre_prev = centre
    return 6


# Turner (1964, J. Appl. Meteorol. 3:83) table: rows wind speed class (knots 0-1, 2-3, 4-5, 6, 7, 8-9, 10,
# 11, >=12), columns net radiation index 4, 3, 2, 1, 0, -1, -2; entries 1..7 = A..G.
_TURNER_TABLE = np.array(
    [
        [1, 1, 2, 3, 4, 6, 7],
        [1, 2, 2, 3, 4, 6, 7],
        [1, 2, 3, 4, 4, 5, 6],
        [2, 2, 3, 4, 4, 5, 6],
        [2, 2, 3, 4, 4, 4, 5],
        [2, 3, 3, 4, 4, 4, 5],
        [3, 3, 4, 4, 4, 4, 5],
        [3, 3, 4, 4, 4, 4, 4],
        [3, 4, 4, 4, 4, 4, 4],
    ],
    dtype=np.int64,
)
_TURNER_SPEED_ROW = np.array([0, 0, 1, 1, 2, 2, 3, 4, 5, 5, 6, 7], dtype=np.int64)  # knots 0..11
_KNOT = 0.514444


@inline
def pasquill_class_turner(wind_speed_10m: float, cloud_cover: float, solar_elevation_deg: float) -> int:
    """Pasquill-Gifford class (1..6 = A..F) by Turner's (1964) net-radiation-index method.

    Insolation class from the solar elevation: > 60 deg strong (4), 35-60 moderate (3), 15-35 slight (2),
    0-15 weak (1); night when the sun is below the horizon. Net radiation index (NRI): overcast
    (cloud cover >= 0.95, i.e. 10/10, taking the ceiling as below 7000 ft, which the gridded data cannot
    tell) gives 0 day and night; night gives -2 for cover <= 0.4 and -1 otherwise; day gives the
    insolation class, reduced by 1 when cover > 0.5 (ceiling unknown: the 7000-16000 ft reduction is
    used) but not below 1. Wind speed is rounded to whole knots. Class G of the table is returned as F.
    """
    if cloud_cover >= 0.95:
        nri = 0
    elif solar_elevation_deg <= 0.0:
        nri = -2 if cloud_cover <= 0.4 else -1
    else:
        if solar_elevation_deg > 60.0:
            nri = 4
        elif solar_elevation_deg > 35.0:
            nri = 3
        elif solar_elevation_deg > 15.0:
            nri = 2
        else:
            nri = 1
        if cloud_cover > 0.5:
            nri = max(nri - 1, 1)
    knots = int(math.floor(wind_speed_10m / _KNOT + 0.5))
    row = 8 if knots >= 12 else _TURNER_SPEED_ROW[max(knots, 0)]
    return min(_TURNER_TABLE[row, 4 - nri], 6)


@inline
def obukhov_inverse_for_pasquill_class(pg_class: int, z0: float) -> float:
    """Return the representative 1/L (m-1) of a Pasquill-Gifford class at z0: the class's Golder line.

    Inverse of :func:`pasquill_class_from_obukhov` (Seinfeld & Pandis 2006 fit of Golder 1972), used to
    attach a stability to classes found by Turner's method when the met has no surface fluxes.
    """
    lz = math.log10(min(max(z0, 1.0e-4), 3.0))
    k = min(max(pg_class, 1), 6) - 1
    return _GOLDER_A[k] + _GOLDER_B[k] * lz


# --- array versions (loops over the scalar helpers, for the input side) ------------------------------
def _flat_float64(*arrays) -> tuple[list[np.ndarray], tuple[int, ...]]:
    """Broadcast inputs together; return them as contiguous 1-D float64 arrays and the common shape.

    Every ``*_array`` wrapper below runs a scalar helper in a compiled loop over these flat arrays and
    reshapes the result back.
    """
    b = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in arrays))
    return [np.ascontiguousarray(a).ravel() for a in b], b[0].shape


@kernel(parallel=True)
def _surface_layer_from_flux_loop(u10, z0, shf, t_k, rho, ustar_in, z_ref, ustar, inv_l):
    for i in prange(u10.size):  # the costliest derived field: up to ~150 profile evaluations a point
        if np.isnan(ustar_in[i]):
            us = friction_velocity_from_heat_flux(u10[i], z_ref, z0[i], shf[i], t_k[i], rho[i])
        else:
            us = max(ustar_in[i], 1.0e-3)
        ustar[i] = us
        inv_l[i] = 1.0 / obukhov_length(us, shf[i], t_k[i], rho[i])


def surface_layer_from_heat_flux(
    wind_speed_10m: np.ndarray,
    z0: np.ndarray,
    shf: np.ndarray,
    t_k: np.ndarray,
    rho: np.ndarray,
    ustar: np.ndarray | None = None,
    z_ref: float = 10.0,
) -> tuple[np.ndarray, np.ndarray]:
    """u* (m/s) and Obukhov length L (m) on arrays, from wind, z0, H (W m-2 upward), T (K), rho (kg m-3).

    Where ``ustar`` is given (not NaN) it is used and only L is computed (:func:`obukhov_length`);
    elsewhere u* comes from :func:`friction_velocity_from_heat_flux`. All inputs broadcast together.
    """
    flat, shape = _flat_float64(wind_speed_10m, z0, shf, t_k, rho, np.nan if ustar is None else ustar)
    us = np.empty(flat[0].size)
    inv_l = np.empty(flat[0].size)
    _surface_layer_from_flux_loop(*flat, float(z_ref), us, inv_l)
    return us.reshape(shape), (1.0 / inv_l).reshape(shape)


@kernel()
def _surface_layer_from_stability_loop(u10, z0, inv_l, t_k, rho, z_ref, ustar, shf):
    for i in range(u10.size):
        us = max(friction_velocity(u10[i], z_ref, z0[i], inv_l[i]), 1.0e-3)
        ustar[i] = us
        shf[i] = sensible_heat_flux_from_obukhov(us, 1.0 / inv_l[i], t_k[i], rho[i])


def surface_layer_from_stability(
    wind_speed_10m: np.ndarray,
    z0: np.ndarray,
    inv_L: np.ndarray,
    t_k: np.ndarray,
    rho: np.ndarray,
    z_ref: float = 10.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Return u* (m/s) and H (W m-2, upward) for a known stability 1/L (m-1), on arrays.

    :func:`friction_velocity` and :func:`sensible_heat_flux_from_obukhov`; used after a Turner class when
    the met has no fluxes.
    """
    flat, shape = _flat_float64(wind_speed_10m, z0, inv_L, t_k, rho)
    us = np.empty(flat[0].size)
    shf = np.empty(flat[0].size)
    _surface_layer_from_stability_loop(*flat, float(z_ref), us, shf)
    return us.reshape(shape), shf.reshape(shape)


@kernel()
def _convective_velocity_loop(shf, h, t_k, rho, out):
    for i in range(shf.size):
        out[i] = convective_velocity_scale(shf[i], h[i], t_k[i], rho[i])


def convective_velocity_scale_array(
    shf: np.ndarray, mixing_height: np.ndarray, t_k: np.ndarray, rho: np.ndarray
) -> np.ndarray:
    """Array version of :func:`convective_velocity_scale` (Deardorff 1970), m/s."""
    flat, shape = _flat_float64(shf, mixing_height, t_k, rho)
    out = np.empty(flat[0].size)
    _convective_velocity_loop(*flat, out)
    return out.reshape(shape)


@kernel()
def _mixing_height_loop(ustar, obukhov_l, lat, out):
    for i in range(ustar.size):
        out[i] = diagnosed_mixing_height(ustar[i], obukhov_l[i], lat[i])


def diagnosed_mixing_height_array(
    ustar: np.ndarray, obukhov_l: np.ndarray, lat_deg: np.ndarray
) -> np.ndarray:
    """Array version of :func:`diagnosed_mixing_height` (Zilitinkevich 1972 / neutral scaling), m."""
    flat, shape = _flat_float64(ustar, obukhov_l, lat_deg)
    out = np.empty(flat[0].size)
    _mixing_height_loop(*flat, out)
    return out.reshape(shape)


@kernel()
def _pg_golder_loop(inv_l, z0, out):
    for i in range(inv_l.size):
        out[i] = pasquill_class_from_obukhov(inv_l[i], z0[i])


def pasquill_class_from_obukhov_array(obukhov_l: np.ndarray, z0: np.ndarray) -> np.ndarray:
    """Array version of :func:`pasquill_class_from_obukhov` taking L (m); int8 classes 1..6 = A..F."""
    flat, shape = _flat_float64(1.0 / np.asarray(obukhov_l, dtype=np.float64), z0)
    out = np.empty(flat[0].size, dtype=np.int8)
    _pg_golder_loop(*flat, out)
    return out.reshape(shape)


@kernel()
def _pg_turner_loop(speed, cloud, elevation, z0, pg, inv_l):
    for i in range(speed.size):
        k = pasquill_class_turner(speed[i], cloud[i], elevation[i])
        pg[i] = k
        inv_l[i] = obukhov_inverse_for_pasquill_class(k, z0[i])


def pasquill_class_turner_array(
    wind_speed_10m: np.ndarray, cloud_cover: np.ndarray, solar_elevation_deg: np.ndarray, z0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Turner (1964) class (int8 1..6) and the class's representative 1/L (m-1, Golder line) on arrays."""
    flat, shape = _flat_float64(wind_speed_10m, cloud_cover, solar_elevation_deg, z0)
    pg = np.empty(flat[0].size, dtype=np.int8)
    inv_l = np.empty(flat[0].size)
    _pg_turner_loop(*flat, pg, inv_l)
    return pg.reshape(shape), inv_l.reshape(shape)


@kernel()
def _wind_profile_loop(u_ref, z_ref, z, z0, inv_l, out):
    for i in range(u_ref.size):
        out[i] = wind_speed_at_height(u_ref[i], z_ref, z, z0[i], inv_l[i])


def wind_speed_at_height_array(
    u_ref: np.ndarray, z_ref: float, z: float, z0: np.ndarray, inv_L: np.ndarray
) -> np.ndarray:
    """Array version of :func:`wind_speed_at_height` for one pair of heights (m), m/s."""
    flat, shape = _flat_float64(u_ref, z0, inv_L)
    out = np.empty(flat[0].size)
    _wind_profile_loop(flat[0], float(z_ref), float(z), flat[1], flat[2], out)
    return out.reshape(shape)


@kernel()
def _air_density_loop(p, t, out):
    for i in range(p.size):
        out[i] = air_density(p[i], t[i])


def air_density_array(pressure_pa: np.ndarray, t_k: np.ndarray) -> np.ndarray:
    """Array version of :func:`air_density` (ideal gas), kg m-3."""
    flat, shape = _flat_float64(pressure_pa, t_k)
    out = np.empty(flat[0].size)
    _air_density_loop(*flat, out)
    return out.reshape(shape)


@kernel()
def _hypsometric_loop(p_bottom, p_top, t_mean, out):
    for i in range(p_bottom.size):
        out[i] = hypsometric_thickness(p_bottom[i], p_top[i], t_mean[i])


def hypsometric_thickness_array(
    p_bottom_pa: np.ndarray, p_top_pa: np.ndarray, t_mean_k: np.ndarray
) -> np.ndarray:
    """Array version of :func:`hypsometric_thickness`, m."""
    flat, shape = _flat_float64(p_bottom_pa, p_top_pa, t_mean_k)
    out = np.empty(flat[0].size)
    _hypsometric_loop(*flat, out)
    return out.reshape(shape)


# --- sun position ------------------------------------------------------------------------------------
def solar_elevation_deg(time_utc: np.ndarray, lon_deg: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """Geometric solar elevation angle, degrees, for UTC times and positions (broadcast together).

    NOAA Solar Calculator algorithm (after Meeus 1991, Astronomical Algorithms, ch. 24-28): solar
    declination and equation of time from the Julian century, then the hour angle from true solar time.
    No atmospheric refraction (< 0.6 deg, only near the horizon). Accuracy ~0.01 deg for 1800-2100.
    """
    t = np.asarray(time_utc).astype("datetime64[ns]")
    lon = np.asarray(lon_deg, dtype=np.float64)
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    days = t.astype(np.int64) / 86400e9  # days since 1970-01-01T00 UTC
    jc = (days + 2440587.5 - 2451545.0) / 36525.0
    l0 = np.radians((280.46646 + jc * (36000.76983 + jc * 0.0003032)) % 360.0)
    m = np.radians(357.52911 + jc * (35999.05029 - 0.0001537 * jc))
    ecc = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    centre = (
        np.sin(m) * (1.914602 - jc * (0.004817 + 0.000014 * jc))
        + np.sin(2 * m) * (0.019993 - 0.000101 * jc)
        + np.sin(3 * m) * 0.000289
    )
    omega = np.radians(125.04 - 1934.136 * jc)
    app_long = np.radians(np.degrees(l0) + centre - 0.00569 - 0.00478 * np.sin(omega))
    obliq = np.radians(
        23.0
        + (26.0 + (21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))) / 60.0) / 60.0
        + 0.00256 * np.cos(omega)
    )
    decl = np.arcsin(np.sin(obliq) * np.sin(app_long))
    y = np.tan(obliq / 2) ** 2
    eot_min = 4.0 * np.degrees(
        y * np.sin(2 * l0)
        - 2 * ecc * np.sin(m)
        + 4 * ecc * y * np.sin(m) * np.cos(2 * l0)
        - 0.5 * y * y * np.sin(4 * l0)
        - 1.25 * ecc * ecc * np.sin(2 * m)
    )
    minutes_utc = (days % 1.0) * 1440.0
    true_solar_min = (minutes_utc + eot_min + 4.0 * lon) % 1440.0
    hour_angle = np.radians(true_solar_min / 4.0 - 180.0)
    cos_zen = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    return 90.0 - np.degrees(np.arccos(np.clip(cos_zen, -1.0, 1.0)))
