"""Vertical dispersion in the convective boundary layer (L < 0) for the plume core's boundary-layer option.

The vertical distribution of a plume below the convective mixing height h is the sum of two
reflected Gaussians, the updraft (j = 1) and downdraft (j = 2) components of the bi-Gaussian PDF of the
vertical velocity (Weil, Corio & Brower 1997, J. Appl. Meteorol. 36:982; AERMOD: Cimorelli et al. 2005,
J. Appl. Meteorol. 44:682, and US EPA 2004, *AERMOD: Description of Model Formulation*, EPA-454/R-03-004,
section 5.2.1, eqs. 53 and 59-62). Component j has weight lambda_j, a centre line that moves with the
component's mean velocity, Psi_j(x) = H + wbar_j x / u, and spread sigma_zj(x):

    C_z(z_r) = sum_j lambda_j / (sqrt(2 pi) sigma_zj) sum_n exp(-(z_r -/+ Psi_j + 2 n h)^2 / (2 sigma_zj^2))

Sources in the surface layer (effective height H below 0.1 h, AERMOD's surface-layer flag) spread at first
as surface-layer similarity says, not with the mixed-layer turbulence: AERMOD's own treatment there
(alpha_b sigma_wj x/u plus the free-convection term of its eq. 87) under-predicts the Prairie Grass
convective arc maxima near the source by a factor of about 1.5 (the anchor in the README). Here the
surface-layer part follows Lagrangian similarity (:func:`surface_layer_sigma_z_coefficients`) and is
blended linearly with the mixed-layer part by the source's height in the surface layer,
f = min(H / (0.1 h), 1) (the interpolation AERMOD uses between its surface and elevated stable sigma_z,
EPA 2004 section 5.5.1.2):

    sigma_zj(x) = (1 - f) sigma_zs(x) + f sigma_wj x / u,      Psi_j(x) = H + f wbar_j x / u.

A ground-level release (f = 0) is one reflected Gaussian with the surface-layer spread; a release above the
surface layer (f = 1) is AERMOD's direct source with alpha_b = 1 (EPA 2004 section 5.5.1.2, the elevated
sigma_zej = sigma_wj x / u of Weil et al. 1997). The plume's reflection at the lid (AERMOD's indirect
source) is the image series at z = h; the lofting of a buoyant indirect source (AERMOD's Delta h_i) is not
modelled.

Turbulence is AERMOD's: sigma_w from its convective and mechanical profiles (EPA 2004 section 4.1.5,
eq. 34), averaged over the layer the plume crosses on its way to the receptors (:func:`effective_layer`,
AERMOD's effective parameters of the inhomogeneous boundary layer, routine IBLVAL), and the skewness of w
from AERMOD's third moment.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

VON_KARMAN = 0.4
"""von Karman constant (the value of :mod:`airshed.physics.boundary_layer`)."""
PDF_R = 2.0
"""R = sigma_wj / |wbar_j|, the ratio of each component's spread to its mean velocity (Weil et al. 1997;
AERMOD routine CRCALC)."""
SURFACE_LAYER_FRACTION = 0.1
"""A source is in the surface layer when H < 0.1 h (AERMOD's SURFAC flag, EPA 2004 section 5.5.1.2)."""
EFFECTIVE_LAYER_MIN_TOP_M = 5.0
"""Effective parameters of near-surface plumes are averaged up to at least 5 m (AERMOD routine IBLVAL)."""
SIGMA_W_MIN = 0.02
"""Floor of the effective sigma_w, m/s (AERMOD SWMIN)."""
_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(32)


class TwoComponentVertical(NamedTuple):
    """Per-source parameters of the two-component vertical distribution (arrays of equal length).

    Component j: weight ``lam_j``; centre line Psi_j(x) = H + ``slope_j`` x (m); spread
    sigma_zj(x) = x (``a_j`` + ``b`` x), combined with any initial sigma_z0 in quadrature.
    """

    lam1: np.ndarray
    lam2: np.ndarray
    slope1: np.ndarray
    slope2: np.ndarray
    a1: np.ndarray
    a2: np.ndarray
    b: np.ndarray


class BiGaussianPDF(NamedTuple):
    """Bi-Gaussian PDF of w in units of sigma_w: weights, mean velocities and spreads of both components."""

    lam1: np.ndarray
    lam2: np.ndarray
    w1: np.ndarray  # wbar_1 / sigma_w (> 0, updrafts)
    w2: np.ndarray  # wbar_2 / sigma_w (< 0, downdrafts)
    s1: np.ndarray  # sigma_w1 / sigma_w
    s2: np.ndarray  # sigma_w2 / sigma_w


def aermod_sigma_w_profile(z: np.ndarray, ustar: np.ndarray, wstar: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Vertical turbulence sigma_wT(z) = sqrt(sigma_wc^2 + sigma_wm^2) in the convective boundary layer, m/s.

    Convective part (EPA 2004 section 4.1.5, AERMOD routine REFSWC): sigma_wc^2 = 1.6 w*^2 (z/h)^(2/3) for
    z <= 0.1 h (free-convection surface layer), 0.35 w*^2 for 0.1 h < z <= h, 0.35 w*^2 exp(-6 (z - h)/h)
    above. Mechanical part (routine REFSWM, no residual layer): sigma_wm = 1.3 u* (1 - z/h)^(1/2) below h,
    0 above. Arrays broadcast.
    """
    z, ustar, wstar, h = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (z, ustar, wstar, h))
    )
    zr = np.maximum(z, 0.0) / h
    swc2 = np.where(
        zr <= SURFACE_LAYER_FRACTION,
        1.6 * np.cbrt(zr * zr),
        np.where(zr <= 1.0, 0.35, 0.35 * np.exp(-6.0 * np.maximum(zr - 1.0, 0.0))),
    ) * np.square(wstar)
    swm2 = np.square(1.3 * ustar) * np.clip(1.0 - zr, 0.0, 1.0)
    return np.sqrt(swc2 + swm2)


def effective_layer(
    release_height: np.ndarray, receptor_height: float, h: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bottom and top of the layer the plume crosses between source and receptors, m (z_lo, z_hi).

    AERMOD averages the turbulence over the layer between the plume centroid and the receptor once the
    plume reaches it, and over at least the lowest 5 m for near-surface plumes and receptors (routine
    IBLVAL, the effective parameters of EPA 2004). Here: z_lo = min(H, z_r) and
    z_hi = min(max(H, z_r, 5 m), h), the limit of that layer at the distances where the plume reaches the
    receptor height.
    """
    he, h = np.broadcast_arrays(np.asarray(release_height, dtype=np.float64), np.asarray(h, dtype=np.float64))
    z_lo = np.minimum(he, receptor_height)
    z_hi = np.minimum(np.maximum(np.maximum(he, receptor_height), EFFECTIVE_LAYER_MIN_TOP_M), h)
    return np.minimum(z_lo, z_hi), z_hi


def layer_mean_sigma_w(
    z_lo: np.ndarray, z_hi: np.ndarray, ustar: np.ndarray, wstar: np.ndarray, h: np.ndarray
) -> np.ndarray:
    """Mean of :func:`aermod_sigma_w_profile` over [z_lo, z_hi], m/s.

    AERMOD averages sigma_w itself (not its variance) over the layer (routine ANYAVG). The layer is cut
    where the profile changes form (0.1 h, h) and each piece integrated by 32-point Gauss-Legendre. A layer
    of zero thickness gives the value at that height. Not below :data:`SIGMA_W_MIN`.
    """
    z_lo, z_hi, ustar, wstar, h = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (z_lo, z_hi, ustar, wstar, h))
    )
    cuts = [z_lo, np.clip(SURFACE_LAYER_FRACTION * h, z_lo, z_hi), np.clip(h, z_lo, z_hi), z_hi]
    total = np.zeros(z_lo.shape)
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        half = 0.5 * (hi - lo)
        z = (0.5 * (hi + lo))[..., None] + half[..., None] * _GAUSS_NODES
        sw = aermod_sigma_w_profile(z, ustar[..., None], wstar[..., None], h[..., None])
        total = total + half * np.sum(_GAUSS_WEIGHTS * sw, axis=-1)
    thick = z_hi - z_lo
    at = aermod_sigma_w_profile(z_lo, ustar, wstar, h)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(thick > 0.0, total / thick, at)
    return np.maximum(mean, SIGMA_W_MIN)


