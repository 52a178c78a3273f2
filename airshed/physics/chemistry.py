"""Linear (first-order) chemistry for the particle model: SO2 -> sulfate and NOx -> nitrate.

Rates are the MESOPUFF II night-time values used as defaults in CALPUFF (Scire, Strimaitis & Yamartino
2000, *A User's Guide for the CALPUFF Dispersion Model*, Earth Tech): 1 %/h for SO2 -> SO4 and 2 %/h for
NOx -> NO3. The mass of a precursor that is converted is removed from the precursor in its own units (SO2,
NOx as NO2) and added to the product in the product's units with the molar-mass ratio, so the budget closes
separately in precursor and product units.
"""

from __future__ import annotations

from airshed.jit import inline

#: Molar masses, g/mol, rounded as in the particle-model budget (SO4, SO2, NO3, NO2).
MOLAR_MASS_SULFATE = 96.0
MOLAR_MASS_SO2 = 64.0
MOLAR_MASS_NITRATE = 62.0
MOLAR_MASS_NO2 = 46.0
#: Mass of product per mass of precursor converted (one S or one N atom each).
SULFATE_PER_SO2 = MOLAR_MASS_SULFATE / MOLAR_MASS_SO2
NITRATE_PER_NOX = MOLAR_MASS_NITRATE / MOLAR_MASS_NO2
#: MESOPUFF II night-time conversion rates (CALPUFF defaults, Scire et al. 2000), 1/h.
SO2_TO_SULFATE_PER_HOUR = 0.01
NOX_TO_NITRATE_PER_HOUR = 0.02


@inline
def per_hour_to_per_second(rate_per_hour: float) -> float:
    """Convert a first-order rate from h-1 to s-1."""
    return rate_per_hour / 3600.0
