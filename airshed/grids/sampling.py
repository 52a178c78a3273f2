"""Sampling gridded fields at points (monitoring stations): which cells, with which weights.

A model concentration is a cell mean; a station is a point. Two ways to read a field at a station:

``"bilinear"`` (default)
    Bilinear interpolation between the four cell centres around the point (weights (1-a)(1-b), a(1-b),
    (1-a)b, ab with a, b the point's fractional offsets from the lower-left centre). Continuous in the
    station position, and for the particle core it averages four cells' sampling noise. Within half a
    cell of the domain edge the centres are clamped to the edge row or column (the weights still sum to 1).
``"cell"``
    The value of the cell holding the point (the weight 1 on that cell): what a model with no sub-grid
    information can say about the cell the station is in.

Either way a point's value is ``sum_k w_k field[cell_k]`` with four (flat) cell indices and four weights
summing to 1, so tagged contributions sampled at a point still add up to the sampled total.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from airshed.errors import AirshedInputError
from airshed.grids.grid import Grid

SAMPLING_METHODS = ("bilinear", "cell")
"""Ways to read a gridded field at a point."""


@dataclass(frozen=True)
class PointSampler:
    """Points on a grid with the cells and weights that read a field there.

    Attributes
    ----------
    ids, names
        Point (station) identifiers and names.
    lon, lat
        Point positions, degrees (WGS84).
    x, y
        Point positions on the grid's projection, m.
    cells
        (n, 4) flat indices ``j * nx + i`` of the cells read.
    weights
        (n, 4) weights, summing to 1 for each point.
    method
        ``"bilinear"`` or ``"cell"``.
    """

    ids: tuple[str, ...]
    names: tuple[str, ...]
    lon: np.ndarray
    lat: np.ndarray
    x: np.ndarray
    y: np.ndarray
    cells: np.ndarray
    weights: np.ndarray
    method: str

    def __len__(self) -> int:
        return len(self.ids)

    def sample(self, fields: np.ndarray) -> np.ndarray:
        """Read fields whose last axis is the flat cell index at the points: (..., n_cells) -> (n, ...)."""
        picked = fields[..., self.cells]  # (..., n, 4)
        return np.moveaxis(np.einsum("...nk,nk->...n", picked, self.weights), -1, 0)


def point_sampler(grid: Grid, ids, names, lon, lat, method: str = "bilinear",
                  source: str = "station list") -> PointSampler:
    """Cells and weights reading ``grid`` fields at points given in lon/lat (see the module docstring).

    Raises
    ------
    AirshedInputError
        An unknown method, or a point outside the grid domain (named with ``source``).
    """
    if method not in SAMPLING_METHODS:
        raise AirshedInputError(f"sampling method {method!r}: expected one of {', '.join(SAMPLING_METHODS)}")
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    x, y = grid.lonlat_to_xy(lon, lat)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    outside = ~(np.isfinite(x) & np.isfinite(y) & grid.contains_xy(x, y))
    if outside.any():
        k = int(np.flatnonzero(outside)[0])
        raise AirshedInputError(f"{source}: station {ids[k]!r} at lon={lon[k]:g}, lat={lat[k]:g} lies "
                                f"outside the model grid ({int(outside.sum())} station(s) outside); remove "
                                "it or widen grid.bbox")
    if method == "cell":
        j, i = grid.cell_index(x, y)
        j = np.minimum(np.where(j < 0, grid.ny - 1, j), grid.ny - 1)  # a point on the far edge
        i = np.minimum(np.where(i < 0, grid.nx - 1, i), grid.nx - 1)
        cells = np.repeat((j * grid.nx + i)[:, None], 4, axis=1)
        weights = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (x.size, 1))
    else:
        # fractional index of the point between cell centres, centres clamped at the domain edge
        fi = np.clip((x - grid.x0) / grid.dx - 0.5, 0.0, grid.nx - 1.0)
        fj = np.clip((y - grid.y0) / grid.dx - 0.5, 0.0, grid.ny - 1.0)
        i0 = np.minimum(np.floor(fi).astype(np.int64), max(grid.nx - 2, 0))
        j0 = np.minimum(np.floor(fj).astype(np.int64), max(grid.ny - 2, 0))
        i1, j1 = np.minimum(i0 + 1, grid.nx - 1), np.minimum(j0 + 1, grid.ny - 1)
        a, b = fi - i0, fj - j0
        cells = np.stack([j0 * grid.nx + i0, j0 * grid.nx + i1, j1 * grid.nx + i0, j1 * grid.nx + i1], axis=1)
        weights = np.stack([(1 - a) * (1 - b), a * (1 - b), (1 - a) * b, a * b], axis=1)
    return PointSampler(tuple(map(str, ids)), tuple(map(str, names)), lon, lat, x, y,
                        cells.astype(np.int64), weights, method)
