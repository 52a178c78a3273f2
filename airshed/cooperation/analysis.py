"""The cooperation analysis of one run: the policy's game, its allocations, core, transfers, health.

``game = "gamma"`` (:mod:`airshed.cooperation.gamma`): regions weigh abatement cost against health
damage; the analysis reports the non-cooperative (Nash) outcome, the grand coalition's optimum, the
Shapley value and the Chander-Tulkens allocation of its characteristic function, whether each is in the
core (every coalition checked up to ``options.exact_shapley_max_players`` players) and individually
rational, and the transfers that implement them.

``game = "targets"`` (:mod:`airshed.cooperation.abatement`): coalitions meet PM2.5 targets at least
cost; the analysis reports each region acting alone, the least-cost joint plan, the Shapley value and
polluter pays, their core membership and transfers.

Allocations are net costs: what a region bears after transfers (abatement cost, plus health damage in
the gamma game). Transfers: positive = the region receives money, negative = it pays; they sum to zero.
``transfers`` holds the transfers of the game's recommended allocation (Chander-Tulkens in the gamma
game, Shapley in the target game; ``transfers_rule`` says which); ``transfers_by_allocation`` all of them.
No penalty enters any value: ``penalty`` is None in every result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import xarray as xr

from airshed.cooperation import abatement, gamma
from airshed.cooperation.abatement import TARGET_TOLERANCE_UGM3, AbatementProblem, Plan
from airshed.cooperation.games import core_check, core_is_nonempty, shapley_exact, shapley_sampled
from airshed.cooperation.health import damages, health_report
from airshed.cooperation.policy import OUTSIDE_REGION, Policy
from airshed.cooperation.runfile import RunTables, run_tables

#: Allocations are compared with coalition values to this relative tolerance (LP round-off).
CORE_RTOL = 1e-7


@dataclass(frozen=True)
class Allocation:
    """One way of sharing the grand coalition's cost: net cost per player and its checks."""

    name: str
    net_cost_yuan: np.ndarray
    transfers_yuan: np.ndarray  # positive = receives
    in_core: bool | None  # None: not checked (too many players)
    max_excess_yuan: float | None  # largest x(S) - v(S) over proper coalitions
    worst_coalition: list[str] | None
    individually_rational: bool | None  # net cost <= the player's stand-alone value v({i})


@dataclass(frozen=True)
class GameSolution:
    """Values, allocations and their checks for a game on ``players``."""

    players: list[str]
    grand_value_yuan: float
    stand_alone_yuan: np.ndarray  # v({i})
    allocations: dict[str, Allocation]
    shapley_method: str
    shapley_stderr: np.ndarray | None
    core_nonempty: bool | None
    coalitions_evaluated: int


def _members(mask: int, players: list[str]) -> list[str]:
    return [p for j, p in enumerate(players) if mask >> j & 1]


def solve_game(
    players: list[str],
    values_of: Callable[[np.ndarray], np.ndarray],
    allocations: dict[str, Callable[[float], np.ndarray]],
    own_total: np.ndarray,
    policy: Policy,
    grand_value: float,
    stand_alone: np.ndarray,
) -> GameSolution:
    """Shapley value, other allocations, core and individual rationality of a cost game.

    Parameters
    ----------
    players
        Player names.
    values_of
        Coalition bitmasks -> ``v(S)``, yuan.
    allocations
        Name -> function of ``v(N)`` returning net costs (Shapley is added here).
    own_total
        Each player's own cost in the grand coalition's plan (before transfers), yuan.
    policy
        Options: exact limit, permutations, seed.
    grand_value, stand_alone
        ``v(N)`` and ``v({i})``.
    """
    n = len(players)
    opts = policy.options
    exact = n <= opts.exact_shapley_max_players
    if exact:
        values = values_of(np.arange(2**n, dtype=np.int64))
        values[0], values[-1] = 0.0, grand_value  # the plan's own value: exact efficiency
        phi, stderr, method = shapley_exact(values), None, "exact"
        evaluated = values.size
    else:
        phi, stderr = shapley_sampled(values_of, n, opts.shapley_permutations, opts.seed)
        # sampling is unbiased but not exactly efficient; restore sum(phi) = v(N) by spreading the gap evenly
        phi = phi + (grand_value - phi.sum()) / n
        method = f"sampled ({opts.shapley_permutations} permutations, seed {opts.seed})"
        evaluated = 0
    nets = {"shapley": phi} | {name: rule(grand_value) for name, rule in allocations.items()}
    tol = CORE_RTOL * max(abs(grand_value), float(np.abs(stand_alone).max(initial=0.0)), 1.0)
    out = {}
    for name, net in nets.items():
        core = core_check(values, net, "cost", rtol=CORE_RTOL) if exact else None
        out[name] = Allocation(
            name=name,
            net_cost_yuan=net,
            transfers_yuan=own_total - net,
            in_core=None if core is None else core.in_core,
            max_excess_yuan=None if core is None else core.max_excess,
            worst_coalition=None if core is None else _members(core.worst_coalition, players),
            individually_rational=bool(np.all(net <= stand_alone + tol)),
        )
    nonempty = None
    if exact:
        nonempty = any(a.in_core for a in out.values()) or core_is_nonempty(values, "cost", rtol=CORE_RTOL)
    return GameSolution(players, grand_value, stand_alone, out, method, stderr, nonempty, evaluated)


