"""Inventory uncertainty: lognormal factors, members by re-weighting, the run-file ensemble, the twin test.

The small case of test_zero_out.py (both cores, 6 hours, province regions) provides the runs: members by
re-weighting its stored tagged contributions must equal full reruns with the same emission factors, and
the synthetic-twin test checks that the ensemble's 90 % intervals cover a "true" world drawn from the
stated distribution as often as they promise.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import xarray as xr
from test_zero_out import small_config, small_run
from typer.testing import CliRunner

from airshed.cli import app
from airshed.config import parse_config
from airshed.errors import ConfigError, DataError
from airshed.physics.mechanism import EMITTED_SPECIES
from airshed.scenarios import evaluate_scenarios
from airshed.uncertainty.ensemble import (
    ENSEMBLE_VARIABLES,
    InventoryEnsemble,
    add_to_run_file,
    inventory_ensemble,
)
from airshed.uncertainty.inventory import Z95, read_inventory_uncertainty, sample_factors
from airshed.uncertainty.members import (
    TaggedRun,
    draw_factors,
    factors_as_scenario,
    inventory_members,
    member_run_tables,
)
from airshed.uncertainty.statistics import ensemble_quantiles

SECTORS = ("power", "industry", "residential", "transport", "agriculture", "other")


# --- the lognormal factors ---------------------------------------------------------------------------
def test_builtin_intervals_are_zhao_2011_and_the_two_piece_lognormal_reproduces_them():
    table = read_inventory_uncertainty("builtin")
    published = {"SO2": (-14, 13), "NOx": (-13, 37), "PM2.5": (-17, 54)}
    for species, (lower, upper) in published.items():
        for sector in ("all", *SECTORS):  # no per-sector rows: every sector takes the national interval
            lo, hi = table.interval(sector, species)
            assert lo == pytest.approx(1 + lower / 100, rel=1e-12)
            assert hi == pytest.approx(1 + upper / 100, rel=1e-12)
    assert table.interval("power", "NH3") == (1.0, 1.0)  # not covered: exact
    # PM2.5: the central estimate is the median; log-sd ln(1/0.83) / 1.96 = 0.0951 below it and
    # ln(1.54) / 1.96 = 0.2203 above it
    k, e = table.sectors.index("power"), EMITTED_SPECIES.index("PM2.5")
    assert table.quantile(0.5)[k, e] == 1.0
    assert table.sigma_lower[k, e] == pytest.approx(0.0950679, rel=1e-6)
    assert table.sigma_upper[k, e] == pytest.approx(0.2203012, rel=1e-6)
    assert Z95 == pytest.approx(1.959964, abs=1e-6)
    # the sampled factors have the published percentiles and the median 1 (200,000 draws: a 2.5 % quantile
    # is good to ~0.1 %, the median to ~0.05 %)
    f = sample_factors(table.for_sectors(["power"]), 1, 200_000, seed=3)[:, 0, 0]
    for species, (lower, upper) in published.items():
        p = np.quantile(f[:, EMITTED_SPECIES.index(species)], [0.025, 0.5, 0.975])
        np.testing.assert_allclose(p, [1 + lower / 100, 1.0, 1 + upper / 100], rtol=4e-3)
        # half the members lie below the central estimate
        assert abs(np.mean(f[:, EMITTED_SPECIES.index(species)] < 1.0) - 0.5) < 0.005
    assert np.all(f[:, EMITTED_SPECIES.index("NMVOC")] == 1.0)
    # the mean of a right-skewed factor lies above its median: E f = (exp(s_l^2/2) Phi(-s_l)
    # + exp(s_u^2/2) Phi(s_u)), 1.0513 for PM2.5
    from scipy.stats import norm

    s_l, s_u = table.sigma_lower[k, e], table.sigma_upper[k, e]
    mean = np.exp(s_l**2 / 2) * norm.cdf(-s_l) + np.exp(s_u**2 / 2) * norm.cdf(s_u)
    assert f[:, e].mean() == pytest.approx(mean, rel=2e-3)


def test_sector_rows_override_all_and_bad_tables_name_the_row(tmp_path):
    good = tmp_path / "u.csv"
    good.write_text("# test\nsector,species,lower_percent,upper_percent\nall,SO2,-10,10\npower,SO2,-5,5\n")
    table = read_inventory_uncertainty(good)
    assert table.interval("power", "SO2") == pytest.approx((0.95, 1.05))
    assert table.interval("industry", "SO2") == pytest.approx((0.90, 1.10))
    cases = [
        ("sector,species,lower_percent\nall,SO2,-10\n", "missing column(s) upper_percent"),
        ("sector,species,lower_percent,upper_percent\nsteel,SO2,-10,10\n", "row 1: unknown sector 'steel'"),
        ("sector,species,lower_percent,upper_percent\nall,CO,-10,10\n", "row 1: unknown species 'CO'"),
        ("sector,species,lower_percent,upper_percent\nall,SO2,-100,10\n", "expected -100 < lower_percent"),
        ("sector,species,lower_percent,upper_percent\nall,SO2,10,-10\n", "expected -100 < lower_percent"),
        ("sector,species,lower_percent,upper_percent\nall,SO2,5,10\n", "around the central estimate"),
        ("sector,species,lower_percent,upper_percent\nall,SO2,-1,1\nall,SO2,-2,2\n", "row 2: sector all and "
         "species SO2 given twice"),
    ]
    for text, message in cases:
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
            read_inventory_uncertainty(bad)


def test_correlation_across_regions_and_reproducible_members():
    table = read_inventory_uncertainty().for_sectors(["power", "industry"])
    one = sample_factors(table, 4, 20_000, seed=9, correlation=1.0)
    assert np.all(one == one[:, :1])  # one factor per sector and species everywhere
    for rho in (0.0, 0.6):
        logs = np.log(sample_factors(table, 4, 20_000, seed=9, correlation=rho))[:, :, 0, 0]
        r = np.corrcoef(logs[:, 0], logs[:, 1])[0, 1]
        assert abs(r - rho) < 0.03, (rho, r)
        # the margins do not depend on the correlation: each half of ln f has its own log-sd
        for r in range(4):
            below, above = logs[:, r][logs[:, r] < 0], logs[:, r][logs[:, r] >= 0]
            np.testing.assert_allclose(np.sqrt(np.mean(below**2)), table.sigma_lower[0, 0], rtol=0.03)
            np.testing.assert_allclose(np.sqrt(np.mean(above**2)), table.sigma_upper[0, 0], rtol=0.03)
    # member j does not depend on how many members are drawn; the seed fixes them
    np.testing.assert_array_equal(sample_factors(table, 4, 5, 7, 0.3),
                                  sample_factors(table, 4, 50, 7, 0.3)[:5])
    assert not np.array_equal(sample_factors(table, 4, 5, 7), sample_factors(table, 4, 5, 8))


def test_config_table_checks_and_round_trip(tmp_path):
    run = {"name": "u", "start": "2017-12-01T00:00:00", "end": "2017-12-01T06:00:00", "core": "plume"}
    cfg = parse_config({"run": run, "uncertainty": {"members": 1000, "seed": 4, "correlation": 0.5}})
    assert cfg.uncertainty.members == 1000 and cfg.uncertainty.inventory == "builtin"
    for bad, message in [
        ({"correlation": 1.5}, "`uncertainty.correlation` = 1.5: expected a value less than or equal to 1"),
        ({"members": -1}, "`uncertainty.members` = -1: expected a value greater than or equal to 0"),
        ({"sources": ["weather"]}, "`uncertainty.sources[0]` = \"weather\": expected 'inventory', "
         "'meteorology' or 'sampling'"),
        ({"inventory": "nope.csv"}, "`uncertainty.inventory` = \"nope.csv\": expected 'builtin' or the path"),
        ({"memebrs": 3}, "unknown key `uncertainty.memebrs`; did you mean `uncertainty.members`?"),
        ({"meteorology": {"ensemble": "members"}}, "needs at least two members"),
        ({"meteorology": {"member_paths": [["x*.nc"]]}}, "matches no file"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")
                           .replace("(", r"\(").replace(")", r"\)")):
            parse_config({"run": run, "uncertainty": bad}, config_dir=tmp_path)


# --- members by re-weighting equal full reruns ----------------------------------------------------------
def _rel_max(a: np.ndarray, b: np.ndarray) -> float:
    scale = float(np.abs(b).max())
    assert scale > 0
    return float(np.abs(a - b).max()) / scale


def _true_inventory(run: TaggedRun) -> np.ndarray:
    """The "true" factors (R, K, E) of the twin's first trial: one draw from the stated distribution."""
    table = read_inventory_uncertainty().for_sectors(run.sectors)
    return sample_factors(table, len(run.regions), 1, seed=TRUTH_SEED)[0]


