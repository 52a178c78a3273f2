"""The target game: least-cost abatement plans that meet PM2.5 targets, alone and in coalitions.

A regulator's game beside the welfare game of :mod:`airshed.cooperation.gamma`: regions are given
targets for their period-mean PM2.5 and share the cost of meeting them. Decision variables are abated
fractions ``a[j, p]`` of precursor ``p`` in source region ``j`` (uniform over sectors); abating lowers
PM2.5 at receptor ``i`` by ``a[j, p] * SR[i, j, p]`` (linear model, exact).

Characteristic function ("best effort"). Coalition ``S`` abates with its members only (everyone else at
baseline) and, for each member ``i`` with a target, reaches

    c_i <= max(T_i, c0_i - R_i(S)),   R_i(S) = sum_{j in S, p} SR[i, j, p] * max_fraction[j, p],

at least cost: its target where its own abatement can reach it, else the largest reduction it can make
(``R_i(S)`` is attained at every receptor at once by abating everything to the maximum, so these
constraints are always feasible). ``v(S)`` is that least cost: finite for every coalition, and never a
penalty. The grand coalition must be able to meet every target (:func:`check_attainable` says which
cannot, by how much, and what is attainable), so ``v(N)`` is the cost of meeting all targets.

Costs are the convex, piecewise-quadratic curves of :mod:`airshed.cooperation.costs`, replaced here by
their secants (``options.segments_per_piece`` per linear piece of the marginal cost) so that each
coalition is one linear programme. The secants lie above the exact cost, so the LP optimum over-states
the exact least cost by at most the sum of ``E s h^2 / 8`` over the abated (region, precursor) pairs
(:attr:`Plan.error_bound_yuan`). Secant slopes increase along each curve, so the LP fills sub-segments
in order and no integer variables are needed.

LPs are solved with HiGHS: the plans through :func:`scipy.optimize.linprog`, and the ``2^n`` coalition
values through one :mod:`highspy` model re-solved from the previous basis for each coalition
(:class:`WarmCoalitionSolver`).
"""

from __future__ import annotations

import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import highspy
import numpy as np
from scipy.optimize import linprog

from airshed.cooperation.costs import CurveArrays, secant_segments
from airshed.cooperation.policy import Policy
from airshed.cooperation.runfile import RunTables
from airshed.errors import ConfigError, DataError

DAYS_PER_YEAR = 365.25
#: Reductions smaller than this (ug m-3) count as met; HiGHS' primal feasibility tolerance is 1e-7.
TARGET_TOLERANCE_UGM3 = 1e-6
#: A best-effort constraint asks for this fraction of the attainable reduction, so that round-off in
#: the sum of the maximal abatements never makes the LP infeasible (1e-10 of tens of ug m-3).
_REACH_MARGIN = 1.0 - 1e-10

GAME_NAME = "target game (least cost of meeting PM2.5 targets)"
CHARACTERISTIC_FUNCTION = (
    "v(S) = least abatement cost for the members of S, abating alone (everyone else at baseline), to bring "
    "each member's PM2.5 to its target, or as far towards it as S's own abatement can reach"
)


class InfeasibleTargetsError(ConfigError):
    """Targets that not even every player abating to the maximum can meet."""


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

    def reach(self, members: np.ndarray) -> np.ndarray:
        """Largest reduction ``R_i(S)`` the members' abatement achieves at each target receptor, ug m-3."""
        gain = np.clip(self.effect, 0.0, None) * self.max_fraction[None]
        return (gain * members[None, :, None]).sum(axis=(1, 2))

    def required(self, members: np.ndarray) -> np.ndarray:
        """Reduction the coalition must make at each target receptor (0 for non-members' targets)."""
        own = members[self.target_player] & (self.need > TARGET_TOLERANCE_UGM3)
        return np.where(own, np.minimum(self.need, _REACH_MARGIN * self.reach(members)), 0.0)


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
                pieces[j, k] = secant_segments(CurveArrays.from_curve(curve, tonnes), opts.segments_per_piece)
    if not pieces:
        raise ConfigError(
            f"{origin}: costs: no cost curve applies to any emitting source region and precursor"
        )
    n_seg = max(w.size for w, _, _ in pieces.values())
    seg_width = np.zeros((len(players), n_p, n_seg))
    seg_cost = np.zeros((len(players), n_p, n_seg))
    bound = np.zeros((len(players), n_p))
    for (j, k), (w, c, e) in pieces.items():
        seg_width[j, k, : w.size] = w
        seg_cost[j, k, : c.size] = c
        bound[j, k] = e
    target_regions = list(policy.targets or {})
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
    )


