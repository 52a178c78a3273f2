"""Gridded (area) emission inventories on regular lon/lat grids, regridded conservatively to the model grid.

Accepted files
--------------
NetCDF files read with xarray, holding emissions on a regular longitude/latitude grid:

* coordinates: 1-D ``lat``/``latitude`` and ``lon``/``longitude`` (or any 1-D coordinate whose ``units``
  are ``degrees_north`` / ``degrees_east``), strictly monotonic and evenly spaced; latitude may ascend or
  descend; longitude may run -180..180 or 0..360. Cell edges are taken half-way between centres.
* optional time dimension (``time``, ``month``, ``months``): the result is the mean rate over all steps,
  weighted by the length of each step (calendar months from a datetime ``time`` coordinate; for a
  ``month`` coordinate of 1..12 the months of a non-leap year; otherwise equal weights).

Layouts (several may be mixed in one file; any other data variables, e.g. ``area`` or bounds, are ignored
and listed in the error if no emission variable is found):

1. one variable per species, optionally with a sector dimension: ``SO2``, ``emi_so2``, ``nox``,
   ``PM2.5``, ... (species aliases in :mod:`airshed.inputs.emissions.species`). The sector comes from a
   dimension named ``sector``/``sectors``/``source_category`` whose coordinate holds sector names (MEIC,
   EDGAR codes or canonical names), else from the variable's ``sector`` attribute, else from the file's
   global ``sector`` attribute, else from ``GriddedFile.sector`` (the usual case for EDGAR, which ships one
   file per species and sector, e.g. ``emi_so2`` in ``..._SO2_2018_ENE...nc``).
2. one variable per species and sector, named ``<species>_<sector>`` or ``<sector>_<species>``:
   ``SO2_power``, ``nox_industry``, ``PM25_RCO``, ``power__NOx`` ...
3. a single variable with ``species`` and ``sector`` dimensions holding names.

A variable whose name is not a species (EDGAR v8's ``fluxes``) can be read with ``GriddedFile(species=)``.

Units (the ``units`` attribute of each variable; any other unit is an error naming file and variable)
----------------------------------------------------------------------------------------------------
* flux: mass per area per time, e.g. ``kg m-2 s-1`` (EDGAR, CAMS), ``kg/m2/s``, ``g m-2 s-1``,
  ``t km-2 yr-1``; multiplied by the true (WGS84 ellipsoid) area of the source cell;
* mass per grid cell per time, e.g. ``Mg/month`` or ``t/month`` (MEIC, MIX), ``t/yr``, ``tonnes/year``,
  ``kg/s``, ``g/s``, optionally with ``per grid``/``/grid``/``/cell``/``grid-1``.
Mass units: g, kg, Mg, t, ton(s), tonne(s), Gg. Time units: s, h, day, month, yr/year/a. A year is the
Julian year, :data:`SECONDS_PER_YEAR`; a month without a datetime coordinate is a twelfth of it.
Molar units (MEIC speciated VOC in ``Mmol``) are not accepted: give NMVOC mass.

NaNs and negative values are errors (name the file, variable and how many cells).

Regridding
----------
Each source cell is a lon/lat polygon whose edges are densified (:data:`EDGE_POINTS` points per edge,
since parallels are arcs on the Lambert grid), projected to the grid CRS and intersected with the model
cells by :func:`airshed.grids.overlap.cell_overlap_areas`. The share of a source cell's mass that goes to
a model cell is the plane area of their intersection divided by the plane area of the projected source
polygon; the shares of a source cell wholly inside the domain therefore sum to one and its mass is
conserved to rounding, whatever the projection's scale factor. Mass of source cells (or parts of cells)
outside the domain is reported in ``outside_domain``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import shapely
import xarray as xr

from airshed.errors import DataError
from airshed.grids.grid import Grid
from airshed.grids.overlap import cell_overlap_areas
from airshed.inputs.emissions.species import (
    SECTORS,
    SPECIES,
    canonical_sector,
    canonical_species,
    ordered,
    require_sector,
    require_species,
)

SECONDS_PER_YEAR = 365.25 * 86400.0
"""Seconds in the Julian year used for per-year units (t/yr)."""

SECONDS_PER_MEAN_MONTH = SECONDS_PER_YEAR / 12.0
"""Seconds in a mean month, used for per-month units when no calendar is known."""

EDGE_POINTS = 8
"""Points per source-cell edge (densification before projection)."""

_SECTOR_DIMS = ("sector", "sectors", "source_category", "sector_name")
_SPECIES_DIMS = ("species", "pollutant")
_TIME_DIMS = ("time", "month", "months")
_LAT_NAMES = ("lat", "latitude", "nav_lat")
_LON_NAMES = ("lon", "longitude", "nav_lon")

_MASS_KG = {
    "g": 1e-3,
    "gram": 1e-3,
    "grams": 1e-3,
    "kg": 1.0,
    "t": 1e3,
    "ton": 1e3,
    "tons": 1e3,
    "tonne": 1e3,
    "tonnes": 1e3,
    "mg_mega": 1e3,
    "gg": 1e6,
}
_TIME_S = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "yr": SECONDS_PER_YEAR,
    "year": SECONDS_PER_YEAR,
    "years": SECONDS_PER_YEAR,
    "a": SECONDS_PER_YEAR,
    "month": -1.0,
    "months": -1.0,
    "mon": -1.0,
    "mo": -1.0,
}
_AREA_M2 = {"m": 1.0, "km": 1e6}
_CELL_WORDS = re.compile(
    r"(per\s+grid\s*cell|per\s+grid|per\s+cell|/\s*grid\s*cell|/\s*gridcell|/\s*grid|"
    r"/\s*cell|gridcell-1|grid-1|cell-1)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class EmissionUnits:
    """A parsed emission unit: ``kg_per_unit`` kg of mass per ``seconds`` (per m2 if ``per_area``).

    ``seconds`` is None for per-month units, whose length depends on the calendar month.
    """

    kg_per_unit: float
    seconds: float | None
    per_area_m2: float | None


def parse_emission_units(units: str, where: str) -> EmissionUnits:
    """Parse an emission ``units`` string (see the module docstring for what is accepted).

    Parameters
    ----------
    units
        The units attribute, e.g. ``"kg m-2 s-1"``, ``"Mg/month"``, ``"t/yr"``.
    where
        Description of the file and variable, used in the error message.

    Raises
    ------
    DataError
        If the units are not a mass per time (per area) this module understands.
    """
    accepted = (
        "accepted: flux 'kg m-2 s-1' (any mass/area/time combination) or mass per grid cell per "
        "time such as 'Mg/month', 't/month', 't/yr', 'kg/s'"
    )
    text = _CELL_WORDS.sub(" ", str(units)).replace("**", "").replace("^", "").strip()
    text = text.replace("(", " ").replace(")", " ")
    parts = text.split("/")
    terms: list[tuple[str, int]] = []
    for k, part in enumerate(parts):
        sign = 1 if k == 0 else -1
        for tok in re.split(r"[\s*·]+|(?<=[a-zA-Z])\.(?=[a-zA-Z])", part.strip()):
            if not tok:
                continue
            m = re.fullmatch(r"([A-Za-z]+)(-?\d+)?", tok)
            if m is None:
                raise DataError(f"{where}: cannot parse units {units!r} (token {tok!r}); {accepted}")
            name = m.group(1)
            name = "mg_mega" if name == "Mg" else name.lower()
            exp = int(m.group(2)) if m.group(2) else 1
            terms.append((name, sign * exp))
    mass = [(n, e) for n, e in terms if n in _MASS_KG]
    time = [(n, e) for n, e in terms if n in _TIME_S]
    area = [(n, e) for n, e in terms if n in _AREA_M2]
    rest = [(n, e) for n, e in terms if n not in _MASS_KG and n not in _TIME_S and n not in _AREA_M2]
    if rest or len(mass) != 1 or mass[0][1] != 1 or len(time) != 1 or time[0][1] != -1 or len(area) > 1:
        raise DataError(f"{where}: unknown emission units {units!r}; {accepted}")
    per_area = None
    if area:
        if area[0][1] != -2:
            raise DataError(
                f"{where}: unknown emission units {units!r} (area must be m-2 or km-2); {accepted}"
            )
        per_area = _AREA_M2[area[0][0]]
    seconds = _TIME_S[time[0][0]]
    return EmissionUnits(
        kg_per_unit=_MASS_KG[mass[0][0]], seconds=None if seconds < 0 else seconds, per_area_m2=per_area
    )


@dataclass(frozen=True)
class GriddedFile:
    """One gridded inventory file and what to assume about it.

    Parameters
    ----------
    path
        NetCDF file.
    sector
        Sector of every variable that has no sector of its own (EDGAR: one file per sector).
    species
        Species of every variable not named after a species (EDGAR v8 ``fluxes``).
    variables
        Only read these variables (default: every variable recognised as emissions).
    """

    path: Path
    sector: str | None = None
    species: str | None = None
    variables: tuple[str, ...] | None = None


def ellipsoidal_cell_area(lat_south: np.ndarray, lat_north: np.ndarray, dlon_deg: float) -> np.ndarray:
    """Compute the true area (m2) of lon/lat cells on the WGS84 ellipsoid, between two parallels.

    Uses the area of the ellipsoidal zone between the equator and latitude phi,
    ``S(phi) = pi b^2 [sin(phi)/(1 - e^2 sin^2 phi) + ln((1 + e sin phi)/(1 - e sin phi)) / (2 e)]``
    (e.g. Snyder 1987, *Map Projections - A Working Manual*, USGS PP 1395, eq. 3-12 for the authalic
    latitude), scaled by the cell's share ``dlon / 360`` of the zone.
    """
    geod = pyproj.Geod(ellps="WGS84")
    a, b = geod.a, geod.b
    e = np.sqrt(1.0 - (b / a) ** 2)

    def zone(phi_deg: np.ndarray) -> np.ndarray:
        s = np.sin(np.deg2rad(phi_deg))
        return np.pi * b * b * (s / (1.0 - e * e * s * s) + np.log((1.0 + e * s) / (1.0 - e * s)) / (2.0 * e))

    return (zone(np.asarray(lat_north)) - zone(np.asarray(lat_south))) * (dlon_deg / 360.0)


@dataclass
class _SourceField:
    """Emissions of one file on its own lon/lat grid, kg/s per source cell."""

    lat_edges: np.ndarray  # ascending, (nlat + 1,)
    lon_edges: np.ndarray  # ascending, (nlon + 1,)
    rates: dict[tuple[str, str], np.ndarray]  # (species, sector) -> (nlat, nlon) kg/s


def _find_coord(ds: xr.Dataset, names: tuple[str, ...], unit_word: str, where: str) -> str:
    for name in ds.variables:
        if str(name).lower() in names and ds[name].ndim == 1:
            return str(name)
    for name in ds.variables:
        if ds[name].ndim == 1 and unit_word in str(ds[name].attrs.get("units", "")).lower():
            return str(name)
    raise DataError(
        f"{where}: no 1-D {names[0]} coordinate found (tried {', '.join(names)} and "
        f"units 'degrees_{unit_word}'); only regular lon/lat grids are supported"
    )


def _regular_edges(
    values: np.ndarray, name: str, where: str, check_monotonic: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Ascending cell edges and the permutation that sorts the centres ascending."""
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        raise DataError(f"{where}: coordinate {name!r} needs at least 2 values to define cell sizes")
    if not np.all(np.isfinite(v)):
        raise DataError(f"{where}: coordinate {name!r} holds NaN or infinite values")
    d = np.diff(v)
    if check_monotonic and not (np.all(d > 0) or np.all(d < 0)):
        raise DataError(
            f"{where}: coordinate {name!r} is not strictly monotonic "
            f"(first break at index {int(np.flatnonzero(np.sign(d) != np.sign(d[0]))[0]) + 1})"
        )
    order = np.argsort(v, kind="stable")
    v = v[order]
    d = np.diff(v)
    step = (v[-1] - v[0]) / (v.size - 1)
    if np.max(np.abs(d - step)) > 1e-3 * step:
        raise DataError(
            f"{where}: coordinate {name!r} is not evenly spaced (spacing {d.min():g}..{d.max():g});"
            " only regular lon/lat grids are supported"
        )
    edges = np.concatenate([[v[0] - step / 2], v + step / 2])
    return edges, order


