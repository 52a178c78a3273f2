"""The gamma game of Chander and Tulkens on a linear source-receptor model: who abates, who pays whom.

Players are source regions ``i`` that choose abated fractions ``a[i, p]`` of their emissions of each
precursor ``p`` (uniform over sectors). A player's cost is its abatement cost plus the money value of
the health damage of PM2.5 at its own receptor,

    cost_i(a) = C_i(a_i) + D_i(c_i),   c_i = c0_i - sum_{j,p} SR[i, j, p] a[j, p],

with ``C_i`` the convex, piecewise-quadratic cost of :mod:`airshed.cooperation.costs`, ``c0`` the run's
population-weighted PM2.5 (everything outside the game stays at its baseline) and ``SR`` the run's
``pm25_source_receptor`` table (ug m-3 removed at ``i`` when ``j`` abates all of ``p``; the model is
linear in emissions, so this is exact). Damages are linear around the run's baseline,
``D_i(c) = D_i(c0) - pi_i (c0_i - c)``, with ``pi_i`` the marginal damage of the health module in yuan
per ug m-3 (:class:`airshed.cooperation.health.Damages`): acute deaths during the run for event-style
control, chronic deaths per year for annual control. The linearisation is checked and reported against
the full exposure-response function at the cooperative outcome.

Characteristic function (Chander and Tulkens 1997, Int. J. Game Theory 26:379, the "gamma" assumption;
also 1995, Int. Tax Public Finance 2:279): a coalition ``S`` chooses its members' abatement to minimise
their joint cost while the players outside ``S`` play their individual best replies to it (a Nash
equilibrium between ``S`` and the singletons outside). ``v(S)`` is the members' total cost there.

Why every coalition is cheap to evaluate. With linear damages a player's marginal benefit of abating is a
constant, ``w[j, p] = sum_{i in S} pi_i SR[i, j, p]`` summed over the players whose cost it enters, so

* an outsider's best reply does not depend on what anyone else does: it is a dominant strategy, the same
  as in the all-singleton Nash equilibrium (``w = pi_j SR[j, j, p]``); the equilibrium between ``S`` and
  the outsiders needs no iteration;
* the coalition's problem separates into one-dimensional convex problems ``min C_jp(a) - w a``, solved
  exactly by inverting the marginal cost (:meth:`CurveArrays.best_reply`).

All ``2^n`` coalition values follow from a few vectorised array operations (about 8 us of CPU per
coalition: 2 s for the 262,144 coalitions of 18 players, 8 s for 20) instead of ``2^n`` optimisations.
:func:`qp_coalition_value` is the reference twin: one coalition's problem handed to HiGHS as a convex
QP (tests compare the two; ``benchmarks/bench_cooperation.py`` times them).

Allocations, as net costs (cost + damage - transfer received), both checked against all coalitions:

Shapley value (Shapley 1953) of ``v``.
Chander-Tulkens
    Each region pays its Nash cost less a share of the surplus of cooperation,
    ``x_i = N_i - theta_i (sum_j N_j - v(N))``, with ``theta_i = pi_i / sum_j pi_j`` in the paper's
    model of one uniformly mixed pollutant. Here the pollutant does not mix uniformly, so the surplus is
    split by the source that creates it: moving ``(j, p)`` from its Nash to its cooperative abatement
    saves ``h[j, p] = C_jp(a^n) - C_jp(a*) + w_N[j, p] (a* - a^n)`` (the surpluses add up to
    ``sum_j N_j - v(N)``), and ``h[j, p]`` goes to the regions in proportion to the marginal damage that
    source does to them, ``pi_i SR[i, j, p] / w_N[j, p]``. With uniform mixing (``SR[i, j, p]`` equal for
    all ``i``) this is exactly the paper's ``pi_i / sum pi``.

Why both allocations are in the gamma-core (a result, not an assumption: ``in_core`` is computed).
``h_jp(w) = max_a [w (a - a^n) - C_jp(a) + C_jp(a^n)]`` is convex, zero and minimal at the Nash benefit
``w^n``, non-decreasing above it, and the surplus of a coalition is ``W(S) = sum_{j in S, p}
h_jp(w_jp(S))`` with ``w^n <= w(S) <= w(N)`` when ``SR >= 0``. (1) Convexity of ``h`` along
``[w^n, w(N)]`` gives ``h_jp(w(S)) <= lambda h_jp(w(N))`` with ``lambda = (w(S) - w^n) / (w(N) - w^n)
<= sum_{i in S} pi_i SR[i, j, p] / w_N[j, p]``, so the Chander-Tulkens shares of any ``S`` cover its own
surplus: the allocation is in the core (for uniform mixing, the paper's theorem). (2) ``W`` is
supermodular (each ``h`` is convex and non-decreasing in ``w(S)``, which grows with ``S``), so the cost
game is concave, its core is non-empty and contains the Shapley value (Shapley 1971, Int. J. Game Theory
1:11).
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np

from airshed.cooperation.abatement import QuietHighs
from airshed.cooperation.costs import CurveArrays
from airshed.cooperation.health import Damages
from airshed.cooperation.policy import Policy
from airshed.cooperation.runfile import RunTables
from airshed.errors import ConfigError, DataError

DAYS_PER_YEAR = 365.25
#: Coalitions evaluated per array block (keeps the (block, players, precursors) arrays near 10 MB).
_BLOCK = 1 << 14

GAME_NAME = "gamma-characteristic-function abatement game (Chander & Tulkens 1997)"
CHARACTERISTIC_FUNCTION = (
    "v(S) = least joint cost (abatement + health damage) of the members of S while every region outside "
    "S plays its individual best reply (Chander & Tulkens 1997, Int. J. Game Theory 26:379)"
)


@dataclass(frozen=True)
class GammaGame:
    """Arrays of the gamma game (see the module docstring for the symbols)."""

    players: list[str]
    precursors: list[str]
    curves: tuple[tuple[CurveArrays | None, ...], ...]  # [player][precursor]; None: cannot abate
    transfer: np.ndarray  # (n, n, P) SR[i, j, p]: ug m-3 at player i per unit abated fraction of (j, p)
    baseline_ugm3: np.ndarray  # (n,) c0 at each player's receptor
    baseline_damage_yuan: np.ndarray  # (n,) D_i(c0)
    marginal_damage: np.ndarray  # (n,) pi_i, yuan per ug m-3
    receptor_index: np.ndarray  # (n,) each player's row in the run's receptors

    @property
    def n_players(self) -> int:
        """Number of players."""
        return len(self.players)

    @property
    def benefit(self) -> np.ndarray:
        """``mu[i, j, p] = pi_i SR[i, j, p]``: yuan saved by ``i`` per unit abated fraction of ``(j, p)``."""
        return self.marginal_damage[:, None, None] * self.transfer

    @property
    def max_fraction(self) -> np.ndarray:
        """Largest abatable fraction per (player, precursor); 0 where no curve applies."""
        return np.array([[0.0 if c is None else c.max_fraction for c in row] for row in self.curves])


def build_game(tables: RunTables, policy: Policy, damage: Damages, origin: str = "policy") -> GammaGame:
    """Build the gamma game of a run and a policy (``damage``: :func:`airshed.cooperation.health.damages`).

    Raises
    ------
    ConfigError
        If a player has no receptor region in the run (it would have no damage) or no cost curve applies.
    DataError
        If the source-receptor table has negative entries (the linear model cannot produce them).
    """
    policy.check_regions(tables.receptors, tables.sources, origin)
    players = policy.players_in(tables.sources)
    missing = [p for p in players if p not in tables.receptors]
    if missing:
        raise ConfigError(
            f"{origin}: options.players: {missing} are source regions without a receptor region in the run, "
            "so the gamma game has no damage for them; leave them out of options.players"
        )
    sr = tables.source_receptor
    if np.any(sr < -1e-12 * max(float(np.abs(sr).max()), 1.0)):
        raise DataError("run: pm25_source_receptor has negative contributions; a linear model has none")
    scale = 1.0
    if policy.options.cost_basis == "annual":
        if tables.period_days is None:
            raise DataError(
                "run: cost_basis = 'annual' needs the run period: attributes time_coverage_start and "
                "time_coverage_end missing"
            )
        scale = DAYS_PER_YEAR / tables.period_days
    src = [tables.sources.index(p) for p in players]
    rec = np.array([tables.receptors.index(p) for p in players])
    curves = []
    for j, name in enumerate(players):
        row = []
        for k, species in enumerate(tables.precursors):
            curve = policy.curve(name, species)
            tonnes = float(tables.emissions[src[j], k]) * scale
            row.append(CurveArrays.from_curve(curve, tonnes) if curve is not None and tonnes > 0.0 else None)
        curves.append(tuple(row))
    if all(c is None for row in curves for c in row):
        raise ConfigError(f"{origin}: costs: no cost curve applies to any emitting player and precursor")
    return GammaGame(
        players=players,
        precursors=list(tables.precursors),
        curves=tuple(curves),
        transfer=np.clip(sr[np.ix_(rec, src, range(len(tables.precursors)))], 0.0, None),
        baseline_ugm3=tables.pm25_total[rec],
        baseline_damage_yuan=damage.value_yuan[rec],
        marginal_damage=damage.marginal_yuan_per_ugm3[rec],
        receptor_index=rec,
    )


def best_replies(game: GammaGame, benefit: np.ndarray) -> np.ndarray:
    """Abated fractions ``(..., n, P)`` that minimise ``C_jp(a) - w a`` for marginal benefits ``w``."""
    out = np.zeros(benefit.shape)
    for j, row in enumerate(game.curves):
        for p, curve in enumerate(row):
            if curve is not None:
                out[..., j, p] = curve.best_reply(benefit[..., j, p])
    return out


def pair_costs(game: GammaGame, abatement: np.ndarray) -> np.ndarray:
    """Exact abatement cost of each (player, precursor), yuan, for fractions ``(..., n, P)``."""
    out = np.zeros(abatement.shape)
    for j, row in enumerate(game.curves):
        for p, curve in enumerate(row):
            if curve is not None:
                out[..., j, p] = curve.cost(abatement[..., j, p])
    return out


def nash_abatement(game: GammaGame) -> np.ndarray:
    """Abatement ``(n, P)`` of the non-cooperative equilibrium: each player counts only its own damage."""
    own = game.benefit[np.arange(game.n_players), np.arange(game.n_players)]  # mu[j, j, p]
    return best_replies(game, own)


@dataclass(frozen=True)
class Outcome:
    """Abatement and each player's cost, damage and PM2.5 for one or more plans (leading axes)."""

    abatement: np.ndarray  # (..., n, P)
    pair_cost_yuan: np.ndarray  # (..., n, P)
    damage_yuan: np.ndarray  # (..., n)
    pm25_ugm3: np.ndarray  # (..., n)

    @property
    def abatement_cost_yuan(self) -> np.ndarray:
        """Abatement cost per player, yuan."""
        return self.pair_cost_yuan.sum(axis=-1)

    @property
    def total_cost_yuan(self) -> np.ndarray:
        """Abatement cost plus damage per player, yuan."""
        return self.abatement_cost_yuan + self.damage_yuan


