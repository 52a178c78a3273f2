"""CF-1.8 description of the model grid and of region masks.

Every airshed NetCDF output starts from :func:`grid_to_dataset` so that all files share the same
coordinates and grid mapping, and any file written by airshed can be read back into a
:class:`~airshed.grids.grid.Grid` with :func:`grid_from_dataset`.

Layout (CF conventions 1.8, sections 4, 5.6, 7.1, 7.2)::

    dimensions: y, x, nv = 2, nv4 = 4
    x(x), y(y)                 projection_x/y_coordinate, m, with bounds x_bnds(x, nv), y_bnds(y, nv)
    lon(y, x), lat(y, x)       longitude/latitude of cell centres, with 4-vertex bounds lon_bnds, lat_bnds
    crs                        grid mapping (lambert_conformal_conic ... from pyproj ``CRS.to_cf()``,
                               plus crs_wkt)
    cell_area(y, x)            true (ellipsoidal) cell area, m2 (standard_name cell_area)

Data variables on the grid should carry ``grid_mapping = "crs"`` and ``cell_measures = "area:
cell_area"``; :data:`GRID_VARIABLE_ATTRS` holds exactly these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyproj
import xarray as xr

from airshed.errors import DataError
from airshed.grids.grid import Grid

if TYPE_CHECKING:
    from airshed.grids.regions import RegionSet

CONVENTIONS = "CF-1.8"

GRID_VARIABLE_ATTRS: dict[str, str] = {"grid_mapping": "crs", "cell_measures": "area: cell_area"}
"""Attributes that tie a (…, y, x) data variable to the grid description."""

_SPACING_RTOL = 1e-9


def _cell_corner_lonlat(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat of the 4 corners of each cell, anticlockwise from lower-left, each (ny, nx, 4)."""
    xe, ye = np.meshgrid(grid.x_edges, grid.y_edges)
    lon_e, lat_e = grid.xy_to_lonlat(xe, ye)

    def corners(a: np.ndarray) -> np.ndarray:
        return np.stack([a[:-1, :-1], a[:-1, 1:], a[1:, 1:], a[1:, :-1]], axis=-1)

    return corners(lon_e), corners(lat_e)


def crs_attrs(crs: pyproj.CRS) -> dict:
    """CF grid-mapping attributes of a projected CRS (pyproj ``CRS.to_cf()``, including crs_wkt)."""
    attrs = crs.to_cf()
    if "grid_mapping_name" not in attrs:
        raise DataError(f"the grid CRS {crs.name!r} has no CF grid mapping; use a CF-describable projection")
    # netCDF attributes cannot hold lists
    return {k: (np.asarray(v, dtype=float) if isinstance(v, list | tuple) else v) for k, v in attrs.items()}


def grid_to_dataset(grid: Grid) -> xr.Dataset:
    """CF-1.8 dataset describing the grid: coordinates, bounds, grid mapping and cell area.

    Parameters
    ----------
    grid
        The model grid.

    Returns
    -------
    xarray.Dataset
        Coordinates ``x``, ``y`` (m), ``lon``, ``lat`` (degrees) with bounds; data variables ``crs`` (grid
        mapping) and ``cell_area`` (m2); global attribute ``Conventions = "CF-1.8"``.
    """
    nv = ("nv",)
    x_bnds = np.stack([grid.x_edges[:-1], grid.x_edges[1:]], axis=-1)
    y_bnds = np.stack([grid.y_edges[:-1], grid.y_edges[1:]], axis=-1)
    lon_bnds, lat_bnds = _cell_corner_lonlat(grid)
    ds = xr.Dataset(
        data_vars={
            "crs": ((), np.int32(0), crs_attrs(grid.crs)),
            "cell_area": (
                ("y", "x"),
                grid.cell_area,
                {
                    "standard_name": "cell_area",
                    "long_name": "true (ellipsoidal) area of the grid cell",
                    "units": "m2",
                    "grid_mapping": "crs",
                },
            ),
            "x_bnds": (("x", *nv), x_bnds, {"units": "m"}),
            "y_bnds": (("y", *nv), y_bnds, {"units": "m"}),
            "lon_bnds": (("y", "x", "nv4"), lon_bnds, {"units": "degrees_east"}),
            "lat_bnds": (("y", "x", "nv4"), lat_bnds, {"units": "degrees_north"}),
        },
        coords={
            "x": (
                "x",
                grid.x,
                {
                    "standard_name": "projection_x_coordinate",
                    "long_name": "x coordinate of cell centre",
                    "units": "m",
                    "axis": "X",
                    "bounds": "x_bnds",
                },
            ),
            "y": (
                "y",
                grid.y,
                {
                    "standard_name": "projection_y_coordinate",
                    "long_name": "y coordinate of cell centre",
                    "units": "m",
                    "axis": "Y",
                    "bounds": "y_bnds",
                },
            ),
            "lon": (
                ("y", "x"),
                grid.lon,
                {
                    "standard_name": "longitude",
                    "long_name": "longitude of cell centre",
                    "units": "degrees_east",
                    "bounds": "lon_bnds",
                },
            ),
            "lat": (
                ("y", "x"),
                grid.lat,
                {
                    "standard_name": "latitude",
                    "long_name": "latitude of cell centre",
                    "units": "degrees_north",
                    "bounds": "lat_bnds",
                },
            ),
        },
        attrs={"Conventions": CONVENTIONS},
    )
    # bounds variables are coordinates in xarray's sense (kept with every variable selection)
    ds = ds.set_coords(["x_bnds", "y_bnds", "lon_bnds", "lat_bnds"])
    for name in ("x", "y", "lon", "lat", "x_bnds", "y_bnds", "lon_bnds", "lat_bnds", "cell_area"):
        # CF 2.5.1 and 7.1: coordinates and their bounds carry no _FillValue (none is missing)
        ds[name].encoding["_FillValue"] = None
    return ds