def _by(players: list[str], values: np.ndarray) -> dict[str, float]:
    return {p: float(v) for p, v in zip(players, values, strict=True)}


def _allocation_json(solution: GameSolution, rule: str) -> dict:
    players, allocs = solution.players, solution.allocations
    return {
        "grand_coalition_value_yuan": solution.grand_value_yuan,
        "shapley": _by(players, allocs["shapley"].net_cost_yuan),
        "shapley_method": solution.shapley_method,
        "shapley_stderr": None if solution.shapley_stderr is None else _by(players, solution.shapley_stderr),
        "transfers": _by(players, allocs[rule].transfers_yuan),
        "transfers_rule": rule,
        "transfers_by_allocation": {k: _by(players, a.transfers_yuan) for k, a in allocs.items()},
        "in_core": {k: a.in_core for k, a in allocs.items()},
        "core_max_excess_yuan": {k: a.max_excess_yuan for k, a in allocs.items()},
        "core_worst_coalition": {k: a.worst_coalition for k, a in allocs.items()},
        "individually_rational": {k: a.individually_rational for k, a in allocs.items()},
        "core_nonempty": solution.core_nonempty,
        "coalitions_evaluated": solution.coalitions_evaluated,
        "penalty": None,
    }


def _money_unit(cost_basis: str) -> str:
    return "yuan per run period" if cost_basis == "period" else "yuan per year"


@dataclass(frozen=True)
class GammaResult:
    """The gamma game of a run: Nash and cooperative outcomes, allocations, health."""

    game: gamma.GammaGame
    policy: Policy
    damage_unit: str
    nash: gamma.Outcome
    cooperative: gamma.Outcome
    chander_tulkens: gamma.ChanderTulkens
    solution: GameSolution
    linearisation_error: float  # largest |linear - exact| / |exact| damage change at the cooperative outcome
    outside_game: list[str]
    health: dict = field(default_factory=dict)

    def to_json_dict(self) -> dict:
        """Plain-JSON summary (yuan, ug m-3, abated fractions 0-1)."""
        g, players = self.game, self.game.players

        def regions(o: gamma.Outcome) -> dict:
            return {
                p: {
                    "abatement_cost_yuan": float(o.abatement_cost_yuan[j]),
                    "damage_yuan": float(o.damage_yuan[j]),
                    "total_cost_yuan": float(o.total_cost_yuan[j]),
                    "pm25_ugm3": float(o.pm25_ugm3[j]),
                    "abatement": dict(zip(g.precursors, map(float, o.abatement[j]), strict=True)),
                }
                for j, p in enumerate(players)
            }

        nash_total = float(self.nash.total_cost_yuan.sum())
        return {
            "game": gamma.GAME_NAME,
            "game_kind": "gamma",
            "characteristic_function": gamma.CHARACTERISTIC_FUNCTION,
            "assumptions": gamma_assumptions(self),
            "units": {
                "money": _money_unit(self.policy.options.cost_basis),
                "concentration": "ug m-3",
                "abatement": "fraction of the region's emissions of the precursor",
                "damage": f"health damage = {self.damage_unit} x VSL",
            },
            "cost_basis": self.policy.options.cost_basis,
            "players": list(players),
            "marginal_damage_yuan_per_ugm3": _by(players, g.marginal_damage),
            "nash": regions(self.nash),
            "nash_total_cost_yuan": nash_total,
            "cooperative": {"regions": regions(self.cooperative),
                            "total_cost_yuan": float(self.cooperative.total_cost_yuan.sum())},
            "surplus_yuan": nash_total - self.solution.grand_value_yuan,
            "chander_tulkens": _by(players, self.chander_tulkens.net_cost_yuan),
            **_allocation_json(self.solution, "chander_tulkens"),
            "damage_linearisation_max_relative_error": self.linearisation_error,
            "health": self.health,
        }


