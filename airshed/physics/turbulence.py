"""Boundary-layer turbulence profiles for the particle model: Hanna (1982) as used in FLEXPART.

Velocity standard deviations sigma_u, sigma_v, sigma_w (m/s), the vertical gradient d sigma_w / dz (s-1)
and Lagrangian time scales T_Lu, T_Lv, T_Lw (s) as functions of height z, mixing height h, friction
velocity u*, convective velocity w* and inverse Obukhov length 1/L, by regime:

- neutral when h/|L| < 1, unstable when L < 0, stable otherwise;
- Hanna, S. R. (1982): Applications in air pollution modeling, in *Atmospheric Turbulence and Air
  Pollution Modelling* (Nieuwstadt & van Dop, eds.), Reidel, 275-310, Sect. 2.3-2.6, in the form and with
  the constants of FLEXPART's ``hanna.f`` (Stohl et al. 2005, ACP 5:2461, Sect. 6; Stohl & Thomson 1999,
  BLM 90:155), including the +0.01 m/s floor on each sigma and the Coriolis parameter fixed at 1e-4 s-1.

Differences from ``hanna.f`` (deliberate): the neutral d sigma_w / dz is the exact derivative
-2e-4/u* sigma_w (``hanna.f`` omits the 1/u*); in the unstable regime sigma_w is held constant below
z/h = 1e-3 (FLEXPART caps only the z/h^(-1/3) term of the gradient) so that d sigma_w / dz is exactly the
derivative of the sigma_w used, as the well-mixed condition requires; the lower bounds on the time scales are
parameters (FLEXPART: 10 s horizontal, 30 s vertical), because near-source studies (Prairie Grass) need
the small near-ground time scales. z/h is clipped to [0, 1]; above h the free-troposphere scheme of the
kernel applies instead.

Each regime is written once as arithmetic on scalars or NumPy arrays; ``hanna_vertical`` and
``hanna_horizontal`` pick the regime for Numba kernels (scalars), ``hanna_*_array`` for NumPy arrays.
"""

from __future__ import annotations

import numpy as np

from airshed.jit import inline

#: Minimum u* (m/s), as in FLEXPART.
USTAR_MIN = 1.0e-4
#: Lower bound on z/h inside the unstable-gradient formula (its zeta**(-1/3) term), as in FLEXPART.
ZETA_MIN_GRADIENT = 1.0e-3
#: FLEXPART's lower bounds on the Lagrangian time scales, s (horizontal, vertical).
FLEXPART_TL_MIN_HORIZONTAL_S = 10.0
FLEXPART_TL_MIN_VERTICAL_S = 30.0

NEUTRAL, UNSTABLE, STABLE = 0, 1, 2


