"""Particle release from gridded (area) and point sources: source tables, particle budget, release timing.

A release table is structure-of-arrays: per source a centre (x, y, projected m), a horizontal half-width
(0 for a stack, half the cell size for a grid cell), a release layer [z_bottom, z_top] (m above ground),
an integer tag (region/sector of the apportionment) and emission rates ``rate[nsource, nspecies]`` (kg/s).

- Point sources release at their effective height (stack height + plume rise, which the caller computes,
  e.g. with Briggs plume rise); z_bottom = z_top.
- Area sources release uniformly over the grid cell and uniformly through the lowest
  ``AREA_RELEASE_DEPTH_M`` = 50 m (the depth of the lowest layer of a typical met model and of the
  sampling layer): near-surface emissions are assumed mixed through it within one step, as in a
  grid model's first layer.
- Each emission period (normally one hour) gets a particle budget ``particles_per_period`` shared among
  the sources in proportion to their share of each species' total, averaged over the species with
  emissions (so a small SO2 stack is not starved by a large NMVOC area), by largest remainders; every
  source with any emission gets at least one particle. The particles of a source carry equal masses
  (rate * period / n) and are released at the times period_start + (k + 1/2) period / n, each at the
  start of the model step that contains its release time.

Common random numbers (counterfactual runs). The allocation (particles per source, their release times
and ids) is computed from ``allocation_rate`` (the baseline emissions) while the particle masses come
from ``rate`` (the emissions of this run, e.g. a zero-out or a scenario). A run whose emissions are
scaled source by source therefore moves exactly the same particles along exactly the same random paths
as the baseline; only their masses change, so (baseline - counterfactual) equals the tagged contribution
to round-off instead of to the sampling noise. A source whose scaled rate is zero still releases its
(massless) particles. A particle's id, the key of its random numbers, is a function of (period index,
``source_id``, index of the particle within its source and period) only (:func:`particle_ids`): a run
over a subset of the sources (:meth:`ReleaseTable.take`, with the full table's allocation) gives every
particle the same id and path as the run over all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from airshed.errors import AirshedInputError

#: Depth through which area-source particles are released, m.
AREA_RELEASE_DEPTH_M = 50.0
#: Bit fields of a particle id: period index | source id | particle index within source and period.
PARTICLE_INDEX_BITS = 24
SOURCE_ID_BITS = 22
PERIOD_INDEX_BITS = 17


@dataclass(frozen=True)
class ReleaseTable:
    """Sources as plain arrays (length nsource; ``rate`` is [nsource, nspecies] in kg/s).

    ``allocation_rate`` ([nsource, nspecies] kg/s, default ``rate``) decides how many particles each source
    releases; ``rate`` decides their masses (see the module docstring: common random numbers). A source
    with ``rate`` > 0 needs ``allocation_rate`` > 0 for some species. ``source_id`` (default 0, 1, ...) is
    the source's index in the full table of the study, the part of its particles' ids that names the
    source (0 <= id < 2**SOURCE_ID_BITS, distinct).
    """

    x: np.ndarray
    y: np.ndarray
    half_width: np.ndarray
    z_bottom: np.ndarray
    z_top: np.ndarray
    tag: np.ndarray
    rate: np.ndarray
    allocation_rate: np.ndarray | None = None
    source_id: np.ndarray | None = None

    @property
    def size(self) -> int:
        """Number of sources."""
        return self.x.size

    def __post_init__(self) -> None:
        rate = np.asarray(self.rate, dtype=np.float64)
        if rate.ndim != 2 or rate.shape[0] != np.asarray(self.x).size:
            raise AirshedInputError(
                f"release table: rate must be [nsource, nspecies], got shape {rate.shape}"
            )
        if not np.all(np.isfinite(rate)) or np.any(rate < 0.0):
            raise AirshedInputError("release table: emission rates must be finite and >= 0 kg/s")
        for name in ("x", "y", "half_width", "z_bottom", "z_top"):
            a = np.ascontiguousarray(getattr(self, name), dtype=np.float64)
            if a.shape != (rate.shape[0],) or not np.all(np.isfinite(a)):
                raise AirshedInputError(f"release table: {name} must be finite with one value per source")
            object.__setattr__(self, name, a)
        if np.any(self.z_top < self.z_bottom) or np.any(self.z_bottom < 0.0):
            raise AirshedInputError("release table: need 0 <= z_bottom <= z_top (m above ground)")
        object.__setattr__(self, "tag", np.ascontiguousarray(self.tag, dtype=np.int32))
        object.__setattr__(self, "rate", np.ascontiguousarray(rate))
        alloc = rate if self.allocation_rate is None else np.asarray(self.allocation_rate, dtype=np.float64)
        if alloc.shape != rate.shape or not np.all(np.isfinite(alloc)) or np.any(alloc < 0.0):
            raise AirshedInputError(
                "release table: allocation_rate must be finite, >= 0 kg/s, with the shape of rate "
                f"{rate.shape}"
            )
        orphans = np.flatnonzero((rate.sum(axis=1) > 0.0) & (alloc.sum(axis=1) <= 0.0))
        if orphans.size:
            raise AirshedInputError(
                f"release table: sources {orphans[:5].tolist()} emit (rate > 0) but have allocation_rate 0, "
                "so they would get no particles"
            )
        object.__setattr__(self, "allocation_rate", np.ascontiguousarray(alloc))
        ids = np.arange(rate.shape[0]) if self.source_id is None else np.asarray(self.source_id)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        in_range = ids.size == 0 or (ids.min() >= 0 and ids.max() < 1 << SOURCE_ID_BITS)
        if ids.shape != (rate.shape[0],) or not in_range:
            raise AirshedInputError(
                f"release table: source_id needs one value per source in [0, 2**{SOURCE_ID_BITS})"
            )
        if np.unique(ids).size != ids.size:
            raise AirshedInputError("release table: source_id values must be distinct")
        object.__setattr__(self, "source_id", ids)

    def take(self, index) -> ReleaseTable:
        """Return the sources ``index`` (indices or a mask), keeping their ``source_id`` and allocation.

        A run over such a subset, given the full table's allocation (``ParticleRun.advance(...,
        n_per_period=...)``), moves each of its particles exactly as the run over the full table does.
        """
        return ReleaseTable(
            *(getattr(self, name)[index] for name in ReleaseTable.__dataclass_fields__)
        )


def point_release_table(x, y, release_height, tag, rate, allocation_rate=None) -> ReleaseTable:
    """Release table of stacks at their effective release height (m AGL; stack height + plume rise)."""
    h = np.asarray(release_height, dtype=np.float64)
    return ReleaseTable(x, y, np.zeros_like(h), h, h.copy(), tag, rate, allocation_rate)


def area_release_table(
    x, y, cell_size: float, tag, rate, depth: float = AREA_RELEASE_DEPTH_M, allocation_rate=None
) -> ReleaseTable:
    """Release table of grid-cell sources centred at (x, y), spread over the cell and lowest ``depth`` m."""
    x = np.asarray(x, dtype=np.float64)
    return ReleaseTable(
        x, y, np.full(x.size, 0.5 * cell_size), np.zeros(x.size), np.full(x.size, float(depth)), tag, rate,
        allocation_rate,
    )  # fmt: skip


def concatenate_release_tables(*tables: ReleaseTable) -> ReleaseTable:
    """One table holding the sources of several tables, in order, with source ids 0, 1, ... in that order."""
    fields = [name for name in ReleaseTable.__dataclass_fields__ if name != "source_id"]
    return ReleaseTable(*(np.concatenate([getattr(t, name) for t in tables]) for name in fields))


def allocate_particles(rate: np.ndarray, particles_per_period: int) -> np.ndarray:
    """Return the particles per source for one emission period (int64, >= 1 for each emitting source).

    Weight of a source = mean over the species with emissions of its share of the species total; the
    budget is split by largest remainders (ties to the lower index), then every emitting source with no
    particle gets one (so the total can exceed the budget by the number of very small sources).
    """
    rate = np.asarray(rate, dtype=np.float64)
    totals = rate.sum(axis=0)
    active = totals > 0.0
    n = np.zeros(rate.shape[0], dtype=np.int64)
    if not np.any(active) or particles_per_period <= 0:
        return n
    weight = (rate[:, active] / totals[active]).mean(axis=1)
    share = weight * particles_per_period
    n = np.floor(share).astype(np.int64)
    remainder = int(particles_per_period - n.sum())
    if remainder > 0:
        order = np.argsort(-(share - n), kind="stable")
        n[order[:remainder]] += 1
    emitting = rate.sum(axis=1) > 0.0
    n[emitting & (n == 0)] = 1
    n[~emitting] = 0
    return n


def released_before(n_per_period: np.ndarray, period_start: float, period: float, time: float) -> np.ndarray:
    """How many particles of each source have release times before ``time`` (times as in the module doc)."""
    n = np.asarray(n_per_period, dtype=np.int64)
    spacing = period / np.maximum(n, 1)
    k = np.ceil((time - period_start) / spacing - 0.5).astype(np.int64)
    return np.clip(k, 0, n)


def particles_due(
    n_per_period: np.ndarray, period_start: float, period: float, t: float, dt: float
) -> np.ndarray:
    """How many particles of each source have release times in [t, t + dt) (times as in the module doc)."""
    return released_before(n_per_period, period_start, period, t + dt) - released_before(
        n_per_period, period_start, period, t
    )


def particle_ids(period_index: int, source_id: np.ndarray, index_in_source: np.ndarray) -> np.ndarray:
    """Ids (int64) of particles from their period, source id and index within source and period.

    id = period_index * 2**46 + source_id * 2**24 + index_in_source: distinct for distinct triples and
    independent of which other sources are in the run (the bit widths are checked).
    """
    source_id = np.asarray(source_id, dtype=np.int64)
    index_in_source = np.asarray(index_in_source, dtype=np.int64)
    if not 0 <= period_index < 1 << PERIOD_INDEX_BITS:
        raise AirshedInputError(f"particle ids: more than 2**{PERIOD_INDEX_BITS} emission periods in one run")
    if index_in_source.size and index_in_source.max() >= 1 << PARTICLE_INDEX_BITS:
        raise AirshedInputError(
            f"particle ids: a source releases more than 2**{PARTICLE_INDEX_BITS} particles in one period"
        )
    return (
        (np.int64(period_index) << (SOURCE_ID_BITS + PARTICLE_INDEX_BITS))
        | (source_id << PARTICLE_INDEX_BITS)
        | index_in_source
    )