def outcome(game: GammaGame, abatement: np.ndarray) -> Outcome:
    """Costs, linear damages and concentrations of abatement plans ``(..., n, P)``."""
    n, n_p = game.n_players, len(game.precursors)
    flat = abatement.reshape(-1, n * n_p)
    reduction = (flat @ game.transfer.reshape(n, n * n_p).T).reshape(abatement.shape[:-1])
    return Outcome(
        abatement=abatement,
        pair_cost_yuan=pair_costs(game, abatement),
        damage_yuan=game.baseline_damage_yuan - game.marginal_damage * reduction,
        pm25_ugm3=game.baseline_ugm3 - reduction,
    )


def membership(masks: np.ndarray, n: int) -> np.ndarray:
    """Boolean ``(len(masks), n)``: bit ``j`` of each coalition bitmask."""
    return (np.asarray(masks, dtype=np.int64)[:, None] >> np.arange(n)) & 1 == 1


def coalition_abatement(game: GammaGame, members: np.ndarray, nash: np.ndarray) -> np.ndarray:
    """Abatement ``(m, n, P)`` of the gamma equilibria of coalitions ``members`` ``(m, n)``.

    Members abate for the sum of the members' marginal damages; outsiders keep their (dominant) Nash
    abatement ``nash``.
    """
    n, n_p = game.n_players, len(game.precursors)
    weights = members.astype(float) @ game.benefit.reshape(n, n * n_p)
    joint = best_replies(game, weights.reshape(-1, n, n_p))
    return np.where(members[:, :, None], joint, nash[None])


