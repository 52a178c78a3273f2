"""Small run datasets for the cooperation tests, built in code (the run-file contract's variables only)."""

from __future__ import annotations

import numpy as np
import xarray as xr

PRECURSORS = ["SO2", "NOx", "PM2.5", "NH3", "NMVOC"]


def make_run(
    regions: list[str],
    sr: np.ndarray,
    emissions: np.ndarray,
    background: np.ndarray | float = 5.0,
    population: np.ndarray | None = None,
    days: float = 10.0,
) -> xr.Dataset:
    """Run file for ``regions`` + "outside": ``sr`` (rec, src incl. outside, prec), ``emissions`` (src, prec).

    ``pm25_total`` is the sum of the contributions plus ``background``; emissions are split over two
    sectors (a quarter and three quarters) to check that abatement acts on their sum.
    """
    sources = [*regions, "outside"]
    total = sr.sum(axis=(1, 2)) + background
    pop = np.full(len(regions), 1e6) if population is None else population
    emis = np.stack([0.25 * emissions, 0.75 * emissions], axis=1)
    start = np.datetime64("2017-12-01T00:00")
    end = start + np.timedelta64(int(round(days * 24)), "h")
    return xr.Dataset(
        {
            "pm25_source_receptor": (("receptor_region", "source_region", "precursor"), sr),
            "pm25_total": (("receptor_region",), total),
            "emission_total": (("source_region", "sector", "species"), emis),
            "population_region": (("receptor_region",), pop),
        },
        coords={
            "receptor_region": regions,
            "source_region": sources,
            "precursor": PRECURSORS,
            "sector": ["industry", "residential"],
            "species": PRECURSORS,
        },
        attrs={"time_coverage_start": str(start), "time_coverage_end": str(end)},
    )


def linear_curve(slope: float, max_fraction: float = 1.0) -> dict:
    """Policy cost curve with marginal cost ``m(a) = slope * a`` yuan per tonne (quadratic total cost)."""
    return {"max_fraction": max_fraction, "marginal_cost": [[0.0, 0.0], [max_fraction, slope * max_fraction]]}