@dataclass(frozen=True)
class Unattainable:
    """A target that no coalition can meet: its shortfall with every player abating to the maximum."""

    region: str
    target_ugm3: float
    baseline_ugm3: float
    max_reduction_ugm3: float

    @property
    def shortfall_ugm3(self) -> float:
        """Reduction missing at the best, ug m-3."""
        return self.baseline_ugm3 - self.max_reduction_ugm3 - self.target_ugm3

    @property
    def attainable_ugm3(self) -> float:
        """Lowest target the players can meet together, rounded up to 0.1 ug m-3."""
        return math.ceil((self.baseline_ugm3 - self.max_reduction_ugm3) * 10.0 - 1e-9) / 10.0


def unattainable_targets(problem: AbatementProblem) -> list[Unattainable]:
    """Targets the grand coalition cannot meet (empty when every target is attainable)."""
    reach = problem.reach(np.ones(problem.n_players, dtype=bool))
    return [
        Unattainable(region, float(problem.target_ugm3[t]), float(problem.baseline_ugm3[t]), float(reach[t]))
        for t, region in enumerate(problem.target_regions)
        if problem.need[t] > reach[t] + TARGET_TOLERANCE_UGM3
    ]


def check_attainable(problem: AbatementProblem, origin: str = "policy") -> None:
    """Raise :class:`InfeasibleTargetsError` naming every target the players cannot meet together.

    The message gives, per target, the shortfall with every player abating to its ``max_fraction`` and
    the lowest attainable target.
    """
    bad = unattainable_targets(problem)
    if bad:
        items = "; ".join(
            f"targets.{u.region} = {u.target_ugm3:g} (baseline {u.baseline_ugm3:.1f}, at most "
            f"{u.max_reduction_ugm3:.1f} removable: short by {u.shortfall_ugm3:.1f} ug m-3; attainable "
            f"{u.attainable_ugm3:.1f})"
            for u in bad
        )
        raise InfeasibleTargetsError(
            f"{origin}: {len(bad)} target(s) cannot be met even with every player abating to its "
            f"max_fraction: {items}. Set them at or above the attainable values, add players or raise "
            "max_fraction"
        )


@dataclass(frozen=True)
class Plan:
    """A coalition's least-cost plan: abated fractions, cost per player, the part of needs left unmet.

    ``shortfall_ugm3`` is positive only for member targets the coalition cannot reach (best effort).
    """

    fractions: np.ndarray  # (n_players, n_precursors) abated fraction
    cost_by_player: np.ndarray  # (n_players,) yuan
    shortfall_ugm3: np.ndarray  # (n_targets,)
    error_bound_yuan: float

    @property
    def cost_yuan(self) -> float:
        """Total abatement cost, yuan."""
        return float(self.cost_by_player.sum())


def members_of(mask: int, n: int) -> np.ndarray:
    """Boolean membership vector of the coalition bitmask ``mask`` (bit ``j`` = player ``j``)."""
    return (np.right_shift(mask, np.arange(n)) & 1).astype(bool)


def solve_plan(problem: AbatementProblem, members: np.ndarray) -> Plan:
    """Least-cost plan of a coalition: its members' targets, or as far as its own abatement reaches."""
    n, n_p, _ = problem.seg_width.shape
    required = problem.required(members)
    rows = np.flatnonzero(required > 0.0)
    fractions = np.zeros((n, n_p))
    cost_by_player = np.zeros(n)
    own = members[problem.target_player]
    shortfall = np.where(own, np.clip(problem.need - required, 0.0, None), 0.0)
    shortfall[shortfall <= TARGET_TOLERANCE_UGM3] = 0.0
    if rows.size == 0:
        return Plan(fractions, cost_by_player, shortfall, 0.0)
    eff = problem.effect[rows]  # (r, n, n_p)
    # a (region, precursor) enters the LP only if it is a member's, abatable, and helps some target row
    useful = members[:, None] & (problem.seg_width[:, :, 0] > 0.0) & np.any(eff > 0.0, axis=0)
    jj, kk = np.nonzero(useful)
    widths = problem.seg_width[jj, kk]  # (v, n_s)
    live = widths > 0.0
    col_pair = np.repeat(np.arange(jj.size), widths.shape[1]).reshape(widths.shape)[live]
    col_cost = problem.seg_cost[jj, kk][live]
    a_eff = eff[:, jj, kk][:, col_pair]  # (r, cols): ug m-3 per unit fraction
    cost_scale = max(float(col_cost.max(initial=0.0)), 1.0)
    res = linprog(
        col_cost / cost_scale,
        A_ub=-a_eff,
        b_ub=-required[rows],
        bounds=np.column_stack([np.zeros(col_cost.size), widths[live]]),
        method="highs",
    )
    if res.status != 0:
        raise RuntimeError(f"abatement LP failed: {res.message}")
    pair_fraction = np.bincount(col_pair, weights=res.x, minlength=jj.size)
    pair_cost = np.bincount(col_pair, weights=res.x * col_cost, minlength=jj.size)
    fractions[jj, kk] = pair_fraction
    np.add.at(cost_by_player, jj, pair_cost)
    abated = pair_fraction > 0.0
    bound = float(problem.error_bound_pair[jj[abated], kk[abated]].sum())
    return Plan(fractions, cost_by_player, shortfall, bound)