def _full_run(core: str, run: TaggedRun, factors: np.ndarray, name: str = "member"):
    """The small case run in full with emissions ``factors`` times the inventory's (cached per session)."""
    scenario = factors_as_scenario(factors, run.regions, run.sectors, name=name)
    return small_run(core, scenarios=[scenario.model_dump(mode="json")], scenario=name)


TRUTH_SEED = 100_000


@pytest.mark.parametrize("core", ["plume", "lagrangian"])
def test_members_by_reweighting_equal_a_full_rerun_with_the_same_factors(core):
    """1e-9: re-weighting the stored contributions is the model run with the member's emissions."""
    with xr.open_dataset(small_run(core)) as ds:
        run = TaggedRun.from_dataset(ds)
    member = _true_inventory(run)
    assert np.ptp(member) > 0.1  # a genuinely different inventory
    with xr.open_dataset(_full_run(core, run, member)) as full:
        series = full["receptor_concentration"].transpose("time", "receptor_region", "species").values
        sr_full = full["source_receptor"].transpose("receptor_region", "source_region", "species").values
        share_full = full["transboundary_share"].transpose("receptor_region", "species").values
        emitted = full["emission_total"].transpose("source_region", "sector", "emitted_species").values
        pm25_sr = full["pm25_source_receptor"].transpose("receptor_region", "source_region",
                                                         "emitted_species").values
    tables = member_run_tables(run, member)
    assert _rel_max(run.receptor_series(member[None])[0], series) <= 1e-9
    assert _rel_max(run.source_receptor(member[None])[0], sr_full) <= 1e-9
    np.testing.assert_allclose(tables["transboundary_share"].values, share_full, rtol=1e-9, atol=1e-12)
    assert _rel_max(tables["pm25_source_receptor"].values, pm25_sr) <= 1e-9
    np.testing.assert_allclose(tables["emission_total"].values, emitted, rtol=1e-12)
    # correlated members re-weight the same way (one factor per sector and species everywhere)
    shared = draw_factors(run, 1, seed=7, correlation=1.0)[0]
    assert np.all(shared == shared[:1])


