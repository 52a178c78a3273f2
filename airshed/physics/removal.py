"""Removal of trace species from air parcels: dry deposition and wet (below-cloud) scavenging.

Both act on a Lagrangian particle as first-order losses over a time step, so several processes acting
together remove ``m (1 - exp(-sum(k) dt))`` shared in proportion to their rates (exact for simultaneous
first-order processes, and the budget closes to round-off).
"""

from __future__ import annotations

import numpy as np

from airshed.jit import inline

#: Depth of the layer in which particles are depleted by dry deposition, m: FLEXPART's 2 * href with
#: href = 15 m (Stohl et al. 2005, ACP 5:2461, Sect. 8).
DRY_DEPOSITION_LAYER_M = 30.0
#: Below-cloud scavenging coefficient Lambda = A P^B of the UK Met Office NAME model (Maryon et al. 1996):
#: A in s-1, B dimensionless, P in mm/h.
WET_SCAVENGING_A_PER_S = 8.4e-5
WET_SCAVENGING_B = 0.79


@inline
def dry_deposition_rate(deposition_velocity: float, layer_depth: float) -> float:
    """First-order dry-deposition loss rate of a particle in the surface layer, s-1.

    k = v_d / Delta z, with v_d (m/s) the deposition velocity and Delta z (m) the depth of the layer whose
    particles are depleted, so that m(t + dt) = m(t) exp(-v_d dt / Delta z) (Stohl et al. 2005, ACP 5:2461,
    Sect. 8, FLEXPART's particle-mass depletion with Delta z = 2 href).
    """
    return deposition_velocity / layer_depth


def scavenging_formula(exp=np.exp, log=np.log):
    """Lambda = A P^B over given ``exp`` and ``log`` (NumPy's, or vectorisable ones for kernels).

    Written without branches on P (zero for P <= 0 by a select), so a loop that calls it vectorises.
    """

    def coefficient(precip_mm_per_h, a_per_s, b):
        """Below-cloud scavenging coefficient Lambda = A P^B, s-1 (Maryon et al. 1996; NAME).

        ``precip_mm_per_h`` is the precipitation rate P (mm/h); A (s-1) and B (-) are per species
        (8.4e-5 s-1 and 0.79 for soluble gases and aerosol in NAME). Zero for P <= 0.
        """
        rate = a_per_s * exp(b * log(max(precip_mm_per_h, 1e-300)))
        return rate if precip_mm_per_h > 0.0 else 0.0

    return coefficient


def wet_scavenging_rates(precip_mm_per_h: np.ndarray, a_per_s: float, b: float) -> np.ndarray:
    """Lambda = A P^B (s-1) for an array of precipitation rates (mm/h): :func:`scavenging_formula`, NumPy.

    Evaluated once per distinct rate (sources in one met cell share it); 0 where P <= 0.
    """
    precip = np.asarray(precip_mm_per_h, dtype=np.float64)
    values, inverse = np.unique(precip, return_inverse=True)
    coefficient = scavenging_formula()
    return np.array([coefficient(float(p), a_per_s, b) for p in values])[inverse].reshape(precip.shape)
