"""Vertical turbulence by surface-layer similarity, blended into the mixed-layer profiles of Hanna (1982).

The ``"similarity"`` turbulence scheme of the particle core. Near the ground (the surface layer,
z < z_s ~ 0.1 h, and below L in stable air) the vertical velocity variance and the Lagrangian time
scale follow Monin-Obukhov similarity (free-convection scaling high in an unstable surface layer);
above it the Hanna (1982) mixed-layer profiles of :mod:`airshed.physics.turbulence` apply; a smooth
weight joins them. In a convective boundary layer with -h/L > 5 the vertical velocity is skewed
(:mod:`airshed.physics.skewed_cbl`).

Surface layer, zeta = z/L:

- sigma_w = 1.25 u* (1 - 3 zeta)^(1/3) (unstable), 1.25 u* (1 + 0.2 zeta) (stable) (Kaimal & Finnigan
  1994, *Atmospheric Boundary Layer Flows*, Eqs. 1.33-1.34; Panofsky et al. 1977);
- Lagrangian length lambda = sigma_w T_Lw = 0.5 z (neutral), 0.5 z / (1 + 5 zeta) (stable),
  0.5 z (1 - 6 zeta)^(1/4) (unstable) (Wilson, Thurtell & Kidd 1981, Boundary-Layer Meteorol. 21:443,
  who reproduced Prairie Grass with them; the form of the bLS model of Flesch, Wilson & Yee 1995,
  J. Appl. Meteorol. 34:1320). In neutral air this is T_Lw = 2 sigma_w^2 / (C0 eps) with eps = u*^3/(k z)
  and C0 = 3.1 (Thomson 1987).

Blend: with x = z / z_s and the surface-layer depth z_s = 1 / (10/h + max(1/L, 0)) (0.1 h in unstable
air; a smooth minimum of 0.1 h and L in stable air; :func:`surface_layer_depth`), the weight of the
mixed layer is b = x^4 / (1 + x^4); sigma_w^2 = (1 - b) sigma_s^2 + b sigma_m^2 and
T_Lw = (1 - b) lambda_s / sigma_s + b T_m. The blend is smooth, so d sigma_w / dz (the drift of
Thomson's well-mixed model) exists everywhere:

    d sigma_w/dz = [(1 - b) sigma_s sigma_s' + b sigma_m sigma_m' + b'/2 (sigma_m^2 - sigma_s^2)] / sigma_w,
    b' = 4 x^3 / (z_s (1 + x^4)^2).

Similarity does not hold inside the roughness sublayer: below ``min_height`` (a few tens of roughness
lengths; :data:`ROUGHNESS_SUBLAYER_OVER_Z0`) the profiles are held at their value there (and the
gradient is zero, as the well-mixed condition requires of a constant profile).

Every formula is written once over injected ``exp``, ``log``, ``cbrt`` and ``select`` (a conditional
on scalars for Numba, :func:`numpy.where` on arrays for the NumPy twin).
"""

from __future__ import annotations

import numpy as np

from airshed.physics.turbulence import USTAR_MIN, ZETA_MIN_GRADIENT, regime_formulas

#: sigma_w / u* in the neutral surface layer (Kaimal & Finnigan 1994; Panofsky & Dutton 1984).
SIGMA_W_OVER_USTAR = 1.25
#: Lagrangian length over height in the neutral surface layer (Wilson, Thurtell & Kidd 1981).
LAGRANGIAN_LENGTH_OVER_Z = 0.5
#: sigma_u / u* and sigma_v / u* in the neutral surface layer (Panofsky & Dutton 1984, *Atmospheric
#: Turbulence*, Sect. 7.4; AERMOD's mechanical sigma_v = 1.9 u*, Cimorelli et al. 2005).
SIGMA_U_OVER_USTAR = 2.4
SIGMA_V_OVER_USTAR = 1.9
#: Convective part of the horizontal variances, sigma^2 / w*^2 (Lenschow et al. 1980; Hicks 1985; AERMOD's
#: sigma_vc^2 = 0.35 w*^2, Cimorelli et al. 2005).
HORIZONTAL_VARIANCE_OVER_WSTAR2 = 0.35
#: Depth of the roughness sublayer over the roughness length: 2-5 canopy heights (Raupach, Antonia &
#: Rajagopalan 1991, Appl. Mech. Rev. 44:1) with a canopy height of about 10 z0 (Garratt 1992).
ROUGHNESS_SUBLAYER_OVER_Z0 = 20.0


