import pytest

from airshed.grids import builtin_case
from airshed.grids.grid import Grid
from airshed.grids.regions import build_regions
from airshed.inputs.population import builtin_population, census_population, population_from_regions


def test_builtin_population_keeps_census_totals_of_regions_inside_the_domain():
    grid = Grid.from_bbox(110, 34, 124, 44, 9.0, crs=builtin_case.PROJECTION)
    pop = builtin_population(grid, "jjj-cities")
    census = census_population()
    cities = build_regions(grid, "jjj-cities")
    # JJJ lies wholly inside the default domain: every city keeps its census population
    for name in ("Beijing", "Tianjin", "Shijiazhuang", "Chengde", "Handan"):
        alone = population_from_regions(cities, grid.cell_area, {name: census[name]})
        assert alone.sum() == pytest.approx(census[name], rel=1e-6)
    jjj = census["Beijing"] + census["Tianjin"] + census["Hebei"]
    # neighbour provinces are only partly inside, so the domain holds more than JJJ but less than all
    neighbours = sum(census[p] for p in ("Shanxi", "Inner Mongolia", "Liaoning", "Shandong", "Henan"))
    assert jjj < pop.sum() < jjj + neighbours
