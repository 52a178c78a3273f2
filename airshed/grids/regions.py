"""Region masks on the model grid: the area fraction of every cell in every region.

A :class:`RegionSet` partitions the domain into named regions (provinces, cities, a user's polygons)
plus ``"outside"`` (everything else), with the exact area fraction of each cell in each region. Source
apportionment attributes emissions and receptor concentrations by these fractions, so they must be
exact and must sum to one in every cell.

Why not regionmask's fractional masks: ``regionmask.Regions.mask_3D_frac_approx`` only works on
regular longitude/latitude grids (it super-samples lon/lat cells), while the airshed grid is a
projected (Lambert conformal) grid whose cells are squares on the projection plane and curved
quadrilaterals in lon/lat. So the boundaries are densified in lon/lat (edges split every
0.01 degree, ~1 km, so that straight lon/lat edges follow their true curved image), projected to the
grid CRS, and intersected exactly with the square cells by :func:`airshed.grids.overlap.cell_overlap_areas`.
:meth:`RegionSet.to_regionmask` still exports the regions as a ``regionmask.Regions`` for plotting and
for users of that library.

Fractions are ratios of plane areas within one cell (both numerator and denominator carry the same
map scale factor), hence equal to ratios of true areas; true region areas are
``fraction * grid.cell_area``.
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from airshed.errors import AirshedInputError
from airshed.grids.boundaries import OUTSIDE, division_codes, load_boundaries
from airshed.grids.grid import Grid
from airshed.grids.overlap import cell_overlap_areas

_DENSIFY_DEG = 0.01
"""Longest boundary edge, degrees, before projecting to the grid CRS."""

_DOMAIN_MARGIN_DEG = 1.0
"""Boundaries are clipped to the domain's lon/lat box plus this margin before projecting, so that
far-away polygons never meet the singular parts of the projection."""

logger = logging.getLogger(__name__)

_CACHE_SIZE = 2
"""Region sets kept in memory (one at 1 km over the default domain, 19 regions, is ~0.2 GB)."""
_cache: collections.OrderedDict[tuple, RegionSet] = collections.OrderedDict()


@dataclass(frozen=True, eq=False)
class RegionSet:
    """Named regions of a grid with the area fraction of each cell in each region.

    Attributes
    ----------
    grid
        The grid the fractions refer to.
    names
        Region names; the last one is ``"outside"``.
    fractions
        Area fraction of each cell in each region, shape (nregion, ny, nx), float64, read-only. The
        fractions of a cell sum to 1 (within 1e-12), ``"outside"`` included.
    geometries
        One row per region in ``names`` order, columns ``name`` and ``geometry`` (lon/lat, EPSG:4326).
        The ``"outside"`` row holds an empty polygon: it is whatever of the domain no other region
        covers, defined by its fractions only.
    """

    grid: Grid
    names: tuple[str, ...]
    fractions: np.ndarray
    geometries: gpd.GeoDataFrame

    def index(self, name: str) -> int:
        """Position of a region in :attr:`names` (and along the first axis of :attr:`fractions`)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise AirshedInputError(
                f"unknown region {name!r}; valid region names are: {', '.join(self.names)}"
            ) from None

    def area_km2(self) -> dict[str, float]:
        """Return the true (ellipsoidal) area of each region inside the domain, km2."""
        areas = np.einsum("kji,ji->k", self.fractions, self.grid.cell_area) / 1.0e6
        return dict(zip(self.names, areas.tolist(), strict=True))

    def dominant(self) -> np.ndarray:
        """Index of the region with the largest fraction in each cell, shape (ny, nx), int64."""
        return np.argmax(self.fractions, axis=0).astype(np.int64)

    def region_of_point(self, lon: float, lat: float) -> str:
        """Name of the region whose boundary contains a point (lon/lat degrees, WGS84).

        Uses the exact polygons, not the grid; returns ``"outside"`` for a point of the domain in no
        named region.

        Raises
        ------
        AirshedInputError
            If the point lies outside the grid domain.
        """
        x, y = self.grid.lonlat_to_xy(lon, lat)
        if not (np.isfinite(x) and np.isfinite(y) and self.grid.contains_xy(x, y)):
            raise AirshedInputError(f"point lon={lon}, lat={lat} lies outside the grid domain")
        geoms = self.geometries.geometry.to_numpy()
        inside = np.flatnonzero(shapely.intersects_xy(geoms, float(lon), float(lat)))
        return self.names[int(inside[0])] if inside.size else OUTSIDE

    def to_regionmask(self):
        """Export the named regions (without ``"outside"``) as a ``regionmask.Regions`` in lon/lat."""
        import regionmask

        named = self.geometries.iloc[:-1]
        return regionmask.Regions(
            list(named.geometry),
            numbers=list(range(len(named))),
            names=list(named["name"]),
            abbrevs=list(named["name"]),
            name="airshed regions",
            overlap=False,
        )