def surface_layer_depth(h, inv_L):
    """Depth z_s (m) of the surface layer that the blend joins to the mixed layer.

    0.1 h in unstable air: the surface layer of the convective boundary layer, where Monin-Obukhov
    similarity holds and turns into free-convection scaling for -z/L >> 1: sigma_w -> 1.25 u*
    (3 |z/L|)^(1/3) = 1.33 w* (z/h)^(1/3) with w*^3 = u*^3 h / (k |L|), the free-convection law
    sigma_w = 1.3 w* (z/h)^(1/3) (Kaimal et al. 1976, J. Atmos. Sci. 33:2152; Hicks 1985, J. Clim.
    Appl. Meteorol. 24:1023). In stable air a smooth minimum of 0.1 h and L (similarity stops at z ~ L,
    Nieuwstadt 1984).
    """
    return 1.0 / (10.0 / h + np.maximum(inv_L, 0.0))


def _surface_layer_formula(cbrt, select, compile_):
    """Return surface_layer(z, u*, 1/L) -> (sigma_s, d sigma_s/dz, Lagrangian length) (module docstring)."""

    def surface_layer(z, ust, inv_L):
        """sigma_s, d sigma_s/dz and the Lagrangian length of the surface layer (see module docstring)."""
        zeta = z * inv_L
        unstable = zeta < 0.0
        # unstable: sigma_s = 1.25 u* (1 - 3 zeta)^(1/3), lambda = 0.5 z (1 - 6 zeta)^(1/4)
        one_minus = 1.0 - 3.0 * select(unstable, zeta, 0.0)
        c = cbrt(one_minus)
        sig_u = SIGMA_W_OVER_USTAR * ust * c
        dsig_u = -SIGMA_W_OVER_USTAR * ust * inv_L / (c * c)
        lam_u = LAGRANGIAN_LENGTH_OVER_Z * z * np.sqrt(np.sqrt(1.0 - 6.0 * select(unstable, zeta, 0.0)))
        # stable: sigma_s = 1.25 u* (1 + 0.2 zeta), lambda = 0.5 z / (1 + 5 zeta)
        zeta_s = select(unstable, 0.0, zeta)
        sig_s = SIGMA_W_OVER_USTAR * ust * (1.0 + 0.2 * zeta_s)
        dsig_s = 0.2 * SIGMA_W_OVER_USTAR * ust * inv_L
        lam_s = LAGRANGIAN_LENGTH_OVER_Z * z / (1.0 + 5.0 * zeta_s)
        sig = select(unstable, sig_u, sig_s)
        return sig, select(unstable, dsig_u, dsig_s), select(unstable, lam_u, lam_s)

    return compile_(surface_layer)


