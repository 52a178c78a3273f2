"""Meteorology readers on small synthetic files written in code: ERA5 (both CDS layouts), WRF, CF."""

import numpy as np
import pytest
import xarray as xr

from airshed.errors import DataError
from airshed.grids.builtin_case import PROJECTION as DEFAULT_PROJ
from airshed.grids.grid import Grid
from airshed.inputs.meteorology import open_meteorology
from airshed.inputs.meteorology.regrid import rotate_earth_to_grid
from airshed.inputs.meteorology.wrf import WrfReader
from airshed.physics.boundary_layer import wind_speed_at_height

G0 = 9.80665
HEIGHTS = [10.0, 50.0, 500.0, 5000.0]
LEVEL_HEIGHTS = {1000: 100.0, 925: 800.0, 850: 1500.0, 700: 3000.0}


def small_grid(west=114.0, south=38.0, east=118.0, north=41.0, crs=DEFAULT_PROJ):
    return Grid.from_bbox(west, south, east, north, 30.0, crs=crs)


def era5_files(tmp_path, layout="new", lon=None, lat=None, n_t=6, mutate=None):
    """Write an ERA5-like single-level and pressure-level pair; fields linear in lon/lat."""
    lat = np.arange(44.0, 34.9, -0.5) if lat is None else lat
    lon = np.arange(110.0, 122.1, 0.5) if lon is None else lon
    times = np.datetime64("2024-01-10T00") + np.arange(n_t) * np.timedelta64(1, "h")
    lon2, lat2 = np.meshgrid(lon, lat)
    shape = (n_t,) + lon2.shape
    tname, lname = ("valid_time", "pressure_level") if layout == "new" else ("time", "level")
    d2 = (tname, "latitude", "longitude")
    t2m = np.broadcast_to(250.0 + 0.1 * lon2 + 0.2 * lat2, shape)
    single = xr.Dataset(
        {
            "u10": (d2, np.full(shape, 5.0), {"units": "m s**-1"}),
            "v10": (d2, np.zeros(shape), {"units": "m s**-1"}),
            "t2m": (d2, t2m.copy(), {"units": "K"}),
            "blh": (d2, np.full(shape, 800.0), {"units": "m"}),
            "sshf": (d2, np.full(shape, -100.0 * 3600.0), {"units": "J m**-2"}),
            "zust": (d2, np.full(shape, 0.4), {"units": "m s**-1"}),
            "tcc": (d2, np.full(shape, 0.25), {"units": "(0 - 1)"}),
            "tp": (d2, np.full(shape, 0.002), {"units": "m"}),
            "sp": (d2, np.full(shape, 101000.0), {"units": "Pa"}),
            "z": (d2, np.zeros(shape), {"units": "m**2 s**-2"}),
        },
        coords={tname: times, "latitude": lat, "longitude": lon},
    )
    levels = np.array(sorted(LEVEL_HEIGHTS, reverse=True), dtype=float)
    d3 = (tname, lname, "latitude", "longitude")
    shape3 = (n_t, levels.size) + lon2.shape
    zlev = np.broadcast_to(
        np.array([LEVEL_HEIGHTS[int(p)] for p in levels])[None, :, None, None] * G0, shape3
    )
    pres = xr.Dataset(
        {
            "u": (d3, np.full(shape3, 10.0), {"units": "m s**-1"}),
            "v": (d3, np.zeros(shape3), {"units": "m s**-1"}),
            "t": (d3, np.full(shape3, 270.0), {"units": "K"}),
            "z": (d3, zlev.copy(), {"units": "m**2 s**-2"}),
        },
        coords={
            tname: times,
            lname: (lname, levels, {"units": "hPa" if layout == "new" else "millibars"}),
            "latitude": lat,
            "longitude": lon,
        },
    )
    if layout == "new":
        for ds in (single, pres):
            ds.coords["number"] = 0
            ds.coords["expver"] = (tname, np.array(["0001"] * n_t))
    if mutate is not None:
        single, pres = mutate(single, pres)
    enc = {tname: {"units": "hours since 1900-01-01" if layout == "old" else "seconds since 1970-01-01"}}
    paths = [tmp_path / f"sl_{layout}.nc", tmp_path / f"pl_{layout}.nc"]
    single.to_netcdf(paths[0], encoding=enc)
    pres.to_netcdf(paths[1], encoding=enc)
    return paths