def regime_formulas(exp=np.exp, log=np.log, cbrt=np.cbrt):
    """Return the six regime formulas (neutral/unstable/stable x vertical/horizontal) over exp, log, cbrt.

    Written once; the defaults (NumPy's) serve arrays and the branchy scalar helpers, and
    :func:`branch_free_profiles` builds vectorisable scalar forms over faster functions.
    """

    def _neutral_vertical(z, ust):
        """sigma_w, d sigma_w/dz, T_Lw in neutral conditions (Hanna 1982, f = 1e-4 s-1)."""
        s0 = 1.3 * ust * exp(-2.0e-4 * z / ust)
        sigw = s0 + 0.01
        return sigw, -2.0e-4 / ust * s0, 0.5 * z / sigw / (1.0 + 1.5e-3 * z / ust)

    def _neutral_horizontal(z, ust):
        """sigma_u, sigma_v, T_Lu, T_Lv in neutral conditions (Hanna 1982; sigma_v = sigma_w)."""
        sigu = 0.01 + 2.0 * ust * exp(-3.0e-4 * z / ust)
        sigv = 0.01 + 1.3 * ust * exp(-2.0e-4 * z / ust)
        tl = 0.5 * z / sigv / (1.0 + 1.5e-3 * z / ust)
        return sigu, sigv, tl, tl

    def _unstable_vertical(z, h, ust, wst, inv_L):
        """sigma_w, d sigma_w/dz, T_Lw in unstable conditions (Hanna 1982; zeta = z/h in [0, 1])."""
        zeta = z / h
        # Below zeta_min sigma_w is held at its zeta_min value, so the drift (exactly d sigma_w/dz) stays
        # consistent with sigma_w: that is what the well-mixed condition needs.
        above_min = zeta >= ZETA_MIN_GRADIENT
        zeta_c = np.maximum(zeta, ZETA_MIN_GRADIENT)
        cbrt_zeta = cbrt(zeta_c)
        zeta23 = cbrt_zeta * cbrt_zeta
        root = np.sqrt(1.2 * wst * wst * (1.0 - 0.9 * zeta_c) * zeta23 + (1.8 - 1.4 * zeta_c) * ust * ust)
        sigw = root + 0.01
        dsigw = (
            0.5 / root / h * (-1.4 * ust * ust + wst * wst * (0.8 / cbrt_zeta - 1.8 * zeta23))
        ) * above_min
        # T_Lw: surface layer (z < |L|), lower mixed layer (z/h < 0.1), upper mixed layer.
        q = np.minimum(z * np.abs(inv_L), 1.0)
        t_surface = 0.1 * z / (sigw * (0.55 - 0.38 * q))
        t_lower = 0.59 * z / sigw
        t_upper = 0.15 * h / sigw * (1.0 - exp(-5.0 * zeta))
        in_surface = z * np.abs(inv_L) < 1.0
        in_lower = zeta < 0.1
        tlw = t_surface * in_surface + (1 - in_surface) * (t_lower * in_lower + t_upper * (1 - in_lower))
        return sigw, dsigw, tlw

    def _unstable_horizontal(z, h, ust, wst, inv_L):
        """sigma_u, sigma_v, T_Lu, T_Lv when unstable (Hanna 1982: sigma_u = u* (12 - 0.5 h/L)^1/3)."""
        sigu = 0.01 + ust * cbrt(np.maximum(12.0 - 0.5 * h * inv_L, 1e-12)) + 0.0 * z
        tl = 0.15 * h / sigu
        return sigu, sigu, tl, tl

    def _stable_vertical(z, h, ust):
        """sigma_w, d sigma_w/dz, T_Lw in stable conditions (Hanna 1982)."""
        zeta = z / h
        sigw = 0.01 + 1.3 * ust * (1.0 - zeta)
        return sigw, -1.3 * ust / h + 0.0 * zeta, 0.1 * h / sigw * exp(0.8 * log(np.maximum(zeta, 1e-300)))

    def _stable_horizontal(z, h, ust):
        """sigma_u, sigma_v, T_Lu, T_Lv in stable conditions (Hanna 1982)."""
        zeta = z / h
        sigu = 0.01 + 2.0 * ust * (1.0 - zeta)
        sigv = 0.01 + 1.3 * ust * (1.0 - zeta)
        tlu = 0.15 * h / sigu * np.sqrt(zeta)
        return sigu, sigv, tlu, 0.467 * tlu

    return (
        _neutral_vertical, _neutral_horizontal, _unstable_vertical, _unstable_horizontal, _stable_vertical,
        _stable_horizontal,
    )  # fmt: skip


(
    _neutral_vertical, _neutral_horizontal, _unstable_vertical, _unstable_horizontal, _stable_vertical,
    _stable_horizontal,
) = regime_formulas()  # fmt: skip

_neutral_vertical_s = inline(_neutral_vertical)
_neutral_horizontal_s = inline(_neutral_horizontal)
_unstable_vertical_s = inline(_unstable_vertical)
_unstable_horizontal_s = inline(_unstable_horizontal)
_stable_vertical_s = inline(_stable_vertical)
_stable_horizontal_s = inline(_stable_horizontal)


@inline
def hanna_regime(h: float, inv_L: float) -> int:
    """Stability regime for the Hanna profiles: 0 neutral (h/|L| < 1), 1 unstable (L < 0), 2 stable."""
    if h * abs(inv_L) < 1.0:
        return NEUTRAL
    if inv_L < 0.0:
        return UNSTABLE
    return STABLE


