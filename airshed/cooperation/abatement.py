"""Least-cost abatement plans: independent action, cooperation, and coalition costs for the game.

Decision variables are abated fractions ``a[j, p]`` of precursor ``p`` in source region ``j``, applied
uniformly to all sectors of that region (the source-receptor table is per region and precursor, not per
sector). Abating ``a[j, p]`` lowers PM2.5 at receptor ``i`` by ``a[j, p] * SR[i, j, p]`` (linear model).

Cost of abating ``a`` of emissions ``E`` (tonnes) with marginal cost ``mc(x)`` (yuan per tonne, piecewise
linear and non-decreasing in the abated fraction ``x``) is ``C(a) = E * integral_0^a mc(x) dx``: convex and
piecewise quadratic. The LP replaces ``C`` by its secant interpolation at ``K`` equal sub-segments of
every linear piece of ``mc`` (``options.segments_per_piece``). Because ``C`` is convex the secants lie
above it, so for any plan the LP cost ``C_K`` satisfies

    0 <= C_K(a) - C(a) <= E * s * h**2 / 8,

with ``s`` the slope of ``mc`` (yuan per tonne per unit fraction) on the piece and ``h`` the sub-segment
width. Hence the LP optimum over-states the exact least cost by at most the sum of these bounds over the
abated (region, precursor) pairs; :attr:`AbatementProblem.error_bound_yuan` holds it. Secant slopes
increase along each curve, so the LP fills sub-segments in order and no integer variables are needed.

Coalition cost (the game's characteristic function): coalition ``S`` meets the targets of its members
with its members' abatement only (everyone else at baseline). A target it cannot meet is paid for at
``infeasible_penalty`` yuan per ug m-3 left unmet (a slack variable in the LP), so ``v(S)`` is finite.
LPs are solved with HiGHS through :func:`scipy.optimize.linprog`.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from airshed.cooperation.policy import CostCurve, Policy
from airshed.cooperation.runfile import RunTables
from airshed.errors import ConfigError, DataError

DAYS_PER_YEAR = 365.25
#: Reductions smaller than this (ug m-3) count as met; HiGHS' primal feasibility tolerance is 1e-7.
TARGET_TOLERANCE_UGM3 = 1e-6


def exact_total_cost(curve: CostCurve, tonnes: float, fraction: float) -> float:
    """Exact total cost ``E * integral_0^a mc(x) dx`` of abating ``fraction`` of ``tonnes``, in yuan.

    Parameters
    ----------
    curve
        Piecewise-linear marginal cost curve (yuan per tonne against abated fraction).
    tonnes
        Emissions subject to the abatement, t.
    fraction
        Abated fraction, ``0 <= fraction <= curve.max_fraction``.
    """
    pts = np.asarray(curve.marginal_cost, dtype=float)
    x, mc = pts[:, 0], pts[:, 1]
    knots = np.concatenate([x[x < fraction], [fraction]])
    values = np.interp(knots, x, mc)
    return float(tonnes * np.trapezoid(values, knots)) if knots.size > 1 else 0.0


def secant_segments(curve: CostCurve, tonnes: float, per_piece: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Secant linearisation of a total-cost curve up to ``max_fraction``.

    Returns
    -------
    widths
        Sub-segment widths (abated fraction).
    slopes
        LP cost per unit abated fraction on each sub-segment, yuan: ``E`` times the mean marginal cost.
    error_bound
        Largest over-statement of the exact cost by the secants, yuan (``max E s h^2 / 8``).
    """
    pts = np.asarray(curve.marginal_cost, dtype=float)
    x, mc = pts[:, 0], pts[:, 1]
    top = curve.max_fraction
    keep = x < top
    knots_x = np.concatenate([x[keep], [top]])
    knots_mc = np.interp(knots_x, x, mc)
    edges = np.concatenate(
        [np.linspace(a, b, per_piece + 1)[:-1] for a, b in zip(knots_x[:-1], knots_x[1:], strict=True)]
        + [[top]]
    )
    mc_edges = np.interp(edges, x, mc)
    widths = np.diff(edges)
    slopes = tonnes * 0.5 * (mc_edges[:-1] + mc_edges[1:])
    piece_slope = np.diff(knots_mc) / np.diff(knots_x)
    piece_h = np.diff(knots_x) / per_piece
    error_bound = float(np.max(tonnes * piece_slope * piece_h**2 / 8.0))
    return widths, slopes, error_bound


