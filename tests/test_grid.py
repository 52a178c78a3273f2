"""Tests of the projected grid, exact cell-overlap areas and the CF grid description."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from airshed.grids.grid import DEFAULT_BBOX, DEFAULT_PROJ, Grid
from airshed.grids.overlap import cell_overlap_areas, plane_to_true_area_factor


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
    from airshed.errors import AirshedInputError

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
