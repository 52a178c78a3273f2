"""Particle credit: the per-period budget is honoured, mass is conserved per source, small sources release."""

import numpy as np
import pytest

from airshed.errors import AirshedInputError
from airshed.model import lagrangian as lg
from airshed.model.release import ParticleCredit, allocation_weights, area_release_table


def many_small_sources(nsource=500, seed=0):
    """Rates (kg/s) spread over 5 decades for 2 species: far more sources than a 100-particle budget."""
    r = np.random.default_rng(seed)
    rate = 10.0 ** r.uniform(-5.0, 0.0, (nsource, 2))
    rate[::7, 1] = 0.0  # some sources emit one species only
    return rate


def test_budget_honoured_mass_conserved_and_small_sources_released():
    rate, budget, periods, period = many_small_sources(), 100, 200, 3600.0
    share = allocation_weights(rate) * budget
    credit = ParticleCredit(2)
    ids = np.arange(rate.shape[0])
    released = np.zeros(rate.shape[0], np.int64)
    carried = np.zeros_like(rate)
    first = np.full(rate.shape[0], -1)
    for k in range(periods):
        n, mass = credit.allocate(ids, share, rate * period)
        # each releasing source exceeds its share by less than one particle (its credit was < 1) ...
        assert n.sum() < budget + np.count_nonzero(n)
        released += n
        # ... and the credit held, in [0, 1) per source from 1/2 at the start, is all it owes the budget
        assert abs(released.sum() - budget * (k + 1)) <= rate.shape[0] / 2
        first[(n > 0) & (first < 0)] = k
        carried += n[:, None] * mass
    assert released.sum() < 0.5 * rate.shape[0] * periods  # not one particle per source per period
    # released + pending mass = emission, per source and species
    np.testing.assert_allclose(carried + credit.pending[ids], rate * period * periods, rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(credit.pending_mass(), credit.pending[ids].sum(axis=0), rtol=1e-12)
    # every source releases within ceil(1 / share) periods (first release at period index ceil - 1)
    due = np.ceil(1.0 / share).astype(int)
    has_time = due <= periods
    assert np.any(share < 0.05) and np.all(first[has_time] >= 0)
    assert np.all(first[has_time] <= due[has_time] - 1)


def test_credit_of_a_source_does_not_depend_on_the_other_sources():
    rate, period = many_small_sources(50), 3600.0
    share = allocation_weights(rate) * 20
    full, part = ParticleCredit(2), ParticleCredit(2)
    subset = np.arange(50)[::3]
    for _ in range(30):
        n_full, m_full = full.allocate(np.arange(50), share, rate * period)
        n_part, m_part = part.allocate(subset, share[subset], rate[subset] * period)
        np.testing.assert_array_equal(n_part, n_full[subset])
        np.testing.assert_array_equal(m_part, m_full[subset])


def test_credit_rejects_bad_shares():
    with pytest.raises(AirshedInputError, match="shares"):
        ParticleCredit(1).allocate(np.arange(2), np.array([1.0, -1.0]), np.ones((2, 1)))


def test_particle_run_releases_the_budget_with_more_sources_than_particles():
    """400 cell sources, a 50-particle budget: ~50 particles an hour, the budget closes with pending mass."""
    p = lg.LagrangianParameters.for_species(
        ("PM2.5", "NMVOC"), deposition_velocity_m_s=[0.0, 0.0], wet_a_per_s=[0.0, 0.0], particles_per_hour=50,
    )  # fmt: skip
    dx, nx = 1000.0, 20
    xy = (np.arange(nx) + 0.5) * dx
    x, y = (a.ravel() for a in np.meshgrid(xy, xy))
    rate = many_small_sources(x.size, seed=3)
    src = area_release_table(x, y, dx, np.zeros(x.size, int), rate)
    run = lg.ParticleRun(0.0, 0.0, dx, nx, nx, 5000.0, 1, p, 1)
    shape, s2 = (4, 3, nx, nx), (4, nx, nx)
    met = lg.MetWindow(
        np.arange(4) * 3600.0, np.array([10.0, 500.0, 5000.0]), np.zeros(shape), np.zeros(shape),
        np.zeros(shape), np.full(s2, 800.0), np.full(s2, 0.4), np.full(s2, 1.5), np.full(s2, -0.02),
        np.zeros(s2),
    )  # fmt: skip
    counts = []
    for k in range(3):
        before = run.n
        run.advance(met, src, 3600.0 * k, 3600.0 * (k + 1))
        counts.append(run.n - before)
    assert all(abs(c - 50) <= 50 for c in counts) and sum(counts) < 3 * 50 + 2 * x.size // 10
    b = run.budget()
    np.testing.assert_allclose(b["emitted"], rate.sum(axis=0) * 3 * 3600.0, rtol=1e-12)
    assert np.all(np.abs(b["residual"]) <= 1e-9 * b["emitted"])
    assert np.all(run.credit.pending_mass() > 0.0)  # some sources have not released yet
