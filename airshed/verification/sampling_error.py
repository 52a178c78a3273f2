"""The Monte-Carlo sampling error of a particle run at the stations, estimated from the run itself.

A particle core estimates each hourly concentration from a finite number of particles, so its station
series carry sampling noise on top of the transport they resolve: with 5,000 particles per hour in the
default case, a station's hourly value is off by tens of percent (README, verification). That noise is an
error of the observation operator ``K`` like the transport error, and the inversion must count it.

**Estimator.** Particles counted in a cell form, to a good approximation, a Poisson sample: the variance of
the hourly estimate is proportional to its mean, ``sigma_t^2 = a c_t`` (``a`` = the mass concentration of
one particle's weight in the sampling volume, times the variance inflation of unequal particle masses), and
noise in different hours is independent when particles cross a cell in less than an hour (9-km cells,
winds of metres per second). The smooth part of a series (the transport the model resolves) is removed by
the pseudo-residuals of Gasser, Sroka and Jennen-Steinmetz (1986, Biometrika 73:625; for equally spaced
points, the second differences)

    d_t = c_{t-1} - 2 c_t + c_{t+1},     E[d_t^2] = a (c_{t-1} + 4 c_t + c_{t+1}) + (signal curvature)^2,

so, per station and observed species,

    a = sum_t d_t^2 / sum_t (c_{t-1} + 4 c_t + c_{t+1}),     sigma_t = sqrt(a c_t).

The curvature of the resolved signal can only add to ``a``: the estimate errs towards a larger error
(a conservative inversion), never a smaller one. A run that kept independent particle classes (FLEXPART's
``nclassunc``; :mod:`airshed.uncertainty.statistics` holds the batch-means error for it) would give the
sampling variance directly; the particle kernel does not keep classes yet, so the series itself is used.

The estimate applies to runs of a Monte-Carlo core (run-file attribute ``core`` in
:data:`MONTE_CARLO_CORES`); a Gaussian-plume run has no sampling noise.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MONTE_CARLO_CORES", "particle_sampling_sigma"]

MONTE_CARLO_CORES = ("lagrangian",)
"""Cores whose concentrations are Monte-Carlo estimates (value of the run file's ``core`` attribute)."""


def particle_sampling_sigma(series: np.ndarray) -> np.ndarray:
    """(T, N) 1-sigma sampling error (units of ``series``) of hourly station series (T, N), module docstring.

    A station whose series has fewer than three hours or no concentration gets 0.
    """
    c = np.asarray(series, dtype=float)
    if c.shape[0] < 3:
        return np.zeros_like(c)
    d = c[:-2] - 2.0 * c[1:-1] + c[2:]
    weight = c[:-2] + 4.0 * c[1:-1] + c[2:]
    num, den = (d * d).sum(axis=0), weight.sum(axis=0)
    a = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return np.sqrt(a * np.maximum(c, 0.0))