@pytest.mark.parametrize("layout", ["new", "old"])
def test_era5_both_layouts(tmp_path, layout):
    grid = small_grid()
    src = open_meteorology("era5", era5_files(tmp_path, layout), grid, HEIGHTS)
    assert src.times.size == 6
    ds = src.window("2024-01-10T01", "2024-01-10T03")
    assert ds.sizes == {"time": 3, "z": 4, "y": grid.ny, "x": grid.nx}
    # bilinear interpolation reproduces a field linear in lon/lat exactly
    np.testing.assert_allclose(ds.t2m.isel(time=0), 250.0 + 0.1 * grid.lon + 0.2 * grid.lat, rtol=1e-10)
    # accumulated ECMWF flux (J m-2, downward +) -> upward W m-2; tp m/h -> mm/h
    np.testing.assert_allclose(ds.shf, 100.0)
    np.testing.assert_allclose(ds.precip, 2.0)
    np.testing.assert_allclose(ds.cloud_cover, 0.25)
    np.testing.assert_allclose(ds.ustar, 0.4)
    np.testing.assert_allclose(ds.blh, 800.0)
    assert (ds.obukhov_length < 0).all() and (ds.wstar > 0).all()
    assert set(np.unique(ds.pg_class.values)) <= {1, 2, 3}
    assert ds.z.attrs["units"] == "m" and ds.u.attrs["standard_name"] == "x_wind"
    # 10 m: the 10 m wind; 500 m: ln-interpolated between 100 m (10 m/s) and 800 m (10 m/s); 50 m: between
    # the 10 m anchor (5 m/s) and the 100 m level (10 m/s), linear in ln z
    speed = np.hypot(ds.u, ds.v).isel(time=0)
    np.testing.assert_allclose(speed.sel(z=10.0), 5.0, rtol=1e-10)
    np.testing.assert_allclose(speed.sel(z=500.0), 10.0, rtol=1e-10)
    np.testing.assert_allclose(speed.sel(z=50.0), 5.0 + 5.0 * np.log(5.0) / np.log(10.0), rtol=1e-10)
    np.testing.assert_allclose(speed.sel(z=5000.0), 10.0, rtol=1e-10)  # above the top level: held


def test_era5_longitude_conventions_agree(tmp_path):
    crs = "+proj=lcc +lat_1=33 +lat_2=45 +lat_0=39 +lon_0=-98.5 +units=m +ellps=WGS84"
    grid = small_grid(-100.0, 38.0, -97.0, 41.0, crs=crs)
    lon_west = np.arange(-104.0, -92.9, 0.5)
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.mkdir()
    b.mkdir()
    ds_a = open_meteorology("era5", era5_files(a, lon=lon_west), grid, HEIGHTS).window(
        "2024-01-10T00", "2024-01-10T01"
    )
    ds_b = open_meteorology("era5", era5_files(b, lon=lon_west + 360.0), grid, HEIGHTS).window(
        "2024-01-10T00", "2024-01-10T01"
    )
    # t2m = 250 + 0.1 lon + 0.2 lat: the 0..360 file has lon + 360, so it is exactly 36 K warmer
    np.testing.assert_allclose(ds_b.t2m - ds_a.t2m, 36.0, rtol=1e-9)
    np.testing.assert_allclose(ds_a.t2m.isel(time=0), 250.0 + 0.1 * grid.lon + 0.2 * grid.lat, rtol=1e-10)


def test_era5_instantaneous_flux_and_no_surface_geopotential(tmp_path):
    def mutate(single, pres):
        single = single.drop_vars(["sshf", "z"])
        single["ishf"] = single["u10"] * 0 - 50.0
        single["ishf"].attrs = {"units": "W m**-2"}
        return single, pres

    ds = open_meteorology("era5", era5_files(tmp_path, mutate=mutate), small_grid(), HEIGHTS).window(
        "2024-01-10T00", "2024-01-10T00"
    )
    np.testing.assert_allclose(ds.shf, 50.0)
    assert np.isfinite(ds.u).all()


