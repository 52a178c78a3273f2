"""Skewed vertical velocity in the convective boundary layer: bi-Gaussian PDF and Thomson's drift.

Used by the ``"similarity"`` turbulence scheme where -h/L > 5 (FLEXPART's switch, Cassiani, Stohl &
Brioude 2015, Boundary-Layer Meteorol. 154:367). The PDF of w is the sum of two Gaussians (updrafts A,
downdrafts B) with the closure of Luhar, Hibberd & Hurley (1996, Atmos. Environ. 30:1407):

    P(w) = A N(w; w_A, sigma_A) + B N(w; -w_B, sigma_B),   w_A = m sigma_A,  w_B = m sigma_B,
    m = (2/3) S^(1/3),  r = (1 + m^2)^3 S^2 / ((3 + m^2)^2 m^2),  A = (1 - sqrt(r / (4 + r))) / 2,  B = 1 - A,
    sigma_A = sigma_w sqrt(B / (A (1 + m^2))),  sigma_B = sigma_w sqrt(A / (B (1 + m^2))),

which has zero mean, variance sigma_w^2 and skewness S = <w^3> / sigma_w^3. The third moment is
<w^3> = 1.2 zeta (1 - zeta)^(3/2) w*^3 (zeta = z/h; Luhar, Hibberd & Borgas 2000, Atmos. Environ.
34:3599, as in FLEXPART's cbl.f90), scaled by FLEXPART's transition from Gaussian at -h/L = 5 to fully
skewed at -h/L = 15, and faded in the surface layer by b^(3/2), b the blend weight of the mixed layer
in :mod:`airshed.physics.similarity` (the skewness belongs to the mixed layer's thermals; it goes to
zero at the ground, where particles are reflected, as z^6, so m ~ z^2 and every gradient stays
finite). zeta is capped at 0.99 in <w^3> (its gradient zero above),
so S stays positive and the profile smooth.

Thomson's (1987) well-mixed drift for this PDF with a density profile rho(z) (Thomson 1987, Eq. 10 in one
dimension; Luhar & Britter 1989; with density, Stohl & Thomson 1999 and Cassiani et al. 2015):

    a P_E = (C0 eps / 2) dP_E/dw + Phi,   dPhi/dw = -d(w P_E)/dz,   P_E = rho P,
    C0 eps = 2 sigma_w^2 / T_Lw.

For one component of weight A, mean mu and standard deviation s, u = (w - mu)/s, phi the standard normal
density and Phi_N its distribution function, integrating -d(w rho A N)/dz over w from -inf (by parts with
the moments of the normal) gives

    Phi_1 = -(rho A mu)' Phi_N(u) + rho A phi(u)/s [s alpha + s'(1 + u^2) + mu mu'/s + u (mu' + mu s'/s)] s,

alpha = (rho A)'/(rho A). The sum over both components vanishes as w -> +inf because the mean,
A w_A - B w_B, is zero at every height, which also lets Phi_N(u) be replaced by Phi_N(u) - 1/2 =
erf(u / sqrt 2) / 2 (no cancellation). The kernel integrates the velocity normalised by sigma_w,
w_n = w / sigma_w, whose Ito equation along the path (dz = w dt) is

    dw_n = (a / sigma_w - w_n^2 d sigma_w/dz) dt + sqrt(2 / T_Lw) dW,

the Gaussian form of :mod:`airshed.model.lagrangian` when S = 0.

Every formula is written once over injected ``exp``, ``cbrt``, ``erf`` and ``select`` (Numba scalars or
NumPy arrays).
"""

from __future__ import annotations

import numpy as np