def coalition_values(game: GammaGame, masks: np.ndarray) -> np.ndarray:
    """``v(S)`` of coalition bitmasks, yuan: the members' cost + damage at the gamma equilibrium."""
    masks = np.asarray(masks, dtype=np.int64)
    nash = nash_abatement(game)
    values = np.empty(masks.size)
    for start in range(0, masks.size, _BLOCK):
        block = masks[start : start + _BLOCK]
        members = membership(block, game.n_players)
        result = outcome(game, coalition_abatement(game, members, nash))
        values[start : start + block.size] = np.where(members, result.total_cost_yuan, 0.0).sum(axis=1)
    return values


def all_coalition_values(game: GammaGame) -> np.ndarray:
    """``v(S)`` for all ``2^n`` coalitions, indexed by bitmask (``v[0] = 0``)."""
    return coalition_values(game, np.arange(2**game.n_players, dtype=np.int64))


def grand_coalition_abatement(game: GammaGame) -> np.ndarray:
    """Abatement ``(n, P)`` that minimises the players' total cost (the grand coalition's optimum)."""
    everyone = np.ones((1, game.n_players), dtype=bool)
    return coalition_abatement(game, everyone, nash_abatement(game))[0]


@dataclass(frozen=True)
class ChanderTulkens:
    """The Chander-Tulkens allocation: net cost per player and the surplus by abating source."""

    net_cost_yuan: np.ndarray  # (n,)
    surplus_by_source_yuan: np.ndarray  # (n, P): h[j, p]
    share: np.ndarray  # (n, n, P): share of h[j, p] going to player i


