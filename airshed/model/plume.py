"""Steady-state Gaussian plume: per-source preparation (NumPy) and the Numba receptor kernels.

One met hour: every source gets its wind, plume rise, effective height, sigma coefficients, regime
distances, lid-image coefficients and deposition table once (:func:`prepare_point_sources`), packed into a
structure-of-arrays float matrix ``params[nsrc, NCOL]``; the kernels then loop over receptors only.

Concentration of source s at a receptor x m downwind, y m crosswind, height z_r (g/m3 for Q in g/s):

    C = Q / (2 pi u sigma_y sigma_z) exp(-y^2/(2 sigma_y^2)) exp(-k x/u) D(x) V(sigma_z)

with sigma_y, sigma_z from :mod:`airshed.physics.dispersion`, V the ground- and lid-reflected vertical factor
and D the source-depletion factor (:mod:`airshed.physics.deposition`). V is evaluated in three regimes of x
(thresholds per source, so each is a plain vectorisable loop):

- near (sigma_z < sigma_near): the source and its ground image only (2 exponentials). Every lid image is
  smaller than the direct term at the same receptor by at least exp(-2 (h - H)(h - z_r) / sigma_z^2) (the
  squared distances differ by 4 (h - H)(h - z_r) or more), so with sigma_near^2 = 2 (h - H)(h - z_r) /
  ln(1e16) the dropped images are below 4e-16 of the receptor's own value.
- middle (sigma_near <= sigma_z < 0.22 h): images d1 = z_r - H, d1 +- 2h, d2 = z_r + H, d2 - 2h
  (5 exponentials). Each dropped image (d2 + 2h, |n| >= 2) is below exp(-2 h^2 / sigma_z^2) < 1e-18 of a
  kept one (the squared distances differ by >= 4 h^2).
- far (sigma_z >= 0.22 h, :data:`airshed.physics.dispersion.FOURIER_SIGMA_Z_OVER_H`): the Poisson-resummed
  series whose leading term is the well-mixed plume Q exp(-y^2/2 sigma_y^2) / (sqrt(2 pi) u sigma_y h),
  12 correction terms by Horner's rule in q = exp(-pi^2 sigma_z^2/(2 h^2)) (2 exponentials in all;
  first neglected term < 3e-18); from sigma_z = 0.42 h on, 6 terms (first neglected term < 1e-18).

Pairs with x <= x_min (upwind, or closer than x_min, default 1 m) are exactly 0 and are not evaluated
(each row's downwind columns are an index range), and every exponential whose argument (lateral + decay +
vertical) is below :data:`EXPONENT_FLOOR` (-600: < 1e-260 of the centre-line value) is exactly 0, which
keeps subnormal numbers out of the arithmetic.

Convective hours of the boundary-layer option (:mod:`airshed.physics.convective`): the vertical
distribution has two components (updrafts and downdrafts), each a reflected Gaussian with its own weight,
spread sigma_zj = x (a_j + b x) and centre line Psi_j = H + slope_j x (column TWO_COMP). A centre line may
leave [0, h]; the image sum is even and 2h-periodic in Psi, so the image regimes fold Psi into [0, h] and
keep the bound above, and the Fourier regimes take c_m = 2 cos(pi m z_r/h) cos(pi m Psi_j/h) per pair, with
one branch-free cosine (:func:`_cos_pi`) and the Chebyshev recurrence for the multiples. A ground-level
release has one component at a fixed height (column POLY_Z) and takes the regimes above.

Divisions: with the Briggs options sigma^2 = P/D with polynomial P and D (:func:`_sigma2_rational`), so
each pair costs one division and one square root. The convective boundary-layer option has a polynomial
sigma_z and only its sigma_y power needs an exp and a log; other powers (stable boundary layer) take three
of each.

Footprint skipping (grid kernel, ``skip=True``): for each receptor row only the columns inside the
trapezoid 0 <= x <= x_max, |y| <= c (a_y x + sigma_y0) are visited, where c = ``sigma_y_cutoff`` and
sigma_y(x) <= a_y x + sigma_y0 for every option. A skipped pair is below exp(-c^2/2) of the plume centre-line
value at the same distance (c = 6: 1.5e-8; c = 8: 1.3e-14). ``skip=False`` evaluates every downwind pair
(dense).

Species: :func:`prepare_plume_geometry` does everything that does not depend on the species once per hour;
:func:`plume_sources_for_species` scales it by emission, decay and deposition.

Grid kernel layout: receptor rows are taken in bands of :data:`BAND_ROWS`. For each source, each row's
downwind columns split into the regime ranges at three column indices (x is linear along a row; one
reciprocal per source, no division per row); the (x, y) of every pair of the band are gathered into one
list per regime, each list is evaluated by one branch-free vector loop (padded to whole 8-lane vectors),
and the values are added back to their receptors. Gathering turns up to four short loops per row, each
with a fixed cost of ~45 ns, into one long loop per regime and band (1000 sources x 316^2 receptors:
0.33 -> 0.23 s on one thread).

Each thread owns whole receptor bands (grid) or receptor blocks (points), so there are no write races and
the result is bit-identical for any thread count; bands are dealt to the threads from both ends of the
grid, since the work per row drifts across it. Exponentials and logarithms are the branch-free
:mod:`airshed.model.fastmath` ones so the inner loops vectorise (``fast_exp_above``: exactly 0 at and
below the floor); the kernels use airshed.jit's safe fastmath flags (nsz, arcp, contract: FMA contraction,
~1.5x measured, results within ~1e-15).

Compile time: the parallel kernels are thin prange loops around plain (non-parallel) band/pair functions;
the regime evaluation holds one loop per regime and sigma form (12), compiled once, with the small scalar
formulas inlined at Numba IR level and the exponentials inlined by LLVM; each kernel has one type signature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numba import prange

from airshed.errors import AirshedInputError
from airshed.jit import inline, kernel
from airshed.model.fastmath import fast_exp, fast_exp_above, fast_ln
from airshed.physics import boundary_layer as bl
from airshed.physics import deposition as dep
from airshed.physics import dispersion as disp
from airshed.physics import plume_rise as rise
from airshed.physics.dispersion_schemes import DispersionScheme, SigmaInputs, dispersion_scheme

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
    WZ_M2,
    WZ_M1,
    XNEAR,
    XFAR,
    XMAX,
    WEDGE_A,
    WEDGE_B,
    DEPXMAX,
    KQ,
    AMP_FAR,
    XFAR6,
    POLY_Z,
    TWO_COMP,
    LAM1,
    LAM2,
    SLOPE1,
    SLOPE2,
    SZA1,
    SZA2,
    SZB,
) = range(43)
NCOL = 43
"""Columns of ``PreparedSources.params``: PREF = f Q/(2 pi u) (f the fraction of the plume trapped below the
lid, 0 for penetrated sources), DECAY = k/u,
FAST = 1 when sigma^2 = a^2 x^2 (1 + b x)^(2p) with 2p in {-2, -1, 0} and no second sigma_z term (Briggs
options but urban A-B sigma_z), WY_M2/WY_M1 (WZ_*) its one-hot weights for 2p = -2/-1, WEDGE_A/B the
footprint slope and offset (c a_y, c sigma_y0), KQ = pi^2/(2 h^2), AMP_FAR = f Q/(sqrt(2 pi) u h), XFAR6 the
distance from which 6 Fourier terms suffice.
Convective hours of the boundary-layer option (:mod:`airshed.physics.convective`): sigma_zj = x (SZAj + SZB x)
of component j = 1, 2 with weight LAMj and centre line H + SLOPEj x; POLY_Z = 1 for one component at a fixed
height (a ground-level release), TWO_COMP = 1 for two; sigma_y keeps its general power. For TWO_COMP sources
the regime columns XNEAR, XFAR, XFAR6 hold the distances where sigma_z1 reaches 0.22 h and sigma_z2 reaches
0.22 h and 0.42 h (:func:`_two_component_regimes`)."""

NEAR_IMAGE_TOLERANCE = 1e-16
"""Lid images are dropped while each is below this fraction of the direct term at the receptor."""
_LN_NEAR = math.log(1.0 / NEAR_IMAGE_TOLERANCE)
DEFAULT_MIN_WIND_SPEED = 1.0
"""Calm threshold, m/s: plume wind speeds below it are raised to it and counted (ISC3 uses 1 m/s)."""
EXPONENT_FLOOR = -600.0
"""Every exponential whose argument (lateral + decay + vertical) is below this is exactly 0 (< 1e-260 of
the plume's centre-line value at that distance); keeps subnormal numbers out of the arithmetic."""
_SQRT_2PI = math.sqrt(2.0 * math.pi)


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


@dataclass
class PlumeGeometry:
    """Species-independent part of one met hour (:func:`prepare_plume_geometry`).

    ``params`` holds the columns for a unit emission and unit decay rate (PREF = f/(2 pi u),
    AMP_FAR = f/(sqrt(2 pi) u h), DECAY = 1/u, f the fraction of the plume below the lid, ``trapped``);
    :func:`plume_sources_for_species` scales them.
    """

    params: np.ndarray
    tag: np.ndarray
    fourier: np.ndarray
    u: np.ndarray  # plume wind speed, m/s
    sigma: disp.SigmaParameters
    sigma_z0: np.ndarray
    penetrated: np.ndarray  # whole plume above the mixing lid
    calm: np.ndarray
    trapped: np.ndarray  # fraction of the plume's mass in the mixed layer (1 - lid penetration)
    receptor_height: float
    x_min: float
    _ground_integral: np.ndarray | None = field(default=None, repr=False)

    def ground_integral(self) -> np.ndarray:
        """Integral of the ground-level vertical profile V0 to each depletion-table node (nsrc, nodes).

        Computed on first use and kept: every species of the hour scales the same table by -v_d/u.
        """
        if self._ground_integral is None:
            self._ground_integral = _ground_integral_tables(self)
        return self._ground_integral


def _as_source_array(name: str, value, n: int, dtype=np.float64) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim == 0:
        return np.full(n, arr, dtype=dtype)
    if arr.shape != (n,):
        raise AirshedInputError(
            f"plume source input '{name}' must be a scalar or have shape ({n},), got {arr.shape}"
        )
    return arr


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
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            up = sz(mid) >= target
            hi = np.where(up, mid, hi)
            lo = np.where(up, lo, mid)
    out = np.where(reached, np.exp(hi), np.inf)
    out = np.where(already, x_lo, out)
    return np.where(np.isfinite(target), out, np.inf)


def _component_distance(target: np.ndarray, a: np.ndarray, b: np.ndarray, sz0: np.ndarray, x_lo: float):
    """Smallest x >= x_lo with sqrt((x (a + b x))^2 + sz0^2) >= target (m): the root of b x^2 + a x = s."""
    with np.errstate(invalid="ignore", over="ignore"):
        s = np.sqrt(np.maximum(target * target - sz0 * sz0, 0.0))
        x = 2.0 * s / (a + np.sqrt(a * a + 4.0 * b * s))
    return np.where(np.isfinite(target), np.maximum(x, x_lo), np.inf)


def _two_component_regimes(rows: np.ndarray, sz0: np.ndarray, x_min: float) -> tuple[np.ndarray, ...]:
    """Regime distances of two-component sources (m): sigma_z1 = 0.22 h, sigma_z2 = 0.22 h, sigma_z2 = 0.42 h.

    sigma_z1 >= sigma_z2 (the updraft component is the wider one for skewness >= 0), so below the first
    distance both components take the image sum (5 images each, the middle regime's bound), between the
    first and second component 1 takes the Fourier series and component 2 the images, beyond the second
    both the 12-term series, beyond the third the 6-term one.
    """
    lid = rows[:, LID]
    lidded = np.isfinite(lid)
    far = np.where(lidded, disp.FOURIER_SIGMA_Z_OVER_H * lid, np.inf)
    far6 = np.where(lidded, disp.FOURIER_SHORT_SIGMA_Z_OVER_H * lid, np.inf)
    a1, a2, b = rows[:, SZA1], rows[:, SZA2], rows[:, SZB]
    x1 = _component_distance(far, a1, b, sz0, x_min)
    x2 = np.maximum(_component_distance(far, a2, b, sz0, x_min), x1)
    x3 = np.maximum(_component_distance(far6, a2, b, sz0, x_min), x2)
    return x1, x2, x3


@kernel()
def _wind_at_heights(u_ref, z_ref, z, z0, inv_l, out):
    for i in range(u_ref.size):
        out[i] = bl.wind_speed_at_height(u_ref[i], z_ref, z[i], z0[i], inv_l[i])


def plume_wind_speed(
    wind_speed: np.ndarray,
    wind_height: float,
    height: np.ndarray,
    roughness_length: np.ndarray,
    obukhov_length: np.ndarray,
    floor_height: float | None = None,
) -> np.ndarray:
    """Wind speed at each source's height (m/s) by the similarity profile, not below ``floor_height``.

    :func:`airshed.physics.boundary_layer.wind_speed_at_height` from ``wind_speed`` measured at
    ``wind_height`` m, at max(height, floor_height) (default floor: the anemometer height, the ISC3
    convention for stacks lower than the measurement). |L| >= 1e5 m is neutral. Arrays of equal length.
    """
    z_floor = wind_height if floor_height is None else floor_height
    b = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (wind_speed, height, roughness_length, obukhov_length))
    )
    u_ref, z, z0, L = (np.ascontiguousarray(a).ravel() for a in b)
    with np.errstate(divide="ignore"):
        inv_l = np.where(np.abs(L) >= bl.NEUTRAL_OBUKHOV_LENGTH_M, 0.0, 1.0 / L)
    out = np.empty(u_ref.size)
    _wind_at_heights(u_ref, float(wind_height), np.maximum(z, z_floor), z0, inv_l, out)
    return out.reshape(b[0].shape)