@dataclass(frozen=True)
class AbatementProblem:
    """Arrays of the abatement LPs, built once per run and policy.

    Players are the source regions that can abate (``options.players``, by default every source region
    except ``outside``); target rows belong to the player of the same name. Non-players stay at baseline.
    """

    players: list[str]
    precursors: list[str]
    target_regions: list[str]
    target_player: np.ndarray  # (n_targets,) int, index into players
    target_ugm3: np.ndarray  # (n_targets,)
    baseline_ugm3: np.ndarray  # (n_targets,) pm25_total at the target receptor
    effect: np.ndarray  # (n_targets, n_players, n_precursors) ug m-3 per unit abated fraction
    seg_width: np.ndarray  # (n_players, n_precursors, n_seg) abated fraction, 0 = padding
    seg_cost: np.ndarray  # (n_players, n_precursors, n_seg) yuan per unit abated fraction
    error_bound_pair: np.ndarray  # (n_players, n_precursors) yuan
    penalty: float  # yuan per ug m-3 unmet

    @property
    def need(self) -> np.ndarray:
        """Reduction needed at each target receptor, ug m-3 (<= 0 where already met)."""
        return self.baseline_ugm3 - self.target_ugm3

    @property
    def max_fraction(self) -> np.ndarray:
        """Largest abatable fraction per (player, precursor)."""
        return self.seg_width.sum(axis=2)

    @property
    def n_players(self) -> int:
        """Number of players (abating source regions)."""
        return len(self.players)


def build_problem(tables: RunTables, policy: Policy, origin: str = "policy") -> AbatementProblem:
    """Assemble the LP arrays from the run tables and the policy.

    Emissions are period tonnes; with ``cost_basis = "annual"`` they are scaled to tonnes per year by
    ``365.25 / period_days`` (see :mod:`airshed.cooperation.policy`). A (region, precursor) without a cost
    curve (neither its own nor ``default``) cannot be abated.
    """
    policy.check_regions(tables.receptors, tables.sources, origin)
    players = policy.players_in(tables.sources)
    player_src = [tables.sources.index(p) for p in players]
    opts = policy.options
    scale = 1.0
    if opts.cost_basis == "annual":
        if tables.period_days is None:
            raise DataError(
                "run: cost_basis = 'annual' needs the run period: attributes time_coverage_start and "
                "time_coverage_end missing"
            )
        scale = DAYS_PER_YEAR / tables.period_days
    n_p = len(tables.precursors)
    pieces: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, float]] = {}
    for j, src in enumerate(player_src):
        for k, species in enumerate(tables.precursors):
            curve = policy.curve(players[j], species)
            tonnes = tables.emissions[src, k] * scale
            if curve is not None and tonnes > 0.0:
                pieces[j, k] = secant_segments(curve, tonnes, opts.segments_per_piece)
    n_seg = max((w.size for w, _, _ in pieces.values()), default=1)
    seg_width = np.zeros((len(players), n_p, n_seg))
    seg_cost = np.zeros((len(players), n_p, n_seg))
    bound = np.zeros((len(players), n_p))
    for (j, k), (w, c, e) in pieces.items():
        seg_width[j, k, : w.size] = w
        seg_cost[j, k, : c.size] = c
        bound[j, k] = e
    if not pieces:
        raise ConfigError(
            f"{origin}: costs: no cost curve applies to any emitting source region and precursor"
        )
    target_regions = list(policy.targets)
    rec_idx = [tables.receptors.index(r) for r in target_regions]
    return AbatementProblem(
        players=players,
        precursors=list(tables.precursors),
        target_regions=target_regions,
        target_player=np.array([players.index(r) for r in target_regions], dtype=int),
        target_ugm3=np.array([policy.targets[r] for r in target_regions], dtype=float),
        baseline_ugm3=tables.pm25_total[rec_idx],
        effect=tables.source_receptor[np.ix_(rec_idx, player_src, range(n_p))],
        seg_width=seg_width,
        seg_cost=seg_cost,
        error_bound_pair=bound,
        penalty=opts.infeasible_penalty,
    )


