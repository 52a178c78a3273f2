"""Emission inputs: gridded inventories, point sources, temporal profiles, kernel-ready source arrays.

Public API::

    read_gridded_emissions(files, grid) -> xr.Dataset      # emission(species, sector, y, x), kg/s per cell
    read_point_sources(path, grid) -> PointTable
    TemporalProfiles.builtin("flat" | "china"), temporal_factor(sector, times_utc)
    build_emission_set(regions, gridded, points, profiles) -> EmissionSet   # AreaSources + PointSources
"""

from airshed.inputs.emissions.gridded import GriddedFile, parse_emission_units, read_gridded_emissions
from airshed.inputs.emissions.points import EmissionDataWarning, PointTable, read_point_sources
from airshed.inputs.emissions.sources import AreaSources, EmissionSet, PointSources, build_emission_set
from airshed.inputs.emissions.species import SECTORS, SPECIES
from airshed.inputs.emissions.temporal import SectorProfile, TemporalProfiles, temporal_factor

__all__ = [
    "SECTORS",
    "SPECIES",
    "AreaSources",
    "EmissionDataWarning",
    "EmissionSet",
    "GriddedFile",
    "PointSources",
    "PointTable",
    "SectorProfile",
    "TemporalProfiles",
    "build_emission_set",
    "parse_emission_units",
    "read_gridded_emissions",
    "read_point_sources",
    "temporal_factor",
]
