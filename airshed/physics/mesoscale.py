"""Unresolved mesoscale motions: the horizontal velocities the meteorology's grid cannot carry.

A particle moved only by the gridded wind and boundary-layer turbulence spreads sideways far less than
real plumes do over hours to days: motions between the boundary-layer eddies (~1 km) and the smallest
scales the met model resolves are missing. Operational models add them as a random velocity, e.g. the
UK Met Office NAME's unresolved mesoscale motions (Maryon 1998, Atmos. Environ. 32:115; Webster,
Whitehead & Thomson 2018, J. Appl. Meteorol. Climatol. 57:645), whose variance depends on the resolution
of the met. airshed follows that scheme with its two parameters taken from published spectra:

- velocity variance: the part of the observed kinetic-energy spectrum of the atmosphere at wavenumbers
  above the met's effective resolution, E(k) = a k^(-5/3) + b k^(-3) with a = 9.1e-4 m^(4/3) s^-2 and
  b = 3.0e-10 s^-2 (Lindborg 1999, J. Fluid Mech. 388:259, fit to the aircraft spectra of Nastrom & Gage
  1985, J. Atmos. Sci. 42:950); per horizontal component

      sigma_m^2 = integral_{k_e}^inf E(k) dk = (3/2) a k_e^(-2/3) + (1/2) b k_e^(-2),

  with k_e = 2 pi / (7 dx): a model resolves motions of about seven grid lengths and longer
  (Skamarock 2004, Mon. Weather Rev. 132:3019);
- Lagrangian time scale: the turnover time of the largest unresolved eddies, T_m = 1 / (k_e sigma_m)
  (T_L ~ l / u; Tennekes & Lumley 1972, Sect. 8.4).

Each particle carries (u_m, v_m) / sigma_m, an Ornstein-Uhlenbeck process with time scale T_m (the exact
update r = exp(-dt / T_m)), so the diffusivity is K_m = sigma_m^2 T_m and the spread of a puff follows
Taylor (1921): sigma_y^2 = 2 sigma_m^2 T_m^2 (t / T_m - 1 + exp(-t / T_m)). For a 9 km grid,
sigma_m = 0.81 m/s, T_m = 3.4 h and K_m = 8.0e3 m2/s. Nothing here is fitted to dispersion data; the test
compares the puff's spread with the compilation of Heffter (1965, J. Appl. Meteorol. 4:153),
sigma_y ~ 0.5 m/s x t for travel times of hours to days.
"""

from __future__ import annotations

import numpy as np

#: Lindborg (1999) fit of the atmospheric kinetic-energy spectrum: k^(-5/3) and k^(-3) coefficients.
SPECTRUM_A_M43_S2 = 9.1e-4
SPECTRUM_B_S2 = 3.0e-10
#: Effective resolution of a met model in grid lengths (Skamarock 2004).
EFFECTIVE_RESOLUTION_GRID_LENGTHS = 7.0


def effective_wavenumber(grid_length_m: float) -> float:
    """Smallest wavenumber the met leaves unresolved, k_e = 2 pi / (7 dx), rad/m."""
    if not grid_length_m > 0.0:
        raise ValueError(f"met grid length must be > 0 m, got {grid_length_m}")
    return 2.0 * np.pi / (EFFECTIVE_RESOLUTION_GRID_LENGTHS * grid_length_m)


def unresolved_velocity_sigma(grid_length_m: float) -> float:
    """Return the standard deviation of a horizontal component of the unresolved velocity, m/s."""
    k = effective_wavenumber(grid_length_m)
    return float(np.sqrt(1.5 * SPECTRUM_A_M43_S2 * k ** (-2.0 / 3.0) + 0.5 * SPECTRUM_B_S2 * k**-2.0))


def unresolved_time_scale(grid_length_m: float) -> float:
    """Lagrangian time scale of the unresolved velocity, T_m = 1 / (k_e sigma_m), s."""
    return float(1.0 / (effective_wavenumber(grid_length_m) * unresolved_velocity_sigma(grid_length_m)))


def taylor_spread(sigma: float, time_scale: float, t: np.ndarray) -> np.ndarray:
    """Return the standard deviation (m) of the displacement after t (s) by an OU velocity (Taylor 1921)."""
    t = np.asarray(t, dtype=float)
    return np.sqrt(2.0 * sigma**2 * time_scale**2 * (t / time_scale - 1.0 + np.exp(-t / time_scale)))