@dataclass(frozen=True)
class Plan:
    """An abatement plan and its cost.

    ``cost_yuan`` is the LP (secant) abatement cost; ``penalty_yuan`` is ``infeasible_penalty`` times the
    unmet reductions; ``objective_yuan`` their sum (the coalition's ``v(S)``).
    """

    fractions: np.ndarray  # (n_players, n_precursors) abated fraction
    cost_by_player: np.ndarray  # (n_players,) yuan
    unmet_ugm3: np.ndarray  # (n_targets,) reduction still missing (0 for rows outside the coalition)
    penalty_yuan: float
    error_bound_yuan: float

    @property
    def cost_yuan(self) -> float:
        """Total abatement cost, yuan."""
        return float(self.cost_by_player.sum())

    @property
    def objective_yuan(self) -> float:
        """Abatement cost plus the penalty on unmet targets, yuan."""
        return self.cost_yuan + self.penalty_yuan


def members_of(mask: int, n: int) -> np.ndarray:
    """Boolean membership vector of the coalition bitmask ``mask`` (bit ``j`` = player ``j``)."""
    return (np.right_shift(mask, np.arange(n)) & 1).astype(bool)


def solve_plan(problem: AbatementProblem, members: np.ndarray, hard: bool = False) -> Plan | None:
    """Least-cost plan for a coalition to meet its members' targets with its members' abatement.

    Parameters
    ----------
    problem
        The LP arrays.
    members
        Boolean membership over players.
    hard
        If True, targets are hard constraints and None is returned when they cannot all be met;
        otherwise unmet reductions are allowed at ``problem.penalty`` yuan per ug m-3.

    Returns
    -------
    Plan or None
    """
    n, n_p, n_s = problem.seg_width.shape
    need = problem.need
    rows = np.flatnonzero(members[problem.target_player] & (need > TARGET_TOLERANCE_UGM3))
    fractions = np.zeros((n, n_p))
    cost_by_player = np.zeros(n)
    unmet = np.zeros(need.size)
    if rows.size == 0:
        return Plan(fractions, cost_by_player, unmet, 0.0, 0.0)
    eff = problem.effect[rows]  # (r, n, n_p)
    # a (region, precursor) enters the LP only if it is a member's, abatable, and helps some target row
    useful = members[:, None] & (problem.seg_width[:, :, 0] > 0.0) & np.any(eff > 0.0, axis=0)
    jj, kk = np.nonzero(useful)
    widths = problem.seg_width[jj, kk]  # (v, n_s)
    live = widths > 0.0
    col_pair = np.repeat(np.arange(jj.size), n_s).reshape(jj.size, n_s)[live]
    col_width = widths[live]
    col_cost = problem.seg_cost[jj, kk][live]
    a_eff = eff[:, jj, kk][:, col_pair]  # (r, cols): ug m-3 per unit fraction
    cost_scale = max(float(col_cost.max(initial=0.0)), 1.0)
    n_rows = rows.size
    if hard:
        c = col_cost / cost_scale
        a_ub = -a_eff
        upper = col_width
    else:
        c = np.concatenate([col_cost, np.full(n_rows, problem.penalty)]) / cost_scale
        a_ub = np.hstack([-a_eff, -np.eye(n_rows)])
        upper = np.concatenate([col_width, need[rows]])
    res = linprog(
        c,
        A_ub=a_ub,
        b_ub=-need[rows],
        bounds=np.column_stack([np.zeros(c.size), upper]),
        method="highs",
    )
    if res.status == 2 and hard:
        return None
    if res.status != 0:
        raise RuntimeError(f"abatement LP failed: {res.message}")
    x = res.x[: col_cost.size]
    pair_fraction = np.bincount(col_pair, weights=x, minlength=jj.size)
    pair_cost = np.bincount(col_pair, weights=x * col_cost, minlength=jj.size)
    fractions[jj, kk] = pair_fraction
    np.add.at(cost_by_player, jj, pair_cost)
    if not hard:
        unmet[rows] = np.maximum(res.x[col_cost.size :], 0.0)
    abated = pair_fraction > 0.0
    bound = float(problem.error_bound_pair[jj[abated], kk[abated]].sum())
    return Plan(fractions, cost_by_player, unmet, float(problem.penalty * unmet.sum()), bound)


def coalition_cost(problem: AbatementProblem, mask: int) -> float:
    """Characteristic function ``v(S)``, yuan: least cost plus penalty for coalition bitmask ``mask``."""
    plan = solve_plan(problem, members_of(mask, problem.n_players))
    assert plan is not None  # the penalised LP is always feasible
    return plan.objective_yuan


