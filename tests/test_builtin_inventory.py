"""Tests of the built-in APPROXIMATE JJJ inventory: scaling, sector split, provincial totals on the grid."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from airshed.errors import AirshedInputError
from airshed.grids import builtin_case
from airshed.grids.grid import Grid
from airshed.grids.regions import build_regions
from airshed.inputs import builtin_inventory as bi
from airshed.inputs.emissions import EmissionDataWarning
from airshed.inputs.emissions.gridded import SECONDS_PER_YEAR

FULLY_INSIDE = ("Beijing", "Tianjin", "Hebei", "Shanxi", "Shandong")
"""Provinces wholly inside the default 110-124E, 34-44N domain."""


def test_trend_factors():
    assert bi.trend_factor("SO2", 2007) == 1.0
    assert bi.trend_factor("NOx", 2010) == 1.0
    assert bi.trend_factor("SO2", 2017) == pytest.approx(0.38)
    assert bi.trend_factor("NOx", 2017) == pytest.approx(0.83)
    assert bi.trend_factor("PM2.5", 2017) == pytest.approx(0.65)
    assert bi.trend_factor("NMVOC", 2017) == pytest.approx(1.11)
    assert bi.trend_factor("NH3", 2017) == pytest.approx(1.01)
    # 2013 -> 2017 changes of Zheng et al. (2018) are reproduced
    assert bi.trend_factor("SO2", 2017) / bi.trend_factor("SO2", 2013) == pytest.approx(0.41)
    assert bi.trend_factor("NOx", 2017) / bi.trend_factor("NOx", 2013) == pytest.approx(0.79)
    with pytest.raises(AirshedInputError, match="2007..2017"):
        bi.trend_factor("SO2", 2020)


def test_provincial_totals_and_sector_shares():
    totals = bi.provincial_totals(2017)
    assert totals.loc["Beijing", "SO2"] == pytest.approx(243972 * 0.38)
    assert totals.loc["Hebei", "NOx"] == pytest.approx((1.57149e6 - 81693) * 0.83)
    for shares in bi.SECTOR_SHARES.values():
        assert sum(shares) == pytest.approx(1.0)
    split = bi.sector_totals(2017)
    np.testing.assert_allclose(split.sum("sector").values, totals.to_numpy())


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    cache = tmp_path_factory.mktemp("builtin")
    area, points = bi.ensure_builtin_inventory(cache, 2017)
    return cache, area, points


def test_files_are_labelled_and_reused(inventory):
    cache, area, points = inventory
    with xr.open_dataset(area) as ds:
        assert "APPROXIMATE" in ds.attrs["title"]
        assert ds["SO2"].attrs["units"] == "t/yr"
        assert set(ds.data_vars) == {"SO2", "NOx", "PM25", "NH3", "NMVOC"}
        assert (ds["SO2"].values >= 0).all()
    assert "APPROXIMATE" in points.read_text().splitlines()[0]
    before = (area.stat().st_mtime_ns, points.stat().st_mtime_ns)
    assert bi.ensure_builtin_inventory(cache, 2017) == (area, points)
    assert (area.stat().st_mtime_ns, points.stat().st_mtime_ns) == before


def test_power_plants_carry_the_provincial_power_total(inventory):
    _, _, points = inventory
    table = pd.read_csv(points, comment="#")
    power = bi.sector_totals(2017).sel(sector="power")
    for province, rows in table.groupby("province"):
        expected = float(power.sel(province=province, species="SO2"))
        assert rows["so2_t_yr"].sum() == pytest.approx(expected, rel=1e-6)
    assert set(table["province"]) >= set(FULLY_INSIDE)
    assert table["stack_height_m"].between(100, 240).all()
    assert (table["diameter_m"] > 0.1).all() and (table["diameter_m"] < 12).all()
    # a stack serving 1200 MW of coal: 1200 MW x 0.48 x 4.0 Nm3/kWh at 323 K and 18 m/s -> ~7.3 m
    big = table[(table["capacity_mw"] >= 1200) & (table["exit_temperature_k"] == 323.0)]
    assert big["diameter_m"].to_numpy() == pytest.approx(7.32, abs=0.01)


def test_provincial_totals_on_9km_grid_within_one_percent(inventory):
    """Area + points, regridded to the default 9 km grid and attributed by province masks."""
    cache, _, _ = inventory
    grid = Grid.from_bbox(*builtin_case.BBOX, 9.0, crs=builtin_case.PROJECTION)
    regions = build_regions(grid, "provinces")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmissionDataWarning)  # stacks beyond the domain are reported
        es = bi.builtin_emission_set(regions, cache, 2017)
    by_region = es.totals_by_tag().reshape(len(es.regions), es.nsector, -1).sum(axis=1)
    got = pd.DataFrame(by_region * SECONDS_PER_YEAR / 1e3, index=es.regions, columns=es.species)
    expected = bi.provincial_totals(2017)
    for province in FULLY_INSIDE:
        for sp in bi.SPECIES:
            assert got.loc[province, sp] == pytest.approx(expected.loc[province, sp], rel=0.01), (
                province,
                sp,
            )
    # the 'outside' region holds next to nothing: the inventory covers only the eight provinces
    assert (got.loc["outside"] < 0.002 * got.sum()).all()
    assert es.points.n > 300
