"""Tests of boundary loading and exact region masks on the projected grid."""

from __future__ import annotations

import importlib.resources
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from airshed.errors import AirshedInputError, DataError
from airshed.grids.boundaries import BUILTIN_SETS, load_boundaries
from airshed.grids.builtin_case import BBOX as DEFAULT_BBOX
from airshed.grids.builtin_case import PROJECTION as DEFAULT_PROJ
from airshed.grids.cf import grid_from_dataset, regions_to_dataset
from airshed.grids.grid import Grid
from airshed.grids.regions import build_regions

GEOD = pyproj.Geod(ellps="WGS84")

OFFICIAL_AREA_KM2 = {"Beijing": 16410.0, "Tianjin": 11966.0, "Hebei": 188800.0}
"""Official land areas (National Bureau of Statistics / provincial yearbooks)."""

JJJ_CITIES = (
    "Beijing",
    "Tianjin",
    "Shijiazhuang",
    "Tangshan",
    "Qinhuangdao",
    "Handan",
    "Xingtai",
    "Baoding",
    "Zhangjiakou",
    "Chengde",
    "Cangzhou",
    "Langfang",
    "Hengshui",
)


def _city_coordinates() -> pd.DataFrame:
    source = importlib.resources.files("airshed") / "data" / "city_coordinates.csv"
    with importlib.resources.as_file(source) as path:
        return pd.read_csv(path, comment="#")


@pytest.fixture(scope="module")
def grid3() -> Grid:
    return Grid.from_bbox(*DEFAULT_BBOX, 3, crs=DEFAULT_PROJ)


@pytest.fixture(scope="module")
def grid9() -> Grid:
    return Grid.from_bbox(*DEFAULT_BBOX, 9, crs=DEFAULT_PROJ)


@pytest.fixture(scope="module")
def provinces3(grid3):
    started = time.perf_counter()
    regions = build_regions(grid3, "provinces")
    assert time.perf_counter() - started < 30.0  # measured ~1 s
    return regions


@pytest.fixture(scope="module")
def cities3(grid3):
    started = time.perf_counter()
    regions = build_regions(grid3, "jjj-cities")
    assert time.perf_counter() - started < 30.0  # measured ~1 s
    return regions


# --- built-in boundaries ------------------------------------------------------------------------------
def test_builtin_sets_names_from_census():
    provinces = load_boundaries("provinces")
    assert list(provinces["name"]) == [
        "Beijing",
        "Tianjin",
        "Hebei",
        "Shanxi",
        "Inner Mongolia",
        "Liaoning",
        "Shandong",
        "Henan",
    ]
    cities = load_boundaries("jjj-cities")
    assert tuple(cities["name"][:13]) == JJJ_CITIES
    assert list(cities["name"][13:]) == ["Shanxi", "Inner Mongolia", "Liaoning", "Shandong", "Henan"]
    assert cities.crs == "EPSG:4326"
    assert set(BUILTIN_SETS) == {"provinces", "jjj-cities"}


def test_builtin_boundaries_do_not_overlap_and_prefectures_tile_hebei():
    cities = load_boundaries("jjj-cities")
    geoms = cities.geometry.to_numpy()
    first, second = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = first < second
    assert np.all(shapely.area(shapely.intersection(geoms[first[keep]], geoms[second[keep]])) == 0.0)
    hebei = load_boundaries("provinces").set_index("name").geometry["Hebei"]
    prefectures = shapely.union_all(geoms[2:13])
    assert shapely.symmetric_difference(hebei, prefectures).area < 1e-9 * hebei.area


# --- masks at 3 km ------------------------------------------------------------------------------------
def test_province_mask_areas_match_official_and_geodesic_areas(provinces3):
    areas = provinces3.area_km2()
    boundaries = load_boundaries("provinces").set_index("name")
    for name, official in OFFICIAL_AREA_KM2.items():
        # measured: Beijing 16,410.9, Tianjin 12,100.2 (+1.1 %), Hebei 188,568.2 (-0.12 %) km2
        assert areas[name] == pytest.approx(official, rel=0.02), name
        # the mask is exact: it matches the geodesic area of the polygon itself (measured to ~1e-7)
        geodesic = abs(GEOD.geometry_area_perimeter(boundaries.geometry[name])[0]) / 1e6
        assert areas[name] == pytest.approx(geodesic, rel=1e-5), name
    domain_km2 = provinces3.grid.cell_area.sum() / 1e6
    assert sum(areas.values()) == pytest.approx(domain_km2, rel=1e-12)


