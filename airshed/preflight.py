"""Checks before any compute: can the run write its file, and does it fit in memory and on disk.

:func:`preflight_run` runs at the start of every run (before inputs are read), and
:func:`validate_study` is what ``airshed config validate`` adds to the schema check: everything the run
would reject from the config and the headers of its files, without computing anything.

- **Output**: the folder exists and is writable (a temporary file is created and removed), and the path
  is not a folder.
- **Disk space**: the folder's free space is at least the run file's uncompressed size
  (:func:`run_file_bytes`: every variable of the layout in README.md, float64; compression makes the
  file smaller, by about 2-3x for the default case, so this is an upper bound).
- **Memory** (:func:`memory_estimate`): the particle state at its peak (particles alive x bytes per
  particle, measured from :class:`~airshed.model.lagrangian.ParticleRun`'s arrays, x3 for the moment the
  arrays grow and old and new coexist), plus the tagged period sums (3 copies of tags x species x cells,
  one of them per sampling class), the kept met windows, the tagged period sums of each particle release
  window alive at once (:func:`release_windows_alive`; per sampling class, ``[uncertainty]
  particle_classes``) and the process itself (:data:`PROCESS_BASE_BYTES`). On the default case this gives
  2.30 GB against 2.30 GB measured (peak RSS with the kernels cached; 5 Dec 2026); 1.76 against 1.44 GB
  for its first two days and 2.95 against 2.73 GB with 12-h release windows; with 10 sampling classes
  9.29 against 8.66 GB (6 Dec; the estimate left the classes out until then and said 2.30 GB). Compared
  with the memory available (serial and threads schedulers) or with
  ``[compute] memory_limit`` per worker (Dask clusters: a work unit holds every source region, the
  particles of its release windows or the hours of its chunk, the run's tagged sums and met windows, so
  the run's estimate bounds a unit's and a worker must hold it, besides :data:`WORKER_BASE_BYTES` of its
  own). Above the limit the run is refused with the estimate; above half of it, a warning.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from airshed.config import AirshedConfig
from airshed.errors import AirshedInputError

log = logging.getLogger(__name__)

WORKER_BASE_BYTES = 0.25e9
"""Memory of a Dask worker process before it holds any work: 212 MiB measured (5 Dec 2026, an idle
LocalCluster worker with the airshed pipeline imported), rounded up. A cluster run needs it on top of the
run's estimate in every worker."""
PROCESS_BASE_BYTES = 0.3e9
"""Memory of the airshed process itself, for serial and threads runs: 257 MB measured after the pipeline's
imports (5 Dec 2026), rounded up. The first run on a machine also compiles the Numba kernels, which takes
about 0.6 GB more while it lasts (default case: peak 2.92 GB cold, 2.30 GB with the kernels cached);
that is not counted."""
MEMORY_WARN_FRACTION = 0.5
"""Share of the memory limit above which the estimate is a warning (above 1: refused)."""
GROWTH_FACTOR = 3.0
"""Peak particle memory over the live state: capacity doubles, and old and new arrays coexist meanwhile."""
MIN_DRIFT_M_S = 1.0
"""Mean drift speed for the residence bound: a particle stays at most half the domain's extent / 1 m/s."""
MET_WINDOWS_KEPT = 8
"""Met windows kept in memory by the pipeline (``airshed.pipeline.study.MetByDay``), 25 hourly steps each."""
MET_FIELDS = 20
"""Met fields per window and height (u, v, w on levels; ~15 surface fields), for the memory estimate."""
SECTORS_AT_MOST = 6
"""Canonical sectors (airshed.inputs.emissions.species.SECTORS): the most a run's tags can have."""
OUTPUT_SPECIES_COUNT = 8
EMITTED_SPECIES_COUNT = 5


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak memory of a run, bytes, and what it is made of."""

    particles: int
    bytes_per_particle: float
    particle_bytes: float
    field_bytes: float
    window_bytes: float = 0.0
    """The tagged period sums of the particle release windows alive at once."""
    process_bytes: float = 0.0
    """The airshed process itself (serial and threads schedulers; a cluster adds its workers' own)."""

    @property
    def total(self) -> float:
        """Particle state, tagged fields, met windows, release windows' sums and the process, bytes."""
        return self.particle_bytes + self.field_bytes + self.window_bytes + self.process_bytes

    def describe(self) -> str:
        """E.g. ``~5.2 GB (12,000,000 particles x 125 B x 3 + 410 MB of fields + ...)``."""
        parts = f"{self.particles:,} particles x {self.bytes_per_particle:.0f} B x {GROWTH_FACTOR:g}" \
            if self.particles else "no particles"
        extra = f" + {_gb(self.window_bytes)} of release windows' sums" if self.window_bytes else ""
        extra += f" + {_gb(self.process_bytes)} for the process" if self.process_bytes else ""
        return f"~{_gb(self.total)} ({parts} + {_gb(self.field_bytes)} of fields{extra})"


def _gb(n: float) -> str:
    """Format a size in GB, or in MB below 1 GB."""
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def output_path(cfg: AirshedConfig, output: Path | None = None) -> Path:
    """Return the run file a run of ``cfg`` writes (``output`` overrides ``run.output``)."""
    return Path(output) if output is not None else Path(cfg.run.output)


def check_output_writable(path: Path) -> None:
    """Check that the output's folder exists and is writable and that the output is not a folder."""
    from airshed.atomic_files import remove_quietly, temporary_beside

    path = Path(path)
    if path.is_dir():
        raise AirshedInputError(f"output {path} is a folder; give the run file's name "
                                "(run.output / --output)")
    if path.exists() and not os.access(path, os.W_OK):
        # the file itself may be read-only while the folder is writable: rename would still replace it
        log.debug("output %s exists and is read-only; it is replaced by rename", path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise AirshedInputError(f"output folder {folder} does not exist (run.output / --output = {path})")
    remove_quietly(temporary_beside(path))  # the one test that counts: can a file be created there?


def region_count(cfg: AirshedConfig) -> int:
    """Source regions of the run, ``outside`` included (a built-in set's count, or the file's names)."""
    from airshed.grids.boundaries import BUILTIN_SETS, load_boundaries

    spec = cfg.regions.spec
    if isinstance(spec, str) and spec in BUILTIN_SETS:
        return len(BUILTIN_SETS[spec]) + 1
    return len(load_boundaries(spec, cfg.regions.name_column)) + 1


def run_file_bytes(cfg: AirshedConfig, n_regions: int, n_sectors: int = SECTORS_AT_MOST) -> int:
    """Uncompressed size of the run file of ``cfg`` (float64 variables of the layout in README.md), bytes."""
    grid = cfg.grid.build()
    cells = grid.nx * grid.ny
    period_h = cfg.lagrangian.output_interval_h if cfg.run.core == "lagrangian" else 1
    t = cfg.run.hours // period_h
    s, q, r, k, e = OUTPUT_SPECIES_COUNT, n_regions - 1, n_regions, n_sectors, EMITTED_SPECIES_COUNT
    values = (
        t * s * cells + t * cells  # concentration, pm25
        + t * q * s + t * q * r * k * s  # receptor_concentration, receptor_contribution
        + r * k * s * cells + r * cells + 3 * cells  # contribution, region_fraction, population, lat, lon
        + 3 * q * r * s + 6 * q * s + q * r * e + r * k * e + 2 * q  # tables
        + 2 * t + 2 * (grid.nx + grid.ny)  # time bounds, x/y bounds
    )
    return int(8 * values)


def bytes_per_particle(n_tracers: int | None = None) -> float:
    """Bytes of particle state per particle, measured from a :class:`ParticleRun`'s per-particle arrays."""
    from airshed.model.lagrangian import LagrangianParameters, ParticleRun
    from airshed.physics.mechanism import TRACERS

    tracers = TRACERS if n_tracers is None else TRACERS[:n_tracers]
    run = ParticleRun(0.0, 0.0, 1000.0, 2, 2, 1000.0, 1, LagrangianParameters.for_species(tracers), 0)
    capacity = run.x.size
    per_particle = [a for a in vars(run).values() if isinstance(a, np.ndarray) and a.ndim >= 1
                    and a.shape[-1] == capacity]
    return sum(a.nbytes for a in per_particle) / capacity


def particles_alive(cfg: AirshedConfig) -> int:
    """Upper bound of the particles alive at once: released per hour x min(run, residence) hours.

    No particle is taken as deposited; one leaves the domain at the latest after drifting half its extent
    at :data:`MIN_DRIFT_M_S`.
    """
    if cfg.run.core != "lagrangian":
        return 0
    return int(cfg.lagrangian.particles_per_hour * min(cfg.run.hours, residence_hours(cfg)))


def residence_hours(cfg: AirshedConfig) -> float:
    """Upper bound of a particle's time in the domain, h: half the domain's extent at MIN_DRIFT_M_S."""
    grid = cfg.grid.build()
    half_extent_m = 0.25 * (grid.nx + grid.ny) * grid.dx  # half of the mean of width and height
    return max(half_extent_m / MIN_DRIFT_M_S / 3600.0, 1.0)


def release_windows_alive(cfg: AirshedConfig) -> int:
    """Release windows whose particles can be in the domain at once (each keeps its tagged period sums).

    All of a short run's windows; in a long one, those released within a particle's residence time.
    """
    if cfg.run.core != "lagrangian":
        return 0
    from airshed.cores.lagrangian import release_window_periods

    window_h = release_window_periods(cfg) * cfg.lagrangian.output_interval_h
    n_windows = -(-cfg.run.hours // window_h)
    return int(min(n_windows, np.ceil(residence_hours(cfg) / window_h) + 1))


def memory_estimate(cfg: AirshedConfig, n_regions: int) -> MemoryEstimate:
    """Peak memory of a run of ``cfg`` (see the module docstring for what is counted)."""
    grid = cfg.grid.build()
    cells = grid.nx * grid.ny
    n = particles_alive(cfg)
    per = bytes_per_particle() if n else 0.0
    tags = n_regions * SECTORS_AT_MOST
    # sampling classes ride on the tags: the windows' fields and the core's period sum hold every class
    classes = cfg.uncertainty.sampling_classes if cfg.run.core == "lagrangian" else 1
    fields = 8.0 * ((2 + classes) * tags * OUTPUT_SPECIES_COUNT * cells
                    + MET_WINDOWS_KEPT * 25 * (len(cfg.meteorology.heights_m) + 15) * cells)
    windows = 8.0 * release_windows_alive(cfg) * tags * classes * OUTPUT_SPECIES_COUNT * cells
    own = PROCESS_BASE_BYTES if cfg.compute.scheduler in ("serial", "threads") else 0.0
    return MemoryEstimate(n, per, n * per * GROWTH_FACTOR, fields, windows, own)


def available_memory() -> int:
    """Memory available to new allocations without swapping, bytes (psutil)."""
    import psutil

    return int(psutil.virtual_memory().available)


def check_memory(cfg: AirshedConfig, n_regions: int) -> MemoryEstimate:
    """Refuse a run whose estimated peak exceeds its memory limit; warn above half of it."""
    from dask.utils import parse_bytes

    est = memory_estimate(cfg, n_regions)
    compute = cfg.compute
    if compute.scheduler in ("serial", "threads"):
        limit, what, base = available_memory(), "the memory available on this machine", 0.0
    else:
        # a work unit holds every source region (units split the run in time): each worker must hold the
        # run's estimate, besides its own
        limit = parse_bytes(compute.memory_limit)
        what = f"`compute.memory_limit` = {compute.memory_limit!r} per worker"
        base = WORKER_BASE_BYTES
    worker = f" (+ {_gb(base)} for the worker process itself)" if base else ""
    if est.total + base > limit:
        hint = ("lower `lagrangian.particles_per_hour`, shorten the run, coarsen the grid"
                if est.particles else "coarsen the grid, shorten the run or use fewer regions")
        raise AirshedInputError(
            f"the run needs an estimated {est.describe()} of memory{worker}, more than {what} "
            f"({_gb(limit)}); {hint}"
        )
    if est.total + base > MEMORY_WARN_FRACTION * limit:  # the same need as the refusal above
        log.warning("the run needs an estimated %s of memory%s, more than half of %s (%s)", est.describe(),
                    worker, what, _gb(limit))
    return est


def check_free_space(path: Path, needed: int) -> None:
    """Refuse when the output folder has less free space than ``needed`` bytes."""
    folder = Path(path).parent if str(Path(path).parent) else Path(".")
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise AirshedInputError(
            f"not enough space for the run file {path}: it needs up to {needed / 1e6:,.0f} MB (uncompressed; "
            f"compressed it is about 2-3x smaller) and {folder} has {free / 1e6:,.0f} MB free; free space, "
            "write elsewhere (run.output / --output) or shorten the run"
        )


def preflight_run(cfg: AirshedConfig, output: Path | None = None) -> Path:
    """Check output, disk space and memory before a run reads its inputs; return the output path."""
    path = output_path(cfg, output)
    check_output_writable(path)
    n_regions = region_count(cfg)
    check_free_space(path, run_file_bytes(cfg, n_regions))
    check_memory(cfg, n_regions)
    return path


# ---------------------------------------------------------------------------------------------------
# airshed config validate
# ---------------------------------------------------------------------------------------------------
def region_names(cfg: AirshedConfig) -> list[str]:
    """Source-region names of the run, ``outside`` last (a boundary file is read, not rasterised)."""
    from airshed.grids.boundaries import OUTSIDE, load_boundaries

    return [*map(str, load_boundaries(cfg.regions.spec, cfg.regions.name_column)["name"]), OUTSIDE]


def check_stations(cfg: AirshedConfig, stations: Path | None = None) -> None:
    """Read the station list and place the stations on the grid, as the run does before computing.

    ``stations`` (a ``--stations`` file) replaces ``[receptors] stations``. A missing column or value, a
    duplicated id or a station outside the grid is the run's one-line error.
    """
    path = stations if stations is not None else cfg.receptors.stations
    if path is None:
        return
    from airshed.grids.sampling import point_sampler
    from airshed.inputs.observations import read_stations

    table = read_stations(path)
    source = f"stations ({path})" if stations is not None else f"receptors.stations ({path})"
    point_sampler(cfg.grid.build(), table["id"], table["name"], table["lon"], table["lat"],
                  cfg.receptors.sampling, source=source)


def check_population(cfg: AirshedConfig) -> None:
    """Refuse a population file (not read yet) before the run does."""
    if cfg.regions.population not in ("builtin", "none"):
        raise AirshedInputError(
            f"regions.population = {cfg.regions.population}: reading a population file is not supported yet; "
            "use 'builtin' or 'none'")


def check_meteorology_headers(cfg: AirshedConfig) -> str:
    """Open the met files lazily: variables, units, domain coverage and period; return a summary line."""
    from airshed.inputs.meteorology import open_meteorology
    from airshed.inputs.meteorology.common import check_period

    m = cfg.meteorology
    if m.format == "builtin":
        return f"built-in episode covering {m.builtin.days:g} days from the run start"
    met = open_meteorology(m.format, list(m.paths), cfg.grid.build(), m.heights_m,
                           variables=dict(m.variables) or None, roughness_length_m=m.roughness_length_m)
    start, end = (np.datetime64(t.replace(tzinfo=None), "ns") for t in (cfg.run.start, cfg.run.end))
    check_period(met.times, start, end, met.label)
    derived = f"; derived: {', '.join(sorted(met.derived))}" if met.derived else ""
    return f"{met.times[0]} to {met.times[-1]} covers the run; the domain lies inside the data{derived}"


def check_emission_headers(cfg: AirshedConfig) -> None:
    """Read the extra emission files' headers and values (units, variables, NaN, negatives, columns)."""
    from airshed.inputs.emissions.gridded import GriddedFile, _read_file
    from airshed.inputs.emissions.points import read_point_sources

    for path in cfg.emissions.gridded:
        _read_file(GriddedFile(path=Path(path)))
    grid = cfg.grid.build()
    for path in cfg.emissions.points:
        read_point_sources(Path(path), grid)


def check_scenarios(cfg: AirshedConfig, names: list[str], scenario: str | None) -> None:
    """Every scenario's region names belong to the run's region set (and ``scenario`` exists)."""
    from airshed.scenarios import scenario_named, validate_scenario

    if scenario is not None:
        scenario_named(cfg, scenario)
    for s in cfg.scenarios:
        validate_scenario(s, names, cfg.run.start, cfg.run.end, cfg.source)


def check_zero_out(region: str | None, names: list[str]) -> None:
    """Check that the region of ``--zero-out`` exists."""
    if region is not None and region not in names:
        raise AirshedInputError(f"--zero-out {region!r}: unknown region; valid regions: {', '.join(names)}")


def validate_study(cfg: AirshedConfig, zero_out: str | None = None, scenario: str | None = None,
                   output: Path | None = None) -> list[tuple[str, str]]:
    """Everything a run of ``cfg`` would reject before computing, checked now; returns summary rows.

    Raises AirshedInputError (one line) for: a population file, unknown region names in scenarios or
    ``zero_out``, an unknown ``scenario``, a region file without its name column, a station list the run
    would reject (:func:`check_stations`), met files that lack a
    variable, have unknown units, or do not cover the domain or the period, emission files the readers
    reject, an output folder that is missing or read-only, an output path that is a folder, too little
    disk space or memory.
    """
    started = datetime.now()
    check_population(cfg)
    names = region_names(cfg)
    check_zero_out(zero_out, names)
    check_scenarios(cfg, names, scenario)
    met = check_meteorology_headers(cfg)
    check_emission_headers(cfg)
    check_stations(cfg)
    path = output_path(cfg, output)
    check_output_writable(path)
    size = run_file_bytes(cfg, len(names))
    check_free_space(path, size)
    est = check_memory(cfg, len(names))
    log.debug("validated the study in %.1f s", (datetime.now() - started).total_seconds())
    return [("region names", f"{len(names) - 1} + outside: {', '.join(names[:-1])}"), ("met coverage", met),
            ("run file", f"{path}: writable, up to {size / 1e6:,.0f} MB uncompressed"),
            ("memory", f"estimated {est.describe()}")]