def _regular_axis(ds: xr.Dataset, name: str) -> tuple[float, float, int]:
    """Lower edge, spacing and size of a regular projected axis, m."""
    if name not in ds.variables:
        raise DataError(f"grid description lacks the coordinate variable {name!r}")
    values = np.asarray(ds[name].values, dtype=float)
    if values.ndim != 1 or values.size < 1:
        raise DataError(f"grid coordinate {name!r} must be one-dimensional and non-empty")
    units = ds[name].attrs.get("units", "m")
    scale = {"m": 1.0, "metre": 1.0, "meter": 1.0, "km": 1000.0}.get(units)
    if scale is None:
        raise DataError(f"grid coordinate {name!r} has units {units!r}; expected 'm' or 'km'")
    values = values * scale
    bounds_name = ds[name].attrs.get("bounds")
    if bounds_name in ds.variables:
        bounds = np.asarray(ds[bounds_name].values, dtype=float) * scale
        start, step = bounds[0].min(), abs(bounds[0, 1] - bounds[0, 0])
    elif values.size >= 2:
        step = values[1] - values[0]
        start = values[0] - step / 2
    else:
        raise DataError(f"grid coordinate {name!r} has one value and no bounds: the cell size is unknown")
    if not step > 0:
        raise DataError(f"grid coordinate {name!r} must increase")
    expected = start + (np.arange(values.size) + 0.5) * step
    if not np.allclose(values, expected, rtol=0, atol=_SPACING_RTOL * step * values.size):
        raise DataError(f"grid coordinate {name!r} is not regularly spaced at {step} m")
    return float(start), float(step), int(values.size)


def grid_from_dataset(ds: xr.Dataset) -> Grid:
    """Rebuild the :class:`Grid` described by a dataset written with :func:`grid_to_dataset`.

    The CRS is read from the ``crs`` variable (``crs_wkt`` if present, else the CF grid-mapping
    attributes); ``x``/``y`` must be regular with equal spacing.

    Raises
    ------
    DataError
        If the grid mapping or coordinates are missing, irregular or not square.
    """
    mapping = "crs"
    for var in ds.data_vars.values():
        if "grid_mapping" in var.attrs:
            mapping = var.attrs["grid_mapping"]
            break
    if mapping not in ds.variables:
        raise DataError(f"dataset has no grid mapping variable {mapping!r}")
    attrs = dict(ds[mapping].attrs)
    try:
        crs = pyproj.CRS.from_wkt(attrs["crs_wkt"]) if "crs_wkt" in attrs else pyproj.CRS.from_cf(attrs)
    except (pyproj.exceptions.CRSError, KeyError, TypeError) as exc:
        raise DataError(f"cannot interpret grid mapping variable {mapping!r}: {exc}") from exc
    x0, dx, nx = _regular_axis(ds, "x")
    y0, dy, ny = _regular_axis(ds, "y")
    if not np.isclose(dx, dy, rtol=_SPACING_RTOL):
        raise DataError(f"grid cells must be square, got x spacing {dx} m and y spacing {dy} m")
    return Grid(crs=crs, x0=x0, y0=y0, dx=dx, nx=nx, ny=ny)


def regions_to_dataset(regions: RegionSet) -> xr.Dataset:
    """CF dataset of region masks: the grid description plus ``region_fraction(region, y, x)``.

    Parameters
    ----------
    regions
        A :class:`~airshed.grids.regions.RegionSet`.

    Returns
    -------
    xarray.Dataset
        :func:`grid_to_dataset` of the region grid, a string coordinate ``region`` and the data variable
        ``region_fraction`` (standard_name area_fraction, units 1).
    """
    ds = grid_to_dataset(regions.grid)
    ds = ds.assign_coords(
        region=("region", np.asarray(regions.names, dtype=str), {"long_name": "region name"})
    )
    ds["region_fraction"] = (
        ("region", "y", "x"),
        np.asarray(regions.fractions),
        {
            "standard_name": "area_fraction",
            "long_name": "fraction of the cell area inside the region",
            "units": "1",
            **GRID_VARIABLE_ATTRS,
        },
    )
    ds["region_fraction"].encoding["_FillValue"] = None
    return ds
