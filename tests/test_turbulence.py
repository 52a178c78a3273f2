"""Hanna (1982) turbulence profiles: published values, derivatives, regimes, scalar == array form."""

import numpy as np
import pytest

from airshed.physics import turbulence as tb

CASES = [
    # (h, u*, w*, 1/L) for neutral, unstable, stable
    (1000.0, 0.4, 0.0, 1e-5),
    (1200.0, 0.3, 2.0, -1.0 / 30.0),
    (300.0, 0.25, 0.0, 1.0 / 40.0),
]


def test_regimes():
    assert tb.hanna_regime(1000.0, 1e-5) == tb.NEUTRAL
    assert tb.hanna_regime(1000.0, -0.01) == tb.UNSTABLE
    assert tb.hanna_regime(1000.0, 0.01) == tb.STABLE


def test_neutral_surface_values_match_hanna():
    # Hanna (1982) neutral surface layer: sigma_u = 2.0 u*, sigma_w = 1.3 u* (+0.01 floor of FLEXPART)
    ust = 0.5
    sigu, sigv, _, _ = tb.hanna_horizontal(0.0, 1000.0, ust, 0.0, 0.0, 0.0)
    sigw, _, _ = tb.hanna_vertical(0.0, 1000.0, ust, 0.0, 0.0, 0.0)
    assert sigu == pytest.approx(0.01 + 2.0 * ust)
    assert sigw == pytest.approx(0.01 + 1.3 * ust)
    assert sigv == pytest.approx(sigw)


def test_convective_mixed_layer_sigma_w_peak():
    # Unstable: sigma_w^2 = 1.2 w*^2 (1 - 0.9 z/h)(z/h)^(2/3) + (1.8 - 1.4 z/h) u*^2; at z/h = 0.4, u* -> 0
    # sigma_w / w* = sqrt(1.2 * 0.64 * 0.4**(2/3)) = 0.6397 (close to the Lenschow et al. 1980 peak ~0.6)
    sigw, _, _ = tb.hanna_vertical(400.0, 1000.0, 1e-4, 2.0, -1.0, 0.0)
    assert (sigw - 0.01) / 2.0 == pytest.approx(np.sqrt(1.2 * 0.64 * 0.4 ** (2.0 / 3.0)), rel=1e-6)


def test_stable_profiles_decrease_linearly_to_the_top():
    h, ust = 300.0, 0.25
    s0 = tb.hanna_vertical(0.0, h, ust, 0.0, 0.1, 0.0)[0]
    s_half = tb.hanna_vertical(h / 2, h, ust, 0.0, 0.1, 0.0)[0]
    s_top = tb.hanna_vertical(h, h, ust, 0.0, 0.1, 0.0)[0]
    assert s0 == pytest.approx(0.01 + 1.3 * ust)
    assert s_half == pytest.approx(0.01 + 0.65 * ust)
    assert s_top == pytest.approx(0.01)


@pytest.mark.parametrize("case", CASES)
def test_gradient_is_the_derivative_of_sigma_w(case):
    h, ust, wst, inv_L = case
    for z in np.linspace(0.05 * h, 0.95 * h, 7):
        dz = 1e-3
        up = tb.hanna_vertical(z + dz, h, ust, wst, inv_L, 0.0)[0]
        down = tb.hanna_vertical(z - dz, h, ust, wst, inv_L, 0.0)[0]
        assert tb.hanna_vertical(z, h, ust, wst, inv_L, 0.0)[1] == pytest.approx(
            (up - down) / (2 * dz), rel=1e-5, abs=1e-9
        )


@pytest.mark.parametrize("case", CASES)
def test_array_form_equals_scalar_form(case):
    h, ust, wst, inv_L = case
    z = np.linspace(0.0, 1.1 * h, 57)
    va = tb.hanna_vertical_array(z, h, ust, wst, inv_L, 5.0)
    ha = tb.hanna_horizontal_array(z, h, ust, wst, inv_L, 5.0)
    for k, zk in enumerate(z):
        np.testing.assert_allclose(
            [a[k] for a in va], tb.hanna_vertical(zk, h, ust, wst, inv_L, 5.0), rtol=1e-14
        )
        np.testing.assert_allclose(
            [a[k] for a in ha], tb.hanna_horizontal(zk, h, ust, wst, inv_L, 5.0), rtol=1e-14
        )


def test_time_scale_floors_apply():
    _, _, tlw = tb.hanna_vertical(0.5, 1000.0, 0.4, 0.0, 1e-5, tb.FLEXPART_TL_MIN_VERTICAL_S)
    assert tlw == tb.FLEXPART_TL_MIN_VERTICAL_S
    _, _, tlu, tlv = tb.hanna_horizontal(0.5, 1000.0, 0.4, 0.0, 1e-5, tb.FLEXPART_TL_MIN_HORIZONTAL_S)
    assert tlu == tlv == tb.FLEXPART_TL_MIN_HORIZONTAL_S


def test_convective_horizontal_time_scale():
    # Unstable: T_Lu = 0.15 h / sigma_u (Hanna 1982)
    sigu, _, tlu, _ = tb.hanna_horizontal(100.0, 1000.0, 0.4, 2.0, -0.05, 0.0)
    assert sigu == pytest.approx(0.01 + 0.4 * (12.0 + 25.0) ** (1.0 / 3.0))
    assert tlu == pytest.approx(150.0 / sigu)
