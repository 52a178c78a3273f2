"""NumPy twin of :mod:`airshed.model.plume`: the same physics, written plainly, for tests and benchmarks.

It reads the same :class:`~airshed.model.plume.PreparedSources` but evaluates sigma with
:mod:`airshed.physics.dispersion` (``**`` powers), the vertical factor by the full image sum
(:func:`~airshed.physics.dispersion.vertical_image_sum`, n = -3..3, converged to < 1e-40 for
sigma_z < 0.22 h: this checks the kernel's truncated near and middle regimes) where sigma_z is below the
Fourier threshold, and by :func:`~airshed.physics.dispersion.vertical_fourier_sum` beyond, depletion by
:func:`~airshed.physics.deposition.interpolate_log_depletion`, and ``np.exp``. Two-component (convective)
sources: each component's sigma_zj = x (a_j + b x) and centre line H + slope_j x, summed with their weights by
:func:`~airshed.physics.dispersion.reflected_gaussian_density` (images or Fourier series by the
component's own sigma, ``np.cos``). No footprint skipping.
"""

from __future__ import annotations

import numpy as np

from airshed.model import plume as pk
from airshed.physics import deposition as dep
from airshed.physics import dispersion as disp


def _sigmas(x: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    par = disp.SigmaParameters(
        *(
            np.array([row[c]])
            for c in (pk.AY, pk.BY, pk.PY, pk.AZ, pk.BZ, pk.PZ, pk.AZ2, pk.BZ2, pk.PZ2, pk.CZ)
        )
    )
    sy = disp.sigma_y_from_parameters(x, par, 0, np.sqrt(row[pk.SY02]))
    sz = disp.sigma_z_from_parameters(x, par, 0, np.sqrt(row[pk.SZ02]))
    return sy, sz


def reference_concentration_points(
    prepared: pk.PreparedSources, rx: np.ndarray, ry: np.ndarray, n_tags: int
) -> np.ndarray:
    """Concentration per tag at receptors (rx, ry), shape (n_tags, nrec), by plain NumPy."""
    rx = np.asarray(rx, dtype=np.float64)
    ry = np.asarray(ry, dtype=np.float64)
    conc = np.zeros((n_tags, rx.size))
    zr, x_min = prepared.receptor_height, prepared.x_min
    deposit = prepared.depletion.shape[1] > 0
    for k, row in enumerate(prepared.params):
        if row[pk.PREF] == 0.0:
            continue
        dx, dy = rx - row[pk.XS], ry - row[pk.YS]
        x = dx * row[pk.EX] + dy * row[pk.EY]
        y = -dx * row[pk.EY] + dy * row[pk.EX]
        ok = x > x_min
        x, y = x[ok], y[ok]
        sy, sz = _sigmas(x, row)
        lateral = np.exp(-0.5 * y * y / (sy * sy)) * np.exp(-row[pk.DECAY] * x)
        if deposit:
            lateral = lateral * np.exp(
                dep.interpolate_log_depletion(x, row[pk.DEPXMAX], prepared.depletion[k])
            )
        he, h = row[pk.H], row[pk.LID]
        if row[pk.TWO_COMP] != 0.0:
            density = np.zeros(x.size)
            for lam, slope, a in ((pk.LAM1, pk.SLOPE1, pk.SZA1), (pk.LAM2, pk.SLOPE2, pk.SZA2)):
                s_j = np.sqrt((x * (row[a] + row[pk.SZB] * x)) ** 2 + row[pk.SZ02])
                density += row[lam] * disp.reflected_gaussian_density(zr, he + row[slope] * x, s_j, h)
            # PREF = Q / (2 pi u) and C = Q / u exp(-y^2 / 2 sigma_y^2) / (sqrt(2 pi) sigma_y) density
            value = row[pk.PREF] * np.sqrt(2.0 * np.pi) / sy * lateral * density
        else:
            far = x >= row[pk.XFAR]
            v = np.zeros(x.size)
            v[~far] = disp.vertical_image_sum(zr, he, h, sz[~far], n_images=3)
            if far.any():
                v[far] = disp.vertical_fourier_sum(sz[far], h, prepared.fourier[k])
            value = row[pk.PREF] / (sy * sz) * lateral * v
        np.add.at(conc[prepared.tag[k]], np.flatnonzero(ok), value)
    return conc


def reference_concentration_grid(
    prepared: pk.PreparedSources,
    x0: float,
    y0: float,
    dx: float,
    dy: float,
    nx: int,
    ny: int,
    n_tags: int,
) -> np.ndarray:
    """Concentration per tag on the receptor grid of :func:`airshed.model.plume.plume_concentration_grid`."""
    gx, gy = np.meshgrid(x0 + dx * np.arange(nx), y0 + dy * np.arange(ny), indexing="xy")
    return reference_concentration_points(prepared, gx.ravel(), gy.ravel(), n_tags)