def _time_seconds(da: xr.DataArray, tdim: str | None) -> np.ndarray | None:
    """Seconds in each time step if a calendar can be read from the coordinate, else None."""
    if tdim is None or tdim not in da.coords:
        return None
    coord = da[tdim]
    if np.issubdtype(coord.dtype, np.datetime64):
        t = pd.DatetimeIndex(coord.values)
        steps = np.diff(t.values).astype("timedelta64[D]").astype(float) if t.size > 1 else np.array([30.0])
        if t.size == 1 or np.all((steps >= 28) & (steps <= 31)):
            return t.days_in_month.to_numpy().astype(float) * 86400.0
        return None
    values = np.asarray(coord.values)
    if np.issubdtype(values.dtype, np.integer) and np.all((values >= 1) & (values <= 12)):
        days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=float)  # non-leap year
        return days[values.astype(int) - 1] * 86400.0
    return None


def _variable_labels(
    name: str, da: xr.DataArray, ds: xr.Dataset, spec: GriddedFile, where: str
) -> tuple[str | None, str | None] | None:
    """(species, sector) of a variable (None for what comes from a dimension); None if not emissions."""
    sp_dim = next((d for d in da.dims if str(d).lower() in _SPECIES_DIMS), None)
    sec_dim = next((d for d in da.dims if str(d).lower() in _SECTOR_DIMS), None)
    default_sector = da.attrs.get("sector") or ds.attrs.get("sector") or spec.sector
    if sp_dim is not None:
        species = None
    elif spec.species is not None:
        species = require_species(spec.species, where)
    else:
        species = canonical_species(name) or (
            canonical_species(da.attrs["species"]) if "species" in da.attrs else None
        )
    if species is not None or sp_dim is not None:
        if sec_dim is not None:
            return species, None
        if default_sector is None:
            raise DataError(
                f"{where}: variable {name!r} has no sector dimension ({'/'.join(_SECTOR_DIMS)}) "
                "and no 'sector' attribute; give the sector for this file (GriddedFile.sector)"
            )
        return species, require_sector(str(default_sector), where)
    for m in re.finditer(r"_+", name):
        left, right = name[: m.start()], name[m.end() :]
        for sp, sec in ((left, right), (right, left)):
            if canonical_species(sp) and canonical_sector(sec):
                return canonical_species(sp), canonical_sector(sec)
    return None


