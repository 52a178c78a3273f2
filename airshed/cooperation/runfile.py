"""The run tables the cooperation analysis reads, checked against the input contract.

A run file (written by ``airshed run``) holds

``pm25_source_receptor(receptor_region, source_region, emitted_species)``, ug m-3
    Population-weighted period-mean PM2.5 in each receptor region caused by each source region's
    emissions of each precursor. The model is linear: abating a fraction ``a`` of precursor ``p`` in
    region ``r`` changes receptor PM2.5 by ``-a * SR[rec, r, p]``.
``pm25_total(receptor_region)``, ug m-3
    Total period-mean PM2.5, including background and the ``outside`` source region.
``emission_total(source_region, sector, emitted_species)``, tonnes over the run period.
``population_region(receptor_region)``, persons.
attributes ``time_coverage_start`` / ``time_coverage_end`` (ACDD; ``period_start`` / ``period_end`` and the
run file's ``start`` / ``end`` are also accepted), ISO 8601 strings; needed only for
``cost_basis = "annual"``.

The precursor dimension may also be called ``precursor`` (in ``pm25_source_receptor``) or ``species`` (in
``emission_total``), the names of tables written before the run-file layout settled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import xarray as xr

from airshed.errors import DataError

_PERIOD_ATTRS = (
    ("time_coverage_start", "time_coverage_end"),
    ("period_start", "period_end"),
    ("start", "end"),
)
#: Accepted names of the precursor dimension, first the run-file contract's, then the older one.
_SR_PRECURSOR_DIMS = ("emitted_species", "precursor")
_EMISSION_PRECURSOR_DIMS = ("emitted_species", "species")


@dataclass(frozen=True)
class RunTables:
    """Plain-array view of a run's source-receptor tables (see module docstring for units)."""

    receptors: list[str]
    sources: list[str]
    precursors: list[str]
    source_receptor: np.ndarray  # (receptor, source, precursor), ug m-3
    pm25_total: np.ndarray  # (receptor,), ug m-3
    emissions: np.ndarray  # (source, precursor), tonnes per run period, summed over sectors
    population: np.ndarray  # (receptor,), persons
    period_days: float | None  # run length in days, None when the file does not say


def _require(
    ds: xr.Dataset, name: str, dims: tuple[str, ...], origin: str, last_dim: tuple[str, ...] = ()
) -> xr.DataArray:
    """Return the checked variable ``name`` transposed to ``dims``.

    With ``last_dim`` given, the last dimension may have any of those names; it is renamed to ``dims[-1]``.
    """
    if name not in ds:
        raise DataError(f"{origin}: variable {name!r} missing; expected {name}{dims}")
    da = ds[name]
    if last_dim:
        found = [d for d in last_dim if d in da.dims]
        if found:
            da = da.rename({found[0]: dims[-1]}) if found[0] != dims[-1] else da
    if set(da.dims) != set(dims):
        expected = f"{dims}" if not last_dim else f"{dims[:-1] + (' or '.join(last_dim),)}"
        raise DataError(f"{origin}: variable {name!r} has dims {da.dims}; expected {expected}")
    values = da.values
    if not np.all(np.isfinite(values)):
        raise DataError(f"{origin}: variable {name!r} has non-finite values")
    return da.transpose(*dims)


def run_period_days(ds: xr.Dataset, origin: str = "run") -> float | None:
    """Length of the run period in days from the file's start/end attributes, or None if absent."""
    for start_key, end_key in _PERIOD_ATTRS:
        if start_key in ds.attrs and end_key in ds.attrs:
            try:
                start = datetime.fromisoformat(str(ds.attrs[start_key]))
                end = datetime.fromisoformat(str(ds.attrs[end_key]))
            except ValueError as exc:
                raise DataError(
                    f"{origin}: attributes {start_key}/{end_key} are not ISO 8601: {exc}"
                ) from None
            days = (end - start).total_seconds() / 86400.0
            if days <= 0.0:
                raise DataError(f"{origin}: {end_key} ({end}) is not after {start_key} ({start})")
            return days
    return None


def run_tables(ds: xr.Dataset, origin: str = "run") -> RunTables:
    """Check a run dataset against the input contract and return its tables as arrays.

    Raises
    ------
    DataError
        Naming the variable, dimension or coordinate that is missing or inconsistent.
    """
    sr = _require(ds, "pm25_source_receptor", ("receptor_region", "source_region", "precursor"), origin,
                  _SR_PRECURSOR_DIMS)
    total = _require(ds, "pm25_total", ("receptor_region",), origin)
    emis = _require(ds, "emission_total", ("source_region", "sector", "species"), origin,
                    _EMISSION_PRECURSOR_DIMS)
    pop = _require(ds, "population_region", ("receptor_region",), origin)
    receptors = [str(v) for v in sr["receptor_region"].values]
    sources = [str(v) for v in sr["source_region"].values]
    precursors = [str(v) for v in sr["precursor"].values]
    species = [str(v) for v in emis["species"].values]
    missing = [p for p in precursors if p not in species]
    if missing:
        raise DataError(
            f"{origin}: emission_total has no species {missing} for precursors of pm25_source_receptor"
        )
    emis_sources = [str(v) for v in emis["source_region"].values]
    if any(s not in emis_sources for s in sources):
        raise DataError(
            f"{origin}: emission_total source_region {emis_sources} lacks some of "
            f"pm25_source_receptor's {sources}"
        )
    emissions = emis.sum("sector").sel(source_region=sources, species=precursors).values.astype(float)
    if np.any(emissions < 0.0):
        raise DataError(f"{origin}: emission_total has negative tonnes")
    population = pop.sel(receptor_region=receptors).values.astype(float)
    if np.any(population < 0.0):
        raise DataError(f"{origin}: population_region has negative values")
    return RunTables(
        receptors=receptors,
        sources=sources,
        precursors=precursors,
        source_receptor=sr.values.astype(float),
        pm25_total=total.sel(receptor_region=receptors).values.astype(float),
        emissions=emissions,
        population=population,
        period_days=run_period_days(ds, origin),
    )
