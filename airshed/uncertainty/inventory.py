"""Inventory uncertainty: lognormal emission factors per (source region, sector, emitted species).

An inventory's emissions ``E`` are uncertain by a factor: the true emissions are ``f * E`` with ``f``
lognormal, ``ln f ~ N(mu, sigma^2)``. A published 95 % interval ``[1 + lower/100, 1 + upper/100]`` around
the central estimate is read as the 2.5 and 97.5 percentiles of ``f``:

    mu = (ln(1 + lower/100) + ln(1 + upper/100)) / 2,
    sigma = (ln(1 + upper/100) - ln(1 + lower/100)) / (2 z),   z = 1.959964 (the 97.5 % normal quantile),

so an asymmetric interval (Zhao et al. 2011: PM2.5 -17/+54 %) has a median factor exp(mu) above 1. The
default intervals are in ``airshed/data/inventory_uncertainty.csv`` (its header gives the source).

Factors of one sector and species may be correlated across source regions (the emission factors that
dominate inventory uncertainty are shared by every province): with correlation ``rho``,

    ln f[r, k, e] = mu[k, e] + sigma[k, e] * (sqrt(rho) * a[k, e] + sqrt(1 - rho) * b[r, k, e]),

``a`` and ``b`` independent standard normals (Gaussian copula; each factor keeps its lognormal margin).
Factors of different sectors or species are independent.
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
    """Lognormal parameters of the emission factor of every (sector, emitted species).

    ``mu`` and ``sigma`` are (len(sectors), len(EMITTED_SPECIES)) arrays of the factor's log-mean and
    log-standard deviation; a species without an interval has mu = sigma = 0 (exact).
    """

    sectors: tuple[str, ...]
    mu: np.ndarray
    sigma: np.ndarray
    source: str

    def interval(self, sector: str, species: str) -> tuple[float, float]:
        """Return the 95 % interval of the factor of ``sector`` and ``species`` (2.5, 97.5 percentiles)."""
        k, e = self.sectors.index(sector), EMITTED_SPECIES.index(species)
        return (float(np.exp(self.mu[k, e] - Z95 * self.sigma[k, e])),
                float(np.exp(self.mu[k, e] + Z95 * self.sigma[k, e])))

    def for_sectors(self, sectors: Sequence[str]) -> InventoryUncertainty:
        """Return the parameters along a run's sector axis (each sector a row of the table)."""
        rows = []
        for k in sectors:
            if k not in self.sectors:
                raise DataError(f"{self.source}: no uncertainty for sector {k!r}")
            rows.append(self.sectors.index(k))
        return InventoryUncertainty(tuple(sectors), self.mu[rows], self.sigma[rows], self.source)


def read_inventory_uncertainty(path: str | Path = "builtin") -> InventoryUncertainty:
    """Read a table of 95 % intervals (``builtin`` or a CSV path) into lognormal parameters per sector.

    The table and its checks are those of
    :func:`airshed.inputs.inventory_uncertainty.read_inventory_intervals`
    (columns ``sector``, ``species``, ``lower_percent``, ``upper_percent``). A sector row overrides the
    "all" row of its species; species without a row are exact. Region-specific rows are refused: the
    ensemble draws one factor distribution per sector and species.

    Raises
    ------
    DataError
        Naming the file, the row and the problem.
    """
    intervals = read_inventory_intervals(path)
    where = intervals.source
    sectors = (ALL_SECTORS, *SECTORS)
    mu = np.full((len(sectors), len(EMITTED_SPECIES)), np.nan)
    sigma = np.full_like(mu, np.nan)
    for i, row in intervals.rows.iterrows():
        if row["region"] != ALL_SECTORS:
            raise DataError(f"{where}, row {int(i) + 1}: region {row['region']!r}: the inventory ensemble "
                            "takes one interval per sector and species (region 'all')")
        k, e = sectors.index(row["sector"]), EMITTED_SPECIES.index(row["species"])
        lo, hi = np.log1p(row["lower_percent"] / 100.0), np.log1p(row["upper_percent"] / 100.0)
        mu[k, e], sigma[k, e] = 0.5 * (lo + hi), (hi - lo) / (2.0 * Z95)
    # a sector without its own row takes the "all" row; a species without any row is exact
    for params in (mu, sigma):
        params[0] = np.where(np.isfinite(params[0]), params[0], 0.0)
        params[1:] = np.where(np.isfinite(params[1:]), params[1:], params[0])
    return InventoryUncertainty(sectors, mu, sigma, where)


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
    K, E = uncertainty.mu.shape
    normals = np.random.default_rng(seed).standard_normal((n_members, 1 + n_regions, K, E))
    z = np.sqrt(correlation) * normals[:, :1] + np.sqrt(1.0 - correlation) * normals[:, 1:]
    return np.exp(uncertainty.mu + uncertainty.sigma * z)
