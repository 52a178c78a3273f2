"""The cooperation analysis of one run: independent action, least-cost cooperation, Shapley, core, transfers.

Sign convention of transfers: positive = the region *receives* money, negative = it pays. Transfers sum
to zero.

Transfers under the Shapley rule make each region's net cost equal to its Shapley share of the real
abatement cost: ``net_j = phi_j - pi_j`` where ``pi_j`` is the notional penalty for region ``j``'s own
targets left unmet by the grand coalition (zero whenever cooperation meets every target), so the net
costs add up to the cooperative plan's abatement cost. ``transfer_j = c_j - net_j`` with ``c_j`` the cost
of region ``j``'s own abatement in the cooperative plan.

Polluter pays (proportional to contribution): region ``j`` bears the share of the cooperative abatement
cost equal to its share of the modelled regions' baseline PM2.5 contributions (all precursors) at the
receptors whose baseline exceeds their target; ``outside`` and background pay nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from airshed.cooperation.abatement import (
    TARGET_TOLERANCE_UGM3,
    AbatementProblem,
    IndependentResult,
    Plan,
    all_coalition_costs,
    build_problem,
    coalition_costs,
    independent_action,
    members_of,
    solve_plan,
)
from airshed.cooperation.games import core_check, core_is_nonempty, shapley_exact, shapley_sampled
from airshed.cooperation.health import health_damages
from airshed.cooperation.policy import Policy
from airshed.cooperation.runfile import run_tables


@dataclass(frozen=True)
class CooperationResult:
    """Everything :func:`cooperate` computes; :meth:`to_json_dict` gives the documented JSON."""

    problem: AbatementProblem
    cost_basis: str
    independent: list[IndependentResult]
    plan: Plan
    pm25_after_ugm3: np.ndarray  # (n_targets,)
    shapley: np.ndarray  # (n_players,) yuan
    shapley_stderr: np.ndarray | None
    shapley_method: str
    grand_value_yuan: float
    in_core: bool | None
    core_nonempty: bool | None
    core_max_excess_yuan: float | None
    core_worst_coalition: list[str] | None
    transfers: np.ndarray
    polluter_pays: np.ndarray
    polluter_pays_transfers: np.ndarray
    polluter_pays_in_core: bool | None
    health: dict | None = field(default=None)

    def _by_player(self, values: np.ndarray) -> dict[str, float]:
        return {p: float(v) for p, v in zip(self.problem.players, values, strict=True)}

    def to_json_dict(self) -> dict:
        """Plain-JSON summary (yuan, ug m-3, abated fractions 0-1)."""
        pb = self.problem
        unit = "yuan per run period" if self.cost_basis == "period" else "yuan per year"
        independent = {
            r.region: {
                "cost_yuan": r.cost_yuan,
                "feasible": r.feasible,
                "shortfall": r.shortfall_ugm3,
                "max_reduction_ugm3": r.max_reduction_ugm3,
                "abatement": dict(zip(pb.precursors, map(float, r.fractions), strict=True)),
            }
            for r in self.independent
        }
        target_of = {pb.players[int(j)]: t for t, j in enumerate(pb.target_player)}
        regions = {}
        for j, name in enumerate(pb.players):
            entry: dict = {
                "cost_yuan": float(self.plan.cost_by_player[j]),
                "abatement": dict(zip(pb.precursors, map(float, self.plan.fractions[j]), strict=True)),
            }
            if name in target_of:
                t = target_of[name]
                entry |= {
                    "target_ugm3": float(pb.target_ugm3[t]),
                    "baseline_ugm3": float(pb.baseline_ugm3[t]),
                    "pm25_after_ugm3": float(self.pm25_after_ugm3[t]),
                    "slack_ugm3": float(pb.target_ugm3[t] - self.pm25_after_ugm3[t]),
                    "target_met": bool(self.pm25_after_ugm3[t] <= pb.target_ugm3[t] + TARGET_TOLERANCE_UGM3),
                }
            regions[name] = entry
        return {
            "units": {
                "money": unit,
                "concentration": "ug m-3",
                "shortfall": "ug m-3",
                "abatement": "fraction",
            },
            "cost_basis": self.cost_basis,
            "players": list(pb.players),
            "independent": independent,
            "independent_total_cost_yuan": float(sum(r.cost_yuan for r in self.independent)),
            "cooperative": {
                "total_cost_yuan": self.plan.cost_yuan,
                "penalty_yuan": self.plan.penalty_yuan,
                "linearisation_error_bound_yuan": self.plan.error_bound_yuan,
                "regions": regions,
            },
            "grand_coalition_value_yuan": self.grand_value_yuan,
            "shapley": self._by_player(self.shapley),
            "shapley_method": self.shapley_method,
            "shapley_stderr": None if self.shapley_stderr is None else self._by_player(self.shapley_stderr),
            "in_core": self.in_core,
            "core_nonempty": self.core_nonempty,
            "core_max_excess_yuan": self.core_max_excess_yuan,
            "core_worst_coalition": self.core_worst_coalition,
            "transfers": self._by_player(self.transfers),
            "polluter_pays": self._by_player(self.polluter_pays),
            "polluter_pays_transfers": self._by_player(self.polluter_pays_transfers),
            "polluter_pays_in_core": self.polluter_pays_in_core,
            "health": self.health,
        }


def polluter_pays_allocation(problem: AbatementProblem, total_cost: float) -> np.ndarray:
    """Share of ``total_cost`` per player, proportional to its PM2.5 contribution at exceeding receptors."""
    exceeding = problem.need > TARGET_TOLERANCE_UGM3
    contribution = np.clip(problem.effect[exceeding].sum(axis=(0, 2)), 0.0, None)
    if contribution.sum() <= 0.0:
        return np.zeros(problem.n_players)
    return total_cost * contribution / contribution.sum()


def cooperate(
    tables: xr.Dataset, policy: Policy, workers: int | None = None, origin: str = "policy"
) -> CooperationResult:
    """Run the cooperation analysis on a run's source-receptor tables.

    Parameters
    ----------
    tables
        Run dataset (see :mod:`airshed.cooperation.runfile` for the contract).
    policy
        Targets, cost curves and options (:func:`airshed.cooperation.policy.load_policy`).
    workers
        Processes for the coalition LPs (default: the CPUs available to this process).
    origin
        Name of the policy file, used in error messages.

    Returns
    -------
    CooperationResult
    """
    run = run_tables(tables)
    problem = build_problem(run, policy, origin)
    n = problem.n_players
    opts = policy.options
    everyone = np.ones(n, dtype=bool)
    plan = solve_plan(problem, everyone)
    assert plan is not None
    after = problem.baseline_ugm3 - np.einsum("tjp,jp->t", problem.effect, plan.fractions)
    own_penalty = np.zeros(n)
    np.add.at(own_penalty, problem.target_player, problem.penalty * plan.unmet_ugm3)
    pp = polluter_pays_allocation(problem, plan.cost_yuan)
    if n <= opts.exact_shapley_max_players:
        values = all_coalition_costs(problem, workers)
        # the grand coalition's LP is the cooperative plan's LP; reuse its value for exact efficiency
        values[-1] = plan.objective_yuan
        phi = shapley_exact(values)
        stderr, method = None, "exact"
        core = core_check(values, phi, "cost", rtol=1e-7)
        in_core, nonempty = core.in_core, core_is_nonempty(values, "cost", rtol=1e-7)
        max_excess = core.max_excess
        worst = [problem.players[j] for j in np.flatnonzero(members_of(core.worst_coalition, n))]
        pp_in_core = core_check(values, pp + own_penalty, "cost", rtol=1e-7).in_core
    else:
        phi, stderr = shapley_sampled(
            lambda masks: coalition_costs(problem, masks, workers), n, opts.shapley_permutations, opts.seed
        )
        # sampling is unbiased but not exactly efficient; restore sum(phi) = v(N) by spreading the gap evenly
        phi = phi + (plan.objective_yuan - phi.sum()) / n
        method = f"sampled ({opts.shapley_permutations} permutations, seed {opts.seed})"
        in_core = nonempty = pp_in_core = max_excess = worst = None
    return CooperationResult(
        problem=problem,
        cost_basis=opts.cost_basis,
        independent=independent_action(problem),
        plan=plan,
        pm25_after_ugm3=after,
        shapley=phi,
        shapley_stderr=stderr,
        shapley_method=method,
        grand_value_yuan=plan.objective_yuan,
        in_core=in_core,
        core_nonempty=nonempty,
        core_max_excess_yuan=max_excess,
        core_worst_coalition=worst,
        transfers=plan.cost_by_player - (phi - own_penalty),
        polluter_pays=pp,
        polluter_pays_transfers=plan.cost_by_player - pp,
        polluter_pays_in_core=pp_in_core,
        health=None if policy.health is None else health_damages(run, policy.health),
    )