def _read_file(spec: GriddedFile) -> _SourceField:
    path = Path(spec.path)
    if not path.is_file():
        raise DataError(f"gridded emission file {str(path)!r} not found")
    try:
        ds = xr.open_dataset(path)
    except Exception as exc:  # netCDF4/h5netcdf raise several error types
        raise DataError(f"cannot open gridded emission file {str(path)!r}: {exc}") from exc
    with ds:
        lat_name = _find_coord(ds, _LAT_NAMES, "north", f"file {str(path)!r}")
        lon_name = _find_coord(ds, _LON_NAMES, "east", f"file {str(path)!r}")
        lat_dim, lon_dim = ds[lat_name].dims[0], ds[lon_name].dims[0]
        lat_edges, lat_order = _regular_edges(ds[lat_name].values, lat_name, f"file {str(path)!r}")
        lon = np.asarray(ds[lon_name].values, dtype=float)
        _regular_edges(lon, lon_name, f"file {str(path)!r}")  # monotonic/regular as stored
        if lon.max() > 180.0:
            lon = (lon + 180.0) % 360.0 - 180.0
        # after wrapping 0..360 to -180..180 the centres are sorted, not necessarily monotonic as stored
        lon_edges, lon_order = _regular_edges(lon, lon_name, f"file {str(path)!r}", check_monotonic=False)
        lat_edges = np.clip(lat_edges, -90.0, 90.0)
        area_sorted = ellipsoidal_cell_area(lat_edges[:-1], lat_edges[1:], lon_edges[1] - lon_edges[0])
        cell_area = np.empty_like(area_sorted)
        cell_area[lat_order] = area_sorted  # in the file's latitude order, like the data

        candidates = spec.variables if spec.variables is not None else tuple(str(v) for v in ds.data_vars)
        rates: dict[tuple[str, str], np.ndarray] = {}
        ignored = []
        for name in candidates:
            where = f"file {str(path)!r}, variable {name!r}"
            if name not in ds.data_vars:
                raise DataError(f"file {str(path)!r} has no variable {name!r}; it holds {list(ds.data_vars)}")
            da = ds[name]
            if lat_dim not in da.dims or lon_dim not in da.dims:
                ignored.append(name)
                continue
            labels = _variable_labels(name, da, ds, spec, where)
            if labels is None:
                if spec.variables is not None:
                    raise DataError(
                        f"{where}: cannot tell its species/sector; name it '<species>_<sector>' or "
                        "give GriddedFile(species=..., sector=...)"
                    )
                ignored.append(name)
                continue
            for (species, sector), field in _variable_rates(da, labels, lat_dim, lon_dim, cell_area, where):
                field = field[lat_order][:, lon_order]
                key = (species, sector)
                rates[key] = rates[key] + field if key in rates else field
        if not rates:
            raise DataError(
                f"file {str(path)!r}: no emission variable found among {ignored}; names tried: species names "
                f"({', '.join(SPECIES)} and aliases such as emi_so2, pm25, nox), '<species>_<sector>' / "
                f"'<sector>_<species>' with sectors {', '.join(SECTORS)} (or EDGAR/MEIC codes), or a "
                f"variable "
                f"with '{_SPECIES_DIMS[0]}' and '{_SECTOR_DIMS[0]}' dimensions"
            )
    return _SourceField(lat_edges=lat_edges, lon_edges=lon_edges, rates=rates)


