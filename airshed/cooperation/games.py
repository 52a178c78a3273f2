"""Cooperative (transferable-utility) games: Shapley values and the core.

A game on ``n`` players is given by its characteristic function as an array ``v`` of length ``2**n``
indexed by coalition bitmask (bit ``i`` set = player ``i`` is a member; ``v[0] = 0``). Games are either
*cost* games (``v(S)`` = what coalition S must pay alone; an allocation ``x`` is in the core if
``sum(x) = v(N)`` and ``x(S) <= v(S)`` for all S) or *profit* games (``x(S) >= v(S)``).

References
----------
Shapley, L. S. (1953) A value for n-person games. In Contributions to the Theory of Games II, Ann. Math.
Stud. 28, 307-317. Castro, J., Gomez, D., Tejada, J. (2009) Polynomial calculation of the Shapley value
based on sampling, Comput. Oper. Res. 36:1726-1730 (permutation sampling).
Gillies, D. B. (1959) Solutions to general non-zero-sum games, Ann. Math. Stud. 40 (the core).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import factorial
from typing import Literal

import numpy as np
from scipy.optimize import linprog

GameKind = Literal["cost", "profit"]


def coalition_sums(x: np.ndarray) -> np.ndarray:
    """``sum_{i in S} x_i`` for every coalition bitmask ``S = 0 .. 2**n - 1`` (``O(2^n)`` by doubling)."""
    sums = np.zeros(1)
    for value in np.asarray(x, dtype=float):
        sums = np.concatenate([sums, sums + value])  # bit i set: the upper half at step i
    return sums


def coalition_sizes(n: int) -> np.ndarray:
    """Count the members of every coalition bitmask ``0 .. 2**n - 1``."""
    return coalition_sums(np.ones(n)).astype(np.int64)


def _check_values(values: np.ndarray) -> int:
    values = np.asarray(values)
    n = int(np.log2(values.size)) if values.size > 0 else -1
    if n < 1 or 2**n != values.size:
        raise ValueError(f"a game needs 2**n coalition values, got {values.size}")
    return n


def shapley_exact(values: np.ndarray) -> np.ndarray:
    """Exact Shapley values from all ``2**n`` coalition values.

    ``phi_i = sum_{S not containing i} |S|! (n - |S| - 1)! / n! * (v(S + i) - v(S))`` (Shapley 1953).

    Parameters
    ----------
    values
        ``v`` indexed by coalition bitmask, length ``2**n``.

    Returns
    -------
    numpy.ndarray
        ``phi`` of length ``n``; ``sum(phi) = v(N) - v(empty)``.
    """
    values = np.asarray(values, dtype=float)
    n = _check_values(values)
    size = coalition_sizes(n)
    weight = np.array([factorial(s) * factorial(n - s - 1) / factorial(n) for s in range(n)])
    masks = np.arange(values.size, dtype=np.int64)
    phi = np.empty(n)
    for i in range(n):
        without = masks[(masks >> i) & 1 == 0]
        phi[i] = np.sum(weight[size[without]] * (values[without | (1 << i)] - values[without]))
    return phi


def shapley_sampled(
    value_of_masks: Callable[[np.ndarray], np.ndarray], n: int, permutations: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Shapley values by random-permutation sampling (Castro et al. 2009) with standard errors.

    Each player's marginal contribution to its predecessors in a uniformly random order is an unbiased
    estimate of its Shapley value; the standard error is the sample standard deviation over sqrt(m).
    All prefix coalitions are gathered first, deduplicated, and evaluated in one call.

    Parameters
    ----------
    value_of_masks
        Maps an array of coalition bitmasks to their values.
    n
        Number of players.
    permutations
        Number of random orders ``m``.
    seed
        Seed of :func:`numpy.random.default_rng` (same seed, same result).

    Returns
    -------
    phi, stderr
        Estimates and their standard errors, each of length ``n``.
    """
    rng = np.random.default_rng(seed)
    orders = np.array([rng.permutation(n) for _ in range(permutations)])
    bits = np.left_shift(np.int64(1), orders.astype(np.int64))
    prefix = np.cumsum(bits, axis=1)  # coalition after each player joins
    unique, inverse = np.unique(np.concatenate([[0], prefix.ravel()]), return_inverse=True)
    value = np.asarray(value_of_masks(unique), dtype=float)[inverse]
    after = value[1:].reshape(prefix.shape)
    before = np.column_stack([np.full(permutations, value[0]), after[:, :-1]])
    marginal = np.empty_like(after)
    rows = np.arange(permutations)[:, None]
    marginal[rows, orders] = after - before
    phi = marginal.mean(axis=0)
    stderr = marginal.std(axis=0, ddof=1) / np.sqrt(permutations)
    return phi, stderr


@dataclass(frozen=True)
class CoreCheck:
    """Result of testing an allocation against the core.

    ``max_excess`` is the largest violation ``x(S) - v(S)`` (cost game) or ``v(S) - x(S)`` (profit game)
    over proper coalitions, and ``worst_coalition`` its bitmask; ``efficiency_gap = sum(x) - v(N)``.
    """

    in_core: bool
    max_excess: float
    worst_coalition: int
    efficiency_gap: float


def core_check(
    values: np.ndarray, allocation: np.ndarray, kind: GameKind = "cost", rtol: float = 1e-9
) -> CoreCheck:
    """Is ``allocation`` in the core? Checks every coalition (use for ``n`` up to about 20).

    The tolerance is ``rtol * max|v|`` (LP values carry solver round-off).
    """
    values = np.asarray(values, dtype=float)
    n = _check_values(values)
    x = np.asarray(allocation, dtype=float)
    if x.size != n:
        raise ValueError(f"allocation has {x.size} entries for a game of {n} players")
    paid = coalition_sums(x)
    excess = paid - values if kind == "cost" else values - paid
    excess[0] = excess[-1] = -np.inf  # only proper, non-empty coalitions
    worst = int(np.argmax(excess))
    tol = rtol * max(float(np.max(np.abs(values))), 1.0)
    gap = float(x.sum() - values[-1])
    return CoreCheck(
        in_core=bool(excess[worst] <= tol and abs(gap) <= tol),
        max_excess=float(excess[worst]),
        worst_coalition=worst,
        efficiency_gap=gap,
    )


def core_is_nonempty(values: np.ndarray, kind: GameKind = "cost", rtol: float = 1e-9) -> bool:
    """Whether the core is non-empty (Bondareva-Shapley via one LP over all coalitions).

    For a cost game: maximise ``sum(x)`` subject to ``x(S) <= v(S)`` for every proper coalition; the core
    is non-empty iff the maximum reaches ``v(N)`` (profit games: minimise, ``x(S) >= v(S)``).
    """
    values = np.asarray(values, dtype=float)
    n = _check_values(values)
    masks = np.arange(1, values.size - 1, dtype=np.int64)
    members = ((masks[:, None] >> np.arange(n)) & 1).astype(float)
    sign = 1.0 if kind == "cost" else -1.0
    res = linprog(
        -sign * np.ones(n),
        A_ub=sign * members if masks.size else None,
        b_ub=sign * values[masks] if masks.size else None,
        bounds=[(None, None)] * n,
        method="highs",
    )
    if res.status == 3:  # unbounded: the coalition constraints never bind the total
        return True
    if res.status != 0:
        raise RuntimeError(f"core LP failed: {res.message}")
    best = -sign * res.fun
    tol = rtol * max(float(np.max(np.abs(values))), 1.0)
    return bool(sign * (best - values[-1]) >= -tol)