def gamma_assumptions(result: GammaResult) -> list[str]:
    """List the assumptions of a gamma-game result, as printed above its tables and in its JSON."""
    outside = ", ".join(result.outside_game) or "none"
    return [
        "PM2.5 responds linearly to emissions: abating a fraction a of region j's precursor p lowers PM2.5 "
        "at receptor i by a x SR[i, j, p] (the run's source-receptor table; exact for airshed's chemistry)",
        "abatement applies uniformly to all sectors of a region at the policy's convex marginal-cost curves",
        f"damage = {result.damage_unit} x VSL ({result.policy.health.vsl_yuan:,.0f} yuan), each region "
        "counting its own population only, linear in PM2.5 around the run's baseline (largest error of "
        f"the linearisation at the cooperative outcome: {100 * result.linearisation_error:.2f} %)",
        f"regions outside the game keep their baseline emissions: {outside}",
        "with linear damages each outsider's best reply is a dominant strategy, so every coalition's gamma "
        "equilibrium is found without iteration",
        "no penalty enters any coalition value or share",
    ]


def _gamma(tables: RunTables, policy: Policy, origin: str) -> GammaResult:
    kind = "acute" if policy.options.cost_basis == "period" else "chronic"
    damage = damages(tables, policy.health, kind)
    game = gamma.build_game(tables, policy, damage, origin)
    nash_a = gamma.nash_abatement(game)
    nash = gamma.outcome(game, nash_a)
    best = gamma.outcome(game, gamma.grand_coalition_abatement(game))
    ct = gamma.chander_tulkens(game, nash, best)
    grand = float(best.total_cost_yuan.sum())
    solution = solve_game(
        game.players,
        lambda masks: gamma.coalition_values(game, masks),
        {"chander_tulkens": lambda _: ct.net_cost_yuan},
        best.total_cost_yuan,
        policy,
        grand,
        nash.total_cost_yuan,  # v({i}) is i's Nash cost: alone, it plays its best reply
    )
    # the exact exposure-response function at the cooperative outcome, against the linear damages
    after = tables.pm25_total.copy()
    after[game.receptor_index] = best.pm25_ugm3
    exact = damages(replace(tables, pm25_total=after), policy.health, kind)
    exact_after = exact.value_yuan[game.receptor_index]
    change_exact = game.baseline_damage_yuan - exact_after
    change_linear = game.baseline_damage_yuan - best.damage_yuan
    scale = np.maximum(np.abs(change_exact), 1e-9 * np.abs(game.baseline_damage_yuan).max(initial=1.0))
    error = float(np.max(np.abs(change_linear - change_exact) / scale, initial=0.0))
    return GammaResult(
        game=game,
        policy=policy,
        damage_unit=damage.unit,
        nash=nash,
        cooperative=best,
        chander_tulkens=ct,
        solution=solution,
        linearisation_error=error,
        outside_game=[s for s in tables.sources if s not in game.players and s != OUTSIDE_REGION],
        health=health_report(tables, policy.health, annual=policy.options.cost_basis == "annual"),
    )


@dataclass(frozen=True)
class TargetResult:
    """The target game of a run: each region alone, the joint plan, allocations, health."""

    problem: AbatementProblem
    policy: Policy
    alone: list[Plan]  # one per player: acting alone (best effort for its own targets)
    plan: Plan
    pm25_after_ugm3: np.ndarray  # (n_targets,)
    polluter_pays: np.ndarray
    solution: GameSolution
    outside_game: list[str]
    health: dict = field(default_factory=dict)

    def to_json_dict(self) -> dict:
        """Plain-JSON summary (yuan, ug m-3, abated fractions 0-1)."""
        pb, players = self.problem, self.problem.players
        nash = {}
        for j, p in enumerate(players):
            cost = float(self.alone[j].cost_yuan)
            fractions = map(float, self.alone[j].fractions[j])
            nash[p] = {"abatement_cost_yuan": cost, "damage_yuan": None, "total_cost_yuan": cost,
                       "abatement": dict(zip(pb.precursors, fractions, strict=True))}
        reach_alone = {}
        for t, region in enumerate(pb.target_regions):
            j = int(pb.target_player[t])
            reach_alone[region] = float(pb.reach(np.arange(pb.n_players) == j)[t])
        targets = {}
        for t, region in enumerate(pb.target_regions):
            j = int(pb.target_player[t])
            after = float(self.pm25_after_ugm3[t])
            targets[region] = {
                "target_ugm3": float(pb.target_ugm3[t]),
                "baseline_ugm3": float(pb.baseline_ugm3[t]),
                "alone_cost_yuan": float(self.alone[j].cost_yuan),
                "alone_shortfall_ugm3": float(self.alone[j].shortfall_ugm3[t]),
                "alone_max_reduction_ugm3": reach_alone[region],
                "joint_pm25_ugm3": after,
                "met": bool(after <= pb.target_ugm3[t] + TARGET_TOLERANCE_UGM3),
            }
        regions = {
            p: {"abatement_cost_yuan": float(self.plan.cost_by_player[j]),
                "abatement": dict(zip(pb.precursors, map(float, self.plan.fractions[j]), strict=True))}
            for j, p in enumerate(players)
        }
        return {
            "game": abatement.GAME_NAME,
            "game_kind": "targets",
            "characteristic_function": abatement.CHARACTERISTIC_FUNCTION,
            "assumptions": target_assumptions(self),
            "units": {"money": _money_unit(self.policy.options.cost_basis), "concentration": "ug m-3",
                      "abatement": "fraction of the region's emissions of the precursor"},
            "cost_basis": self.policy.options.cost_basis,
            "players": list(players),
            "nash": nash,
            "nash_total_cost_yuan": float(sum(a.cost_yuan for a in self.alone)),
            "targets": targets,
            "cooperative": {
                "total_cost_yuan": self.plan.cost_yuan,
                "linearisation_error_bound_yuan": self.plan.error_bound_yuan,
                "regions": regions,
            },
            "chander_tulkens": None,
            "polluter_pays": _by(players, self.polluter_pays),
            **_allocation_json(self.solution, "shapley"),
            "health": self.health,
        }