def test_fractions_partition_every_cell(provinces3, cities3):
    for regions in (provinces3, cities3):
        assert regions.names[-1] == "outside"
        assert regions.fractions.shape == (len(regions.names), *regions.grid.shape)
        assert regions.fractions.dtype == np.float64
        assert regions.fractions.min() >= 0.0 and regions.fractions.max() <= 1.0
        np.testing.assert_allclose(regions.fractions.sum(axis=0), 1.0, rtol=0, atol=1e-12)
        assert not regions.fractions.flags.writeable
        assert list(regions.geometries["name"]) == list(regions.names)
        assert regions.geometries.geometry.iloc[-1].is_empty


def test_cities_sum_to_provinces(provinces3, cities3):
    hebei = cities3.fractions[2:13].sum(axis=0)
    np.testing.assert_allclose(hebei, provinces3.fractions[provinces3.index("Hebei")], atol=1e-9)
    for name in ("Beijing", "Tianjin", "Shanxi", "outside"):
        np.testing.assert_allclose(
            cities3.fractions[cities3.index(name)], provinces3.fractions[provinces3.index(name)], atol=1e-12
        )


@pytest.mark.parametrize("cell_km", [3, 9])
def test_city_centres_fall_in_their_own_city(cell_km, cities3, grid9):
    regions = cities3 if cell_km == 3 else build_regions(grid9, "jjj-cities")
    cities = _city_coordinates()
    cities = cities[cities["province"].isin(list(load_boundaries("provinces")["name"]))]  # inside the domain
    dominant = regions.dominant()
    assert dominant.shape == regions.grid.shape and dominant.dtype == np.int64
    for row in cities.itertuples():
        expected = row.city_en if row.city_en in JJJ_CITIES else row.province
        assert regions.region_of_point(row.lon_deg, row.lat_deg) == expected
        j, i = regions.grid.cell_index(*regions.grid.lonlat_to_xy(row.lon_deg, row.lat_deg))
        assert regions.names[dominant[j, i]] == expected, (row.city_en, cell_km)


def test_region_lookup_and_errors(provinces3):
    assert provinces3.index("Hebei") == 2
    assert provinces3.index("outside") == len(provinces3.names) - 1
    with pytest.raises(AirshedInputError, match=r"unknown region 'Hubei'; valid region names are: Beijing, "):
        provinces3.index("Hubei")
    assert provinces3.region_of_point(122.0, 38.5) == "outside"  # Bohai sea
    with pytest.raises(AirshedInputError, match="outside the grid domain"):
        provinces3.region_of_point(100.0, 30.0)


def test_build_regions_is_cached(grid9):
    first = build_regions(grid9, "provinces")
    assert build_regions(grid9, "provinces") is first


def test_regions_cf_dataset(grid9, tmp_path):
    import xarray as xr

    regions = build_regions(grid9, "provinces")
    ds = regions_to_dataset(regions)
    assert list(ds["region"].values) == list(regions.names)
    frac = ds["region_fraction"]
    assert frac.dims == ("region", "y", "x")
    assert frac.attrs["grid_mapping"] == "crs" and frac.attrs["standard_name"] == "area_fraction"
    path = tmp_path / "regions.nc"
    ds.to_netcdf(path)
    with xr.open_dataset(path) as back:
        assert grid_from_dataset(back) == grid9
        np.testing.assert_array_equal(back["region_fraction"].values, regions.fractions)
        assert list(back["region"].values) == list(regions.names)


def test_regionmask_export(grid9):
    exported = build_regions(grid9, "provinces").to_regionmask()
    assert exported.names[:3] == ["Beijing", "Tianjin", "Hebei"]


