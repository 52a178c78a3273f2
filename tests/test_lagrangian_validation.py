"""Validation of the particle core: well-mixed condition, Taylor (1921), Gaussian plume, Prairie Grass.

Fixed seeds make every check deterministic; thresholds are stated next to each assertion. The full forms
(more particles, all stability regimes) run with ``-m validation``.
"""

import os

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from airshed.model import lagrangian as lg
from airshed.physics import mesoscale
from airshed.physics.similarity import similarity_formulas
from airshed.physics.turbulence import NEUTRAL as R_NEUTRAL
from airshed.physics.turbulence import STABLE as R_STABLE
from airshed.physics.turbulence import UNSTABLE as R_UNSTABLE
from airshed.physics.turbulence import hanna_vertical_array

H = 1000.0
UNSTABLE = dict(h=H, ust=0.4, wst=2.0, inv_L=-1.0 / 20.0)  # -h/L = 50: skewed (similarity scheme)
WEAKLY_UNSTABLE = dict(h=H, ust=0.5, wst=0.8, inv_L=-1.0 / 400.0)  # -h/L = 2.5: Gaussian
STABLE = dict(h=300.0, ust=0.3, wst=0.0, inv_L=1.0 / 50.0)
NEUTRAL = dict(h=H, ust=0.5, wst=0.0, inv_L=1e-5)
MIN_PROFILE_HEIGHT_M = 1.0


def uniform_met(h, ust, wst, inv_L, u=0.0, duration=1e6):
    z_levels = np.array([0.0, 10.0, 100.0, 1000.0, 10000.0])
    shape = (2, z_levels.size, 2, 2)
    s2 = (2, 2, 2)
    return lg.MetWindow(
        np.array([0.0, duration]), z_levels, np.full(shape, u), np.zeros(shape), np.zeros(shape),
        np.full(s2, h), np.full(s2, ust), np.full(s2, wst), np.full(s2, inv_L), np.zeros(s2),
    )  # fmt: skip


def released_run(n, z_bottom, z_top, dt, ctl=0.1, tl_min_vertical=1.0, half=1e6, seed=3, scheme="hanna",
                 **extra):
    """A run with n particles released at t = 0 at (0, 0), uniformly in [z_bottom, z_top]."""
    extra = {"max_substeps": 1000, **extra}
    p = lg.LagrangianParameters.for_species(
        ("PM2.5",), deposition_velocity_m_s=[0.0], wet_a_per_s=[0.0], max_time_step_s=dt,
        turbulence_step_fraction=ctl, tl_min_vertical_s=tl_min_vertical, tl_min_horizontal_s=10.0,
        turbulence_scheme=scheme, min_profile_height_m=MIN_PROFILE_HEIGHT_M, **extra,
    )  # fmt: skip
    run = lg.ParticleRun(-half, -half, half, 2, 2, 20000.0, 1, p, seed)
    src = lg.ReleaseTable(np.zeros(1), np.zeros(1), np.zeros(1), [z_bottom], [z_top], [0], np.ones((1, 1)))
    run.release(src, np.array([n]), 0.0, 1.0, 0.0, 1.0)
    return run


def mean_time_scale(case, scheme):
    """Vertical mean of T_Lw over the mixed layer (s), the scheme's profile with the model's floors."""
    h, ust, wst, inv_L = case["h"], case["ust"], case["wst"], case["inv_L"]
    z = np.linspace(0.0, h, 2001)[1:]
    if scheme == "hanna":
        tl = hanna_vertical_array(np.maximum(z, MIN_PROFILE_HEIGHT_M), h, ust, wst, inv_L, 0.0)[2]
    else:
        regime = R_NEUTRAL if h * abs(inv_L) < 1 else (R_UNSTABLE if inv_L < 0 else R_STABLE)
        tl = similarity_formulas()[regime](z, h, ust, wst, inv_L, MIN_PROFILE_HEIGHT_M)[2]
    return float(np.mean(np.where(z >= lg.TL_FLOOR_HEIGHT_M, np.maximum(tl, 1.0), tl)))