def _domain_lonlat_box(grid: Grid) -> shapely.Polygon:
    west, south, east, north = grid.lonlat_bounds(100)
    m = _DOMAIN_MARGIN_DEG
    return shapely.box(max(west - m, -180.0), max(south - m, -90.0),
                       min(east + m, 180.0), min(north + m, 90.0))


def project_to_grid(grid: Grid, geometries: np.ndarray) -> np.ndarray:
    """Project lon/lat polygons to the grid CRS, clipped near the domain and densified first.

    Parameters
    ----------
    grid
        Target grid.
    geometries
        Polygons in lon/lat degrees (WGS84).

    Returns
    -------
    numpy.ndarray
        Object array of polygons in grid coordinates, m.
    """
    clipped = shapely.intersection(np.asarray(geometries, dtype=object), _domain_lonlat_box(grid))
    dense = shapely.segmentize(clipped, _DENSIFY_DEG)

    def to_xy(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(grid.lonlat_to_xy(coords[:, 0], coords[:, 1]))

    return shapely.transform(dense, to_xy)


def _cache_key(grid: Grid, spec: str | Path | tuple[int, ...], name_column: str | None) -> tuple:
    codes = division_codes(spec)
    if codes is not None:
        return (grid, codes)
    path = Path(spec).expanduser().resolve()
    try:
        stat = path.stat()
    except OSError:
        return (grid, str(path), name_column)  # not cached: load_boundaries reports the error
    # key on the file's identity and modification, so that an edited file is read again
    return (grid, str(path), stat.st_mtime_ns, stat.st_size, name_column)


def build_regions(
    grid: Grid, spec: str | Path | tuple[int, ...], name_column: str | None = None
) -> RegionSet:
    """Area fractions of every grid cell in every region of a boundary set.

    Parameters
    ----------
    grid
        The model grid.
    spec
        Administrative codes (a tuple of adcodes), a built-in boundary set (``"provinces"``,
        ``"jjj-cities"``) or a boundary file path; see :func:`airshed.grids.boundaries.load_boundaries`.
    name_column
        Column of region names in a boundary file (default ``"name"``).

    Returns
    -------
    RegionSet
        Named regions then ``"outside"``. Results are cached in memory per (grid, spec, file
        modification time); the returned fractions are read-only.

    Raises
    ------
    DataError
        See :func:`~airshed.grids.boundaries.load_boundaries`.
    """
    key = _cache_key(grid, spec, name_column)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    started = time.perf_counter()
    boundaries = load_boundaries(spec, name_column)
    projected = project_to_grid(grid, boundaries.geometry.to_numpy())
    plane = cell_overlap_areas(grid, projected)
    nnamed = len(boundaries)
    fractions = np.zeros((nnamed + 1, grid.ny * grid.nx))
    for k in range(nnamed):
        row = slice(plane.indptr[k], plane.indptr[k + 1])
        fractions[k, plane.indices[row]] = plane.data[row] / (grid.dx * grid.dx)
    named = fractions[:nnamed]
    total = named.sum(axis=0)
    # Boundaries do not overlap, so total <= 1 up to rounding of the intersection areas; renormalise
    # those last-bit excesses so that every cell's fractions sum to one.
    excess = total > 1.0
    named[:, excess] /= total[excess]
    fractions[nnamed] = np.clip(1.0 - named.sum(axis=0), 0.0, 1.0)
    fractions = fractions.reshape(nnamed + 1, *grid.shape)
    fractions.setflags(write=False)
    names = (*boundaries["name"].astype(str), OUTSIDE)
    geometries = gpd.GeoDataFrame(
        {"name": list(names)}, geometry=[*boundaries.geometry, shapely.Polygon()], crs="EPSG:4326"
    )
    regions = RegionSet(grid=grid, names=names, fractions=fractions, geometries=geometries)
    logger.debug("region masks %r on %r built in %.2f s", spec, grid, time.perf_counter() - started)
    _cache[key] = regions
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return regions
