"""Ensemble statistics on arrays with known answers: quantiles, variance by source, batch means.

The batch-means tests build particle classes the way the particle core is to accumulate them (class =
particle id modulo n_classes) from per-particle contributions of a known distribution, so the true standard
error of the estimate is known analytically (sigma / sqrt(N)).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from airshed.uncertainty.statistics import (
    batch_means,
    ensemble_quantiles,
    jackknife,
    particles_for_cv,
    rank_probabilities,
    same_ranking_share,
    variance_by_source,
)


def test_quantiles_over_one_or_several_member_axes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3, 5))
    np.testing.assert_array_equal(ensemble_quantiles(x), np.quantile(x, [0.05, 0.5, 0.95], axis=0))
    joint = ensemble_quantiles(x, axis=(0, 1))
    np.testing.assert_array_equal(joint, np.quantile(x.reshape(1200, 5), [0.05, 0.5, 0.95], axis=0))
    big = rng.normal(2.0, 3.0, size=200_000)
    np.testing.assert_allclose(ensemble_quantiles(big), 2.0 + 3.0 * stats.norm.ppf([0.05, 0.5, 0.95]),
                               atol=0.03)


def test_variance_splits_into_inventory_meteorology_and_sampling():
    rng = np.random.default_rng(1)
    M, N = 3000, 60
    met = rng.normal(0.0, 2.0, size=(M, 1))  # Var 4
    inv = rng.normal(0.0, 1.0, size=(M, N))  # Var 1, independent of the met member
    noise = rng.normal(0.0, 0.5, size=(M, 1))  # each met member's Monte Carlo error, Var 0.25
    parts = variance_by_source(met + inv + noise, sampling_variance=np.full(M, 0.25))
    assert parts["inventory"] == pytest.approx(1.0, rel=0.02)
    assert parts["meteorology"] == pytest.approx(4.0, rel=0.08)  # 3000 members: ~3 % sampling error
    assert parts["sampling"] == pytest.approx(0.25)
    total = (met + inv + noise).var(ddof=1)
    assert parts["inventory"] + parts["meteorology"] + parts["sampling"] == pytest.approx(total, rel=0.02)
    only_inventory = variance_by_source(inv[:1])  # one met member, no classes: the others are not sampled
    assert np.isfinite(only_inventory["inventory"])
    assert np.isnan(only_inventory["meteorology"]) and np.isnan(only_inventory["sampling"])
    with pytest.raises(ValueError, match="meteorology and an inventory member axis"):
        variance_by_source(np.ones(5))


def _class_sums(rng, n_particles: int, n_classes: int, replicates: int) -> tuple[np.ndarray, float, float]:
    """Per-class parts of the mean of n_particles exponential contributions (mean 2, sd 2), by pid % n."""
    x = rng.exponential(2.0, size=(replicates, n_particles)) / n_particles
    pid = np.arange(n_particles)
    sums = np.stack([x[:, pid % n_classes == c].sum(axis=1) for c in range(n_classes)], axis=1)
    return sums, 2.0, 2.0 / np.sqrt(n_particles)


def test_batch_means_standard_error_is_the_monte_carlo_error():
    rng = np.random.default_rng(2)
    sums, mean, true_se = _class_sums(rng, 2000, 10, 4000)
    bm = batch_means(sums, axis=1)
    np.testing.assert_allclose(bm.value, sums.sum(axis=1))
    assert bm.n_classes == 10
    # the estimated variance is unbiased: its average over replicates is sigma^2 / N
    assert np.mean(bm.variance) == pytest.approx(true_se**2, rel=0.03)
    # the estimates scatter as the true standard error says
    assert np.std(bm.value) == pytest.approx(true_se, rel=0.03)
    # Student t with n - 1 = 9 degrees of freedom: the 95 % intervals cover the mean 95 % of the time
    t = stats.t.ppf(0.975, 9)
    coverage = np.mean(np.abs(bm.value - mean) <= t * bm.standard_error)
    assert 0.94 <= coverage <= 0.96, coverage
    assert np.allclose(bm.coefficient_of_variation, bm.standard_error / bm.value)
    with pytest.raises(ValueError, match="at least 2 particle classes"):
        batch_means(sums[:, :1], axis=1)


def test_jackknife_standard_error_of_a_share_matches_its_scatter():
    rng = np.random.default_rng(3)
    n_particles, n_classes, replicates = 3000, 10, 3000
    shape = (replicates, n_particles)
    own = rng.exponential(1.0, size=shape) * (rng.random(shape) < 0.3)
    other = rng.exponential(1.0, size=shape) * (rng.random(shape) < 0.7)
    pid = np.arange(n_particles)
    # class sums of (own, total): the share is 1 - own / total
    classes = np.stack([np.stack([own[:, pid % n_classes == c].sum(axis=1),
                                  (own + other)[:, pid % n_classes == c].sum(axis=1)], axis=-1)
                        for c in range(n_classes)], axis=1)  # (replicates, classes, 2)

    def share(s):
        return 1.0 - s[..., 0] / s[..., 1]

    jk = jackknife(classes, share, axis=1)
    np.testing.assert_allclose(jk.value, share(classes.sum(axis=1)))
    assert np.sqrt(np.mean(jk.variance)) == pytest.approx(np.std(jk.value), rel=0.05)


def test_particles_for_a_target_coefficient_of_variation():
    assert particles_for_cv(5000, np.array([0.02, 0.10, np.nan])) == pytest.approx(20000.0)
    assert particles_for_cv(5000, np.array([0.025])) == pytest.approx(1250.0)
    # the rule is the 1/sqrt(N) law: measured on the exponential example above
    rng = np.random.default_rng(4)
    cv = [np.std(_class_sums(rng, n, 10, 5000)[0].sum(axis=1)) / 2.0 for n in (500, 2000)]
    assert particles_for_cv(500, np.array([cv[0]]), target=cv[1]) == pytest.approx(2000.0, rel=0.1)


def test_how_often_the_ranking_of_payers_is_the_same():
    members = np.array([[3.0, 2.0, 1.0], [3.0, 1.0, 2.0], [2.5, 2.0, 0.5], [1.0, 2.0, 3.0]])
    assert same_ranking_share(members, reference=np.array([10.0, 5.0, 1.0])) == 0.5
    assert same_ranking_share(members) == 0.5  # the medians (2.75, 2, 1.5) rank them 0 > 1 > 2
    prob = rank_probabilities(members)
    np.testing.assert_allclose(prob.sum(axis=0), 1.0)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0)
    np.testing.assert_allclose(prob[0], [0.75, 0.0, 0.25])  # player 0 pays most in 3 of 4 members
    # clear-cut payers keep their ranking under small noise; close ones swap half of the time
    rng = np.random.default_rng(5)
    clear = np.array([10.0, 5.0, 1.0]) + rng.normal(0.0, 0.1, (2000, 3))
    close = np.array([5.0, 5.0, 1.0]) + rng.normal(0.0, 0.1, (2000, 3))
    assert same_ranking_share(clear, np.array([10.0, 5.0, 1.0])) == 1.0
    assert 0.45 < same_ranking_share(close, np.array([5.0001, 5.0, 1.0])) < 0.55