#: -h/L above which the convective boundary layer is skewed, and where the skewness is complete
#: (FLEXPART 10, Cassiani et al. 2015).
SKEWED_FROM_H_OVER_L = 5.0
SKEWED_FULL_H_OVER_L = 15.0
#: Third-moment coefficient: <w^3> = 1.2 zeta (1 - zeta)^(3/2) w*^3 (Luhar, Hibberd & Borgas 2000).
THIRD_MOMENT_COEFFICIENT = 1.2
#: Cap of zeta in the third-moment profile (the skewness stays positive below h).
ZETA_MAX_THIRD_MOMENT = 0.99
#: m = (2/3) S^(1/3) (Luhar, Hibberd & Hurley 1996).
M_OVER_CBRT_SKEWNESS = 2.0 / 3.0
_INV_SQRT2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


def erf_over(exp, compile_=lambda f: f):
    """erf(x) over ``exp``, branch-free: 1 - erfc with the Chebyshev fit of Press et al. (1992, erfcc).

    Fractional error of erfc below 1.2e-7 everywhere (Numerical Recipes, 2nd ed., Sect. 6.2).
    """

    def erf(x):
        ax = np.abs(x)
        t = 1.0 / (1.0 + 0.5 * ax)
        poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
            -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
                -0.82215223 + t * 0.17087277))))))))
        erfc = t * exp(-ax * ax + poly)
        return np.sign(x) * (1.0 - erfc)

    return compile_(erf)


def transition(minus_h_over_L):
    """FLEXPART's weight of the skewness: 0 at -h/L <= 5, sin((-h/L + 10) pi / 10) / 2 + 1/2, 1 at >= 15.

    Written as sin^2(pi t / 2), t = (-h/L - 5) / 10 in [0, 1], with a branch-free Taylor polynomial of the
    sine on [0, pi/2] (error below 1e-9).
    """
    t = (np.minimum(np.maximum(minus_h_over_L, SKEWED_FROM_H_OVER_L), SKEWED_FULL_H_OVER_L)
         - SKEWED_FROM_H_OVER_L) / (SKEWED_FULL_H_OVER_L - SKEWED_FROM_H_OVER_L)
    a = 0.5 * np.pi * t
    a2 = a * a
    s = a * (1.0 + a2 * (-1.0 / 6.0 + a2 * (1.0 / 120.0 + a2 * (-1.0 / 5040.0 + a2 * (
        1.0 / 362880.0 + a2 * (-1.0 / 39916800.0 + a2 * (1.0 / 6227020800.0 - a2 / 1307674368000.0)))))))
    return s * s


