"""Cooperation economics: textbook games, the target game's closed-form plans, transfers, policy, runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from cooperation_runs import PRECURSORS, linear_curve, make_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airshed.cooperation import cooperate, load_policy, performance_split, render_tables
from airshed.cooperation.abatement import (
    InfeasibleTargetsError,
    all_coalition_costs,
    build_problem,
    coalition_cost,
    coalition_costs,
    gray_code_order,
    solve_plan,
    unattainable_targets,
)
from airshed.cooperation.costs import CurveArrays
from airshed.cooperation.games import core_check, core_is_nonempty, shapley_exact, shapley_sampled
from airshed.cooperation.policy import policy_from_dict
from airshed.cooperation.runfile import run_tables
from airshed.errors import ConfigError, DataError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE = EXAMPLES / "policy_jjj.toml"
TARGET_EXAMPLE = EXAMPLES / "policy_jjj_targets.toml"


def two_region_case(segments: int = 200) -> tuple[xr.Dataset, dict]:
    """A needs 10 ug m-3; SO2 only; linear marginal costs: closed form a = 0.4, b = 0.2, cost 1e6 yuan.

    min E_A m_A a^2/2 + E_B m_B b^2/2  s.t.  s_A a + s_B b = 10  (s_A = 20, s_B = 10 ug m-3;
    E_A m_A = E_B m_B = 1e7 yuan): lambda = 10 / (s_A^2/1e7 + s_B^2/1e7) = 2e5,
    a = lambda s_A / 1e7 = 0.4, b = 0.2, cost = 10^2 / (2 * 5e-5) = 1e6 yuan.
    """
    sr = np.zeros((2, 3, 5))
    sr[0, 0, 0], sr[0, 1, 0] = 20.0, 10.0  # at A: from A, from B
    sr[1, 1, 0] = 8.0  # at B: from B
    emissions = np.zeros((3, 5))
    emissions[0, 0], emissions[1, 0], emissions[2, 0] = 1000.0, 2000.0, 500.0
    run = make_run(["A", "B"], sr, emissions, background=np.array([30.0, 10.0]))
    # pm25_total: A = 30 + 30 = 60 (target 50 -> need 10); B = 18 (target 20, already met)
    policy = {
        "game": "targets",
        "targets": {"A": 50.0, "B": 20.0},
        "costs": {"A": {"SO2": linear_curve(1e4)}, "B": {"SO2": linear_curve(5e3)}},
        "options": {"segments_per_piece": segments},
    }
    return run, policy


# ----------------------------------------------------------------------------------------------- games
def glove_game() -> np.ndarray:
    """Player 0 holds a left glove, players 1 and 2 right gloves; a pair is worth 1."""
    return np.array([1.0 if (m & 1 and m & 6) else 0.0 for m in range(8)])


def airport_game(costs: list[float]) -> np.ndarray:
    """Runway cost game: a coalition pays for the longest runway its members need."""
    n = len(costs)
    return np.array([max((costs[i] for i in range(n) if m >> i & 1), default=0.0) for m in range(2**n)])


def majority_game() -> np.ndarray:
    """Three-player simple majority game: any two players win 1."""
    return np.array([1.0 if bin(m).count("1") >= 2 else 0.0 for m in range(8)])


def test_glove_game_shapley_and_core():
    v = glove_game()
    np.testing.assert_allclose(shapley_exact(v), [2 / 3, 1 / 6, 1 / 6])
    # the core is the single point (1, 0, 0): the Shapley value is not in it
    assert core_check(v, [1.0, 0.0, 0.0], "profit").in_core
    assert not core_check(v, shapley_exact(v), "profit").in_core
    assert core_is_nonempty(v, "profit")


def test_airport_game_shapley_is_sequential_split_and_in_core():
    # Littlechild & Owen (1973): each runway segment is split equally among the players who use it
    v = airport_game([1.0, 2.0, 3.0])
    phi = shapley_exact(v)
    np.testing.assert_allclose(phi, [1 / 3, 1 / 3 + 1 / 2, 1 / 3 + 1 / 2 + 1])
    assert core_check(v, phi, "cost").in_core
    assert core_is_nonempty(v, "cost")


def test_majority_game_has_empty_core():
    v = majority_game()
    np.testing.assert_allclose(shapley_exact(v), [1 / 3] * 3)
    assert not core_is_nonempty(v, "profit")
    check = core_check(v, shapley_exact(v), "profit")
    assert not check.in_core
    assert check.max_excess == pytest.approx(1 / 3)  # any pair gets 2/3 but could win 1


def test_sampled_shapley_agrees_with_exact_within_its_standard_error():
    v = airport_game([1.0, 2.0, 3.0, 5.0])
    phi, se = shapley_sampled(lambda masks: v[masks], 4, 4000, seed=3)
    exact = shapley_exact(v)
    assert np.all(np.abs(phi - exact) < 5 * se + 1e-12)
    again, _ = shapley_sampled(lambda masks: v[masks], 4, 4000, seed=3)
    np.testing.assert_array_equal(phi, again)


# ------------------------------------------------------------------------------------------ cost curves
def test_curve_costs_and_best_replies_against_brute_force():
    from airshed.cooperation.policy import CostCurve

    curve = CurveArrays.from_curve(
        CostCurve(max_fraction=0.7,
                  marginal_cost=[(0.0, 1000.0), (0.2, 1000.0), (0.5, 9000.0), (0.9, 40000.0)]),
        250.0,
    )
    assert curve.knots.tolist() == [0.0, 0.2, 0.5, 0.7] and curve.mc[-1] == pytest.approx(9000 + 31000 * 0.5)
    grid = np.linspace(0.0, 0.7, 70001)
    exact = 250.0 * np.concatenate([[0.0], np.cumsum(np.diff(grid) * 0.5 * (
        np.interp(grid[1:], curve.knots, curve.mc) + np.interp(grid[:-1], curve.knots, curve.mc)))])
    np.testing.assert_allclose(curve.cost(grid), exact, rtol=1e-9, atol=1e-6)
    for w in (0.0, 2.5e5, 2.6e5, 1.1e6, 2.0e6, 6e6, 1e7):
        a = curve.best_reply(w)
        assert 0.0 <= a <= 0.7
        brute = np.min(curve.cost(grid) - w * grid)
        assert curve.cost(a) - w * a <= brute + 1e-9 * abs(brute) + 1e-9, w
    assert curve.best_reply(250.0 * 1000.0) == 0.0  # on the flat first piece: the smallest minimiser


# ------------------------------------------------------------------------------- the target game's LPs
def test_two_region_least_cost_plan_matches_closed_form():
    run, pol = two_region_case()
    policy = policy_from_dict(pol)
    problem = build_problem(run_tables(run), policy)
    plan = solve_plan(problem, np.ones(2, dtype=bool))
    bound = plan.error_bound_yuan
    assert 0.0 < bound < 100.0  # 1e7 yuan * (1/200)^2 / 8 per pair
    assert 1e6 - 1e-6 <= plan.cost_yuan <= 1e6 + bound + 1e-6
    np.testing.assert_allclose(plan.fractions[:, 0], [0.4, 0.2], atol=1 / 200)
    # the secant LP over-states the exact cost of its own plan by no more than the bound
    exact = sum(
        CurveArrays.from_curve(policy.curve(r, "SO2"), t).cost(plan.fractions[j, 0])
        for j, (r, t) in enumerate([("A", 1000.0), ("B", 2000.0)])
    )
    assert -1e-6 <= plan.cost_yuan - exact <= bound
    # alone, A must do everything itself: a = 0.5, cost 1e7 * 0.25 / 2; B is already below its target
    alone_a = solve_plan(problem, np.array([True, False]))
    assert alone_a.cost_yuan == pytest.approx(1.25e6, abs=bound) and alone_a.shortfall_ugm3[0] == 0.0
    assert solve_plan(problem, np.array([False, True])).cost_yuan == 0.0


def test_two_region_game_shapley_and_transfers_closed_form():
    run, pol = two_region_case()
    result = cooperate(run, policy_from_dict(pol), workers=1)
    out = result.to_json_dict()
    tol = 2 * result.plan.error_bound_yuan + 1e-6
    assert out["game"].startswith("target game") and out["penalty"] is None
    # v({A}) = 1.25e6, v({B}) = 0, v(N) = 1e6: phi_A = (1.25e6 + 1e6)/2, phi_B = (0 + 1e6 - 1.25e6)/2
    assert out["shapley"]["A"] == pytest.approx(1.125e6, abs=tol)
    assert out["shapley"]["B"] == pytest.approx(-1.25e5, abs=tol)
    # costs in the plan: A 1e7 * 0.4^2/2 = 8e5, B 1e7 * 0.2^2/2 = 2e5; A pays B 3.25e5
    assert out["transfers_rule"] == "shapley"
    assert out["transfers"]["A"] == pytest.approx(-3.25e5, abs=tol)
    assert out["transfers"]["B"] == pytest.approx(3.25e5, abs=tol)
    assert sum(out["transfers"].values()) == pytest.approx(0.0, abs=1e-6)
    assert out["in_core"]["shapley"] and out["core_nonempty"]
    # polluter pays: contributions at A (the only exceeding receptor) are 20 and 10 -> 2/3 and 1/3 of 1e6
    assert out["polluter_pays"]["A"] == pytest.approx(2e6 / 3, abs=tol)
    assert out["polluter_pays"]["B"] == pytest.approx(1e6 / 3, abs=tol)
    assert sum(out["transfers_by_allocation"]["polluter_pays"].values()) == pytest.approx(0.0, abs=1e-6)
    assert out["targets"]["A"]["met"]
    assert out["targets"]["A"]["joint_pm25_ugm3"] == pytest.approx(50.0, abs=1e-6)
    assert out["chander_tulkens"] is None
    json.dumps(out)  # plain JSON
    assert [t.title for t in render_tables(result)][0] == f"Game: {out['game']}"


def test_flat_marginal_costs_give_exact_merit_order():
    # constant marginal costs: the LP is exact; B's SO2 is cheaper per ug m-3 at A (2000 / (10/2000 t))
    run, pol = two_region_case(segments=1)
    pol["costs"] = {
        "A": {"SO2": {"max_fraction": 1.0, "marginal_cost": [[0.0, 3000.0], [1.0, 3000.0]]}},
        "B": {"SO2": {"max_fraction": 0.5, "marginal_cost": [[0.0, 1000.0], [1.0, 1000.0]]}},
    }
    problem = build_problem(run_tables(run), policy_from_dict(pol))
    plan = solve_plan(problem, np.ones(2, dtype=bool))
    # per ug m-3 at A: A costs 1000 t * 3000 / 20 = 1.5e5, B costs 2000 t * 1000 / 10 = 2e5 -> A first
    np.testing.assert_allclose(plan.fractions[:, 0], [0.5, 0.0], atol=1e-9)
    assert plan.cost_yuan == pytest.approx(0.5 * 1000 * 3000)
    assert plan.error_bound_yuan == 0.0


def test_unattainable_targets_are_reported_with_shortfall_and_attainable_value():
    run, pol = two_region_case()
    pol["targets"]["A"] = 25.0  # need 35 ug m-3: A alone removes at most 20, A and B together 30
    policy = policy_from_dict(pol, "policy.toml")
    (bad,) = unattainable_targets(build_problem(run_tables(run), policy))
    assert (bad.region, bad.max_reduction_ugm3) == ("A", 30.0)
    assert (bad.shortfall_ugm3, bad.attainable_ugm3) == (5.0, 30.0)
    with pytest.raises(InfeasibleTargetsError) as err:
        cooperate(run, policy, workers=1, origin="policy.toml")
    message = str(err.value)
    assert "\n" not in message and message.startswith("policy.toml: 1 target(s) cannot be met")
    expected = "targets.A = 25 (baseline 60.0, at most 30.0 removable: short by 5.0 ug m-3; attainable 30.0)"
    assert expected in message
    assert isinstance(err.value, ConfigError)  # the CLI prints it as one line and exits 2


def test_a_coalition_that_cannot_meet_its_target_meets_the_attainable_part():
    run, pol = two_region_case()
    pol["targets"]["A"] = 35.0  # need 25: A alone removes at most 20 (short by 5), A and B together 30
    result = cooperate(run, policy_from_dict(pol), workers=1)
    out = result.to_json_dict()
    alone = out["targets"]["A"]
    assert alone["alone_shortfall_ugm3"] == pytest.approx(5.0, abs=1e-6)
    # best effort: all of A's SO2 at its exact cost E m 1^2 / 2 (the secants are exact at the ends)
    assert alone["alone_cost_yuan"] == pytest.approx(1e7 / 2, rel=1e-9)
    assert out["targets"]["A"]["met"] and out["penalty"] is None
    values = all_coalition_costs(result.problem, workers=1)
    assert np.all(np.isfinite(values)) and values[0b01] == pytest.approx(5e6, rel=1e-9)
    # every share finite and adding up; v(N): 20 a + 10 b = 25 at least cost -> a = 1, b = 0.5, 6.25e6 yuan
    assert sum(out["shapley"].values()) == pytest.approx(out["grand_coalition_value_yuan"], rel=1e-9)
    assert abs(sum(out["transfers"].values())) < 1e-6 * out["grand_coalition_value_yuan"]
    assert out["grand_coalition_value_yuan"] == pytest.approx(6.25e6, abs=2 * result.plan.error_bound_yuan)


def test_annual_cost_basis_scales_period_tonnes_to_a_year():
    run, pol = two_region_case()
    period = cooperate(run, policy_from_dict(pol), workers=1).to_json_dict()
    pol["options"]["cost_basis"] = "annual"
    annual = cooperate(run, policy_from_dict(pol), workers=1).to_json_dict()
    factor = 365.25 / 10.0
    assert annual["cooperative"]["total_cost_yuan"] == pytest.approx(
        factor * period["cooperative"]["total_cost_yuan"], rel=1e-9
    )
    assert annual["units"]["money"] == "yuan per year"
    del run.attrs["time_coverage_start"]
    with pytest.raises(DataError, match="time_coverage_start"):
        cooperate(run, policy_from_dict(pol), workers=1)


@st.composite
def small_instances(draw):
    n = draw(st.integers(2, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    regions = [f"R{i}" for i in range(n)]
    sr = rng.uniform(0.0, 4.0, (n, n + 1, 5)) * rng.integers(0, 2, (n, n + 1, 5))
    sr[np.arange(n), np.arange(n)] += rng.uniform(1.0, 8.0, (n, 5))
    emissions = rng.uniform(100.0, 5000.0, (n + 1, 5))
    run = make_run(regions, sr, emissions, background=rng.uniform(1.0, 20.0, n))
    total = run["pm25_total"].values
    # targets at most what everyone together can remove (max_fraction 0.8 of every contribution)
    reach = 0.8 * sr[:, :n, :].sum(axis=(1, 2))
    targets = {r: float(total[i] - reach[i] * rng.uniform(0.0, 1.0)) for i, r in enumerate(regions)}
    costs = {}
    for r in regions:
        curve = {}
        for p in PRECURSORS:
            m = np.sort(rng.uniform(100.0, 5e4, 3))
            curve[p] = {"max_fraction": 0.8, "marginal_cost": [[0.0, m[0]], [0.4, m[1]], [0.8, m[2]]]}
        costs[r] = curve
    return run, policy_from_dict({"game": "targets", "targets": targets, "costs": costs,
                                  "options": {"segments_per_piece": 4}})


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_instances())
def test_target_game_shares_add_up_and_the_joint_plan_meets_every_target(instance):
    run, policy = instance
    result = cooperate(run, policy, workers=1)
    out = result.to_json_dict()
    assert all(t["met"] for t in out["targets"].values())
    scale = max(abs(result.solution.grand_value_yuan), 1.0)
    assert sum(out["shapley"].values()) == pytest.approx(result.solution.grand_value_yuan, abs=1e-9 * scale)
    for transfers in out["transfers_by_allocation"].values():
        assert abs(sum(transfers.values())) <= 1e-9 * scale + 1e-6
    # where every region can meet its targets alone, their separate plans are a joint plan: v(N) <= sum v(i)
    if all(t["alone_shortfall_ugm3"] == 0.0 for t in out["targets"].values()):
        assert result.plan.cost_yuan <= out["nash_total_cost_yuan"] * (1 + 1e-9) + 1e-6


def test_sampled_shapley_path_matches_exact_on_a_small_instance():
    rng = np.random.default_rng(7)
    regions = ["R0", "R1", "R2"]
    sr = rng.uniform(0.5, 4.0, (3, 4, 5))
    run = make_run(regions, sr, rng.uniform(500.0, 2000.0, (4, 5)))
    total = run["pm25_total"].values
    pol = {
        "game": "targets",
        "targets": {r: float(0.8 * total[i]) for i, r in enumerate(regions)},
        "costs": {"default": {p: linear_curve(2e4, 0.8) for p in PRECURSORS}},
        "options": {"segments_per_piece": 4},
    }
    exact = cooperate(run, policy_from_dict(pol), workers=1).solution
    pol["options"] |= {"exact_shapley_max_players": 2, "shapley_permutations": 600, "seed": 1}
    sampled = cooperate(run, policy_from_dict(pol), workers=1).solution
    assert sampled.shapley_method.startswith("sampled") and sampled.allocations["shapley"].in_core is None
    phi, ref = sampled.allocations["shapley"].net_cost_yuan, exact.allocations["shapley"].net_cost_yuan
    assert np.all(np.abs(phi - ref) < 5 * sampled.shapley_stderr + 1e-6)
    assert phi.sum() == pytest.approx(exact.grand_value_yuan, rel=1e-9)


# ------------------------------------------------------------------------------------- performance
def test_performance_split_is_exact_and_separates_own_from_others():
    run_a, _ = two_region_case()
    run_b = run_a.copy(deep=True)
    sr = run_b["pm25_source_receptor"]
    sr.loc[{"receptor_region": "A", "source_region": "A", "precursor": "SO2"}] = 12.0  # own -8
    sr.loc[{"receptor_region": "A", "source_region": "B", "precursor": "SO2"}] = 7.0  # others -3
    sr.loc[{"receptor_region": "A", "source_region": "outside", "precursor": "NOx"}] = 1.5  # outside +1.5
    run_b["pm25_total"] = run_b["pm25_total"] + xr.DataArray([-9.5 + 2.0, 0.0], dims="receptor_region")
    split = performance_split(run_a, run_b).sel(receptor_region="A")
    assert float(split.own_emissions_change) == pytest.approx(-8.0)
    assert float(split.other_regions_change) == pytest.approx(-3.0)
    assert float(split.outside_change) == pytest.approx(1.5)
    assert float(split.unattributed_change) == pytest.approx(2.0)
    parts = split.own_emissions_change + split.other_regions_change + split.outside_change
    assert float(parts + split.unattributed_change) == pytest.approx(float(split.pm25_change))


# --------------------------------------------------------------------------------------- bad input
def base_policy() -> dict:
    return {
        "game": "targets",
        "targets": {"A": 50.0},
        "costs": {"A": {"SO2": {"max_fraction": 0.8, "marginal_cost": [[0.0, 2000.0], [0.8, 9000.0]]}}},
    }


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda p: p["costs"]["A"]["SO2"].update(marginal_cost=[[0.0, 1.0], [0.6, 2.0], [0.5, 3.0]]),
            r"costs\.A\.SO2\.marginal_cost: abated fractions must strictly increase",
        ),
        (
            lambda p: p["costs"]["A"]["SO2"].update(marginal_cost=[[0.0, -5.0], [0.8, 2.0]]),
            r"costs\.A\.SO2\.marginal_cost: marginal costs must be >= 0",
        ),
        (
            lambda p: p["costs"]["A"]["SO2"].update(marginal_cost=[[0.0, 5.0], [0.8, 2.0]]),
            r"costs\.A\.SO2\.marginal_cost: marginal costs must not decrease",
        ),
        (lambda p: p["costs"]["A"].update(SO3=p["costs"]["A"]["SO2"]), r"costs\.A\.SO3: unknown precursor"),
        (lambda p: p["costs"]["A"]["SO2"].update(slope=1.0), r"costs\.A\.SO2\.slope: unknown key"),
        (
            lambda p: p["costs"]["A"]["SO2"].update(max_fraction=0.9),
            r"costs\.A\.SO2: marginal_cost must extend",
        ),
        (lambda p: p.update(option={}), r"option: unknown key"),
        (lambda p: p["targets"].update(B=-3.0), r"targets\.B: Input should be greater than 0"),
        (lambda p: p.update(options={"cost_basis": "monthly"}), r"options\.cost_basis"),
        (lambda p: p.update(options={"infeasible_penalty": 1e9}),
         r"options\.infeasible_penalty: removed key: no penalty enters the game"),
        (lambda p: p.update(health={"baseline_mortality": 0.007}),
         r"health\.baseline_mortality: removed key: baseline death rates ship with airshed"),
        (lambda p: p.pop("targets"), r"policy.toml: game = 'targets' needs a \[targets\] table"),
        (lambda p: p.update(game="welfare"), r"game: Input should be 'gamma' or 'targets'"),
    ],
)
def test_bad_policy_names_the_key(mutate, match):
    pol = base_policy()
    mutate(pol)
    with pytest.raises(ConfigError, match=match):
        policy_from_dict(pol, "policy.toml")


def test_policy_regions_must_exist_in_the_run():
    run, _ = two_region_case()
    for pol, match in [
        ({**base_policy(), "targets": {"Z": 30.0}}, r"targets\.Z: unknown receptor region"),
        ({**base_policy(), "costs": {"Z": base_policy()["costs"]["A"]}}, r"costs\.Z: unknown source region"),
        ({**base_policy(), "options": {"players": ["A", "Q"]}}, r"options\.players\[1\]"),
        ({**base_policy(), "options": {"players": ["B"]}}, r"targets\.A: a target needs a player"),
    ]:
        with pytest.raises(ConfigError, match=match):
            cooperate(run, policy_from_dict(pol, "policy.toml"), workers=1, origin="policy.toml")


def test_load_policy_file_errors_and_examples(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_policy(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[targets\nBeijing = 35\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_policy(bad)
    gamma_example = load_policy(EXAMPLE)
    assert gamma_example.game == "gamma" and gamma_example.targets is None
    assert gamma_example.curve("Hebei", "SO2") is gamma_example.costs["default"]["SO2"]
    target_example = load_policy(TARGET_EXAMPLE)
    assert target_example.game == "targets" and len(target_example.targets) == 13


def test_run_file_contract_errors():
    run, _ = two_region_case()
    with pytest.raises(DataError, match="pm25_total"):
        run_tables(run.drop_vars("pm25_total"))
    with pytest.raises(DataError, match="emission_total has no species"):
        run_tables(run.sel(species=["SO2", "NOx"]))


def test_warm_started_gray_code_values_equal_cold_linprog():
    order = gray_code_order(8)
    assert all(bin(int(d)).count("1") == 1 for d in order[1:] ^ order[:-1]) and np.unique(order).size == 256
    rng = np.random.default_rng(11)
    n = 8
    regions = [f"R{i}" for i in range(n)]
    sr = rng.uniform(0.0, 3.0, (n, n + 1, 5))
    run = make_run(regions, sr, rng.uniform(200.0, 3000.0, (n + 1, 5)))
    total = run["pm25_total"].values
    pol = {
        "game": "targets",
        "targets": {r: float(rng.uniform(0.4, 0.9) * total[i]) for i, r in enumerate(regions)},
        "costs": {"default": {p: linear_curve(3e4, 0.7) for p in PRECURSORS}},
        "options": {"segments_per_piece": 3},
    }
    problem = build_problem(run_tables(run), policy_from_dict(pol))
    values = all_coalition_costs(problem, workers=2)  # 256 coalitions: the process-pool path
    some = rng.integers(0, 2**n, 25)
    reference = np.array([coalition_cost(problem, int(m)) for m in some])
    np.testing.assert_allclose(values[some], reference, rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(coalition_costs(problem, some, workers=1), reference, rtol=1e-7, atol=1e-6)
    assert values[0] == 0.0 and np.all(np.isfinite(values))


JJJ_CITIES = [
    "Beijing", "Tianjin", "Shijiazhuang", "Tangshan", "Qinhuangdao", "Handan", "Xingtai", "Baoding",
    "Zhangjiakou", "Chengde", "Cangzhou", "Langfang", "Hengshui",
]  # fmt: skip


def jjj_shaped_run(seed: int = 2015) -> xr.Dataset:
    regions = [*JJJ_CITIES, "Shanxi", "Inner Mongolia", "Liaoning", "Shandong", "Henan"]
    rng = np.random.default_rng(seed)
    n = len(regions)
    sr = rng.uniform(0.0, 2.0, (n, n + 1, 5))
    sr[np.arange(n), np.arange(n)] += 6.0
    return make_run(regions, sr, rng.uniform(1e3, 2e4, (n + 1, 5)), background=10.0, days=5.0)


def test_target_example_policy_on_a_jjj_shaped_run():
    policy = load_policy(TARGET_EXAMPLE)
    problem = build_problem(run_tables(jjj_shaped_run()), policy, str(TARGET_EXAMPLE))
    assert problem.players == JJJ_CITIES  # the neighbouring provinces stay at baseline
    plan = solve_plan(problem, np.ones(len(JJJ_CITIES), dtype=bool))
    assert plan.cost_yuan >= 0.0 and plan.fractions.max() <= 0.8 + 1e-6  # HiGHS' feasibility tolerance
    # Beijing uses its own SO2 curve (max 0.6), the others the default (max 0.8)
    assert problem.max_fraction[0, 0] == pytest.approx(0.6)
    assert problem.max_fraction[1, 0] == pytest.approx(0.8)


def test_gamma_example_policy_plays_every_region_of_a_jjj_shaped_run():
    run = jjj_shaped_run()
    result = cooperate(run, load_policy(EXAMPLE), origin=str(EXAMPLE))
    out = result.to_json_dict()
    assert out["players"] == [*JJJ_CITIES, "Shanxi", "Inner Mongolia", "Liaoning", "Shandong", "Henan"]
    assert out["coalitions_evaluated"] == 2**18 and out["shapley_method"] == "exact"
    assert out["in_core"] == {"shapley": True, "chander_tulkens": True}
    assert abs(sum(out["transfers"].values())) < 1.0