def test_inventory_members_api_reads_like_a_run_file():
    """The members API for the cooperation code: each member holds the run-file tables it reads."""
    from airshed.cooperation.runfile import run_tables

    with xr.open_dataset(small_run("plume")) as ds:
        base = run_tables(ds)
        members = list(inventory_members(ds, 4, seed=5))
        again = list(inventory_members(ds, 2, seed=5))
        run = TaggedRun.from_dataset(ds)
    factors = draw_factors(run, 4, seed=5)
    for j, member in enumerate(members):
        tables = run_tables(member)
        assert tables.receptors == base.receptors and tables.sources == base.sources
        np.testing.assert_allclose(tables.pm25_total, tables.source_receptor.sum(axis=(1, 2)), rtol=1e-12)
        np.testing.assert_allclose(tables.emissions, (factors[j] * run.emission_total).sum(axis=1)[
            :, [EMITTED_SPECIES.index(p) for p in tables.precursors]], rtol=1e-12)
    xr.testing.assert_identical(members[1], again[1])
    # factors of 1 give back the run's own tables
    ones = member_run_tables(run, np.ones_like(factors[0]))
    np.testing.assert_allclose(run_tables(ones).source_receptor, base.source_receptor, rtol=1e-12)
    np.testing.assert_allclose(run_tables(ones).pm25_total, base.pm25_total, rtol=1e-12)


