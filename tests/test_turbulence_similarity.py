"""Similarity turbulence, skewed convective PDF, unresolved mesoscale motions: limits, gradients, drift."""

import numpy as np
import pytest

from airshed.physics import mesoscale
from airshed.physics.similarity import (
    similarity_any_regime_formula,
    similarity_formulas,
    similarity_horizontal_formulas,
    surface_layer_depth,
)
from airshed.physics.skewed_cbl import erf_over, skewed_formulas, transition
from airshed.physics.turbulence import NEUTRAL, STABLE, UNSTABLE, hanna_horizontal_array, hanna_vertical_array

NEUTRAL_CASE = (1000.0, 0.4, 0.0, 1e-5)
UNSTABLE_CASE = (1200.0, 0.3, 2.0, -1.0 / 30.0)
STABLE_CASE = (300.0, 0.25, 0.0, 1.0 / 40.0)
CASES = {NEUTRAL: NEUTRAL_CASE, UNSTABLE: UNSTABLE_CASE, STABLE: STABLE_CASE}
PROFILES = similarity_formulas()


def profile(regime, z, min_height=0.01):
    h, ust, wst, inv_L = CASES[regime]
    return PROFILES[regime](np.asarray(z, dtype=float), h, ust, wst, inv_L, min_height)


@pytest.mark.parametrize("regime", [NEUTRAL, UNSTABLE, STABLE])
def test_surface_layer_limit_is_monin_obukhov_similarity(regime):
    # well inside the surface layer (z << 0.1 h, |L|) the mixed layer's blend weight is ~ (z/z_s)^4
    h, ust, _, inv_L = CASES[regime]
    z = 0.05
    sig, _, tl, b, _ = profile(regime, z)
    zeta = z * inv_L
    sig_sl = 1.25 * ust * ((1.0 - 3.0 * zeta) ** (1.0 / 3.0) if zeta < 0 else 1.0 + 0.2 * zeta)
    lam = 0.5 * z * ((1.0 - 6.0 * zeta) ** 0.25 if zeta < 0 else 1.0 / (1.0 + 5.0 * zeta))
    assert b < 1e-4
    assert sig == pytest.approx(sig_sl, rel=1e-3)
    assert tl == pytest.approx(lam / sig_sl, rel=1e-3)  # Wilson, Thurtell & Kidd (1981)


def test_neutral_time_scale_is_thomsons_with_c0_3():
    # T_Lw = 2 sigma_w^2 / (C0 eps), eps = u*^3 / (k z): sigma_w = 1.25 u*, 0.5 z / sigma_w <-> C0 = 3.125
    h, ust, _, _ = NEUTRAL_CASE
    z = 0.05
    sig, _, tl, _, _ = PROFILES[NEUTRAL](z, h, ust, 0.0, 0.0, 0.01)
    eps = ust**3 / (0.4 * z)
    assert 2.0 * sig**2 / (tl * eps) == pytest.approx(3.125, rel=1e-3)


@pytest.mark.parametrize("regime", [NEUTRAL, UNSTABLE, STABLE])
def test_mixed_layer_limit_is_hanna(regime):
    h, ust, wst, inv_L = CASES[regime]
    z = np.array([0.4 * h, 0.7 * h])
    sig, dsig, _, b, _ = profile(regime, z)
    ref_sig, ref_dsig, _ = hanna_vertical_array(z, h, ust, wst, inv_L, 0.0)
    assert np.all(b > 0.99)
    np.testing.assert_allclose(sig, ref_sig, rtol=0.02)