@inline
def hanna_vertical(
    z: float, h: float, ustar: float, wstar: float, inv_L: float, tl_min: float
) -> tuple[float, float, float]:
    """sigma_w (m/s), d sigma_w/dz (s-1) and T_Lw (s, >= tl_min) at height z inside the mixed layer.

    Hanna (1982) profiles in FLEXPART form (Stohl et al. 2005); z/h is clipped to [0, 1].
    """
    ust = max(ustar, USTAR_MIN)
    zc = min(max(z, 0.0), h)
    regime = hanna_regime(h, inv_L)
    if regime == NEUTRAL:
        sigw, dsigw, tlw = _neutral_vertical_s(zc, ust)
    elif regime == UNSTABLE:
        sigw, dsigw, tlw = _unstable_vertical_s(zc, h, ust, wstar, inv_L)
    else:
        sigw, dsigw, tlw = _stable_vertical_s(zc, h, ust)
    return sigw, dsigw, max(tlw, tl_min)


@inline
def hanna_horizontal(
    z: float, h: float, ustar: float, wstar: float, inv_L: float, tl_min: float
) -> tuple[float, float, float, float]:
    """sigma_u, sigma_v (m/s), T_Lu, T_Lv (s, >= tl_min) at height z in the mixed layer (Hanna 1982)."""
    ust = max(ustar, USTAR_MIN)
    zc = min(max(z, 0.0), h)
    regime = hanna_regime(h, inv_L)
    if regime == NEUTRAL:
        sigu, sigv, tlu, tlv = _neutral_horizontal_s(zc, ust)
    elif regime == UNSTABLE:
        sigu, sigv, tlu, tlv = _unstable_horizontal_s(zc, h, ust, wstar, inv_L)
    else:
        sigu, sigv, tlu, tlv = _stable_horizontal_s(zc, h, ust)
    return sigu, sigv, max(tlu, tl_min), max(tlv, tl_min)


def _regime_array(h: np.ndarray, inv_L: np.ndarray) -> np.ndarray:
    neutral = h * np.abs(inv_L) < 1.0
    return np.where(neutral, NEUTRAL, np.where(inv_L < 0.0, UNSTABLE, STABLE))


def hanna_vertical_array(z, h, ustar, wstar, inv_L, tl_min: float):
    """NumPy form of :func:`hanna_vertical` on arrays (same formulas, regime chosen per element)."""
    z, h, ustar, wstar, inv_L = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (z, h, ustar, wstar, inv_L))
    )
    ust = np.maximum(ustar, USTAR_MIN)
    zc = np.minimum(np.maximum(z, 0.0), h)
    regime = _regime_array(h, inv_L)
    n = _neutral_vertical(zc, ust)
    u = _unstable_vertical(zc, h, ust, wstar, inv_L)
    s = _stable_vertical(zc, h, ust)
    out = [np.where(regime == NEUTRAL, n[k], np.where(regime == UNSTABLE, u[k], s[k])) for k in range(3)]
    return out[0], out[1], np.maximum(out[2], tl_min)


def hanna_horizontal_array(z, h, ustar, wstar, inv_L, tl_min: float):
    """NumPy form of :func:`hanna_horizontal` on arrays (same formulas, regime chosen per element)."""
    z, h, ustar, wstar, inv_L = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (z, h, ustar, wstar, inv_L))
    )
    ust = np.maximum(ustar, USTAR_MIN)
    zc = np.minimum(np.maximum(z, 0.0), h)
    regime = _regime_array(h, inv_L)
    n = _neutral_horizontal(zc, ust)
    u = _unstable_horizontal(zc, h, ust, wstar, inv_L)
    s = _stable_horizontal(zc, h, ust)
    out = [np.where(regime == NEUTRAL, n[k], np.where(regime == UNSTABLE, u[k], s[k])) for k in range(4)]
    return out[0], out[1], np.maximum(out[2], tl_min), np.maximum(out[3], tl_min)


