"""Modelled concentrations at the stations split by tag: the raw material of the Jacobian.

The inversion needs, for every station and hour, the concentration each tag (source region x sector)
causes there, per output species. A run file holds it as

``station_contribution(time, station, source_region, sector, species)``, ug m-3
    written by a forward run with ``[receptors] stations`` (the hourly tagged fields sampled at the
    stations, see :func:`airshed.pipeline.reduction.sample_stations`);
``emission_total(source_region, sector, emitted_species)``, t over the run;
``station_lon`` / ``station_lat`` on the ``station`` axis, and the hourly ``concentration`` fields (for
the representation error, :func:`neighbourhood_spread`).

Any dataset with these variables is accepted: a backward (footprint) run folded with the inventory gives
the same ``station_contribution`` (issue 17) and plugs in here unchanged when its averaging period is one
hour (``[footprint] averaging_h = 1``); longer means are refused, as observations are matched hour by
hour. Because airshed's chemistry is linear, the contribution of a tag scales exactly with that tag's
emissions: scaling factor x on the emissions of (region, sector, species) multiplies the contributions of
that tag to the output species made from that emitted species (sulfate from SO2, nitrate from NOx,
primary PM2.5 from PM2.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from airshed.errors import DataError
from airshed.grids.cf import grid_from_dataset
from airshed.grids.sampling import point_sampler

REQUIRED = {
    "station_contribution": ("time", "station", "source_region", "sector", "species"),
    "emission_total": ("source_region", "sector", "emitted_species"),
}
"""Variables a run file needs for ``airshed verify`` and their dimensions."""


@dataclass(frozen=True)
class StationSensitivity:
    """Tagged hourly concentrations at stations, as plain arrays.

    Attributes
    ----------
    times
        (T,) end of each hour, datetime64[ns] (UTC).
    stations, station_lon, station_lat
        Station ids and positions (degrees) of the run's station list.
    regions, sectors, species, emitted_species
        Names along the axes (source regions with "outside"; output species; emitted species).
    contribution
        (T, N, R, K, S) ug m-3: concentration at each station and hour caused by each tag.
    emission_total
        (R, K, E) tonnes emitted over the run by each tag.
    spread
        (T, N, S) ug m-3 or None: spread of the concentration field over the cells around each station
        (:func:`neighbourhood_spread`), the resolved part of the representation error.
    region_xy, region_area
        (R, 2) centroid of each source region on the grid's projection, m, and (R,) its area in the domain
        in cells; None when the file has no ``region_fraction``.
    origin
        Where it came from (for messages).
    core
        The core that made the run (run-file attribute ``core``), None when not said.
    """

    times: np.ndarray
    stations: tuple[str, ...]
    station_lon: np.ndarray
    station_lat: np.ndarray
    regions: tuple[str, ...]
    sectors: tuple[str, ...]
    species: tuple[str, ...]
    emitted_species: tuple[str, ...]
    contribution: np.ndarray
    emission_total: np.ndarray
    spread: np.ndarray | None
    region_xy: np.ndarray | None
    region_area: np.ndarray | None
    origin: str
    core: str | None = None

    @property
    def run_hours(self) -> int:
        """Hours of the run."""
        return int(self.times.size)

    def output(self, name: str) -> np.ndarray:
        """(T, N, R, K) contributions to one output species."""
        if name not in self.species:
            raise DataError(f"{self.origin}: the run has no output species {name!r} "
                            f"({', '.join(self.species)})")
        return self.contribution[..., self.species.index(name)]


def neighbourhood_spread(ds: xr.Dataset, lon: np.ndarray, lat: np.ndarray, ids) -> np.ndarray:
    """Spread (ug m-3) of the hourly concentration over the four cell centres around each station.

    The bilinear-weighted standard deviation ``sqrt(sum_k w_k (c_k - sum_k w_k c_k)^2)`` of the four cells
    surrounding the station (weights as in :mod:`airshed.grids.sampling`): how much the modelled field
    changes across the cells a station straddles. It measures the resolved gradient at the station, so it
    is a lower bound of the representation error of a point monitor in a grid cell (Janjic et al. 2018,
    Q. J. R. Meteorol. Soc. 144:1257, on representation error from unresolved scales).

    Returns
    -------
    numpy.ndarray
        (T, N, S) in the order of ``ds.species``.
    """
    grid = grid_from_dataset(ds)
    sampler = point_sampler(grid, list(ids), list(ids), lon, lat, "bilinear", source="run file stations")
    conc = ds["concentration"].transpose("time", "species", "y", "x")
    n_time = conc.sizes["time"]
    values = np.empty((n_time, conc.sizes["species"], len(sampler), 4))
    step = 24  # a day of fields at a time: whole reads are far faster than point indexing in the file
    for t0 in range(0, n_time, step):
        block = conc.isel(time=slice(t0, t0 + step)).values
        values[t0:t0 + step] = block.reshape(*block.shape[:2], -1)[:, :, sampler.cells]  # (t, S, N, 4)
    mean = np.einsum("tsnk,nk->tsn", values, sampler.weights)
    var = np.einsum("tsnk,nk->tsn", (values - mean[..., None]) ** 2, sampler.weights)
    return np.sqrt(np.maximum(var, 0.0)).transpose(0, 2, 1)


def station_sensitivity(ds: xr.Dataset, origin: str = "run file", spread: bool = True) -> StationSensitivity:
    """Read the station sensitivities of a run (see the module docstring).

    Raises
    ------
    DataError
        The file has no ``station_contribution`` (a run without ``[receptors] stations``) or lacks a
        variable or dimension of the contract.
    """
    for name, dims in REQUIRED.items():
        if name not in ds.variables:
            hint = (" (run the model with `[receptors] stations = \"stations.csv\"` in the config, so that "
                    "the run samples the stations hour by hour)" if name == "station_contribution" else "")
            raise DataError(f"{origin}: no variable {name!r}{hint}")
        if set(ds[name].dims) != set(dims):
            raise DataError(f"{origin}: {name} has dimensions {ds[name].dims}, expected {dims}")
    sc = ds["station_contribution"].transpose(*REQUIRED["station_contribution"])
    em = ds["emission_total"].transpose(*REQUIRED["emission_total"])
    regions = tuple(map(str, sc["source_region"].values))
    sectors = tuple(map(str, sc["sector"].values))
    if (tuple(map(str, em["source_region"].values)) != regions
            or tuple(map(str, em["sector"].values)) != sectors):
        raise DataError(f"{origin}: emission_total and station_contribution disagree on regions or sectors")
    times = np.asarray(sc["time"].values).astype("datetime64[ns]")
    hours = np.diff(times) / np.timedelta64(1, "h")
    if "time_bnds" in ds.variables:
        bounds = np.asarray(ds["time_bnds"].values).astype("datetime64[ns]")
        hours = (bounds[:, 1] - bounds[:, 0]) / np.timedelta64(1, "h")
    if hours.size and not np.all(hours == 1.0):
        raise DataError(f"{origin}: station_contribution holds {float(np.max(hours)):g}-h means, but the "
                        "observations are matched hour by hour: write hourly values (lagrangian."
                        "output_interval_h = 1, or footprint.averaging_h = 1 for `airshed footprint`)")
    values = sc.values
    if not np.isfinite(values).all():
        raise DataError(f"{origin}: station_contribution has missing values (an incomplete run?)")
    ids = tuple(map(str, sc["station"].values))
    lon = np.asarray(ds["station_lon"].values if "station_lon" in ds.variables else np.full(len(ids), np.nan))
    lat = np.asarray(ds["station_lat"].values if "station_lat" in ds.variables else np.full(len(ids), np.nan))
    spread_values = None
    if spread and "concentration" in ds.variables and np.isfinite(lon).all():
        spread_values = neighbourhood_spread(ds, lon, lat, ids)
    region_xy = region_area = None
    if {"region_fraction", "x", "y"} <= set(ds.variables):
        frac = ds["region_fraction"].transpose("source_region", "y", "x")
        frac = frac.sel(source_region=list(regions)).values
        region_area = frac.sum(axis=(1, 2))
        yy, xx = np.meshgrid(ds["y"].values, ds["x"].values, indexing="ij")
        with np.errstate(invalid="ignore", divide="ignore"):
            region_xy = np.stack([(frac * xx).sum(axis=(1, 2)), (frac * yy).sum(axis=(1, 2))], axis=1) \
                / region_area[:, None]
    return StationSensitivity(
        times=times,
        stations=ids, station_lon=lon, station_lat=lat, regions=regions, sectors=sectors,
        species=tuple(map(str, sc["species"].values)),
        emitted_species=tuple(map(str, em["emitted_species"].values)),
        contribution=values, emission_total=np.asarray(em.values, dtype=float), spread=spread_values,
        region_xy=region_xy, region_area=region_area, origin=origin,
        core=str(ds.attrs["core"]) if "core" in ds.attrs else None,
    )