def vertical_velocity_skewness(
    release_height: np.ndarray, wstar: np.ndarray, sigma_w: np.ndarray, h: np.ndarray
) -> np.ndarray:
    """Skewness S = wbar3 / sigma_w^3 of the vertical velocity seen by a plume released at H (-).

    Third moment (EPA 2004 section 5.2.1, routine SKCALC): wbar3 = 1.25 w*^3 H/h for a source in the surface
    layer (H < 0.1 h), 0.125 w*^3 above; continuous at H = 0.1 h.
    """
    he, wstar, sigma_w, h = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (release_height, wstar, sigma_w, h))
    )
    zr = np.clip(he / h, 0.0, None)
    w3 = np.where(zr < SURFACE_LAYER_FRACTION, 1.25 * zr, 0.125) * wstar**3
    return w3 / sigma_w**3


def bigaussian_pdf(skewness: np.ndarray, r: float = PDF_R) -> BiGaussianPDF:
    """Bi-Gaussian PDF of w with zero mean, unit variance and skewness S: weights, means and spreads.

    Weil et al. (1997); EPA (2004) eqs. 53 and 62, routines ALCALC, BECALC, AACALC, BBCALC, LLCALC:
    alpha = (1 + R^2)/(1 + 3 R^2), beta = 1 + R^2,
    wbar_{1,2}/sigma_w = alpha S/2 +/- (1/2) sqrt(alpha^2 S^2 + 4/beta), sigma_w1 = R wbar_1,
    sigma_w2 = -R wbar_2, lambda_1 = wbar_2/(wbar_2 - wbar_1), lambda_2 = 1 - lambda_1.
    The mixture has mean 0, variance 1 and third moment S for any S >= 0
    (sum_j lambda_j (wbar_j^2 + sigma_wj^2) = beta (-wbar_1 wbar_2) = 1 and
    sum_j lambda_j (wbar_j^3 + 3 wbar_j sigma_wj^2) = (1 + 3 R^2) (-wbar_1 wbar_2)(wbar_1 + wbar_2) = S).
    """
    s = np.asarray(skewness, dtype=np.float64)
    alpha = (1.0 + r * r) / (1.0 + 3.0 * r * r)
    beta = 1.0 + r * r
    root = np.sqrt(alpha * alpha * s * s + 4.0 / beta)
    w1 = 0.5 * alpha * s + 0.5 * root
    w2 = 0.5 * alpha * s - 0.5 * root
    lam1 = w2 / (w2 - w1)
    return BiGaussianPDF(lam1, 1.0 - lam1, w1, w2, r * w1, -r * w2)