def well_mixed_histogram(case, n, duration, ctl, dt=10.0, scheme="hanna"):
    """chi^2 of the 10-bin height histogram after ``duration`` s and each bin's count over the uniform one."""
    met = uniform_met(**case)
    run = released_run(n, 0.0, case["h"], dt, ctl=ctl, scheme=scheme)
    for k in range(int(round(duration / dt))):
        run.step_once(met, k * dt, dt)
    counts, _ = np.histogram(run.z[: run.n], bins=10, range=(0.0, case["h"]))
    expected = run.n / 10
    return ((counts - expected) ** 2 / expected).sum(), counts / expected


def test_well_mixed_condition_convective_boundary_layer():
    # Thomson (1987): an initially uniform distribution stays uniform in inhomogeneous turbulence. After
    # 1800 s (~15 T_Lw) the 10-bin histogram must pass chi-square at p > 0.001 (chi2 < 27.9, 9 dof).
    chi2, ratio = well_mixed_histogram(UNSTABLE, 10_000, 1800.0, ctl=0.05)
    assert chi2 < stats.chi2.ppf(0.999, 9), ratio
    assert np.all(np.abs(ratio - 1.0) < 0.1), ratio


@pytest.mark.parametrize("case", [UNSTABLE, STABLE], ids=["skewed-cbl", "stable"])
def test_well_mixed_condition_similarity_reduced(case):
    # CI form of the 2 % test below: 20,000 particles after 20 T_L (mean over the layer), chi-square at
    # p > 0.001 and every bin within 7 % (3.1 sampling sigmas of a bin of 2,000)
    duration = 20.0 * mean_time_scale(case, "similarity")
    chi2, ratio = well_mixed_histogram(case, 20_000, duration, ctl=0.05, scheme="similarity")
    assert chi2 < stats.chi2.ppf(0.999, 9), ratio
    assert np.all(np.abs(ratio - 1.0) < 0.07), ratio


@pytest.mark.validation
@pytest.mark.skipif(
    not os.environ.get("AIRSHED_FULL_VALIDATION"), reason="full validation: AIRSHED_FULL_VALIDATION=1"
)
@pytest.mark.parametrize(
    "case", [UNSTABLE, WEAKLY_UNSTABLE, STABLE, NEUTRAL], ids=["skewed-cbl", "unstable", "stable", "neutral"]
)
def test_well_mixed_within_two_percent_after_20_time_scales(case):
    # every similarity profile with its Thomson drift: 400,000 particles uniform in [0, h] stay uniform to
    # 2 % in each tenth of the layer after 20 T_L (a bin's sampling sigma is 0.5 %), with a converged
    # sub-step of 0.02 T_Lw (measured 5 Dec: largest deviation 1.5 %). The step is not converged at 0.05:
    # the lowest tenth then holds 3.8 / 2.8 / 2.7 % too many (unstable, stable, neutral; skewed passes),
    # and more at the scheme's default of 0.1 (README, particle core)
    duration = 20.0 * mean_time_scale(case, "similarity")
    _, ratio = well_mixed_histogram(case, 400_000, duration, ctl=0.02, scheme="similarity")
    assert np.all(np.abs(ratio - 1.0) < 0.02), ratio


@pytest.mark.validation
@pytest.mark.skipif(
    not os.environ.get("AIRSHED_FULL_VALIDATION"), reason="full validation: AIRSHED_FULL_VALIDATION=1"
)
@pytest.mark.parametrize(("case", "ctl"), [(UNSTABLE, 0.05), (STABLE, 0.05), (NEUTRAL, 0.02)])
def test_well_mixed_condition_all_regimes(case, ctl):
    chi2, ratio = well_mixed_histogram(case, 20_000, 3600.0, ctl=ctl)
    assert chi2 < stats.chi2.ppf(0.999, 9), ratio


