"""Branch-free helpers of the particle kernels: expm1, cbrt against NumPy; Hanna profiles without branches."""

import numpy as np

from airshed.jit import kernel
from airshed.model import lagrangian as lg
from airshed.model.fastmath import fast_cbrt, fast_expm1
from airshed.physics import turbulence as tb


@kernel()
def _expm1_cbrt_loop(x, out_expm1, out_cbrt):
    for i in range(x.size):
        out_expm1[i] = fast_expm1(x[i])
        out_cbrt[i] = fast_cbrt(abs(x[i]) + 1e-300)


@kernel()
def _profiles_loop(z, h, ust, wst, inv_l, out):
    for i in range(z.size):
        out[0, i], out[1, i], out[2, i] = lg.hanna_vertical_fast(z[i], h[i], ust[i], wst[i], inv_l[i], 2.0)
        out[3, i], out[4, i], out[5, i], out[6, i] = lg.hanna_horizontal_fast(
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


def test_branch_free_hanna_profiles_equal_the_regime_by_regime_form():
    r = np.random.default_rng(3)
    n = 30_000
    h = r.uniform(50.0, 2500.0, n)
    z = r.uniform(-10.0, 1.1, n) * h
    ust = r.uniform(0.0, 1.0, n)
    wst = r.uniform(0.0, 3.0, n)
    inv_l = r.choice([-1.0, 1.0], n) * 10.0 ** r.uniform(-6.0, -0.5, n)
    out = np.empty((7, n))
    _profiles_loop(z, h, ust, wst, inv_l, out)
    ref = (
        *tb.hanna_vertical_array(z, h, ust, wst, inv_l, 2.0),
        *tb.hanna_horizontal_array(z, h, ust, wst, inv_l, 5.0),
    )
    for k in range(7):
        # absolute part: d sigma_w/dz (unstable) is a difference of terms that can nearly cancel
        np.testing.assert_allclose(out[k], ref[k], rtol=5e-15, atol=1e-14 * np.abs(ref[k]).max())