def chander_tulkens(game: GammaGame, nash: Outcome, optimum: Outcome) -> ChanderTulkens:
    """Net costs ``N_i - sum_{j,p} h[j, p] share[i, j, p]`` (see the module docstring)."""
    mu = game.benefit
    w_all = mu.sum(axis=0)  # (n, P)
    gain = optimum.abatement - nash.abatement
    surplus = nash.pair_cost_yuan - optimum.pair_cost_yuan + w_all * gain
    share = np.divide(mu, w_all[None], out=np.zeros_like(mu), where=w_all[None] > 0.0)
    received = np.einsum("ijp,jp->i", share, surplus)
    return ChanderTulkens(nash.total_cost_yuan - received, surplus, share)


def qp_coalition_value(game: GammaGame, mask: int) -> float:
    """``v(S)`` with the coalition's problem solved by HiGHS as a convex QP: the reference twin.

    One variable per linear piece ``k`` of each member's marginal-cost curve, ``0 <= y <= width_k``, with
    cost ``E (mc_k y + s_k y^2 / 2) - w y`` (``s_k`` the slope of ``mc`` on the piece); convexity fills
    the pieces in order. Outsiders keep their Nash abatement.
    """
    members = membership(np.array([mask]), game.n_players)[0]
    weights = np.einsum("i,ijp->jp", members.astype(float), game.benefit)
    cost, hess, upper, owner = [], [], [], []
    for j in np.flatnonzero(members):
        for p, curve in enumerate(game.curves[j]):
            if curve is None:
                continue
            slope = np.diff(curve.mc) / np.diff(curve.knots)
            for k in range(curve.knots.size - 1):
                cost.append(curve.tonnes * curve.mc[k] - weights[j, p])
                hess.append(curve.tonnes * slope[k])
                upper.append(curve.knots[k + 1] - curve.knots[k])
                owner.append((j, p))
    abatement = nash_abatement(game)
    abatement[members] = 0.0
    if cost:
        scale = max(float(np.abs(cost).max()), float(np.abs(hess).max()), 1.0)
        model = highspy.HighsModel()
        lp, hessian, n_col = model.lp_, model.hessian_, len(cost)
        lp.num_col_, lp.num_row_ = n_col, 0
        lp.col_cost_ = np.array(cost) / scale
        lp.col_lower_, lp.col_upper_ = np.zeros(n_col), np.array(upper)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.zeros(n_col + 1, dtype=np.int32)
        hessian.dim_, hessian.format_ = n_col, highspy.HessianFormat.kTriangular
        hessian.start_ = np.arange(n_col + 1, dtype=np.int32)
        hessian.index_ = np.arange(n_col, dtype=np.int32)
        hessian.value_ = np.array(hess) / scale
        solver = QuietHighs()
        solver.passModel(model)
        solver.run()
        if solver.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"coalition QP failed: {solver.getModelStatus()}")
        for (j, p), y in zip(owner, solver.getSolution().col_value, strict=True):
            abatement[j, p] += y
    return float(outcome(game, abatement).total_cost_yuan[members].sum())