def _variable_rates(
    da: xr.DataArray,
    labels: tuple[str | None, str | None],
    lat_dim: str,
    lon_dim: str,
    cell_area: np.ndarray,
    where: str,
) -> Iterable[tuple[tuple[str, str], np.ndarray]]:
    """Yield ((species, sector), kg/s per source cell) for one variable."""
    species, sector = labels
    if "units" not in da.attrs:
        raise DataError(f"{where}: no 'units' attribute; expected e.g. 'kg m-2 s-1', 'Mg/month' or 't/yr'")
    units = parse_emission_units(da.attrs["units"], where)
    tdim = next((d for d in da.dims if str(d).lower() in _TIME_DIMS), None)
    sp_dim = next((d for d in da.dims if str(d).lower() in _SPECIES_DIMS), None)
    sec_dim = next((d for d in da.dims if str(d).lower() in _SECTOR_DIMS), None)
    known = {lat_dim, lon_dim, tdim, sp_dim, sec_dim} - {None}
    extra = [d for d in da.dims if d not in known]
    if extra:
        raise DataError(
            f"{where}: unexpected dimensions {extra}; expected lat, lon and optionally "
            f"time/month, sector and species"
        )
    lead = [d for d in (sp_dim, sec_dim) if d is not None]
    values = da.transpose(*lead, *([tdim] if tdim else []), lat_dim, lon_dim).values.astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        first = np.unravel_index(int(np.argmax(bad)), bad.shape)
        if lat_dim in da.coords and lon_dim in da.coords:
            cell = (f"lat {float(da[lat_dim].values[first[-2]]):.3f} "
                    f"lon {float(da[lon_dim].values[first[-1]]):.3f}")
        else:
            cell = f"index {first[-2:]}"
        cells = int(bad.any(axis=tuple(range(bad.ndim - 2))).sum())
        raise DataError(
            f"{where}: {int(np.isnan(values).sum())} NaN (missing data or _FillValue) and "
            f"{int(np.isinf(values).sum())} infinite values in {cells} cell(s), first at {cell}; emissions "
            "must be given everywhere (use 0 where there are none)"
        )
    if (values < 0).any():
        raise DataError(
            f"{where}: {int((values < 0).sum())} negative values (minimum {values.min():g} "
            f"{da.attrs['units']}); emissions must be >= 0"
        )
    seconds = _time_seconds(da, tdim)
    scale = units.kg_per_unit
    if units.per_area_m2 is not None:
        field_scale = cell_area[:, None] / units.per_area_m2
    else:
        field_scale = np.ones((cell_area.size, 1))
    if tdim is not None:
        nt = values.shape[len(lead)]
        if units.seconds is None:  # per month: total mass over the period / total time
            step_s = seconds if seconds is not None else np.full(nt, SECONDS_PER_MEAN_MONTH)
            values = values.sum(axis=len(lead)) / step_s.sum()
        else:
            w = seconds if seconds is not None else np.ones(nt)
            values = np.tensordot(values, w / w.sum(), axes=([len(lead)], [0])) / units.seconds
    else:
        if units.seconds is None:
            step = seconds[0] if seconds is not None else SECONDS_PER_MEAN_MONTH
            values = values / step
        else:
            values = values / units.seconds
    values = values * scale * field_scale

    def labels_of(dim: str | None, fixed: str | None, convert) -> list[str]:
        if dim is None:
            return [fixed]
        raw = da[dim].values if dim in da.coords else None
        if raw is None or not all(isinstance(v, str | np.str_ | bytes) for v in np.ravel(raw)):
            raise DataError(f"{where}: dimension {dim!r} needs a coordinate of names (strings)")
        return [convert(v.decode() if isinstance(v, bytes) else str(v), where) for v in raw]

    sp_names = labels_of(sp_dim, species, require_species)
    sec_names = labels_of(sec_dim, sector, require_sector)
    values = values.reshape(len(sp_names), len(sec_names), *values.shape[-2:])
    for a, sp in enumerate(sp_names):
        for b, sec in enumerate(sec_names):
            yield (sp, sec), values[a, b]