def test_rotation_sign_west_of_central_meridian():
    grid = small_grid(112.0, 38.0, 115.0, 41.0)
    assert (grid.lon < 116.5).all()
    ug, vg = rotate_earth_to_grid(np.zeros(grid.shape), np.full(grid.shape, 5.0), grid.grid_north_angle)
    # On the LCC cone, true north west of the central meridian points towards +x
    x1, y1 = grid.lonlat_to_xy(grid.lon, grid.lat)
    x2, y2 = grid.lonlat_to_xy(grid.lon, grid.lat + 0.01)
    assert (ug > 0).all() and (x2 - x1 > 0).all()
    np.testing.assert_allclose(np.arctan2(ug, vg), np.arctan2(x2 - x1, y2 - y1), atol=1e-4)
    np.testing.assert_allclose(np.hypot(ug, vg), 5.0)


def test_era5_north_wind_rotated_on_grid(tmp_path):
    def mutate(single, pres):
        single["u10"][:] = 0.0
        single["v10"][:] = 5.0
        return single, pres

    grid = small_grid(112.0, 38.0, 115.0, 41.0)
    ds = open_meteorology("era5", era5_files(tmp_path, mutate=mutate), grid, HEIGHTS).window(
        "2024-01-10T00", "2024-01-10T00"
    )
    assert (ds.u10 > 0).all()
    np.testing.assert_allclose(ds.u10.isel(time=0), -5.0 * np.sin(grid.grid_north_angle), rtol=1e-10)


# --- errors ------------------------------------------------------------------------------------------------
def _drop(name):
    return lambda s, p: (s.drop_vars(name), p)


def _set_units(name, units):
    def f(s, p):
        s[name].attrs["units"] = units
        return s, p

    return f


def _nan_inside(s, p):
    s["t2m"][2, 8, 10] = np.nan  # 40 N, 115 E: inside the domain
    return s, p


def _drop_time(s, p):
    keep = [0, 1, 3, 4, 5]
    return s.isel(valid_time=keep), p.isel(valid_time=keep)


def _shuffle_lat(s, p):
    order = np.r_[1, 0, 2 : s.sizes["latitude"]]
    return s.isel(latitude=order), p.isel(latitude=order)


@pytest.mark.parametrize(
    "mutate,kwargs,message",
    [
        (_drop("v10"), {}, "no 10 m northward wind: tried v10, 10v, V10, vas in"),
        (_set_units("t2m", "furlongs"), {}, "'t2m'"),
        (_nan_inside, {}, "'t2m'"),
        (None, {"lon": np.arange(110.0, 115.1, 0.5)}, "does not cover|covers lon"),
        (_drop_time, {}, "not uniform"),
        (_shuffle_lat, {}, "not monotonic"),
    ],
)
def test_era5_bad_inputs_name_file_and_variable(tmp_path, mutate, kwargs, message):
    paths = era5_files(tmp_path, mutate=mutate, **kwargs)
    with pytest.raises(DataError, match=message) as err:
        open_meteorology("era5", paths, small_grid(), HEIGHTS).window("2024-01-10T00", "2024-01-10T03")
    assert "sl_new.nc" in str(err.value) or "pl_new.nc" in str(err.value)


def test_period_not_covered(tmp_path):
    src = open_meteorology("era5", era5_files(tmp_path), small_grid(), HEIGHTS)
    with pytest.raises(DataError, match="covers 2024-01-10T00.*needs"):
        src.window("2024-01-10T00", "2024-01-11T00")


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(Exception, match="format 'grib'"):
        open_meteorology("grib", [], small_grid(), HEIGHTS)
    with pytest.raises(DataError, match="does not exist"):
        open_meteorology("era5", [tmp_path / "nope.nc"], small_grid(), HEIGHTS)


