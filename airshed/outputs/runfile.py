"""The run file: assembling a run's arrays into one CF-1.8 dataset.

The layout is documented in README.md ("The run file"). Contributions are stored compactly: the full
``contribution(source_region, sector, species, y, x)`` field as a period mean, and the hourly split by tag
as receptor-region means ``receptor_contribution(time, receptor_region, source_region, sector, species)``.
Both sum over their tags to the matching concentration (period-mean field, receptor-region series). A full
hourly field per tag (source regions x sectors x hours x species x cells) would be ~13 GB for the default
case, while these two hold everything the tables, scenarios and maps need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import xarray as xr

from airshed.errors import AirshedInputError
from airshed.grids.cf import GRID_VARIABLE_ATTRS, grid_to_dataset
from airshed.grids.grid import Grid
from airshed.physics.mechanism import Mechanism
from airshed.version import __version__

BUDGET_TERMS: tuple[str, ...] = ("emitted", "produced", "airborne", "dry_deposited", "wet_deposited",
                                 "converted", "decayed", "left_domain", "residual")
"""Particle mass budget terms: emitted + produced = airborne + dry + wet + converted + decayed + left_domain
(+ residual, the rounding left over). ``produced`` is secondary mass formed from precursors and
``converted`` the precursor mass lost to it."""


@dataclass
class RunSummary:
    """What a run computed over the whole period, as plain arrays (float64 unless noted).

    The hourly variables (:data:`HOURLY_VARIABLES`) are written hour by hour while the run goes
    (:class:`~airshed.outputs.netcdf.IncrementalNetCDF`); these are the rest. Shapes use S output species,
    R source regions (incl. "outside"), Q receptor regions, K sectors, E emitted species.
    """

    contribution: np.ndarray  # (R, K, S, ny, nx) ug m-3, period mean
    source_receptor: np.ndarray  # (Q, R, S) population-weighted
    source_receptor_area: np.ndarray  # (Q, R, S)
    metrics: dict[str, np.ndarray]  # each (Q, S): transboundary_share, import/export...
    pm25_source_receptor: np.ndarray  # (Q, R, E)
    emission_total: np.ndarray  # (R, K, E) tonnes over the run
    population_region: np.ndarray  # (Q,)
    mass_budget: np.ndarray | None = None  # (len(BUDGET_TERMS), n_tracers) kg
    extra: dict[str, xr.DataArray] = field(default_factory=dict)


PM25_STANDARD_NAME = "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"
_GRID_ATTRS = dict(GRID_VARIABLE_ATTRS, coordinates="lat lon")

HOURLY_VARIABLES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "concentration": (("time", "species", "y", "x"),
                      dict(units="ug m-3", long_name="hourly mean near-surface mass concentration",
                           cell_methods="time: mean", **_GRID_ATTRS)),
    "pm25": (("time", "y", "x"),
             dict(units="ug m-3", standard_name=PM25_STANDARD_NAME,
                  long_name="hourly mean near-surface PM2.5 (primary + secondary)", cell_methods="time: mean",
                  **_GRID_ATTRS)),
    "receptor_concentration": (("time", "receptor_region", "species"),
                               dict(units="ug m-3", long_name="population-weighted hourly mean concentration "
                                    "in each receptor region")),
    "receptor_contribution": (("time", "receptor_region", "source_region", "sector", "species"),
                              dict(units="ug m-3", long_name="population-weighted hourly mean concentration "
                                   "in each receptor region caused by each tag")),
}
"""Variables along time, written hour by hour during a run: dimensions and attributes."""

STATION_VARIABLES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "station_concentration": (("time", "station", "species"),
                              dict(units="ug m-3", long_name="hourly mean near-surface concentration "
                                   "sampled at each station", coordinates="station_lon station_lat")),
    "station_contribution": (("time", "station", "source_region", "sector", "species"),
                             dict(units="ug m-3", long_name="hourly mean near-surface concentration sampled "
                                  "at each station caused by each tag",
                                  coordinates="station_lon station_lat")),
}
"""Hourly variables of a run with ``[receptors] stations``: the fields sampled at the stations."""


def with_stations(skeleton: xr.Dataset, ids, names, lon, lat) -> xr.Dataset:
    """Add the ``station`` coordinate (ids) and the stations' names and positions to a run-file skeleton."""
    return skeleton.assign_coords(
        station=("station", np.array(ids, dtype=object), {"long_name": "monitoring station id",
                                                           "cf_role": "timeseries_id"}),
        station_name=("station", np.array(names, dtype=object), {"long_name": "monitoring station name"}),
        station_lon=("station", np.asarray(lon, dtype=float),
                     {"standard_name": "longitude", "units": "degrees_east",
                      "long_name": "station longitude"}),
        station_lat=("station", np.asarray(lat, dtype=float),
                     {"standard_name": "latitude", "units": "degrees_north",
                      "long_name": "station latitude"}),
    )