def _vertical_formulas(exp, log, cbrt, select, compile_):
    """Return the similarity vertical profiles (neutral, unstable, stable, any regime); see below."""
    surface_layer = _surface_layer_formula(cbrt, select, compile_)
    depth = compile_(surface_layer_depth)

    def blend(z, h, ust, inv_L, sig_m, dsig_m, tl_m):
        """Join the surface layer to the mixed-layer profile (sig_m, dsig_m, tl_m) at height z."""
        sig_s, dsig_s, lam_s = surface_layer(z, ust, inv_L)
        z_s = depth(h, inv_L)
        x = z / z_s
        x4 = x * x * x * x
        b = x4 / (1.0 + x4)
        db = 4.0 * x * x * x / (z_s * (1.0 + x4) * (1.0 + x4))
        var = (1.0 - b) * sig_s * sig_s + b * sig_m * sig_m
        sig = np.sqrt(var)
        dvar = (1.0 - b) * sig_s * dsig_s + b * sig_m * dsig_m + 0.5 * db * (sig_m * sig_m - sig_s * sig_s)
        dsig = dvar / sig
        tl = (1.0 - b) * lam_s / sig_s + b * tl_m
        return sig, dsig, tl, b, db

    blend = compile_(blend)

    def clipped(z, h, min_height):
        """Height inside [min_height, h] and 1 where the profile varies (its gradient counts), else 0."""
        zc = np.minimum(np.maximum(z, min_height), h)
        return zc, select(z >= min_height, 1.0, 0.0)

    clipped = compile_(clipped)

    def mixed_neutral(zc, h, ust, wstar):
        """Hanna's (1982) neutral mixed layer (f = 1e-4 s-1): sigma_m, d sigma_m/dz, T_m."""
        s0 = 1.3 * ust * exp(-2.0e-4 * zc / ust)
        sig_m = s0 + 0.01
        tl_m = 0.5 * zc / sig_m / (1.0 + 1.5e-3 * zc / ust)
        return sig_m, -2.0e-4 / ust * s0, tl_m

    def mixed_unstable(zc, h, ust, wstar):
        """Hanna's (1982) convective mixed layer: sigma_m, d sigma_m/dz, T_m."""
        zeta = zc / h
        zeta_c = np.maximum(zeta, ZETA_MIN_GRADIENT)
        cz = cbrt(zeta_c)
        zeta23 = cz * cz
        root = np.sqrt(1.2 * wstar * wstar * (1.0 - 0.9 * zeta_c) * zeta23 + (1.8 - 1.4 * zeta_c) * ust * ust)
        sig_m = root + 0.01
        dsig_m = 0.5 / root / h * (-1.4 * ust * ust + wstar * wstar * (0.8 / cz - 1.8 * zeta23))
        dsig_m = select(zeta >= ZETA_MIN_GRADIENT, dsig_m, 0.0)
        # the mixed layer proper (Hanna 1982 above the surface layer): 0.59 z below 0.1 h, 0.15 h above
        tl_m = select(zeta < 0.1, 0.59 * zc / sig_m, 0.15 * h / sig_m * (1.0 - exp(-5.0 * zeta)))
        return sig_m, dsig_m, tl_m

    def mixed_stable(zc, h, ust, wstar):
        """Hanna's (1982) stable boundary layer: sigma_m, d sigma_m/dz, T_m."""
        zeta = zc / h
        sig_m = 0.01 + 1.3 * ust * (1.0 - zeta)
        tl_m = 0.1 * h / sig_m * exp(0.8 * log(np.maximum(zeta, 1e-300)))
        return sig_m, -1.3 * ust / h + 0.0 * zeta, tl_m

    mixed_neutral, mixed_unstable, mixed_stable = (
        compile_(f) for f in (mixed_neutral, mixed_unstable, mixed_stable)
    )

    def regime_profile(mixed, doc):
        def profile(z, h, ustar, wstar, inv_L, min_height):
            ust = np.maximum(ustar, USTAR_MIN)
            zc, varies = clipped(z, h, min_height)
            sig_m, dsig_m, tl_m = mixed(zc, h, ust, wstar)
            sig, dsig, tl, b, db = blend(zc, h, ust, inv_L, sig_m, dsig_m, tl_m)
            return sig, dsig * varies, tl, b, db * varies

        profile.__doc__ = doc
        return compile_(profile)

    neutral = regime_profile(mixed_neutral, "Similarity profile in the Hanna neutral regime.")
    unstable = regime_profile(mixed_unstable, "Similarity profile in the Hanna unstable regime.")
    stable = regime_profile(mixed_stable, "Similarity profile in the Hanna stable regime.")

    def any_regime(z, h, ustar, wstar, inv_L, min_height):
        """Similarity profile of any Hanna regime, branch-free: the three mixed layers, one blend."""
        ust = np.maximum(ustar, USTAR_MIN)
        zc, varies = clipped(z, h, min_height)
        n = mixed_neutral(zc, h, ust, wstar)
        u = mixed_unstable(zc, h, ust, wstar)
        st = mixed_stable(zc, h, ust, wstar)
        is_neutral = h * np.abs(inv_L) < 1.0
        is_unstable = inv_L < 0.0
        sig_m = select(is_neutral, n[0], select(is_unstable, u[0], st[0]))
        dsig_m = select(is_neutral, n[1], select(is_unstable, u[1], st[1]))
        tl_m = select(is_neutral, n[2], select(is_unstable, u[2], st[2]))
        sig, dsig, tl, b, db = blend(zc, h, ust, inv_L, sig_m, dsig_m, tl_m)
        return sig, dsig * varies, tl, b, db * varies

    return neutral, unstable, stable, compile_(any_regime)


def similarity_formulas(exp=np.exp, log=np.log, cbrt=np.cbrt, select=np.where, compile_=lambda f: f):
    """Return the vertical profiles of the similarity scheme, one per Hanna regime, over the given functions.

    ``compile_`` wraps every function (:func:`airshed.jit.inline` for Numba kernels, the identity for
    NumPy arrays).

    Each returned function takes (z, h, u*, w*, 1/L, min_height) and returns
    (sigma_w, d sigma_w/dz, T_Lw, b, b') with the blend weight b of the mixed layer and its derivative
    (the skewed convective scheme fades its skewness with b). z is clipped to [min_height, h].
    Returned as (neutral, unstable, stable), matching :data:`airshed.physics.turbulence.NEUTRAL` etc.
    """
    return _vertical_formulas(exp, log, cbrt, select, compile_)[:3]