def skewed_formulas(exp=np.exp, cbrt=np.cbrt, select=np.where, compile_=lambda f: f):
    """Return ``(bi_gaussian, drift)`` over the given functions (see module docstring).

    ``bi_gaussian(z, h, wstar, weight, sig, dsig, b, db)`` gives the PDF's parameters and their
    gradients, (A, A', w_A, w_A', sigma_A, sigma_A', w_B, w_B', sigma_B, sigma_B'), from ``weight``
    (:func:`transition` of -h/L) and the similarity profile (sig, dsig, b, db) at z
    (:func:`airshed.physics.similarity.similarity_formulas`). ``drift(wn, pdf, sig, dsig, tl, inv_hrho)``
    is the drift of w_n = w/sigma_w, (a / sigma_w - w_n^2 sigma_w'), in 1/s, for the parameters ``pdf``
    from ``bi_gaussian`` and ``inv_hrho`` = -rho'/rho (1/m). ``compile_`` wraps every function
    (:func:`airshed.jit.inline` for Numba kernels, the identity for NumPy arrays).
    """
    erf = erf_over(exp, compile_)

    def shape(m):
        """LHH96 shape of the PDF for a given m: (A, sigma_A/sigma, sigma_B/sigma) and d/dm of each."""
        m2 = m * m
        q = 1.0 / (1.0 + m2)
        s15 = (1.0 + m2) * np.sqrt(1.0 + m2)
        d3 = 1.0 / (3.0 + m2)
        # x = sqrt(r) = 3.375 m^2 (1 + m^2)^1.5 / (3 + m^2)  (S = 3.375 m^3)
        x = 3.375 * m2 * s15 * d3
        dx = 3.375 * m * d3 * (2.0 * s15 + 3.0 * m2 * np.sqrt(1.0 + m2) - 2.0 * m2 * s15 * d3)
        root = np.sqrt(4.0 + x * x)
        a = 0.5 * (1.0 - x / root)
        da = -2.0 * dx / (root * root * root)
        b = 1.0 - a
        ga = np.sqrt(b * q / a)
        gb = np.sqrt(a * q / b)
        dga = ga * 0.5 * (-da / b - da / a - 2.0 * m * q)
        dgb = gb * 0.5 * (da / a + da / b - 2.0 * m * q)
        return a, da, ga, dga, gb, dgb

    shape = compile_(shape)

    def bi_gaussian(z, h, wstar, weight, sig, dsig, b, db):
        zeta = z / h
        zeta_c = np.minimum(zeta, ZETA_MAX_THIRD_MOMENT)
        one_minus = 1.0 - zeta_c
        shape_z = zeta_c * one_minus * np.sqrt(one_minus)
        dshape_z = select(zeta < ZETA_MAX_THIRD_MOMENT,
                          (one_minus * np.sqrt(one_minus) - 1.5 * zeta_c * np.sqrt(one_minus)) / h, 0.0)
        # faded in the surface layer by b^(3/2) (~ z^6 near the ground: m ~ z^2, its gradient finite)
        sqrt_b = np.sqrt(b)
        fade = b * sqrt_b
        dfade = 1.5 * sqrt_b * db
        w3_scale = THIRD_MOMENT_COEFFICIENT * weight * wstar * wstar * wstar
        w3 = w3_scale * fade * shape_z
        dw3 = w3_scale * (dfade * shape_z + fade * dshape_z)
        sig3 = sig * sig * sig
        skew = w3 / sig3 + 1e-12
        dskew = dw3 / sig3 - 3.0 * w3 * dsig / (sig3 * sig)
        c = cbrt(skew)
        m = M_OVER_CBRT_SKEWNESS * c
        dm = M_OVER_CBRT_SKEWNESS / 3.0 * dskew / (c * c)
        a, da_m, ga, dga_m, gb, dgb_m = shape(m)
        sa = sig * ga
        dsa = dsig * ga + sig * dga_m * dm
        sb = sig * gb
        dsb = dsig * gb + sig * dgb_m * dm
        return a, da_m * dm, m * sa, dm * sa + m * dsa, sa, dsa, m * sb, dm * sb + m * dsb, sb, dsb

    def component(w, weight, dweight, mu, dmu, s, ds, inv_hrho):
        """Density, -dP/dw and Phi of one weighted Gaussian component (the air density divided out)."""
        u = (w - mu) / s
        pdf = _INV_SQRT_2PI * exp(-0.5 * u * u) / s
        alpha = dweight / weight - inv_hrho
        # (rho A mu)' / rho = A' mu + A mu' - A mu / H_rho
        flux_gradient = dweight * mu + weight * dmu - weight * mu * inv_hrho
        phi = -flux_gradient * 0.5 * erf(u * _INV_SQRT2) + weight * pdf * (
            s * alpha + ds * (1.0 + u * u) + mu * dmu / s + u * (dmu + mu * ds / s)
        ) * s
        return weight * pdf, weight * pdf * u / s, phi

    component = compile_(component)

    def drift(wn, pdf, sig, dsig, tl, inv_hrho):
        a, da, wa, dwa, sa, dsa, wb, dwb, sb, dsb = pdf
        w = wn * sig
        pa, qa, phia = component(w, a, da, wa, dwa, sa, dsa, inv_hrho)
        pb, qb, phib = component(w, 1.0 - a, -da, -wb, -dwb, sb, dsb, inv_hrho)
        # a P = (C0 eps / 2) dP/dw + Phi with C0 eps / 2 = sigma_w^2 / T_Lw and dP/dw = -(qa + qb)
        acc = (-(sig * sig / tl) * (qa + qb) + phia + phib) / (pa + pb)
        return acc / sig - wn * wn * dsig

    return compile_(bi_gaussian), compile_(drift)
