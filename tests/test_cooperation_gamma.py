"""The gamma game of Chander and Tulkens: closed forms, the core, and the solver against HiGHS' QP."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from cooperation_runs import PRECURSORS, linear_curve, make_run
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from airshed.cooperation import cooperate, render_tables
from airshed.cooperation.costs import CurveArrays
from airshed.cooperation.games import core_check, shapley_exact
from airshed.cooperation.gamma import (
    GammaGame,
    all_coalition_values,
    chander_tulkens,
    grand_coalition_abatement,
    nash_abatement,
    outcome,
    qp_coalition_value,
)
from airshed.cooperation.policy import CostCurve, policy_from_dict
from airshed.errors import ConfigError


# ------------------------------------------------------------------------- the paper's model, by hand
def uniform_game(pi, gamma_, k=10.0, c0=50.0) -> GammaGame:
    """Three regions, one pollutant mixed uniformly: abating all of j's SO2 lowers PM2.5 everywhere by k.

    Abatement costs are quadratic, ``gamma_j a^2 / 2`` (marginal cost ``gamma_j a``: ``E = gamma_j`` t at
    a marginal cost of ``a`` yuan per tonne), damages linear, ``pi_i c_i``: the linear-quadratic model of
    Chander & Tulkens (1997).
    """
    n = len(pi)
    unit = CostCurve(max_fraction=1.0, marginal_cost=[(0.0, 0.0), (1.0, 1.0)])
    curves = tuple(
        tuple(CurveArrays.from_curve(unit, g) if p == 0 else None for p in range(len(PRECURSORS)))
        for g in gamma_
    )
    transfer = np.zeros((n, n, len(PRECURSORS)))
    transfer[:, :, 0] = k
    pi = np.asarray(pi, dtype=float)
    return GammaGame(
        players=["A", "B", "C"][:n],
        precursors=list(PRECURSORS),
        curves=curves,
        transfer=transfer,
        baseline_ugm3=np.full(n, c0),
        baseline_damage_yuan=pi * c0,
        marginal_damage=pi,
        receptor_index=np.arange(n),
    )


PI = np.array([1e6, 2e6, 3e6])  # yuan per ug m-3
GAMMA = np.array([2e8, 3e8, 6e8])  # yuan (cost of abating everything, times 2)
K, C0 = 10.0, 50.0


def closed_form_value(mask: int) -> float:
    """``v(S)`` by hand: members abate ``a_j = pi_S k / gamma_j``, outsiders ``a_j = pi_j k / gamma_j``."""
    members = [j for j in range(3) if mask >> j & 1]
    pi_s = PI[members].sum()
    a = np.array([(pi_s if j in members else PI[j]) * K / GAMMA[j] for j in range(3)])
    reduction = K * a.sum()
    return float(sum(GAMMA[i] * a[i] ** 2 / 2 + PI[i] * (C0 - reduction) for i in members))


def test_three_region_linear_quadratic_nash_optimum_and_chander_tulkens_closed_form():
    game = uniform_game(PI, GAMMA, K, C0)
    nash_a, best_a = nash_abatement(game), grand_coalition_abatement(game)
    # Nash: g_j a_j = pi_j k; optimum: g_j a_j = (sum pi) k  -> (0.05, 1/15, 0.05) and (0.3, 0.2, 0.1)
    np.testing.assert_allclose(nash_a[:, 0], PI * K / GAMMA, rtol=1e-14)
    np.testing.assert_allclose(best_a[:, 0], PI.sum() * K / GAMMA, rtol=1e-14)
    np.testing.assert_array_equal(nash_a[:, 1:], 0.0)
    nash, best = outcome(game, nash_a), outcome(game, best_a)
    nash_cost = np.array([closed_form_value(1 << j) for j in range(3)])
    np.testing.assert_allclose(nash.total_cost_yuan, nash_cost, rtol=1e-13)
    assert best.total_cost_yuan.sum() == pytest.approx(closed_form_value(7), rel=1e-13)
    # surplus of cooperation: sum_j k^2 (Pi - pi_j)^2 / (2 g_j) = 100 (62,500 + 26,666.67 + 7,500)
    surplus = (K**2 * (PI.sum() - PI) ** 2 / (2 * GAMMA)).sum()
    assert surplus == pytest.approx(9_666_666.666666666, rel=1e-15)
    assert nash.total_cost_yuan.sum() - best.total_cost_yuan.sum() == pytest.approx(surplus, rel=1e-9)
    # Chander & Tulkens (1997): x_i = N_i - (pi_i / sum pi) * surplus
    ct = chander_tulkens(game, nash, best)
    expected = nash_cost - PI / PI.sum() * surplus
    np.testing.assert_allclose(ct.net_cost_yuan, expected, rtol=1e-12)
    assert ct.surplus_by_source_yuan.sum() == pytest.approx(surplus, rel=1e-9)
    # with uniform mixing every source's surplus is shared pi_i / sum pi
    np.testing.assert_allclose(ct.share[:, :, 0], np.repeat((PI / PI.sum())[:, None], 3, axis=1), rtol=1e-15)


def test_three_region_allocation_is_in_the_gamma_core_checked_on_every_coalition():
    game = uniform_game(PI, GAMMA, K, C0)
    values = all_coalition_values(game)
    hand = np.array([0.0] + [closed_form_value(m) for m in range(1, 8)])
    np.testing.assert_allclose(values, hand, rtol=1e-13)
    nash, best = outcome(game, nash_abatement(game)), outcome(game, grand_coalition_abatement(game))
    x = chander_tulkens(game, nash, best).net_cost_yuan
    for r in range(1, 4):
        for coalition in itertools.combinations(range(3), r):
            mask = sum(1 << j for j in coalition)
            assert x[list(coalition)].sum() <= hand[mask] * (1 + 1e-12), coalition
    assert x.sum() == pytest.approx(hand[7], rel=1e-12)
    assert core_check(values, x, "cost").in_core
    assert core_check(values, shapley_exact(values), "cost").in_core


def test_an_allocation_outside_the_core_is_detected():
    game = uniform_game(PI, GAMMA, K, C0)
    values = all_coalition_values(game)
    nash, best = outcome(game, nash_abatement(game)), outcome(game, grand_coalition_abatement(game))
    x = chander_tulkens(game, nash, best).net_cost_yuan.copy()
    shift = values[0b001] + 1e6 - x[0]  # A now pays a million more than it would bear alone ...
    x[0] += shift
    x[1:] -= shift / 2  # ... and B and C correspondingly less
    check = core_check(values, x, "cost")
    assert not check.in_core and check.max_excess >= 1e6 * (1 - 1e-12)
    assert x[0] - values[0b001] == pytest.approx(1e6, rel=1e-9)


# --------------------------------------------------------------------------- random games, all checks
def random_game(seed: int, n: int, uniform: bool = False) -> GammaGame:
    """Random SR >= 0 (own contributions dominant), piecewise marginal costs with flat and steep pieces."""
    rng = np.random.default_rng(seed)
    transfer = rng.uniform(0.0, 3.0, (n, n, 5)) * (rng.random((n, n, 5)) < 0.8)
    transfer[np.arange(n), np.arange(n)] += rng.uniform(1.0, 6.0, (n, 5))
    if uniform:
        transfer[:] = transfer[0]
    curves = []
    for _ in range(n):
        row = []
        for _p in range(5):
            if rng.random() < 0.15:
                row.append(None)
                continue
            mc = np.sort(rng.uniform(0.0, 5e4, 3))
            mc[1] = mc[0] if rng.random() < 0.3 else mc[1]  # a flat piece now and then
            top = rng.uniform(0.5, 1.0)
            curve = CostCurve(max_fraction=top, marginal_cost=[(0.0, mc[0]), (top / 2, mc[1]), (top, mc[2])])
            row.append(CurveArrays.from_curve(curve, rng.uniform(1e3, 2e4)))
        curves.append(tuple(row))
    pi = rng.uniform(1e6, 3e7, n)
    return GammaGame([f"R{i}" for i in range(n)], list(PRECURSORS), tuple(curves), transfer,
                     rng.uniform(30.0, 120.0, n), rng.uniform(1e8, 1e9, n), pi, np.arange(n))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.integers(2, 6), st.booleans())
@example(seed=136802, n=6, uniform=True)  # total 5.2e5 yuan from terms of 3.5e9: rounding of 1e-6 yuan
def test_random_games_both_allocations_in_the_core_and_individually_rational(seed, n, uniform):
    game = random_game(seed, n, uniform)
    values = all_coalition_values(game)
    nash, best = outcome(game, nash_abatement(game)), outcome(game, grand_coalition_abatement(game))
    scale = float(np.abs(values).max())
    # a cost is a sum of abatement costs and damages that can nearly cancel: its rounding error scales
    # with the game's largest values, not with the cost itself
    assert values[-1] == pytest.approx(best.total_cost_yuan.sum(), rel=1e-12, abs=1e-12 * scale)
    np.testing.assert_allclose(values[1 << np.arange(n)], nash.total_cost_yuan, rtol=1e-12,
                               atol=1e-12 * scale)  # v({i}) = N_i
    assert values[-1] <= nash.total_cost_yuan.sum() + 1e-9 * scale
    ct = chander_tulkens(game, nash, best).net_cost_yuan
    phi = shapley_exact(values)
    for x in (ct, phi):
        assert x.sum() == pytest.approx(values[-1], rel=1e-10)
        assert core_check(values, x, "cost", rtol=1e-10).in_core
        assert np.all(x <= nash.total_cost_yuan + 1e-10 * scale)


def test_closed_form_coalition_values_equal_the_qp_solution_of_highs():
    game = random_game(20171201, 5)
    values = all_coalition_values(game)
    masks = [1, 6, 13, 21, 30, 31]
    qp = np.array([qp_coalition_value(game, m) for m in masks])
    np.testing.assert_allclose(values[masks], qp, rtol=1e-7)
    # the closed form is the optimum: the QP cannot do better
    assert np.all(values[masks] <= qp + 1e-9 * np.abs(qp))


# ---------------------------------------------------------------------------- through `cooperate`
def gamma_run(days: float = 5.0):
    rng = np.random.default_rng(42)
    regions = ["A", "B", "C", "D"]
    sr = rng.uniform(0.0, 6.0, (4, 5, 5))
    sr[np.arange(4), np.arange(4)] += 5.0
    run = make_run(regions, sr, rng.uniform(2e3, 2e4, (5, 5)), background=20.0,
                   population=np.array([2.2e7, 1.4e7, 1.1e7, 7e6]), days=days)
    pol = {"costs": {"default": {p: linear_curve(4e4, 0.8) for p in PRECURSORS}}}
    return run, pol


@pytest.mark.parametrize("basis", ["period", "annual"])
def test_cooperate_gamma_json_acceptance_checks(basis):
    run, pol = gamma_run()
    pol["options"] = {"cost_basis": basis}
    result = cooperate(run, policy_from_dict(pol))
    data = json.loads(json.dumps(result.to_json_dict()))  # plain JSON
    assert data["game"].startswith("gamma") and data["penalty"] is None
    assert {"game", "nash", "grand_coalition_value_yuan", "shapley", "chander_tulkens", "transfers",
            "in_core"} <= set(data)
    for region, entry in data["nash"].items():
        assert entry["total_cost_yuan"] == pytest.approx(entry["abatement_cost_yuan"] + entry["damage_yuan"])
        assert region in data["players"]
    v_n = data["grand_coalition_value_yuan"]
    assert abs(sum(data["transfers"].values())) < 1.0
    assert sum(data["shapley"].values()) == pytest.approx(v_n, rel=1e-12)
    assert v_n < data["nash_total_cost_yuan"]
    for region in data["players"]:
        own = data["cooperative"]["regions"][region]["total_cost_yuan"]
        net = own - data["transfers"][region]
        assert net == pytest.approx(data["chander_tulkens"][region], rel=1e-9)
        assert net <= data["nash"][region]["total_cost_yuan"] * (1 + 1e-12)
    assert data["in_core"] == {"shapley": True, "chander_tulkens": True}
    assert data["individually_rational"] == {"shapley": True, "chander_tulkens": True}
    # the damages come from the health function the basis names: acute for a period, chronic for a year
    health = data["health"]
    assert (health["chronic"] is None) == (basis == "period")
    expected_kind = "acute" if basis == "period" else "chronic"
    for region in data["players"]:
        marginal = health[expected_kind]["receptors"][region]["marginal_value_yuan_per_ugm3"]
        assert data["marginal_damage_yuan_per_ugm3"][region] == pytest.approx(marginal, rel=1e-12)
    assert 0.0 <= data["damage_linearisation_max_relative_error"] < 0.5
    titles = [t.title for t in render_tables(result)]
    assert titles[0] == f"Game: {data['game']}"


def test_gamma_policy_rejects_targets_and_players_without_receptor():
    run, pol = gamma_run()
    with pytest.raises(ConfigError, match=r"\[targets\] is used only by game = 'targets'"):
        policy_from_dict({**pol, "targets": {"A": 30.0}}, "p.toml")
    no_d = run.isel(receptor_region=slice(0, 3))  # D emits but has no receptor region: no damage
    with pytest.raises(ConfigError, match=r"options.players: \['D'\] are source regions without a receptor"):
        cooperate(no_d, policy_from_dict(pol, "p.toml"), origin="p.toml")


def test_exact_and_sampled_shapley_agree_in_the_gamma_game():
    run, pol = gamma_run()
    pol["options"] = {"cost_basis": "annual"}
    exact = cooperate(run, policy_from_dict(pol))
    pol["options"] |= {"exact_shapley_max_players": 3, "shapley_permutations": 2000, "seed": 4}
    sampled = cooperate(run, policy_from_dict(pol))
    s = sampled.solution
    assert s.shapley_method.startswith("sampled") and s.allocations["shapley"].in_core is None
    err = np.abs(s.allocations["shapley"].net_cost_yuan - exact.solution.allocations["shapley"].net_cost_yuan)
    assert np.all(err <= 5 * s.shapley_stderr + 1e-6)