def prepare_plume_geometry(
    x: np.ndarray,
    y: np.ndarray,
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
    option: str | DispersionScheme = "briggs-rural",
    diameter: np.ndarray = 0.0,
    exit_velocity: np.ndarray = 0.0,
    stack_temperature: np.ndarray | None = None,
    sigma_y0: np.ndarray = 0.0,
    sigma_z0: np.ndarray = 0.0,
    wstar: np.ndarray | None = None,
    receptor_height: float = 0.0,
    x_min: float = 1.0,
    x_max: np.ndarray = 1.0e6,
    sigma_y_cutoff: float = 6.0,
    min_wind_speed: float = DEFAULT_MIN_WIND_SPEED,
    wind_floor_height: float | None = None,
    plume_rise: bool = True,
    stack_tip_downwash: bool = True,
    lid_penetration: bool = True,
    lid_dtheta_dz: float = rise.LID_DTHETA_DZ,
    sigma_v: np.ndarray | None = None,
) -> PlumeGeometry:
    """Species-independent per-source quantities of one met hour (wind, rise, sigmas, regimes, images).

    Arguments as :func:`prepare_point_sources` (less emission, decay and deposition); ``plume_rise`` and
    ``stack_tip_downwash`` switch those parts of
    :func:`airshed.physics.plume_rise.effective_stack_height`.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    f = {
        name: _as_source_array(name, val, n)
        for name, val in dict(
            y=y,
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
    scheme = dispersion_scheme(option)
    if np.any((pg < 1) | (pg > 6)):
        raise AirshedInputError("pg_class must be 1..6 (A..F)")
    for name in ("stack_height", "wind_speed", "roughness_length", "diameter", "exit_velocity"):
        if np.any(~(f[name] >= 0.0)):
            raise AirshedInputError(f"plume source input '{name}' must be >= 0 and not NaN")
    if np.any(~(f["mixing_height"] > receptor_height)):
        raise AirshedInputError("mixing_height must exceed receptor_height for every source")
    if np.any(tag < 0):
        raise AirshedInputError("source tags must be >= 0")

    u_stack = plume_wind_speed(
        f["wind_speed"],
        wind_height,
        f["stack_height"],
        f["roughness_length"],
        f["obukhov_length"],
        wind_floor_height,
    )
    calm = u_stack < min_wind_speed
    u = np.maximum(u_stack, min_wind_speed)
    he, dh = rise.effective_stack_height(
        f["stack_height"],
        f["diameter"],
        f["exit_velocity"],
        f["stack_temperature"],
        f["air_temperature"],
        u,
        pg,
        plume_rise=plume_rise,
        stack_tip_downwash=stack_tip_downwash,
    )
    lid = f["mixing_height"]
    trapped = np.where(he < lid, 1.0, 0.0)
    if lid_penetration and plume_rise and scheme.convective_lid_penetration:
        # convective hours: AERMOD's partial penetration of the capping inversion; the trapped fraction
        # mixes below the lid (its height capped there), the penetrated rest gives no ground-level value
        convective = (f["obukhov_length"] < 0.0) & np.isfinite(lid)
        ta = f["air_temperature"]
        fb = rise.buoyancy_flux(f["diameter"], f["exit_velocity"], f["stack_temperature"], ta)
        pen = rise.lid_penetration_fraction(fb, u, he - dh, lid, ta, lid_dtheta_dz)
        trapped = np.where(convective, 1.0 - pen, trapped)
        he = np.where(convective, np.minimum(he, lid), he)
    penetrated = trapped == 0.0

    sy0, sz0 = f["sigma_y0"], f["sigma_z0"]
    sv = None
    if sigma_v is not None:
        sv = _as_source_array("sigma_v", sigma_v, n)
        if np.any(~(sv > 0.0)):
            raise AirshedInputError("plume source input 'sigma_v' must be > 0 and not NaN")
    sigma_inputs = SigmaInputs(
        pg, u, f["ustar"], None if wstar is None else _as_source_array("wstar", wstar, n),
        f["obukhov_length"], lid, f["air_temperature"], f["stack_height"], he, dh, receptor_height, sv,
    )
    sigmas = scheme.sigma_parameters(sigma_inputs)
    par, two = (sigmas, None) if isinstance(sigmas, disp.SigmaParameters) else sigmas
    if scheme.initial_spread is not None:
        sb = scheme.initial_spread(sigma_inputs)
        sy0 = np.sqrt(sy0 * sy0 + sb * sb)
        sz0 = np.sqrt(sz0 * sz0 + sb * sb)

    p = np.zeros((n, NCOL))
    theta = np.deg2rad(f["wind_direction_deg"])
    p[:, XS], p[:, YS] = x, f["y"]
    p[:, EX], p[:, EY] = -np.sin(theta), -np.cos(theta)
    p[:, PREF] = np.where(penetrated, 0.0, trapped / (2.0 * np.pi * u))
    p[:, H], p[:, LID] = he, lid
    p[:, DECAY] = 1.0 / u
    for col, arr in zip((AY, BY, PY, AZ, BZ, PZ, AZ2, BZ2, PZ2, CZ), par, strict=True):
        p[:, col] = arr
    p[:, SY02], p[:, SZ02] = sy0 * sy0, sz0 * sz0
    py2, pz2 = 2.0 * par.py, 2.0 * par.pz
    allowed = (-2.0, -1.0, 0.0)
    rational_z = np.isin(pz2, allowed) & (par.az2 == 0.0)
    p[:, FAST] = np.isin(py2, allowed) & rational_z
    p[:, WY_M2], p[:, WY_M1] = py2 == -2.0, py2 == -1.0
    p[:, WZ_M2], p[:, WZ_M1] = pz2 == -2.0, pz2 == -1.0
    if two is None:
        convective = two_comp = np.zeros(n, dtype=bool)
    else:
        convective = f["obukhov_length"] < 0.0
        # a ground-level release (f = 0) has two equal components at a fixed height: one Gaussian
        two_comp = convective & (two.slope1 != two.slope2)
        p[:, POLY_Z] = convective & ~two_comp
        p[:, TWO_COMP] = two_comp
        p[:, LAM1] = np.where(two_comp, two.lam1, 1.0)
        p[:, LAM2] = np.where(two_comp, two.lam2, 0.0)
        p[:, SLOPE1], p[:, SLOPE2] = np.where(two_comp, two.slope1, 0.0), np.where(two_comp, two.slope2, 0.0)
        p[:, SZA1], p[:, SZA2], p[:, SZB] = two.a1, two.a2, two.b
    finite_lid = np.isfinite(lid)
    with np.errstate(invalid="ignore"):
        sigma_near = np.where(
            finite_lid & ~penetrated,
            np.sqrt(2.0 * np.maximum(lid - he, 0.0) * (lid - receptor_height) / _LN_NEAR),
            np.inf,
        )
    sigma_far = np.where(finite_lid, disp.FOURIER_SIGMA_Z_OVER_H * lid, np.inf)
    p[:, XFAR] = np.maximum(_invert_sigma_z(sigma_far, par, sz0, x_min), x_min)
    p[:, XNEAR] = np.minimum(np.maximum(_invert_sigma_z(sigma_near, par, sz0, x_min), x_min), p[:, XFAR])
    sigma_far6 = np.where(finite_lid, disp.FOURIER_SHORT_SIGMA_Z_OVER_H * lid, np.inf)
    p[:, XFAR6] = np.maximum(_invert_sigma_z(sigma_far6, par, sz0, x_min), p[:, XFAR])
    if two_comp.any():
        k = np.flatnonzero(two_comp)
        p[k, XNEAR], p[k, XFAR], p[k, XFAR6] = _two_component_regimes(p[k], sz0[k], x_min)
    p[:, XMAX] = np.maximum(f["x_max"], x_min)
    p[:, WEDGE_A] = sigma_y_cutoff * par.ay
    p[:, WEDGE_B] = sigma_y_cutoff * sy0
    p[:, DEPXMAX] = p[:, XMAX]
    with np.errstate(divide="ignore"):
        p[:, KQ] = np.where(finite_lid, 0.5 * np.pi * np.pi / (lid * lid), 0.0)
        p[:, AMP_FAR] = np.where(penetrated | ~finite_lid, 0.0, trapped / (_SQRT_2PI * u * lid))
    # two-component sources: 2 cos(pi m z_r / h) only; the kernel multiplies by cos(pi m Psi_j(x) / h)
    fourier = disp.vertical_fourier_coefficients(
        receptor_height, np.where(two_comp, 0.0, np.minimum(he, lid)), lid
    )
    return PlumeGeometry(
        p,
        tag,
        np.ascontiguousarray(fourier),
        u,
        par,
        sz0,
        penetrated,
        calm,
        trapped,
        float(receptor_height),
        float(x_min),
    )


_DEPLETION_CHUNK = 512  # sources per vectorised depletion-table block (bounds the temporary arrays)


def _ground_integral_tables(geo: PlumeGeometry) -> np.ndarray:
    """:func:`airshed.physics.deposition.ground_profile_integral_table` of every non-penetrated source.

    Ground profile V0 = V(z = 0) / (sqrt(2 pi) sigma_z): the image sum (n = -3..3) below the Fourier
    threshold, the Fourier series from it on (:func:`airshed.physics.dispersion.reflected_gaussian_density`),
    summed over the two components of a two-component source with their weights.
    """
    p = geo.params
    n = p.shape[0]
    table = np.zeros((n, dep.DEPLETION_TABLE_NODES))
    # the profile depends on H, h, the sigma_z coefficients and sigma_z0 only: area sub-sources of one
    # cell share them, so each distinct source is integrated once
    cols = [H, LID, AZ, BZ, PZ, AZ2, BZ2, PZ2, CZ, DEPXMAX, TWO_COMP, LAM1, SLOPE1, SLOPE2, SZA1, SZA2, SZB]
    key = np.column_stack([p[:, cols], geo.sigma_z0, geo.penetrated])
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    rows = first[~geo.penetrated[first]]
    for start in range(0, rows.size, _DEPLETION_CHUNK):
        r = rows[start : start + _DEPLETION_CHUNK]
        par = disp.SigmaParameters(*(a[r, None] for a in geo.sigma))
        pr = p[r]
        sz0 = geo.sigma_z0[r, None]
        two = pr[:, TWO_COMP] != 0.0

        def ground_profile(xx, par=par, pr=pr, sz0=sz0, two=two):
            he, lid = pr[:, H, None], pr[:, LID, None]
            v = np.empty(xx.shape)
            one = np.flatnonzero(~two)
            sz = disp.sigma_z_from_parameters(xx[one], par, one, sz0[one])
            v[one] = disp.reflected_gaussian_density(0.0, he[one], sz, lid[one])
            k = np.flatnonzero(two)
            if k.size:
                q, x2 = pr[k], xx[k]
                v[k] = 0.0
                for lam, slope, a in ((LAM1, SLOPE1, SZA1), (LAM2, SLOPE2, SZA2)):
                    s = np.sqrt(np.square(x2 * (q[:, a, None] + q[:, SZB, None] * x2)) + sz0[k] ** 2)
                    psi = q[:, H, None] + q[:, slope, None] * x2
                    v[k] += q[:, lam, None] * disp.reflected_gaussian_density(0.0, psi, s, q[:, LID, None])
            return v

        table[r] = dep.ground_profile_integral_table(p[r, DEPXMAX], geo.x_min, ground_profile)
    return table[first[inverse.ravel()]]


def plume_sources_for_species(
    geometry: PlumeGeometry,
    emission: np.ndarray,
    decay_rate: float | np.ndarray = 0.0,
    deposition_velocity: float = 0.0,
) -> PreparedSources:
    """Scale a :class:`PlumeGeometry` to one species.

    Emission Q (g/s per source), first-order loss k (s-1; one value or one per source: decay, wet
    scavenging, conversion) and dry deposition by source depletion at v_d (m/s,
    :mod:`airshed.physics.deposition`). Sources with Q = 0 are kept but skipped by the kernels (PREF = 0).
    """
    n = geometry.params.shape[0]
    q = _as_source_array("emission", emission, n)
    if np.any(~(q >= 0.0)):
        raise AirshedInputError("plume source input 'emission' must be >= 0 and not NaN")
    if not (np.all(np.asarray(decay_rate) >= 0.0) and deposition_velocity >= 0.0):
        raise AirshedInputError("decay_rate and deposition_velocity must be >= 0")
    p = geometry.params.copy()
    p[:, PREF] *= q
    p[:, AMP_FAR] *= q
    p[:, DECAY] *= decay_rate
    active = p[:, PREF] > 0.0
    if deposition_velocity > 0.0:
        scale = np.where(active, -deposition_velocity / geometry.u, 0.0)
        table = scale[:, None] * geometry.ground_integral()
    else:
        table = np.zeros((n, 0))
    return PreparedSources(
        p,
        geometry.tag,
        geometry.fourier,
        table,
        geometry.receptor_height,
        geometry.x_min,
        int(np.count_nonzero(geometry.calm)),
        int(np.count_nonzero(geometry.penetrated & (q > 0))),
    )


def prepare_point_sources(
    x: np.ndarray,
    y: np.ndarray,
    emission: np.ndarray,
    tag: np.ndarray,
    stack_height: np.ndarray,
    *,
    decay_rate: float = 0.0,
    deposition_velocity: float = 0.0,
    **geometry_arguments,
) -> PreparedSources:
    """Per-source quantities of one met hour and one species (NumPy; outside the receptor loop).

    :func:`prepare_plume_geometry` then :func:`plume_sources_for_species`. Meteorology arguments are per
    source (sampled by the caller at the source) or scalars.

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
    air_temperature : K. option : a dispersion scheme or the name it is registered under
        (:data:`airshed.physics.dispersion_schemes.DISPERSION_SCHEMES`).
    diameter, exit_velocity, stack_temperature : stack parameters (m, m/s, K) for plume rise; defaults give
        no rise (area/volume sources). sigma_y0, sigma_z0 : initial spreads, m.
    wstar : convective velocity, m/s (default from u*, L, h by
        :func:`~airshed.physics.dispersion.convective_velocity_from_obukhov`).
    receptor_height : flagpole height z_r of all receptors, m (< mixing height).
    decay_rate : first-order loss k, s-1. deposition_velocity : v_d, m/s (source depletion).
    x_min : pairs closer than this downwind are 0, m. x_max : farthest distance evaluated (footprint, and
        deposition table range), m. sigma_y_cutoff : footprint half-width in sigma_y.
    min_wind_speed : calm threshold, m/s. wind_floor_height : the plume wind is taken at
        max(h_s, this), m; default ``wind_height`` (never extrapolate below the anemometer, the ISC3
        convention for stacks lower than the measurement height).
    plume_rise, stack_tip_downwash : switches of :func:`airshed.physics.plume_rise.effective_stack_height`.
    lid_penetration : boundary-layer option, convective hours (L < 0): the fraction of a buoyant plume
        that penetrates the capping inversion (:func:`airshed.physics.plume_rise.lid_penetration_fraction`,
        AERMOD) is removed and the trapped rest mixes below the lid (effective height capped at h); the
        penetrated part gives no ground-level concentration (AERMOD's penetrated source, which re-enters
        the mixed layer downwind, is not modelled). Otherwise, and with this off, a plume is wholly trapped
        (H < h) or wholly above the lid. lid_dtheta_dz : potential-temperature gradient above the lid, K/m.
    sigma_v : boundary-layer option: measured lateral turbulence, m/s (> 0; AERMOD's on-site sigma_v, or
        sigma_theta u with sigma_theta in radians), used instead of the u*/w* estimate; None: estimated.
    """
    geometry = prepare_plume_geometry(x, y, tag, stack_height, **geometry_arguments)
    return plume_sources_for_species(geometry, emission, decay_rate, deposition_velocity)


# --- Numba kernels ---------------------------------------------------------------------------------------
@inline
def _exp_above_floor(a):
    """exp(a), or exactly 0 when a <= EXPONENT_FLOOR (keeps subnormal numbers out; branch-free select)."""
    return fast_exp_above(a, EXPONENT_FLOOR)


@inline
def _sigma2_rational(x, x2, a2, d1, d2, s02):
    """(P, D) with P / D = (a x (1 + b x)^p)^2 + s02 for 2p in {-2, -1, 0}; x2 = x^2, a2 = a^2.

    (1 + b x)^(2p) = 1 / D with D = 1 + w_m1 (g - 1) + w_m2 (g^2 - 1) = 1 + x (d1 + d2 x), g = 1 + b x,
    one-hot weights w_m2, w_m1 and d1 = b (w_m1 + 2 w_m2), d2 = b^2 w_m2 (:func:`_rational_coefficients`),
    so no division here.
    """
    d = 1.0 + x * (d1 + d2 * x)
    return a2 * x2 + s02 * d, d


@inline
def _rational_coefficients(a, b, w_m2, w_m1):
    """(a^2, d1, d2) of :func:`_sigma2_rational` for one source."""
    return a * a, b * (w_m1 + 2.0 * w_m2), b * b * w_m2


@inline
def _power_1p(b, x, p):
    """(1 + b x)^p for b x >= 0 (fast exp/log)."""
    return fast_exp_above(p * fast_ln(1.0 + b * x), -708.0)


@inline
def _sigma2_general(x, ay, by, py, sy02, az, bz, pz, az2, bz2, pz2, cz, sz02):
    """(sigma_y^2, sigma_z^2) of the parametric family for any real powers (fast exp/log)."""
    sy = ay * x * _power_1p(by, x, py)
    sz = az * x * _power_1p(bz, x, pz) + az2 * x * _power_1p(bz2, x, pz2)
    cx = cz * x * x
    return sy * sy + sy02, sz * sz + cx * cx + sz02


@inline
def _near_value(x, y, py_, dy_, pz_, dz_, pref, decay, d1, d2):
    """Source and ground image, sigma_y^2 = py_/dy_, sigma_z^2 = pz_/dz_ (one division, one sqrt)."""
    hr = 0.5 / (py_ * pz_)
    ky = dy_ * pz_ * hr  # 1 / (2 sigma_y^2)
    inv = dz_ * py_ * hr  # 1 / (2 sigma_z^2)
    lat = -(y * y) * ky - decay * x
    v = _exp_above_floor(lat - d1 * d1 * inv) + _exp_above_floor(lat - d2 * d2 * inv)
    return pref * math.sqrt(4.0 * ky * inv) * v


@inline
def _middle_value(x, y, py_, dy_, pz_, dz_, pref, decay, d1, d2, h2):
    """Images d1, d1 +- 2h, d2, d2 - 2h (d1 = z_r - H, d2 = z_r + H, h2 = 2h); the rest < 1e-18 of them."""
    hr = 0.5 / (py_ * pz_)
    ky = dy_ * pz_ * hr  # 1 / (2 sigma_y^2)
    inv = dz_ * py_ * hr  # 1 / (2 sigma_z^2)
    lat = -(y * y) * ky - decay * x
    a = d1 + h2
    b = d1 - h2
    c = d2 - h2
    v = (
        _exp_above_floor(lat - d1 * d1 * inv)
        + _exp_above_floor(lat - a * a * inv)
        + _exp_above_floor(lat - b * b * inv)
        + _exp_above_floor(lat - d2 * d2 * inv)
        + _exp_above_floor(lat - c * c * inv)
    )
    return pref * math.sqrt(4.0 * ky * inv) * v


@inline
def _far_value(x, y, py_, dy_, pz_, dz_, amp, decay, kq, c):
    """Poisson-resummed images: amp / sigma_y exp(lat) (1 + sum_m c_m q^(m^2)), q = exp(-kq sigma_z^2).

    Horner form q (c1 + q^3 (c2 + q^5 (c3 + ...))). q is 0 below exp(-600) and the inner powers use
    q >= 1e-10 (terms m >= 2 are then < 1e-40 of the leading one either way) so no product is subnormal.
    """
    hr = 0.5 / (py_ * dz_)
    ky = dy_ * dz_ * hr  # 1 / (2 sigma_y^2)
    lat = -(y * y) * ky - decay * x
    q = fast_exp_above(pz_ * py_ * hr * (-2.0 * kq), EXPONENT_FLOOR)
    qh = max(q, 1e-10)
    q2 = qh * qh
    p3 = qh * q2
    p5 = p3 * q2
    p7 = p5 * q2
    p9 = p7 * q2
    p11 = p9 * q2
    p13 = p11 * q2
    p15 = p13 * q2
    p17 = p15 * q2
    p19 = p17 * q2
    p21 = p19 * q2
    p23 = p21 * q2
    s = c[10] + p23 * c[11]
    s = c[9] + p21 * s
    s = c[8] + p19 * s
    s = c[7] + p17 * s
    s = c[6] + p15 * s
    s = c[5] + p13 * s
    s = c[4] + p11 * s
    s = c[3] + p9 * s
    s = c[2] + p7 * s
    s = c[1] + p5 * s
    s = c[0] + p3 * s
    return amp * math.sqrt(2.0 * ky) * _exp_above_floor(lat) * (1.0 + q * s)


@inline
def _far_value6(x, y, py_, dy_, pz_, dz_, amp, decay, kq, c):
    """:func:`_far_value` with the first 6 Fourier terms (sigma_z >= 0.42 h: the rest < 1e-18)."""
    hr = 0.5 / (py_ * dz_)
    ky = dy_ * dz_ * hr  # 1 / (2 sigma_y^2)
    lat = -(y * y) * ky - decay * x
    q = fast_exp_above(pz_ * py_ * hr * (-2.0 * kq), EXPONENT_FLOOR)
    qh = max(q, 1e-10)
    q2 = qh * qh
    p3 = qh * q2
    p5 = p3 * q2
    p7 = p5 * q2
    p9 = p7 * q2
    p11 = p9 * q2
    s = c[4] + p11 * c[5]
    s = c[3] + p9 * s
    s = c[2] + p7 * s
    s = c[1] + p5 * s
    s = c[0] + p3 * s
    return amp * math.sqrt(2.0 * ky) * _exp_above_floor(lat) * (1.0 + q * s)


# cos(t) = sum_k (-1)^k t^(2k) / (2k)!, k = 0..11: on |t| <= pi/2 the first omitted term is < 1e-19
_COS_TAYLOR = tuple((-1.0) ** k / math.factorial(2 * k) for k in range(12))


@inline
def _cos_pi(v):
    """cos(pi v) for any real v, branch-free so loops over it vectorise (absolute error ~2e-16).

    v is reduced to r = |v - 2 round(v/2)| in [0, 1], then to t = pi min(r, 1 - r) in [0, pi/2] with
    cos(pi r) = -cos(pi (1 - r)), and cos(t) is its Taylor polynomial to t^22 by Horner's rule.
    """
    r = abs(v - 2.0 * math.floor(0.5 * v + 0.5))
    t = math.pi * min(r, 1.0 - r)
    t2 = t * t
    c = _COS_TAYLOR[11]
    c = _COS_TAYLOR[10] + t2 * c
    c = _COS_TAYLOR[9] + t2 * c
    c = _COS_TAYLOR[8] + t2 * c
    c = _COS_TAYLOR[7] + t2 * c
    c = _COS_TAYLOR[6] + t2 * c
    c = _COS_TAYLOR[5] + t2 * c
    c = _COS_TAYLOR[4] + t2 * c
    c = _COS_TAYLOR[3] + t2 * c
    c = _COS_TAYLOR[2] + t2 * c
    c = _COS_TAYLOR[1] + t2 * c
    c = 1.0 + t2 * c
    return -c if r > 0.5 else c


@inline
def _sigma2_poly(x, a, b, s02):
    """sigma^2 = (x (a + b x))^2 + s02 (convective components, :mod:`airshed.physics.convective`)."""
    s = x * (a + b * x)
    return s * s + s02


@inline
def _image_sum5(zr, psi, h2, inv, lat):
    """Sum of exp(lat - d^2 inv) over the images d1, d1 +- 2h, d2, d2 - 2h of a centre line psi (any real).

    psi is folded into [0, h] (the image sum is even and 2h-periodic in psi; h2 = 2h, inf without a lid),
    so the bound of :func:`_middle_value` holds: the dropped images are < 1e-18 of these for sigma < 0.22 h.
    """
    k = math.floor(psi / h2 + 0.5)
    folded = psi - h2 * k
    pr = abs(psi if k == 0.0 else folded)  # h2 = inf: k = 0 (and inf * 0 would be NaN)
    d1 = zr - pr
    d2 = zr + pr
    a = d1 + h2
    b = d1 - h2
    c = d2 - h2
    return (
        _exp_above_floor(lat - d1 * d1 * inv)
        + _exp_above_floor(lat - a * a * inv)
        + _exp_above_floor(lat - b * b * inv)
        + _exp_above_floor(lat - d2 * d2 * inv)
        + _exp_above_floor(lat - c * c * inv)
    )


@inline
def _moving_fourier12(q, cth, e):
    """sum_m q^(m^2) e_m T_m(cth), m = 1..12: the lid series of a centre line psi with cth = cos(pi psi/h).

    T_m(cos theta) = cos(m theta) by the Chebyshev recurrence T_m+1 = 2 cth T_m - T_m-1, so
    e_m T_m = 2 cos(pi m z_r/h) cos(pi m psi/h) = the c_m of :func:`_far_value` for a centre line at psi;
    the powers of q as there (Horner form, q >= 1e-10 inside).
    """
    t1 = cth
    c2 = 2.0 * cth
    t2 = c2 * t1 - 1.0
    t3 = c2 * t2 - t1
    t4 = c2 * t3 - t2
    t5 = c2 * t4 - t3
    t6 = c2 * t5 - t4
    t7 = c2 * t6 - t5
    t8 = c2 * t7 - t6
    t9 = c2 * t8 - t7
    t10 = c2 * t9 - t8
    t11 = c2 * t10 - t9
    t12 = c2 * t11 - t10
    qh = max(q, 1e-10)
    q2 = qh * qh
    p3 = qh * q2
    p5 = p3 * q2
    p7 = p5 * q2
    p9 = p7 * q2
    p11 = p9 * q2
    p13 = p11 * q2
    p15 = p13 * q2
    p17 = p15 * q2
    p19 = p17 * q2
    p21 = p19 * q2
    p23 = p21 * q2
    s = e[10] * t11 + p23 * (e[11] * t12)
    s = e[9] * t10 + p21 * s
    s = e[8] * t9 + p19 * s
    s = e[7] * t8 + p17 * s
    s = e[6] * t7 + p15 * s
    s = e[5] * t6 + p13 * s
    s = e[4] * t5 + p11 * s
    s = e[3] * t4 + p9 * s
    s = e[2] * t3 + p7 * s
    s = e[1] * t2 + p5 * s
    s = e[0] * t1 + p3 * s
    return q * s


@inline
def _moving_fourier6(q, cth, e):
    """:func:`_moving_fourier12` with m = 1..6 (sigma >= 0.42 h: the rest < 1e-18)."""
    t1 = cth
    c2 = 2.0 * cth
    t2 = c2 * t1 - 1.0
    t3 = c2 * t2 - t1
    t4 = c2 * t3 - t2
    t5 = c2 * t4 - t3
    t6 = c2 * t5 - t4
    qh = max(q, 1e-10)
    q2 = qh * qh
    p3 = qh * q2
    p5 = p3 * q2
    p7 = p5 * q2
    p9 = p7 * q2
    p11 = p9 * q2
    s = e[4] * t5 + p11 * (e[5] * t6)
    s = e[3] * t4 + p9 * s
    s = e[2] * t3 + p7 * s
    s = e[1] * t2 + p5 * s
    s = e[0] * t1 + p3 * s
    return q * s


@inline
def _two_images_value(x, y, sy2, s1, s2, pref, decay, zr, psi1, psi2, lam1, lam2, h2):
    """Both components by their images (sigma_zj^2 = s1, s2 < (0.22 h)^2); one division, three roots."""
    hr = 0.5 / (sy2 * s1 * s2)
    ky = s1 * s2 * hr  # 1 / (2 sigma_y^2)
    inv1 = sy2 * s2 * hr  # 1 / (2 sigma_z1^2)
    inv2 = sy2 * s1 * hr
    lat = -(y * y) * ky - decay * x
    v1 = _image_sum5(zr, psi1, h2, inv1, lat)
    v2 = _image_sum5(zr, psi2, h2, inv2, lat)
    return pref * math.sqrt(4.0 * ky) * (lam1 * math.sqrt(inv1) * v1 + lam2 * math.sqrt(inv2) * v2)


@inline
def _two_mixed_value(x, y, sy2, s1, s2, pref, amp, decay, kq, zr, psi1, psi2, lam1, lam2, h2, inv_h, e):
    """Component 1 by the moving Fourier series (sigma_z1 >= 0.22 h), component 2 by its images."""
    hr = 0.5 / (sy2 * s2)
    ky = s2 * hr
    inv2 = sy2 * hr
    lat = -(y * y) * ky - decay * x
    q1 = fast_exp_above(-kq * s1, EXPONENT_FLOOR)
    f1 = 1.0 + _moving_fourier12(q1, _cos_pi(psi1 * inv_h), e)
    v2 = _image_sum5(zr, psi2, h2, inv2, lat)
    far1 = lam1 * amp * _exp_above_floor(lat) * f1
    return math.sqrt(2.0 * ky) * (far1 + lam2 * pref * math.sqrt(2.0 * inv2) * v2)


@inline
def _two_far_value(x, y, sy2, s1, s2, amp, decay, kq, psi1, psi2, lam1, lam2, inv_h, e):
    """Both components by the moving 12-term Fourier series (sigma_z2 >= 0.22 h)."""
    ky = 0.5 / sy2
    lat = -(y * y) * ky - decay * x
    q1 = fast_exp_above(-kq * s1, EXPONENT_FLOOR)
    q2 = fast_exp_above(-kq * s2, EXPONENT_FLOOR)
    f = 1.0 + lam1 * _moving_fourier12(q1, _cos_pi(psi1 * inv_h), e) + lam2 * _moving_fourier12(
        q2, _cos_pi(psi2 * inv_h), e
    )
    return amp * math.sqrt(2.0 * ky) * _exp_above_floor(lat) * f


@inline
def _two_far_value6(x, y, sy2, s1, s2, amp, decay, kq, psi1, psi2, lam1, lam2, inv_h, e):
    """:func:`_two_far_value` with 6 terms (sigma_z2 >= 0.42 h)."""
    ky = 0.5 / sy2
    lat = -(y * y) * ky - decay * x
    q1 = fast_exp_above(-kq * s1, EXPONENT_FLOOR)
    q2 = fast_exp_above(-kq * s2, EXPONENT_FLOOR)
    f = 1.0 + lam1 * _moving_fourier6(q1, _cos_pi(psi1 * inv_h), e) + lam2 * _moving_fourier6(
        q2, _cos_pi(psi2 * inv_h), e
    )
    return amp * math.sqrt(2.0 * ky) * _exp_above_floor(lat) * f


@inline
def _coefficients(cm):
    """Return the FOURIER_TERMS = 12 lid coefficients of one source as a tuple (loaded before the loop)."""
    return (cm[0], cm[1], cm[2], cm[3], cm[4], cm[5], cm[6], cm[7], cm[8], cm[9], cm[10], cm[11])


@inline
def _log_depletion(x, x_max_table, table):
    """Linear interpolation of a source's ln-depletion table in sqrt(x / x_max)."""
    n = table.size
    t = math.sqrt(min(max(x / x_max_table, 0.0), 1.0)) * (n - 1)
    k = min(int(t), n - 2)
    return table[k] + (t - k) * (table[k + 1] - table[k])