# --- the ensemble in the run file ---------------------------------------------------------------------
def test_ensemble_is_added_to_the_run_file_and_replaced_atomically(tmp_path):
    path = tmp_path / "run.nc"
    with xr.open_dataset(small_run("plume")) as ds:
        ds.load().to_netcdf(path)
    size = os.path.getsize(path)
    with xr.open_dataset(path) as ds:
        part = inventory_ensemble(ds, InventoryEnsemble(400, seed=1))
    add_to_run_file(path, part)
    assert os.path.getsize(path) < 2 * size
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
    with xr.open_dataset(path) as ds:
        for name in ENSEMBLE_VARIABLES:
            assert name in ds
        assert list(ds["quantile"].values) == [0.05, 0.5, 0.95]
        share_q = ds["transboundary_share_quantile"].sel(species="PM2.5")
        assert np.all(share_q.sel(quantile=0.05) <= share_q.sel(quantile=0.5))
        assert np.all(share_q.sel(quantile=0.5) <= share_q.sel(quantile=0.95))
        var = ds["transboundary_share_variance"].sel(species="PM2.5")
        assert np.all(var.sel(uncertainty_source="inventory") > 0)
        assert np.all(np.isnan(var.sel(uncertainty_source=["meteorology", "sampling"])))
        assert ds.attrs["uncertainty_members"] == 400
        assert ds.attrs["uncertainty_sources_sampled"] == "inventory"
        series = ds["receptor_concentration_quantile"].sel(quantile=0.5).transpose(*ds[
            "receptor_concentration"].dims)
        assert series.shape == ds["receptor_concentration"].shape
        first = ds["source_receptor_quantile"].values.copy()
        original = ds["concentration"].values.copy()
    # recomputing (another seed, fewer members) replaces the values; the run's own variables are untouched
    with xr.open_dataset(path) as ds:
        part = inventory_ensemble(ds, InventoryEnsemble(50, seed=2))
    add_to_run_file(path, part)
    with xr.open_dataset(path) as ds:
        assert ds.attrs["uncertainty_members"] == 50
        assert not np.array_equal(ds["source_receptor_quantile"].values, first)
        np.testing.assert_array_equal(ds["concentration"].values, original)


def test_quantiles_bracket_the_members_and_follow_the_factor_spread():
    with xr.open_dataset(small_run("plume")) as ds:
        run = TaggedRun.from_dataset(ds)
    factors = draw_factors(run, 2000, seed=11)
    pm = run.species.index("PM2.5_primary")
    sr = run.source_receptor(factors)[..., pm]  # (N, Q, R): primary PM2.5 follows its own factor only
    q = ensemble_quantiles(sr)
    base = run.mean.sum(axis=2)[..., pm]  # (Q, R)
    # one source region's primary PM2.5 in a receptor: a sum over sectors of lognormal factors x fixed
    # contributions; with equal sector factors (correlation within the region is not assumed) its spread
    # is bounded by the factor's own 5-95 % range times the baseline
    table = read_inventory_uncertainty().for_sectors(run.sectors)
    e = EMITTED_SPECIES.index("PM2.5")
    lo, hi = table.quantile(0.05)[0, e], table.quantile(0.95)[0, e]
    big = base > 1e-3 * base.max()
    # 2 %: the sampling error of a 5 % quantile from 2000 members is ~0.8 %
    assert np.all(q[0][big] >= lo * base[big] * 0.98)
    assert np.all(q[2][big] <= hi * base[big] * 1.02)
    assert np.all(q[0] <= q[1]) and np.all(q[1] <= q[2])


# --- the synthetic twin -------------------------------------------------------------------------------
def _single_lognormal(table):
    """The first reading of the intervals: one lognormal through both bounds (median above 1 if skewed)."""
    mu = Z95 * (table.sigma_upper - table.sigma_lower) / 2
    sigma = (table.sigma_upper + table.sigma_lower) / 2

    def draw(n_regions: int, members: int, seed: int) -> np.ndarray:
        K, E = mu.shape
        z = np.random.default_rng(seed).standard_normal((members, 1 + n_regions, K, E))[:, 1:]
        return np.exp(mu + sigma * z)

    return draw


