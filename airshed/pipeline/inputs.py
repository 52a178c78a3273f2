"""A run's inputs on the model grid: grid, region masks, population, tagged emissions, meteorology.

Built-in inputs (the idealised met episode, the approximate inventory) and regridded inventories are
written once to :func:`cache_dir` and read from there afterwards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from airshed.atomic_files import CACHE_FOLDER, make_folder
from airshed.config import AirshedConfig
from airshed.errors import AirshedInputError
from airshed.grids.grid import Grid
from airshed.grids.regions import RegionSet, build_regions
from airshed.inputs.builtin_inventory import ensure_builtin_inventory
from airshed.inputs.emissions.gridded import read_gridded_emissions
from airshed.inputs.emissions.points import EmissionDataWarning, merge_point_tables, read_point_sources
from airshed.inputs.emissions.sources import EmissionSet, build_emission_set
from airshed.inputs.emissions.temporal import TemporalProfiles
from airshed.inputs.meteorology import MetSource, open_meteorology
from airshed.inputs.meteorology.formats import MetReader, met_format
from airshed.inputs.meteorology.offsets import MetOffset, OffsetMetSource
from airshed.inputs.population import builtin_population
from airshed.outputs.netcdf import write_netcdf_atomic
from airshed.pipeline.progress import ProgressBar
from airshed.version import __version__

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Folder for regenerated built-in inputs: ``$AIRSHED_CACHE_DIR`` or ``~/.cache/airshed``."""
    return make_folder(Path(os.environ.get("AIRSHED_CACHE_DIR", Path.home() / ".cache" / "airshed")))


@dataclass
class Inputs:
    """Everything read for a run, on the model grid."""

    grid: Grid
    regions: RegionSet
    population: np.ndarray | None
    emissions: EmissionSet
    met: MetSource
    input_files: list[Path]


def met_paths(cfg: AirshedConfig) -> list[Path]:
    """Return the configured meteorology files (a built-in source writes its files to the cache first)."""
    m = cfg.meteorology
    fmt = met_format(m.format)
    if fmt.generate is not None:  # its options: the [meteorology.<format>] table, when there is one
        table = getattr(m, m.format, None)
        return fmt.generate(cache_dir() / "met", cfg.run.start, table.model_dump() if table else {})
    return list(m.paths)


def open_met(cfg: AirshedConfig, grid: Grid, reader: MetReader | None = None) -> tuple[MetSource, list[Path]]:
    """Open the configured meteorology, displaced by ``[meteorology.offset]`` when it is not zero.

    ``reader``: the files already opened (the same ``meteorology`` files and format), e.g. a
    :class:`~airshed.inputs.meteorology.shared_reader.SharedWindowsReader` shared by ensemble members.
    """
    m = cfg.meteorology
    paths = met_paths(cfg)
    if reader is None:
        met = open_meteorology(m.format, paths, grid, m.heights_m, variables=dict(m.variables) or None,
                               roughness_length_m=m.roughness_length_m)
    else:
        met = MetSource(reader, grid, m.heights_m, m.roughness_length_m, str(m.format).lower())
    offset = MetOffset(**m.offset.model_dump())
    return (met if offset.is_zero else OffsetMetSource(met, offset)), list(paths)


def regridded_emissions(files: list[Path], grid: Grid) -> xr.Dataset:
    """Gridded emissions on the model grid, cached on disk by input files (path, size, mtime) and grid.

    Exact polygon regridding of a 0.1 degree inventory takes seconds to tens of seconds; studies rerun
    the same inventory on the same grid many times (scenarios, zero-out checks, ensembles).
    """
    key = json.dumps({"files": [(str(Path(f).resolve()), Path(f).stat().st_size, Path(f).stat().st_mtime_ns)
                                for f in files],
                      "grid": [grid.crs.to_wkt(), grid.x0, grid.y0, grid.dx, grid.nx, grid.ny],
                      "airshed": __version__})
    path = cache_dir() / "regridded" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.nc"
    if path.is_file():
        with xr.open_dataset(path) as cached:
            return cached.load()
    ds = read_gridded_emissions(files, grid)
    make_folder(path.parent)
    write_netcdf_atomic(ds, path, compression_level=1, destination=CACHE_FOLDER)
    return ds


def load_emissions(cfg: AirshedConfig, regions: RegionSet) -> tuple[EmissionSet, list[Path]]:
    """Read gridded and point emissions (and the built-in inventory), tagged by region and sector."""
    e = cfg.emissions
    gridded_files = [Path(p) for p in e.gridded]
    point_files = [Path(p) for p in e.points]
    if e.inventory == "builtin":
        nc, csv_path = ensure_builtin_inventory(cache_dir() / "inventory", e.builtin.year)
        gridded_files.insert(0, nc)
        point_files.insert(0, csv_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EmissionDataWarning)
        gridded = regridded_emissions(gridded_files, regions.grid) if gridded_files else None
        points = merge_point_tables([read_point_sources(p, regions.grid) for p in point_files]) \
            if point_files else None
    for w in caught:
        log.warning("%s", w.message)
    profiles = TemporalProfiles.builtin("china" if e.temporal_profiles == "typical" else "flat")
    return build_emission_set(regions, gridded, points, profiles), gridded_files + point_files


def open_met_reader(cfg: AirshedConfig) -> MetReader:
    """Open the configured meteorology files with their format's reader (no window read yet)."""
    m = cfg.meteorology
    paths = [Path(p) for p in met_paths(cfg)]
    return met_format(str(m.format).lower()).open(paths, dict(m.variables) or None)


def read_inputs(cfg: AirshedConfig, progress: bool = False, met_reader: MetReader | None = None) -> Inputs:
    """Grid, region masks, population, emissions and meteorology of a run (a step bar when ``progress``).

    ``met_reader``: the meteorology files already opened (:func:`open_met`).
    """
    if cfg.regions.population not in ("builtin", "none"):
        raise AirshedInputError(
            f"regions.population = {cfg.regions.population}: reading a population file is not supported yet; "
            "use 'builtin' or 'none'")
    with ProgressBar(progress, 4, "reading inputs", unit="steps") as advance:
        grid = cfg.grid.build()
        regions = build_regions(grid, cfg.regions.spec, cfg.regions.name_column)
        advance()
        population = (builtin_population(grid, cfg.regions.spec) if cfg.regions.population == "builtin"
                      else None)
        advance()
        emissions, emission_files = load_emissions(cfg, regions)
        advance()
        met, met_files = open_met(cfg, grid, met_reader)
        advance()
    return Inputs(grid, regions, population, emissions, met, met_files + emission_files)


def file_checksums(paths: list[Path]) -> list[dict[str, str]]:
    """``[{path, sha256}]`` of input files, for provenance."""
    out = []
    for p in paths:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        out.append({"path": str(p), "sha256": h.hexdigest()})
    return out
