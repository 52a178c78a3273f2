"""Ensemble statistics: quantiles, the variance split by source, and batch means of particle classes.

Three sources of uncertainty are kept apart (issue 16):

* **inventory** -- emission factors (members by re-weighting, :mod:`.members`);
* **meteorology** -- transport (member runs with displaced or perturbed meteorology);
* **sampling** -- the Monte Carlo noise of the particle core, from independent particle classes.

An ensemble over meteorology members ``m`` and inventory members ``i`` of a quantity ``X`` is an array
``X[m, i, ...]``. By the law of total variance

    Var(X) = E_m[Var_i(X | m)] + Var_m(E_i[X | m]),

the first term is the inventory's, the second the meteorology's. The particle core's sampling noise adds
to each member's value: with ``s2[m, ...]`` its variance (batch means over particle classes), the
meteorology term is estimated by ``Var_m(E_i[X | m]) - E_m[s2]`` and the sampling term is ``E_m[s2]``. A
source that was not sampled is NaN, never zero: zero would claim it was measured and found absent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "QUANTILES",
    "UNCERTAINTY_SOURCES",
    "BatchMeans",
    "batch_means",
    "ensemble_quantiles",
    "jackknife",
    "particles_for_cv",
    "rank_probabilities",
    "same_ranking_share",
    "variance_by_source",
]

QUANTILES: tuple[float, ...] = (0.05, 0.5, 0.95)
"""Quantile levels written for every ensemble quantity (5 %, median, 95 %): a 90 % interval."""

UNCERTAINTY_SOURCES: tuple[str, ...] = ("inventory", "meteorology", "sampling")
"""The sources of uncertainty, in the order of the run file's ``uncertainty_source`` axis."""


def ensemble_quantiles(samples: np.ndarray, axis: int | tuple[int, ...] = 0,
                       levels: tuple[float, ...] = QUANTILES) -> np.ndarray:
    """Quantiles over the member axis (or axes) of ``samples``: (len(levels), *other axes).

    Linear interpolation between order statistics (Hyndman & Fan 1996, definition 7; NumPy's default).
    NaN members (a share of a region with no concentration) propagate: the quantile is NaN.
    """
    samples = np.asarray(samples, dtype=np.float64)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(a % samples.ndim for a in axes)
    moved = np.moveaxis(samples, axes, tuple(range(len(axes))))
    flat = moved.reshape(-1, *moved.shape[len(axes):])
    return np.quantile(flat, levels, axis=0)


def variance_by_source(samples: np.ndarray, sampling_variance: np.ndarray | None = None
                       ) -> dict[str, np.ndarray]:
    """Split the ensemble variance of a quantity into inventory, meteorology and sampling parts.

    Parameters
    ----------
    samples
        (M, N, ...) values over M meteorology members and N inventory members (M = 1: no meteorology
        ensemble; N = 1: no inventory ensemble).
    sampling_variance
        (M, ...) variance of each meteorology member's Monte Carlo estimate (:func:`batch_means`), or None
        when the particle sampling was not assessed.

    Returns
    -------
    dict
        ``inventory``, ``meteorology`` and ``sampling`` variances, each (...) in the quantity's units
        squared (module docstring); NaN for a source not sampled. Unbiased (ddof = 1) estimates; the
        meteorology part net of sampling noise can come out negative when the members' spread is below
        that noise, and is reported as estimated.
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim < 2:
        raise ValueError("samples need a meteorology and an inventory member axis (M, N, ...)")
    M, N = samples.shape[:2]
    rest = samples.shape[2:]
    nan = np.full(rest, np.nan)
    inventory = samples.var(axis=1, ddof=1).mean(axis=0) if N > 1 else nan
    meteorology = samples.mean(axis=1).var(axis=0, ddof=1) if M > 1 else nan
    sampling = nan
    if sampling_variance is not None:
        s2 = np.broadcast_to(np.asarray(sampling_variance, dtype=np.float64), (M, *rest))
        sampling = s2.mean(axis=0)
        if M > 1:
            meteorology = meteorology - sampling
    return {"inventory": inventory, "meteorology": meteorology, "sampling": sampling}


@dataclass(frozen=True)
class BatchMeans:
    """Batch-means estimate from independent particle classes: value, standard error, classes used."""

    value: np.ndarray
    standard_error: np.ndarray
    n_classes: int

    @property
    def variance(self) -> np.ndarray:
        """Variance of the estimate (standard error squared)."""
        return self.standard_error**2

    @property
    def coefficient_of_variation(self) -> np.ndarray:
        """Standard error / value (NaN where the value is 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.value != 0, self.standard_error / np.abs(self.value), np.nan)