def _coverage(run: TaggedRun, sigma_scale: float = 1.0, trials: int = 120, members: int = 500,
              draw_ensemble=None) -> dict[str, float]:
    """Share of trials whose "true" value lies inside the ensemble's 90 % interval, by kind of quantity.

    The truth is drawn from the stated distribution; the ensemble from it with its spread scaled by
    ``sigma_scale``, or by ``draw_ensemble(n_regions, members, seed)`` (another reading of the same
    intervals). Keys: ``receptor`` (PM2.5 of each receptor region), ``share`` (transboundary shares),
    ``source_receptor`` (every entry) and ``all`` (every pair).
    """
    table = read_inventory_uncertainty().for_sectors(run.sectors)
    narrow = table.scaled(sigma_scale)
    if draw_ensemble is None:
        def draw_ensemble(n_regions, n, seed):
            return sample_factors(narrow, n_regions, n, seed=seed)
    pm = run.species.index("PM2.5")
    Q = len(run.receptors)
    inside = []
    for trial in range(trials):
        truth = sample_factors(table, len(run.regions), 1, seed=TRUTH_SEED + trial)
        ensemble = draw_ensemble(len(run.regions), members, trial)
        for f, keep in ((truth, "truth"), (ensemble, "ensemble")):
            sr = run.source_receptor(f)[..., pm:pm + 1]
            values = np.concatenate([sr.sum(axis=2)[..., 0],  # receptor PM2.5
                                     run.metrics(sr)["transboundary_share"][..., 0],
                                     sr[..., 0].reshape(len(f), -1)], axis=1)
            if keep == "truth":
                true_values = values[0]
            else:
                q = ensemble_quantiles(values)
        inside.append((q[0] <= true_values) & (true_values <= q[2]))
    inside = np.array(inside)
    return {"receptor": float(inside[:, :Q].mean()), "share": float(inside[:, Q:2 * Q].mean()),
            "source_receptor": float(inside[:, 2 * Q:].mean()), "all": float(inside.mean())}


def test_synthetic_twin_intervals_cover_the_truth_as_often_as_they_promise():
    """A "true" inventory drawn from the stated distribution, its world computed by the model: the 90 %
    intervals of the members cover it in 85-95 % of repeated trials (and an ensemble with half the
    spread, or one that reads the skewed intervals as a single lognormal, does not)."""
    core = "plume"
    with xr.open_dataset(small_run(core)) as ds:
        run = TaggedRun.from_dataset(ds)
    # the truth of the first trial computed by the model itself (a full run with the true emissions) is
    # the re-weighted truth the trials use
    truth = _true_inventory(run)
    with xr.open_dataset(_full_run(core, run, truth)) as t:
        modelled = t["source_receptor"].transpose("receptor_region", "source_region", "species").values
    assert _rel_max(run.source_receptor(truth[None])[0], modelled) <= 1e-9

    coverage = _coverage(run)
    for kind, value in coverage.items():
        assert 0.85 <= value <= 0.95, (kind, coverage)
    assert _coverage(run, sigma_scale=0.5, trials=60)["all"] < 0.80
    # a single lognormal through both bounds has the right 95 % range but its median 13 % high for PM2.5:
    # it misses regional totals (sums of many factors, whose spread shrinks but whose bias does not)
    table = read_inventory_uncertainty().for_sectors(run.sectors)
    shifted = _coverage(run, trials=60, draw_ensemble=_single_lognormal(table))
    assert shifted["receptor"] < 0.80, shifted


# --- scenarios over the ensemble ---------------------------------------------------------------------
SCENARIO = [{"name": "cut", "changes": [
    {"regions": ["Hebei"], "change_percent": -30.0},
    {"regions": ["Beijing"], "species": ["NOx"], "change_percent": -20.0},
]}]