# --- WRF ---------------------------------------------------------------------------------------------------
def wrf_file(tmp_path, alpha_deg=10.0, n_t=4):
    ny, nx, nz = 12, 14, 5
    lat = np.linspace(36.0, 43.0, ny)
    lon = np.linspace(111.0, 121.0, nx)
    lon2, lat2 = np.meshgrid(lon, lat)
    times = np.array([f"2024-01-10_{h:02d}:00:00".encode() for h in range(n_t)])
    z_stag = np.array([0.0, 50.0, 150.0, 300.0, 600.0, 1000.0])
    sa, ca = np.sin(np.radians(alpha_deg)), np.cos(np.radians(alpha_deg))
    t2 = ("Time", "south_north", "west_east")
    ds = xr.Dataset(
        {
            "Times": (("Time",), times),
            "XLAT": (t2, np.broadcast_to(lat2, (n_t, ny, nx)).copy(), {"units": "degree_north"}),
            "XLONG": (t2, np.broadcast_to(lon2, (n_t, ny, nx)).copy(), {"units": "degree_east"}),
            "U10": (t2, np.full((n_t, ny, nx), 5.0), {"units": "m s-1"}),
            "V10": (t2, np.zeros((n_t, ny, nx)), {"units": "m s-1"}),
            "T2": (t2, np.full((n_t, ny, nx), 275.0), {"units": "K"}),
            "PSFC": (t2, np.full((n_t, ny, nx), 100000.0), {"units": "Pa"}),
            "PBLH": (t2, np.full((n_t, ny, nx), 600.0), {"units": "m"}),
            "HFX": (t2, np.full((n_t, ny, nx), 40.0), {"units": "W m-2"}),
            "UST": (t2, np.full((n_t, ny, nx), 0.3), {"units": "m s-1"}),
            "SINALPHA": (t2, np.full((n_t, ny, nx), sa), {}),
            "COSALPHA": (t2, np.full((n_t, ny, nx), ca), {}),
            "RAINNC": (
                t2,
                np.broadcast_to(np.array([0.0, 1.0, 3.0, 6.0])[:n_t, None, None], (n_t, ny, nx)).copy(),
                {"units": "mm"},
            ),
            "RAINC": (t2, np.zeros((n_t, ny, nx)), {"units": "mm"}),
            # U on the x-staggered grid: value = staggered column index; V on y-stagger: row index
            "U": (
                ("Time", "bottom_top", "south_north", "west_east_stag"),
                np.broadcast_to(np.arange(nx + 1.0), (n_t, nz, ny, nx + 1)).copy(),
                {"units": "m s-1"},
            ),
            "V": (
                ("Time", "bottom_top", "south_north_stag", "west_east"),
                np.broadcast_to(np.arange(ny + 1.0)[:, None], (n_t, nz, ny + 1, nx)).copy(),
                {"units": "m s-1"},
            ),
            "PH": (
                ("Time", "bottom_top_stag", "south_north", "west_east"),
                np.zeros((n_t, nz + 1, ny, nx)),
                {"units": "m2 s-2"},
            ),
            "PHB": (
                ("Time", "bottom_top_stag", "south_north", "west_east"),
                np.broadcast_to((z_stag * G0)[:, None, None], (n_t, nz + 1, ny, nx)).copy(),
                {"units": "m2 s-2"},
            ),
        }
    )
    path = tmp_path / "wrfout_d01_2024-01-10_00:00:00"
    ds.to_netcdf(path, encoding={"Times": {"char_dim_name": "DateStrLen"}})
    return path


def test_wrf_destagger_heights_precip(tmp_path):
    reader = WrfReader([wrf_file(tmp_path, alpha_deg=0.0)])
    assert reader.times[0] == np.datetime64("2024-01-10T00")
    full = {"south_north": slice(0, 12), "west_east": slice(0, 14)}
    f = reader.load(reader.times[0], reader.times[-1], full)
    np.testing.assert_allclose(f["u"][0, 0, 0], np.arange(14) + 0.5)  # mean of the two faces
    np.testing.assert_allclose(f["v"][0, 0, :, 0], np.arange(12) + 0.5)
    np.testing.assert_allclose(f["level_height"][0, :, 0, 0], [25.0, 100.0, 225.0, 450.0, 800.0])
    np.testing.assert_allclose(f["precip"][:, 0, 0], [1.0, 1.0, 2.0, 3.0])  # first record: forward difference
    f2 = reader.load(reader.times[2], reader.times[3], full)
    np.testing.assert_allclose(f2["precip"][:, 0, 0], [2.0, 3.0])


def test_wrf_rotation_to_earth_then_to_model_grid(tmp_path):
    grid = small_grid()
    ds = open_meteorology("wrf", [wrf_file(tmp_path, alpha_deg=10.0)], grid, HEIGHTS).window(
        "2024-01-10T00", "2024-01-10T01"
    )
    a = grid.grid_north_angle
    ue = ds.u10 * np.cos(a) + ds.v10 * np.sin(a)  # inverse rotation grid -> earth
    ve = -ds.u10 * np.sin(a) + ds.v10 * np.cos(a)
    np.testing.assert_allclose(ue, 5.0 * np.cos(np.radians(10.0)), rtol=1e-10)
    np.testing.assert_allclose(ve, 5.0 * np.sin(np.radians(10.0)), rtol=1e-10)
    np.testing.assert_allclose(ds.shf, 40.0)
    np.testing.assert_allclose(ds.blh, 600.0)