# --- user boundary files ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grid27() -> Grid:
    return Grid.from_bbox(*DEFAULT_BBOX, 27, crs=DEFAULT_PROJ)


def _boxes_frame(column: str = "district") -> gpd.GeoDataFrame:
    # two lon/lat boxes, the second overlapping the first by 0.5 deg of longitude
    return gpd.GeoDataFrame(
        {column: ["west", "east"], "code": [1, 2]},
        geometry=[shapely.box(114.0, 37.0, 116.0, 39.0), shapely.box(115.5, 37.0, 118.0, 39.0)],
        crs="EPSG:4326",
    )


def test_user_file_regions_area_is_geodesic_area(grid27, tmp_path):
    path = tmp_path / "boxes.gpkg"
    # stored in Web Mercator: the loader must reproject to lon/lat
    _boxes_frame().to_crs("EPSG:3857").to_file(path)
    regions = build_regions(grid27, path, name_column="district")
    assert regions.names == ("west", "east", "outside")
    areas = regions.area_km2()
    # the first region keeps the overlap: west = 114-116 E, east = 116-118 E (37-39 N)
    for name, (w, e) in {"west": (114.0, 116.0), "east": (116.0, 118.0)}.items():
        lon = np.concatenate([np.linspace(w, e, 500), np.linspace(e, w, 500)])
        lat = np.concatenate([np.full(500, 37.0), np.full(500, 39.0)])
        geodesic = abs(GEOD.polygon_area_perimeter(lon, lat)[0]) / 1e6
        # densified edges follow the curved parallels: agreement ~1e-6 even on 27 km cells
        assert areas[name] == pytest.approx(geodesic, rel=1e-4), name
    np.testing.assert_allclose(regions.fractions.sum(axis=0), 1.0, atol=1e-12)


def test_user_file_without_crs_is_lonlat(grid27, tmp_path):
    path = tmp_path / "boxes.shp"
    _boxes_frame("name").to_file(path)
    path.with_suffix(".prj").unlink()
    assert gpd.read_file(path).crs is None
    regions = build_regions(grid27, path)  # default name column "name"
    assert regions.names == ("west", "east", "outside")
    assert regions.region_of_point(115.0, 38.0) == "west"


def test_user_file_errors(grid27, tmp_path):
    path = tmp_path / "boxes.geojson"
    _boxes_frame().to_file(path)
    with pytest.raises(DataError, match=r"boxes.geojson.*no name column 'county'.*\['district', 'code'\]"):
        build_regions(grid27, path, name_column="county")
    with pytest.raises(DataError, match=r"no 'name' column \(give name_column\); its columns are"):
        build_regions(grid27, path)
    with pytest.raises(DataError, match=r"missing.geojson' not found \(built-in boundary sets: provinces"):
        build_regions(grid27, tmp_path / "missing.geojson")
    with pytest.raises(DataError, match="not found"):
        build_regions(grid27, "provinces-typo")
    garbage = tmp_path / "garbage.geojson"
    garbage.write_text("this is not json")
    with pytest.raises(DataError, match="cannot read boundary file"):
        build_regions(grid27, garbage, name_column="name")
    reserved = tmp_path / "reserved.geojson"
    _boxes_frame().assign(district=["outside", "east"]).to_file(reserved)
    with pytest.raises(DataError, match="reserved"):
        build_regions(grid27, reserved, name_column="district")
    contained = tmp_path / "contained.geojson"
    frame = _boxes_frame()
    frame.geometry = [shapely.box(114.0, 37.0, 118.0, 39.0), shapely.box(115.0, 38.0, 116.0, 38.5)]
    frame.to_file(contained)
    with pytest.raises(DataError, match="'east' lies entirely inside 'west'"):
        build_regions(grid27, contained, name_column="district")


def test_user_file_cache_follows_file_changes(grid27, tmp_path):
    path = tmp_path / "boxes.geojson"
    _boxes_frame().to_file(path)
    first = build_regions(grid27, path, name_column="district")
    assert build_regions(grid27, path, name_column="district") is first
    _boxes_frame().assign(district=["a", "b"]).to_file(path)
    assert build_regions(grid27, path, name_column="district").names == ("a", "b", "outside")