def test_scenario_ensemble_brackets_the_baseline_evaluation_and_matches_member_reweighting():
    from airshed.uncertainty.scenarios import scenario_ensemble

    cfg = small_config("plume", SCENARIO)
    with xr.open_dataset(small_run("plume")) as ds:
        point = evaluate_scenarios(ds, cfg.scenarios)
        ens = scenario_ensemble(ds, cfg.scenarios, InventoryEnsemble(300, seed=3))
        run = TaggedRun.from_dataset(ds)
    change = (point["scenario_receptor_concentration"] - point["baseline_receptor_concentration"]).sel(
        scenario="cut", species="PM2.5")
    q = ens["scenario_change_quantile"].sel(scenario="cut", species="PM2.5")
    assert np.all(q.sel(quantile=0.05) <= q.sel(quantile=0.95))
    # a member's change is the scenario evaluated on the member's inventory: check member 0 by hand
    member = ens["scenario_change_members"].sel(scenario="cut", species="PM2.5").isel(member=0)
    f0 = draw_factors(run, 300, seed=3)[0]
    hebei = run.regions.index("Hebei")
    cut = np.ones_like(f0)
    cut[hebei] *= 0.7
    cut[run.regions.index("Beijing"), :, EMITTED_SPECIES.index("NOx")] *= 0.8
    by_hand = (run.source_receptor((f0 * cut)[None]) - run.source_receptor(f0[None]))[0].sum(axis=1)
    np.testing.assert_allclose(member.values, by_hand[:, run.species.index("PM2.5")], rtol=1e-9)
    # with factors of one the ensemble collapses on the point evaluation
    assert np.all(np.isfinite(change.values))