@inline
def _split_column(xa, dxi, inv_dxi, v, a, b):
    """Where x = xa + i dxi crosses v in the columns [a, b) (x linear along the row; inv_dxi = 1 / dxi).

    dxi >= 0: the first column with x >= v (b if none); dxi < 0: the first column with x < v (b if none).
    Neighbouring regimes split at the same value, so their ranges partition [a, b) exactly.
    """
    if dxi > 0.0:
        return int(math.ceil(min(max((v - xa) * inv_dxi, a), b)))
    if dxi < 0.0:
        return int(math.floor(min(max((v - xa) * inv_dxi, a - 1.0), b - 1.0))) + 1
    return a if xa >= v else b


@inline
def _downwind_range(xa, dxi, inv_dxi, x_min, i0, i1):
    """Index range [a, b) within [i0, i1) of the columns with xa + i dxi > x_min, exactly.

    x is monotone in i, so the set is one range; the rounding of the split is corrected by stepping each
    end (at most a column or two) until the same expression the regime loops use decides it.
    """
    cut = _split_column(xa, dxi, inv_dxi, x_min, i0, i1)
    a, b = (cut, i1) if dxi >= 0.0 else (i0, cut)
    while a > i0 and xa + (a - 1) * dxi > x_min:
        a -= 1
    while a < b and not xa + a * dxi > x_min:
        a += 1
    while b < i1 and xa + b * dxi > x_min:
        b += 1
    while b > a and not xa + (b - 1) * dxi > x_min:
        b -= 1
    return a, b