def source_cell_polygons(
    lon_edges: np.ndarray, lat_edges: np.ndarray, ii: np.ndarray, jj: np.ndarray, grid: Grid
) -> np.ndarray:
    """Projected polygons (grid CRS) of lon/lat cells (column ``ii``, row ``jj``), edges densified."""
    t = np.linspace(0.0, 1.0, EDGE_POINTS, endpoint=False)
    w, e = lon_edges[ii][:, None], lon_edges[ii + 1][:, None]
    s, n = lat_edges[jj][:, None], lat_edges[jj + 1][:, None]
    lon = np.concatenate(
        [
            w + (e - w) * t,
            np.broadcast_to(e, (ii.size, t.size)),
            e + (w - e) * t,
            np.broadcast_to(w, (ii.size, t.size)),
        ],
        axis=1,
    )
    lat = np.concatenate(
        [
            np.broadcast_to(s, (ii.size, t.size)),
            s + (n - s) * t,
            np.broadcast_to(n, (ii.size, t.size)),
            n + (s - n) * t,
        ],
        axis=1,
    )
    x, y = grid.lonlat_to_xy(lon, lat)
    ring = np.stack([x, y], axis=-1)
    ring = np.concatenate([ring, ring[:, :1]], axis=1)
    return shapely.polygons(ring)