def test_scenario_command_reports_median_and_range(tmp_path):
    from airshed.config import dump_config

    cfg = small_config("plume", SCENARIO)
    cfg = cfg.model_copy(update={"uncertainty": cfg.uncertainty.model_copy(update={"members": 200})})
    config = tmp_path / "s.toml"
    config.write_text(dump_config(cfg), encoding="utf-8")
    result = CliRunner().invoke(app, ["scenario", str(config), str(small_run("plume")), "--json"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    for r in rows:
        assert r["change_ug_m3_p05"] <= r["change_ug_m3_p50"] <= r["change_ug_m3_p95"]
        assert r["inventory_members"] == 200
    table = CliRunner().invoke(app, ["scenario", str(config), str(small_run("plume"))],
                               env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "change 5-95 %" in table.stdout


# --- the report and the command line ------------------------------------------------------------------
def test_members_option_has_the_config_bound(tmp_path):
    from airshed.config import MAX_INVENTORY_MEMBERS

    # refused by the option itself (exit 2), before any member array is allocated (was a MemoryError)
    for command in ("uncertainty", "cooperate"):
        result = CliRunner().invoke(app, [command, str(tmp_path / "run.nc"), "--members", "100000000"],
                                    env={"COLUMNS": "200"})
        assert result.exit_code == 2, (command, result.output)
        assert "--members" in result.output and str(MAX_INVENTORY_MEMBERS) in result.output


def test_report_and_console_show_the_transboundary_share_with_its_interval(tmp_path):
    from runfile_fixture import synthetic_run_dataset

    from airshed.outputs.report import build_report_html
    from airshed.outputs.tables import transboundary_table

    ds = synthetic_run_dataset(27)
    path = tmp_path / "synthetic.nc"
    ds.to_netcdf(path)
    result = CliRunner().invoke(app, ["uncertainty", str(path), "--members", "300", "--seed", "3"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "added 300 inventory members" in result.stdout and "5-95 %" in result.stdout
    with xr.open_dataset(path) as run:
        assert run.attrs["uncertainty_seed"] == 3
        share = run["transboundary_share"].sel(species="PM2.5", receptor_region="Beijing").item()
        q = run["transboundary_share_quantile"].sel(species="PM2.5", receptor_region="Beijing").values
        html = build_report_html(run, species=("PM2.5",))
        console = transboundary_table(run)
    assert q[0] < q[2]
    headline = (f"<b>Beijing</b>: {100 * share:.1f} % of its PM2.5 came from other regions (90 % interval "
                f"{100 * q[0]:.1f}–{100 * q[2]:.1f} %")
    assert headline in html
    assert "90 % interval (%)" in html and "over 300 members" in html
    assert console.caption.endswith("from the inventory's uncertainty over 300 members")
    # a run file without the ensemble: no interval, and a file without a config is refused
    assert "5-95 %" not in [c.header for c in transboundary_table(ds).columns]
    bare = tmp_path / "bare.nc"
    no_config = ds.copy()
    no_config.attrs = {}
    no_config.to_netcdf(bare)
    refused = CliRunner().invoke(app, ["uncertainty", str(bare)])
    assert refused.exit_code == 2 and "holds no readable airshed_config" in refused.stderr


def test_run_adds_the_ensemble_when_the_config_asks(tmp_path):
    """``airshed run`` with members > 0 calls this on its finished file (run.py, before the report)."""
    from airshed.uncertainty.ensemble import add_inventory_ensemble

    path = tmp_path / "run.nc"
    with xr.open_dataset(small_run("plume")) as ds:
        ds.load().to_netcdf(path)
    cfg = small_config("plume")
    uncertainty = cfg.uncertainty.model_copy(update={"members": 64, "seed": 9})
    cfg = cfg.model_copy(update={"uncertainty": uncertainty})
    part = add_inventory_ensemble(path, cfg)
    with xr.open_dataset(path) as ds:
        xr.testing.assert_allclose(ds["source_receptor_quantile"], part["source_receptor_quantile"])
        assert ds.attrs["uncertainty_members"] == 64 and ds.attrs["uncertainty_seed"] == 9


def test_meteorology_members_and_sampling_plug_into_the_same_statistics():
    """Two "meteorology members" (the run and a copy with its transport changed) x inventory members."""
    from airshed.uncertainty.ensemble import ensemble_statistics

    with xr.open_dataset(small_run("plume")) as ds:
        base = ds.load()
    other = base.copy(deep=True)
    rng = np.random.default_rng(0)
    # another transport: every tag's receptor contributions scaled by a smooth factor per receptor region
    scale = rng.uniform(0.7, 1.3, other.sizes["receptor_region"])
    other["receptor_contribution"] = other["receptor_contribution"] * xr.DataArray(
        scale, dims="receptor_region")
    ens = InventoryEnsemble(300, seed=4)
    both = ensemble_statistics([base, other], ens)
    alone = [inventory_ensemble(d, ens) for d in (base, other)]
    var = both["source_receptor_variance"].sel(species="PM2.5")
    assert both.attrs["uncertainty_sources_sampled"] == "inventory, meteorology"
    assert both.attrs["uncertainty_meteorology_members"] == 2
    # inventory part: the mean of the members' inventory variances; meteorology part: the variance of
    # their inventory means (law of total variance)
    inv = [a["source_receptor_variance"].sel(species="PM2.5", uncertainty_source="inventory") for a in alone]
    xr.testing.assert_allclose(var.sel(uncertainty_source="inventory"), (inv[0] + inv[1]) / 2)
    run = [TaggedRun.from_dataset(d) for d in (base, other)]
    factors = draw_factors(run[0], 300, seed=4)
    pm = run[0].species.index("PM2.5")
    means = np.stack([r.source_receptor(factors)[..., pm].mean(axis=0) for r in run])
    np.testing.assert_allclose(var.sel(uncertainty_source="meteorology").values, means.var(axis=0, ddof=1),
                               rtol=1e-9, atol=1e-15)
    assert np.all(np.isnan(var.sel(uncertainty_source="sampling")))
    # sampling variances (from particle classes) plug in per meteorology member
    q, r, s = run[0].mean.shape[0], run[0].mean.shape[1], run[0].mean.shape[3]
    sampling = [{"source_receptor": np.full((q, r, s), 0.01), "transboundary_share": np.full((q, s), 1e-4)}
                for _ in range(2)]
    with_noise = ensemble_statistics([base, other], ens, sampling=sampling)
    sv = with_noise["source_receptor_variance"].sel(species="PM2.5")
    np.testing.assert_allclose(sv.sel(uncertainty_source="sampling").values, 0.01)
    np.testing.assert_allclose(sv.sel(uncertainty_source="meteorology").values,
                               var.sel(uncertainty_source="meteorology").values - 0.01, rtol=1e-9, atol=1e-12)
    assert with_noise.attrs["uncertainty_sources_sampled"] == "inventory, meteorology, sampling"
