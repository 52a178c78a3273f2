"""Tests of the projected grid, exact cell-overlap areas and the CF grid description."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely
from cf_check import cf_failures
from hypothesis import given, settings
from hypothesis import strategies as st

from airshed.errors import AirshedInputError, DataError
from airshed.grids.boundaries import load_boundaries
from airshed.grids.builtin_case import BBOX as DEFAULT_BBOX
from airshed.grids.builtin_case import PROJECTION as DEFAULT_PROJ
from airshed.grids.cf import grid_from_dataset, grid_to_dataset
from airshed.grids.grid import Grid
from airshed.grids.overlap import cell_overlap_areas, plane_to_true_area_factor

GEOD = pyproj.Geod(ellps="WGS84")


def _domain_outline_lonlat(grid: Grid, n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """The domain rectangle (projection plane), densified and unprojected, anticlockwise."""
    xe, ye = grid.x_edges, grid.y_edges
    xs = np.concatenate(
        [np.linspace(xe[0], xe[-1], n), np.full(n, xe[-1]), np.linspace(xe[-1], xe[0], n), np.full(n, xe[0])]
    )
    ys = np.concatenate(
        [np.full(n, ye[0]), np.linspace(ye[0], ye[-1], n), np.full(n, ye[-1]), np.linspace(ye[-1], ye[0], n)]
    )
    return grid.xy_to_lonlat(xs, ys)


@pytest.fixture(scope="module")
def small_grid() -> Grid:
    """20 x 15 cells of 1 km, lower-left corner at (1000 m, -2000 m)."""
    return Grid(crs=pyproj.CRS(DEFAULT_PROJ), x0=1000.0, y0=-2000.0, dx=1000.0, nx=20, ny=15)


# --- exact cell overlap areas --------------------------------------------------------------------------
def test_overlap_polygon_covering_known_cells(small_grid):
    g = small_grid
    # cells i = 3..5, j = 2..3 exactly
    poly = shapely.box(g.x0 + 3000, g.y0 + 2000, g.x0 + 6000, g.y0 + 4000)
    m = cell_overlap_areas(g, [poly])
    assert m.shape == (1, g.nx * g.ny)
    expected = {j * g.nx + i for j in (2, 3) for i in (3, 4, 5)}
    assert set(m.indices) == expected
    np.testing.assert_allclose(m.data, 1.0e6, rtol=1e-12)


def test_overlap_polygon_split_across_cells(small_grid):
    g = small_grid
    # a 1 km square centred on the corner shared by cells (j=4,i=6), (4,7), (5,6), (5,7)
    cx, cy = g.x0 + 7000, g.y0 + 5000
    poly = shapely.box(cx - 500, cy - 500, cx + 500, cy + 500)
    m = cell_overlap_areas(g, [poly]).toarray().reshape(g.shape)
    for j, i in [(4, 6), (4, 7), (5, 6), (5, 7)]:
        assert m[j, i] == pytest.approx(0.25e6, rel=1e-12)
    assert m.sum() == pytest.approx(1.0e6, rel=1e-12)
    # a right triangle over one cell's diagonal: half of it
    x, y = g.x0 + 2000, g.y0 + 1000
    tri = shapely.Polygon([(x, y), (x + 1000, y), (x + 1000, y + 1000)])
    m = cell_overlap_areas(g, [tri]).toarray().reshape(g.shape)
    assert m[1, 2] == pytest.approx(0.5e6, rel=1e-12)
    assert np.count_nonzero(m) == 1


def test_overlap_grid_aligned_large_square_and_outside_parts(small_grid):
    g = small_grid
    # a square with no vertex on the inner cells: interior cells take the fast path
    poly = shapely.box(g.x0 + 500, g.y0 + 500, g.x0 + 12500, g.y0 + 10500)
    m = cell_overlap_areas(g, [poly]).toarray().reshape(g.shape)
    assert m.sum() == pytest.approx(poly.area, rel=1e-12)
    assert m[0, 0] == pytest.approx(0.25e6, rel=1e-12)
    assert m[0, 5] == pytest.approx(0.5e6, rel=1e-12)
    assert m[5, 5] == 1.0e6
    # a polygon sticking out of the domain: only the part inside the grid counts
    domain = shapely.box(g.x_edges[0], g.y_edges[0], g.x_edges[-1], g.y_edges[-1])
    big = shapely.box(g.x0 - 5000, g.y0 + 3300, g.x0 + 4200, g.y0 + 99000)
    m = cell_overlap_areas(g, [big, shapely.Polygon(), shapely.box(-1e7, -1e7, -9e6, -9e6)])
    sums = np.asarray(m.sum(axis=1)).ravel()
    assert sums[0] == pytest.approx(big.intersection(domain).area, rel=1e-12)
    assert sums[1] == 0.0 and sums[2] == 0.0


def test_overlap_rejects_lines(small_grid):
    with pytest.raises(AirshedInputError, match="geometry 1 is a LineString"):
        cell_overlap_areas(small_grid, [shapely.box(0, 0, 1, 1), shapely.LineString([(0, 0), (1, 1)])])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-0.2, 1.2), st.floats(-0.2, 1.2)),
        min_size=3,
        max_size=25,
    ),
    st.floats(0.05, 1.0),
)
def test_overlaps_sum_to_polygon_area(small_grid, points, buffer_frac):
    g = small_grid
    width, height = g.nx * g.dx, g.ny * g.dx
    pts = [(g.x0 + px * width, g.y0 + py * height) for px, py in points]
    # random (possibly concave, possibly holed) polygon: a buffered random line, partly outside the grid
    poly = shapely.LineString(pts).buffer(buffer_frac * g.dx * 2, quad_segs=4)
    domain = shapely.box(g.x_edges[0], g.y_edges[0], g.x_edges[-1], g.y_edges[-1])
    m = cell_overlap_areas(g, [poly, shapely.MultiPoint(pts).convex_hull.buffer(1.0)])
    sums = np.asarray(m.sum(axis=1)).ravel()
    assert sums[0] == pytest.approx(poly.intersection(domain).area, rel=1e-9)
    assert np.all(m.data > 0) and np.all(m.data <= g.dx * g.dx * (1 + 1e-12))


def test_plane_to_true_area_factor(small_grid):
    f = plane_to_true_area_factor(small_grid)
    assert f.shape == small_grid.shape
    np.testing.assert_allclose(f * small_grid.dx**2, small_grid.cell_area)
    # near 39 N on a 25/47 N secant cone the map shrinks areas slightly: true area > plane area
    assert np.all((f > 1.0) & (f < 1.05))


# --- the grid ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cell_km", "shape"), [(27, (43, 48)), (9, (125, 142)), (3, (373, 424)), (1, (1116, 1271))]
)
def test_default_grid_cell_areas_sum_to_geodesic_domain_area(cell_km, shape):
    grid = Grid.from_bbox(*DEFAULT_BBOX, cell_km, crs=DEFAULT_PROJ)
    assert grid.shape == shape
    assert grid.dx == cell_km * 1000.0
    assert grid.x0 % grid.dx == 0 and grid.y0 % grid.dx == 0
    # true area of the projected domain rectangle, on the WGS84 ellipsoid
    lon, lat = _domain_outline_lonlat(grid)
    geodesic, _ = GEOD.polygon_area_perimeter(lon, lat)
    assert geodesic > 0  # anticlockwise outline
    # measured relative differences: 1.5e-6 (27 km), 1.7e-7 (9 km), 1.8e-8 (3 km), 1.2e-9 (1 km)
    assert grid.cell_area.sum() == pytest.approx(geodesic, rel=1e-5)
    # the box is covered: its densified outline projects inside the domain
    lons = np.linspace(DEFAULT_BBOX[0], DEFAULT_BBOX[2], 300)
    lats = np.linspace(DEFAULT_BBOX[1], DEFAULT_BBOX[3], 300)
    for blon, blat in [
        (lons, np.full_like(lons, DEFAULT_BBOX[1])),
        (lons, np.full_like(lons, DEFAULT_BBOX[3])),
        (np.full_like(lats, DEFAULT_BBOX[0]), lats),
        (np.full_like(lats, DEFAULT_BBOX[2]), lats),
    ]:
        assert grid.contains_xy(*grid.lonlat_to_xy(blon, blat)).all()


def test_lonlat_xy_round_trip_and_cell_index():
    grid = Grid.from_bbox(*DEFAULT_BBOX, 9, crs=DEFAULT_PROJ)
    rng = np.random.default_rng(20240601)
    lon = rng.uniform(110, 124, 1000)
    lat = rng.uniform(34, 44, 1000)
    x, y = grid.lonlat_to_xy(lon, lat)
    lon2, lat2 = grid.xy_to_lonlat(x, y)
    np.testing.assert_allclose(lon2, lon, atol=1e-9)
    np.testing.assert_allclose(lat2, lat, atol=1e-9)
    # projection origin is (0, 0)
    x0, y0 = grid.lonlat_to_xy(116.5, 39.0)
    assert abs(x0) < 1e-6 and abs(y0) < 1e-6
    j, i = grid.cell_index(x, y)
    assert np.all(grid.x_edges[i] <= x) and np.all(x < grid.x_edges[i + 1])
    assert np.all(grid.y_edges[j] <= y) and np.all(y < grid.y_edges[j + 1])
    j, i = grid.cell_index(np.array([grid.x0 - 1.0]), np.array([grid.y0]))
    assert j[0] == -1 and i[0] == -1
    # cell centres unproject to lon/lat that project back onto the centres
    xc, yc = grid.lonlat_to_xy(grid.lon, grid.lat)
    np.testing.assert_allclose(xc, np.broadcast_to(grid.x, grid.shape), atol=1e-6)
    np.testing.assert_allclose(yc, np.broadcast_to(grid.y[:, None], grid.shape), atol=1e-6)


def test_default_grid_covers_beijing_tianjin_hebei_entirely():
    grid = Grid.from_bbox(*DEFAULT_BBOX, 27, crs=DEFAULT_PROJ)
    bounds = load_boundaries("provinces")
    domain = shapely.box(grid.x_edges[0], grid.y_edges[0], grid.x_edges[-1], grid.y_edges[-1])
    for name in ("Beijing", "Tianjin", "Hebei"):
        geom = bounds.loc[bounds["name"] == name].geometry.iloc[0]
        lon, lat = shapely.get_coordinates(geom).T
        x, y = grid.lonlat_to_xy(lon, lat)
        assert grid.contains_xy(x, y).all(), name
        # with a margin of at least two cells everywhere
        assert shapely.MultiPoint(np.column_stack([x, y])).within(domain.buffer(-2 * grid.dx)), name


def test_grid_north_angle_sign():
    """A true-north vector west (east) of the central meridian points to grid north-east (north-west)."""
    grid = Grid.from_bbox(*DEFAULT_BBOX, 27, crs=DEFAULT_PROJ)
    for lon in (110.0, 116.5, 123.0):
        j, i = grid.cell_index(*grid.lonlat_to_xy(lon, 39.0))
        clon, clat = grid.lon[j, i], grid.lat[j, i]
        # finite-difference image of a short step due north from the cell centre
        xa, ya = grid.lonlat_to_xy(clon, clat)
        xb, yb = grid.lonlat_to_xy(clon, clat + 1e-4)
        north_in_grid = np.arctan2(-(xb - xa), yb - ya)  # anticlockwise from grid +y
        a = grid.grid_north_angle[j, i]
        assert a == pytest.approx(north_in_grid, abs=1e-6)
        # rotate a unit northerly-component wind (u, v) = (0, 1) into grid components
        ug, vg = -np.sin(a), np.cos(a)
        np.testing.assert_allclose([ug, vg], [xb - xa, yb - ya] / np.hypot(xb - xa, yb - ya), atol=1e-6)
        if lon < 116.5:
            assert a < 0 and ug > 0
        elif lon > 116.5:
            assert a > 0 and ug < 0
    # convergence of a conic projection is n * (lon - lon0) with the cone constant of the 25/47 N secants
    # (Snyder 1987, USGS PP 1395, eq. 15-3, spherical form; the ellipsoid changes n by ~1e-3)
    p1, p2 = np.deg2rad(25.0), np.deg2rad(47.0)
    n = np.log(np.cos(p1) / np.cos(p2)) / np.log(np.tan(np.pi / 4 + p2 / 2) / np.tan(np.pi / 4 + p1 / 2))
    j, i = grid.cell_index(*grid.lonlat_to_xy(110.0, 39.0))
    assert np.rad2deg(grid.grid_north_angle[j, i]) == pytest.approx(n * (grid.lon[j, i] - 116.5), rel=2e-3)


def test_grid_rejects_bad_input():
    with pytest.raises(AirshedInputError, match="west"):
        Grid.from_bbox(124, 34, 110, 44, 3)
    with pytest.raises(AirshedInputError, match="cell size"):
        Grid.from_bbox(*DEFAULT_BBOX, 0)
    with pytest.raises(AirshedInputError, match="projected"):
        Grid(crs=pyproj.CRS("EPSG:4326"), x0=0, y0=0, dx=1, nx=1, ny=1)


# --- CF description -----------------------------------------------------------------------------------
def test_cf_grid_round_trip(tmp_path):
    import xarray as xr

    grid = Grid.from_bbox(*DEFAULT_BBOX, 27, crs=DEFAULT_PROJ)
    ds = grid_to_dataset(grid)
    assert ds.attrs["Conventions"] == "CF-1.8"
    assert ds["x"].attrs["standard_name"] == "projection_x_coordinate"
    assert ds["y"].attrs["units"] == "m"
    assert ds["lat"].attrs["units"] == "degrees_north"
    assert ds["lon"].attrs["standard_name"] == "longitude"
    assert ds["cell_area"].attrs == {
        "standard_name": "cell_area",
        "long_name": "true (ellipsoidal) area of the grid cell",
        "units": "m2",
        "grid_mapping": "crs",
    }
    crs = ds["crs"].attrs
    assert crs["grid_mapping_name"] == "lambert_conformal_conic"
    np.testing.assert_array_equal(crs["standard_parallel"], [25.0, 47.0])
    assert crs["longitude_of_central_meridian"] == 116.5
    assert crs["latitude_of_projection_origin"] == 39.0
    assert crs["false_easting"] == 0.0 and crs["false_northing"] == 0.0
    assert "crs_wkt" in crs
    np.testing.assert_array_equal(ds["x_bnds"][:, 0], grid.x_edges[:-1])
    np.testing.assert_array_equal(ds["y_bnds"][:, 1], grid.y_edges[1:])
    path = tmp_path / "grid.nc"
    ds.to_netcdf(path)
    with xr.open_dataset(path) as back:
        assert grid_from_dataset(back) == grid
        assert "_FillValue" not in back["x"].encoding
    # without crs_wkt the CF grid-mapping attributes alone define the projection
    ds["crs"].attrs.pop("crs_wkt")
    assert grid_from_dataset(ds) == grid
    # cell corners: anticlockwise, and the lower-left corner of the lower-left cell is the grid corner
    lon0, lat0 = grid.xy_to_lonlat(grid.x0, grid.y0)
    assert ds["lon_bnds"].values[0, 0, 0] == pytest.approx(float(lon0))
    assert ds["lat_bnds"].values[0, 0, 0] == pytest.approx(float(lat0))


def test_cf_grid_from_dataset_errors():
    grid = Grid.from_bbox(*DEFAULT_BBOX, 27, crs=DEFAULT_PROJ)
    ds = grid_to_dataset(grid)
    with pytest.raises(DataError, match="grid mapping variable 'crs'"):
        grid_from_dataset(ds.drop_vars("crs"))
    irregular = ds.drop_vars(["x_bnds"]).assign_coords(x=ds["x"].values + np.linspace(0, 70, grid.nx) ** 2)
    irregular["x"].attrs = {"units": "m"}
    with pytest.raises(DataError, match="not regularly spaced"):
        grid_from_dataset(irregular)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_cf_grid_passes_compliance_checker(tmp_path):
    pytest.importorskip("compliance_checker")
    ds = grid_to_dataset(Grid.from_bbox(*DEFAULT_BBOX, 27, crs=DEFAULT_PROJ))
    ds.attrs.update(title="airshed grid", history="test")
    path = tmp_path / "grid.nc"
    ds.to_netcdf(path)
    # measured: 202 / 202 points, no message at any priority
    assert cf_failures(path, tmp_path) == {1: [], 2: [], 3: []}
