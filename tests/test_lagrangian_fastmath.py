"""Branch-free helpers of the particle kernels: expm1, cbrt against NumPy; Hanna profiles without branches."""

import numpy as np

from airshed.jit import kernel
from airshed.model import lagrangian as lg
from airshed.model.fastmath import (
    fast_cbrt,
    fast_cbrt_fma,
    fast_exp_fma,
    fast_expm1,
    fast_expm1_fma,
    fast_log_fma,
    fma,
)
from airshed.physics import turbulence as tb


@kernel()
def _expm1_cbrt_loop(x, out_expm1, out_cbrt):
    for i in range(x.size):
        out_expm1[i] = fast_expm1(x[i])
        out_cbrt[i] = fast_cbrt(abs(x[i]) + 1e-300)


# Hanna's profiles of all regimes over the kernel's fast exp/log/cbrt (the kernel evaluates one regime's at a
# time, bit for bit these: test_regime_by_regime_profiles_equal_the_branch_free_ones_bit_for_bit)
hanna_vertical_fast, hanna_horizontal_fast = tb.branch_free_profiles(lg.fast_exp, lg.fast_log, lg.fast_cbrt)


@kernel()
def _profiles_loop(z, h, ust, wst, inv_l, out):
    for i in range(z.size):
        out[0, i], out[1, i], out[2, i] = hanna_vertical_fast(z[i], h[i], ust[i], wst[i], inv_l[i], 2.0)
        out[3, i], out[4, i], out[5, i], out[6, i] = hanna_horizontal_fast(
            z[i], h[i], ust[i], wst[i], inv_l[i], 5.0
        )


def test_fast_expm1_and_cbrt_match_numpy():
    x = np.concatenate([
        np.linspace(-708.0, 709.0, 200_001), np.linspace(-1.0, 1.0, 100_001),
        -np.logspace(-300.0, 0.0, 5001), np.logspace(-300.0, 0.0, 5001),
    ])  # fmt: skip
    e, c = np.empty_like(x), np.empty_like(x)
    _expm1_cbrt_loop(x, e, c)
    ref = np.expm1(x)
    assert np.max(np.abs(e - ref) / np.maximum(np.abs(ref), 1e-300)) < 1e-15
    assert np.max(np.abs(c / np.cbrt(np.abs(x) + 1e-300) - 1.0)) < 1e-15
    out = np.empty(3)
    _expm1_cbrt_loop(np.array([-709.0, -1e4, 0.0]), out, np.empty(3))
    np.testing.assert_array_equal(out, [-1.0, -1.0, 0.0])


def boundary_layer_states(seed: int, n: int):
    """Random (z, h, u*, w*, 1/L): heights below ground to above h, every stability, |L| 3 m to 1e6 m."""
    r = np.random.default_rng(seed)
    h = r.uniform(50.0, 2500.0, n)
    z = r.uniform(-10.0, 1.1, n) * h
    ust = r.uniform(0.0, 1.0, n)
    wst = r.uniform(0.0, 3.0, n)
    inv_l = r.choice([-1.0, 1.0], n) * 10.0 ** r.uniform(-6.0, -0.5, n)
    return z, h, ust, wst, inv_l


def test_branch_free_hanna_profiles_equal_the_regime_by_regime_form():
    n = 30_000
    z, h, ust, wst, inv_l = boundary_layer_states(3, n)
    out = np.empty((7, n))
    _profiles_loop(z, h, ust, wst, inv_l, out)
    ref = (
        *tb.hanna_vertical_array(z, h, ust, wst, inv_l, 2.0),
        *tb.hanna_horizontal_array(z, h, ust, wst, inv_l, 5.0),
    )
    for k in range(7):
        # absolute part: d sigma_w/dz (unstable) is a difference of terms that can nearly cancel
        np.testing.assert_allclose(out[k], ref[k], rtol=5e-15, atol=1e-14 * np.abs(ref[k]).max())


@kernel()
def _fma_loop(a, b, c, out):
    for i in range(a.size):
        out[i] = fma(a[i], b[i], c[i])