EXPOSURE_UNITS = "count ug m-3"
"""Units of the exposures: persons (a count; UDUNITS' ``count``) times ug m-3. Run files of format 1 said
``ug m-3`` for the same numbers, which a CF reader takes for a concentration."""

_METRIC_ATTRS = {
    "transboundary_share": ("1", "share of the receptor region's concentration emitted by other regions "
                                 "(1 - own / total)"),
    "import_concentration": ("ug m-3", "concentration in the receptor region caused by other regions"),
    "import_exposure": (EXPOSURE_UNITS, "population exposure to other regions' emissions: persons x "
                                        "concentration caused by other regions (person ug m-3)"),
    "export_exposure": (EXPOSURE_UNITS, "population exposure this region causes in the other receptor "
                                        "regions: persons x concentration (person ug m-3)"),
    "net_export_exposure": (EXPOSURE_UNITS, "export_exposure - import_exposure, persons x concentration "
                                            "(person ug m-3; positive: net exporter)"),
}
_EXPOSURE_COMMENT = ("a sum over persons of the concentration each person breathes: the units are persons "
                     "(count) x ug m-3, not a concentration; divide by population_region for a mean")

RUN_FILE_FORMAT = 2
"""Version of the run-file layout this airshed writes (global attribute ``run_file_format``).

1: files written before the attribute existed (exposures labelled ``ug m-3``); read as they are.
2: ``run_file_format`` and ``airshed_version`` attributes, exposures in :data:`EXPOSURE_UNITS`.
A file of a newer format than this is refused with a message naming both versions."""
READABLE_FORMATS = (1, 2)


def run_file_skeleton(
    grid: Grid,
    times: np.ndarray,
    region_names: tuple[str, ...],
    sectors: tuple[str, ...],
    mechanism: Mechanism,
    population: np.ndarray,
    region_fraction: np.ndarray,
) -> xr.Dataset:
    """Coordinates and fixed fields of a run file, known before the run (``times``: T + 1 hour edges).

    The species axes are the mechanism's: ``species`` its output species, ``emitted_species`` its
    emitted species.
    """
    ds = grid_to_dataset(grid)
    t_edges = times.astype("datetime64[s]")
    receptor_names = tuple(n for n in region_names if n != "outside")
    ds = ds.assign_coords(
        time=("time", t_edges[1:], {"standard_name": "time", "long_name": "end of the averaging hour",
                                    "bounds": "time_bnds", "axis": "T"}),
        species=("species", np.array(mechanism.output_species, dtype=object), {"long_name": "species"}),
        emitted_species=("emitted_species", np.array(mechanism.emitted, dtype=object),
                         {"long_name": "emitted species (precursor)"}),
        source_region=("source_region", np.array(region_names, dtype=object),
                       {"long_name": "region where the emission happened"}),
        receptor_region=("receptor_region", np.array(receptor_names, dtype=object),
                         {"long_name": "region where the concentration is felt"}),
        sector=("sector", np.array(sectors, dtype=object), {"long_name": "emission sector"}),
    )
    ds["time_bnds"] = (("time", "nv"), np.stack([t_edges[:-1], t_edges[1:]], axis=-1))
    ds["population"] = (("y", "x"), population,
                        dict(units="1", long_name="resident population per cell", **_GRID_ATTRS))
    ds["region_fraction"] = (("source_region", "y", "x"), region_fraction,
                             dict(units="1", standard_name="area_fraction",
                                  long_name="fraction of each cell's area inside each region", **_GRID_ATTRS))
    ds["time"].encoding.update(units="hours since 1970-01-01 00:00:00", calendar="standard", dtype="float64")
    ds["time_bnds"].encoding.update(units="hours since 1970-01-01 00:00:00", calendar="standard",
                                    dtype="float64")
    return ds