def coalition_cost(problem: AbatementProblem, mask: int) -> float:
    """Characteristic function ``v(S)``, yuan, of coalition bitmask ``mask`` (one cold LP)."""
    return solve_plan(problem, members_of(mask, problem.n_players)).cost_yuan


class QuietHighs(highspy.Highs):
    """:class:`highspy.Highs` that logs nothing, not even its banner.

    HiGHS prints "Running HiGHS ..." to the C stdout on the first method call of an instance unless
    ``output_flag`` is already off, and ``highspy.Highs.__init__`` makes that call
    (``enableCallbacks``) before a caller can set options; ``airshed cooperate --json -`` must print
    nothing but JSON. Switching the flag off inside that first call keeps the banner out.
    """

    def enableCallbacks(self) -> None:  # noqa: N802 (HiGHS' name)
        """Switch logging off, then enable HiGHS' callbacks as the base class does."""
        self.setOptionValue("output_flag", False)
        super().enableCallbacks()


class WarmCoalitionSolver:
    """The grand coalition's LP held in one HiGHS instance (:mod:`highspy`), re-solved for each coalition.

    A coalition is imposed by bounds only: non-members' abatement columns get upper bound 0 and each row
    asks for the coalition's required reduction (free for non-members' targets), so the constraint
    matrix is built once and HiGHS re-solves from the previous optimal basis (dual simplex hot start).
    Visiting coalitions in Gray-code order changes one player per solve.
    """

    def __init__(self, problem: AbatementProblem) -> None:
        self.problem = problem
        jj, kk, ss = np.nonzero(problem.seg_width > 0.0)
        cost = problem.seg_cost[jj, kk, ss]
        self._scale = max(float(cost.max(initial=0.0)), 1.0)
        self._upper = problem.seg_width[jj, kk, ss]
        n_t = problem.need.size
        a = problem.effect[:, jj, kk]  # (n_t, cols)
        cols = [np.nonzero(a[:, k])[0] for k in range(a.shape[1])]
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = cost.size, n_t
        lp.col_cost_ = cost / self._scale
        lp.col_lower_ = np.zeros(cost.size)
        lp.col_upper_ = self._upper.copy()
        lp.row_lower_ = np.full(n_t, -highspy.kHighsInf)
        lp.row_upper_ = np.full(n_t, highspy.kHighsInf)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = cost.size, n_t
        lp.a_matrix_.start_ = np.concatenate([[0], np.cumsum([c.size for c in cols])]).astype(np.int32)
        lp.a_matrix_.index_ = np.concatenate(cols).astype(np.int32) if cols else np.zeros(0, np.int32)
        lp.a_matrix_.value_ = np.concatenate([a[c, k] for k, c in enumerate(cols)]) if cols else np.zeros(0)
        self._solver = QuietHighs()
        self._solver.passModel(lp)
        self._player_cols = [np.flatnonzero(jj == j).astype(np.int32) for j in range(problem.n_players)]
        self._rows = np.arange(n_t, dtype=np.int32)
        self._mask = (1 << problem.n_players) - 1

    def value(self, mask: int) -> float:
        """``v(S)`` of the coalition bitmask ``mask``, yuan."""
        diff = mask ^ self._mask
        while diff:
            j = diff.bit_length() - 1
            cols = self._player_cols[j]
            upper = self._upper[cols] if mask >> j & 1 else np.zeros(cols.size)
            self._solver.changeColsBounds(cols.size, cols, np.zeros(cols.size), upper)
            diff ^= 1 << j
        self._mask = mask
        required = self.problem.required(members_of(mask, self.problem.n_players))
        lower = np.where(required > 0.0, required, -highspy.kHighsInf)
        upper = np.full(lower.size, highspy.kHighsInf)
        self._solver.changeRowsBounds(self._rows.size, self._rows, lower, upper)
        self._solver.run()
        if self._solver.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return coalition_cost(self.problem, mask)  # the cold path solves it or says why not
        return float(self._solver.getInfo().objective_function_value) * self._scale


_WORKER_SOLVER: WarmCoalitionSolver | None = None


def _init_worker(problem: AbatementProblem) -> None:
    global _WORKER_SOLVER
    _WORKER_SOLVER = WarmCoalitionSolver(problem)


def _costs_of_masks(masks: np.ndarray) -> np.ndarray:
    assert _WORKER_SOLVER is not None
    return np.array([_WORKER_SOLVER.value(int(m)) for m in masks])


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
        solver = WarmCoalitionSolver(problem)
        return np.array([solver.value(int(m)) for m in masks])
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
    values[0] = 0.0
    return values