@kernel()
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


VECTOR_BLOCK = 8
"""The regime loops run over whole multiples of this many pairs (LLVM's AVX-512 loop step, 8 lanes; the
padding pairs repeat the first one and are not added), so no pair runs through the slow scalar remainder."""
BAND_ROWS = 8
"""Receptor rows evaluated together: each source's downwind pairs in a band of this many rows are gathered
per regime into one list and evaluated by one loop (a long loop instead of up to 4 short ones per row)."""


@kernel(fastmath=True)
def _regime_values(regime, n, xs, ys, vals, s, c, zr):
    """vals[e] = one source's concentration at downwind x = xs[e], crosswind y = ys[e] (m), e < n.

    ``regime`` 0 near, 1 middle, 2 far (12 Fourier terms), 3 far (6 terms); sigma forms: both rational
    (FAST), polynomial sigma_z with a general sigma_y power (POLY_Z: one exp and one log per pair), general
    (three of each). Two-component sources (TWO_COMP) have their own regimes (:func:`_two_component_regimes`):
    0 both components by images, 1 component 1 by the moving Fourier series and 2 by images, 2 and 3 both
    by the series (12 and 6 terms). Each (regime, sigma form) pair is one branch-free loop, which LLVM
    vectorises.
    """
    pref, decay, amp, kq = s[PREF], s[DECAY], s[AMP_FAR], s[KQ]
    d1 = zr - s[H]
    d2 = zr + s[H]
    h2 = 2.0 * s[LID]
    ay, by, py, sy02 = s[AY], s[BY], s[PY], s[SY02]
    az, bz, pz, az2, bz2, pz2, cz, sz02 = s[AZ], s[BZ], s[PZ], s[AZ2], s[BZ2], s[PZ2], s[CZ], s[SZ02]
    if s[FAST] != 0.0:
        ay2, dy1, dy2 = _rational_coefficients(ay, by, s[WY_M2], s[WY_M1])
        az2_, dz1, dz2 = _rational_coefficients(az, bz, s[WZ_M2], s[WZ_M1])
        cz2 = cz * cz
        if regime == 0:
            for e in range(n):
                x = xs[e]
                x2 = x * x
                py_, dy_ = _sigma2_rational(x, x2, ay2, dy1, dy2, sy02)
                pz_, dz_ = _sigma2_rational(x, x2, az2_, dz1, dz2, cz2 * x2 * x2 + sz02)
                vals[e] = _near_value(x, ys[e], py_, dy_, pz_, dz_, pref, decay, d1, d2)
        elif regime == 1:
            for e in range(n):
                x = xs[e]
                x2 = x * x
                py_, dy_ = _sigma2_rational(x, x2, ay2, dy1, dy2, sy02)
                pz_, dz_ = _sigma2_rational(x, x2, az2_, dz1, dz2, cz2 * x2 * x2 + sz02)
                vals[e] = _middle_value(x, ys[e], py_, dy_, pz_, dz_, pref, decay, d1, d2, h2)
        elif regime == 2:
            for e in range(n):
                x = xs[e]
                x2 = x * x
                py_, dy_ = _sigma2_rational(x, x2, ay2, dy1, dy2, sy02)
                pz_, dz_ = _sigma2_rational(x, x2, az2_, dz1, dz2, cz2 * x2 * x2 + sz02)
                vals[e] = _far_value(x, ys[e], py_, dy_, pz_, dz_, amp, decay, kq, c)
        else:
            for e in range(n):
                x = xs[e]
                x2 = x * x
                py_, dy_ = _sigma2_rational(x, x2, ay2, dy1, dy2, sy02)
                pz_, dz_ = _sigma2_rational(x, x2, az2_, dz1, dz2, cz2 * x2 * x2 + sz02)
                vals[e] = _far_value6(x, ys[e], py_, dy_, pz_, dz_, amp, decay, kq, c)
    elif s[TWO_COMP] != 0.0:
        a1, a2, bq = s[SZA1], s[SZA2], s[SZB]
        lam1, lam2, sl1, sl2, he = s[LAM1], s[LAM2], s[SLOPE1], s[SLOPE2], s[H]
        inv_h = 1.0 / s[LID]
        if regime == 0:
            for e in range(n):
                x = xs[e]
                sy2 = ay * ay * x * x * _power_1p(by, x, 2.0 * py) + sy02
                s1 = _sigma2_poly(x, a1, bq, sz02)
                s2 = _sigma2_poly(x, a2, bq, sz02)
                vals[e] = _two_images_value(
                    x, ys[e], sy2, s1, s2, pref, decay, zr, he + sl1 * x, he + sl2 * x, lam1, lam2, h2
                )
        elif regime == 1:
            for e in range(n):
                x = xs[e]
                sy2 = ay * ay * x * x * _power_1p(by, x, 2.0 * py) + sy02
                s1 = _sigma2_poly(x, a1, bq, sz02)
                s2 = _sigma2_poly(x, a2, bq, sz02)
                vals[e] = _two_mixed_value(
                    x, ys[e], sy2, s1, s2, pref, amp, decay, kq, zr, he + sl1 * x, he + sl2 * x, lam1, lam2,
                    h2, inv_h, c,
                )
        elif regime == 2:
            for e in range(n):
                x = xs[e]
                sy2 = ay * ay * x * x * _power_1p(by, x, 2.0 * py) + sy02
                s1 = _sigma2_poly(x, a1, bq, sz02)
                s2 = _sigma2_poly(x, a2, bq, sz02)
                vals[e] = _two_far_value(
                    x, ys[e], sy2, s1, s2, amp, decay, kq, he + sl1 * x, he + sl2 * x, lam1, lam2, inv_h, c
                )
        else:
            for e in range(n):
                x = xs[e]
                sy2 = ay * ay * x * x * _power_1p(by, x, 2.0 * py) + sy02
                s1 = _sigma2_poly(x, a1, bq, sz02)
                s2 = _sigma2_poly(x, a2, bq, sz02)
                vals[e] = _two_far_value6(
                    x, ys[e], sy2, s1, s2, amp, decay, kq, he + sl1 * x, he + sl2 * x, lam1, lam2, inv_h, c
                )
    elif s[POLY_Z] != 0.0:
        a1, bq = s[SZA1], s[SZB]
        if regime == 0:
            for e in range(n):
                x = xs[e]
                sy2 = ay * ay * x * x * _power_1p(by, x, 2.0 * py) + sy02
                sz2 = _sigma2_poly(x, a1, bq, sz02)
                vals[e] = _near_value(x, ys[e], sy2, 1.0, sz2, 1.0, pref, decay, d1, d2)
        elif regime == 1:
            for e in range(n):
                x = xs[e]
                sy2 = ay * ay * x * x * _power_1p(by, x, 2.0 * py) + sy02
                sz2 = _sigma2_poly(x, a1, bq, sz02)
                vals[e] = _middle_value(x, ys[e], sy2, 1.0, sz2, 1.0, pref, decay, d1, d2, h2)
        elif regime == 2:
            for e in range(n):
                x = xs[e]
                sy2 = ay * ay * x * x * _power_1p(by, x, 2.0 * py) + sy02
                sz2 = _sigma2_poly(x, a1, bq, sz02)
                vals[e] = _far_value(x, ys[e], sy2, 1.0, sz2, 1.0, amp, decay, kq, c)
        else:
            for e in range(n):
                x = xs[e]
                sy2 = ay * ay * x * x * _power_1p(by, x, 2.0 * py) + sy02
                sz2 = _sigma2_poly(x, a1, bq, sz02)
                vals[e] = _far_value6(x, ys[e], sy2, 1.0, sz2, 1.0, amp, decay, kq, c)
    else:
        if regime == 0:
            for e in range(n):
                x = xs[e]
                sy2, sz2 = _sigma2_general(x, ay, by, py, sy02, az, bz, pz, az2, bz2, pz2, cz, sz02)
                vals[e] = _near_value(x, ys[e], sy2, 1.0, sz2, 1.0, pref, decay, d1, d2)
        elif regime == 1:
            for e in range(n):
                x = xs[e]
                sy2, sz2 = _sigma2_general(x, ay, by, py, sy02, az, bz, pz, az2, bz2, pz2, cz, sz02)
                vals[e] = _middle_value(x, ys[e], sy2, 1.0, sz2, 1.0, pref, decay, d1, d2, h2)
        elif regime == 2:
            for e in range(n):
                x = xs[e]
                sy2, sz2 = _sigma2_general(x, ay, by, py, sy02, az, bz, pz, az2, bz2, pz2, cz, sz02)
                vals[e] = _far_value(x, ys[e], sy2, 1.0, sz2, 1.0, amp, decay, kq, c)
        else:
            for e in range(n):
                x = xs[e]
                sy2, sz2 = _sigma2_general(x, ay, by, py, sy02, az, bz, pz, az2, bz2, pz2, cz, sz02)
                vals[e] = _far_value6(x, ys[e], sy2, 1.0, sz2, 1.0, amp, decay, kq, c)