def similarity_any_regime_formula(exp=np.exp, log=np.log, cbrt=np.cbrt, select=np.where,
                                  compile_=lambda f: f):
    """Return the similarity vertical profile of any Hanna regime (arguments as :func:`similarity_formulas`).

    The regime (neutral where h |1/L| < 1, else unstable or stable by the sign of 1/L) picks the mixed-layer
    profile; the surface layer and the blend are evaluated once (the kernel's packed sub-steps).
    """
    return _vertical_formulas(exp, log, cbrt, select, compile_)[3]


def similarity_horizontal_formulas(exp=np.exp, log=np.log, cbrt=np.cbrt, select=np.where,
                                   compile_=lambda f: f):
    """Return the similarity scheme's horizontal profiles, one per Hanna regime (neutral, unstable, stable).

    Surface layer: sigma_u^2 = (2.4 u*)^2 + 0.35 w*^2, sigma_v^2 = (1.9 u*)^2 + 0.35 w*^2 (Panofsky & Dutton
    1984 for the mechanical part, Lenschow et al. 1980 / Hicks 1985 for the convective one; AERMOD's
    sigma_v, Cimorelli et al. 2005). Lagrangian time scales from the same dissipation rate as the vertical
    one, T_Li = 2 sigma_i^2 / (C0 eps) (Thomson 1987: one C0 eps for every component), with
    C0 eps = 2 sigma_w^3 / lambda of the surface layer (module docstring), so
    T_Li = sigma_i^2 lambda / sigma_w^3.
    Above the surface layer the Hanna (1982) mixed-layer profiles, joined with the blend weight b of the
    vertical profiles (variances and time scales weighted by 1 - b and b). z is clipped to [min_height, h].

    Each function takes (z, h, u*, w*, 1/L, min_height) and returns (sigma_u, sigma_v, T_Lu, T_Lv).
    """
    surface_layer = _surface_layer_formula(cbrt, select, compile_)
    nh, _, uh, _, sh = (compile_(f) for f in regime_formulas(exp, log, cbrt)[1:])
    depth = compile_(surface_layer_depth)

    def blend(z, h, ust, wst, inv_L, mixed):
        """Join the surface layer's horizontal turbulence to the mixed layer's (sig_u, sig_v, tl_u, tl_v)."""
        sig_w, _, lam = surface_layer(z, ust, inv_L)
        convective = HORIZONTAL_VARIANCE_OVER_WSTAR2 * wst * wst
        var_u = SIGMA_U_OVER_USTAR * SIGMA_U_OVER_USTAR * ust * ust + convective
        var_v = SIGMA_V_OVER_USTAR * SIGMA_V_OVER_USTAR * ust * ust + convective
        per_variance = lam / (sig_w * sig_w * sig_w)  # T_Li / sigma_i^2 = 2 / (C0 eps)
        z_s = depth(h, inv_L)
        x = z / z_s
        x4 = x * x * x * x
        b = x4 / (1.0 + x4)
        sig_um, sig_vm, tl_um, tl_vm = mixed
        sig_u = np.sqrt((1.0 - b) * var_u + b * sig_um * sig_um)
        sig_v = np.sqrt((1.0 - b) * var_v + b * sig_vm * sig_vm)
        tl_u = (1.0 - b) * var_u * per_variance + b * tl_um
        tl_v = (1.0 - b) * var_v * per_variance + b * tl_vm
        return sig_u, sig_v, tl_u, tl_v

    blend = compile_(blend)

    def neutral(z, h, ustar, wstar, inv_L, min_height):
        """Similarity horizontal profile in the Hanna neutral regime (no convective part)."""
        ust = np.maximum(ustar, USTAR_MIN)
        zc = np.minimum(np.maximum(z, min_height), h)
        return blend(zc, h, ust, 0.0 * wstar, inv_L, nh(zc, ust))

    def unstable(z, h, ustar, wstar, inv_L, min_height):
        """Similarity horizontal profile in the Hanna unstable regime."""
        ust = np.maximum(ustar, USTAR_MIN)
        zc = np.minimum(np.maximum(z, min_height), h)
        return blend(zc, h, ust, wstar, inv_L, uh(zc, h, ust, wstar, inv_L))

    def stable(z, h, ustar, wstar, inv_L, min_height):
        """Similarity horizontal profile in the Hanna stable regime (no convective part)."""
        ust = np.maximum(ustar, USTAR_MIN)
        zc = np.minimum(np.maximum(z, min_height), h)
        return blend(zc, h, ust, 0.0 * wstar, inv_L, sh(zc, h, ust))

    return compile_(neutral), compile_(unstable), compile_(stable)