def run_summary_dataset(
    summary: RunSummary,
    skeleton: xr.Dataset,
    attrs: dict[str, str | int | float],
    mechanism: Mechanism,
    budget_tracers: tuple[str, ...] | None = None,
) -> xr.Dataset:
    """Return the period variables of a run file and its global attributes (see the module docstring)."""
    ds = xr.Dataset(coords={name: skeleton[name] for name in
                            ("species", "emitted_species", "source_region", "receptor_region", "sector")})
    ds = ds.assign_coords(y=skeleton["y"], x=skeleton["x"])
    ds["contribution"] = (("source_region", "sector", "species", "y", "x"), summary.contribution,
                          dict(units="ug m-3", long_name="period-mean concentration caused by emissions of "
                               "each source region and sector", **_GRID_ATTRS))
    ds["source_receptor"] = (("receptor_region", "source_region", "species"), summary.source_receptor,
                             dict(units="ug m-3", long_name="period-mean population-weighted concentration "
                                  "in each receptor region caused by each source region"))
    ds["source_receptor_area"] = (("receptor_region", "source_region", "species"),
                                  summary.source_receptor_area,
                                  dict(units="ug m-3", long_name="period-mean area-weighted concentration "
                                       "in each receptor region caused by each source region"))
    for name, (units, long_name) in _METRIC_ATTRS.items():
        ds[name] = (("receptor_region", "species"), summary.metrics[name],
                    {"units": units, "long_name": long_name}
                    | ({"comment": _EXPOSURE_COMMENT} if units == EXPOSURE_UNITS else {}))
    ds["pm25_source_receptor"] = (("receptor_region", "source_region", "emitted_species"),
                                  summary.pm25_source_receptor,
                                  dict(units="ug m-3", long_name="period-mean population-weighted PM2.5 in "
                                       "each receptor region caused by each source region's emissions of "
                                       "each precursor"))
    pm25 = mechanism.output_species.index("PM2.5")
    ds["pm25_total"] = (("receptor_region",), summary.source_receptor[:, :, pm25].sum(axis=1),
                        dict(units="ug m-3", long_name="period-mean population-weighted PM2.5"))
    ds["emission_total"] = (("source_region", "sector", "emitted_species"), summary.emission_total,
                            dict(units="t", long_name="mass emitted over the run period"))
    ds["population_region"] = (("receptor_region",), summary.population_region,
                               dict(units="1", long_name="resident population of each receptor region "
                                    "inside the domain"))
    if summary.mass_budget is not None:
        ds = ds.assign_coords(
            budget_term=("budget_term", np.array(BUDGET_TERMS, dtype=object),
                         {"long_name": "mass budget term"}),
            tracer=("tracer", np.array(budget_tracers, dtype=object), {"long_name": "transported tracer"}),
        )
        ds["mass_budget"] = (("budget_term", "tracer"), summary.mass_budget,
                             dict(units="kg", long_name="particle mass budget over the run"))
    for name, da in summary.extra.items():
        ds[name] = da
    ds.attrs.update(
        Conventions="CF-1.8",
        title=f"airshed run {attrs.get('run_name', '')}: concentration and source apportionment",
        source=f"airshed {__version__}",
        airshed_version=__version__,
        run_file_format=RUN_FILE_FORMAT,
        history=f"{datetime.now().astimezone().isoformat(timespec='seconds')}: airshed {__version__} run",
        species_long_names="; ".join(f"{k}: {v}" for k, v in mechanism.output_long_names.items()),
        **attrs,
    )
    return ds


RUN_FILE_VARIABLES = ("concentration", "contribution", "source_receptor", "transboundary_share",
                      "import_concentration", "receptor_concentration", "region_fraction", "time_bnds")