@kernel(fastmath=True)
def _grid_band(
    params, tag, fourier, depletion, zr, x_min, gx0, gy0, gdx, gdy, nx, j0, j1, skip, conc, work, segs
):
    """Add every source's concentration on receptor rows j0..j1-1 to ``conc[tag, j, :]`` (one thread).

    Per source: each row's downwind columns (within the footprint when ``skip``) split into the near /
    middle / far / far-6 ranges (x is linear along a row); their (x, y) are gathered per regime into
    ``work[0, regime]``, ``work[1, regime]``, evaluated into ``work[2, regime]`` by one loop per regime,
    and added back to their receptors. ``segs`` records the ranges (row, regime, first column, end,
    offset in the list).
    """
    nsrc = params.shape[0]
    for k in range(nsrc):
        s = params[k]
        if s[PREF] == 0.0:
            continue
        ex, ey = s[EX], s[EY]
        rx0 = gx0 - s[XS]
        dxi = gdx * ex
        dyi = -gdx * ey
        inv_dxi = 1.0 / dxi if dxi != 0.0 else 0.0
        n0 = 0
        n1 = 0
        n2 = 0
        n3 = 0
        nseg = 0
        for j in range(j0, j1):
            yr = gy0 + j * gdy
            if skip:
                i0, i1 = _row_footprint(s, gx0, yr, gdx, nx)
            else:
                i0, i1 = 0, nx
            ry = yr - s[YS]
            xa = rx0 * ex + ry * ey
            # downwind columns x > x_min only (upwind pairs are exactly 0)
            a, b = _downwind_range(xa, dxi, inv_dxi, x_min, i0, i1)
            if b <= a:
                continue
            yb = -rx0 * ey + ry * ex
            # regime r holds XNEAR, XFAR, XFAR6 bounds[r] <= x < bounds[r + 1]: columns [s_r, s_r+1) when x
            # grows along the row, [s_r+1, s_r) when it falls
            s1 = _split_column(xa, dxi, inv_dxi, s[XNEAR], a, b)
            s2 = _split_column(xa, dxi, inv_dxi, s[XFAR], a, b)
            s3 = _split_column(xa, dxi, inv_dxi, s[XFAR6], a, b)
            cuts = (a, s1, s2, s3, b) if dxi >= 0.0 else (b, s1, s2, s3, a)
            for regime in range(4):
                lo = min(cuts[regime], cuts[regime + 1])
                hi = max(cuts[regime], cuts[regime + 1])
                if hi <= lo:
                    continue
                if regime == 0:
                    off = n0
                    n0 += hi - lo
                elif regime == 1:
                    off = n1
                    n1 += hi - lo
                elif regime == 2:
                    off = n2
                    n2 += hi - lo
                else:
                    off = n3
                    n3 += hi - lo
                # views indexed from 0, so LLVM sees non-negative indices and vectorises the copies
                xv = work[0, regime, off : off + hi - lo]
                yv = work[1, regime, off : off + hi - lo]
                for e in range(hi - lo):
                    xv[e] = xa + (lo + e) * dxi
                    yv[e] = yb + (lo + e) * dyi
                segs[nseg, 0] = j
                segs[nseg, 1] = regime
                segs[nseg, 2] = lo
                segs[nseg, 3] = hi
                segs[nseg, 4] = off
                nseg += 1
        if nseg == 0:
            continue
        c = _coefficients(fourier[k])
        table = depletion[k]
        for regime in range(4):
            n = n0 if regime == 0 else n1 if regime == 1 else n2 if regime == 2 else n3
            if n == 0:
                continue
            xs = work[0, regime]
            ys = work[1, regime]
            vals = work[2, regime]
            m = (n + VECTOR_BLOCK - 1) // VECTOR_BLOCK * VECTOR_BLOCK
            for e in range(n, m):
                xs[e] = xs[0]
                ys[e] = ys[0]
            _regime_values(regime, m, xs, ys, vals, s, c, zr)
            if table.size > 0:
                xt = s[DEPXMAX]
                for e in range(n):
                    vals[e] *= fast_exp(_log_depletion(xs[e], xt, table))
        t = tag[k]
        for q in range(nseg):
            lo = segs[q, 2]
            hi = segs[q, 3]
            off = segs[q, 4]
            out = conc[t, segs[q, 0], lo:hi]
            vals = work[2, segs[q, 1], off : off + hi - lo]
            for e in range(hi - lo):
                out[e] += vals[e]


