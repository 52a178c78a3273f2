"""Synthetic observations for observing-system simulations (OSSE): a "truth" run seen by monitors.

The truth is another run (e.g. a scenario run with known cuts and another particle seed: a different
realisation of the transport, so the truth is not made by the operator the inversion uses -- the "inverse
crime" of testing an inversion with its own forward model, Kaipio and Somersalo 2005). Its hourly
``station_concentration`` is turned into what a monitor would report:

    y = max(0, c + e_model + e_instrument + b)

``c`` the truth's model equivalent (NO2 through the ARM2 ratio of the truth's NOx), ``b`` a background per
species (what the inversion's background term must find), ``e_instrument`` independent normal errors of
the instrument model of :mod:`observing` (floor and relative part, on the true value), and ``e_model`` the
representation and transport errors the inversion assumes, drawn with the same model: 1 sigma
``sqrt((model_fraction c)^2 + s^2)`` with ``s`` the spread of the truth's field over the four cells around
the station (:func:`~airshed.verification.sensitivity.neighbourhood_spread`; for NO2 through the ratio's
slope), correlated in time at each station as an AR(1) process with correlation ``exp(-1 h / tau)`` from
one hour to the next (i.e. ``exp(-|dt| / tau)``, tau = ``correlation_hours``), independent between
stations and species. Negative draws are reported as 0, as a monitor would. The generator is seeded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from airshed.errors import DataError
from airshed.inputs.observations import Observations
from airshed.verification.observing import INSTRUMENT_FLOOR_UG_M3, INSTRUMENT_RELATIVE, OBSERVABLES
from airshed.verification.sensitivity import neighbourhood_spread


def true_station_values(ds: xr.Dataset, species: tuple[str, ...]) -> dict[str, np.ndarray]:
    """(T, N) hourly model equivalent of each observed species from a run's ``station_concentration``."""
    if "station_concentration" not in ds.variables:
        raise DataError("truth run: no station_concentration (run it with [receptors] stations)")
    sc = ds["station_concentration"].transpose("time", "station", "species")
    out = {}
    for o in species:
        eq = OBSERVABLES[o]
        value = sc.sel(species=eq.output).values
        out[o] = eq.nonlinear[0](value) if eq.nonlinear is not None else value
    return out


def true_station_spread(ds: xr.Dataset, species: tuple[str, ...]) -> dict[str, np.ndarray]:
    """(T, N) spread of each observed species' model equivalent over the cells around each station."""
    spread = neighbourhood_spread(ds, ds["station_lon"].values, ds["station_lat"].values,
                                  ds["station"].values)
    names = [str(s) for s in ds["species"].values]
    sc = ds["station_concentration"].transpose("time", "station", "species")
    out = {}
    for o in species:
        eq = OBSERVABLES[o]
        s = spread[:, :, names.index(eq.output)]
        out[o] = s * eq.nonlinear[1](sc.sel(species=eq.output).values) if eq.nonlinear is not None else s
    return out


def ar1_noise(rng: np.random.Generator, n_hours: int, n_series: int, correlation_hours: float) -> np.ndarray:
    """(n_hours, n_series) unit-variance AR(1) noise with lag-1 correlation exp(-1/tau) (stationary start)."""
    phi = float(np.exp(-1.0 / correlation_hours)) if correlation_hours > 0 else 0.0
    out = np.empty((n_hours, n_series))
    out[0] = rng.standard_normal(n_series)
    scale = np.sqrt(1.0 - phi * phi)
    for t in range(1, n_hours):
        out[t] = phi * out[t - 1] + scale * rng.standard_normal(n_series)
    return out


def synthetic_observations(truth: xr.Dataset, species: tuple[str, ...] = ("SO2", "NO2", "PM2.5"),
                           background: dict[str, float] | None = None, model_fraction: float = 0.3,
                           correlation_hours: float = 12.0, seed: int = 0,
                           transport_sigma: dict[str, np.ndarray] | None = None,
                           station_spread: dict[str, np.ndarray] | None = None) -> Observations:
    """Observations of a truth run at its stations (module docstring), in the long table of the readers.

    ``transport_sigma``: per species, the (T, N) transport error, 1 sigma in ug m-3, that replaces
    ``model_fraction`` times the true value (e.g. a meteorological ensemble's spread at the stations,
    :func:`airshed.verification.transport_error.run_file_transport_spread`). ``station_spread``: the
    result of :func:`true_station_spread` for this truth, when already computed (it takes a while).
    """
    background = background or {}
    rng = np.random.default_rng(seed)
    values = true_station_values(truth, species)
    spread = station_spread if station_spread is not None else true_station_spread(truth, species)
    times = np.asarray(truth["time"].values).astype("datetime64[ns]")
    stations = [str(s) for s in truth["station"].values]
    frames = []
    for o in species:
        c = values[o]
        n_hours, n_stations = c.shape
        transport = transport_sigma[o] if transport_sigma is not None else model_fraction * c
        model = np.sqrt(transport ** 2 + spread[o] ** 2)
        inst = np.sqrt(INSTRUMENT_FLOOR_UG_M3[o] ** 2 + (INSTRUMENT_RELATIVE[o] * c) ** 2)
        y = (c + model * ar1_noise(rng, n_hours, n_stations, correlation_hours)
             + inst * rng.standard_normal(c.shape) + background.get(o, 0.0))
        y = np.maximum(y, 0.0)
        frames.append(pd.DataFrame({"station": np.tile(stations, n_hours),
                                    "time": np.repeat(times, n_stations), "species": o, "value": y.ravel()}))
    frame = pd.concat(frames, ignore_index=True).sort_values(["station", "species", "time"], kind="stable")
    return Observations(frame.reset_index(drop=True))