def _regrid_field(
    field: _SourceField, grid: Grid, keys: list[tuple[str, str]]
) -> tuple[np.ndarray, np.ndarray]:
    """Regrid rates of ``keys``: returns (model rates (nkey, ny, nx), inside-domain totals (nkey,))."""
    nlat, nlon = field.lat_edges.size - 1, field.lon_edges.size - 1
    stack = np.stack([field.rates[k] for k in keys]).reshape(len(keys), nlat * nlon)
    west, south, east, north = grid.lonlat_bounds()
    dlon = field.lon_edges[1] - field.lon_edges[0]
    dlat = field.lat_edges[1] - field.lat_edges[0]
    lon_ok = (field.lon_edges[1:] > west - dlon) & (field.lon_edges[:-1] < east + dlon)
    lat_ok = (field.lat_edges[1:] > south - dlat) & (field.lat_edges[:-1] < north + dlat)
    near = (lat_ok[:, None] & lon_ok[None, :]).ravel()
    active = np.flatnonzero(near & (stack > 0).any(axis=0))
    out = np.zeros((len(keys), grid.ny * grid.nx))
    if active.size == 0:
        return out.reshape(len(keys), grid.ny, grid.nx), np.zeros(len(keys))
    jj, ii = np.divmod(active, nlon)
    polys = source_cell_polygons(field.lon_edges, field.lat_edges, ii, jj, grid)
    overlap = cell_overlap_areas(grid, polys)
    share = overlap.multiply(1.0 / shapely.area(polys)[:, None]).tocsr()
    src = stack[:, active]
    out = (share.T @ src.T).T
    return out.reshape(len(keys), grid.ny, grid.nx), out.sum(axis=1)