@kernel(parallel=True)
def plume_grid_kernel(params, tag, fourier, depletion, zr, x_min, gx0, gy0, gdx, gdy, nx, ny, skip, conc):
    """Add every source's concentration to ``conc[tag, j, i]`` on a regular receptor grid.

    Receptor (i, j) lies at (gx0 + i gdx, gy0 + j gdy), height zr. Each band of :data:`BAND_ROWS` receptor
    rows is computed whole by one thread, so the result does not depend on the thread count. ``skip``
    restricts each row to the source's footprint trapezoid (module docstring); otherwise every downwind
    pair is evaluated.
    """
    nband = (ny + BAND_ROWS - 1) // BAND_ROWS
    for t in prange(nband):
        # the work per row drifts across the grid (sources upwind of the low rows, say) and prange hands
        # each thread a contiguous run of t: bands are taken from both ends alternately so every run
        # gets the same mix of light and heavy bands
        tt = np.int64(t)
        band = tt // 2 if tt % 2 == 0 else nband - 1 - tt // 2
        j0 = band * BAND_ROWS
        j1 = min(j0 + BAND_ROWS, ny)
        work = np.empty((3, 4, BAND_ROWS * nx + VECTOR_BLOCK))
        segs = np.empty((4 * BAND_ROWS, 5), dtype=np.int64)
        _grid_band(
            params, tag, fourier, depletion, zr, x_min, gx0, gy0, gdx, gdy, nx, j0, j1, skip, conc, work, segs
        )


