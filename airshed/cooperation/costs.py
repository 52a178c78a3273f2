"""Abatement cost curves as arrays: exact piecewise-quadratic costs, best replies, LP secant pieces.

A policy gives, per source region and precursor, a marginal abatement cost ``mc(x)`` in yuan per tonne,
piecewise linear and non-decreasing in the abated fraction ``x`` up to ``max_fraction``. Abating a
fraction ``a`` of ``E`` tonnes costs

    C(a) = E * integral_0^a mc(x) dx,

convex and piecewise quadratic. :class:`CurveArrays` evaluates ``C`` and ``C'`` exactly and solves the
one-dimensional problem every player of the gamma game meets,

    min_{0 <= a <= max_fraction}  C(a) - w a,

whose solution is the abated fraction at which the marginal cost ``E mc(a)`` reaches the marginal benefit
``w`` (yuan per unit abated fraction): ``a = mc^{-1}(w / E)`` clipped to ``[0, max_fraction]`` (the
Karush-Kuhn-Tucker condition of a convex problem in one variable). Where ``mc`` is flat at exactly
``w / E`` every point of the flat piece is optimal; the smallest is returned. This closed form is
written by hand because it is exact and vectorises over millions of coalitions; a QP solver (HiGHS)
gives the same answers (``tests/test_cooperation_gamma.py``) a thousand times slower.

The target game's linear programmes replace ``C`` by its secants (:func:`secant_segments`): because ``C``
is convex the secants lie above it, so the LP cost exceeds the exact cost by at most ``E s h^2 / 8`` per
piece (``s`` the slope of ``mc``, ``h`` the sub-segment width).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from airshed.cooperation.policy import CostCurve


@dataclass(frozen=True)
class CurveArrays:
    """One (region, precursor) cost curve on ``[0, max_fraction]``, for ``tonnes`` of emissions.

    ``knots`` are the abated fractions where ``mc`` changes slope (the first is 0, the last
    ``max_fraction``), ``mc`` the marginal cost there (yuan per tonne).
    """

    knots: np.ndarray
    mc: np.ndarray
    tonnes: float

    @classmethod
    def from_curve(cls, curve: CostCurve, tonnes: float) -> CurveArrays:
        """Cut the policy curve at its ``max_fraction`` and apply it to ``tonnes``."""
        pts = np.asarray(curve.marginal_cost, dtype=float)
        x, mc = pts[:, 0], pts[:, 1]
        top = curve.max_fraction
        knots = np.concatenate([x[x < top], [top]])
        return cls(knots=knots, mc=np.interp(knots, x, mc), tonnes=float(tonnes))

    @property
    def max_fraction(self) -> float:
        """Largest abatable fraction."""
        return float(self.knots[-1])

    def _piece(self, fraction: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(self.knots, fraction, side="right") - 1, 0, self.knots.size - 2)

    def cost(self, fraction: np.ndarray | float) -> np.ndarray:
        """Exact cost ``E * integral_0^a mc``, yuan, of abating ``fraction`` (0 <= a <= max_fraction)."""
        a = np.asarray(fraction, dtype=float)
        x, mc = self.knots, self.mc
        slope = np.diff(mc) / np.diff(x)
        area = np.concatenate([[0.0], np.cumsum(0.5 * (mc[:-1] + mc[1:]) * np.diff(x))])
        k = self._piece(a)
        d = a - x[k]
        return self.tonnes * (area[k] + mc[k] * d + 0.5 * slope[k] * d * d)

    def marginal(self, fraction: np.ndarray | float) -> np.ndarray:
        """Marginal cost ``E mc(a)``, yuan per unit abated fraction."""
        return self.tonnes * np.interp(fraction, self.knots, self.mc)

    def best_reply(self, benefit: np.ndarray | float) -> np.ndarray:
        """Abated fraction minimising ``C(a) - w a`` for marginal benefits ``w`` (yuan per unit fraction).

        The smallest minimiser: 0 where ``w <= E mc(0)``, ``max_fraction`` where ``w > E mc(max)``, else
        the fraction where ``E mc`` first reaches ``w``.
        """
        w = np.asarray(benefit, dtype=float)
        if self.tonnes <= 0.0:
            return np.zeros_like(w)
        level = w / self.tonnes
        x, mc = self.knots, self.mc
        k = np.clip(np.searchsorted(mc, level, side="left"), 1, mc.size - 1)
        rise = mc[k] - mc[k - 1]
        inside = np.where(rise > 0.0, (level - mc[k - 1]) / np.where(rise > 0.0, rise, 1.0), 0.0)
        a = x[k - 1] + np.clip(inside, 0.0, 1.0) * (x[k] - x[k - 1])
        return np.where(level <= mc[0], 0.0, np.where(level > mc[-1], x[-1], a))


def secant_segments(curve: CurveArrays, per_piece: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Secant linearisation of a total-cost curve up to ``max_fraction``, for the target game's LPs.

    Returns
    -------
    widths
        Sub-segment widths (abated fraction).
    slopes
        LP cost per unit abated fraction on each sub-segment, yuan: ``E`` times the mean marginal cost.
    error_bound
        Largest over-statement of the exact cost by the secants, yuan (``max E s h^2 / 8``).
    """
    knots, mc = curve.knots, curve.mc
    edges = np.concatenate(
        [np.linspace(a, b, per_piece + 1)[:-1] for a, b in zip(knots[:-1], knots[1:], strict=True)]
        + [knots[-1:]]
    )
    mc_edges = np.interp(edges, knots, mc)
    widths = np.diff(edges)
    slopes = curve.tonnes * 0.5 * (mc_edges[:-1] + mc_edges[1:])
    piece_slope = np.diff(mc) / np.diff(knots)
    piece_h = np.diff(knots) / per_piece
    error_bound = float(np.max(curve.tonnes * piece_slope * piece_h**2 / 8.0))
    return widths, slopes, error_bound