def bigaussian_density(w: np.ndarray, pdf: BiGaussianPDF, sigma_w: float = 1.0) -> np.ndarray:
    """Probability density of w (s/m) of a :class:`BiGaussianPDF` scaled by sigma_w (scalars in pdf)."""
    w = np.asarray(w, dtype=np.float64)
    out = np.zeros(w.shape)
    for lam, mean, spread in ((pdf.lam1, pdf.w1, pdf.s1), (pdf.lam2, pdf.w2, pdf.s2)):
        m, s = mean * sigma_w, spread * sigma_w
        out = out + lam * np.exp(-0.5 * np.square((w - m) / s)) / (np.sqrt(2.0 * np.pi) * s)
    return out


def surface_layer_mean_height(t: np.ndarray, ustar: np.ndarray, obukhov_l: np.ndarray) -> np.ndarray:
    """Mean height zbar (m) after travel time t (s) of a plume released at the ground, unstable surface layer.

    Lagrangian similarity (Batchelor 1964, Arch. Mech. Stos. 16:661; van Ulden 1978, Atmos. Environ.
    12:2125): dzbar/dt = k u* / phi_h(zbar/L), with Dyer's (1974, Boundary-Layer Meteorol. 7:363)
    phi_h = (1 - 16 z/L)^(-1/2) for L < 0. With a = 16/|L| and s = (1 + a zbar)^(1/2) this is
    2 ds/a = k u* dt, s = 1 + a k u* t/2, so exactly zbar = k u* t (1 + 4 k u* t / |L|): neutral growth
    k u* t (Ellison 1959) plus the free-convection acceleration.
    """
    t, ustar, L = (np.asarray(a, dtype=np.float64) for a in (t, ustar, obukhov_l))
    kut = VON_KARMAN * ustar * t
    return kut * (1.0 + 4.0 * kut / np.abs(L))