_POINT_BLOCK = 256


@kernel(fastmath=True)
def _pair_value(s, c, table, x, y, zr, x_min):
    """Concentration of one source at one receptor (x downwind, y crosswind), regime picked by x."""
    if x <= x_min:
        return 0.0
    if s[TWO_COMP] != 0.0:
        v = _two_component_pair(s, c, x, y, zr)
    else:
        v = _one_component_pair(s, c, x, y, zr)
    if table.size > 0:
        v *= fast_exp(_log_depletion(x, s[DEPXMAX], table))
    return v


@kernel(fastmath=True)
def _two_component_pair(s, c, x, y, zr):
    """:func:`_pair_value` of a two-component source (regimes of :func:`_two_component_regimes`)."""
    sy2 = s[AY] * s[AY] * x * x * _power_1p(s[BY], x, 2.0 * s[PY]) + s[SY02]
    s1 = _sigma2_poly(x, s[SZA1], s[SZB], s[SZ02])
    s2 = _sigma2_poly(x, s[SZA2], s[SZB], s[SZ02])
    psi1 = s[H] + s[SLOPE1] * x
    psi2 = s[H] + s[SLOPE2] * x
    lam1, lam2, inv_h, h2 = s[LAM1], s[LAM2], 1.0 / s[LID], 2.0 * s[LID]
    if x < s[XNEAR]:
        return _two_images_value(x, y, sy2, s1, s2, s[PREF], s[DECAY], zr, psi1, psi2, lam1, lam2, h2)
    if x < s[XFAR]:
        return _two_mixed_value(
            x, y, sy2, s1, s2, s[PREF], s[AMP_FAR], s[DECAY], s[KQ], zr, psi1, psi2, lam1, lam2, h2, inv_h, c
        )
    if x < s[XFAR6]:
        return _two_far_value(
            x, y, sy2, s1, s2, s[AMP_FAR], s[DECAY], s[KQ], psi1, psi2, lam1, lam2, inv_h, c
        )
    return _two_far_value6(x, y, sy2, s1, s2, s[AMP_FAR], s[DECAY], s[KQ], psi1, psi2, lam1, lam2, inv_h, c)


