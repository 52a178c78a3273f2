"""Putting source fields on the model grid: horizontal interpolation, wind rotation, vertical profiles.

Horizontal interpolation weights are computed once per source and applied to every field and time
(a sparse gather + weighted sum), so regridding a window costs a few array operations per field.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial import Delaunay

from airshed.errors import DataError
from airshed.grids.grid import Grid
from airshed.physics.boundary_layer import wind_speed_at_height_array


class HorizontalInterpolator:
    """Fixed-weight linear interpolation from a source grid onto the model cell centres.

    ``slices`` give the source index window (by dimension name) that must be read; ``apply`` maps an
    array whose last two axes are that window onto the model grid (..., ny, nx).
    """

    def __init__(
        self, slices: dict[str, slice], index: np.ndarray, weights: np.ndarray, shape: tuple[int, int]
    ):
        self.slices = slices
        self._index = index  # (npoints, nvert) flat indices into the window
        self._weights = weights  # (npoints, nvert)
        self.shape = shape

    def apply(self, field: np.ndarray) -> np.ndarray:
        """Interpolate ``field`` (..., ny_src_window, nx_src_window) to (..., ny, nx)."""
        flat = field.reshape(field.shape[:-2] + (-1,))
        out = flat[..., self._index[:, 0]] * self._weights[:, 0]
        for k in range(1, self._index.shape[1]):  # one vertex at a time keeps temporaries small
            out += flat[..., self._index[:, k]] * self._weights[:, k]
        return out.reshape(field.shape[:-2] + self.shape)


def _fractional_index(coord: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower index and weight of the upper neighbour of each target in a monotonic 1-D coordinate."""
    ascending = coord[-1] > coord[0]
    c = coord if ascending else coord[::-1]
    i = np.clip(np.searchsorted(c, target, side="right") - 1, 0, c.size - 2)
    w = (target - c[i]) / (c[i + 1] - c[i])
    if not ascending:  # map back to the original (descending) index order
        i, w = c.size - 2 - i, 1.0 - w
    return i, w


