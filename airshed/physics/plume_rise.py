"""Briggs plume rise: buoyancy and momentum fluxes, final and transitional rise, stack-tip downwash.

Formulas as implemented in ISC3 (US EPA 1995, *User's Guide for the ISC3 Dispersion Models*,
EPA-454/B-95-003b, vol. II, section 1.1.4), which collects Briggs (1969, *Plume Rise*, AEC Critical Review
Series TID-25075; 1971, Proc. 2nd Int. Clean Air Congress 1029; 1972, Atmos. Environ. 6:507; 1974, *Diffusion
Estimation for Small Emissions*, ATDL-106; 1975, *Lectures on Air Pollution and Environmental Impact
Analyses*, AMS, 59). Arrays in, arrays out (one value per source); SI units, temperatures in K.
"""

from __future__ import annotations

import numpy as np

GRAVITY = 9.81
"""m s-2 (value used by ISC3/AERMOD)."""
STABLE_DTHETA_DZ = {5: 0.020, 6: 0.035}
"""Default potential-temperature gradient, K/m, for Pasquill classes E and F (ISC3 vol. II eq. 1-13)."""


def buoyancy_flux(
    diameter: np.ndarray, exit_velocity: np.ndarray, stack_temp: np.ndarray, air_temp: np.ndarray
) -> np.ndarray:
    """Briggs buoyancy flux F_b = g v_s d^2 (T_s - T_a) / (4 T_s), m4 s-3, floored at 0 (ISC3 eq. 1-7)."""
    d, vs, ts, ta = (np.asarray(a, dtype=np.float64) for a in (diameter, exit_velocity, stack_temp, air_temp))
    return np.maximum(GRAVITY * vs * d * d * (ts - ta) / (4.0 * ts), 0.0)


def momentum_flux(
    diameter: np.ndarray, exit_velocity: np.ndarray, stack_temp: np.ndarray, air_temp: np.ndarray
) -> np.ndarray:
    """Momentum flux F_m = v_s^2 d^2 T_a / (4 T_s), m4 s-2 (ISC3 eq. 1-8)."""
    d, vs, ts, ta = (np.asarray(a, dtype=np.float64) for a in (diameter, exit_velocity, stack_temp, air_temp))
    return vs * vs * d * d * ta / (4.0 * ts)


def stack_tip_downwash_height(
    stack_height: np.ndarray, diameter: np.ndarray, exit_velocity: np.ndarray, u_stack: np.ndarray
) -> np.ndarray:
    """Stack height corrected for stack-tip downwash, h_s' = h_s + 2 d (v_s/u_s - 1.5) when v_s < 1.5 u_s.

    Briggs (1974); ISC3 eq. 1-5. Not below 0.
    """
    hs, d, vs, u = (np.asarray(a, dtype=np.float64) for a in (stack_height, diameter, exit_velocity, u_stack))
    return np.maximum(np.where(vs < 1.5 * u, hs + 2.0 * d * (vs / u - 1.5), hs), 0.0)


def stability_parameter(air_temp: np.ndarray, dtheta_dz: np.ndarray) -> np.ndarray:
    """Stability parameter s = g (dtheta/dz) / T_a, s-2 (Briggs 1975; ISC3 eq. 1-12). N = sqrt(s)."""
    return GRAVITY * np.asarray(dtheta_dz, dtype=np.float64) / np.asarray(air_temp, dtype=np.float64)


