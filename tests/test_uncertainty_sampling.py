"""Particle sampling classes (batch means): no change to the run, and standard errors that are right.

Independent particle classes (FLEXPART's ``nclassunc``) ride on the particles' tags: sources release whole
bundles of one particle per class, so every class is a replica of the run with 1/n of its particles, and
the classes give the Monte Carlo standard error of every period mean. One class is the run without
classes bit for bit; the error must agree with the spread of the same run under independent seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from conftest import builtin_case_config

from airshed.config import parse_config
from airshed.errors import AirshedInputError, ConfigError
from airshed.model.release import PARTICLE_INDEX_BITS, ParticleCredit, particle_class, particle_ids
from airshed.runner import run_study

HOURS = 3
NO_DOCUMENTS = {"maps": False, "report": False}


def _run(tmp_path, name: str, seed: int = 7, **uncertainty) -> xr.Dataset:
    cfg = builtin_case_config(tmp_path, "lagrangian", hours=HOURS, run={"seed": seed}, outputs=NO_DOCUMENTS,
                              **({"uncertainty": uncertainty} if uncertainty else {}))
    with xr.open_dataset(run_study(cfg, output=tmp_path / f"{name}.nc", progress=False)) as ds:
        return ds.load()


def test_classes_take_every_nth_particle_of_each_source_over_the_run():
    credit = ParticleCredit(1)
    share = np.array([0.3, 2.0, 7.5, 23.0])
    counts = np.zeros((4, 10), dtype=int)
    for period in range(30):
        n, _mass = credit.allocate(np.arange(4), share, np.ones((4, 1)))
        before = credit.released[:4] - n
        source = np.repeat(np.arange(4), n)
        index = np.concatenate([np.arange(k) for k in n])
        ids = particle_ids(period, source, index)
        cls = particle_class(ids, before[source] + index, 10)
        assert cls.min() >= 0 and cls.max() <= 9
        np.add.at(counts, (source, cls), 1)
    # over the run every class holds every 10th particle of each source: counts differ by at most one
    assert np.all(counts.max(axis=1) - counts.min(axis=1) <= 1)
    np.testing.assert_array_equal(counts.sum(axis=1), credit.released[:4])
    # the sources start at different classes (a hash of the source id)
    first = particle_class(particle_ids(0, np.arange(50), np.zeros(50, np.int64)), np.zeros(50), 10)
    assert len(set(first.tolist())) > 5
    assert np.all(particle_class(ids, before[source] + index, 1) == 0)
    assert PARTICLE_INDEX_BITS > 0
    with pytest.raises(AirshedInputError, match="at least 1 class"):
        particle_class(ids, index, 0)


def test_config_checks_of_particle_classes(tmp_path):
    with pytest.raises(ConfigError, match="particle_classes"):
        builtin_case_config(tmp_path, "plume", uncertainty={"particle_classes": 4})
    with pytest.raises(ConfigError, match="particle_classes"):
        builtin_case_config(tmp_path, "lagrangian", uncertainty={"particle_classes": 0})
    cfg = builtin_case_config(tmp_path, "lagrangian",
                              uncertainty={"particle_classes": 4, "sources": ["inventory"]})
    assert cfg.uncertainty.sampling_classes == 1  # 'sampling' not selected: no classes
    again = parse_config(cfg.model_dump(mode="json"), config_dir=tmp_path)
    assert again.uncertainty.particle_classes == 4


def test_one_class_is_bit_identical_and_classes_move_the_same_particles(tmp_path):
    plain = _run(tmp_path, "plain")
    one = _run(tmp_path, "one", particle_classes=1)
    for name in ("source_receptor", "contribution", "concentration", "receptor_contribution"):
        np.testing.assert_array_equal(one[name].values, plain[name].values, err_msg=name)
    assert "source_receptor_standard_error" not in one
    ten = _run(tmp_path, "ten", particle_classes=10, sources=["sampling"])
    # the same particles: the classes' parts add up to the run's values (to rounding of the sum)
    scale = float(plain["source_receptor"].max())
    np.testing.assert_allclose(ten["source_receptor"].values, plain["source_receptor"].values,
                               rtol=1e-12, atol=1e-13 * scale)
    assert ten.attrs["sampling_classes"] == 10
    for name in ("source_receptor_standard_error", "transboundary_share_standard_error",
                 "source_share_standard_error", "contribution_standard_error",
                 "pm25_source_receptor_standard_error"):
        assert np.all(np.nan_to_num(ten[name].values) >= 0.0), name
    # where a source region causes nothing at a receptor, its error is zero
    zero = plain["source_receptor"].values == 0.0
    assert np.all(ten["source_receptor_standard_error"].values[zero] == 0.0)


SEEDS = 24
CLASSES = 10
#: The batch-means and jackknife errors may overstate the spread (a systematic subsample of a release that is
#: stratified in time, module doc of airshed.model.release, varies more than the whole run does); they must
#: not overstate the standard error by more than 1.7x (variance ratio 0.35), nor understate it.
OVERSTATEMENT_FLOOR = 0.35


def test_batch_means_error_agrees_with_the_spread_of_independent_seeds(tmp_path):
    """The classes' standard error vs the standard deviation over SEEDS runs with other seeds.

    Per element, var_seeds / mean(SE^2) would have expectation 1 for independent classes, with a relative
    spread of about sqrt(2 / (SEEDS - 1) + 2 / (SEEDS (CLASSES - 1))); pooled over n elements its mean may
    exceed 1 by three times that over sqrt(n) (elements are not independent, so the bound is loose rather
    than tight). It comes out below 1: measured with 24 seeds (6 Dec 2026, before c6249a4 made the
    unresolved mesoscale motions the default, so without them) 0.51 for the source-receptor
    entries above 1 % and 0.67 for the transboundary shares, alike with the Euler and the splitting
    integrator and with and without free vertical diffusion (0.52 / 0.67 with the former defaults), so
    the error is on the safe side; with 6 seeds, as this test had until then, the mean of 14 correlated
    ratios read 0.47-0.50 and the two-sided bound (1 +- 0.53) passed or failed by the draw.
    """
    runs = [_run(tmp_path, f"seed{k}", seed=100 + k, particle_classes=CLASSES, sources=["sampling"])
            for k in range(SEEDS)]
    sr = np.stack([r["source_receptor"].sel(species="PM2.5").values for r in runs])
    se = np.stack([r["source_receptor_standard_error"].sel(species="PM2.5").values for r in runs])
    mean = sr.mean(axis=0)
    # elements that matter: above 1 % of their receptor's total
    big = mean > 0.01 * mean.sum(axis=1, keepdims=True)
    ratio = sr.var(axis=0, ddof=1)[big] / (se**2).mean(axis=0)[big]
    spread = np.sqrt(2 / (SEEDS - 1) + 2 / (SEEDS * (CLASSES - 1)))
    assert big.sum() >= 10
    assert OVERSTATEMENT_FLOOR < ratio.mean() < 1.0 + 3 * spread / np.sqrt(big.sum()), (
        ratio.mean(), big.sum())
    # the transboundary share's jackknife error likewise
    share = np.stack([r["transboundary_share"].sel(species="PM2.5").values for r in runs])
    share_se = np.stack([r["transboundary_share_standard_error"].sel(species="PM2.5").values for r in runs])
    ok = (np.isfinite(share) & np.isfinite(share_se) & (share_se > 0)).all(axis=0)
    share_ratio = share.var(axis=0, ddof=1)[ok] / (share_se**2).mean(axis=0)[ok]
    assert OVERSTATEMENT_FLOOR < share_ratio.mean() < 1.0 + 3 * spread / np.sqrt(ok.sum()), (
        share_ratio.mean(), ok.sum())
    # and the particle-number statement follows from the worst share's coefficient of variation
    a = runs[0].attrs
    assert a["sampling_particles_per_hour_for_cv"] == pytest.approx(
        4000 * (a["sampling_worst_share_cv"] / 0.05) ** 2, rel=1e-9)
