"""Exact overlap areas between polygons and the cells of a projected grid.

This is the geometric core of region masks and of conservative (area-weighted) regridding of polygon
emission inventories. Areas are computed on the *projection plane* (m2 of the projected CRS), exactly:
each cell is a square of side ``grid.dx`` and its overlap with a polygon is the area of their
intersection polygon.

Algorithm, per geometry (all steps vectorised with NumPy / shapely 2):

1. The polygon rings are segmentized to at most ``dx / 2`` so that every boundary segment spans at
   most two cell rows and columns; the cells touched by each segment's bounding box are found by index
   arithmetic on the regular grid (what an STRtree query of the cell boxes would return, but O(1) per
   segment). These are the only cells the boundary can cross.
2. Every other cell inside the geometry's bounding box is either wholly inside or wholly outside the
   polygon; a single point-in-polygon test of its centre (prepared geometry) decides, and wholly
   inside cells get the full plane area ``dx**2`` without an intersection call.
3. Boundary cells are intersected exactly with the polygon. A large polygon (a province with
   ~10^5 vertices) is first cut into tiles of ``_TILE`` x ``_TILE`` cells, so each cell is intersected
   with the small piece of polygon inside its tile rather than with the whole outline.

Plane versus true area
----------------------
On a conformal projection the plane area of a cell, ``dx**2``, differs from its true (ellipsoidal) area
``grid.cell_area`` by the areal scale factor (within ~3 % on the default Lambert grid). To convert an
overlap area returned here into a true area, multiply it by :func:`plane_to_true_area_factor` of the
cell, ``grid.cell_area / dx**2`` (the scale factor varies by < 1e-5 across a 3 km cell, so applying the
cell-centre factor to a part of the cell is accurate to that order). Area *fractions* of a cell (overlap
/ ``dx**2``) need no conversion.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse
import shapely

from airshed.errors import AirshedInputError
from airshed.grids.grid import Grid

_TILE = 16
"""Tile size, in cells, used to cut large polygons before the per-cell intersections."""

_EDGE_EPS = 1e-9
"""Relative slack (in cells) when locating boundary segments, so that floating-point rounding at a cell
edge flags one cell too many (harmless: it is intersected exactly) rather than one too few."""


def plane_to_true_area_factor(grid: Grid) -> np.ndarray:
    """Factor turning plane (projected) areas of each cell into true ellipsoidal areas.

    Parameters
    ----------
    grid
        The model grid.

    Returns
    -------
    numpy.ndarray
        ``grid.cell_area / grid.dx**2``, shape (ny, nx), dimensionless (the inverse of the areal scale
        factor of the projection at each cell centre). Multiply the columns of
        :func:`cell_overlap_areas` by ``factor.ravel()`` to get true overlap areas in m2::

            true = cell_overlap_areas(grid, geoms).multiply(plane_to_true_area_factor(grid).ravel()).tocsr()
    """
    return grid.cell_area / (grid.dx * grid.dx)


def _polygonal(geom: shapely.Geometry | None, position: int) -> shapely.Geometry:
    """Return the valid polygonal part of a geometry; raise for point or line input."""
    if geom is None or shapely.is_empty(geom):
        return shapely.Polygon()
    if geom.geom_type not in ("Polygon", "MultiPolygon", "GeometryCollection"):
        raise AirshedInputError(
            f"geometry {position} is a {geom.geom_type}; cell overlap areas need polygons or multipolygons"
        )
    if not shapely.is_valid(geom):
        # a degenerate (zero-area) polygon repairs to lines and simply contributes nothing
        geom = shapely.make_valid(geom)
    parts = shapely.get_parts(geom)
    polys = parts[np.isin(shapely.get_type_id(parts), (3, 6))]  # Polygon, MultiPolygon
    if len(polys) == 0:
        return shapely.Polygon()
    return shapely.union_all(polys) if len(polys) > 1 else polys[0]


def _boundary_cells(geom: shapely.Geometry, grid: Grid) -> np.ndarray:
    """Flat indices of the cells whose closed box the polygon boundary may touch (a superset)."""
    rings = shapely.get_rings(shapely.get_parts(geom))
    rings = shapely.segmentize(rings, grid.dx / 2.0)
    coords, ring_id = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring_id[1:] == ring_id[:-1]
    a = coords[:-1][same_ring]
    b = coords[1:][same_ring]
    fx = (np.stack([a[:, 0], b[:, 0]]) - grid.x0) / grid.dx
    fy = (np.stack([a[:, 1], b[:, 1]]) - grid.y0) / grid.dx
    i_lo = np.floor(fx.min(axis=0) - _EDGE_EPS).astype(np.int64)
    i_hi = np.floor(fx.max(axis=0) + _EDGE_EPS).astype(np.int64)
    j_lo = np.floor(fy.min(axis=0) - _EDGE_EPS).astype(np.int64)
    j_hi = np.floor(fy.max(axis=0) + _EDGE_EPS).astype(np.int64)
    out = []
    span_i = i_hi - i_lo
    span_j = j_hi - j_lo
    for di in range(int(span_i.max(initial=0)) + 1):
        for dj in range(int(span_j.max(initial=0)) + 1):
            keep = (di <= span_i) & (dj <= span_j)
            i = i_lo[keep] + di
            j = j_lo[keep] + dj
            inside = (i >= 0) & (i < grid.nx) & (j >= 0) & (j < grid.ny)
            out.append(j[inside] * grid.nx + i[inside])
    if not out:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.concatenate(out))


def _cell_boxes(grid: Grid, flat: np.ndarray) -> np.ndarray:
    """Shapely boxes of the given flat cell indices."""
    j, i = np.divmod(flat, grid.nx)
    x0 = grid.x0 + i * grid.dx
    y0 = grid.y0 + j * grid.dx
    return shapely.box(x0, y0, x0 + grid.dx, y0 + grid.dx)


def _boundary_cell_areas(geom: shapely.Geometry, grid: Grid, flat: np.ndarray) -> np.ndarray:
    """Exact plane areas of intersection of the geometry with the given (boundary) cells."""
    if flat.size == 0:
        return np.empty(0)
    j, i = np.divmod(flat, grid.nx)
    tj, ti = j // _TILE, i // _TILE
    tile_key = tj * (grid.nx // _TILE + 1) + ti
    tiles, inverse = np.unique(tile_key, return_inverse=True)
    if tiles.size > 1:
        ntx = grid.nx // _TILE + 1
        ttj, tti = np.divmod(tiles, ntx)
        tx0 = grid.x0 + tti * _TILE * grid.dx
        ty0 = grid.y0 + ttj * _TILE * grid.dx
        span = _TILE * grid.dx
        pieces = shapely.intersection(geom, shapely.box(tx0, ty0, tx0 + span, ty0 + span))
        owner = pieces[inverse]
    else:
        owner = geom
    return shapely.area(shapely.intersection(_cell_boxes(grid, flat), owner))


def _bbox_cells(geom: shapely.Geometry, grid: Grid) -> np.ndarray | None:
    """Flat indices of all grid cells overlapping the geometry's bounding box (None if disjoint)."""
    xmin, ymin, xmax, ymax = shapely.bounds(geom)
    i0 = max(int(np.floor((xmin - grid.x0) / grid.dx)), 0)
    i1 = min(int(np.floor((xmax - grid.x0) / grid.dx)), grid.nx - 1)
    j0 = max(int(np.floor((ymin - grid.y0) / grid.dx)), 0)
    j1 = min(int(np.floor((ymax - grid.y0) / grid.dx)), grid.ny - 1)
    if i0 > i1 or j0 > j1:
        return None
    jj, ii = np.meshgrid(np.arange(j0, j1 + 1), np.arange(i0, i1 + 1), indexing="ij")
    return (jj * grid.nx + ii).ravel()


