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


def _builtin_table() -> tuple[pd.DataFrame, str]:
    text = resources.files("airshed").joinpath("data/inventory_uncertainty.csv").read_text("utf-8")
    return pd.read_csv(io.StringIO(text), comment="#"), "airshed/data/inventory_uncertainty.csv"


def read_inventory_uncertainty(path: str | Path = "builtin") -> InventoryUncertainty:
    """Read a table of 95 % intervals (``builtin`` or a CSV path) into two-piece parameters per sector.

    The CSV has the columns ``sector`` ("all" or a canonical sector), ``species`` (an emitted species),
    ``lower_percent`` (in (-100, 0)) and ``upper_percent`` (> 0): an interval around the central
    estimate holds it; ``#`` lines are comments. A sector row overrides the "all" row of its species;
    species without a row are exact.

    Raises
    ------
    DataError
        Naming the file, the row and the problem (missing column, unknown sector or species, a repeated
        row, an interval that is not a range of positive factors around 1).
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
    sigma_lower = np.full((len(sectors), len(EMITTED_SPECIES)), np.nan)
    sigma_upper = np.full_like(sigma_lower, np.nan)
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
        if not (np.isfinite(lower) and np.isfinite(upper) and -100.0 < lower < 0.0 < upper):
            raise DataError(f"{line}: expected -100 < lower_percent < 0 < upper_percent (finite: an interval "
                            f"around the central estimate), got {lower:g} and {upper:g}")
        k, e = sectors.index(sector), EMITTED_SPECIES.index(species)
        if np.isfinite(sigma_lower[k, e]):
            raise DataError(f"{line}: sector {sector} and species {species} given twice")
        sigma_lower[k, e] = -np.log1p(lower / 100.0) / Z95
        sigma_upper[k, e] = np.log1p(upper / 100.0) / Z95
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