@pytest.mark.parametrize("case", [NEUTRAL, WEAKLY_UNSTABLE, STABLE], ids=["neutral", "unstable", "stable"])
def test_splitting_keeps_the_layer_well_mixed_at_the_default_sub_step(case):
    # The default case's vertical steps: Hanna's profiles with FLEXPART's 30 s floor on T_Lw, 300 s steps,
    # sub-steps of 0.5 T_Lw. 20,000 particles uniform in the layer after 2 h: with the BAOAB splitting the
    # 10-bin histogram passes chi-square (p > 0.001) and every bin is within 6 % (2.8 sampling sigmas); the
    # Euler step of the same length is more than 10 % off in some tenth of the layer (too many particles
    # near the ground: README, particle core), so the test tells them apart.
    def histogram(integrator):
        met = uniform_met(**case)
        run = released_run(20_000, 0.0, case["h"], 300.0, ctl=0.5, tl_min_vertical=30.0, max_substeps=64,
                           vertical_integrator=integrator)
        for k in range(24):
            run.step_once(met, k * 300.0, 300.0)
        counts, _ = np.histogram(run.z[: run.n], bins=10, range=(0.0, case["h"]))
        expected = run.n / 10
        return ((counts - expected) ** 2 / expected).sum(), counts / expected

    chi2, ratio = histogram("baoab")
    assert chi2 < stats.chi2.ppf(0.999, 9) and np.all(np.abs(ratio - 1.0) < 0.06), ratio
    _, ratio_euler = histogram("euler")
    assert np.abs(ratio_euler - 1.0).max() > 0.1, ratio_euler


def test_puff_spread_in_uniform_wind_matches_the_long_range_compilations():
    # Unresolved mesoscale motions of a 9 km met grid (the default case's), a puff of 4,000 particles at
    # 100 m in a uniform 5 m/s wind over 48 h (neutral boundary layer, 1000 m). sigma_y(t) must be within
    # a factor of 2 of Heffter's (1965) compilation of tracer puffs, sigma_y = 0.5 m/s x t, at 6-48 h,
    # and follow Taylor (1921) for the mesoscale velocity plus the boundary layer's turbulence (5 %).
    sigma_m, t_m = mesoscale.unresolved_velocity_sigma(9e3), mesoscale.unresolved_time_scale(9e3)
    dt = 300.0
    met = uniform_met(**NEUTRAL, u=5.0, duration=2e5)
    run = released_run(4000, 100.0, 100.0, dt, ctl=0.5, half=4e6, scheme="similarity",
                       mesoscale_sigma_m_s=sigma_m, mesoscale_time_scale_s=t_m, tl_min_vertical=30.0)
    spread = {}
    for k in range(int(48 * 3600 / dt)):
        run.step_once(met, k * dt, dt)
        spread[(k + 1) * dt] = run.y[: run.n].std()
    for hours in (6, 12, 24, 48):
        t = hours * 3600.0
        heffter = 0.5 * t
        assert 0.5 < spread[t] / heffter < 2.0, (hours, spread[t], heffter)
        meso = mesoscale.taylor_spread(sigma_m, t_m, t)
        assert spread[t] == pytest.approx(meso, rel=0.08), (hours, spread[t], meso)


def taylor_variance(sigma, tl, t):
    """Taylor (1921): sigma_y^2 = 2 sigma_v^2 T_L [t - T_L (1 - exp(-t / T_L))]."""
    return 2.0 * sigma**2 * tl * (t - tl * (1.0 - np.exp(-t / tl)))


@pytest.fixture(scope="module")
def convective_cloud():
    """40,000 particles from a point at 500 m in a convective boundary layer with a 5 m/s wind along x."""
    dt = 20.0
    met = uniform_met(**UNSTABLE, u=5.0)
    # ctl = 0.05: the sub-step at which the well-mixed test passes (at 0.1 the lowest 100 m holds ~10 %
    # too many particles, the size of the tolerance below, so the check would test the sample, not the model)
    run = released_run(40_000, 500.0, 500.0, dt, ctl=0.05, half=1e5)
    spread = {}
    for k in range(180):
        run.step_once(met, k * dt, dt)
        spread[(k + 1) * dt] = run.y[: run.n].var()
    return run, spread


