"""Steady-state Gaussian plume: per-source preparation (NumPy) and the Numba receptor kernels.

One met hour: every source gets its wind, plume rise, effective height, sigma coefficients, regime
distances, lid-image coefficients and deposition table once (:func:`prepare_point_sources`), packed into a
structure-of-arrays float matrix ``params[nsrc, NCOL]``; the kernels then loop over receptors only.

Concentration of source s at a receptor x m downwind, y m crosswind, height z_r (g/m3 for Q in g/s):

    C = Q / (2 pi u sigma_y sigma_z) exp(-y^2/(2 sigma_y^2)) exp(-k x/u) D(x) V(sigma_z)

with sigma_y, sigma_z from :mod:`airshed.physics.dispersion`, V the ground- and lid-reflected vertical factor
and D the source-depletion factor (:mod:`airshed.physics.deposition`). V is evaluated in three regimes of x
(thresholds per source, so each is a plain vectorisable loop):

- near (sigma_z < sigma_near): the source and its ground image only. Every lid image is smaller than the
  direct term at the same receptor by at least exp(-2 (h - H)(h - z_r) / sigma_z^2) (the squared distances
  differ by 4 (h - H)(h - z_r) or more), so with sigma_near^2 = 2 (h - H)(h - z_r) / ln(1e16) the dropped
  images are below 4e-16 of the receptor's own value.
- middle (sigma_near <= sigma_z < h/2): images n = -2..2 of both families (one exponential each);
  images |n| >= 3 are below exp(-50).
- far (sigma_z >= h/2): the Poisson-resummed series whose leading term is the well-mixed plume
  Q exp(-y^2/2 sigma_y^2) / (sqrt(2 pi) u sigma_y h); 6 correction terms (< 1e-26 neglected).

Pairs with x <= x_min (upwind, or closer than x_min, default 1 m) contribute 0, and so do pairs whose
lateral exponent is below :data:`LATERAL_EXPONENT_FLOOR` (-600: < 1e-260 of the centre-line value), which
keeps subnormal numbers out of the arithmetic.

Footprint skipping (grid kernel, ``skip=True``): for each receptor row only the columns inside the
trapezoid 0 <= x <= x_max, |y| <= c (a_y x + sigma_y0) are visited, where c = ``sigma_y_cutoff`` and
sigma_y(x) <= a_y x + sigma_y0 for every option. A skipped pair is below exp(-c^2/2) of the plume centre-line
value at the same distance (c = 6: 1.5e-8; c = 8: 1.3e-14). ``skip=False`` visits every pair (dense).

Each thread owns whole receptor rows (grid) or receptor blocks (points), so there are no write races and
the result is bit-identical for any thread count. Exponentials and logarithms are the branch-free
:mod:`airshed.model.fastmath` ones so the inner loops vectorise; the kernels use airshed.jit's safe
fastmath flags (nsz, arcp, contract: FMA contraction, ~1.5x measured, results within ~1e-15).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import prange

from airshed.errors import AirshedInputError
from airshed.jit import inline, kernel
from airshed.model.fastmath import fast_exp, fast_log
from airshed.physics import boundary_layer as bl
from airshed.physics import deposition as dep
from airshed.physics import dispersion as disp
from airshed.physics import plume_rise as rise

# --- column layout of the prepared source matrix -------------------------------------------------------
(
    XS,
    YS,
    EX,
    EY,
    PREF,
    H,
    LID,
    DECAY,
    AY,
    BY,
    PY,
    AZ,
    BZ,
    PZ,
    AZ2,
    BZ2,
    PZ2,
    CZ,
    SY02,
    SZ02,
    FAST,
    WY_M2,
    WY_M1,
    WY_0,
    WY_P1,
    WZ_M2,
    WZ_M1,
    WZ_0,
    WZ_P1,
    XNEAR,
    XFAR,
    XMAX,
    WEDGE_A,
    WEDGE_B,
    D2C,
    DEPXMAX,
) = range(36)
NCOL = 36
"""Columns of ``PreparedSources.params``: PREF = Q/(2 pi u) (0 for penetrated sources), DECAY = k/u,
FAST = 1 when sigma^2 is an integer power form (Briggs options), W* its one-hot weights, D2C the
centred offset of the ground-image family, WEDGE_A/B the footprint slope and offset (c a_y, c sigma_y0)."""

NEAR_IMAGE_TOLERANCE = 1e-16
"""Lid images are dropped while each is below this fraction of the direct term at the receptor."""
_LN_NEAR = math.log(1.0 / NEAR_IMAGE_TOLERANCE)
FAR_SIGMA_Z_OVER_H = 0.5
"""sigma_z / h from which the resummed (Fourier) series is used."""
DEFAULT_MIN_WIND_SPEED = 1.0
"""Calm threshold, m/s: plume wind speeds below it are raised to it and counted (ISC3 uses 1 m/s)."""
LATERAL_EXPONENT_FLOOR = -600.0
"""Pairs whose lateral-and-decay exponent -y^2/(2 sigma_y^2) - k x/u is below this are exactly 0
(< 1e-260 of the plume's centre-line value at that distance)."""
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_PI2_HALF = 0.5 * math.pi * math.pi


class PreparedSources(NamedTuple):
    """Everything the kernels need for one hour and one species (plain arrays and scalars)."""

    params: np.ndarray  # (nsrc, NCOL) float64
    tag: np.ndarray  # (nsrc,) int64, apportionment tag = region * nsector + sector
    fourier: np.ndarray  # (nsrc, FOURIER_TERMS) lid-image coefficients c_m
    depletion: np.ndarray  # (nsrc, nodes) ln(Q(x)/Q0) table, or (nsrc, 0) without deposition
    receptor_height: float
    x_min: float
    n_calm: int  # sources whose plume wind speed was raised to the calm threshold
    n_penetrated: int  # sources whose plume is above the mixing lid (no ground-level contribution)


def _as_source_array(name: str, value, n: int, dtype=np.float64) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim == 0:
        return np.full(n, arr, dtype=dtype)
    if arr.shape != (n,):
        raise AirshedInputError(
            f"plume source input '{name}' must be a scalar or have shape ({n},), got {arr.shape}"
        )
    return arr


def _one_hot_powers(p2: np.ndarray) -> np.ndarray:
    """Weights (w_-2, w_-1, w_0, w_1) with g^p2 = w_-2 g^-2 + w_-1 g^-1 + w_0 + w_1 g for integer p2."""
    w = np.zeros((p2.size, 4))
    for col, power in enumerate((-2.0, -1.0, 0.0, 1.0)):
        w[:, col] = p2 == power
    return w


def _invert_sigma_z(
    target: np.ndarray, par: disp.SigmaParameters, sz0: np.ndarray, x_lo: float
) -> np.ndarray:
    """Smallest x >= x_lo with sigma_z(x) >= target (m), inf when never reached before 1e8 m (bisection)."""
    n = target.size
    lo = np.full(n, math.log(x_lo))
    hi = np.full(n, math.log(1e8))

    def sz(logx):
        x = np.exp(logx)
        s = disp.sigma_power_form(x, par.az, par.bz, par.pz) + disp.sigma_power_form(
            x, par.az2, par.bz2, par.pz2
        )
        c = par.cz * x * x
        return np.sqrt(s * s + c * c + sz0 * sz0)

    with np.errstate(invalid="ignore", over="ignore"):
        reached = sz(hi) >= target
        already = sz(lo) >= target
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            up = sz(mid) >= target
            hi = np.where(up, mid, hi)
            lo = np.where(up, lo, mid)
    out = np.where(reached, np.exp(hi), np.inf)
    out = np.where(already, x_lo, out)
    return np.where(np.isfinite(target), out, np.inf)


def prepare_point_sources(
    x: np.ndarray,
    y: np.ndarray,
    emission: np.ndarray,
    tag: np.ndarray,
    stack_height: np.ndarray,
    *,
    wind_speed: np.ndarray,
    wind_direction_deg: np.ndarray,
    wind_height: float,
    roughness_length: np.ndarray,
    ustar: np.ndarray,
    obukhov_length: np.ndarray,
    mixing_height: np.ndarray,
    pg_class: np.ndarray,
    air_temperature: np.ndarray,
    option: int = disp.BRIGGS_RURAL,
    diameter: np.ndarray = 0.0,
    exit_velocity: np.ndarray = 0.0,
    stack_temperature: np.ndarray | None = None,
    sigma_y0: np.ndarray = 0.0,
    sigma_z0: np.ndarray = 0.0,
    wstar: np.ndarray | None = None,
    receptor_height: float = 0.0,
    decay_rate: float = 0.0,
    deposition_velocity: float = 0.0,
    x_min: float = 1.0,
    x_max: np.ndarray = 1.0e6,
    sigma_y_cutoff: float = 6.0,
    min_wind_speed: float = DEFAULT_MIN_WIND_SPEED,
    wind_floor_height: float | None = None,
) -> PreparedSources:
    """Per-source quantities of one met hour and one species (NumPy; outside the receptor loop).

    Meteorology arguments are per source (sampled by the caller at the source) or scalars.

    Parameters
    ----------
    x, y : source position in the receptor coordinate system, m.
    emission : Q, g/s (any mass unit per s; the concentration is that unit per m3).
    tag : int, apportionment tag of each source (region * nsector + sector).
    stack_height : physical release height h_s, m.
    wind_speed : speed at ``wind_height`` m, m/s. wind_direction_deg : direction the wind blows FROM,
        degrees clockwise from the receptor grid's +y axis (rotate geographic directions by the grid's
        north angle before calling).
    roughness_length : z0, m. ustar : u*, m/s. obukhov_length : L, m (+-inf or |L| >= 1e5 neutral).
    mixing_height : h, m (np.inf: no lid). pg_class : Pasquill-Gifford class 1..6 (A..F), used by the
        Briggs options and for stable plume rise (classes E, F) in all options.
    air_temperature : K. option : :data:`airshed.physics.dispersion.DISPERSION_OPTIONS` code.
    diameter, exit_velocity, stack_temperature : stack parameters (m, m/s, K) for plume rise; defaults give
        no rise (area/volume sources). sigma_y0, sigma_z0 : initial spreads, m.
    wstar : convective velocity, m/s (default from u*, L, h by
        :func:`~airshed.physics.dispersion.convective_velocity_from_obukhov`).
    receptor_height : flagpole height z_r of all receptors, m (< mixing height).
    decay_rate : first-order loss k, s-1. deposition_velocity : v_d, m/s (source depletion).
    x_min : pairs closer than this downwind are 0, m. x_max : farthest distance evaluated (footprint, and
        deposition table range), m. sigma_y_cutoff : footprint half-width in sigma_y.
    min_wind_speed : calm threshold, m/s. wind_floor_height : the plume wind is taken at
        max(h_s', this), m; default ``wind_height`` (never extrapolate below the anemometer, the ISC3
        convention for stacks lower than the measurement height).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    f = {
        name: _as_source_array(name, val, n)
        for name, val in dict(
            y=y,
            emission=emission,
            stack_height=stack_height,
            wind_speed=wind_speed,
            wind_direction_deg=wind_direction_deg,
            roughness_length=roughness_length,
            ustar=ustar,
            obukhov_length=obukhov_length,
            mixing_height=mixing_height,
            air_temperature=air_temperature,
            diameter=diameter,
            exit_velocity=exit_velocity,
            sigma_y0=sigma_y0,
            sigma_z0=sigma_z0,
            x_max=x_max,
            stack_temperature=air_temperature if stack_temperature is None else stack_temperature,
        ).items()
    }
    tag = _as_source_array("tag", tag, n, np.int64)
    pg = _as_source_array("pg_class", pg_class, n, np.int64)
    if option not in disp.DISPERSION_OPTIONS.values():
        raise AirshedInputError(f"dispersion option must be one of {disp.DISPERSION_OPTIONS}, got {option}")
    if np.any((pg < 1) | (pg > 6)):
        raise AirshedInputError("pg_class must be 1..6 (A..F)")
    for name in ("emission", "stack_height", "wind_speed", "roughness_length", "diameter", "exit_velocity"):
        if np.any(~(f[name] >= 0.0)):
            raise AirshedInputError(f"plume source input '{name}' must be >= 0 and not NaN")
    if np.any(~(f["mixing_height"] > receptor_height)):
        raise AirshedInputError("mixing_height must exceed receptor_height for every source")
    if np.any(tag < 0):
        raise AirshedInputError("source tags must be >= 0")

    inv_l = np.where(
        np.abs(f["obukhov_length"]) >= bl.NEUTRAL_OBUKHOV_LENGTH_M, 0.0, 1.0 / f["obukhov_length"]
    )
    z_floor = wind_height if wind_floor_height is None else wind_floor_height

    def wind_at(z):
        return np.array(
            [
                bl.wind_speed_at_height(
                    f["wind_speed"][i], wind_height, max(z[i], z_floor), f["roughness_length"][i], inv_l[i]
                )
                for i in range(n)
            ]
        )

    u_stack = wind_at(f["stack_height"])
    calm = u_stack < min_wind_speed
    u_stack = np.maximum(u_stack, min_wind_speed)
    hs_dw = rise.stack_tip_downwash_height(f["stack_height"], f["diameter"], f["exit_velocity"], u_stack)
    fb = rise.buoyancy_flux(f["diameter"], f["exit_velocity"], f["stack_temperature"], f["air_temperature"])
    fm = rise.momentum_flux(f["diameter"], f["exit_velocity"], f["stack_temperature"], f["air_temperature"])
    stable = pg >= 5
    dtheta = np.where(pg == 6, rise.STABLE_DTHETA_DZ[6], np.where(pg == 5, rise.STABLE_DTHETA_DZ[5], 0.0))
    s_par = rise.stability_parameter(f["air_temperature"], dtheta)
    dh, _ = rise.briggs_final_rise(fb, fm, f["diameter"], f["exit_velocity"], u_stack, stable, s_par)
    he = hs_dw + dh
    u = u_stack
    lid = f["mixing_height"]
    penetrated = he >= lid

    sy0, sz0 = f["sigma_y0"], f["sigma_z0"]
    if option == disp.BOUNDARY_LAYER:
        ws = (
            disp.convective_velocity_from_obukhov(f["ustar"], f["obukhov_length"], lid)
            if wstar is None
            else _as_source_array("wstar", wstar, n)
        )
        lid_for_sigma = np.where(np.isfinite(lid), lid, 1e4)
        par = disp.boundary_layer_sigma_parameters(
            u, f["ustar"], ws, f["obukhov_length"], lid_for_sigma, f["stack_height"], he, np.sqrt(s_par)
        )
        sb = disp.buoyancy_induced_sigma(dh)
        sy0 = np.sqrt(sy0 * sy0 + sb * sb)
        sz0 = np.sqrt(sz0 * sz0 + sb * sb)
    else:
        par = disp.briggs_sigma_parameters(pg, urban=option == disp.BRIGGS_URBAN)

    p = np.zeros((n, NCOL))
    theta = np.deg2rad(f["wind_direction_deg"])
    p[:, XS], p[:, YS] = x, f["y"]
    p[:, EX], p[:, EY] = -np.sin(theta), -np.cos(theta)
    p[:, PREF] = np.where(penetrated, 0.0, f["emission"] / (2.0 * np.pi * u))
    p[:, H], p[:, LID] = he, lid
    p[:, DECAY] = decay_rate / u
    for col, arr in zip((AY, BY, PY, AZ, BZ, PZ, AZ2, BZ2, PZ2, CZ), par, strict=True):
        p[:, col] = arr
    p[:, SY02], p[:, SZ02] = sy0 * sy0, sz0 * sz0
    py2, pz2 = 2.0 * par.py, 2.0 * par.pz
    integer_powers = (
        np.isin(py2, (-2.0, -1.0, 0.0, 1.0)) & np.isin(pz2, (-2.0, -1.0, 0.0, 1.0)) & (par.az2 == 0.0)
    )
    p[:, FAST] = integer_powers
    p[:, WY_M2 : WY_P1 + 1] = _one_hot_powers(py2)
    p[:, WZ_M2 : WZ_P1 + 1] = _one_hot_powers(pz2)
    with np.errstate(invalid="ignore"):
        sigma_near = np.where(
            np.isfinite(lid) & ~penetrated,
            np.sqrt(2.0 * np.maximum(lid - he, 0.0) * (lid - receptor_height) / _LN_NEAR),
            np.inf,
        )
    sigma_far = np.where(np.isfinite(lid), FAR_SIGMA_Z_OVER_H * lid, np.inf)
    p[:, XNEAR] = np.maximum(_invert_sigma_z(sigma_near, par, sz0, x_min), x_min)
    p[:, XFAR] = np.maximum(_invert_sigma_z(sigma_far, par, sz0, x_min), p[:, XNEAR])
    p[:, XMAX] = np.maximum(f["x_max"], x_min)
    p[:, WEDGE_A] = sigma_y_cutoff * par.ay
    p[:, WEDGE_B] = sigma_y_cutoff * sy0
    d2 = receptor_height + he
    p[:, D2C] = np.where(np.isfinite(lid) & (d2 > lid), d2 - 2.0 * lid, d2)
    p[:, DEPXMAX] = p[:, XMAX]
    fourier = disp.vertical_fourier_coefficients(receptor_height, np.minimum(he, lid), lid)

    if deposition_velocity > 0.0:
        fourier_ground = disp.vertical_fourier_coefficients(0.0, np.minimum(he, lid), lid)
        table = np.zeros((n, dep.DEPLETION_TABLE_NODES))
        for i in np.flatnonzero(~penetrated):

            def ground_profile(xx, i=i):
                sz = disp.sigma_z_from_parameters(xx, par, i, sz0[i])
                far = sz >= sigma_far[i]
                v = np.where(
                    far,
                    disp.vertical_fourier_sum(sz, lid[i], fourier_ground[i]),
                    disp.vertical_image_sum(0.0, he[i], lid[i], sz, n_images=3),
                )
                return v / (_SQRT_2PI * sz)

            table[i] = dep.log_depletion_table(
                p[i, DEPXMAX], x_min, deposition_velocity, u[i], ground_profile
            )
    else:
        table = np.zeros((n, 0))
    return PreparedSources(
        p,
        tag,
        np.ascontiguousarray(fourier),
        table,
        float(receptor_height),
        float(x_min),
        int(np.count_nonzero(calm)),
        int(np.count_nonzero(penetrated & (f["emission"] > 0))),
    )


# --- Numba kernels ---------------------------------------------------------------------------------------
@inline
def _sigma2_integer(x, a, b, w_m2, w_m1, w_0, w_p1):
    """Return (a x (1 + b x)^p)^2 for 2p in {-2, -1, 0, 1}, branch-free through one-hot weights."""
    g = 1.0 + b * x
    ig = 1.0 / g
    return a * a * x * x * (w_0 + w_p1 * g + ig * (w_m1 + w_m2 * ig))


@inline
def _sigma_general(x, a, b, p):
    """Return a x (1 + b x)^p for any real p (fast exp/log)."""
    return a * x * fast_exp(p * fast_log(1.0 + b * x))


@inline
def _image_family(lat, d, lid, inv):
    """Sum of exp(lat - (d + 2 n h)^2 inv) over n = -2..2 (|d| <= h), one exponential per term.

    Each term is exponentiated directly (not by recurrence) so that no product of small factors goes
    subnormal; fast_exp returns exact 0 below -708.
    """
    h2 = 2.0 * lid
    dm2 = d - 2.0 * h2
    dm1 = d - h2
    dp1 = d + h2
    dp2 = d + 2.0 * h2
    return (
        fast_exp(lat - d * d * inv)
        + fast_exp(lat - dp1 * dp1 * inv)
        + fast_exp(lat - dm1 * dm1 * inv)
        + fast_exp(lat - dp2 * dp2 * inv)
        + fast_exp(lat - dm2 * dm2 * inv)
    )


@inline
def _pair_value(x, y, zr, x_min, regime, fast, geo, sgy, sgz, cms):
    """Concentration of one source at one receptor without depletion; regime 0 near, 1 middle, 2 far.

    Source quantities arrive as tuples of scalars, geo = (Q/(2 pi u), H, h, d2c, k/u),
    sgy = (a, b, p, w_-2, w_-1, w_0, w_1, sigma_y0^2), sgz = (a, b, p, w_-2, w_-1, w_0, w_1, a2, b2, p2, c,
    sigma_z0^2), cms = c_1..c_6: no array loads in the receptor loop, so stores to the output cannot alias
    them and the loop vectorises. ``regime`` and ``fast`` are literals at every call site of the grid
    kernel, so each call compiles to one branch-free loop body.
    """
    pref, hgt, lid, d2c, decay = geo
    ay, by, py, wy_m2, wy_m1, wy_0, wy_p1, sy02 = sgy
    az, bz, pz, wz_m2, wz_m1, wz_0, wz_p1, az2, bz2, pz2, cz, sz02 = sgz
    c1, c2, c3, c4, c5, c6 = cms
    xe = max(x, x_min)
    if fast:
        sy2 = _sigma2_integer(xe, ay, by, wy_m2, wy_m1, wy_0, wy_p1) + sy02
        sz2 = _sigma2_integer(xe, az, bz, wz_m2, wz_m1, wz_0, wz_p1)
    else:
        sy = _sigma_general(xe, ay, by, py)
        sy2 = sy * sy + sy02
        sz = _sigma_general(xe, az, bz, pz) + _sigma_general(xe, az2, bz2, pz2)
        sz2 = sz * sz
    cx = cz * xe * xe
    sz2 = sz2 + cx * cx + sz02
    lat_exact = -0.5 * y * y / sy2 - decay * xe
    # beyond LATERAL_EXPONENT_FLOOR the pair is < 1e-260 of its centre line: set to exactly 0 (below), and
    # clamp first so no intermediate product becomes subnormal (subnormal arithmetic is ~100x slower)
    lat = max(lat_exact, LATERAL_EXPONENT_FLOOR)
    if regime == 0:
        inv = 0.5 / sz2
        d1 = zr - hgt
        d2 = zr + hgt
        c = pref / math.sqrt(sy2 * sz2) * (fast_exp(lat - d1 * d1 * inv) + fast_exp(lat - d2 * d2 * inv))
    elif regime == 1:
        inv = 0.5 / sz2
        v = _image_family(lat, zr - hgt, lid, inv) + _image_family(lat, d2c, lid, inv)
        c = pref / math.sqrt(sy2 * sz2) * v
    else:
        e1 = fast_exp(-_PI2_HALF * sz2 / (lid * lid))
        e2 = e1 * e1
        e4 = e2 * e2
        e8 = e4 * e4
        e9 = e8 * e1
        e16 = e8 * e8
        corr = c1 * e1 + c2 * e4 + c3 * e9 + c4 * e16 + c5 * (e16 * e9) + c6 * (e16 * e16 * e4)
        c = pref * _SQRT_2PI / (lid * math.sqrt(sy2)) * fast_exp(lat) * (1.0 + corr)
    return c if (x > x_min and lat_exact > LATERAL_EXPONENT_FLOOR) else 0.0


@inline
def _log_depletion(x, x_max_table, table):
    """Linear interpolation of a source's ln-depletion table in sqrt(x / x_max)."""
    n = table.size
    t = math.sqrt(min(max(x / x_max_table, 0.0), 1.0)) * (n - 1)
    k = min(int(t), n - 2)
    return table[k] + (t - k) * (table[k + 1] - table[k])


@inline
def _segment(out, a, b, xa, dxi, yb, dyi, zr, x_min, regime, fast, geo, sgy, sgz, cms):
    """Write the source's values at receptors a..b-1 of a row (x = xa + i dxi, y = yb + i dyi) into out."""
    for i in range(a, b):
        out[i] = _pair_value(xa + i * dxi, yb + i * dyi, zr, x_min, regime, fast, geo, sgy, sgz, cms)


@inline
def _regime_range(xa, dxi, lo, hi, i0, i1):
    """Index range [a, b) within [i0, i1) where lo <= xa + i dxi < hi (x linear along the row)."""
    if dxi > 0.0:
        a = math.ceil(min(max((lo - xa) / dxi, i0), i1))
        b = math.ceil(min(max((hi - xa) / dxi, i0), i1))
    elif dxi < 0.0:
        a = math.floor(min(max((hi - xa) / dxi, i0 - 1.0), i1 - 1.0)) + 1
        b = math.floor(min(max((lo - xa) / dxi, i0 - 1.0), i1 - 1.0)) + 1
    else:
        inside = lo <= xa < hi
        a = i0
        b = i1 if inside else i0
    return int(a), int(max(a, b))


@inline
def _row_footprint(s, xr0, yr, gdx, nx):
    """Columns [i0, i1) of receptor row y = yr (x = xr0 + i gdx) inside the source's footprint trapezoid."""
    ex, ey = s[EX], s[EY]
    xm = s[XMAX]
    w0 = s[WEDGE_B]
    w1 = s[WEDGE_B] + s[WEDGE_A] * xm
    # trapezoid corners (downwind, crosswind) -> world; crosswind axis n = (-ey, ex)
    px0 = s[XS] - ey * w0
    py0 = s[YS] + ex * w0
    px1 = s[XS] + ex * xm - ey * w1
    py1 = s[YS] + ey * xm + ex * w1
    px2 = s[XS] + ex * xm + ey * w1
    py2 = s[YS] + ey * xm - ex * w1
    px3 = s[XS] + ey * w0
    py3 = s[YS] - ex * w0
    xlo = np.inf
    xhi = -np.inf
    for e in range(4):
        if e == 0:
            ax, ay, bx, by = px0, py0, px1, py1
        elif e == 1:
            ax, ay, bx, by = px1, py1, px2, py2
        elif e == 2:
            ax, ay, bx, by = px2, py2, px3, py3
        else:
            ax, ay, bx, by = px3, py3, px0, py0
        if (ay - yr) * (by - yr) <= 0.0:
            if ay == by:
                xlo = min(xlo, min(ax, bx))
                xhi = max(xhi, max(ax, bx))
            else:
                xc = ax + (yr - ay) * (bx - ax) / (by - ay)
                xlo = min(xlo, xc)
                xhi = max(xhi, xc)
    if xhi < xlo:
        return 0, 0
    i0 = math.ceil(min(max((xlo - xr0) / gdx, 0.0), float(nx)))
    i1 = math.floor(min(max((xhi - xr0) / gdx, -1.0), nx - 1.0)) + 1
    return int(i0), int(max(i0, i1))


@kernel(parallel=True, fastmath=True)
def plume_grid_kernel(params, tag, fourier, depletion, zr, x_min, gx0, gy0, gdx, gdy, nx, ny, skip, conc):
    """Add every source's concentration to ``conc[tag, j * nx + i]`` on a regular receptor grid.

    Receptor (i, j) lies at (gx0 + i gdx, gy0 + j gdy), height zr. One thread per receptor row (prange).
    ``skip`` restricts each row to the source's footprint trapezoid (module docstring); otherwise dense.
    Per row and source: three regime loops (near, middle, far) write into a row buffer, an optional
    depletion loop scales it, and one loop adds it to the tag's row.
    """
    nsrc = params.shape[0]
    deposit = depletion.shape[1] > 0
    for j in prange(ny):
        yr = gy0 + j * gdy
        buf = np.empty(nx)
        for k in range(nsrc):
            s = params[k]
            pref = s[PREF]
            if pref == 0.0:
                continue
            if skip:
                i0, i1 = _row_footprint(s, gx0, yr, gdx, nx)
            else:
                i0, i1 = 0, nx
            if i1 <= i0:
                continue
            ex, ey = s[EX], s[EY]
            rx0 = gx0 - s[XS]
            ry = yr - s[YS]
            xa = rx0 * ex + ry * ey
            dxi = gdx * ex
            yb = -rx0 * ey + ry * ex
            dyi = -gdx * ey
            geo = (pref, s[H], s[LID], s[D2C], s[DECAY])
            sgy = (s[AY], s[BY], s[PY], s[WY_M2], s[WY_M1], s[WY_0], s[WY_P1], s[SY02])
            sgz = (
                s[AZ],
                s[BZ],
                s[PZ],
                s[WZ_M2],
                s[WZ_M1],
                s[WZ_0],
                s[WZ_P1],
                s[AZ2],
                s[BZ2],
                s[PZ2],
                s[CZ],
                s[SZ02],
            )
            cm = fourier[k]
            cms = (cm[0], cm[1], cm[2], cm[3], cm[4], cm[5])
            a0, b0 = _regime_range(xa, dxi, -np.inf, s[XNEAR], i0, i1)
            a1, b1 = _regime_range(xa, dxi, s[XNEAR], s[XFAR], i0, i1)
            a2, b2 = _regime_range(xa, dxi, s[XFAR], np.inf, i0, i1)
            if s[FAST] != 0.0:
                _segment(buf, a0, b0, xa, dxi, yb, dyi, zr, x_min, 0, True, geo, sgy, sgz, cms)
                _segment(buf, a1, b1, xa, dxi, yb, dyi, zr, x_min, 1, True, geo, sgy, sgz, cms)
                _segment(buf, a2, b2, xa, dxi, yb, dyi, zr, x_min, 2, True, geo, sgy, sgz, cms)
            else:
                _segment(buf, a0, b0, xa, dxi, yb, dyi, zr, x_min, 0, False, geo, sgy, sgz, cms)
                _segment(buf, a1, b1, xa, dxi, yb, dyi, zr, x_min, 1, False, geo, sgy, sgz, cms)
                _segment(buf, a2, b2, xa, dxi, yb, dyi, zr, x_min, 2, False, geo, sgy, sgz, cms)
            if deposit:
                table = depletion[k]
                xt = s[DEPXMAX]
                for i in range(i0, i1):
                    buf[i] *= fast_exp(_log_depletion(max(xa + i * dxi, x_min), xt, table))
            row = conc[tag[k], j * nx : (j + 1) * nx]
            for i in range(i0, i1):
                row[i] += buf[i]


_POINT_BLOCK = 256


@kernel(parallel=True, fastmath=True)
def plume_points_kernel(params, tag, fourier, depletion, zr, x_min, rx, ry, conc):
    """Add every source's concentration to ``conc[tag, r]`` at arbitrary receptors (rx, ry), height zr.

    Receptors are processed in blocks of 256 per thread; each pair picks its regime by x (not vectorised:
    this kernel serves validation and scattered receptors; grids use :func:`plume_grid_kernel`).
    """
    nsrc = params.shape[0]
    nrec = rx.size
    deposit = depletion.shape[1] > 0
    nblock = (nrec + _POINT_BLOCK - 1) // _POINT_BLOCK
    for blk in prange(nblock):
        r0 = blk * _POINT_BLOCK
        r1 = min(r0 + _POINT_BLOCK, nrec)
        for k in range(nsrc):
            s = params[k]
            if s[PREF] == 0.0:
                continue
            fast = s[FAST] != 0.0
            t = tag[k]
            cm = fourier[k]
            geo = (s[PREF], s[H], s[LID], s[D2C], s[DECAY])
            sgy = (s[AY], s[BY], s[PY], s[WY_M2], s[WY_M1], s[WY_0], s[WY_P1], s[SY02])
            sgz = (
                s[AZ],
                s[BZ],
                s[PZ],
                s[WZ_M2],
                s[WZ_M1],
                s[WZ_0],
                s[WZ_P1],
                s[AZ2],
                s[BZ2],
                s[PZ2],
                s[CZ],
                s[SZ02],
            )
            cms = (cm[0], cm[1], cm[2], cm[3], cm[4], cm[5])
            for r in range(r0, r1):
                dx = rx[r] - s[XS]
                dy = ry[r] - s[YS]
                x = dx * s[EX] + dy * s[EY]
                y = -dx * s[EY] + dy * s[EX]
                regime = 0 if x < s[XNEAR] else (1 if x < s[XFAR] else 2)
                c = _pair_value(x, y, zr, x_min, regime, fast, geo, sgy, sgz, cms)
                if deposit:
                    c *= fast_exp(_log_depletion(max(x, x_min), s[DEPXMAX], depletion[k]))
                conc[t, r] += c


def _check_tags(prepared: PreparedSources, n_tags: int) -> None:
    if prepared.tag.size and prepared.tag.max() >= n_tags:
        raise AirshedInputError(f"source tag {prepared.tag.max()} >= n_tags = {n_tags}")


def plume_concentration_grid(
    prepared: PreparedSources,
    x0: float,
    y0: float,
    dx: float,
    dy: float,
    nx: int,
    ny: int,
    n_tags: int,
    skip: bool = True,
) -> np.ndarray:
    """Concentration per tag on a regular grid of receptors, shape (n_tags, ny * nx) (row-major j, i).

    Receptor (i, j) is at (x0 + i dx, y0 + j dy) (cell centres of an :class:`airshed.grids.grid.Grid`:
    x0 = grid.x[0], y0 = grid.y[0]). The total is ``.sum(axis=0)``.
    """
    _check_tags(prepared, n_tags)
    conc = np.zeros((n_tags, ny * nx))
    plume_grid_kernel(
        prepared.params,
        prepared.tag,
        prepared.fourier,
        prepared.depletion,
        prepared.receptor_height,
        prepared.x_min,
        float(x0),
        float(y0),
        float(dx),
        float(dy),
        int(nx),
        int(ny),
        bool(skip),
        conc,
    )
    return conc


def plume_concentration_points(
    prepared: PreparedSources, rx: np.ndarray, ry: np.ndarray, n_tags: int
) -> np.ndarray:
    """Concentration per tag at arbitrary receptors, shape (n_tags, nrec)."""
    _check_tags(prepared, n_tags)
    rx = np.ascontiguousarray(rx, dtype=np.float64)
    ry = np.ascontiguousarray(ry, dtype=np.float64)
    conc = np.zeros((n_tags, rx.size))
    plume_points_kernel(
        prepared.params,
        prepared.tag,
        prepared.fourier,
        prepared.depletion,
        prepared.receptor_height,
        prepared.x_min,
        rx,
        ry,
        conc,
    )
    return conc


def area_sources_as_points(
    x_centre: np.ndarray,
    y_centre: np.ndarray,
    side: float,
    emission: np.ndarray,
    n_sub: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Split square area sources (cells of side ``side`` m) into n_sub x n_sub point sources.

    Returns (x, y, emission, parent index, sigma_y0): sub-points at the centres of the sub-cells, each with
    Q / n_sub^2, and the initial lateral spread sigma_y0 = (side / n_sub) / 2.15 of adjacent volume sources
    (US EPA 2019, AERMOD User's Guide Table 3-1), which smooths the sub-cell structure. Error against a
    fine subdivision (n_sub = 32), 1 km cell, 10 m release, Briggs D (tests/test_plume.py): receptors 5-10
    cells downwind, n_sub = 4: < 2 %, n_sub = 8: < 0.5 %; 1-2 cells downwind in the cell's crosswind
    shadow, n_sub = 4: < 5 %, n_sub = 8: < 1.2 %; at the plume edge 1.5 cells downwind (|y| = 0.6 side)
    n_sub = 4: 35 %, n_sub = 8: 11 % (small absolute values). Use n_sub >= 8 near the cells of interest.
    """
    xc = np.asarray(x_centre, dtype=np.float64)
    yc = np.asarray(y_centre, dtype=np.float64)
    q = np.asarray(emission, dtype=np.float64)
    offs = (np.arange(n_sub) + 0.5) / n_sub * side - 0.5 * side
    ox, oy = np.meshgrid(offs, offs, indexing="xy")
    ox, oy = ox.ravel(), oy.ravel()
    x = (xc[:, None] + ox[None, :]).ravel()
    y = (yc[:, None] + oy[None, :]).ravel()
    qs = np.repeat(q / (n_sub * n_sub), n_sub * n_sub)
    parent = np.repeat(np.arange(xc.size), n_sub * n_sub)
    return x, y, qs, parent, side / n_sub / 2.15
