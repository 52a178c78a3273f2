"""The transport error of the model equivalent: from an ensemble when there is one, else a default.

The transport part of the observation error (:mod:`observing`) is taken, in order of preference, from

1. **member run files** (``--transport-ensemble``): the standard deviation over members of each station's
   hourly model equivalent (:func:`airshed.verification.verify.ensemble_spread`), the direct measure;
2. **the run file's own ensemble part**: the meteorology part of ``source_receptor_variance`` written by
   the uncertainty work (:mod:`airshed.uncertainty.ensemble`; NaN when no meteorology members were run).
   It is a variance of period-mean, population-weighted concentrations of each receptor region caused by
   each source region, so it is brought to an hourly relative error at a station in two documented
   steps: (a) the spread of the regional total is bounded by the sum of the sources' standard deviations
   (the triangle inequality: meteorological errors of different sources at one receptor may be of any
   correlation, so the bound is the safe side), relative to the regional total; (b) a period mean of
   errors correlated as ``exp(-|dt| / tau)`` has ``mean(rho)`` times the hourly variance (the same
   correlation model the inversion uses), so the hourly relative error is the period one over
   ``sqrt(mean(rho))``. A station takes the error of the receptor region it lies in; a station in no
   receptor region (or a run without region masks) takes the largest relative error of all regions.
   A regional mean is smoother than a point, so this is still a lower bound of a station's transport
   error: the member runs of 1. are better;
3. **the default** ``transport_fraction`` (30 % of the modelled hourly value, an airshed choice).

Which one was used is said in the report's notes. The inventory part of the variance is never used here:
the inventory's uncertainty is the prior's (:mod:`priors`), not the observations'.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from airshed.grids.cf import grid_from_dataset
from airshed.grids.sampling import point_sampler
from airshed.verification.observing import OBSERVABLES
from airshed.verification.sensitivity import StationSensitivity

__all__ = ["METEOROLOGY", "run_file_transport_spread", "station_receptor_region"]

METEOROLOGY = "meteorology"
"""The ``uncertainty_source`` of the meteorological (transport) part of the ensemble variance."""


def mean_correlation(hours: int, correlation_hours: float) -> float:
    """Mean of ``exp(-|i - j| / tau)`` over all pairs of ``hours`` hours (1/hours when tau is 0)."""
    lag = np.abs(np.subtract.outer(np.arange(hours), np.arange(hours))).astype(float)
    if correlation_hours <= 0:
        return 1.0 / hours
    return float(np.exp(-lag / correlation_hours).mean())


def station_receptor_region(ds: xr.Dataset, sens: StationSensitivity, receptors: list[str]) -> np.ndarray:
    """(N,) index into ``receptors`` of the region each station lies in (-1: none, or no masks in the file).

    The region whose ``region_fraction`` at the station (bilinear over the four cells around it) is
    largest, when that fraction is at least one half.
    """
    n = len(sens.stations)
    if "region_fraction" not in ds.variables or not np.isfinite(sens.station_lon).all():
        return np.full(n, -1)
    grid = grid_from_dataset(ds)
    sampler = point_sampler(grid, list(sens.stations), list(sens.stations), sens.station_lon,
                            sens.station_lat, "bilinear", source="run file stations")
    names = [str(r) for r in ds["region_fraction"]["source_region"].values]
    frac = ds["region_fraction"].transpose("source_region", "y", "x").values.reshape(len(names), -1)
    out = np.full(n, -1)
    for k in range(n):
        at = frac[:, sampler.cells[k]] @ sampler.weights[k]
        best = int(np.argmax(at))
        if at[best] >= 0.5 and names[best] in receptors:
            out[k] = receptors.index(names[best])
    return out


def run_file_transport_spread(ds: xr.Dataset, sens: StationSensitivity, species: tuple[str, ...],
                              correlation_hours: float) -> tuple[np.ndarray | None, str | None]:
    """(T, N, O) hourly transport error at the stations from the run file's ensemble part, and a note.

    Returns ``(None, None)`` when the file carries no finite meteorology variance for the species
    (module docstring, item 2).
    """
    if not {"source_receptor_variance", "source_receptor"} <= set(ds.variables):
        return None, None
    var = ds["source_receptor_variance"]
    if METEOROLOGY not in [str(s) for s in var["uncertainty_source"].values]:
        return None, None
    var = var.sel(uncertainty_source=METEOROLOGY).transpose("receptor_region", "source_region", "species")
    mean = ds["source_receptor"].transpose("receptor_region", "source_region", "species")
    receptors = [str(r) for r in mean["receptor_region"].values]
    names = [str(s) for s in mean["species"].values]
    outputs = [OBSERVABLES[o].output for o in species]
    if any(o not in names for o in outputs):
        return None, None
    var = var.sel(species=outputs).values
    if not np.isfinite(var).all():
        return None, None  # meteorology not sampled (NaN): no ensemble to use
    total = mean.sel(species=outputs).values.sum(axis=1)  # (receptor, O)
    sd = np.sqrt(np.maximum(var, 0.0)).sum(axis=1)
    period = np.divide(sd, total, out=np.zeros_like(sd), where=total > 0)
    hourly = period / np.sqrt(mean_correlation(sens.run_hours, correlation_hours))
    region = station_receptor_region(ds, sens, receptors)
    per_station = np.where(region[:, None] >= 0, hourly[np.maximum(region, 0)], hourly.max(axis=0))  # (N, O)
    spread = np.empty((sens.run_hours, len(sens.stations), len(species)))
    for i, o in enumerate(species):
        eq = OBSERVABLES[o]
        c = sens.output(eq.output).sum(axis=(2, 3))  # (T, N) the run's hourly model total
        slope = eq.nonlinear[1](c) if eq.nonlinear is not None else 1.0
        spread[:, :, i] = per_station[:, i] * c * slope
    summary = ", ".join(f"{o} {100 * np.median(per_station[:, i]):.0f} %" for i, o in enumerate(species))
    note = ("transport error from the run file's meteorological ensemble variance (median hourly 1 sigma: "
            f"{summary}; a regional-mean bound, see airshed.verification.transport_error)")
    return spread, note