def briggs_final_rise(
    fb: np.ndarray,
    fm: np.ndarray,
    diameter: np.ndarray,
    exit_velocity: np.ndarray,
    u_stack: np.ndarray,
    stable: np.ndarray,
    s: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the final plume rise dh (m) and the distance x_f (m) at which it is reached.

    Unstable/neutral: buoyant dh = 21.425 F_b^3/4 / u for F_b < 55, 38.71 F_b^3/5 / u otherwise, reached at
    x_f = 49 F_b^5/8 resp. 119 F_b^2/5 (Briggs 1971, 1975; ISC3 eqs. 1-9 to 1-10); momentum dh = 3 d v_s / u
    (Briggs 1969; ISC3 eq. 1-11). Stable: buoyant dh = 2.6 (F_b / (u s))^1/3 at x_f = 2.0715 u / sqrt(s)
    (ISC3 eq. 1-14, 1-15); momentum dh = 1.5 (F_m / (u sqrt(s)))^1/3, not above the neutral momentum rise
    (ISC3 eq. 1-17). The larger of buoyant and momentum rise is taken: this equals ISC3's crossover-
    temperature rule wherever the two regimes are distinct and avoids its discontinuity. Momentum rise is
    taken as immediate (x_f = 0 when momentum dominates; Briggs 1969 momentum jets rise within ~ a few
    stack diameters of the exit, compared with km for buoyant plumes).
    """
    fb, fm, d, vs, u, s = (
        np.asarray(a, dtype=np.float64) for a in (fb, fm, diameter, exit_velocity, u_stack, s)
    )
    stable = np.asarray(stable, dtype=bool)
    small = fb < 55.0
    dh_b_un = np.where(small, 21.425 * fb**0.75, 38.71 * fb**0.6) / u
    xf_un = np.where(small, 49.0 * fb**0.625, 119.0 * fb**0.4)
    dh_m_un = 3.0 * d * vs / u
    s_safe = np.where(stable & (s > 0.0), s, 1.0)
    dh_b_st = 2.6 * np.cbrt(fb / (u * s_safe))
    xf_st = 2.0715 * u / np.sqrt(s_safe)
    dh_m_st = np.minimum(1.5 * np.cbrt(fm / (u * np.sqrt(s_safe))), dh_m_un)
    dh_b = np.where(stable, dh_b_st, dh_b_un)
    dh_m = np.where(stable, dh_m_st, dh_m_un)
    xf = np.where(stable, xf_st, xf_un)
    buoyant = dh_b >= dh_m
    return np.where(buoyant, dh_b, dh_m), np.where(buoyant & (fb > 0.0), xf, 0.0)


LID_DTHETA_DZ = 0.005
"""Default potential-temperature gradient in the stable layer capping a convective boundary layer, K/m
(AERMOD's value for its urban pseudo-penetration when no sounding gives one; AERMET takes the gradient
above z_i from the morning sounding)."""


def lid_penetration_fraction(
    buoyancy_flux: np.ndarray,
    u_stack: np.ndarray,
    stack_height: np.ndarray,
    mixing_height: np.ndarray,
    air_temp: np.ndarray,
    dtheta_dz_above: np.ndarray = LID_DTHETA_DZ,
) -> np.ndarray:
    """Fraction of a buoyant plume that penetrates the inversion capping a convective boundary layer.

    AERMOD (Cimorelli et al. 2005, J. Appl. Meteorol. 44:682, section 5; US EPA 2004, EPA-454/R-03-004,
    section 5.2, code PENFCT): with dh_h = z_i - h_s the depth of the mixed layer above the stack top,
    N_h^2 = g (dtheta/dz) / theta above z_i (theta taken as the air temperature, the mixed layer being
    well mixed in theta), the penetration parameter P_s = F_b / (u N_h^2 dh_h^3) and the equilibrium rise
    in the stable layer dh_eq = dh_h (2.6^3 P_s + (2/3)^3)^(1/3) (Berkowicz et al. 1986), the penetrated
    fraction is

        0                        for dh_h >= 1.5 dh_eq  (plume trapped),
        1.5 - dh_h / dh_eq       in between,
        1                        for dh_h <= 0.5 dh_eq,

    and 1 for stacks at or above z_i. AERMOD's trapped fraction is f_p = 1 - this. A plume without
    buoyancy (F_b = 0) has dh_eq = 2/3 dh_h and stays in the mixed layer. Arrays of one value per
    source; F_b in m4 s-3 (:func:`buoyancy_flux`), u m/s, heights m, temperature K, gradient K/m.
    """
    fb, u, hs, zi, ta = (
        np.asarray(a, dtype=np.float64)
        for a in (buoyancy_flux, u_stack, stack_height, mixing_height, air_temp)
    )
    dh_h = zi - hs
    below = dh_h > 0.0
    n2 = stability_parameter(ta, dtheta_dz_above)
    with np.errstate(divide="ignore", invalid="ignore"):
        ps = fb / (u * n2 * np.where(below, dh_h, 1.0) ** 3)
        ratio = np.cbrt(2.6**3 * ps + (2.0 / 3.0) ** 3)  # dh_eq / dh_h
        fraction = np.clip(1.5 - 1.0 / ratio, 0.0, 1.0)
    return np.where(below, fraction, 1.0)


def briggs_transitional_rise(x: np.ndarray, fb: float, u: float, final_rise: float) -> np.ndarray:
    """Gradual (transitional) buoyant rise dh(x) = 1.60 F_b^1/3 x^2/3 / u, capped at the final rise (m).

    Briggs (1972) "2/3 law"; ISC3 eq. 1-22. The ISC3 final-rise formulas are this law evaluated at x_f, so
    the cap is reached exactly at x_f. The plume kernels use the final rise at all distances (the ISC3
    regulatory default); this function is for near-field analyses and tests.
    """
    x = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
    return np.minimum(1.60 * np.cbrt(fb) * np.cbrt(x) ** 2 / u, final_rise)


def pasquill_stability_parameter(pg_class: np.ndarray, air_temp: np.ndarray) -> np.ndarray:
    """Stability parameter s (s-2) from the Pasquill-Gifford class.

    ISC3's default dtheta/dz for E and F (:data:`STABLE_DTHETA_DZ`), 0 for A-D (ISC3 vol. II eq. 1-12,
    1-13), through :func:`stability_parameter`.
    """
    pg = np.asarray(pg_class)
    dtheta = np.where(pg == 6, STABLE_DTHETA_DZ[6], np.where(pg == 5, STABLE_DTHETA_DZ[5], 0.0))
    return stability_parameter(air_temp, dtheta)


def effective_stack_height(
    stack_height: np.ndarray,
    diameter: np.ndarray,
    exit_velocity: np.ndarray,
    stack_temp: np.ndarray,
    air_temp: np.ndarray,
    u_stack: np.ndarray,
    pg_class: np.ndarray,
    *,
    plume_rise: bool = True,
    stack_tip_downwash: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Effective release height H = h_s' + dh (m) and the final rise dh (m) of stacks.

    h_s' is the stack height corrected for stack-tip downwash (:func:`stack_tip_downwash_height`, Briggs
    1974; ISC3 eq. 1-5) or h_s when ``stack_tip_downwash`` is off; dh is the Briggs final rise
    (:func:`briggs_final_rise`; stable for Pasquill classes E and F with ISC3's default dtheta/dz, see
    :func:`pasquill_stability_parameter`), or 0 when ``plume_rise`` is off. u_stack is the wind speed at
    the stack top (m/s), air_temp in K. Stacks with no diameter or exit velocity get no rise.
    """
    hs = np.asarray(stack_height, dtype=np.float64)
    if stack_tip_downwash:
        hs = stack_tip_downwash_height(hs, diameter, exit_velocity, u_stack)
    if not plume_rise:
        return hs, np.zeros(hs.shape)
    fb = buoyancy_flux(diameter, exit_velocity, stack_temp, air_temp)
    fm = momentum_flux(diameter, exit_velocity, stack_temp, air_temp)
    pg = np.asarray(pg_class)
    s = pasquill_stability_parameter(pg, air_temp)
    dh, _ = briggs_final_rise(fb, fm, diameter, exit_velocity, u_stack, pg >= 5, s)
    return hs + dh, dh