@pytest.mark.parametrize("regime", [NEUTRAL, UNSTABLE, STABLE])
def test_gradient_is_the_derivative_of_sigma_w_through_the_blend(regime):
    # the drift of the well-mixed model is d sigma_w/dz: it must be the derivative of the sigma_w used
    h = CASES[regime][0]
    z = np.concatenate([np.geomspace(0.05, 0.2 * h, 40), np.linspace(0.2 * h, 0.98 * h, 20)])
    dz = 1e-6 * z
    up = profile(regime, z + dz)
    down = profile(regime, z - dz)
    mid = profile(regime, z)
    np.testing.assert_allclose(mid[1], (up[0] - down[0]) / (2 * dz), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(mid[4], (up[3] - down[3]) / (2 * dz), rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("regime", [NEUTRAL, UNSTABLE, STABLE])
def test_any_regime_profile_is_the_regime_profile_bit_for_bit(regime):
    # the kernel's packed sub-steps evaluate one blend with the regime's mixed layer selected
    h, ust, wst, inv_L = CASES[regime]
    z = np.geomspace(0.005, h, 300)
    for a, b in zip(PROFILES[regime](z, h, ust, wst, inv_L, 0.01),
                    similarity_any_regime_formula()(z, h, ust, wst, inv_L, 0.01), strict=True):
        np.testing.assert_array_equal(a, b)


def test_unstable_surface_layer_reaches_0_1_h_and_free_convection():
    # unstable: the surface layer is 0.1 h deep whatever L (stable: the smooth minimum of 0.1 h and L), and
    # its sigma_w tends to the free-convection law 1.3 w* (z/h)^(1/3) (Kaimal et al. 1976) for -z/L >> 1
    h = 1000.0
    assert surface_layer_depth(h, -1.0 / 5.0) == pytest.approx(0.1 * h)
    assert surface_layer_depth(h, 1.0 / 50.0) == pytest.approx(1.0 / (10.0 / h + 1.0 / 50.0))
    ust, inv_L = 0.2, -1.0 / 5.0
    wst = ust * (h * abs(inv_L) / 0.4) ** (1.0 / 3.0)  # w*^3 = u*^3 h / (k |L|)
    z = 30.0  # -z/L = 6, x = z / z_s = 0.3: blend weight 0.008
    sig, _, _, b, _ = PROFILES[UNSTABLE](z, h, ust, wst, inv_L, 0.01)
    assert b < 0.01
    assert sig == pytest.approx(1.3 * wst * (z / h) ** (1.0 / 3.0), rel=0.1)


def test_profiles_are_held_below_the_roughness_sublayer():
    sig_lo, dsig_lo, tl_lo, _, _ = profile(UNSTABLE, np.array([0.01, 0.5, 0.99]), min_height=1.0)
    sig_1, _, tl_1, _, _ = profile(UNSTABLE, 1.0, min_height=1.0)
    np.testing.assert_array_equal(dsig_lo, 0.0)
    np.testing.assert_allclose(sig_lo, sig_1, rtol=0)
    np.testing.assert_allclose(tl_lo, tl_1, rtol=0)


HORIZONTAL = similarity_horizontal_formulas()


@pytest.mark.parametrize("regime", [NEUTRAL, UNSTABLE, STABLE])
def test_horizontal_surface_layer_limit_and_one_dissipation_rate(regime):
    # near the ground: sigma_v^2 = (1.9 u*)^2 + 0.35 w*^2 (Panofsky & Dutton 1984; AERMOD), sigma_u with
    # 2.4 u*, and T_Li = 2 sigma_i^2 / (C0 eps) with the C0 eps of the vertical time scale (Thomson 1987)
    h, ust, wst, inv_L = CASES[regime]
    z = 0.05
    sigu, sigv, tlu, tlv = HORIZONTAL[regime](z, h, ust, wst, inv_L, 0.01)
    sigw, _, tlw, _, _ = profile(regime, z)
    convective = 0.35 * wst**2 if regime == UNSTABLE else 0.0
    assert sigv == pytest.approx(np.sqrt((1.9 * ust) ** 2 + convective), rel=1e-3)
    assert sigu == pytest.approx(np.sqrt((2.4 * ust) ** 2 + convective), rel=1e-3)
    c0_eps = 2.0 * sigw**2 / tlw
    assert tlv == pytest.approx(2.0 * sigv**2 / c0_eps, rel=1e-3)
    assert tlu == pytest.approx(2.0 * sigu**2 / c0_eps, rel=1e-3)


@pytest.mark.parametrize("regime", [NEUTRAL, UNSTABLE, STABLE])
def test_horizontal_mixed_layer_limit_is_hanna(regime):
    h, ust, wst, inv_L = CASES[regime]
    z = np.array([0.4 * h, 0.7 * h])
    got = HORIZONTAL[regime](z, h, ust, wst, inv_L, 0.01)
    ref = hanna_horizontal_array(z, h, ust, wst, inv_L, 0.0)
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_allclose(g, r, rtol=0.03)


# ------------------------------------------------------------------ skewed convective boundary layer
BI_GAUSSIAN, DRIFT = skewed_formulas()
H, UST, WST, INV_L, INV_HRHO = 1000.0, 0.3, 2.0, -1.0 / 20.0, 1.0 / 8000.0


def skewed_state(z, w):
    """Density rho P(w, z) and the model's (dimensional) drift a(w, z) and C0 eps / 2."""
    sig, dsig, tl, b, db = PROFILES[UNSTABLE](z, H, UST, WST, INV_L, 0.01)
    pdf = BI_GAUSSIAN(z, H, WST, transition(-H * INV_L), sig, dsig, b, db)
    a, _, wa, _, sa, _, wb, _, sb, _ = pdf
    rho = np.exp(-z * INV_HRHO)
    p = rho * (a * np.exp(-0.5 * ((w - wa) / sa) ** 2) / sa
               + (1 - a) * np.exp(-0.5 * ((w + wb) / sb) ** 2) / sb) / np.sqrt(2 * np.pi)
    wn = w / sig
    acc = sig * (DRIFT(wn, pdf, sig, dsig, tl, INV_HRHO) + wn * wn * dsig)
    return p, acc, sig * sig / tl, sig


@pytest.mark.parametrize("z", [20.0, 100.0, 300.0, 600.0, 900.0])
def test_bi_gaussian_has_zero_mean_the_variance_and_the_skewness(z):
    w = np.linspace(-10.0, 12.0, 40001)
    p, _, _, sig = skewed_state(z, w)
    m0 = np.trapezoid(p, w)
    mean = np.trapezoid(w * p, w) / m0
    var = np.trapezoid(w * w * p, w) / m0
    skew = np.trapezoid(w**3 * p, w) / m0 / var**1.5
    sig_p, dsig_p, _, b, _ = PROFILES[UNSTABLE](z, H, UST, WST, INV_L, 0.01)
    zeta = z / H
    expected = 1.2 * zeta * (1 - zeta) ** 1.5 * WST**3 * b**1.5 / sig_p**3  # Luhar et al. (2000), faded
    assert abs(mean) < 1e-8 * sig
    assert var == pytest.approx(sig**2, rel=1e-8)
    assert skew == pytest.approx(expected, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("z", [5.0, 50.0, 300.0, 700.0, 980.0])
def test_skewed_drift_satisfies_thomsons_well_mixed_condition(z):
    # Thomson (1987): a P = (C0 eps/2) dP/dw + Phi with dPhi/dw = -d(w P)/dz. Check the stationary
    # Fokker-Planck equation d(w P)/dz + d(a P)/dw = (C0 eps/2) d2P/dw2 by finite differences.
    w = np.linspace(-8.0, 10.0, 18001)
    p, acc, b_half, _ = skewed_state(z, w)
    dz = 1e-3
    p_up, *_ = skewed_state(z + dz, w)
    p_down, *_ = skewed_state(z - dz, w)
    flux_divergence = w * (p_up - p_down) / (2 * dz)
    phi = acc * p - b_half * np.gradient(p, w)
    residual = np.gradient(phi, w) + flux_divergence
    assert np.max(np.abs(residual)) < 2e-4 * np.max(np.abs(flux_divergence))


def test_skewed_drift_reduces_to_thomsons_gaussian_drift_without_skewness():
    z, wn = 300.0, np.linspace(-4.0, 4.0, 17)
    sig, dsig, tl, b, db = PROFILES[UNSTABLE](z, H, UST, WST, INV_L, 0.01)
    pdf = BI_GAUSSIAN(z, H, WST, 0.0, sig, dsig, b, db)  # weight 0: Gaussian
    got = DRIFT(wn, pdf, sig, dsig, tl, INV_HRHO)
    # dw_n = (-w_n / T_Lw + d sigma_w/dz - sigma_w / H_rho) dt (Stohl & Thomson 1999)
    np.testing.assert_allclose(got, -wn / tl + dsig - sig * INV_HRHO, rtol=1e-6, atol=1e-9)


def test_erf_and_transition():
    from scipy import special

    x = np.linspace(-6.0, 6.0, 1201)
    assert np.max(np.abs(erf_over(np.exp)(x) - special.erf(x))) < 2e-7
    got = transition(np.array([0.0, 5.0, 10.0, 15.0, 40.0]))
    np.testing.assert_allclose(got, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-10)


# ------------------------------------------------------------------ unresolved mesoscale motions
def test_unresolved_mesoscale_velocity_from_the_lindborg_spectrum():
    # 9 km grid: k_e = 2 pi / 63 km; sigma^2 = 1.5 a k^(-2/3) + 0.5 b k^(-2) (Lindborg 1999)
    k = 2 * np.pi / 63e3
    sigma = np.sqrt(1.5 * 9.1e-4 * k ** (-2 / 3) + 0.5 * 3.0e-10 * k**-2)
    assert mesoscale.unresolved_velocity_sigma(9e3) == pytest.approx(sigma, rel=1e-12)
    assert sigma == pytest.approx(0.806, abs=1e-3)
    assert mesoscale.unresolved_time_scale(9e3) == pytest.approx(1.0 / (k * sigma), rel=1e-12)
    # coarser met leaves more unresolved
    assert mesoscale.unresolved_velocity_sigma(28e3) > mesoscale.unresolved_velocity_sigma(9e3)
    with pytest.raises(ValueError):
        mesoscale.effective_wavenumber(0.0)