def regular_latlon_interpolator(
    lat: np.ndarray, lon: np.ndarray, grid: Grid, lat_dim: str, lon_dim: str, where: str
) -> HorizontalInterpolator:
    """Bilinear interpolation in longitude/latitude from a regular source grid (1-D lat and lon).

    Latitude may be descending (ERA5). Longitudes in 0..360 or -180..180 both work: the model
    longitudes are put in the source's convention. Raises DataError when the model domain is not inside
    the source's extent.
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    tlat = grid.lat
    tlon = grid.lon % 360.0 if lon.max() > 180.0 else (grid.lon + 180.0) % 360.0 - 180.0
    if tlat.min() < lat.min() or tlat.max() > lat.max() or tlon.min() < lon.min() or tlon.max() > lon.max():
        raise DataError(
            f"{where}: meteorology covers lon {lon.min():g}..{lon.max():g}, lat {lat.min():g}..{lat.max():g} "
            f"but the model domain needs lon {tlon.min():.3f}..{tlon.max():.3f}, "
            f"lat {tlat.min():.3f}..{tlat.max():.3f}"
        )
    j, wy = _fractional_index(lat, tlat.ravel())
    i, wx = _fractional_index(lon, tlon.ravel())
    j0, j1 = int(j.min()), int(j.max()) + 2
    i0, i1 = int(i.min()), int(i.max()) + 2
    nxw = i1 - i0
    jj, ii = j - j0, i - i0
    index = np.stack(
        [jj * nxw + ii, jj * nxw + ii + 1, (jj + 1) * nxw + ii, (jj + 1) * nxw + ii + 1], axis=-1
    )
    weights = np.stack([(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx], axis=-1)
    return HorizontalInterpolator(
        {lat_dim: slice(j0, j1), lon_dim: slice(i0, i1)}, index, weights, grid.shape
    )


def curvilinear_interpolator(
    lat2d: np.ndarray, lon2d: np.ndarray, grid: Grid, y_dim: str, x_dim: str, where: str
) -> HorizontalInterpolator:
    """Linear interpolation from a curvilinear source grid (2-D lat/lon, e.g. WRF) onto the model grid.

    Source points are projected onto the model grid's plane and triangulated (Delaunay); weights are
    barycentric, which equals bilinear interpolation to second order on a smooth grid. Raises DataError
    when a model cell centre lies outside the source grid.
    """
    lat2d = np.asarray(lat2d, dtype=np.float64)
    lon2d = np.asarray(lon2d, dtype=np.float64)
    sx, sy = grid.lonlat_to_xy(lon2d, lat2d)
    pts = np.column_stack([sx.ravel(), sy.ravel()])
    tri = Delaunay(pts)
    xx, yy = np.meshgrid(grid.x, grid.y)
    targets = np.column_stack([xx.ravel(), yy.ravel()])
    simplex = tri.find_simplex(targets)
    if (simplex < 0).any():
        raise DataError(
            f"{where}: the meteorology grid (lon {lon2d.min():.3f}..{lon2d.max():.3f}, "
            f"lat {lat2d.min():.3f}..{lat2d.max():.3f}) does not cover the model domain "
            f"({int((simplex < 0).sum())} cell centres outside)"
        )
    trans = tri.transform[simplex]
    bary = np.einsum("pij,pj->pi", trans[:, :2, :], targets - trans[:, 2, :])
    weights = np.column_stack([bary, 1.0 - bary.sum(axis=1)])
    vert = tri.simplices[simplex]
    jv, iv = np.unravel_index(vert, lat2d.shape)
    j0, j1 = int(jv.min()), int(jv.max()) + 1
    i0, i1 = int(iv.min()), int(iv.max()) + 1
    index = (jv - j0) * (i1 - i0) + (iv - i0)
    return HorizontalInterpolator({y_dim: slice(j0, j1), x_dim: slice(i0, i1)}, index, weights, grid.shape)


def rotate_earth_to_grid(
    u_east: np.ndarray, v_north: np.ndarray, grid_north_angle: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Earth-relative (east, north) wind components to grid-relative (x, y) components, m/s.

    ``ug = u cos(a) - v sin(a)``, ``vg = u sin(a) + v cos(a)`` with ``a`` = :attr:`Grid.grid_north_angle`
    (meridian convergence: negative west of the central meridian on the default LCC, so a wind from the
    south there has a positive x component, as true north leans towards the cone's apex).
    """
    c, s = np.cos(grid_north_angle), np.sin(grid_north_angle)
    return u_east * c - v_north * s, u_east * s + v_north * c


def surface_heights_from_pressure(
    level_height: np.ndarray, level_pressure_pa: np.ndarray, surface_pressure_pa: np.ndarray
) -> np.ndarray:
    """Height of the surface (same datum as ``level_height``) where pressure equals the surface pressure.

    ``level_height`` (..., L, y, x) is the geopotential height of pressure levels ``level_pressure_pa``
    (L,); it is interpolated linearly in ln p to ``surface_pressure_pa`` (..., y, x), extrapolating from
    the two lowest levels below 1000 hPa (linear in ln p = hypsometric equation for an isothermal layer).
    """
    order = np.argsort(-np.asarray(level_pressure_pa))  # descending pressure = ascending height
    lnp = np.log(np.asarray(level_pressure_pa, dtype=np.float64)[order])
    zl = np.take(level_height, order, axis=-3)
    lns = np.log(surface_pressure_pa)
    k = np.clip((lnp[:, None, None] > lns[..., None, :, :]).sum(axis=-3), 1, lnp.size - 1)
    z_lo = np.take_along_axis(zl, (k - 1)[..., None, :, :], axis=-3)[..., 0, :, :]
    z_hi = np.take_along_axis(zl, k[..., None, :, :], axis=-3)[..., 0, :, :]
    w = (lns - lnp[k - 1]) / (lnp[k] - lnp[k - 1])
    return z_lo + w * (z_hi - z_lo)


