"""Point (stack) sources from a CSV or GeoPackage table.

Columns
-------
Required (names case-insensitive):

==========================  =====================================================================
``id``                      unique source identifier (text)
``lon``, ``lat``            stack position, degrees (WGS84). In a GeoPackage the point geometry may
                            be used instead (reprojected to lon/lat)
``stack_height_m``          physical stack height above ground, m (> 0)
``diameter_m``              inner stack diameter at the top, m (> 0)
``exit_temperature_k``      flue-gas exit temperature, K (> 0)
``exit_velocity_m_s``       flue-gas exit velocity, m/s (>= 0)
``sector``                  sector name (canonical or EDGAR/MEIC code, see
                            :mod:`airshed.inputs.emissions.species`)
one or more rate columns    see below
==========================  =====================================================================

Optional: ``region`` (a region name that overrides the region found from the stack position; empty
means no override) and ``name``.

Rate columns, one per species, named ``<species>_<unit>`` or ``<species> [<unit>]``, e.g. ``so2_kg_s``,
``nox_t_yr``, ``PM2.5 [t/yr]``, ``SO2 [g/s]``. Accepted units (:data:`RATE_UNITS`): ``kg_s`` (kg/s),
``g_s`` (g/s), ``kg_h`` (kg/h), ``t_yr`` / ``t_a`` / ``mg_yr`` (tonnes per Julian year), ``kg_yr``
(kg per Julian year). NOx is mass as NO2. An empty rate cell means zero.

Validation: missing columns are an error listing the expected names; negative or NaN rates and
non-positive stack parameters are errors naming the source ids. A source outside the model domain
gives a warning naming its id and is counted in :attr:`PointTable.outside_ids` (the sources are kept in
the table, flagged by :attr:`PointTable.inside`, so reports can account for their mass).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from airshed.errors import DataError
from airshed.grids.grid import Grid
from airshed.inputs.emissions.gridded import SECONDS_PER_YEAR
from airshed.inputs.emissions.species import SECTORS, SPECIES, canonical_species, ordered, require_sector

RATE_UNITS: dict[str, float] = {
    "kg_s": 1.0,
    "kg/s": 1.0,
    "g_s": 1e-3,
    "g/s": 1e-3,
    "kg_h": 1.0 / 3600.0,
    "kg/h": 1.0 / 3600.0,
    "t_yr": 1e3 / SECONDS_PER_YEAR,
    "t/yr": 1e3 / SECONDS_PER_YEAR,
    "t_a": 1e3 / SECONDS_PER_YEAR,
    "t/a": 1e3 / SECONDS_PER_YEAR,
    "mg_yr": 1e3 / SECONDS_PER_YEAR,
    "mg/yr": 1e3 / SECONDS_PER_YEAR,
    "kg_yr": 1.0 / SECONDS_PER_YEAR,
    "kg/yr": 1.0 / SECONDS_PER_YEAR,
}
"""Accepted rate units (lower case) and their factor to kg/s."""

REQUIRED_COLUMNS = (
    "id",
    "lon",
    "lat",
    "stack_height_m",
    "diameter_m",
    "exit_temperature_k",
    "exit_velocity_m_s",
    "sector",
)
"""Columns every point-source table must have (besides at least one rate column)."""


class EmissionDataWarning(UserWarning):
    """Emission input that is accepted but probably not what the user meant (e.g. a stack off the grid)."""


@dataclass(frozen=True)
class PointTable:
    """Point sources as read from a file (all of them, inside the domain or not).

    Attributes
    ----------
    ids, names
        Source identifiers and optional names, shape (n,).
    lon, lat
        Stack position, degrees.
    stack_height, diameter, exit_temperature, exit_velocity
        m, m, K, m/s.
    sector
        Canonical sector name of each source.
    region_override
        Region name given in the file, or "" for none.
    rate
        Emission rate, kg/s, shape (n, nspecies), species in :attr:`species` order.
    species
        Species names (canonical order).
    inside
        Whether each stack lies in the model domain.
    source_file
        The file read.
    """

    ids: np.ndarray
    names: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    stack_height: np.ndarray
    diameter: np.ndarray
    exit_temperature: np.ndarray
    exit_velocity: np.ndarray
    sector: np.ndarray
    region_override: np.ndarray
    rate: np.ndarray
    species: tuple[str, ...]
    inside: np.ndarray
    source_file: str

    @property
    def outside_ids(self) -> tuple[str, ...]:
        """Ids of the sources outside the model domain."""
        return tuple(str(i) for i in self.ids[~self.inside])

    @property
    def n_outside(self) -> int:
        """Number of sources outside the model domain."""
        return int((~self.inside).sum())

    @property
    def sectors(self) -> tuple[str, ...]:
        """Sectors present, canonical order."""
        return ordered(set(self.sector.tolist()), SECTORS)


def _rate_column(column: str) -> tuple[str, float] | None:
    """(species, factor to kg/s) of a rate column name, or None if it is not one."""
    text = column.strip()
    m = re.fullmatch(r"(.+?)\s*\[\s*(.+?)\s*\]", text)
    if m:
        species, unit = m.group(1), m.group(2).lower().replace(" ", "")
    else:
        for unit in sorted(RATE_UNITS, key=len, reverse=True):
            if "/" not in unit and text.lower().endswith("_" + unit):
                species = text[: -len(unit) - 1]
                break
        else:
            return None
    sp = canonical_species(species)
    if sp is None or unit.lower() not in RATE_UNITS:
        return None
    return sp, RATE_UNITS[unit.lower()]


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"point-source file {str(path)!r} not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".gpkg", ".shp", ".geojson", ".json", ".fgb"):
            import geopandas as gpd

            frame = gpd.read_file(path)
            if frame.geometry is not None and frame.geometry.notna().all():
                lonlat = frame.to_crs("EPSG:4326") if frame.crs is not None else frame
                cols = {c.lower() for c in frame.columns}
                if "lon" not in cols or "lat" not in cols:
                    frame = frame.assign(lon=lonlat.geometry.x, lat=lonlat.geometry.y)
            return pd.DataFrame(frame.drop(columns=frame.geometry.name))
        # only an empty cell is missing; the text NaN/inf is kept so that it can be reported as an error
        return pd.read_csv(path, comment="#", skipinitialspace=True, keep_default_na=False, na_values=[""])
    except DataError:
        raise
    except Exception as exc:  # pandas/pyogrio raise many error types
        raise DataError(f"cannot read point-source file {str(path)!r}: {exc}") from exc


def read_point_sources(path: str | Path, grid: Grid) -> PointTable:
    """Read and validate a point-source table (CSV or GeoPackage; format in the module docstring).

    Parameters
    ----------
    path
        The file.
    grid
        The model grid (to flag sources outside the domain).

    Returns
    -------
    PointTable
        Every source in the file; those outside the domain are flagged (``inside`` False), counted
        (``n_outside``) and named in an :class:`EmissionDataWarning`.
    """
    path = Path(path)
    frame = _read_table(path)
    lower = {str(c).strip().lower(): c for c in frame.columns}
    missing = [c for c in REQUIRED_COLUMNS if c not in lower]
    rate_cols = {c: r for c in frame.columns if (r := _rate_column(str(c))) is not None}
    if missing or not rate_cols:
        what = f"missing columns {missing}" if missing else "no emission-rate column"
        raise DataError(
            f"point-source file {str(path)!r}: {what}; expected columns {', '.join(REQUIRED_COLUMNS)}, "
            f"optional region, name, and rate columns '<species>_<unit>' or '<species> [<unit>]' "
            f"(species {', '.join(SPECIES)}; units kg_s, g_s, kg_h, t_yr, kg_yr), e.g. so2_kg_s or "
            f"'NOx [t/yr]'; found columns {[str(c) for c in frame.columns]}"
        )
    where = f"point-source file {str(path)!r}"
    ids = frame[lower["id"]].astype(str).str.strip().to_numpy()
    if len(ids) == 0:
        raise DataError(f"{where} holds no sources")
    dup = pd.Series(ids)[pd.Series(ids).duplicated()].unique()
    if dup.size:
        raise DataError(f"{where}: duplicate source ids {list(dup[:10])}")

    def numeric(col: str, lower_bound: float, strict: bool) -> np.ndarray:
        values = pd.to_numeric(frame[lower[col]], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values) | ((values <= lower_bound) if strict else (values < lower_bound))
        if bad.any():
            cond = f"> {lower_bound:g}" if strict else f">= {lower_bound:g}"
            raise DataError(
                f"{where}: column {col!r} must be a number {cond}; bad for ids {list(ids[bad][:10])}"
            )
        return values

    lon = numeric("lon", -180.0 - 1e-9, strict=False)
    lat = numeric("lat", -90.0 - 1e-9, strict=False)
    if (np.abs(lon) > 360).any() or (np.abs(lat) > 90).any():
        raise DataError(
            f"{where}: lon/lat out of range for ids {list(ids[(np.abs(lon) > 360) | (np.abs(lat) > 90)])}"
        )
    height = numeric("stack_height_m", 0.0, strict=True)
    diameter = numeric("diameter_m", 0.0, strict=True)
    temperature = numeric("exit_temperature_k", 0.0, strict=True)
    velocity = numeric("exit_velocity_m_s", 0.0, strict=False)
    sector = np.array(
        [
            require_sector(str(s), f"{where}, source {i!r}")
            for s, i in zip(frame[lower["sector"]], ids, strict=True)
        ],
        dtype=object,
    )
    if "region" in lower:
        region = frame[lower["region"]].fillna("").astype(str).str.strip().to_numpy(dtype=object)
    else:
        region = np.full(len(ids), "", dtype=object)
    names = (
        frame[lower["name"]].fillna("").astype(str).to_numpy(dtype=object)
        if "name" in lower
        else np.full(len(ids), "", dtype=object)
    )

    species = ordered({sp for sp, _ in rate_cols.values()}, SPECIES)
    rate = np.zeros((len(ids), len(species)))
    for col, (sp, factor) in rate_cols.items():
        raw = frame[col]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        unparsable = (
            np.isnan(values) & raw.notna().to_numpy() & (raw.astype(str).str.strip() != "").to_numpy()
        )
        if unparsable.any() or np.isinf(values).any():
            bad = unparsable | np.isinf(values)
            raise DataError(
                f"{where}: column {str(col)!r} holds {int(bad.sum())} NaN, infinite or non-numeric "
                f"value(s) ({', '.join(map(repr, raw[bad].astype(str).unique()[:3]))}) for ids "
                f"{list(ids[bad][:10])}; give a number (an empty cell means 0)"
            )
        values = np.nan_to_num(values, nan=0.0)
        if (values < 0).any():
            raise DataError(
                f"{where}: negative emission in column {str(col)!r} for ids "
                f"{list(ids[values < 0][:10])}; emissions must be >= 0"
            )
        rate[:, species.index(sp)] += values * factor

    x, y = grid.lonlat_to_xy(lon, lat)
    inside = np.isfinite(x) & np.isfinite(y) & grid.contains_xy(x, y)
    if not inside.all():
        out = ids[~inside]
        shown = ", ".join(map(str, out[:20])) + (" ..." if out.size > 20 else "")
        warnings.warn(
            f"{where}: {out.size} point source(s) outside the model domain, not dispersed: {shown}",
            EmissionDataWarning,
            stacklevel=2,
        )
    return PointTable(
        ids=ids,
        names=names,
        lon=lon,
        lat=lat,
        stack_height=height,
        diameter=diameter,
        exit_temperature=temperature,
        exit_velocity=velocity,
        sector=sector,
        region_override=region,
        rate=rate,
        species=species,
        inside=inside,
        source_file=str(path),
    )


def merge_point_tables(tables: list[PointTable]) -> PointTable:
    """One table holding the stacks of several files (species are the union, in canonical order)."""
    if len(tables) == 1:
        return tables[0]
    species = tuple(s for s in SPECIES if any(s in t.species for t in tables))
    rates = []
    for t in tables:
        r = np.zeros((t.rate.shape[0], len(species)))
        for k, s in enumerate(t.species):
            r[:, species.index(s)] = t.rate[:, k]
        rates.append(r)
    fields = ("ids", "names", "lon", "lat", "stack_height", "diameter", "exit_temperature", "exit_velocity",
              "sector", "region_override", "inside")
    ids = np.concatenate([t.ids for t in tables])
    if np.unique(ids.astype(str)).size != ids.size:
        files = ", ".join(t.source_file for t in tables)
        raise DataError(f"point-source ids must be unique across files ({files})")
    return PointTable(
        **{f: np.concatenate([getattr(t, f) for t in tables]) for f in fields},
        rate=np.concatenate(rates),
        species=species,
        source_file="; ".join(t.source_file for t in tables),
    )