@kernel(fastmath=True)
def _one_component_pair(s, c, x, y, zr):
    """:func:`_pair_value` of a one-Gaussian source."""
    if s[FAST] != 0.0:
        x2 = x * x
        ay2, dy1, dy2 = _rational_coefficients(s[AY], s[BY], s[WY_M2], s[WY_M1])
        az2, dz1, dz2 = _rational_coefficients(s[AZ], s[BZ], s[WZ_M2], s[WZ_M1])
        py_, dy_ = _sigma2_rational(x, x2, ay2, dy1, dy2, s[SY02])
        pz_, dz_ = _sigma2_rational(x, x2, az2, dz1, dz2, s[CZ] * s[CZ] * x2 * x2 + s[SZ02])
    else:
        py_, pz_ = _sigma2_general(
            x, s[AY], s[BY], s[PY], s[SY02], s[AZ], s[BZ], s[PZ], s[AZ2], s[BZ2], s[PZ2], s[CZ], s[SZ02]
        )
        dy_ = 1.0
        dz_ = 1.0
    d1 = zr - s[H]
    d2 = zr + s[H]
    if x < s[XNEAR]:
        v = _near_value(x, y, py_, dy_, pz_, dz_, s[PREF], s[DECAY], d1, d2)
    elif x < s[XFAR]:
        v = _middle_value(x, y, py_, dy_, pz_, dz_, s[PREF], s[DECAY], d1, d2, 2.0 * s[LID])
    elif x < s[XFAR6]:
        v = _far_value(x, y, py_, dy_, pz_, dz_, s[AMP_FAR], s[DECAY], s[KQ], c)
    else:
        v = _far_value6(x, y, py_, dy_, pz_, dz_, s[AMP_FAR], s[DECAY], s[KQ], c)
    return v


@kernel(parallel=True)
def plume_points_kernel(params, tag, fourier, depletion, zr, x_min, rx, ry, conc):
    """Add every source's concentration to ``conc[tag, r]`` at arbitrary receptors (rx, ry), height zr.

    Receptors are processed in blocks of 256 per thread (deterministic for any thread count); each pair
    picks its regime by x (scalar code: this kernel serves validation and scattered receptors; grids use
    :func:`plume_grid_kernel`).
    """
    nsrc = params.shape[0]
    nrec = rx.size
    nblock = (nrec + _POINT_BLOCK - 1) // _POINT_BLOCK
    for blk in prange(nblock):
        r0 = blk * _POINT_BLOCK
        r1 = min(r0 + _POINT_BLOCK, nrec)
        for k in range(nsrc):
            s = params[k]
            if s[PREF] == 0.0:
                continue
            out = conc[tag[k]]
            c = _coefficients(fourier[k])
            for r in range(r0, r1):
                dx = rx[r] - s[XS]
                dy = ry[r] - s[YS]
                x = dx * s[EX] + dy * s[EY]
                y = -dx * s[EY] + dy * s[EX]
                out[r] += _pair_value(s, c, depletion[k], x, y, zr, x_min)


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
    conc = np.zeros((n_tags, int(ny), int(nx)))
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
    return conc.reshape(n_tags, -1)


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