def winds_at_heights(
    u_levels: np.ndarray | None,
    v_levels: np.ndarray | None,
    level_height: np.ndarray | None,
    u10: np.ndarray,
    v10: np.ndarray,
    z0: np.ndarray,
    inv_l: np.ndarray,
    heights_m: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal wind components at model heights (m above ground), shape (time, z, y, x).

    At and below 10 m, and at every height when no upper-air winds are given: the 10 m wind scaled by
    the Monin-Obukhov profile (:func:`~airshed.physics.boundary_layer.wind_speed_at_height`), direction
    of the 10 m wind. Above 10 m: linear interpolation in ln(z) between the 10 m wind and the model-level
    winds whose heights above ground exceed 10 m (levels below ground or below 10 m are ignored);
    above the top level the top-level wind is held.
    """
    nz = len(heights_m)
    out_u = np.empty(u10.shape[:1] + (nz,) + u10.shape[1:])
    out_v = np.empty_like(out_u)
    if u_levels is not None:
        # Column of anchors sorted by height: the 10 m wind, then the levels from the lowest up. Levels at
        # or below 10 m (or below ground) are replaced by copies of the 10 m anchor, which keeps every
        # column monotonic so a count gives the bracketing pair.
        order = np.argsort(np.nanmean(level_height, axis=(0, 2, 3)))
        lh = level_height[:, order]
        valid = lh > 10.0
        h = np.concatenate([np.full_like(u10[:, None], 10.0), np.where(valid, lh, 10.0)], axis=1)
        uc = np.concatenate([u10[:, None], np.where(valid, u_levels[:, order], u10[:, None])], axis=1)
        vc = np.concatenate([v10[:, None], np.where(valid, v_levels[:, order], v10[:, None])], axis=1)
        h = np.maximum.accumulate(h, axis=1)  # guards against a level lower than the one under it
        lnh = np.log(h)
        top = h.shape[1] - 1
    for k, z in enumerate(heights_m):
        if z <= 10.0 or u_levels is None:
            factor = wind_speed_at_height_array(1.0, 10.0, float(z), z0, inv_l)
            out_u[:, k] = u10 * factor
            out_v[:, k] = v10 * factor
            continue
        n_below = (h <= z).sum(axis=1, keepdims=True)
        lo = n_below - 1
        hi = np.minimum(n_below, top)
        l0 = np.take_along_axis(lnh, lo, axis=1)[:, 0]
        l1 = np.take_along_axis(lnh, hi, axis=1)[:, 0]
        w = np.where(l1 > l0, (np.log(z) - l0) / np.where(l1 > l0, l1 - l0, 1.0), 0.0)
        for comp, out in ((uc, out_u), (vc, out_v)):
            c0 = np.take_along_axis(comp, lo, axis=1)[:, 0]
            c1 = np.take_along_axis(comp, hi, axis=1)[:, 0]
            out[:, k] = c0 + w * (c1 - c0)
    return out_u, out_v


def scalar_at_heights(
    values: np.ndarray, level_height: np.ndarray, surface_value: np.ndarray, heights_m: Sequence[float]
) -> np.ndarray:
    """Interpolate a scalar (e.g. vertical velocity) to model heights.

    Linear in z between the surface value (z = 0) and the levels above ground, held constant above the
    top level. Shapes as :func:`winds_at_heights`.
    """
    h = np.concatenate(
        [np.zeros_like(surface_value[:, None]), np.where(level_height > 0.0, level_height, np.nan)], axis=1
    )
    vals = np.concatenate([surface_value[:, None], values], axis=1)
    out = np.empty(surface_value.shape[:1] + (len(heights_m),) + surface_value.shape[1:])
    for k, z in enumerate(heights_m):
        below = np.nanargmax(np.where(h <= z, h, -np.inf), axis=1)[:, None]
        above_h = np.where(h > z, h, np.inf)
        none_above = ~np.isfinite(above_h).any(axis=1)
        above = np.where(none_above, below[:, 0], np.argmin(above_h, axis=1))[:, None]
        h0, h1 = np.take_along_axis(h, below, axis=1)[:, 0], np.take_along_axis(h, above, axis=1)[:, 0]
        v0, v1 = np.take_along_axis(vals, below, axis=1)[:, 0], np.take_along_axis(vals, above, axis=1)[:, 0]
        w = np.where(none_above, 0.0, (z - h0) / np.where(h1 > h0, h1 - h0, 1.0))
        out[:, k] = v0 + w * (v1 - v0)
    return out