def branch_free_profiles(exp, log, cbrt):
    """Numba scalar forms of :func:`hanna_vertical` and :func:`hanna_horizontal` without branches.

    All three regimes are evaluated with the given ``exp``, ``log`` and ``cbrt`` (e.g. the branch-free
    :mod:`airshed.model.fastmath` ones) and the regime's values are selected, so a loop over particles
    that calls them vectorises. Same formulas and regime rule as the branchy forms; values agree to the
    accuracy of the functions passed (a few ulp).
    """
    nv, nh, uv, uh, sv, sh = (inline(f) for f in regime_formulas(exp, log, cbrt))

    def vertical(z, h, ustar, wstar, inv_L, tl_min):
        ust = max(ustar, USTAR_MIN)
        zc = min(max(z, 0.0), h)
        neutral = h * abs(inv_L) < 1.0
        unstable = inv_L < 0.0
        sn, dn, tn = nv(zc, ust)
        su, du, tu = uv(zc, h, ust, wstar, inv_L)
        ss, ds, ts = sv(zc, h, ust)
        sigw = sn if neutral else (su if unstable else ss)
        dsigw = dn if neutral else (du if unstable else ds)
        tlw = tn if neutral else (tu if unstable else ts)
        return sigw, dsigw, max(tlw, tl_min)

    def horizontal(z, h, ustar, wstar, inv_L, tl_min):
        ust = max(ustar, USTAR_MIN)
        zc = min(max(z, 0.0), h)
        neutral = h * abs(inv_L) < 1.0
        unstable = inv_L < 0.0
        un, vn, tun, tvn = nh(zc, ust)
        uu, vu, tuu, tvu = uh(zc, h, ust, wstar, inv_L)
        us, vs, tus, tvs = sh(zc, h, ust)
        sigu = un if neutral else (uu if unstable else us)
        sigv = vn if neutral else (vu if unstable else vs)
        tlu = tun if neutral else (tuu if unstable else tus)
        tlv = tvn if neutral else (tvu if unstable else tvs)
        return sigu, sigv, max(tlu, tl_min), max(tlv, tl_min)

    return inline(vertical), inline(horizontal)


def regime_profiles(exp, log, cbrt):
    """Numba scalar forms of the Hanna profiles for one known regime each, over ``exp``, ``log``, ``cbrt``.

    Returns ``(vertical, horizontal)``, each a tuple (neutral, unstable, stable) of functions with the
    arguments and results of :func:`hanna_vertical` / :func:`hanna_horizontal` (same clipping of z, u*
    floor and time-scale floors) that evaluate only their regime's formulas. A kernel that knows which
    regimes occur among a group of particles (:func:`hanna_regime`) evaluates just those, each in a
    branch-free loop, and selects: the values are those of :func:`branch_free_profiles` bit for bit.
    """
    nv, nh, uv, uh, sv, sh = (inline(f) for f in regime_formulas(exp, log, cbrt))

    def vertical_neutral(z, h, ustar, wstar, inv_L, tl_min):
        sigw, dsigw, tlw = nv(min(max(z, 0.0), h), max(ustar, USTAR_MIN))
        return sigw, dsigw, max(tlw, tl_min)

    def vertical_unstable(z, h, ustar, wstar, inv_L, tl_min):
        sigw, dsigw, tlw = uv(min(max(z, 0.0), h), h, max(ustar, USTAR_MIN), wstar, inv_L)
        return sigw, dsigw, max(tlw, tl_min)

    def vertical_stable(z, h, ustar, wstar, inv_L, tl_min):
        sigw, dsigw, tlw = sv(min(max(z, 0.0), h), h, max(ustar, USTAR_MIN))
        return sigw, dsigw, max(tlw, tl_min)

    def horizontal_neutral(z, h, ustar, wstar, inv_L, tl_min):
        sigu, sigv, tlu, tlv = nh(min(max(z, 0.0), h), max(ustar, USTAR_MIN))
        return sigu, sigv, max(tlu, tl_min), max(tlv, tl_min)

    def horizontal_unstable(z, h, ustar, wstar, inv_L, tl_min):
        sigu, sigv, tlu, tlv = uh(min(max(z, 0.0), h), h, max(ustar, USTAR_MIN), wstar, inv_L)
        return sigu, sigv, max(tlu, tl_min), max(tlv, tl_min)

    def horizontal_stable(z, h, ustar, wstar, inv_L, tl_min):
        sigu, sigv, tlu, tlv = sh(min(max(z, 0.0), h), h, max(ustar, USTAR_MIN))
        return sigu, sigv, max(tlu, tl_min), max(tlv, tl_min)

    vertical = (inline(vertical_neutral), inline(vertical_unstable), inline(vertical_stable))
    horizontal = (inline(horizontal_neutral), inline(horizontal_unstable), inline(horizontal_stable))
    return vertical, horizontal
