"""Meteorology read displaced: the members of HYSPLIT's meteorological grid offset ensemble.

HYSPLIT's ensemble computes each member "by offsetting the meteorological data by a fixed grid factor
(one meteorological grid point in the horizontal and 0.01 sigma units in the vertical)", which gives 27
members for all the offsets (-1, 0, +1) in x, y and z; the User's Guide puts the vertical step (DZF, 0.01
sigma) at about 250 m (Draxler et al., HYSPLIT User's Guide, trajectory ensemble and its configuration
menu; NOAA ARL READY trajectory-type help). The model's particles and plumes are not moved: the
meteorology they see at a point is the meteorology of a neighbouring grid point.

:class:`OffsetMetSource` wraps an opened :class:`~airshed.inputs.meteorology.dataset.MetSource`:

* horizontally, its reader's interpolation weights are moved by whole source grid points
  (:func:`shifted_interpolator`): the value at a model cell is what the unshifted source gives at the
  point ``x_grid_points`` source grid points east and ``y_grid_points`` north of it. Regular lon/lat
  (ERA5, CF) and curvilinear (WRF) sources alike; the source must extend that many points beyond the
  model domain;
* vertically, the 3-D fields (u, v, w) at model height ``z`` are those at ``z + height_m`` (not below the
  lowest model level); surface fields (10 m wind, fluxes, mixing height) have no vertical position and
  are unchanged, as in HYSPLIT, whose surface fields are not offset in sigma either.

The wrapper is a meteorology source like any other (``times``, ``window``), so the cores run it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from airshed.errors import DataError
from airshed.grids.grid import Grid
from airshed.inputs.meteorology.dataset import MetSource
from airshed.inputs.meteorology.regrid import HorizontalInterpolator

__all__ = ["HYSPLIT_VERTICAL_OFFSET_M", "MetOffset", "OffsetMetSource", "offset_members",
           "shifted_interpolator"]

HYSPLIT_VERTICAL_OFFSET_M = 250.0
"""HYSPLIT's vertical ensemble offset, 0.01 sigma, "approximately 250 m" (User's Guide), m."""


@dataclass(frozen=True)
class MetOffset:
    """Displacement of the meteorology: source grid points east and north, metres up (3-D fields)."""

    x_grid_points: int = 0
    y_grid_points: int = 0
    height_m: float = 0.0

    @property
    def is_zero(self) -> bool:
        """Whether the meteorology is read as it is."""
        return self.x_grid_points == 0 and self.y_grid_points == 0 and self.height_m == 0.0

    @property
    def label(self) -> str:
        """Short name, e.g. ``x+1_y-1_z+250m``."""
        return f"x{self.x_grid_points:+d}_y{self.y_grid_points:+d}_z{self.height_m:+g}m"


def offset_members(grid_points: int = 1, height_m: float = HYSPLIT_VERTICAL_OFFSET_M) -> list[MetOffset]:
    """HYSPLIT's ensemble: every combination of -1, 0, +1 steps in x, y and z (27; 9 with ``height_m`` 0).

    Member 0 is the unperturbed meteorology (all offsets zero); the rest follow in z, y, x order.
    """
    steps_z = (0, -1, 1) if height_m > 0 else (0,)
    out = [MetOffset(dx * grid_points, dy * grid_points, dz * height_m)
           for dz in steps_z for dy in (0, -1, 1) for dx in (0, -1, 1)]
    return out


def _source_shape_and_north(reader) -> tuple[tuple[int, int], int, int]:
    """(ny, nx) of the reader's grid, and the index step that goes north (+1 or -1) and east."""
    lat = np.asarray(reader.lat, dtype=np.float64)
    lon = np.asarray(reader.lon, dtype=np.float64)
    if lat.ndim == 2:  # curvilinear (WRF): rows run south to north, columns west to east
        north = 1 if np.nanmean(lat[-1]) > np.nanmean(lat[0]) else -1
        east = 1 if np.nanmean(lon[:, -1]) > np.nanmean(lon[:, 0]) else -1
        return lat.shape, north, east
    north = 1 if lat[-1] > lat[0] else -1  # ERA5 latitudes run north to south
    east = 1 if lon[-1] > lon[0] else -1
    return (lat.size, lon.size), north, east