@kernel()
def _fused_helpers_loop(x, out):
    for i in range(x.size):
        out[0, i] = fast_exp_fma(x[i])
        out[1, i] = fast_expm1_fma(x[i])
        out[2, i] = fast_log_fma(abs(x[i]) + 1e-300)
        out[3, i] = fast_cbrt_fma(abs(x[i]) + 1e-300)


def test_fma_rounds_once():
    # (1 + 2^-30)(1 - 2^-30) - 1 = -2^-60 exactly; a separate multiply rounds the product to 1 (result 0)
    e = 2.0**-30
    out = np.empty(2)
    _fma_loop(np.array([1.0 + e, 3.0]), np.array([1.0 - e, 0.1]), np.array([-1.0, 0.5]), out)
    assert out[0] == -(2.0**-60)
    assert out[1] == 3.0 * 0.1 + 0.5


def test_fused_helpers_of_the_particle_kernel_match_numpy():
    x = np.concatenate([
        np.linspace(-708.0, 709.0, 200_001), np.linspace(-1.0, 1.0, 100_001),
        -np.logspace(-300.0, 0.0, 5001), np.logspace(-300.0, 0.0, 5001),
    ])  # fmt: skip
    out = np.empty((4, x.size))
    _fused_helpers_loop(x, out)
    pos = np.abs(x) + 1e-300
    refs = (np.exp(x), np.expm1(x), np.log(pos), np.cbrt(pos))
    for k, ref in enumerate(refs):
        assert np.max(np.abs(out[k] - ref) / np.maximum(np.abs(ref), 1e-300)) < 1e-15, k
    _fused_helpers_loop(np.array([-709.0, -1e4, 0.0]), out[:, :3])
    np.testing.assert_array_equal(out[0, :3], [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(out[1, :3], [-1.0, -1.0, 0.0])


def test_particle_kernel_uses_the_fused_helpers():
    # the inlined helpers of the step are the fused ones (same bits as fastmath's *_fma kernels)
    @kernel()
    def exp_log(x, out):
        for i in range(x.size):
            out[0, i] = lg.fast_exp(x[i])
            out[1, i] = lg.fast_log(abs(x[i]) + 1e-300)

    x = np.linspace(-50.0, 50.0, 10_001)
    out = np.empty((2, x.size))
    exp_log(x, out)
    np.testing.assert_array_equal(out[0], [fast_exp_fma(v) for v in x])
    np.testing.assert_array_equal(out[1], [fast_log_fma(abs(v) + 1e-300) for v in x])


@kernel()
def _regime_profiles_loop(z, h, ust, wst, inv_l, out):
    for i in range(z.size):
        regime = tb.hanna_regime(h[i], inv_l[i])
        if regime == tb.NEUTRAL:
            v = lg.vertical_neutral(z[i], h[i], ust[i], wst[i], inv_l[i], 2.0)
            hz = lg.horizontal_neutral(z[i], h[i], ust[i], wst[i], inv_l[i], 5.0)
        elif regime == tb.UNSTABLE:
            v = lg.vertical_unstable(z[i], h[i], ust[i], wst[i], inv_l[i], 2.0)
            hz = lg.horizontal_unstable(z[i], h[i], ust[i], wst[i], inv_l[i], 5.0)
        else:
            v = lg.vertical_stable(z[i], h[i], ust[i], wst[i], inv_l[i], 2.0)
            hz = lg.horizontal_stable(z[i], h[i], ust[i], wst[i], inv_l[i], 5.0)
        out[0, i], out[1, i], out[2, i] = v
        out[3, i], out[4, i], out[5, i], out[6, i] = hz


def test_regime_by_regime_profiles_equal_the_branch_free_ones_bit_for_bit():
    # the step evaluates only the regimes present in a chunk; a particle's values must not depend on that
    n = 20_000
    z, h, ust, wst, inv_l = boundary_layer_states(5, n)
    out = np.empty((7, n))
    ref = np.empty((7, n))
    _regime_profiles_loop(z, h, ust, wst, inv_l, out)
    _profiles_loop(z, h, ust, wst, inv_l, ref)
    np.testing.assert_array_equal(out, ref)