def cell_overlap_areas(grid: Grid, geometries: Sequence[shapely.Geometry]) -> scipy.sparse.csr_matrix:
    """Exact plane area of intersection of each geometry with each grid cell.

    Parameters
    ----------
    grid
        The model grid.
    geometries
        Polygons or multipolygons in the grid CRS (metres). Invalid polygons are repaired with
        ``shapely.make_valid``; empty or missing geometries give an empty row. Parts outside the grid
        are ignored.

    Returns
    -------
    scipy.sparse.csr_matrix
        Shape (n_geometries, ny * nx), float64, m2 on the projection plane; column ``j * nx + i`` is
        cell (row j, column i). Multiply by :func:`plane_to_true_area_factor` for true areas.

    Raises
    ------
    AirshedInputError
        If a geometry is a point or line (it has no area to distribute).
    """
    geoms = np.asarray(geometries, dtype=object)
    if geoms.ndim != 1:
        geoms = geoms.ravel()
    ncell = grid.nx * grid.ny
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    full_area = grid.dx * grid.dx
    for k, raw in enumerate(geoms):
        geom = _polygonal(raw, k)
        if shapely.is_empty(geom):
            continue
        candidates = _bbox_cells(geom, grid)
        if candidates is None:
            continue
        boundary = _boundary_cells(geom, grid)
        interior = np.setdiff1d(candidates, boundary, assume_unique=True)
        if interior.size:
            shapely.prepare(geom)
            j, i = np.divmod(interior, grid.nx)
            inside = shapely.contains_xy(geom, grid.x[i], grid.y[j])
            interior = interior[inside]
        areas = _boundary_cell_areas(geom, grid, boundary)
        hit = areas > 0.0
        cells = np.concatenate([interior, boundary[hit]])
        area = np.concatenate([np.full(interior.size, full_area), areas[hit]])
        rows.append(np.full(cells.size, k, dtype=np.int64))
        cols.append(cells)
        vals.append(area)
    if rows:
        data = (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols)))
    else:
        data = (np.empty(0), (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)))
    matrix = scipy.sparse.coo_matrix(data, shape=(geoms.size, ncell)).tocsr()
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix
