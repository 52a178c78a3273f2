"""Gaussian-plume dispersion: sigma_y/sigma_z by option, vertical reflections, well-mixed limit.

Options (registered by name in :mod:`airshed.physics.dispersion_schemes`):

- ``briggs-rural`` and ``briggs-urban``: Briggs (1973) curves by Pasquill-Gifford class
  (1..6 = A..F), as tabulated by Gifford (1976, Nucl. Saf. 17:68, Table 4) and Hanna, Briggs & Hosker
  (1982, *Handbook on Atmospheric Diffusion*, DOE/TIC-11223, Table 4.5). These are the ISC3 urban curves
  and the open-country fit to the Pasquill-Gifford curves (x in m, valid ~100 m to 10 km; used outside
  that range as extrapolations, as ISC3 and most codes do).
- ``boundary-layer``: boundary-layer scaling from u*, w*, L and h after AERMOD (Cimorelli et al.
  2005, J. Appl. Meteorol. 44:682; US EPA 2004, *AERMOD: Description of Model Formulation*,
  EPA-454/R-03-004, section 5.5). Stable hours: one Gaussian in the vertical. Convective hours: the
  two-component (bi-Gaussian PDF) vertical distribution of :mod:`airshed.physics.convective`, with
  surface-layer similarity for sources in the surface layer (see :func:`boundary_layer_sigma_parameters`).

Every option is expressed in one parametric family, which the kernels evaluate without knowing the option:

    sigma_y = sqrt( (a_y x (1 + b_y x)^p_y)^2 + sigma_y0^2 )
    sigma_z = sqrt( (a_z x (1 + b_z x)^p_z + a_z2 x (1 + b_z2 x)^p_z2)^2 + (c_z x^2)^2 + sigma_z0^2 )

with x the downwind distance (m) and sigma_y0, sigma_z0 initial spreads (area sub-sources, buoyancy-
induced dispersion) added in quadrature (the AERMOD convention of RMSSIG). The convective components of
the boundary-layer option are of the form sigma_zj = x (a_j + b x) = a_j x (1 + (b/a_j) x), a member of
the family with p_z = 1 (component 1 is expressed so in :class:`SigmaParameters`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from airshed.physics import convective as cbl

WELL_MIXED_SIGMA_Z_OVER_H = 1.6
"""sigma_z / h beyond which the plume is taken as vertically well mixed (Turner 1970, *Workbook of
Atmospheric Dispersion Estimates*, PHS Publ. 999-AP-26, eq. 3.5; ISC3 uses the same 1.6)."""

# Briggs (1973) coefficients per class A..F: sigma = a x (1 + b x)^p (Gifford 1976 Table 4).
_BRIGGS_RURAL_Y = np.array(
    [
        [0.22, 1e-4, -0.5],
        [0.16, 1e-4, -0.5],
        [0.11, 1e-4, -0.5],
        [0.08, 1e-4, -0.5],
        [0.06, 1e-4, -0.5],
        [0.04, 1e-4, -0.5],
    ]
)
_BRIGGS_RURAL_Z = np.array(
    [
        [0.20, 0.0, 0.0],
        [0.12, 0.0, 0.0],
        [0.08, 2e-4, -0.5],
        [0.06, 1.5e-3, -0.5],
        [0.03, 3e-4, -1.0],
        [0.016, 3e-4, -1.0],
    ]
)
_BRIGGS_URBAN_Y = np.array(
    [
        [0.32, 4e-4, -0.5],
        [0.32, 4e-4, -0.5],
        [0.22, 4e-4, -0.5],
        [0.16, 4e-4, -0.5],
        [0.11, 4e-4, -0.5],
        [0.11, 4e-4, -0.5],
    ]
)
_BRIGGS_URBAN_Z = np.array(
    [
        [0.24, 1e-3, 0.5],
        [0.24, 1e-3, 0.5],
        [0.20, 0.0, 0.0],
        [0.14, 3e-4, -0.5],
        [0.08, 1.5e-3, -0.5],
        [0.08, 1.5e-3, -0.5],
    ]
)

# AERMOD constants (Cimorelli et al. 2005; EPA 2004 section 5.5, and the AERMOD code SIGY/SIGZ/SZSFCL).
AERMOD_SIGMA_V_MIN = 0.2
"""Minimum sigma_v, m/s (AERMOD default SVMIN)."""
AERMOD_SIGMA_V_OVER_U_MIN = 0.05
"""Minimum sigma_v/u (AERMOD parameter SVUMIN)."""
_AERMOD_ALPHA_Y = 78.0  # lateral fit constant of EPA (2004) eq. 77, alpha = 78, p = 0.3
_AERMOD_P_Y = 0.3
_AERMOD_PG_HEIGHT = 0.46  # Prairie Grass release height that scales alpha (EPA 2004 section 5.5.1.1)
_AERMOD_BID_BETA = 0.4  # buoyancy-induced dispersion, sigma_b = 0.4 dh / sqrt(2) (Pasquill 1976)


class SigmaParameters(NamedTuple):
    """Per-source coefficients of the parametric sigma family (module docstring); arrays of equal length."""

    ay: np.ndarray
    by: np.ndarray
    py: np.ndarray
    az: np.ndarray
    bz: np.ndarray
    pz: np.ndarray
    az2: np.ndarray
    bz2: np.ndarray
    pz2: np.ndarray
    cz: np.ndarray


def _class_index(pg_class: np.ndarray) -> np.ndarray:
    pg = np.asarray(pg_class)
    if pg.size and (np.any(pg < 1) or np.any(pg > 6)):
        raise ValueError(f"Pasquill-Gifford class must be 1..6 (A..F), got values {np.unique(pg)}")
    return pg.astype(np.int64) - 1


def briggs_sigma_parameters(pg_class: np.ndarray, urban: bool) -> SigmaParameters:
    """Briggs (1973) rural or urban sigma_y/sigma_z coefficients for each Pasquill-Gifford class.

    Rural (open country), Gifford (1976) Table 4:
    sigma_y = {0.22, 0.16, 0.11, 0.08, 0.06, 0.04} x (1 + 1e-4 x)^-1/2 for A..F;
    sigma_z = 0.20 x (A), 0.12 x (B), 0.08 x (1 + 2e-4 x)^-1/2 (C), 0.06 x (1 + 1.5e-3 x)^-1/2 (D),
    0.03 x (1 + 3e-4 x)^-1 (E), 0.016 x (1 + 3e-4 x)^-1 (F).
    Urban (McElroy-Pooler St Louis data): sigma_y = {0.32, 0.32, 0.22, 0.16, 0.11, 0.11} x (1 + 4e-4 x)^-1/2;
    sigma_z = 0.24 x (1 + 1e-3 x)^1/2 (A-B), 0.20 x (C), 0.14 x (1 + 3e-4 x)^-1/2 (D),
    0.08 x (1 + 1.5e-3 x)^-1/2 (E-F). x in m, sigma in m.

    Parameters
    ----------
    pg_class : int array, Pasquill-Gifford class 1..6 (A..F) per source.
    urban : use the urban curves.
    """
    k = _class_index(pg_class)
    ty, tz = (_BRIGGS_URBAN_Y, _BRIGGS_URBAN_Z) if urban else (_BRIGGS_RURAL_Y, _BRIGGS_RURAL_Z)
    zero = np.zeros(k.shape)
    return SigmaParameters(
        ty[k, 0],
        ty[k, 1],
        ty[k, 2],
        tz[k, 0],
        tz[k, 1],
        tz[k, 2],
        zero,
        zero.copy(),
        zero.copy(),
        zero.copy(),
    )


def convective_velocity_from_obukhov(
    ustar: np.ndarray, obukhov_l: np.ndarray, mixing_height: np.ndarray
) -> np.ndarray:
    """Deardorff velocity from surface-layer scales, w* = u* (-h / (k L))^(1/3) for L < 0, else 0 (m/s).

    Follows from w*^3 = g H_k h / T and L = -u*^3 T / (k g H_k) (Deardorff 1970, J. Atmos. Sci. 27:1211;
    Stull 1988 eq. 4.2.1 and 5.7c), with k = 0.4.
    """
    ustar, obukhov_l, h = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (ustar, obukhov_l, mixing_height))
    )
    out = np.zeros(ustar.shape)
    unstable = (obukhov_l < 0.0) & np.isfinite(h)
    out[unstable] = ustar[unstable] * np.cbrt(-h[unstable] / (0.4 * obukhov_l[unstable]))
    return out


def aermod_sigma_v(ustar: np.ndarray, wstar: np.ndarray) -> np.ndarray:
    """Lateral turbulence sigma_v = sqrt(0.35 w*^2 + 3.6 u*^2), floored at 0.2 m/s (m/s).

    Convective part sigma_vc^2 = 0.35 w*^2 and mechanical surface value sigma_vm^2 = 3.6 u*^2
    (Cimorelli et al. 2005, section 4; EPA 2004 eqs. for sigma_v). The decrease of the mechanical part
    with height above the surface layer is not applied (surface-layer value at all heights).
    """
    sv = np.sqrt(0.35 * np.square(wstar) + 3.6 * np.square(ustar))
    return np.maximum(sv, AERMOD_SIGMA_V_MIN)


def boundary_layer_sigma_parameters(
    u: np.ndarray,
    ustar: np.ndarray,
    wstar: np.ndarray,
    obukhov_l: np.ndarray,
    mixing_height: np.ndarray,
    release_height: np.ndarray,
    plume_height: np.ndarray,
    brunt_vaisala: np.ndarray,
    receptor_height: float = 0.0,
    sigma_v: np.ndarray | None = None,
) -> tuple[SigmaParameters, cbl.TwoComponentVertical]:
    """AERMOD-style sigma coefficients from boundary-layer scales (EPA 2004 section 5.5; code SIGY/SIGZ).

    Lateral, all stabilities (EPA 2004 eq. 77, alpha = 78 and p = 0.3; the AERMOD developers set alpha
    from a comparison with Prairie Grass data, EPA 2004 section 5.5.1.1, not airshed):
    sigma_y = (sigma_v/u) x / (1 + beta X)^0.3, X = sigma_v x / (u h), with
    convective beta = max(78 * 0.46 / max(h_s, 0.46), 0.7), and stable
    beta X = x / (2 u T_y), T_y = h / (156 sigma_v) * max(H, 0.46)/0.46; sigma_v/u >= 0.05. sigma_v is
    :func:`aermod_sigma_v`, or the measured ``sigma_v`` where given (AERMOD accepts on-site sigma_v, or
    sigma_theta with sigma_v = sigma_theta u).
    Vertical, stable (L > 0): sigma_z = (1 - f) sigma_zs + f sigma_zas, f = min(H/h, 1), with the
    surface form sigma_zs = sqrt(2/pi) u* (x/u) (1 + 0.7 x/L)^-1/3 (Venkatram 1992) and the elevated
    sigma_zas = sigma_w t / sqrt(1 + sigma_w t (1/(0.72 z) + N/(0.54 sigma_w))), t = x/u, z = max(h_s, H),
    sigma_w = 1.3 u* (1 - H/h)^1/2 >= 0.02 m/s (CTDMPLUS form used by AERMOD's SIGZ).
    Vertical, convective (L < 0): the two components of :func:`airshed.physics.convective.convective_vertical`
    (returned as the second value; zero-weight second component for stable rows); the returned
    :class:`SigmaParameters` carry component 1, sigma_z1 = a_1 x (1 + (b/a_1) x) (p_z = 1).

    Parameters
    ----------
    u : dilution wind speed, m/s. ustar : friction velocity, m/s. wstar : convective velocity, m/s.
    obukhov_l : Monin-Obukhov length, m. mixing_height : h, m. release_height : stack height h_s, m.
    plume_height : effective height H, m. brunt_vaisala : N above the plume, s-1 (stable only).
    receptor_height : z_r, m (bounds the convective effective layer). sigma_v : measured lateral
    turbulence, m/s, or None.
    """
    u, ustar, wstar, L, h, hs, he, nbv = np.broadcast_arrays(
        *(
            np.asarray(a, dtype=np.float64)
            for a in (u, ustar, wstar, obukhov_l, mixing_height, release_height, plume_height, brunt_vaisala)
        )
    )
    unstable = L < 0.0
    sv = aermod_sigma_v(ustar, wstar) if sigma_v is None else np.broadcast_to(sigma_v, u.shape)
    svu = np.maximum(sv / u, AERMOD_SIGMA_V_OVER_U_MIN)
    beta_cbl = np.maximum(_AERMOD_ALPHA_Y * _AERMOD_PG_HEIGHT / np.maximum(hs, _AERMOD_PG_HEIGHT), 0.7)
    by_cbl = beta_cbl * svu / h
    t_y = h / (2.0 * _AERMOD_ALPHA_Y * sv) * np.maximum(he, _AERMOD_PG_HEIGHT) / _AERMOD_PG_HEIGHT
    by_sbl = 1.0 / (2.0 * u * t_y)
    ay = svu
    by = np.where(unstable, by_cbl, by_sbl)
    py = np.full(u.shape, -_AERMOD_P_Y)

    sw = np.maximum(cbl.aermod_sigma_w_profile(he, ustar, 0.0, h), cbl.SIGMA_W_MIN)
    f = np.clip(he / h, 0.0, 1.0)
    z = np.maximum(np.maximum(hs, he), 1e-4)
    swu = sw / u
    safe_l = np.where(unstable, 1.0, L)
    az = (1.0 - f) * np.sqrt(2.0 / np.pi) * ustar / u
    bz = 0.7 / safe_l
    pz = np.full(u.shape, -1.0 / 3.0)
    az2 = f * swu
    bz2 = swu * (1.0 / (0.72 * z) + nbv / (0.54 * sw))
    pz2 = np.full(u.shape, -0.5)

    one = np.ones(u.shape)
    zero = np.zeros(u.shape)
    two = cbl.TwoComponentVertical(one, zero, zero, zero, zero, zero, zero)
    if unstable.any():
        i = np.flatnonzero(unstable)
        conv = cbl.convective_vertical(u[i], ustar[i], wstar[i], L[i], h[i], he[i], receptor_height)
        two = cbl.TwoComponentVertical(*(np.where(unstable, 0.0, t).copy() for t in two))
        for full, part in zip(two, conv, strict=True):
            full[i] = part
        az[i], bz[i], pz[i] = conv.a1, conv.b / conv.a1, 1.0
        az2[i], bz2[i], pz2[i] = 0.0, 0.0, 0.0
    return SigmaParameters(ay, by, py, az, bz, pz, az2, bz2, pz2, np.zeros(u.shape)), two


def buoyancy_induced_sigma(plume_rise: np.ndarray) -> np.ndarray:
    """Buoyancy-induced dispersion sigma_b = 0.4 dh / sqrt(2) (m) for a final rise dh.

    Pasquill (1976); EPA 2004 section 5.5.3, BETA2 = 0.4 in AERMOD's BID. Added in quadrature to sigma_y
    and sigma_z.
    """
    return _AERMOD_BID_BETA * np.asarray(plume_rise, dtype=np.float64) / np.sqrt(2.0)


def sigma_power_form(x: np.ndarray, a: np.ndarray, b: np.ndarray, p: np.ndarray) -> np.ndarray:
    """One term of the parametric family, a x (1 + b x)^p (m); x in m, b in m-1."""
    return a * x * (1.0 + b * x) ** p


def sigma_y_from_parameters(x: np.ndarray, par: SigmaParameters, i: int, sigma_y0: float = 0.0) -> np.ndarray:
    """sigma_y(x) of source ``i`` (m), with the initial spread sigma_y0 added in quadrature."""
    s = sigma_power_form(x, par.ay[i], par.by[i], par.py[i])
    return np.sqrt(s * s + sigma_y0 * sigma_y0)


def sigma_z_from_parameters(x: np.ndarray, par: SigmaParameters, i: int, sigma_z0: float = 0.0) -> np.ndarray:
    """sigma_z(x) of source ``i`` (m), with the x^2 surface term and sigma_z0 in quadrature."""
    s = sigma_power_form(x, par.az[i], par.bz[i], par.pz[i]) + sigma_power_form(
        x, par.az2[i], par.bz2[i], par.pz2[i]
    )
    c = par.cz[i] * x * x
    return np.sqrt(s * s + c * c + sigma_z0 * sigma_z0)


def vertical_image_sum(z_r: float, H, h, sigma_z: np.ndarray, n_images: int = 50) -> np.ndarray:
    """Vertical factor of the reflected Gaussian plume, sum of image sources (-, dimensionless).

    V = sum_{n=-N..N} [exp(-(z_r - H + 2 n h)^2 / (2 sigma_z^2)) + exp(-(z_r + H + 2 n h)^2 / (2 sigma_z^2))]
    (ground at z = 0 and lid at z = h perfectly reflecting; e.g. Seinfeld & Pandis 2006 eq. 18.43 with
    the images of Yamartino 1977). ``h = inf`` gives the ground reflection only. The concentration is
    Q exp(-y^2 / 2 sigma_y^2) V / (2 pi u sigma_y sigma_z). Direct sum (a reference; kernels use
    :func:`vertical_fourier_sum` for wide plumes). H and h may be arrays broadcasting against sigma_z.
    """
    s = np.asarray(sigma_z, dtype=np.float64)
    inv2s2 = 0.5 / (s * s)
    H = np.asarray(H, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    lidded = np.isfinite(h)
    h_images = np.where(lidded, h, 0.0)
    total = np.exp(-((z_r - H) ** 2) * inv2s2) + np.exp(-((z_r + H) ** 2) * inv2s2)
    if not lidded.any():
        return total
    for n in range(-n_images, n_images + 1):
        if n == 0:
            continue
        pair = np.exp(-((z_r - H + 2 * n * h_images) ** 2) * inv2s2) + np.exp(
            -((z_r + H + 2 * n * h_images) ** 2) * inv2s2
        )
        total = total + np.where(lidded, pair, 0.0)
    return total


FOURIER_TERMS = 12
"""Terms m = 1..12 of the Poisson-resummed image series. With sigma_z >= :data:`FOURIER_SIGMA_Z_OVER_H` h
the first neglected term, 2 exp(-pi^2 169 sigma_z^2 / (2 h^2)), is below 3e-18 of the leading one."""
FOURIER_SIGMA_Z_OVER_H = 0.22
"""sigma_z / h from which :data:`FOURIER_TERMS` terms of :func:`vertical_fourier_sum` converge to 3e-18."""
FOURIER_SHORT_TERMS = 6
"""Terms enough from :data:`FOURIER_SHORT_SIGMA_Z_OVER_H` on (first neglected 2 q^49 < 1e-18)."""
FOURIER_SHORT_SIGMA_Z_OVER_H = 0.42
"""sigma_z / h from which the first :data:`FOURIER_SHORT_TERMS` terms converge to 1e-18."""


def vertical_fourier_coefficients(
    z_r: float, H: np.ndarray, h: np.ndarray, n_terms: int = FOURIER_TERMS
) -> np.ndarray:
    """Coefficients c_m = 2 cos(pi m z_r/h) cos(pi m H/h), m = 1..n_terms, shape (nsrc, n_terms)."""
    m = np.arange(1, n_terms + 1)
    H = np.atleast_1d(np.asarray(H, dtype=np.float64))
    h = np.broadcast_to(np.asarray(h, dtype=np.float64), H.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = 2.0 * np.cos(np.pi * m * z_r / h[:, None]) * np.cos(np.pi * m * H[:, None] / h[:, None])
    return np.where(np.isfinite(h)[:, None], c, 0.0)


def vertical_fourier_sum(sigma_z: np.ndarray, h: float, coeffs: np.ndarray) -> np.ndarray:
    """Evaluate the image sum of :func:`vertical_image_sum` by Poisson summation (-), for sigma_z >~ h/2.

    sum_n exp(-(d + 2 n h)^2 / (2 s^2)) = sqrt(2 pi) s / (2 h) [1 + 2 sum_m exp(-pi^2 m^2 s^2 / (2 h^2))
    cos(pi m d / h)] (Poisson summation formula; the Jacobi theta-function identity). For both image
    families d = z_r -/+ H the cosines combine to 2 cos(pi m z_r/h) cos(pi m H/h) = ``coeffs[m-1]``, so
    V = sqrt(2 pi) s / h [1 + sum_m exp(-pi^2 m^2 s^2/(2 h^2)) c_m]. ``coeffs`` is (n_terms,) or
    (..., n_terms) with the leading shape of sigma_z (per-element coefficients). The leading term gives the
    well-mixed concentration Q / (sqrt(2 pi) u sigma_y h) exp(-y^2/2 sigma_y^2) exactly; at sigma_z = 1.6 h
    (:data:`WELL_MIXED_SIGMA_Z_OVER_H`) the correction is below 7e-6 and it decays as exp(-4.93 s^2/h^2).
    """
    s = np.asarray(sigma_z, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    c = np.asarray(coeffs, dtype=np.float64)
    e = np.exp(-(np.pi**2) * s * s / (2.0 * h * h))
    # e^(m^2) by the recurrence e^(m^2) = e^((m-1)^2) e^(2m-1): multiplications only
    e2 = e * e
    odd = e
    term = e
    corr = c[..., 0] * term
    for m in range(2, c.shape[-1] + 1):
        odd = odd * e2
        term = term * odd
        corr = corr + c[..., m - 1] * term
    return np.sqrt(2.0 * np.pi) * s / h * (1.0 + corr)


def reflected_gaussian_density(
    z_r: float, psi: np.ndarray, sigma_z: np.ndarray, h: np.ndarray, n_images: int = 3
) -> np.ndarray:
    """Density at z_r (1/m) of a unit Gaussian centred at psi, spread sigma_z, reflected at 0 and at h.

    V(z_r; psi, sigma_z) / (sqrt(2 pi) sigma_z) with V of :func:`vertical_image_sum`. psi may be any real
    (a centre line drifting with the updrafts or downdrafts of the convective PDF): the image sum is even
    and 2h-periodic in psi, so psi is folded into [0, h] first. The direct sum (n = -n_images..n_images)
    is used below sigma_z = :data:`FOURIER_SIGMA_Z_OVER_H` h, the Poisson-resummed series
    (:func:`vertical_fourier_sum`, c_m = 2 cos(pi m z_r/h) cos(pi m psi/h)) from there on. ``h = inf``:
    ground reflection only. Arrays broadcast.
    """
    z_r, psi, s, h = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (z_r, psi, sigma_z, h)))
    lidded = np.isfinite(h)
    period = np.where(lidded, 2.0 * h, 1.0)
    folded = np.where(lidded, np.abs(psi - period * np.round(psi / period)), psi)
    far = lidded & (s >= FOURIER_SIGMA_Z_OVER_H * np.where(lidded, h, 0.0))
    v = np.empty(s.shape)
    near = ~far
    v[near] = vertical_image_sum(z_r[near], folded[near], h[near], s[near], n_images=n_images)
    if far.any():
        m = np.arange(1, FOURIER_TERMS + 1)
        hf = h[far][:, None]
        coeffs = 2.0 * np.cos(np.pi * m * z_r[far][:, None] / hf)
        coeffs = coeffs * np.cos(np.pi * m * folded[far][:, None] / hf)
        v[far] = vertical_fourier_sum(s[far], h[far], coeffs)
    return v / (np.sqrt(2.0 * np.pi) * s)


def well_mixed_concentration(q: float, u: float, sigma_y: np.ndarray, h: float, y: np.ndarray) -> np.ndarray:
    """Vertically well-mixed plume, C = Q exp(-y^2 / (2 sigma_y^2)) / (sqrt(2 pi) u sigma_y h) (g/m3).

    Turner (1970) eq. 3.5, valid for sigma_z > 1.6 h; the limit of the reflected plume far downwind.
    """
    sy = np.asarray(sigma_y, dtype=np.float64)
    return q * np.exp(-0.5 * np.square(y) / (sy * sy)) / (np.sqrt(2.0 * np.pi) * u * sy * h)
