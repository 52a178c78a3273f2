"""Population on the model grid, for population-weighted receptor means and exposure.

The built-in field spreads the 7th-census (2020) resident population of each JJJ city and of each
neighbouring province uniformly over its area inside the domain (persons per cell = population x the
cell's share of the region's area). It is coarse -- a city's people are not uniform over its mountains --
but it is published data, and it ranks exposure between cities correctly, which is what the weights are for.
"""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np
import pyproj

from airshed.grids.grid import Grid
from airshed.grids.regions import RegionSet, build_regions


def census_population() -> dict[str, int]:
    """Resident population by region name (7th national census, 1 Nov 2020; packaged CSV)."""
    text = resources.files("airshed.data").joinpath("population_census_2020.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {row["name_en"]: int(row["population"]) for row in rows}


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


def builtin_population(grid: Grid) -> np.ndarray:
    """Built-in population field (persons per cell) from census totals over the jjj-cities regions."""
    return population_from_regions(build_regions(grid, "jjj-cities"), grid.cell_area, census_population())