def test_cloud_spread_follows_taylor(convective_cloud):
    # Hanna (1982) unstable: sigma_v = 0.01 + u* (12 - 0.5 h/L)^(1/3), T_Lv = 0.15 h / sigma_v, both
    # independent of height, so the horizontal spread is Taylor's; within 3 % from t = 5 dt (the
    # right-Riemann displacement errs by 1.3 % at t = 5 dt), sampling error ~0.7 %.
    _, spread = convective_cloud
    sigma_v = 0.01 + 0.4 * (12.0 + 0.5 * H / 20.0) ** (1.0 / 3.0)
    tl = 0.15 * H / sigma_v
    for t in (100.0, 300.0, 1000.0, 3600.0):
        assert spread[t] == pytest.approx(taylor_variance(sigma_v, tl, t), rel=0.03), t


def test_ground_level_concentration_matches_mixed_layer_gaussian_plume(convective_cloud):
    # After 3600 s (~7 h/w*) the plume is vertically well mixed, so the steady ground-level concentration
    # at x = U t is the mixed-layer Gaussian plume C = Q / (U h sqrt(2 pi) sigma_y) exp(-y^2 / (2 sigma_y^2))
    # with sigma_y from Taylor. By superposition, C/Q = p(y, z) / U with p the particle density of the
    # puff in the (y, z) plane. Compared in the box |y| < sigma_y / 2, z < 100 m: within 10 %.
    run, _ = convective_cloud
    sigma_v = 0.01 + 0.4 * (12.0 + 0.5 * H / 20.0) ** (1.0 / 3.0)
    sigma_y = np.sqrt(taylor_variance(sigma_v, 0.15 * H / sigma_v, 3600.0))
    y, z = run.y[: run.n], run.z[: run.n]
    a, depth = 0.5 * sigma_y, 100.0
    density = np.count_nonzero((np.abs(y) < a) & (z < depth)) / (run.n * 2.0 * a * depth)
    gaussian_box_mean = special.erf(a / (np.sqrt(2.0) * sigma_y)) / (2.0 * a)
    assert density == pytest.approx(gaussian_box_mean / H, rel=0.10)


def test_prairie_grass_scores_the_models_default_vertical_integrator():
    from airshed.config import LagrangianConfig
    from airshed.validation import prairie_grass_lagrangian as pgl

    assert pgl.VERTICAL_INTEGRATOR == LagrangianConfig.model_fields["vertical_integrator"].default


@pytest.mark.parametrize("scheme", ["hanna", "similarity"])
def test_prairie_grass_hook_returns_arc_statistics(monkeypatch, scheme):
    from airshed.validation import prairie_grass_lagrangian as pgl

    monkeypatch.setattr(pgl, "PARTICLES", 2000)
    arcs = pd.DataFrame(
        {"Q_g_s": 90.0, "release_height_m": 0.46, "sampler_height_m": 1.5, "distance_m": [50, 100, 200]}
    )
    met = pd.Series({"L_m": 30.0, "ustar_m_s": 0.3, "h_i_m": -9.0, "wind_speed_m_s": 5.0})
    out = pgl.simulate_run(99, arcs, met, turbulence=scheme)
    assert list(out.columns) == ["distance_m", "cmax_mod", "cy_mod"]
    assert list(out["distance_m"]) == [50, 100, 200]
    assert np.all(out["cmax_mod"] > 0) and np.all(np.diff(out["cmax_mod"]) < 0)
    # CY >= Cmax * (arc width of one bin): the integral over the arc exceeds its largest bin
    assert np.all(out["cy_mod"] > out["cmax_mod"] * np.radians(pgl.ANGLE_BIN_DEG) * out["distance_m"])
