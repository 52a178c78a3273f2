"""Kernel-ready emission sources: structure-of-arrays of area and point sources tagged by region and sector.

Tags
----
Every source carries a region index ``r`` (position in ``EmissionSet.regions``, whose last entry is
``"outside"``) and a sector index ``s`` (position in ``EmissionSet.sectors``). Source apportionment
tracks one tag per (region, sector) pair::

    tag = r * nsector + s        (0 <= tag < nregion * nsector)

so ``divmod(tag, nsector)`` gives back ``(r, s)``.

Area sources
------------
One entry per (model cell, region, sector) with a nonzero emission. A cell shared by several regions is
split in proportion to the regions' area fractions of the cell, so the entries of a cell sum to the
cell's emission (to rounding; fractions sum to one within 1e-12). Entries are sorted by tag, then cell.
Each entry is a square of side ``cell_size`` centred on (x, y), emitting at ground level.

Point sources
-------------
Stacks inside the domain, with their stack parameters; the region is the one whose boundary contains
the stack (exact polygons, :meth:`airshed.grids.regions.RegionSet.region_of_point`) unless the table
gives a ``region`` override. Stacks outside the domain are not dispersed; their ids and total rate are
kept in :attr:`EmissionSet.points_outside_ids` and :attr:`EmissionSet.points_outside_rate`.

Rates are period-mean rates (kg/s); :meth:`EmissionSet.rates_at` applies the temporal profiles.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from airshed.errors import AirshedInputError, DataError
from airshed.grids.regions import RegionSet
from airshed.inputs.emissions.points import PointTable
from airshed.inputs.emissions.species import SECTORS, SPECIES, ordered
from airshed.inputs.emissions.temporal import TemporalProfiles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AreaSources:
    """Area sources (one per cell, region and sector), structure of arrays of length n.

    Attributes
    ----------
    x, y
        Cell-centre coordinates on the grid projection, m, float64.
    cell_size
        Side of the square source, m, float64.
    row, col
        Grid cell (j, i) of each entry, int32.
    region, sector
        Region and sector indices, int32.
    rate
        Mean emission rate, kg/s, float64, shape (n, nspecies).
    """

    x: np.ndarray
    y: np.ndarray
    cell_size: np.ndarray
    row: np.ndarray
    col: np.ndarray
    region: np.ndarray
    sector: np.ndarray
    rate: np.ndarray

    @property
    def n(self) -> int:
        """Number of entries."""
        return int(self.x.size)


@dataclass(frozen=True)
class PointSources:
    """Elevated point sources inside the domain, structure of arrays of length n.

    Attributes
    ----------
    ids
        Source ids (object array of str).
    x, y
        Stack position on the grid projection, m.
    stack_height, diameter, exit_temperature, exit_velocity
        m, m, K, m/s (float64).
    region, sector
        Region and sector indices, int32.
    rate
        Mean emission rate, kg/s, float64, shape (n, nspecies).
    """

    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    stack_height: np.ndarray
    diameter: np.ndarray
    exit_temperature: np.ndarray
    exit_velocity: np.ndarray
    region: np.ndarray
    sector: np.ndarray
    rate: np.ndarray

    @property
    def n(self) -> int:
        """Number of stacks."""
        return int(self.x.size)


@dataclass(frozen=True)
class EmissionSet:
    """Area and point sources of one case, with the names behind their indices.

    Attributes
    ----------
    area, points
        The sources.
    species, sectors, regions
        Names along the species axis of the rates, and of the sector and region indices.
    profiles
        Temporal profiles applied by :meth:`rates_at`.
    area_outside_domain
        Gridded emission outside the model domain, kg/s, shape (nspecies, nsector).
    points_outside_ids
        Ids of point sources outside the domain (not in :attr:`points`).
    points_outside_rate
        Their summed rate, kg/s, shape (nspecies,).
    """

    area: AreaSources
    points: PointSources
    species: tuple[str, ...]
    sectors: tuple[str, ...]
    regions: tuple[str, ...]
    profiles: TemporalProfiles = field(default_factory=TemporalProfiles)
    area_outside_domain: np.ndarray | None = None
    points_outside_ids: tuple[str, ...] = ()
    points_outside_rate: np.ndarray | None = None

    @property
    def nsector(self) -> int:
        """Number of sectors."""
        return len(self.sectors)

    @property
    def ntag(self) -> int:
        """Number of (region, sector) tags."""
        return len(self.regions) * len(self.sectors)

    def tag(self, region: str, sector: str) -> int:
        """Tag index ``region_index * nsector + sector_index`` of a region and sector name."""
        if region not in self.regions:
            raise AirshedInputError(f"unknown region {region!r}; valid regions: {', '.join(self.regions)}")
        if sector not in self.sectors:
            raise AirshedInputError(f"unknown sector {sector!r}; valid sectors: {', '.join(self.sectors)}")
        return self.regions.index(region) * self.nsector + self.sectors.index(sector)

    @property
    def tag_names(self) -> tuple[str, ...]:
        """``"<region>/<sector>"`` for every tag, in tag order."""
        return tuple(f"{r}/{s}" for r in self.regions for s in self.sectors)

    @property
    def area_tag(self) -> np.ndarray:
        """Tag of each area source, int32."""
        return (self.area.region * self.nsector + self.area.sector).astype(np.int32)

    @property
    def point_tag(self) -> np.ndarray:
        """Tag of each point source, int32."""
        return (self.points.region * self.nsector + self.points.sector).astype(np.int32)

    def sector_factors(self, time_utc: np.datetime64 | pd.Timestamp | str) -> np.ndarray:
        """Temporal factor of each sector at one UTC time, shape (nsector,)."""
        t = pd.DatetimeIndex([pd.Timestamp(time_utc)])
        return np.array([self.profiles.factor(s, t)[0] for s in self.sectors])

    def rates_at(self, time_utc: np.datetime64 | pd.Timestamp | str) -> tuple[np.ndarray, np.ndarray]:
        """Area and point emission rates at one UTC time (mean rates times the temporal factors).

        Returns
        -------
        tuple of numpy.ndarray
            (area rates (n_area, nspecies), point rates (n_point, nspecies)), kg/s, float64.
        """
        f = self.sector_factors(time_utc)
        return self.area.rate * f[self.area.sector][:, None], self.points.rate * f[self.points.sector][
            :, None
        ]

    def totals_by_tag(self) -> np.ndarray:
        """Mean emission rate of every (region, sector) tag, area plus points, kg/s, (ntag, nspecies)."""
        out = np.zeros((self.ntag, len(self.species)))
        np.add.at(out, self.area_tag, self.area.rate)
        np.add.at(out, self.point_tag, self.points.rate)
        return out


def _area_sources(
    emission: xr.DataArray, regions: RegionSet, species: tuple[str, ...], sectors: tuple[str, ...]
) -> AreaSources:
    grid = regions.grid
    e_species = [str(s) for s in emission["species"].values]
    e_sectors = [str(s) for s in emission["sector"].values]
    values = emission.transpose("species", "sector", "y", "x").values.astype(np.float64)
    if values.shape[2:] != grid.shape:
        raise DataError(f"gridded emissions have shape {values.shape[2:]}, the grid {grid.shape}")
    frac = regions.fractions.reshape(len(regions.names), -1)
    parts: list[tuple[np.ndarray, ...]] = []
    for b_local, sector in enumerate(e_sectors):
        cells_rate = np.zeros((grid.ny * grid.nx, len(species)))
        for a_local, sp in enumerate(e_species):
            cells_rate[:, species.index(sp)] = values[a_local, b_local].ravel()
        cells = np.flatnonzero((cells_rate > 0).any(axis=1))
        if cells.size == 0:
            continue
        f = frac[:, cells]
        rr, kk = np.nonzero(f > 0)
        flat = cells[kk]
        rate = cells_rate[flat] * f[rr, kk][:, None]
        sec = np.full(flat.size, sectors.index(sector))
        parts.append((flat, rr, sec, rate))
    if not parts:
        empty_i = np.empty(0, dtype=np.int32)
        empty_f = np.empty(0)
        return AreaSources(
            empty_f, empty_f, empty_f, empty_i, empty_i, empty_i, empty_i, np.empty((0, len(species)))
        )
    flat = np.concatenate([p[0] for p in parts])
    region = np.concatenate([p[1] for p in parts])
    sector = np.concatenate([p[2] for p in parts])
    rate = np.concatenate([p[3] for p in parts])
    order = np.lexsort((flat, region * len(sectors) + sector))
    flat, region, sector, rate = flat[order], region[order], sector[order], rate[order]
    row, col = np.divmod(flat, grid.nx)
    return AreaSources(
        x=grid.x[col].astype(np.float64),
        y=grid.y[row].astype(np.float64),
        cell_size=np.full(flat.size, grid.dx, dtype=np.float64),
        row=row.astype(np.int32),
        col=col.astype(np.int32),
        region=region.astype(np.int32),
        sector=sector.astype(np.int32),
        rate=np.ascontiguousarray(rate),
    )


def _point_sources(
    table: PointTable, regions: RegionSet, species: tuple[str, ...], sectors: tuple[str, ...]
) -> PointSources:
    keep = np.flatnonzero(table.inside)
    grid = regions.grid
    x, y = grid.lonlat_to_xy(table.lon[keep], table.lat[keep])
    region = np.empty(keep.size, dtype=np.int32)
    for n, k in enumerate(keep):
        override = str(table.region_override[k])
        name = override if override else regions.region_of_point(float(table.lon[k]), float(table.lat[k]))
        if name not in regions.names:
            raise DataError(
                f"point-source file {table.source_file!r}, source {table.ids[k]!r}: region "
                f"override {name!r} is not a region; valid regions: {', '.join(regions.names)}"
            )
        region[n] = regions.names.index(name)
    rate = np.zeros((keep.size, len(species)))
    for a, sp in enumerate(table.species):
        rate[:, species.index(sp)] = table.rate[keep, a]
    return PointSources(
        ids=table.ids[keep].astype(object),
        x=np.asarray(x, dtype=np.float64),
        y=np.asarray(y, dtype=np.float64),
        stack_height=table.stack_height[keep].astype(np.float64),
        diameter=table.diameter[keep].astype(np.float64),
        exit_temperature=table.exit_temperature[keep].astype(np.float64),
        exit_velocity=table.exit_velocity[keep].astype(np.float64),
        region=region,
        sector=np.array([sectors.index(s) for s in table.sector[keep]], dtype=np.int32),
        rate=rate,
    )


def build_emission_set(
    regions: RegionSet,
    gridded: xr.Dataset | None = None,
    points: PointTable | None = None,
    profiles: TemporalProfiles | None = None,
) -> EmissionSet:
    """Assemble kernel-ready sources from regridded area emissions, point sources and region masks.

    Parameters
    ----------
    regions
        Region masks on the model grid (their grid is the model grid).
    gridded
        Output of :func:`airshed.inputs.emissions.gridded.read_gridded_emissions` (``emission`` in kg/s
        per cell), or None.
    points
        Output of :func:`airshed.inputs.emissions.points.read_point_sources`, or None.
    profiles
        Temporal profiles (default flat).

    Returns
    -------
    EmissionSet
        Species and sectors are the union of both inputs, in canonical order.
    """
    if gridded is None and points is None:
        raise DataError("no emissions given: need gridded emissions, point sources or both")
    sp: set[str] = set()
    sec: set[str] = set()
    if gridded is not None:
        sp |= {str(s) for s in gridded["species"].values}
        sec |= {str(s) for s in gridded["sector"].values}
    if points is not None:
        sp |= set(points.species)
        sec |= set(points.sectors)
    species = ordered(sp, SPECIES)
    sectors = ordered(sec, SECTORS)
    if gridded is not None:
        area = _area_sources(gridded["emission"], regions, species, sectors)
        outside = np.zeros((len(species), len(sectors)))
        for a, s in enumerate(gridded["species"].values):
            for b, t in enumerate(gridded["sector"].values):
                outside[species.index(str(s)), sectors.index(str(t))] = float(gridded["outside_domain"][a, b])
    else:
        area = _area_sources(
            xr.DataArray(
                np.zeros((0, 0, *regions.grid.shape)),
                dims=("species", "sector", "y", "x"),
                coords={"species": [], "sector": []},
            ),
            regions,
            species,
            sectors,
        )
        outside = np.zeros((len(species), len(sectors)))
    if points is not None:
        pts = _point_sources(points, regions, species, sectors)
        out_rate = np.zeros(len(species))
        for a, s in enumerate(points.species):
            out_rate[species.index(s)] = points.rate[~points.inside, a].sum()
        out_ids = points.outside_ids
    else:
        z = np.empty(0)
        zi = np.empty(0, dtype=np.int32)
        pts = PointSources(np.empty(0, dtype=object), z, z, z, z, z, z, zi, zi, np.empty((0, len(species))))
        out_rate = np.zeros(len(species))
        out_ids = ()
    emission_set = EmissionSet(
        area=area,
        points=pts,
        species=species,
        sectors=sectors,
        regions=tuple(regions.names),
        profiles=profiles if profiles is not None else TemporalProfiles(),
        area_outside_domain=outside,
        points_outside_ids=out_ids,
        points_outside_rate=out_rate,
    )
    warn_if_nothing_emitted(emission_set)
    return emission_set


def warn_if_nothing_emitted(emissions: EmissionSet) -> None:
    """Log a warning when no source inside the domain emits anything (the run then gives zeros)."""
    inside = float(emissions.area.rate.sum() + emissions.points.rate.sum())
    if inside > 0.0:
        return
    outside = float(np.sum(emissions.area_outside_domain) + np.sum(emissions.points_outside_rate))
    where = (f"every source with emissions lies outside the model domain ({outside:.3g} kg/s outside)"
             if outside > 0.0 else "every emission rate in the inputs is zero")
    log.warning("emissions: %s (species %s): the run goes on and every concentration it writes will be 0",
                where, ", ".join(emissions.species) or "none")