def shifted_interpolator(interp: HorizontalInterpolator, source_shape: tuple[int, int], dy: int, dx: int,
                         where: str) -> HorizontalInterpolator:
    """Move an interpolation to read the source ``dy`` rows and ``dx`` columns further on.

    ``interp`` reads the window ``slices`` (first the row, then the column dimension) of a source grid of
    ``source_shape``; the shifted one reads a window moved by (dy, dx) and the same weights.

    Raises
    ------
    DataError
        When the moved window leaves the source grid (naming ``where`` and how many points are missing).
    """
    (ydim, ys), (xdim, xs) = list(interp.slices.items())
    ny_w, nx_w = ys.stop - ys.start, xs.stop - xs.start
    y0, x0 = ys.start + dy, xs.start + dx
    if y0 < 0 or x0 < 0 or y0 + ny_w > source_shape[0] or x0 + nx_w > source_shape[1]:
        short = max(-y0, -x0, y0 + ny_w - source_shape[0], x0 + nx_w - source_shape[1])
        raise DataError(
            f"{where}: the offset ensemble reads the meteorology {abs(dx)} and {abs(dy)} grid points away, "
            f"but the meteorology ends {short} grid point(s) short of that around the model domain; "
            "extend the meteorology domain"
        )
    return HorizontalInterpolator({ydim: slice(y0, y0 + ny_w), xdim: slice(x0, x0 + nx_w)},
                                  interp._index, interp._weights, interp.shape)


class _ShiftedReader:
    """A reader whose interpolation onto the model grid reads the source displaced by whole points."""

    def __init__(self, reader, x_grid_points: int, y_grid_points: int):
        self._reader = reader
        self._shape, north, east = _source_shape_and_north(reader)
        self._dy, self._dx = y_grid_points * north, x_grid_points * east

    def interpolator(self, grid: Grid) -> HorizontalInterpolator:
        """Return the reader's interpolation weights, reading the displaced window."""
        from airshed.inputs.meteorology.common import files_label

        return shifted_interpolator(self._reader.interpolator(grid), self._shape, self._dy, self._dx,
                                    files_label(self._reader.paths))

    def __getattr__(self, name: str):
        return getattr(self._reader, name)


class OffsetMetSource:
    """A :class:`MetSource` read displaced by a :class:`MetOffset` (module docstring)."""

    def __init__(self, source: MetSource, offset: MetOffset):
        self.offset = offset
        self.grid = source.grid
        self.heights_m = source.heights_m
        self.roughness_length_m = source.roughness_length_m
        self.format = source.format
        self.label = f"{source.label} (offset {offset.label})"
        # the model levels' heights in the displaced meteorology, not below the lowest level
        shifted = np.maximum(self.heights_m + offset.height_m, self.heights_m[0])
        self._read_heights, self._level = np.unique(shifted, return_inverse=True)
        reader = source.reader
        if offset.x_grid_points or offset.y_grid_points:
            reader = _ShiftedReader(reader, offset.x_grid_points, offset.y_grid_points)
        self._inner = MetSource(reader, source.grid, self._read_heights, source.roughness_length_m,
                                source.format)
        self.reader = source.reader

    @property
    def times(self) -> np.ndarray:
        """Valid times of the source (datetime64[ns], UTC)."""
        return self._inner.times

    def window(self, start, end) -> xr.Dataset:
        """Read the displaced meteorology for start <= time <= end (MetSource's contract)."""
        ds = self._inner.window(start, end)
        ds = ds.isel(z=xr.DataArray(self._level, dims="z")).assign_coords(z=("z", self.heights_m,
                                                                             ds["z"].attrs))
        ds.attrs["source"] = f"{ds.attrs.get('source', '')}, offset {self.offset.label}"
        ds.attrs["comment"] = (f"{ds.attrs.get('comment', '')}; meteorology of the offset-ensemble member "
                               f"{self.offset.label} (airshed.inputs.meteorology.offsets)")
        return ds