class WarmCoalitionSolver:
    """The grand coalition's penalised LP held in one HiGHS instance, re-solved for each coalition.

    A coalition is imposed by bounds only: non-members' abatement columns get upper bound 0 and their
    target rows become free, so the constraint matrix is built once and HiGHS re-solves from the previous
    optimal basis (dual simplex hot start). Visiting coalitions in Gray-code order changes one player per
    solve. Uses the HiGHS bindings bundled with SciPy (``scipy.optimize._highspy``, the same pybind11 core
    as the ``highspy`` package); :func:`coalition_costs` falls back to :func:`coalition_cost` (public
    ``linprog``) if they are unavailable. Tests check both give the same values.
    """

    def __init__(self, problem: AbatementProblem) -> None:
        from scipy.optimize._highspy import _core as highs

        self._highs = highs
        self.problem = problem
        jj, kk, ss = np.nonzero(problem.seg_width > 0.0)
        n_t = problem.need.size
        cost = np.concatenate([problem.seg_cost[jj, kk, ss], np.full(n_t, problem.penalty)])
        self._scale = max(float(cost.max(initial=0.0)), 1.0)
        self._upper = np.concatenate([problem.seg_width[jj, kk, ss], np.maximum(problem.need, 0.0)])
        a = np.hstack([problem.effect[:, jj, kk], np.eye(n_t)])
        cols = [np.nonzero(a[:, k])[0] for k in range(a.shape[1])]
        lp = highs.HighsLp()
        lp.num_col_, lp.num_row_ = cost.size, n_t
        lp.col_cost_ = cost / self._scale
        lp.col_lower_ = np.zeros(cost.size)
        lp.col_upper_ = self._upper.copy()
        lp.row_lower_ = problem.need.copy()
        lp.row_upper_ = np.full(n_t, highs.kHighsInf)
        lp.a_matrix_.format_ = highs.MatrixFormat.kColwise
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = cost.size, n_t
        lp.a_matrix_.start_ = np.concatenate([[0], np.cumsum([c.size for c in cols])]).astype(np.int32)
        lp.a_matrix_.index_ = np.concatenate(cols).astype(np.int32)
        lp.a_matrix_.value_ = np.concatenate([a[c, k] for k, c in enumerate(cols)])
        self._solver = highs._Highs()
        self._solver.setOptionValue("output_flag", False)
        self._solver.passModel(lp)
        slack_player = problem.target_player
        col_player = np.concatenate([jj, slack_player])
        self._player_cols = [
            np.flatnonzero(col_player == j).astype(np.int32) for j in range(problem.n_players)
        ]
        self._player_rows = [np.flatnonzero(slack_player == j) for j in range(problem.n_players)]
        self._mask = (1 << problem.n_players) - 1

    def _toggle(self, player: int, member: bool) -> None:
        cols = self._player_cols[player]
        upper = self._upper[cols] if member else np.zeros(cols.size)
        self._solver.changeColsBounds(cols.size, cols, np.zeros(cols.size), upper)
        for t in self._player_rows[player]:
            lower = self.problem.need[t] if member else -self._highs.kHighsInf
            self._solver.changeRowBounds(int(t), lower, self._highs.kHighsInf)

    def value(self, mask: int) -> float:
        """``v(S)`` of the coalition bitmask ``mask``, yuan."""
        diff = mask ^ self._mask
        while diff:
            j = diff.bit_length() - 1
            self._toggle(j, bool(mask >> j & 1))
            diff ^= 1 << j
        self._mask = mask
        self._solver.run()
        if self._solver.getModelStatus() != self._highs.HighsModelStatus.kOptimal:
            return coalition_cost(self.problem, mask)  # let the reference path solve or report it
        return float(self._solver.getInfo().objective_function_value) * self._scale


_WORKER_PROBLEM: AbatementProblem | None = None
_WORKER_SOLVER: WarmCoalitionSolver | None = None


def _init_worker(problem: AbatementProblem) -> None:
    global _WORKER_PROBLEM, _WORKER_SOLVER
    _WORKER_PROBLEM, _WORKER_SOLVER = problem, None


def _solve_masks(
    problem: AbatementProblem, solver: WarmCoalitionSolver | None, masks: np.ndarray
) -> np.ndarray:
    if solver is None:
        return np.array([coalition_cost(problem, int(m)) for m in masks])
    return np.array([solver.value(int(m)) for m in masks])