def read_gridded_emissions(files: Sequence[str | Path | GriddedFile], grid: Grid) -> xr.Dataset:
    """Read gridded inventories and regrid them conservatively onto the model grid.

    Parameters
    ----------
    files
        NetCDF files (paths, or :class:`GriddedFile` to give the sector/species of a file). Emissions of
        the same species and sector in several files are added.
    grid
        The model grid.

    Returns
    -------
    xarray.Dataset
        ``emission(species, sector, y, x)``: mean emission rate of each model cell over the period of the
        files, kg s-1 per cell; ``source_total(species, sector)`` and ``outside_domain(species, sector)``
        (kg s-1): total of the source files and the part of it outside the model domain. Species and
        sectors present in any file, in canonical order; attrs ``units`` and ``source_files``.
    """
    if not files:
        raise DataError("no gridded emission files given")
    specs = [f if isinstance(f, GriddedFile) else GriddedFile(path=Path(f)) for f in files]
    regridded: list[tuple[list[tuple[str, str]], np.ndarray, np.ndarray]] = []
    for spec in specs:
        field = _read_file(spec)
        keys = list(field.rates)
        model, _ = _regrid_field(field, grid, keys)
        totals = np.array([field.rates[k].sum() for k in keys])
        regridded.append((keys, model, totals))
    species = ordered({k[0] for keys, _, _ in regridded for k in keys}, SPECIES)
    sectors = ordered({k[1] for keys, _, _ in regridded for k in keys}, SECTORS)
    emission = np.zeros((len(species), len(sectors), grid.ny, grid.nx))
    source_total = np.zeros((len(species), len(sectors)))
    for keys, model, totals in regridded:
        for n, (sp, sec) in enumerate(keys):
            a, b = species.index(sp), sectors.index(sec)
            emission[a, b] += model[n]
            source_total[a, b] += totals[n]
    inside = emission.sum(axis=(2, 3))
    outside = np.maximum(source_total - inside, 0.0)
    ds = xr.Dataset(
        {
            "emission": (
                ("species", "sector", "y", "x"),
                emission,
                {"units": "kg s-1", "long_name": "mean emission rate per grid cell"},
            ),
            "source_total": (
                ("species", "sector"),
                source_total,
                {"units": "kg s-1", "long_name": "total emission rate of the source files"},
            ),
            "outside_domain": (
                ("species", "sector"),
                outside,
                {
                    "units": "kg s-1",
                    "long_name": "emission rate of the source files outside "
                    "the model domain (not in 'emission')",
                },
            ),
        },
        coords={
            "species": list(species),
            "sector": list(sectors),
            "y": ("y", grid.y, {"units": "m", "standard_name": "projection_y_coordinate"}),
            "x": ("x", grid.x, {"units": "m", "standard_name": "projection_x_coordinate"}),
        },
        attrs={
            "units": "kg s-1 per grid cell (mean rate over the period of the source files)",
            "source_files": "; ".join(str(s.path) for s in specs),
            "regridding": "conservative (exact polygon overlap on the grid projection plane)",
        },
    )
    return ds
