"""Removal along a plume: first-order decay and dry deposition by source depletion.

- Decay: C is multiplied by exp(-k x / u), k in s-1 (travel time x/u; e.g. ISC3 vol. II eq. 1-26).
- Dry deposition, source depletion (Horst 1977, Proc. Symp. on Intermediate Range Atmospheric Transport
  Processes, 275; Chamberlain 1953, AERE HP/R-1261): the plume loses mass at the rate of the ground flux,
  dQ/dx = -(v_d / u) Q V0(x), where V0(x) is the vertical distribution of the plume evaluated at the ground,
  V0 = sum_images / (sqrt(2 pi) sigma_z) in m-1 (ground + lid reflections; 1/h once well mixed). Hence

      ln(Q(x)/Q0) = -(v_d / u) integral_{x_min}^{x} V0(x') dx'.

  For an elevated source with ground reflection only, V0 = 2 exp(-H^2/(2 sigma_z^2)) / (sqrt(2 pi) sigma_z)
  and this is the ISC3 depletion factor (EPA 1995 vol. II eq. 1-78 with the plume height unchanged). The
  integral starts at the plume kernels' minimum distance x_min, because for a ground-level source
  V0 ~ 1/x and the integral from 0 diverges logarithmically (the Gaussian plume does not hold there).
  Deposition does not change the plume's shape (source depletion, not surface depletion; Horst 1977
  discusses the bias for ground sources in stable air).

Depletion is tabulated per source at nodes x_k = x_max (k/(n-1))^2 (dense near the source where V0
varies fast) and linearly interpolated in sqrt(x); kernel and NumPy twin use the same table.
"""

from __future__ import annotations

import numpy as np

DEPLETION_TABLE_NODES = 65
"""Nodes of the per-source ln(depletion) table."""
_SUBSTEPS = 16  # trapezoid sub-intervals per table interval (integrand smooth in sqrt(x))


def ground_profile_integral_table(
    x_max: np.ndarray, x_min: float, ground_profile, n_nodes: int = DEPLETION_TABLE_NODES
) -> np.ndarray:
    """Cumulative integral of V0 from x_min to each table node, shape (nsrc, n_nodes) (-; 0 up to x_min).

    It does not depend on v_d or u: ln(Q(x_k)/Q0) = -(v_d / u) times this,
    so one table serves every species of an hour. Trapezoid rule on a grid uniform in sqrt(x), 16
    sub-intervals per table interval.

    Parameters
    ----------
    x_max : (nsrc,) farthest distance tabulated, m. x_min : start of deposition, m.
    ground_profile : callable x (nsrc, k) -> V0(x) (nsrc, k), m-1, the plumes' vertical distribution at z = 0.
    """
    x_max = np.atleast_1d(np.asarray(x_max, dtype=np.float64))
    if x_max.size == 0:
        return np.zeros((0, n_nodes))
    t = np.linspace(0.0, 1.0, (n_nodes - 1) * _SUBSTEPS + 1)
    x = np.maximum(x_max[:, None] * t * t, x_min)
    v0 = ground_profile(x)
    increments = 0.5 * (v0[:, 1:] + v0[:, :-1]) * np.diff(x, axis=1)
    cumulative = np.concatenate([np.zeros((x_max.size, 1)), np.cumsum(increments, axis=1)], axis=1)
    return cumulative[:, ::_SUBSTEPS]


def interpolate_log_depletion(x: np.ndarray, x_max: float, table: np.ndarray) -> np.ndarray:
    """Linear interpolation of a ln-depletion table (nodes x_max (k/(n-1))^2) in sqrt(x/x_max), in [0, 1]."""
    n = table.size
    t = np.sqrt(np.clip(np.asarray(x, dtype=np.float64) / x_max, 0.0, 1.0)) * (n - 1)
    k = np.minimum(np.floor(t).astype(np.int64), n - 2)
    frac = t - k
    return table[k] + frac * (table[k + 1] - table[k])
