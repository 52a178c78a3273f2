import numpy as np

from airshed.jit import kernel
from airshed.model.fastmath import fast_exp, fast_exp_above, fast_ln, fast_log


@kernel()
def _exp_loop(x, out):
    for i in range(x.size):
        out[i] = fast_exp(x[i])


@kernel()
def _log_loop(x, out):
    for i in range(x.size):
        out[i] = fast_log(x[i])


def test_fast_exp_matches_numpy_over_the_used_range():
    x = np.concatenate([np.linspace(-708.0, 709.0, 400_001), np.linspace(-1.0, 1.0, 100_001)])
    out = np.empty_like(x)
    _exp_loop(x, out)
    assert np.max(np.abs(out / np.exp(x) - 1.0)) < 1e-15


def test_fast_exp_underflows_to_zero_below_minus_708():
    out = np.empty(3)
    _exp_loop(np.array([-709.0, -1e4, -np.inf]), out)
    assert np.all(out == 0.0)


def test_fast_log_matches_numpy():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.exp(rng.uniform(-700.0, 700.0, 200_000)), np.linspace(0.5, 2.0, 100_001)])
    out = np.empty_like(x)
    _log_loop(x, out)
    ref = np.log(x)
    assert np.max(np.abs(out - ref) / np.maximum(np.abs(ref), 1e-300)) < 1e-15


@kernel()
def _exp_above_loop(x, floor, out):
    for i in range(x.size):
        out[i] = fast_exp_above(x[i], floor)


def test_fast_exp_above_matches_numpy_over_the_used_range():
    rng = np.random.default_rng(1)
    grid = np.linspace(-707.9, 709.0, 400_001)
    x = np.concatenate([grid, np.linspace(-1.0, 1.0, 100_001), rng.uniform(-708, 709, 200_000)])
    x = x[x > -708.0]
    out = np.empty_like(x)
    _exp_above_loop(x, -708.0, out)
    assert np.max(np.abs(out / np.exp(x) - 1.0)) < 1e-15


def test_fast_exp_above_is_exactly_zero_at_and_below_the_floor():
    x = np.array([-600.0, -600.0000001, -1e4, -np.inf, -599.9999])
    out = np.empty(x.size)
    _exp_above_loop(x, -600.0, out)
    assert np.all(out[:4] == 0.0)
    assert out[4] == np.exp(-599.9999) or abs(out[4] / np.exp(-599.9999) - 1.0) < 1e-15


@kernel()
def _ln_loop(x, out):
    for i in range(x.size):
        out[i] = fast_ln(x[i])


def test_fast_ln_matches_numpy():
    rng = np.random.default_rng(2)
    x = np.concatenate([np.exp(rng.uniform(-700.0, 700.0, 200_000)), np.linspace(0.5, 2.0, 100_001),
                        1.0 + rng.uniform(0.0, 1e6, 100_000)])
    out = np.empty_like(x)
    _ln_loop(x, out)
    ref = np.log(x)
    assert np.max(np.abs(out - ref) / np.maximum(np.abs(ref), 1e-300)) < 1e-15
    assert np.max(np.abs(out - ref)) < 1e-15 * np.max(np.abs(ref))

