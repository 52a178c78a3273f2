"""Tests of the emission readers, regridding, temporal profiles and kernel-ready sources."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr

from airshed.errors import AirshedInputError, DataError
from airshed.grids.grid import Grid
from airshed.grids.regions import build_regions
from airshed.inputs.emissions import (
    EmissionDataWarning,
    GriddedFile,
    TemporalProfiles,
    build_emission_set,
    parse_emission_units,
    read_gridded_emissions,
    read_point_sources,
    temporal_factor,
)
from airshed.inputs.emissions.gridded import (
    SECONDS_PER_YEAR,
    ellipsoidal_cell_area,
    source_cell_polygons,
)


@pytest.fixture(scope="module")
def grid() -> Grid:
    return Grid.from_bbox(115.0, 38.5, 118.0, 41.0, 9.0)


def _lonlat(west, south, east, north, step):
    lon = np.arange(west + step / 2, east, step)
    lat = np.arange(south + step / 2, north, step)
    return lon, lat


def _write(tmp_path, ds, name="e.nc"):
    path = tmp_path / name
    ds.to_netcdf(path)
    return path


# --- units -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("units", "kg", "seconds", "area"),
    [
        ("kg m-2 s-1", 1.0, 1.0, 1.0),
        ("kg/m2/s", 1.0, 1.0, 1.0),
        ("kg m**-2 s**-1", 1.0, 1.0, 1.0),
        ("g m-2 s-1", 1e-3, 1.0, 1.0),
        ("t km-2 yr-1", 1e3, SECONDS_PER_YEAR, 1e6),
        ("Mg/month", 1e3, None, None),
        ("t/month/grid", 1e3, None, None),
        ("Mg month-1 per grid cell", 1e3, None, None),
        ("t/yr", 1e3, SECONDS_PER_YEAR, None),
        ("tonnes/year", 1e3, SECONDS_PER_YEAR, None),
        ("kg/s", 1.0, 1.0, None),
    ],
)
def test_parse_units(units, kg, seconds, area):
    u = parse_emission_units(units, "f.nc, variable x")
    assert u.kg_per_unit == pytest.approx(kg)
    assert u.seconds == (pytest.approx(seconds) if seconds else None)
    assert u.per_area_m2 == (pytest.approx(area) if area else None)


@pytest.mark.parametrize("units", ["mol m-2 s-1", "Mmol/month", "kg", "kg m-2", "ppb", "kg m-3 s-1"])
def test_unknown_units_error_names_variable(units):
    with pytest.raises(DataError, match=r"f\.nc, variable x"):
        parse_emission_units(units, "f.nc, variable x")


# --- geometry -----------------------------------------------------------------------------------------------


def test_ellipsoidal_cell_area_sums_to_earth_area():
    lat = np.linspace(-90, 90, 181)
    total = ellipsoidal_cell_area(lat[:-1], lat[1:], 360.0).sum()
    # WGS84 ellipsoid surface area 5.10065622e14 m2
    assert total == pytest.approx(5.10065622e14, rel=1e-8)


# --- gridded reader and conservative regridding ---


def _flux_dataset(lon, lat, seed=0):
    rng = np.random.default_rng(seed)
    so2 = rng.random((2, lat.size, lon.size)) * 1e-9
    return xr.Dataset(
        {"emi_so2": (("sector", "lat", "lon"), so2, {"units": "kg m-2 s-1"})},
        coords={"lat": lat, "lon": lon, "sector": ["ENE", "RCO"]},
    )


def test_mass_conserved_for_sources_inside_domain(tmp_path, grid):
    lon, lat = _lonlat(115.5, 39.0, 117.5, 40.5, 0.25)
    ds = _flux_dataset(lon, lat)
    out = read_gridded_emissions([_write(tmp_path, ds)], grid)
    area = ellipsoidal_cell_area(lat - 0.125, lat + 0.125, 0.25)[:, None]
    expected = (ds["emi_so2"].values * area).sum(axis=(1, 2))
    got = out["emission"].sel(species="SO2").sum(("y", "x")).values
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert float(out["outside_domain"].sum()) <= 1e-9 * expected.sum()
    assert list(out["sector"].values) == ["power", "residential"]
    assert out["emission"].attrs["units"] == "kg s-1"


def test_descending_latitude_and_0_360_longitude_give_same_result(tmp_path, grid):
    lon, lat = _lonlat(115.5, 39.0, 117.5, 40.5, 0.25)
    ds = _flux_dataset(lon, lat, seed=3)
    ref = read_gridded_emissions([_write(tmp_path, ds, "a.nc")], grid)["emission"].values
    flipped = ds.isel(lat=slice(None, None, -1))
    got = read_gridded_emissions([_write(tmp_path, flipped, "b.nc")], grid)["emission"].values
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)
    # a 0..360 grid straddling Greenwich is rolled to -180..180 before regridding
    glon = np.arange(0.125, 360.0, 0.25)
    glat = np.arange(38.125, 41.0, 0.25)
    rng = np.random.default_rng(1)
    field = rng.random((glat.size, glon.size)) * 1e-9
    g360 = xr.Dataset(
        {"SO2_power": (("lat", "lon"), field, {"units": "kg m-2 s-1"})}, coords={"lat": glat, "lon": glon}
    )
    lon180 = (glon + 180) % 360 - 180
    order = np.argsort(lon180)
    g180 = xr.Dataset(
        {"SO2_power": (("lat", "lon"), field[:, order], {"units": "kg m-2 s-1"})},
        coords={"lat": glat, "lon": lon180[order]},
    )
    a = read_gridded_emissions([_write(tmp_path, g360, "c.nc")], grid)
    b = read_gridded_emissions([_write(tmp_path, g180, "d.nc")], grid)
    np.testing.assert_allclose(a["emission"].values, b["emission"].values, rtol=1e-12)
    assert float(a["source_total"].sum()) == pytest.approx(float(b["source_total"].sum()), rel=1e-12)


def test_partial_overlap_matches_geometric_share_and_reports_outside(tmp_path, grid):
    # one 1-degree cell straddling the domain's west edge
    west_lon, _ = grid.xy_to_lonlat(grid.x_edges[0], grid.y[grid.ny // 2])
    lat_c = float(grid.xy_to_lonlat(grid.x_edges[0], grid.y[grid.ny // 2])[1])
    lon = np.array([float(west_lon) - 0.3, float(west_lon) + 0.7])
    lat = np.array([round(lat_c, 1) - 0.5, round(lat_c, 1) + 0.5])
    field = np.array([[0.0, 0.0], [0.0, 0.0]])
    field[0, 0] = 5.0  # t/yr in the straddling cell
    ds = xr.Dataset(
        {"NOx_industry": (("lat", "lon"), field, {"units": "t/yr"})}, coords={"lat": lat, "lon": lon}
    )
    out = read_gridded_emissions([_write(tmp_path, ds)], grid)
    total = 5.0 * 1e3 / SECONDS_PER_YEAR
    lon_edges = np.array([lon[0] - 0.5, lon[0] + 0.5, lon[1] + 0.5])
    lat_edges = np.array([lat[0] - 0.5, lat[0] + 0.5, lat[1] + 0.5])
    poly = source_cell_polygons(lon_edges, lat_edges, np.array([0]), np.array([0]), grid)[0]
    domain = shapely.box(grid.x_edges[0], grid.y_edges[0], grid.x_edges[-1], grid.y_edges[-1])
    share = shapely.area(shapely.intersection(poly, domain)) / shapely.area(poly)
    assert 0.1 < share < 0.9
    inside = float(out["emission"].sum())
    assert inside == pytest.approx(total * share, rel=1e-6)
    assert float(out["outside_domain"].sum()) == pytest.approx(total * (1 - share), rel=1e-6)
    assert float(out["source_total"].sum()) == pytest.approx(total, rel=1e-12)


def test_layouts_and_monthly_mass_units(tmp_path, grid):
    lon, lat = _lonlat(116.0, 39.5, 117.0, 40.5, 0.1)
    shape = (lat.size, lon.size)
    months = pd.date_range("2017-01-01", periods=12, freq="MS")
    monthly = np.stack([np.full(shape, float(m + 1)) for m in range(12)])  # Mg per cell per month
    ds = xr.Dataset(
        {
            "power__nox": (("lat", "lon"), np.ones(shape), {"units": "t/yr"}),
            "PM2.5_RCO": (("lat", "lon"), np.ones(shape), {"units": "t/yr"}),
            "emission": (("species", "sector", "lat", "lon"), np.ones((2, 1, *shape)), {"units": "t/yr"}),
            "NH3": (("time", "lat", "lon"), monthly, {"units": "Mg/month", "sector": "agriculture"}),
            "cell_area": (("lat", "lon"), np.ones(shape), {"units": "m2"}),
        },
        coords={
            "lat": lat,
            "lon": lon,
            "time": months,
            "species": ["so2", "VOC"],
            "sector": ["transportation"],
        },
    )
    out = read_gridded_emissions([_write(tmp_path, ds)], grid)
    tot = out["source_total"]
    ncell = lon.size * lat.size
    per_yr = 1e3 / SECONDS_PER_YEAR
    assert float(tot.sel(species="NOx", sector="power")) == pytest.approx(ncell * per_yr)
    assert float(tot.sel(species="PM2.5", sector="residential")) == pytest.approx(ncell * per_yr)
    assert float(tot.sel(species="SO2", sector="transport")) == pytest.approx(ncell * per_yr)
    assert float(tot.sel(species="NMVOC", sector="transport")) == pytest.approx(ncell * per_yr)
    # monthly masses: mean rate = total mass / total seconds of the calendar year 2017
    expected = ncell * 78.0 * 1e3 / (365 * 86400.0)
    assert float(tot.sel(species="NH3", sector="agriculture")) == pytest.approx(expected, rel=1e-12)
    assert float(out["emission"].sum(("y", "x")).sel(species="NH3", sector="agriculture")) == pytest.approx(
        expected, rel=1e-9
    )


def test_edgar_style_file_needs_sector(tmp_path, grid):
    lon, lat = _lonlat(116.0, 39.5, 117.0, 40.5, 0.1)
    ds = xr.Dataset(
        {"fluxes": (("lat", "lon"), np.full((lat.size, lon.size), 1e-10), {"units": "kg m-2 s-1"})},
        coords={"lat": lat, "lon": lon},
    )
    path = _write(tmp_path, ds)
    with pytest.raises(DataError, match="no emission variable found.*names tried"):
        read_gridded_emissions([path], grid)
    out = read_gridded_emissions([GriddedFile(path, sector="TRO", species="NOx")], grid)
    assert list(out["sector"].values) == ["transport"]
    assert list(out["species"].values) == ["NOx"]
    ds2 = xr.Dataset(
        {"emi_so2": (("lat", "lon"), np.ones((lat.size, lon.size)), {"units": "kg m-2 s-1"})},
        coords={"lat": lat, "lon": lon},
    )
    with pytest.raises(DataError, match="sector"):
        read_gridded_emissions([_write(tmp_path, ds2, "s.nc")], grid)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda v: v * -1.0, "negative"),
        (lambda v: np.where(v > 0.5, np.nan, v), "NaN"),
    ],
)
def test_bad_values_are_errors_naming_the_variable(tmp_path, grid, mutate, message):
    lon, lat = _lonlat(116.0, 39.5, 117.0, 40.5, 0.1)
    vals = mutate(np.random.default_rng(0).random((lat.size, lon.size)))
    ds = xr.Dataset({"SO2_power": (("lat", "lon"), vals, {"units": "t/yr"})}, coords={"lat": lat, "lon": lon})
    with pytest.raises(DataError, match=f"variable 'SO2_power'.*{message}"):
        read_gridded_emissions([_write(tmp_path, ds)], grid)


def test_unknown_units_and_missing_units(tmp_path, grid):
    lon, lat = _lonlat(116.0, 39.5, 117.0, 40.5, 0.1)
    for units, match in (("mol m-2 s-1", "unknown emission units"), (None, "no 'units'")):
        attrs = {} if units is None else {"units": units}
        ds = xr.Dataset(
            {"SO2_power": (("lat", "lon"), np.ones((lat.size, lon.size)), attrs)},
            coords={"lat": lat, "lon": lon},
        )
        with pytest.raises(DataError, match=f"e.nc.*SO2_power.*{match}"):
            read_gridded_emissions([_write(tmp_path, ds)], grid)


def test_non_monotonic_and_irregular_coordinates(tmp_path, grid):
    lon, lat = _lonlat(116.0, 39.5, 117.0, 40.5, 0.1)
    bad = lat.copy()
    bad[[2, 3]] = bad[[3, 2]]
    ds = xr.Dataset(
        {"SO2_power": (("lat", "lon"), np.ones((lat.size, lon.size)), {"units": "t/yr"})},
        coords={"lat": bad, "lon": lon},
    )
    with pytest.raises(DataError, match="'lat' is not strictly monotonic"):
        read_gridded_emissions([_write(tmp_path, ds)], grid)
    irregular = lon.copy()
    irregular[-1] += 0.05
    ds = ds.assign_coords(lat=lat, lon=irregular)
    with pytest.raises(DataError, match="'lon' is not evenly spaced"):
        read_gridded_emissions([_write(tmp_path, ds, "i.nc")], grid)


def test_missing_file(tmp_path, grid):
    with pytest.raises(DataError, match="not found"):
        read_gridded_emissions([tmp_path / "nope.nc"], grid)


# --- point sources ------------------------------------------------------------------------------------------


def _points_frame():
    return pd.DataFrame(
        {
            "id": ["A", "B", "C"],
            "lon": [116.40, 116.90, 140.0],
            "lat": [39.90, 39.30, 35.0],
            "stack_height_m": [200.0, 120.0, 80.0],
            "diameter_m": [6.0, 3.0, 2.0],
            "exit_temperature_k": [323.0, 400.0, 350.0],
            "exit_velocity_m_s": [18.0, 12.0, 10.0],
            "sector": ["power", "IND", "industry"],
            "so2_kg_s": [1.0, 0.5, 2.0],
            "NOx [t/yr]": [31557.6, 0.0, 1.0],
            "pm25_g_s": [100.0, None, 0.0],
            "region": ["", "Beijing", ""],
        }
    )


def test_point_reader_units_and_outside_warning(tmp_path, grid):
    path = tmp_path / "p.csv"
    _points_frame().to_csv(path, index=False)
    with pytest.warns(EmissionDataWarning, match=r"1 point source\(s\) outside the model domain.*C"):
        table = read_point_sources(path, grid)
    assert table.species == ("SO2", "NOx", "PM2.5")
    np.testing.assert_allclose(table.rate[0], [1.0, 1.0, 0.1])
    np.testing.assert_allclose(table.rate[1], [0.5, 0.0, 0.0])
    assert table.n_outside == 1 and table.outside_ids == ("C",)
    assert list(table.sector) == ["power", "industry", "industry"]


def test_point_reader_geopackage(tmp_path, grid):
    import geopandas as gpd

    frame = _points_frame().iloc[:2].drop(columns=["lon", "lat"])
    gdf = gpd.GeoDataFrame(
        frame, geometry=gpd.points_from_xy([116.40, 116.90], [39.90, 39.30]), crs="EPSG:4326"
    )
    path = tmp_path / "p.gpkg"
    gdf.to_file(path, driver="GPKG")
    table = read_point_sources(path, grid)
    np.testing.assert_allclose(table.lon, [116.40, 116.90])
    assert table.n_outside == 0


def test_point_reader_errors(tmp_path, grid):
    path = tmp_path / "p.csv"
    frame = _points_frame().iloc[:2]
    frame.drop(columns=["diameter_m"]).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"missing columns \['diameter_m'\].*expected columns id, lon, lat"):
        read_point_sources(path, grid)
    bad = frame.copy()
    bad.loc[1, "so2_kg_s"] = -1.0
    bad.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"negative emission in column 'so2_kg_s' for ids \['B'\]"):
        read_point_sources(path, grid)
    bad = frame.copy()
    bad.loc[0, "stack_height_m"] = np.nan
    bad.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"'stack_height_m'.*\['A'\]"):
        read_point_sources(path, grid)
    frame.drop(columns=["so2_kg_s", "NOx [t/yr]", "pm25_g_s"]).to_csv(path, index=False)
    with pytest.raises(DataError, match="no emission-rate column"):
        read_point_sources(path, grid)


# --- temporal profiles --------------------------------------------------------------------------------------


def test_flat_profile_is_one():
    t = pd.date_range("2017-01-01", periods=100, freq="7h")
    np.testing.assert_array_equal(temporal_factor("power", t), np.ones(100))


def test_china_profiles_normalised_and_in_local_time():
    prof = TemporalProfiles.builtin("china")
    for p in prof.profiles.values():
        assert p.month.mean() == pytest.approx(1.0)
        assert p.weekday.mean() == pytest.approx(1.0)
        assert p.hour.mean() == pytest.approx(1.0)
    # 2017-01-02 is a Monday; 01 UTC = 09 CST: industry working hours
    f = temporal_factor("industry", np.array(["2017-01-02T01:00"], dtype="datetime64[ns]"), profiles="china")
    month = 2.05 / np.mean([2.05, 2.055, 2.04, 2.01, 1.98, 1.91, 1.94, 1.94, 1.96, 2, 2.035, 2.07])
    assert f[0] == pytest.approx(month * 0.162 * 7 * 0.068 * 24)
    # annual mean over every hour of a year stays close to 1 (profiles are independent factors)
    t = pd.date_range("2017-01-01", "2017-12-31 23:00", freq="h")
    for sector in ("power", "industry", "residential", "transport", "agriculture"):
        assert prof.factor(sector, t).mean() == pytest.approx(1.0, abs=0.01)
    assert prof.factor("other", t[:5]).tolist() == [1.0] * 5
    # residential peaks in the heating season
    assert prof.profiles["residential"].month[0] == pytest.approx(1.3)
    assert prof.profiles["residential"].month[6] == pytest.approx(2.0 / 3.0)


def test_profile_errors():
    with pytest.raises(AirshedInputError, match="unknown temporal profile set"):
        TemporalProfiles.builtin("weekly")
    with pytest.raises(AirshedInputError, match="unknown sector"):
        temporal_factor("shipping", pd.date_range("2017-01-01", periods=2, freq="h"))


# --- kernel-ready sources -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def border_case(tmp_path_factory):
    """Beijing / Hebei / Tianjin border grid with a gridded field and points."""
    tmp = tmp_path_factory.mktemp("src")
    grid = Grid.from_bbox(116.0, 39.2, 117.4, 40.2, 9.0)
    regions = build_regions(grid, "provinces")
    lon, lat = _lonlat(115.9, 39.1, 117.5, 40.3, 0.1)
    rng = np.random.default_rng(7)
    ds = xr.Dataset(
        {
            "SO2": (("sector", "lat", "lon"), rng.random((2, lat.size, lon.size)), {"units": "t/yr"}),
            "NH3_agriculture": (("lat", "lon"), rng.random((lat.size, lon.size)), {"units": "t/yr"}),
        },
        coords={"lat": lat, "lon": lon, "sector": ["power", "industry"]},
    )
    gridded = read_gridded_emissions([_write(tmp, ds)], grid)
    frame = _points_frame().iloc[:2]
    path = tmp / "p.csv"
    frame.to_csv(path, index=False)
    points = read_point_sources(path, grid)
    return grid, regions, gridded, points


def test_area_sources_split_by_region_fractions(border_case):
    grid, regions, gridded, points = border_case
    es = build_emission_set(regions, gridded, points, TemporalProfiles.builtin("china"))
    assert es.species == ("SO2", "NOx", "PM2.5", "NH3")
    assert es.sectors == ("power", "industry", "agriculture")
    area = es.area
    for arr, dtype in (
        (area.x, np.float64),
        (area.rate, np.float64),
        (area.region, np.int32),
        (area.sector, np.int32),
    ):
        assert arr.dtype == dtype
    # entries of a cell and sector sum to the cell's emission
    back = np.zeros((len(es.species), len(es.sectors), grid.ny, grid.nx))
    for k in range(len(es.species)):
        np.add.at(back[k], (area.sector, area.row, area.col), area.rate[:, k])
    for a, sp in enumerate(gridded["species"].values):
        for b, sec in enumerate(gridded["sector"].values):
            ref = gridded["emission"].values[a, b]
            got = back[es.species.index(str(sp)), es.sectors.index(str(sec))]
            np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-18)
    # the cells crossing a border hold entries for several regions, in proportion to the fractions
    shared = regions.fractions.max(axis=0) < 0.99
    assert shared.any()
    j, i = np.argwhere(shared)[0]
    sel = (area.row == j) & (area.col == i) & (area.sector == es.sectors.index("industry"))
    cell = gridded["emission"].sel(species="SO2", sector="industry").values[j, i]
    np.testing.assert_allclose(
        area.rate[sel, 0], cell * regions.fractions[area.region[sel], j, i], rtol=1e-12
    )
    # tags and centres
    np.testing.assert_array_equal(es.area_tag, area.region * es.nsector + area.sector)
    assert np.all(np.diff(es.area_tag) >= 0)
    np.testing.assert_allclose(area.x, grid.x[area.col])
    assert es.tag("Hebei", "industry") == regions.index("Hebei") * 3 + 1
    assert len(es.tag_names) == es.ntag == len(regions.names) * 3


def test_point_sources_regions_and_rates_at(border_case):
    grid, regions, gridded, points = border_case
    es = build_emission_set(regions, gridded, points, TemporalProfiles.builtin("china"))
    pts = es.points
    assert pts.n == 2
    assert es.regions[pts.region[0]] == "Beijing"  # Tiananmen, from the polygon
    assert es.regions[pts.region[1]] == "Beijing"  # override (the stack lies in Hebei/Tianjin)
    assert regions.region_of_point(116.9, 39.3) != "Beijing"
    x, y = grid.lonlat_to_xy(116.4, 39.9)
    assert pts.x[0] == pytest.approx(float(x))
    area_rate, point_rate = es.rates_at("2017-07-03T04:00")
    f = es.sector_factors("2017-07-03T04:00")
    np.testing.assert_allclose(
        point_rate, points.rate[:2][:, [0, 1, 2]] @ np.eye(3, 4) * f[pts.sector][:, None]
    )
    np.testing.assert_allclose(area_rate, es.area.rate * f[es.area.sector][:, None])
    assert es.points_outside_ids == ()


def test_bad_region_override(border_case, tmp_path):
    grid, regions, gridded, _ = border_case
    frame = _points_frame().iloc[:2].copy()
    frame.loc[0, "region"] = "Atlantis"
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    points = read_point_sources(path, grid)
    with pytest.raises(DataError, match="Atlantis.*valid regions: Beijing"):
        build_emission_set(regions, gridded, points)


def test_outside_points_reported_not_dispersed(tmp_path, border_case):
    grid, regions, gridded, _ = border_case
    path = tmp_path / "p.csv"
    _points_frame().to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmissionDataWarning)
        points = read_point_sources(path, grid)
    es = build_emission_set(regions, gridded, points)
    assert es.points.n == 2
    assert es.points_outside_ids == ("C",)
    assert es.points_outside_rate[es.species.index("SO2")] == pytest.approx(2.0)
