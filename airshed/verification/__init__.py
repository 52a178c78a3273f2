"""Verification: estimate emission changes from monitoring data and check claimed cuts.

``airshed verify RUN.nc --observations OBS --stations STATIONS.csv`` runs an analytical Bayesian inversion
of scaling factors of the run's emissions (region x sector x species x window) against station
observations, with its posterior covariance, averaging kernel, degrees of freedom for signal and
chi-square, and checks claimed cuts ("Hebei's SO2 fell 20 % this month") as consistent, contradicted or
not resolvable with the network. Layers, each its own module:

- :mod:`~airshed.verification.sensitivity`: the run's tagged concentrations at the stations (forward runs
  with ``[receptors] stations``; backward footprint runs folded with the inventory plug in unchanged);
- :mod:`~airshed.verification.state`: the state vector (scaling factors, background);
- :mod:`~airshed.verification.observing`: observations matched to the model, the observation operator
  (NO2 from NOx by ARM2) and the observation errors (instrument, representation, transport);
- :mod:`~airshed.verification.priors`: the prior errors (inventory uncertainty table, room for change,
  correlations);
- :mod:`~airshed.verification.inversion`: the analytical solution and its diagnostics;
- :mod:`~airshed.verification.claims`: claim checks and the stations that would resolve a claim;
- :mod:`~airshed.verification.verify`: the whole chain; :mod:`~airshed.verification.report`: tables, JSON;
- :mod:`~airshed.verification.synthetic`: synthetic observations for observing-system simulations.
"""

from airshed.verification.claims import Claim, ClaimResult
from airshed.verification.observing import ObservationErrors
from airshed.verification.priors import PriorErrors
from airshed.verification.verify import Verification, VerifySettings, verify

__all__ = ["Claim", "ClaimResult", "ObservationErrors", "PriorErrors", "Verification", "VerifySettings",
           "verify"]
