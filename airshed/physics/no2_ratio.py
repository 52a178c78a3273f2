"""NO2 from modelled NOx: the Ambient Ratio Method 2 (ARM2) of US EPA regulatory dispersion modelling.

airshed carries NOx as one tracer (mass as NO2); monitors measure NO2. The NO/NO2 partition depends on
ozone and sunlight, which the linear mechanism does not carry, so NO2 is obtained from NOx by an empirical
ratio. ARM2 (Podrez 2015, Atmos. Environ. 103:163; adopted in AERMOD, US EPA 2015, EPA-454/B-15-004) fits
the hourly NO2/NOx ratios of the US monitoring network as a sixth-order polynomial of the hourly NOx
concentration, bounded by a minimum ratio of 0.5 and a maximum of 0.9:

    r(N) = min(0.9, max(0.5, sum_k c_k N^k)),  N = hourly NOx in ppb,
    c = (1.2441, -2.7383e-3, -5.6062e-6, 3.4555e-8, -5.8345e-11, 4.2795e-14, -1.1723e-17).

The ratio is 0.9 below about 110 ppb (about 200 ug m-3 of NOx as NO2) and falls to 0.5 near 290 ppb. NOx
mass as NO2 is converted to ppb at 25 C and 1013.25 hPa (1 ppb NO2 = 1.8805 ug m-3), as AERMOD does.
NO2 = r(N) N is not linear in the emissions; :func:`no2_from_nox` and its derivative
:func:`d_no2_d_nox` let an inversion linearise it (Gauss-Newton).
"""

from __future__ import annotations

import numpy as np

ARM2_COEFFICIENTS = (1.2441, -2.7383e-3, -5.6062e-6, 3.4555e-8, -5.8345e-11, 4.2795e-14, -1.1723e-17)
"""ARM2 polynomial coefficients c_0..c_6 of the NO2/NOx ratio in powers of NOx (ppb)."""

ARM2_MIN_RATIO = 0.5
"""Lower bound of the ARM2 ratio (EPA default)."""

ARM2_MAX_RATIO = 0.9
"""Upper bound of the ARM2 ratio (EPA default)."""

UG_M3_PER_PPB_NO2 = 46.0055 / 24.4654
"""ug m-3 of NO2 per ppb at 25 C and 1013.25 hPa (molar mass / molar volume)."""


def _polynomial(ppb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ARM2 polynomial and its derivative d/d(ppb), unbounded."""
    value = np.zeros_like(ppb)
    slope = np.zeros_like(ppb)
    for c in reversed(ARM2_COEFFICIENTS):
        slope = slope * ppb + value  # Horner for the derivative alongside the value
        value = value * ppb + c
    return value, slope


def arm2_ratio(nox_ug_m3: np.ndarray) -> np.ndarray:
    """ARM2 NO2/NOx ratio (dimensionless, 0.5-0.9) for hourly NOx given as ug m-3 of NO2 (Podrez 2015)."""
    ppb = np.maximum(np.asarray(nox_ug_m3, dtype=float), 0.0) / UG_M3_PER_PPB_NO2
    value, _ = _polynomial(ppb)
    return np.clip(value, ARM2_MIN_RATIO, ARM2_MAX_RATIO)


def no2_from_nox(nox_ug_m3: np.ndarray) -> np.ndarray:
    """Hourly NO2 (ug m-3) from hourly NOx as NO2 (ug m-3) by ARM2: ``r(N) N``."""
    nox = np.maximum(np.asarray(nox_ug_m3, dtype=float), 0.0)
    return arm2_ratio(nox) * nox


def d_no2_d_nox(nox_ug_m3: np.ndarray) -> np.ndarray:
    """Return d(NO2)/d(NOx) of :func:`no2_from_nox`, dimensionless: ``r + N dr/dN``.

    Where the ratio sits on one of its bounds, ``dr/dN = 0`` and the derivative is the bound.
    """
    nox = np.maximum(np.asarray(nox_ug_m3, dtype=float), 0.0)
    ppb = nox / UG_M3_PER_PPB_NO2
    value, slope = _polynomial(ppb)
    inside = (value > ARM2_MIN_RATIO) & (value < ARM2_MAX_RATIO)
    ratio = np.clip(value, ARM2_MIN_RATIO, ARM2_MAX_RATIO)
    return ratio + np.where(inside, ppb * slope, 0.0)
