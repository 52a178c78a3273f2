"""NO2 from modelled NOx: the Ambient Ratio Method 2 (ARM2) of US EPA regulatory dispersion modelling.

airshed carries NOx as one tracer (mass as NO2); monitors measure NO2. The NO/NO2 partition depends on
ozone and sunlight, which the linear mechanism does not carry, so NO2 is obtained from NOx by an empirical
ratio. ARM2 (Podrez 2015, Atmos. Environ. 103:163; adopted in AERMOD, US EPA 2015, EPA-454/B-15-004) fits
the hourly NO2/NOx ratios of the US monitoring network as a sixth-order polynomial of the hourly NOx
concentration, bounded by a minimum ratio of 0.5 and a maximum of 0.9:

    r(N) = min(0.9, max(0.5, sum_k c_k N^k)),  N = hourly NOx in ug m-3 (as NO2),
    c = (1.2441, -2.7383e-3, -5.6062e-6, 3.4555e-8, -5.8345e-11, 4.2795e-14, -1.1723e-17).

**Units.** N is the mass concentration, not a mixing ratio: AERMOD's ``ARM2_CALC`` (calc1.f) evaluates the
polynomial on ``NOXCONC = SUM(CHI)``, the summed NOx concentration in the model's output units, micrograms
per cubic metre by default (``OUTLBL = 'MICROGRAMS/M**3'``), with no conversion to ppb (read in a public
copy of the AERMOD source; Podrez 2015 itself could not be read here). The ratio is therefore 0.9 below
115 ug m-3 of NOx and falls to 0.5 at 284 ug m-3. (The first version of this module converted N to ppb
first, which moved both points up by a factor 1.88.) NO2 = r(N) N is not linear in the emissions;
:func:`no2_from_nox` and its derivative :func:`d_no2_d_nox` let an inversion linearise it (Gauss-Newton).
"""

from __future__ import annotations

import numpy as np

ARM2_COEFFICIENTS = (1.2441, -2.7383e-3, -5.6062e-6, 3.4555e-8, -5.8345e-11, 4.2795e-14, -1.1723e-17)
"""ARM2 polynomial coefficients c_0..c_6 of the NO2/NOx ratio in powers of NOx (ug m-3)."""

ARM2_MIN_RATIO = 0.5
"""Lower bound of the ARM2 ratio (EPA default)."""

ARM2_MAX_RATIO = 0.9
"""Upper bound of the ARM2 ratio (EPA default)."""

UG_M3_PER_PPB_NO2 = 46.0055 / 24.4654
"""ug m-3 of NO2 per ppb at 25 C and 1013.25 hPa (molar mass / molar volume; AERMOD's NO2_PPB = 0.5319 is
its inverse). The ratio does not use it: its polynomial takes ug m-3."""


def _polynomial(nox: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ARM2 polynomial and its derivative d/d(NOx), unbounded; NOx in ug m-3."""
    value = np.zeros_like(nox)
    slope = np.zeros_like(nox)
    for c in reversed(ARM2_COEFFICIENTS):
        slope = slope * nox + value  # Horner for the derivative alongside the value
        value = value * nox + c
    return value, slope


def arm2_ratio(nox_ug_m3: np.ndarray) -> np.ndarray:
    """ARM2 NO2/NOx ratio (dimensionless, 0.5-0.9) for hourly NOx given as ug m-3 of NO2 (Podrez 2015)."""
    value, _ = _polynomial(np.maximum(np.asarray(nox_ug_m3, dtype=float), 0.0))
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
    value, slope = _polynomial(nox)
    inside = (value > ARM2_MIN_RATIO) & (value < ARM2_MAX_RATIO)
    ratio = np.clip(value, ARM2_MIN_RATIO, ARM2_MAX_RATIO)
    return ratio + np.where(inside, nox * slope, 0.0)