"""Variables every complete run file holds (what ``airshed plot`` and ``airshed report`` read)."""


def run_file_format(ds: xr.Dataset, origin: str, needs: tuple[str, ...] = (),
                    reader: str = "this command") -> int:
    """Return the run-file format of ``ds``; AirshedInputError when it is not a run file airshed can read.

    Files without ``run_file_format`` but with airshed's provenance (``source = "airshed ..."`` or the
    ``airshed_config`` attribute) were written before the attribute existed: format 1. So is a file without
    either that holds every variable in ``needs`` (the tables a command reads, written by another tool).
    A missing variable of ``needs`` is an error naming it; when the file is the other kind (a footprint
    file, ``direction = "backward"``, where ``reader``, the command, needs a forward run file, or the
    reverse), the error says which kind of file ``reader`` needs and which command writes it.
    """
    raw = ds.attrs.get("run_file_format")
    missing = [name for name in needs if name not in ds.variables]
    if raw is None:
        provenance = str(ds.attrs.get("source", "")).startswith("airshed") or "airshed_config" in ds.attrs
        if not provenance and (missing or not needs):
            found = str(ds.attrs.get("source") or ds.attrs.get("title") or "")[:60]
            lacks = f"run file has no {', '.join(missing)}: " if missing else ""
            said = f"; source/title {found!r}" if found else ""
            raise AirshedInputError(
                f"{origin}: {lacks}it is not an airshed run file (no run_file_format attribute and no "
                f"airshed provenance{said}); `airshed run` writes run files"
            )
        fmt = 1
    else:
        try:
            fmt = int(raw)
        except (TypeError, ValueError):
            raise AirshedInputError(f"{origin}: run_file_format = {raw!r} is not an integer") from None
        if fmt not in READABLE_FORMATS:
            writer = ds.attrs.get("airshed_version", "an unknown version")
            newer = "upgrade airshed (pip install -U airshed)" if fmt > RUN_FILE_FORMAT else "rerun the study"
            raise AirshedInputError(
                f"{origin} was written by airshed {writer} in run-file format {fmt}; this airshed "
                f"({__version__}) reads formats {', '.join(map(str, READABLE_FORMATS))}: {newer}"
            )
    if missing:
        backward = ds.attrs.get("direction") == "backward"
        if backward:
            raise AirshedInputError(
                f"{origin} is a footprint (backward) file, written by `airshed footprint`; {reader} needs a "
                "forward run file, the output of `airshed run`"
            )
        if "footprint" in missing and "concentration" in ds.variables:
            raise AirshedInputError(
                f"{origin} is a forward run file, written by `airshed run`; {reader} needs a footprint "
                "file, the output of `airshed footprint`"
            )
        raise AirshedInputError(
            f"run file {origin}: variable(s) {', '.join(map(repr, missing))} missing; it is not a complete "
            "airshed run file (write it with `airshed run`)"
        )
    return fmt


def open_run_file(path, needs: tuple[str, ...] = RUN_FILE_VARIABLES,
                  reader: str = "this command") -> xr.Dataset:
    """Open a run file, checking that it is one airshed can read and that it holds ``needs``.

    Raises AirshedInputError (one line naming the file) for a missing file or folder, a file that is not
    NetCDF, not an airshed run file, of an unreadable format version, or without a needed variable
    (``reader``, the command that reads it, is named when the file is of the other kind: forward run file
    or footprint file).
    """
    from pathlib import Path

    path = Path(path).expanduser()
    if path.is_dir():
        raise AirshedInputError(f"run file {path} is a folder; give the NetCDF file written by `airshed run`")
    if not path.is_file():
        raise AirshedInputError(f"run file {path} not found")
    try:
        ds = xr.open_dataset(path)
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "did not find a match" in reason:  # xarray found no backend that recognises the bytes
            reason = "it is not a NetCDF (HDF5 or classic) file"
        raise AirshedInputError(f"cannot read run file {path} as NetCDF: {reason}") from None
    try:
        run_file_format(ds, str(path), needs, reader)
    except BaseException:
        ds.close()
        raise
    return ds
