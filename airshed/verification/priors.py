"""Prior error covariance of the state: inventory uncertainty, room for change, correlations.

The prior of an emission scaling factor is 1 (the inventory). Its error has two parts, added:

**Inventory error** -- how wrong the inventory's level is. 1 sigma from a table of 95 % intervals (default
``airshed/data/inventory_uncertainty.csv``, read by
:mod:`airshed.inputs.inventory_uncertainty`: Zhao et al. 2011, Atmos. Chem. Phys. 11:2295, China
2005: SO2 -14/+13 %, NOx -13/+37 %, PM2.5 -17/+54 %), the asymmetric interval taken as a normal of
sigma = (upper - lower) / (2 x 1.96) (the analytical inversion needs a Gaussian state): SO2 6.9 %, NOx
12.8 %, PM2.5 18.1 %. An inventory error is a bias of the level: it is the same in every time window
(fully correlated between windows).

**Change** -- how far the emissions of one window may have moved from the inventory (a cut being
verified, a trend since the inventory year). Default 1 sigma 50 %, the prior error of the scaling factors
of the Integrated Methane Inversion (Varon et al. 2022, Geosci. Model Dev. 15:5787; ``PriorError: 0.5``),
and of the size of the joint-control cuts of the Olympics, APEC and the 2015 parade (30-60 %,
``airshed/data/policy/event_emission_cuts.csv``): a prior much tighter than the claimed change would
pre-judge the claim. Independent between windows unless ``correlation_days`` is set (temporal correlation
``exp(-|dt| / tau)``, as FLEXINVERT's prior fluxes, Thompson and Stohl 2014, Geosci. Model Dev. 7:2223).

With one window the two add in quadrature; with several, the inventory part cancels from the change
between windows, which is why a claim can be checked against a reference window (:mod:`claims`).
Regions may be correlated (same sector, species and window) with ``exp(-d / L)``, d the distance of the
region centroids, L = ``correlation_km`` (FLEXINVERT's spatial correlation; default 0: independent).

Background elements: 1 sigma = ``background_fraction`` (default 1) x the mean observation of the species,
prior mean 0: the background is left almost free (it may be anything up to the level observed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from airshed.errors import AirshedInputError
from airshed.inputs.inventory_uncertainty import read_inventory_intervals
from airshed.verification.sensitivity import StationSensitivity
from airshed.verification.state import ALL, StateVector

Z95 = 1.959963984540054
"""Standard normal quantile of a two-sided 95 % interval."""

def read_prior_error_table(path: str | Path | None = None) -> pd.DataFrame:
    """Read an inventory-uncertainty table (None: the shipped one) and add each row's 1 sigma.

    The table and its checks are those of
    :func:`airshed.inputs.inventory_uncertainty.read_inventory_intervals`
    (columns ``sector``, ``species``, ``lower_percent``, ``upper_percent``, optional ``region``).

    Returns
    -------
    pandas.DataFrame
        The rows with ``sigma`` (1 sigma of the scaling factor, dimensionless) added.
    """
    table = read_inventory_intervals("builtin" if path is None else path).rows
    table["sigma"] = (table["upper_percent"] - table["lower_percent"]) / (2.0 * Z95) / 100.0
    return table


@dataclass(frozen=True)
class PriorErrors:
    """Settings of the prior error (see the module docstring).

    Attributes
    ----------
    table
        Inventory 95 % intervals (:func:`read_prior_error_table`); None: the shipped Zhao et al. table.
    inventory_percent
        Instead of the table, one inventory 1 sigma for every element, percent.
    change_percent
        1 sigma of the change of the emissions in a window, percent (default 50).
    correlation_km
        e-folding distance of the correlation between regions, km (0: independent).
    correlation_days
        e-folding time of the correlation of the change between windows, days (0: independent).
    background_fraction
        1 sigma of a background element as a fraction of the species' mean observation.
    """

    table: pd.DataFrame | None = None
    inventory_percent: float | None = None
    change_percent: float = 50.0
    correlation_km: float = 0.0
    correlation_days: float = 0.0
    background_fraction: float = 1.0

    def __post_init__(self) -> None:
        for name in ("change_percent", "correlation_km", "correlation_days", "background_fraction"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise AirshedInputError(f"prior error setting {name} = {value}: expected a finite number "
                                        ">= 0")
        if self.inventory_percent is not None and not (math.isfinite(self.inventory_percent)
                                                       and self.inventory_percent > 0):
            raise AirshedInputError(f"--prior-error {self.inventory_percent}: expected a percentage > 0")


def inventory_sigma(state: StateVector, settings: PriorErrors) -> np.ndarray:
    """(n,) inventory 1 sigma of each emission element (0 for background), from the table.

    The most specific row wins: region and sector named, then sector, then region, then ``all``.
    """
    out = np.zeros(state.n)
    if settings.inventory_percent is not None:
        out[state.is_emission] = settings.inventory_percent / 100.0
        return out
    table = settings.table if settings.table is not None else read_prior_error_table()
    for j in np.flatnonzero(state.is_emission):
        sp, sector, region = state.species[j], state.sector[j], state.region[j]
        rows = table[table["species"] == sp]
        if rows.empty:
            raise AirshedInputError(f"prior-error table has no row for {sp} (species in the table: "
                                    f"{', '.join(sorted(set(table['species'])))})")
        for want_region, want_sector in ((region, sector), (ALL, sector), (region, ALL), (ALL, ALL)):
            hit = rows[(rows["region"] == want_region) & (rows["sector"] == want_sector)]
            if not hit.empty:
                out[j] = float(hit["sigma"].iloc[0])
                break
        else:
            raise AirshedInputError(f"prior-error table has no row for {sp}, sector {sector} (nor 'all')")
    return out


def region_correlation(state: StateVector, sens: StationSensitivity, km: float) -> np.ndarray:
    """(n, n) correlation ``exp(-d / L)`` of the regions of each pair of elements (1 for the same region).

    d is the distance between the area-weighted centroids of the region groups on the grid's projection;
    ``outside`` (no meaningful centroid) correlates with nothing but itself. ``km`` <= 0: 1 for the same
    region, 0 otherwise.
    """
    same = (state.region[:, None] == state.region[None, :]).astype(float)
    if km <= 0 or sens.region_xy is None:
        return same
    centre = {}
    for g, members in state.members.items():
        idx = [sens.regions.index(m) for m in members if m != "outside"]
        if idx:
            w = sens.region_area[idx]
            centre[g] = (sens.region_xy[idx] * w[:, None]).sum(axis=0) / w.sum()
    xy = np.array([centre.get(str(r), (np.nan, np.nan)) for r in state.region])
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1]) / 1000.0
    return np.where(np.isfinite(d), np.exp(-np.nan_to_num(d) / km), same)


def prior_covariance(state: StateVector, sens: StationSensitivity, settings: PriorErrors,
                     observed_means: dict[str, float]) -> np.ndarray:
    """(n, n) prior error covariance of the state (module docstring).

    Emission elements: ``[same sector and species] x R(regions) x (s_inv s_inv' + T(windows) s_chg s_chg')``
    with R the region correlation and T = 1 for the same window, ``exp(-|dt|/tau)`` between windows
    (0 when ``correlation_days`` is 0). Background elements: independent.
    """
    emis = state.is_emission
    inv = inventory_sigma(state, settings)
    change = np.where(emis, settings.change_percent / 100.0, 0.0)
    same_sector = state.sector[:, None] == state.sector[None, :]
    same_species = state.species[:, None] == state.species[None, :]
    kin = (same_sector & same_species & emis[:, None] & emis[None, :]).astype(float)
    rho = kin * region_correlation(state, sens, settings.correlation_km)
    if settings.correlation_days > 0:
        mid = state.window_bounds.astype("datetime64[s]").astype(np.int64).mean(axis=1) / 86400.0
        temporal = np.exp(-np.abs(mid[state.window][:, None] - mid[state.window][None, :])
                          / settings.correlation_days)
    else:
        temporal = (state.window[:, None] == state.window[None, :]).astype(float)
    sa = rho * (np.outer(inv, inv) + temporal * np.outer(change, change))
    for j in np.flatnonzero(~emis):
        sigma = settings.background_fraction * max(observed_means.get(str(state.species[j]), 0.0), 1e-3)
        sa[j, j] = sigma ** 2
    return sa
