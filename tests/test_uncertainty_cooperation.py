"""Cost sharing over the inventory members: Shapley shares and transfers with ranges, payers' ranking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr
from test_zero_out import small_run
from typer.testing import CliRunner

from airshed.cli import app
from airshed.cooperation import cooperate, load_policy
from airshed.uncertainty.cooperation import cooperation_ensemble
from airshed.uncertainty.ensemble import InventoryEnsemble
from airshed.uncertainty.members import TaggedRun, draw_factors, member_run_tables

POLICY = Path(__file__).resolve().parents[1] / "examples" / "policy_jjj.toml"


def _transfers(result) -> np.ndarray:
    d = result.to_json_dict()
    return np.array([d["transfers"][p] for p in d["players"]])


def test_each_member_is_the_game_on_its_reweighted_tables_and_ranges_bracket_them():
    with xr.open_dataset(small_run("plume")) as ds:
        run = ds.load()
    policy = load_policy(POLICY)
    ens = cooperation_ensemble(run, policy, InventoryEnsemble(30, seed=2))
    assert ens.shapley_yuan.shape == (30, len(ens.players)) and ens.transfers_rule == "chander_tulkens"
    np.testing.assert_allclose(ens.run_transfers_yuan, _transfers(cooperate(run, policy)), rtol=1e-12)
    tagged = TaggedRun.from_dataset(run)
    factors = draw_factors(tagged, 30, seed=2)
    member = cooperate(member_run_tables(tagged, factors[7]), policy)
    np.testing.assert_allclose(ens.transfers_yuan[7], _transfers(member), rtol=1e-12)
    q = ens.transfer_quantiles
    assert np.all(q[0] <= q[1]) and np.all(q[1] <= q[2]) and np.any(q[2] > q[0])
    # the members' transfers balance (what one pays another receives), as the run's do
    scale = np.abs(ens.transfers_yuan).max()
    np.testing.assert_allclose(ens.transfers_yuan.sum(axis=1), 0.0, atol=1e-6 * scale)
    # the share of members with the run's ranking of payers, recomputed by hand
    order = np.argsort(ens.run_transfers_yuan, kind="stable")
    same = np.mean([np.array_equal(np.argsort(t, kind="stable"), order) for t in ens.transfers_yuan])
    assert ens.same_payer_ranking == same and 0.0 < same <= 1.0
    assert np.all((ens.same_sign >= 0.0) & (ens.same_sign <= 1.0))


def test_cooperate_command_reports_ranges_and_the_ranking(tmp_path):
    result = CliRunner().invoke(app, ["cooperate", str(small_run("plume")), "--policy", str(POLICY),
                                      "--members", "20", "--json", "-"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["ensemble"]
    assert data["inventory_members"] == 20 and 0.0 <= data["same_payer_ranking_share"] <= 1.0
    beijing = data["transfers_yuan"]["Beijing"]
    assert beijing["q05"] <= beijing["q50"] <= beijing["q95"]
    table = CliRunner().invoke(app, ["cooperate", str(small_run("plume")), "--policy", str(POLICY),
                                     "--members", "20"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "ranking of payers is the run's in" in table.stdout and "Beijing" in table.stdout


def test_figures_show_the_share_intervals_and_hatch_an_uncertain_net_export():
    from matplotlib.collections import PatchCollection

    from airshed.outputs.maps import plot_net_export_map
    from airshed.outputs.plots import figure_specs, plot_transboundary_share_intervals
    from airshed.uncertainty.ensemble import inventory_ensemble

    with xr.open_dataset(small_run("plume")) as ds:
        run = ds.load()
    part = inventory_ensemble(run, InventoryEnsemble(50, seed=1))
    for name in ("transboundary_share_quantile", "net_export_exposure_quantile"):
        run[name] = part[name]
    stems = [s.stem for s in figure_specs(run)]
    assert "transboundary_share_interval_PM25" in stems and "net_export_PM25" in stems
    fig = plot_transboundary_share_intervals(run)
    assert len(fig.axes[0].containers) >= 2  # the bars and the error bars
    # make one region's net export straddle zero: it alone is hatched
    q = run["net_export_exposure_quantile"]
    k = int(np.argmin(np.abs(q.sel(species="PM2.5", quantile=0.5).values)))
    q.loc[{"species": "PM2.5", "quantile": 0.05}] = q.sel(species="PM2.5", quantile=0.05).values - 1e12
    q.loc[{"species": "PM2.5", "quantile": 0.95}] = q.sel(species="PM2.5", quantile=0.95).values + 1e12
    lo, hi = q.sel(species="PM2.5", quantile=0.05).values, q.sel(species="PM2.5", quantile=0.95).values
    assert lo[k] < 0 < hi[k]
    fig = plot_net_export_map(run)
    hatched = [c for c in fig.axes[0].collections if isinstance(c, PatchCollection) and c.get_hatch()]
    assert len(hatched) == 1 and len(hatched[0].get_paths()) == int(np.sum((lo < 0) & (hi > 0)))
