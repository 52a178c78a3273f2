"""The inventory-uncertainty table: published 95 % intervals of emissions around the inventory's estimate.

One table and one reader for everything that needs the inventory's uncertainty: the inventory ensemble
(:mod:`airshed.uncertainty.inventory` turns the intervals into factor distributions) and the prior error
of ``airshed verify`` (:mod:`airshed.verification.priors` turns them into a 1 sigma). The shipped table is
``airshed/data/inventory_uncertainty.csv`` (Zhao et al. 2011, Atmos. Chem. Phys. 11:2295, China 2005;
its header gives the source and what it does not cover).

Columns: ``sector`` ("all" or a canonical sector), ``species`` (an emitted species), ``lower_percent``
(in (-100, 0)) and ``upper_percent`` (> 0): the 2.5 and 97.5 percentiles of the emissions as a percent
change from the inventory's central estimate, so an interval holds the estimate. An optional ``region``
column (a source region or ``all``, the default) gives region-specific intervals; ``#`` lines are comments.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from airshed.errors import DataError
from airshed.inputs.emissions.species import SECTORS
from airshed.physics.mechanism import EMITTED_SPECIES

__all__ = ["ALL", "BUILTIN_TABLE", "COLUMNS", "InventoryIntervals", "read_inventory_intervals"]

ALL = "all"
"""Sector or region of a row that applies to every sector or region without its own row."""

COLUMNS = ("sector", "species", "lower_percent", "upper_percent")
"""Required columns of the table (``region`` is optional)."""

BUILTIN_TABLE = "airshed/data/inventory_uncertainty.csv"
"""The shipped table, as it is named in messages and outputs."""


@dataclass(frozen=True)
class InventoryIntervals:
    """The checked rows of an inventory-uncertainty table.

    Attributes
    ----------
    rows
        One row per interval: ``region``, ``sector``, ``species`` (str), ``lower_percent``,
        ``upper_percent`` (percent of the central estimate), in the order of the file.
    source
        Where the table came from (``airshed/data/inventory_uncertainty.csv`` or the path given).
    """

    rows: pd.DataFrame
    source: str


def read_inventory_intervals(path: str | Path = "builtin") -> InventoryIntervals:
    """Read and check an inventory-uncertainty table (``builtin`` or a CSV path; module docstring).

    Raises
    ------
    DataError
        Naming the file, the row and the problem (unreadable file, missing column, unknown sector or
        species, a repeated row, an interval that is not a range of positive factors around 1).
    """
    if str(path) == "builtin":
        text = resources.files("airshed").joinpath("data/inventory_uncertainty.csv").read_text("utf-8")
        table, where = pd.read_csv(io.StringIO(text), comment="#"), BUILTIN_TABLE
    else:
        where = str(path)
        try:
            table = pd.read_csv(Path(path).expanduser(), comment="#")
        except (OSError, ValueError) as exc:
            raise DataError(f"{where}: cannot read the inventory uncertainty table ({exc})") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)} "
                        "(and optionally region)")
    sectors = (ALL, *SECTORS)
    records, seen = [], set()
    for i, row in table.iterrows():
        line = f"{where}, row {int(i) + 1}"
        sector, species = str(row["sector"]).strip(), str(row["species"]).strip()
        region = str(row["region"]).strip() if "region" in table.columns and pd.notna(row["region"]) else ALL
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
        key = (region, sector, species)
        if key in seen:
            where_region = "" if region == ALL else f"region {region}, "
            raise DataError(f"{line}: {where_region}sector {sector} and species {species} given twice")
        seen.add(key)
        records.append({"region": region, "sector": sector, "species": species, "lower_percent": lower,
                        "upper_percent": upper})
    rows = pd.DataFrame(records, columns=["region", "sector", "species", "lower_percent", "upper_percent"])
    return InventoryIntervals(rows, where)
