"""Dispersion schemes of the Gaussian plume: the registry that ``plume.dispersion`` is checked against.

A scheme turns per-source boundary-layer and plume quantities (:class:`SigmaInputs`) into the coefficients
of the parametric sigma_y / sigma_z family of :mod:`airshed.physics.dispersion`, which the plume kernels
evaluate without knowing the scheme. It may add an initial spread (buoyancy-induced dispersion) and may
ask for the convective lid-penetration treatment of the plume core. A new scheme is one module holding
its sigma function plus one line in :data:`DISPERSION_SCHEMES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from airshed.errors import AirshedInputError
from airshed.physics import dispersion as disp
from airshed.physics import plume_rise as rise
from airshed.physics.convective import TwoComponentVertical


@dataclass(frozen=True)
class SigmaInputs:
    """Per-source quantities a scheme may use (arrays of one value per source).

    ``wstar`` is None when the meteorology gives none (a scheme that needs it derives it from u*, L, h).
    ``mixing_height`` may be inf (no lid).
    """

    pg_class: np.ndarray  # Pasquill-Gifford class 1..6 (A..F)
    u: np.ndarray  # plume wind speed, m/s
    ustar: np.ndarray  # friction velocity, m/s
    wstar: np.ndarray | None  # convective velocity scale, m/s
    obukhov_length: np.ndarray  # m
    mixing_height: np.ndarray  # m
    air_temperature: np.ndarray  # K
    stack_height: np.ndarray  # physical release height h_s, m
    plume_height: np.ndarray  # effective height H, m
    plume_rise: np.ndarray  # final rise dH, m
    receptor_height: float = 0.0  # z_r, m
    sigma_v: np.ndarray | None = None  # measured lateral turbulence, m/s (on-site sigma_v or sigma_theta u)


@dataclass(frozen=True)
class DispersionScheme:
    """A dispersion scheme: sigma coefficients per source, optional initial spread and lid treatment.

    ``sigma_parameters(inputs)`` returns :class:`~airshed.physics.dispersion.SigmaParameters`, or for a
    scheme whose convective vertical distribution has two components (skewed, bi-Gaussian) the pair
    ``(SigmaParameters, TwoComponentVertical)`` of :mod:`airshed.physics.convective` (the parameters then
    describe component 1);
    ``initial_spread(inputs)`` (m, or None) is added in quadrature to sigma_y0 and sigma_z0;
    ``convective_lid_penetration`` asks the plume core to apply AERMOD's partial penetration of the
    capping inversion in convective hours (when ``plume.lid_penetration`` is on).
    """

    description: str
    sigma_parameters: Callable[[SigmaInputs], disp.SigmaParameters | tuple[disp.SigmaParameters,
                                                                          TwoComponentVertical]]
    initial_spread: Callable[[SigmaInputs], np.ndarray] | None = None
    convective_lid_penetration: bool = False


def briggs_rural(inputs: SigmaInputs) -> disp.SigmaParameters:
    """Briggs (1973) open-country curves by Pasquill-Gifford class (:func:`~disp.briggs_sigma_parameters`)."""
    return disp.briggs_sigma_parameters(inputs.pg_class, urban=False)


def briggs_urban(inputs: SigmaInputs) -> disp.SigmaParameters:
    """Briggs (1973) urban curves (McElroy-Pooler) by Pasquill-Gifford class."""
    return disp.briggs_sigma_parameters(inputs.pg_class, urban=True)


def boundary_layer(inputs: SigmaInputs) -> tuple[disp.SigmaParameters, TwoComponentVertical]:
    """AERMOD-style scaling from u*, w*, L and h (:func:`~disp.boundary_layer_sigma_parameters`).

    Convective hours: AERMOD's bi-Gaussian vertical distribution (Weil et al. 1997), two components.

    w* from u*, L and h when the met has none (:func:`~disp.convective_velocity_from_obukhov`); no lid
    (h = inf) is taken as h = 10 km; the Brunt-Vaisala frequency above a stable plume from the
    Pasquill-Gifford class (ISC3's default dtheta/dz for E and F).
    """
    lid = inputs.mixing_height
    ws = (disp.convective_velocity_from_obukhov(inputs.ustar, inputs.obukhov_length, lid)
          if inputs.wstar is None else inputs.wstar)
    lid_for_sigma = np.where(np.isfinite(lid), lid, 1e4)
    s_par = rise.pasquill_stability_parameter(inputs.pg_class, inputs.air_temperature)
    return disp.boundary_layer_sigma_parameters(inputs.u, inputs.ustar, ws, inputs.obukhov_length,
                                                lid_for_sigma, inputs.stack_height, inputs.plume_height,
                                                np.sqrt(s_par), inputs.receptor_height, inputs.sigma_v)


def buoyancy_induced_spread(inputs: SigmaInputs) -> np.ndarray:
    """Buoyancy-induced dispersion of the final rise (:func:`~disp.buoyancy_induced_sigma`), m."""
    return disp.buoyancy_induced_sigma(inputs.plume_rise)


DISPERSION_SCHEMES: dict[str, DispersionScheme] = {
    "briggs-rural": DispersionScheme("Briggs (1973) rural curves by Pasquill-Gifford class", briggs_rural),
    "briggs-urban": DispersionScheme("Briggs (1973) urban curves by Pasquill-Gifford class", briggs_urban),
    "boundary-layer": DispersionScheme("from u*, w* and L, AERMOD-style (Cimorelli et al. 2005), "
                                       "bi-Gaussian convective PDF (Weil et al. 1997)",
                                       boundary_layer, buoyancy_induced_spread,
                                       convective_lid_penetration=True),
}
"""Registered schemes: ``plume.dispersion`` name -> scheme."""


def dispersion_scheme(option: str | DispersionScheme) -> DispersionScheme:
    """Return the scheme registered as ``option`` (a scheme is returned as is)."""
    if isinstance(option, DispersionScheme):
        return option
    if option not in DISPERSION_SCHEMES:
        raise AirshedInputError(f"no dispersion scheme {option!r}; registered schemes: "
                                f"{', '.join(DISPERSION_SCHEMES)}")
    return DISPERSION_SCHEMES[option]