# --- CF ----------------------------------------------------------------------------------------------------
def test_cf_with_mapping_and_units(tmp_path):
    lat = np.arange(35.0, 44.1, 1.0)
    lon = np.arange(110.0, 122.1, 1.0)
    times = np.datetime64("2024-01-10T00") + np.arange(3) * np.timedelta64(3, "h")
    shape = (3, lat.size, lon.size)
    d = ("time", "lat", "lon")
    ds = xr.Dataset(
        {
            "wind_e": (d, np.full(shape, 4.0), {"units": "m/s"}),
            "wind_n": (d, np.full(shape, 3.0), {"units": "m/s"}),
            "temp": (d, np.full(shape, -5.0), {"units": "degC"}),
            "hf": (
                d,
                np.full(shape, -20.0),
                {"units": "W m-2", "standard_name": "surface_downward_sensible_heat_flux"},
            ),
            "pbl": (d, np.full(shape, 300.0), {"units": "m"}),
            "cc": (d, np.full(shape, 50.0), {"units": "%"}),
            "rain": (d, np.full(shape, 1.0 / 3600.0), {"units": "kg m-2 s-1"}),
        },
        coords={"time": times, "lat": lat, "lon": lon},
    )
    path = tmp_path / "met_cf.nc"
    ds.to_netcdf(path)
    mapping = {
        "u10": "wind_e",
        "v10": "wind_n",
        "t2m": "temp",
        "shf": "hf",
        "blh": "pbl",
        "cloud_cover": "cc",
        "precip": "rain",
    }
    src = open_meteorology("cf", [path], small_grid(), HEIGHTS, variables=mapping, roughness_length_m=0.3)
    out = src.window(times[0], times[-1])
    np.testing.assert_allclose(out.t2m, 268.15)
    np.testing.assert_allclose(out.shf, 20.0)  # downward -20 -> upward +20
    np.testing.assert_allclose(out.cloud_cover, 0.5)
    np.testing.assert_allclose(out.precip, 1.0)
    np.testing.assert_allclose(out.z0, 0.3)
    np.testing.assert_allclose(np.hypot(out.u10, out.v10), 5.0)
    assert (out.obukhov_length < 0).all()
    # no upper air: similarity profile from the 10 m wind
    inv_l = 1.0 / float(out.obukhov_length[0, 0, 0])
    expected = wind_speed_at_height(5.0, 10.0, 500.0, 0.3, inv_l)
    assert float(np.hypot(out.u, out.v)[0, 2, 0, 0]) == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(out.w, 0.0)
    with pytest.raises(DataError, match="unknown model variable"):
        open_meteorology("cf", [path], small_grid(), HEIGHTS, variables={"windspeed": "x"})
    with pytest.raises(DataError, match="no 2 m air temperature: tried tas, t2m in"):
        open_meteorology("cf", [path], small_grid(), HEIGHTS, variables={"u10": "wind_e", "v10": "wind_n"})


def test_turner_fallback_without_heat_flux(tmp_path):
    lat = np.arange(35.0, 44.1, 1.0)
    lon = np.arange(110.0, 122.1, 1.0)
    times = np.datetime64("2024-01-10T12") + np.arange(2) * np.timedelta64(1, "h")  # 20 LST: night
    shape = (2, lat.size, lon.size)
    d = ("time", "lat", "lon")
    ds = xr.Dataset(
        {
            "uas": (d, np.full(shape, 1.0), {"units": "m s-1"}),
            "vas": (d, np.zeros(shape), {"units": "m s-1"}),
            "tas": (d, np.full(shape, 270.0), {"units": "K"}),
            "clt": (d, np.zeros(shape), {"units": "1"}),
        },
        coords={"time": times, "lat": lat, "lon": lon},
    )
    path = tmp_path / "cf_min.nc"
    ds.to_netcdf(path)
    out = open_meteorology("cf", [path], small_grid(), HEIGHTS).window(times[0], times[-1])
    assert (out.pg_class == 6).all()  # clear night, light wind: F
    assert (out.shf < 0).all() and (out.obukhov_length > 0).all() and (out.wstar == 0).all()
    assert "Zilitinkevich" in out.blh.attrs["comment"]


