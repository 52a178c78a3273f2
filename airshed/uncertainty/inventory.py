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

import io
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from airshed.errors import DataError
from airshed.inputs.emissions.species import SECTORS
from airshed.physics.mechanism import EMITTED_SPECIES

__all__ = ["Z95", "InventoryUncertainty", "read_inventory_uncertainty", "sample_factors"]

Z95 = float(norm.ppf(0.975))
"""The 97.5 % quantile of the standard normal (1.959964): half-width of a 95 % interval in sigmas."""

ALL_SECTORS = "all"
_COLUMNS = ("sector", "species", "lower_percent", "upper_percent")


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


def _builtin_table() -> tuple[pd.DataFrame, str]:
    text = resources.files("airshed").joinpath("data/inventory_uncertainty.csv").read_text("utf-8")
    return pd.read_csv(io.StringIO(text), comment="#"), "airshed/data/inventory_uncertainty.csv"


def read_inventory_uncertainty(path: str | Path = "builtin") -> InventoryUncertainty:
    """Read a table of 95 % intervals (``builtin`` or a CSV path) into lognormal parameters per sector.

    The CSV has the columns ``sector`` ("all" or a canonical sector), ``species`` (an emitted species),
    ``lower_percent`` (> -100) and ``upper_percent`` (> lower_percent); ``#`` lines are comments. A sector
    row overrides the "all" row of its species; species without a row are exact.

    Raises
    ------
    DataError
        Naming the file, the row and the problem (missing column, unknown sector or species, a repeated
        row, an interval that is not a range of positive factors).
    """
    if str(path) == "builtin":
        table, where = _builtin_table()
    else:
        where = str(path)
        try:
            table = pd.read_csv(path, comment="#")
        except (OSError, ValueError) as exc:
            raise DataError(f"{where}: cannot read the inventory uncertainty table ({exc})") from None
    missing = [c for c in _COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)}; expected {', '.join(_COLUMNS)}")
    sectors = (ALL_SECTORS, *SECTORS)
    mu = np.full((len(sectors), len(EMITTED_SPECIES)), np.nan)
    sigma = np.full_like(mu, np.nan)
    for i, row in table.iterrows():
        line = f"{where}, row {int(i) + 1}"
        sector, species = str(row["sector"]).strip(), str(row["species"]).strip()
        if sector not in sectors:
            raise DataError(f"{line}: unknown sector {sector!r}; expected one of {', '.join(sectors)}")
        if species not in EMITTED_SPECIES:
            raise DataError(
                f"{line}: unknown species {species!r}; expected one of {', '.join(EMITTED_SPECIES)}")
        try:
            lower, upper = float(row["lower_percent"]), float(row["upper_percent"])
        except (TypeError, ValueError):
            raise DataError(f"{line}: lower_percent and upper_percent must be numbers") from None
        if not (np.isfinite(lower) and np.isfinite(upper) and -100.0 < lower < upper):
            raise DataError(f"{line}: expected -100 < lower_percent < upper_percent (finite), got "
                            f"{lower:g} and {upper:g}")
        k, e = sectors.index(sector), EMITTED_SPECIES.index(species)
        if np.isfinite(mu[k, e]):
            raise DataError(f"{line}: sector {sector} and species {species} given twice")
        lo, hi = np.log1p(lower / 100.0), np.log1p(upper / 100.0)
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