def surface_layer_sigma_z_coefficients(
    u: np.ndarray, ustar: np.ndarray, obukhov_l: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return (a, b) with sigma_zs(x) = a x (1 + b x) (m): ground-level release, unstable surface layer.

    sigma_zs = sqrt(pi/2) zbar with zbar of :func:`surface_layer_mean_height` at t = x/u: the mean height
    of a Gaussian reflected at the ground is sqrt(2/pi) sigma_z. So a = sqrt(pi/2) k u*/u and
    b = 4 k u* / (u |L|).
    """
    u, ustar, L = (np.asarray(v, dtype=np.float64) for v in (u, ustar, obukhov_l))
    a = np.sqrt(0.5 * np.pi) * VON_KARMAN * ustar / u
    b = 4.0 * VON_KARMAN * ustar / (u * np.abs(L))
    return a, b


def convective_vertical(
    u: np.ndarray,
    ustar: np.ndarray,
    wstar: np.ndarray,
    obukhov_l: np.ndarray,
    mixing_height: np.ndarray,
    plume_height: np.ndarray,
    receptor_height: float,
) -> TwoComponentVertical:
    """Two-component vertical distribution of each convective-hour source (module docstring).

    sigma_w is :func:`layer_mean_sigma_w` over :func:`effective_layer`; the skewness is
    :func:`vertical_velocity_skewness` and the components :func:`bigaussian_pdf`; the surface-layer spread
    is :func:`surface_layer_sigma_z_coefficients`. With f = min(H / (0.1 h), 1):
    sigma_zj = x ((1 - f) a_s + f sigma_wj/u + (1 - f) a_s b_s x), slope_j = f wbar_j / u.

    Parameters
    ----------
    u : plume wind speed, m/s. ustar, wstar : m/s. obukhov_l : L < 0, m. mixing_height : h, m.
    plume_height : effective height H (<= h), m. receptor_height : z_r, m.
    """
    u, ustar, wstar, L, h, he = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (u, ustar, wstar, obukhov_l, mixing_height, plume_height))
    )
    z_lo, z_hi = effective_layer(he, receptor_height, h)
    sw = layer_mean_sigma_w(z_lo, z_hi, ustar, wstar, h)
    pdf = bigaussian_pdf(vertical_velocity_skewness(he, wstar, sw, h))
    a_s, b_s = surface_layer_sigma_z_coefficients(u, ustar, L)
    f = np.clip(he / (SURFACE_LAYER_FRACTION * h), 0.0, 1.0)
    swu = sw / u
    return TwoComponentVertical(
        pdf.lam1,
        pdf.lam2,
        f * pdf.w1 * swu,
        f * pdf.w2 * swu,
        (1.0 - f) * a_s + f * pdf.s1 * swu,
        (1.0 - f) * a_s + f * pdf.s2 * swu,
        (1.0 - f) * a_s * b_s,
    )