def test_era5_invariant_orography_file_with_one_time(tmp_path):
    def mutate(single, pres):
        return single.drop_vars("z"), pres

    paths = era5_files(tmp_path, mutate=mutate)
    orog = xr.Dataset(
        {
            "z": (
                ("valid_time", "latitude", "longitude"),
                np.full((1, 19, 25), 50.0 * G0),
                {"units": "m**2 s**-2"},
            )
        },
        coords={
            "valid_time": [np.datetime64("1940-01-01T00", "ns")],
            "latitude": np.arange(44.0, 34.9, -0.5),
            "longitude": np.arange(110.0, 122.1, 0.5),
        },
    )
    orog.to_netcdf(tmp_path / "orography.nc")
    src = open_meteorology("era5", paths + [tmp_path / "orography.nc"], small_grid(), HEIGHTS)
    assert src.times.size == 6
    f = src.reader.load(src.times[0], src.times[1], src._interp.slices)
    # ground at 50 m: the 1000 hPa level (100 m) is 50 m above it
    np.testing.assert_allclose(f["level_height"][:, 0], 50.0)


def test_cf_upper_air_on_height_levels(tmp_path):
    lat = np.arange(35.0, 44.1, 1.0)
    lon = np.arange(110.0, 122.1, 1.0)
    times = np.datetime64("2024-01-10T00") + np.arange(2) * np.timedelta64(1, "h")
    hgt = np.array([100.0, 400.0, 1000.0])
    s2, s3 = (2, lat.size, lon.size), (2, hgt.size, lat.size, lon.size)
    d2, d3 = ("time", "lat", "lon"), ("time", "height", "lat", "lon")
    ds = xr.Dataset(
        {
            "uas": (d2, np.full(s2, 2.0), {"units": "m s-1"}),
            "vas": (d2, np.zeros(s2), {"units": "m s-1"}),
            "tas": (d2, np.full(s2, 270.0), {"units": "K"}),
            "hfss": (d2, np.full(s2, 10.0), {"units": "W m-2"}),
            "ua": (
                d3,
                np.broadcast_to(np.array([4.0, 6.0, 8.0])[None, :, None, None], s3).copy(),
                {"units": "m s-1"},
            ),
            "va": (d3, np.zeros(s3), {"units": "m s-1"}),
        },
        coords={"time": times, "height": ("height", hgt, {"units": "m"}), "lat": lat, "lon": lon},
    )
    ds.to_netcdf(tmp_path / "cf3d.nc")
    out = open_meteorology("cf", [tmp_path / "cf3d.nc"], small_grid(), [10.0, 200.0, 1000.0]).window(
        times[0], times[1]
    )
    speed = np.hypot(out.u, out.v)
    np.testing.assert_allclose(speed.sel(z=200.0), 4.0 + 2.0 * np.log(2.0) / np.log(4.0), rtol=1e-10)
    np.testing.assert_allclose(speed.sel(z=1000.0), 8.0, rtol=1e-10)
    np.testing.assert_allclose(speed.sel(z=10.0), 2.0, rtol=1e-10)


def test_era5_omega_to_vertical_velocity(tmp_path):
    def mutate(single, pres):
        pres["w"] = pres["u"] * 0.0 - 0.1
        pres["w"].attrs = {"units": "Pa s**-1"}
        return single, pres

    ds = open_meteorology("era5", era5_files(tmp_path, mutate=mutate), small_grid(), HEIGHTS).window(
        "2024-01-10T00", "2024-01-10T00"
    )
    # hydrostatic w = -omega / (rho g), rho = p / (Rd T); above the 700 hPa level (3000 m) it is held
    rho_700 = 70000.0 / (287.05 * 270.0)
    np.testing.assert_allclose(ds.w.sel(z=5000.0), 0.1 / (rho_700 * 9.81), rtol=1e-10)
    assert (ds.w.sel(z=500.0) > 0).all() and (ds.w.sel(z=10.0) < ds.w.sel(z=500.0)).all()