def target_assumptions(result: TargetResult) -> list[str]:
    """List the assumptions of a target-game result."""
    outside = ", ".join(result.outside_game) or "none"
    return [
        "PM2.5 responds linearly to emissions (the run's source-receptor table; exact for airshed's "
        "chemistry); targets are population-weighted period means",
        "a coalition abates alone (every other region at baseline emissions) and meets its members' targets, "
        "or the attainable part of a target its own abatement cannot reach (finite values, no penalty)",
        "costs are the policy's convex marginal-cost curves, replaced by secants (the LP over-states the "
        f"joint cost by at most {result.plan.error_bound_yuan:,.0f} yuan)",
        f"regions outside the game keep their baseline emissions: {outside}",
        "polluter pays shares the joint cost by each player's contribution to PM2.5 at the receptors above "
        "target",
    ]


def polluter_pays_allocation(problem: AbatementProblem, total_cost: float) -> np.ndarray:
    """Share of ``total_cost`` per player, proportional to its PM2.5 contribution at exceeding receptors."""
    exceeding = problem.need > TARGET_TOLERANCE_UGM3
    contribution = np.clip(problem.effect[exceeding].sum(axis=(0, 2)), 0.0, None)
    if contribution.sum() <= 0.0:
        return np.zeros(problem.n_players)
    return total_cost * contribution / contribution.sum()


def _targets(tables: RunTables, policy: Policy, origin: str, workers: int | None) -> TargetResult:
    problem = abatement.build_problem(tables, policy, origin)
    abatement.check_attainable(problem, origin)
    n = problem.n_players
    plan = abatement.solve_plan(problem, np.ones(n, dtype=bool))
    after = problem.baseline_ugm3 - np.einsum("tjp,jp->t", problem.effect, plan.fractions)
    alone = [abatement.solve_plan(problem, np.arange(n) == j) for j in range(n)]
    pp = polluter_pays_allocation(problem, plan.cost_yuan)

    def values_of(masks: np.ndarray) -> np.ndarray:
        if masks.size == 2**n:  # all coalitions: in Gray-code order, for the LP warm starts
            return abatement.all_coalition_costs(problem, workers)
        return abatement.coalition_costs(problem, masks, workers)

    solution = solve_game(
        problem.players,
        values_of,
        {"polluter_pays": lambda _: pp},
        plan.cost_by_player,
        policy,
        plan.cost_yuan,
        np.array([a.cost_yuan for a in alone]),
    )
    return TargetResult(
        problem=problem,
        policy=policy,
        alone=alone,
        plan=plan,
        pm25_after_ugm3=after,
        polluter_pays=pp,
        solution=solution,
        outside_game=[s for s in tables.sources if s not in problem.players and s != OUTSIDE_REGION],
        health=health_report(tables, policy.health, annual=policy.options.cost_basis == "annual"),
    )


CooperationResult = GammaResult | TargetResult


def cooperate(
    tables: xr.Dataset, policy: Policy, workers: int | None = None, origin: str = "policy"
) -> CooperationResult:
    """Run the cooperation analysis the policy asks for on a run's source-receptor tables.

    Parameters
    ----------
    tables
        Run dataset (see :mod:`airshed.cooperation.runfile` for the contract).
    policy
        The game, cost curves, options and health valuation (:func:`airshed.cooperation.load_policy`).
    workers
        Processes for the target game's coalition LPs (default: the CPUs available to this process);
        the gamma game needs none.
    origin
        Name of the policy file, used in error messages.
    """
    run = run_tables(tables)
    if policy.game == "gamma":
        return _gamma(run, policy, origin)
    return _targets(run, policy, origin, workers)
