"""Counter-based random numbers: distribution, independence, and kernel == NumPy twin bit for bit."""

import numpy as np
import pytest
from scipy import stats

from airshed.jit import kernel
from airshed.model import random as rng


@kernel()
def _normals_kernel(seed, pid, step, draw):
    out = np.empty((2, pid.size))
    for i in range(pid.size):
        key = rng.particle_key_scalar(np.uint64(seed), np.uint64(pid[i]))
        a, b = rng.normal_pair_scalar(key, rng.counter_scalar(np.uint64(step), np.uint64(draw)))
        out[0, i] = a
        out[1, i] = b
    return out


@kernel()
def _uniform_kernel(seed, pid, step, draw):
    out = np.empty(pid.size)
    for i in range(pid.size):
        key = rng.particle_key_scalar(np.uint64(seed), np.uint64(pid[i]))
        out[i] = rng.uniform_scalar(key, rng.counter_scalar(np.uint64(step), np.uint64(draw)))
    return out


def test_kernel_and_numpy_twin_draw_the_same_numbers():
    pid = np.arange(50_000, dtype=np.int64) * 7 + 3
    a, b = rng.normal_pairs(12345, pid, 17, 4)
    k = _normals_kernel(np.uint64(12345), pid, np.uint64(17), np.uint64(4))
    np.testing.assert_allclose(k[0], a, rtol=0, atol=1e-14)
    np.testing.assert_allclose(k[1], b, rtol=0, atol=1e-14)
    u = _uniform_kernel(np.uint64(9), pid, np.uint64(2), np.uint64(0))
    np.testing.assert_array_equal(u, rng.uniforms(9, pid, 2, 0))


def test_uniforms_are_uniform_in_open_interval():
    u = rng.uniforms(1, np.arange(200_000), 0, 0)
    assert u.min() > 0.0 and u.max() < 1.0
    # Kolmogorov-Smirnov against U(0,1): p > 1e-3 (fixed seed, so deterministic)
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_normals_have_unit_moments_and_gaussian_shape():
    a, b = rng.normal_pairs(2024, np.arange(200_000), 5, 2)
    g = np.concatenate([a, b])
    assert abs(g.mean()) < 0.01
    assert abs(g.std() - 1.0) < 0.01
    assert abs(stats.skew(g)) < 0.02 and abs(stats.kurtosis(g)) < 0.04
    assert stats.kstest(g, "norm").pvalue > 1e-3
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.01


@pytest.mark.parametrize(
    ("other", "what"), [((2024, 5, 4), "draw"), ((2024, 6, 2), "step"), ((2025, 5, 2), "seed")]
)
def test_streams_are_uncorrelated_across_draws_steps_and_seeds(other, what):
    pid = np.arange(100_000)
    a, _ = rng.normal_pairs(2024, pid, 5, 2)
    b, _ = rng.normal_pairs(other[0], pid, other[1], other[2])
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.015, what


def test_neighbouring_particles_are_uncorrelated():
    a, _ = rng.normal_pairs(7, np.arange(100_001), 0, 0)
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.015


def test_draws_depend_only_on_seed_id_step_not_on_partition():
    pid = np.arange(10_000)
    whole = rng.uniforms(3, pid, 11, 5)
    parts = np.concatenate([rng.uniforms(3, pid[:3333], 11, 5), rng.uniforms(3, pid[3333:], 11, 5)])
    np.testing.assert_array_equal(whole, parts)
    np.testing.assert_array_equal(rng.uniforms(3, pid[::-1], 11, 5), whole[::-1])
