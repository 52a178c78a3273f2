import numpy as np

from airshed.jit import kernel
from airshed.model.fastmath import fast_exp, fast_log


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
