"""The projected model grid.

Cell areas are computed on the projection plane and corrected by the squared map scale factor, so they
are true (ellipsoidal) areas. Without a projection, a grid over a lon/lat box gets the Lambert conformal
conic fitted to that box (:func:`fitted_projection`); the built-in case's own cone is in
:mod:`airshed.grids.builtin_case`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyproj

from airshed.errors import AirshedInputError


def fitted_projection(west: float, south: float, east: float, north: float) -> str:
    """PROJ string of a conformal projection fitted to a lon/lat box (degrees).

    A Lambert conformal conic with its standard parallels at one sixth and five sixths of the box's
    latitude span and its origin at the box's centre: the rule of Deetz and Adams (1945) for conic
    projections (Snyder 1987, *Map Projections: A Working Manual*, USGS Professional Paper 1395), which
    keeps the scale error over the box small and balanced (1 +/- 0.004 over 10 degrees of latitude). A
    box whose standard parallels would lie on both sides of the equator gets a Mercator projection true
    at the box's mid-latitude instead (a cone cannot open across the equator).
    """
    lon_0 = ((0.5 * (west + east) + 180.0) % 360.0) - 180.0
    lat_0 = 0.5 * (south + north)
    lat_1 = south + (north - south) / 6.0
    lat_2 = north - (north - south) / 6.0
    if lat_1 * lat_2 <= 0.0:
        return (f"+proj=merc +lat_ts={lat_0:.4g} +lon_0={lon_0:.6g} "
                "+x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs")
    return (f"+proj=lcc +lat_1={lat_1:.4g} +lat_2={lat_2:.4g} +lat_0={lat_0:.4g} +lon_0={lon_0:.6g} "
            "+x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs")


@dataclass(frozen=True)
class Grid:
    """A regular grid of square cells on a projected CRS.

    Parameters
    ----------
    crs
        Projected coordinate reference system (units: metres).
    x0, y0
        Projected coordinates of the lower-left *corner* of the domain, m.
    dx
        Cell size, m (cells are square).
    nx, ny
        Number of cells along x and y.
    """

    crs: pyproj.CRS
    x0: float
    y0: float
    dx: float
    nx: int
    ny: int

    def __post_init__(self) -> None:
        if not (self.dx > 0 and np.isfinite(self.dx)):
            raise AirshedInputError(f"grid cell size must be a positive number of metres, got {self.dx!r}")
        if self.nx < 1 or self.ny < 1:
            raise AirshedInputError(
                f"grid must have at least one cell in x and y, got nx={self.nx}, ny={self.ny}"
            )
        if not self.crs.is_projected:
            raise AirshedInputError(f"grid CRS must be projected (metres), got {self.crs.name!r}")

    @classmethod
    def from_bbox(
        cls,
        west: float,
        south: float,
        east: float,
        north: float,
        cell_km: float,
        crs: str | pyproj.CRS | None = None,
    ) -> Grid:
        """Build the smallest grid, aligned on multiples of the cell size, that covers a lon/lat box.

        ``crs`` defaults to :func:`fitted_projection` of the box. The box edges are densified before
        projecting, because on a conic projection the parallels are arcs and the box's extreme x/y are
        not at its corners.
        """
        if not west < east:
            raise AirshedInputError(f"grid bounding box: west ({west}) must be less than east ({east})")
        if not south < north:
            raise AirshedInputError(f"grid bounding box: south ({south}) must be less than north ({north})")
        if not (-90.0 <= south and north <= 90.0):
            raise AirshedInputError(
                f"grid bounding box latitudes must lie in [-90, 90], got {south}..{north}"
            )
        if not (cell_km > 0 and np.isfinite(cell_km)):
            raise AirshedInputError(f"grid cell size must be > 0 km, got {cell_km!r}")
        if crs is None:
            crs = fitted_projection(west, south, east, north)
        crs = pyproj.CRS.from_user_input(crs)
        to_xy = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        n = 200
        lons = np.concatenate(
            [np.linspace(west, east, n), np.full(n, east), np.linspace(east, west, n), np.full(n, west)]
        )
        lats = np.concatenate(
            [np.full(n, south), np.linspace(south, north, n), np.full(n, north), np.linspace(north, south, n)]
        )
        xs, ys = to_xy.transform(lons, lats)
        dx = cell_km * 1000.0
        x0 = np.floor(xs.min() / dx) * dx
        y0 = np.floor(ys.min() / dx) * dx
        nx = int(np.ceil((xs.max() - x0) / dx - 1e-9))
        ny = int(np.ceil((ys.max() - y0) / dx - 1e-9))
        return cls(crs=crs, x0=float(x0), y0=float(y0), dx=float(dx), nx=nx, ny=ny)

    # --- coordinates -------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """Array shape (ny, nx) of a 2-D field on this grid."""
        return (self.ny, self.nx)

    @cached_property
    def x(self) -> np.ndarray:
        """Cell-centre x coordinates, m, shape (nx,)."""
        return self.x0 + (np.arange(self.nx) + 0.5) * self.dx

    @cached_property
    def y(self) -> np.ndarray:
        """Cell-centre y coordinates, m, shape (ny,)."""
        return self.y0 + (np.arange(self.ny) + 0.5) * self.dx

    @cached_property
    def x_edges(self) -> np.ndarray:
        """Cell-edge x coordinates, m, shape (nx + 1,)."""
        return self.x0 + np.arange(self.nx + 1) * self.dx

    @cached_property
    def y_edges(self) -> np.ndarray:
        """Cell-edge y coordinates, m, shape (ny + 1,)."""
        return self.y0 + np.arange(self.ny + 1) * self.dx

    @cached_property
    def _to_lonlat(self) -> pyproj.Transformer:
        return pyproj.Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)

    @cached_property
    def _to_xy(self) -> pyproj.Transformer:
        return pyproj.Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)

    def lonlat_to_xy(self, lon: np.ndarray | float, lat: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Project longitude/latitude (degrees, WGS84) to grid x/y (m)."""
        x, y = self._to_xy.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return np.asarray(x), np.asarray(y)

    def xy_to_lonlat(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Unproject grid x/y (m) to longitude/latitude (degrees, WGS84)."""
        lon, lat = self._to_lonlat.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        return np.asarray(lon), np.asarray(lat)

    @cached_property
    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """2-D longitude and latitude of cell centres, degrees, each shape (ny, nx)."""
        xx, yy = np.meshgrid(self.x, self.y)
        return self.xy_to_lonlat(xx, yy)

    @property
    def lon(self) -> np.ndarray:
        """2-D cell-centre longitude, degrees east, shape (ny, nx)."""
        return self.lonlat[0]

    @property
    def lat(self) -> np.ndarray:
        """2-D cell-centre latitude, degrees north, shape (ny, nx)."""
        return self.lonlat[1]

    @cached_property
    def cell_area(self) -> np.ndarray:
        """True (ellipsoidal) area of each cell, m2, shape (ny, nx).

        Plane area dx^2 divided by the areal scale factor of the projection at the cell centre
        (pyproj ``Proj.get_factors``); exact to second order in the cell size.
        """
        factors = pyproj.Proj(self.crs).get_factors(self.lon, self.lat)
        return self.dx * self.dx / np.asarray(factors.areal_scale)

    @cached_property
    def grid_north_angle(self) -> np.ndarray:
        """Anticlockwise angle from grid +y to true north, radians, shape (ny, nx) (meridian convergence).

        This is pyproj's ``meridian_convergence`` at the cell centres. On a Lambert conic it is
        negative west of the central meridian (there true north points to grid north-east, i.e.
        clockwise from grid +y) and positive east of it. Rotate an east/north wind (u, v) into grid
        components with ``ug = u cos(a) - v sin(a)``, ``vg = u sin(a) + v cos(a)`` where ``a`` is this
        angle (checked in tests/test_grid.py against finite differences of the projection).
        """
        factors = pyproj.Proj(self.crs).get_factors(self.lon, self.lat)
        return np.deg2rad(np.asarray(factors.meridian_convergence))

    def lonlat_bounds(self, n: int = 400) -> tuple[float, float, float, float]:
        """Smallest lon/lat box (west, south, east, north), degrees, holding the whole domain.

        The domain's edges are sampled at ``n`` points each: on a conic projection the extreme longitudes
        and latitudes lie along the edges, not at the corners.
        """
        xe, ye = self.x_edges, self.y_edges
        up_x, down_x = np.linspace(xe[0], xe[-1], n), np.linspace(xe[-1], xe[0], n)
        up_y, down_y = np.linspace(ye[0], ye[-1], n), np.linspace(ye[-1], ye[0], n)
        xs = np.concatenate([up_x, np.full(n, xe[-1]), down_x, np.full(n, xe[0])])
        ys = np.concatenate([np.full(n, ye[0]), up_y, np.full(n, ye[-1]), down_y])
        lon, lat = self.xy_to_lonlat(xs, ys)
        return float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())

    def contains_xy(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether projected points lie inside the domain (edges included)."""
        x = np.asarray(x)
        y = np.asarray(y)
        in_x = (x >= self.x_edges[0]) & (x <= self.x_edges[-1])
        return in_x & (y >= self.y_edges[0]) & (y <= self.y_edges[-1])

    def cell_index(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row (j) and column (i) of the cell holding each point; -1 outside the domain."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        i = np.floor((x - self.x0) / self.dx).astype(np.int64)
        j = np.floor((y - self.y0) / self.dx).astype(np.int64)
        inside = (i >= 0) & (i < self.nx) & (j >= 0) & (j < self.ny)
        return np.where(inside, j, -1), np.where(inside, i, -1)

    def __repr__(self) -> str:
        return (
            f"Grid({self.nx} x {self.ny} cells of {self.dx / 1000:g} km, "
            f"x0={self.x0:.0f} m, y0={self.y0:.0f} m, crs={self.crs.srs!r})"
        )
