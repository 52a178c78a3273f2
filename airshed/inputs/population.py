"""Population on the model grid, for population-weighted receptor means and exposure.

The built-in field spreads 7th-census (2020) resident populations
(``airshed/data/population_census_2020.csv``: the 31 provinces, and Hebei's 11 prefecture-level cities)
uniformly over the area of each census unit (persons per cell = population x the cell's share of the
unit's area). The units are those of the run's
regions (:func:`census_units`): a region with a census figure keeps it, a region whose every
sub-division has one is split into them (Hebei into its cities), and a prefecture without a figure of
its own gets its province's mean density -- inside it the population weights are then area weights,
which the run reports. A run over a polygon file gets every province (cities where known). Uniform
density is coarse -- a city's people are not uniform over its mountains -- but it is published data,
and it ranks exposure between regions correctly, which is what the weights are for.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pyproj

from airshed.grids.boundaries import division_codes, division_name, divisions_table
from airshed.grids.grid import Grid
from airshed.grids.regions import RegionSet, build_regions

log = logging.getLogger(__name__)


def census_population() -> dict[str, int]:
    """Resident population by region name (7th national census, 1 Nov 2020; packaged CSV)."""
    text = resources.files("airshed.data").joinpath("population_census_2020.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {row["name_en"]: int(row["population"]) for row in rows}


def _census_by_code() -> dict[int, int]:
    text = resources.files("airshed.data").joinpath("population_census_2020.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {int(row["adcode"]): int(row["population"]) for row in rows}


@dataclass(frozen=True)
class CensusUnits:
    """The census units that carry the population of a set of divisions.

    Attributes
    ----------
    units
        Administrative codes with a census population, not overlapping, in order.
    by_province_density
        Requested divisions without a census figure of their own, inside a unit (their province) that
        has one: they get its mean density.
    without_population
        Requested divisions with no census figure at any level (Hong Kong, Macau, Taiwan).
    """

    units: tuple[int, ...]
    by_province_density: tuple[int, ...]
    without_population: tuple[int, ...]


def census_units(codes: Sequence[int]) -> CensusUnits:
    """Census units covering the divisions ``codes`` (provinces or prefectures); see :class:`CensusUnits`."""
    census = _census_by_code()
    table = divisions_table()
    units: list[int] = []
    by_density: list[int] = []
    missing: list[int] = []
    for code in codes:
        children = table.index[table["parent_adcode"] == code].tolist()
        if children and all(c in census for c in children):
            units.extend(children)
        elif code in census:
            units.append(code)
        elif int(table.at[code, "parent_adcode"]) in census:
            units.append(int(table.at[code, "parent_adcode"]))
            by_density.append(code)
        else:
            missing.append(code)
    kept = list(dict.fromkeys(units))
    # a province brought in for a prefecture without figures covers any of its listed prefectures
    kept = [u for u in kept if int(table.at[u, "parent_adcode"]) not in kept]
    return CensusUnits(tuple(kept), tuple(by_density), tuple(missing))


def population_from_regions(regions: RegionSet, cell_area: np.ndarray, people: dict[str, int]) -> np.ndarray:
    """Spread each region's population uniformly over its area on the grid.

    Parameters
    ----------
    regions
        Region masks; regions without an entry in ``people`` (and "outside") get nobody.
    cell_area
        (ny, nx) true cell area, m2.
    people
        Persons per region name.

    Returns
    -------
    np.ndarray
        (ny, nx) persons per cell. A region only partly inside the domain keeps its census density, so
        the grid holds only the people of the part inside.
    """
    geod = pyproj.Geod(ellps="WGS84")
    full_area = {
        name: abs(geod.geometry_area_perimeter(geom)[0])
        for name, geom in zip(regions.geometries["name"], regions.geometries.geometry, strict=True)
    }
    pop = np.zeros(cell_area.shape)
    for k, name in enumerate(regions.names):
        if name in people and full_area.get(name, 0.0) > 0:
            pop += people[name] * regions.fractions[k] * cell_area / full_area[name]
    return pop


def builtin_population(grid: Grid, spec: str | Path | Sequence[int] | None = None) -> np.ndarray:
    """Built-in population field (persons per cell) from the census, for the regions ``spec``.

    Parameters
    ----------
    grid
        The model grid.
    spec
        The run's regions as :func:`airshed.grids.regions.build_regions` takes them: administrative
        codes or a built-in set (their :func:`census_units`), or a polygon file or None (every province,
        Hebei by city).

    The divisions that get their province's density, or no population, are logged at WARNING level:
    their receptor means are area-weighted.
    """
    codes = division_codes(spec) if spec is not None else None
    if codes is None:
        table = divisions_table()
        codes = tuple(table.index[table["level"] == "province"])
    found = census_units(codes)
    if found.by_province_density:
        log.warning("population: no census figure for %s; each gets its province's mean density (receptor "
                    "means inside it are area-weighted)",
                    ", ".join(division_name(c) for c in found.by_province_density))
    if found.without_population and spec is not None and division_codes(spec) is not None:
        names = ", ".join(division_name(c) for c in found.without_population)
        log.warning("population: no census figure for %s (not in the 2020 census): no population, "
                    "area-weighted receptor means", names)
    return population_from_regions(build_regions(grid, found.units), grid.cell_area, census_population())
