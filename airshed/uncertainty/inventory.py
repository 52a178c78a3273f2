"""Inventory uncertainty: two-piece lognormal emission factors per (source region, sector, emitted species).

An inventory's emissions ``E`` are uncertain by a factor: the true emissions are ``f * E``. A published
95 % interval ``[1 + lower/100, 1 + upper/100]`` around the central estimate (Zhao et al. 2011, ACP
11:2295: "95 % confidence intervals around the central estimates") is read with the central estimate as
the **median** of ``f`` and each bound as the 2.5 or 97.5 percentile:

    ln f = sigma_lower * z   (z < 0),     ln f = sigma_upper * z   (z >= 0),     z ~ N(0, 1),
    sigma_lower = -ln(1 + lower/100) / Z95,   sigma_upper = ln(1 + upper/100) / Z95,   Z95 = 1.959964,

a two-piece (split) normal in ln f (Wallis 2014, Statistical Science 29:106, traces the family to
Fechner 1897). The pieces are joined at the median, each holding half the probability, rather than at the
mode as in Fechner's form: the inventory's central estimate is the middle of its distribution, half the
members above it and half below, and both published bounds are reproduced exactly. A single lognormal
through both bounds (the first version of this module) must put its median at
``sqrt((1 + lower/100)(1 + upper/100))``, 1.13 for PM2.5 (-17/+54 %): the inventory's central estimate
became its 22nd percentile and a run fell below most of its own ensemble. The defaults are in
``airshed/data/inventory_uncertainty.csv`` (its header gives the source).

Factors of one sector and species may be correlated across source regions (the emission factors that
dominate inventory uncertainty are shared by every province): with correlation ``rho`` the normal scores
are

    z[r, k, e] = sqrt(rho) * a[k, e] + sqrt(1 - rho) * b[r, k, e],

``a`` and ``b`` independent standard normals (a Gaussian copula; each factor keeps its two-piece margin,
and ``rho`` = 1 gives one factor per sector and species everywhere). Factors of different sectors or
species are independent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import norm

from airshed.errors import DataError
from airshed.inputs.emissions.species import SECTORS
from airshed.inputs.inventory_uncertainty import ALL as ALL_SECTORS
from airshed.inputs.inventory_uncertainty import read_inventory_intervals
from airshed.physics.mechanism import EMITTED_SPECIES

__all__ = ["Z95", "InventoryUncertainty", "read_inventory_uncertainty", "sample_factors"]

Z95 = float(norm.ppf(0.975))
"""The 97.5 % quantile of the standard normal (1.959964): half-width of a 95 % interval in sigmas."""


@dataclass(frozen=True)
class InventoryUncertainty:
    """Two-piece lognormal parameters of the emission factor of every (sector, emitted species).

    ``sigma_lower`` and ``sigma_upper`` are (len(sectors), len(EMITTED_SPECIES)) arrays: the standard
    deviation of ln f below and above the median (which is 1, the inventory's central estimate); a species
    without an interval has both 0 (exact).
    """

    sectors: tuple[str, ...]
    sigma_lower: np.ndarray
    sigma_upper: np.ndarray
    source: str

    def factor(self, z: np.ndarray) -> np.ndarray:
        """Return the factors at normal scores ``z`` (..., K, E): the quantile function at Phi(z)."""
        return np.exp(np.where(z < 0.0, self.sigma_lower, self.sigma_upper) * z)

    def quantile(self, p: float) -> np.ndarray:
        """Return the ``p`` quantile of every factor, (K, E)."""
        return self.factor(np.full(self.sigma_lower.shape, float(norm.ppf(p))))

    def interval(self, sector: str, species: str) -> tuple[float, float]:
        """Return the 95 % interval of the factor of ``sector`` and ``species`` (2.5, 97.5 percentiles)."""
        k, e = self.sectors.index(sector), EMITTED_SPECIES.index(species)
        return (float(np.exp(-Z95 * self.sigma_lower[k, e])), float(np.exp(Z95 * self.sigma_upper[k, e])))

    def scaled(self, spread: float) -> InventoryUncertainty:
        """Return the same table with both log-sigmas times ``spread`` (the median stays 1)."""
        return InventoryUncertainty(self.sectors, self.sigma_lower * spread, self.sigma_upper * spread,
                                    self.source)

    def for_sectors(self, sectors: Sequence[str]) -> InventoryUncertainty:
        """Return the parameters along a run's sector axis (each sector a row of the table)."""
        rows = []
        for k in sectors:
            if k not in self.sectors:
                raise DataError(f"{self.source}: no uncertainty for sector {k!r}")
            rows.append(self.sectors.index(k))
        return InventoryUncertainty(tuple(sectors), self.sigma_lower[rows], self.sigma_upper[rows],
                                    self.source)


def read_inventory_uncertainty(path: str | Path = "builtin") -> InventoryUncertainty:
    """Read a table of 95 % intervals (``builtin`` or a CSV path) into two-piece parameters per sector.

    The table and its checks are those of
    :func:`airshed.inputs.inventory_uncertainty.read_inventory_intervals`
    (columns ``sector``, ``species``, ``lower_percent``, ``upper_percent``). A sector row overrides the
    "all" row of its species; species without a row are exact. Region-specific rows are refused: the
    ensemble draws one factor distribution per sector and species.

    Raises
    ------
    DataError
        Naming the file, the row and the problem (missing column, unknown sector or species, a repeated
        row, an interval that is not a range of positive factors around 1).
    """
    intervals = read_inventory_intervals(path)
    where = intervals.source
    sectors = (ALL_SECTORS, *SECTORS)
    sigma_lower = np.full((len(sectors), len(EMITTED_SPECIES)), np.nan)
    sigma_upper = np.full_like(sigma_lower, np.nan)
    for i, row in intervals.rows.iterrows():
        if row["region"] != ALL_SECTORS:
            raise DataError(f"{where}, row {int(i) + 1}: region {row['region']!r}: the inventory ensemble "
                            "takes one interval per sector and species (region 'all')")
        k, e = sectors.index(row["sector"]), EMITTED_SPECIES.index(row["species"])
        sigma_lower[k, e] = -np.log1p(row["lower_percent"] / 100.0) / Z95
        sigma_upper[k, e] = np.log1p(row["upper_percent"] / 100.0) / Z95
    # a sector without its own row takes the "all" row; a species without any row is exact
    for params in (sigma_lower, sigma_upper):
        params[0] = np.where(np.isfinite(params[0]), params[0], 0.0)
        params[1:] = np.where(np.isfinite(params[1:]), params[1:], params[0])
    return InventoryUncertainty(sectors, sigma_lower, sigma_upper, where)


def sample_factors(uncertainty: InventoryUncertainty, n_regions: int, n_members: int, seed: int,
                   correlation: float = 0.0) -> np.ndarray:
    """Draw emission factors for ``n_members`` members: (n_members, n_regions, K, E), dimensionless.

    ``uncertainty`` is already restricted to the run's K sectors (:meth:`InventoryUncertainty.for_sectors`).
    ``correlation`` (0..1) couples the factors of one sector and species across regions (module
    docstring). The normals come from ``numpy.random.default_rng(seed)`` member after member (each member's
    shared normals, then its regional ones), so a seed gives the same factors on every machine and member
    ``j`` does not depend on ``n_members``.
    """
    if not 0.0 <= correlation <= 1.0:
        raise ValueError(f"correlation must be in [0, 1], got {correlation}")
    if n_members < 1 or n_regions < 1:
        raise ValueError("need at least one member and one region")
    K, E = uncertainty.sigma_lower.shape
    normals = np.random.default_rng(seed).standard_normal((n_members, 1 + n_regions, K, E))
    z = np.sqrt(correlation) * normals[:, :1] + np.sqrt(1.0 - correlation) * normals[:, 1:]
    return uncertainty.factor(z)