def batch_means(class_sums: np.ndarray, axis: int = 0) -> BatchMeans:
    """Monte Carlo standard error of a particle estimate from its per-class parts (FLEXPART ``nclassunc``).

    The particles are split into ``n`` classes (particle id modulo ``n``), each class accumulating its part
    ``C_c`` of the field, so that the estimate is ``X = sum_c C_c``. Each class alone estimates the field
    as ``n C_c`` from an independent 1/n of the particles; the estimate's variance is the variance of the
    mean of these ``n`` estimates (batch means; Law & Kelton 2000, ch. 9):

        SE^2 = sum_c (n C_c - X)^2 / (n (n - 1)).

    Parameters
    ----------
    class_sums
        The classes' parts of a linear quantity (a concentration, a contribution), classes along ``axis``.
    axis
        The class axis (at least 2 classes).
    """
    c = np.moveaxis(np.asarray(class_sums, dtype=np.float64), axis, 0)
    n = c.shape[0]
    if n < 2:
        raise ValueError("batch means need at least 2 particle classes")
    total = c.sum(axis=0)
    se2 = ((n * c - total) ** 2).sum(axis=0) / (n * (n - 1))
    return BatchMeans(total, np.sqrt(se2), n)


def jackknife(class_sums: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], axis: int = 0
              ) -> BatchMeans:
    """Estimate a non-linear statistic of the classes' sums (a share) with its jackknife standard error.

    ``statistic`` maps the full sum (the class axis summed away) to the quantity, e.g. the transboundary
    share ``1 - own / total``. With ``theta_(c)`` the statistic of the sum of all classes but ``c`` scaled
    back to the full particle number, ``n / (n - 1)`` times that sum (Efron & Tibshirani 1993, ch. 11):

        SE^2 = (n - 1) / n * sum_c (theta_(c) - mean_c theta_(c))^2.

    The value returned is the statistic of the full sum.
    """
    c = np.moveaxis(np.asarray(class_sums, dtype=np.float64), axis, 0)
    n = c.shape[0]
    if n < 2:
        raise ValueError("the jackknife needs at least 2 particle classes")
    total = c.sum(axis=0)
    leave_one = np.stack([statistic((total - c[j]) * (n / (n - 1))) for j in range(n)])
    se2 = (n - 1) / n * ((leave_one - leave_one.mean(axis=0)) ** 2).sum(axis=0)
    return BatchMeans(np.asarray(statistic(total)), np.sqrt(se2), n)


def particles_for_cv(particles_per_hour: float, coefficient_of_variation: np.ndarray, target: float = 0.05
                     ) -> float:
    """Particles per hour that bring the largest coefficient of variation down to ``target``.

    The Monte Carlo error falls as 1/sqrt(particles): ``N' = N (cv / target)^2`` for the worst ``cv``
    (NaNs ignored).
    """
    worst = float(np.nanmax(np.asarray(coefficient_of_variation, dtype=np.float64)))
    return float(particles_per_hour * (worst / target) ** 2)


def _descending_ranks(values: np.ndarray) -> np.ndarray:
    """Rank of each entry along the last axis, 0 = largest (ties broken by position, stable)."""
    order = np.argsort(-np.asarray(values, dtype=np.float64), axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(order.shape[-1]), axis=-1)
    return ranks


def same_ranking_share(members: np.ndarray, reference: np.ndarray | None = None) -> float:
    """Share of members that rank the players as the reference does (e.g. who pays most, second, ...).

    Parameters
    ----------
    members
        (N, players) a result per member and player (a payment, a Shapley share).
    reference
        (players,) the result to compare with (the run's own, point estimate); default the members'
        medians.

    Returns
    -------
    float
        The fraction of members whose descending order of the players is exactly the reference's.
    """
    members = np.asarray(members, dtype=np.float64)
    reference = np.median(members, axis=0) if reference is None else np.asarray(reference, dtype=np.float64)
    return float(np.mean(np.all(_descending_ranks(members) == _descending_ranks(reference), axis=-1)))


def rank_probabilities(members: np.ndarray) -> np.ndarray:
    """(players, ranks) probability over the members that each player holds each rank (0 = largest)."""
    ranks = _descending_ranks(np.asarray(members, dtype=np.float64))
    n, players = ranks.shape
    out = np.zeros((players, players))
    for p in range(players):
        out[p] = np.bincount(ranks[:, p], minlength=players) / n
    return out