def _warm_solver(problem: AbatementProblem) -> WarmCoalitionSolver | None:
    try:
        return WarmCoalitionSolver(problem)
    except (ImportError, AttributeError):  # a SciPy without its bundled HiGHS bindings: use linprog
        return None


def _costs_of_masks(masks: np.ndarray) -> np.ndarray:
    global _WORKER_SOLVER
    assert _WORKER_PROBLEM is not None
    if _WORKER_SOLVER is None:
        _WORKER_SOLVER = _warm_solver(_WORKER_PROBLEM)
    return _solve_masks(_WORKER_PROBLEM, _WORKER_SOLVER, masks)


def default_workers() -> int:
    """Worker processes for coalition LPs: the CPUs this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def gray_code_order(n: int) -> np.ndarray:
    """All ``2**n`` coalition bitmasks ordered so that neighbours differ by one player."""
    k = np.arange(2**n, dtype=np.int64)
    return k ^ (k >> 1)


def coalition_costs(problem: AbatementProblem, masks: np.ndarray, workers: int | None = None) -> np.ndarray:
    """``v(S)`` for many coalition bitmasks, in the given order's warm-started LPs.

    Masks are split into contiguous chunks, one warm-started solver per worker process (the LP arrays
    are sent once per worker by the pool initializer). Order masks so that neighbours differ little
    (:func:`gray_code_order`) for the best warm starts. Workers are started with ``spawn``: the caller
    may hold threads (Numba, BLAS, netCDF) that ``fork`` would copy in an undefined state.
    """
    masks = np.asarray(masks, dtype=np.int64)
    workers = default_workers() if workers is None else workers
    if workers <= 1 or masks.size < 256:
        return _solve_masks(problem, _warm_solver(problem), masks)
    chunks = np.array_split(masks, workers * 2)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(problem,)) as pool:
        return np.concatenate(list(pool.map(_costs_of_masks, chunks)))


def all_coalition_costs(problem: AbatementProblem, workers: int | None = None) -> np.ndarray:
    """``v(S)`` for all ``2**n`` coalitions, indexed by bitmask (``v[0] = 0``)."""
    order = gray_code_order(problem.n_players)
    values = np.empty(order.size)
    values[order] = coalition_costs(problem, order, workers)
    return values


def max_reduction_ugm3(problem: AbatementProblem, members: np.ndarray) -> np.ndarray:
    """Largest reduction a coalition's abatement can achieve at each target receptor, ug m-3."""
    gain = np.clip(problem.effect, 0.0, None) * problem.max_fraction[None]
    return (gain * members[None, :, None]).sum(axis=(1, 2))


@dataclass(frozen=True)
class IndependentResult:
    """One receptor region meeting its own target alone (others at baseline)."""

    region: str
    feasible: bool
    cost_yuan: float  # least cost if feasible, else cost of the cheapest plan achieving max_reduction
    shortfall_ugm3: float  # 0 if feasible
    max_reduction_ugm3: float
    fractions: np.ndarray  # (n_precursors,)


def independent_action(problem: AbatementProblem) -> list[IndependentResult]:
    """Each target region meets its own target with its own abatement only.

    Where that is impossible, ``shortfall`` is the need minus the largest reduction the region can make
    alone, and the cost is that of abating every precursor that lowers its PM2.5 to ``max_fraction``.
    """
    out = []
    for t, region in enumerate(problem.target_regions):
        j = int(problem.target_player[t])
        members = np.zeros(problem.n_players, dtype=bool)
        members[j] = True
        reach = float(max_reduction_ugm3(problem, members)[t])
        need = float(problem.need[t])
        plan = solve_plan(problem, members, hard=True) if need <= reach + TARGET_TOLERANCE_UGM3 else None
        if plan is not None:
            out.append(IndependentResult(region, True, plan.cost_yuan, 0.0, reach, plan.fractions[j]))
            continue
        helps = (problem.effect[t, j] > 0.0) & (problem.seg_width[j, :, 0] > 0.0)
        fractions = np.where(helps, problem.max_fraction[j], 0.0)
        cost = float((problem.seg_cost[j] * problem.seg_width[j]).sum(axis=1)[helps].sum())
        out.append(IndependentResult(region, False, cost, need - reach, reach, fractions))
    return out
