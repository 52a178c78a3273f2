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
  the sources in proportion to their weight: their share of each species' total, averaged over the
  species with emissions (so a small SO2 stack is not starved by a large NMVOC area). The budget is
  honoured however many sources there are, by a deterministic carry-over (:class:`ParticleCredit`):
  every period a source gains credit budget * weight and releases floor(credit) particles (credit -=
  released; it starts at 1/2), so a source worth 0.05 particle per period releases one particle every
  20 periods. The
  mass a source emitted since its last release (rate * period summed over those periods, per species)
  is pending until then and is carried by the particles it releases, in equal parts; mass is conserved
  exactly per source and species, and pending mass counts as emitted and airborne (held at the source)
  in the particle budget. The particles of a source in a period are released at the times
  period_start + (k + 1/2) period / n, each at the start of the model step that contains its release time.

Common random numbers (counterfactual runs). The allocation (particles per source, their release times
and ids) is computed from ``allocation_rate`` (the baseline emissions) while the particle masses come
from ``rate`` (the emissions of this run, e.g. a zero-out or a scenario). A run whose emissions are
scaled source by source therefore moves exactly the same particles along exactly the same random paths as
the baseline; only their masses change, so (baseline - counterfactual) equals the tagged contribution to
round-off instead of to the sampling noise. A source whose scaled rate is zero still releases its
(massless) particles; the pending mass of a source is the mass of ``rate``. A particle's id, the key of
its random numbers, is a function of (period index, ``source_id``, index of the particle within its
source and period) only (:func:`particle_ids`): a run over a subset of the sources
(:meth:`ReleaseTable.take`, with the full table's per-source shares of the budget) gives every particle
the same id, mass and path as the run over all of them, since the credit and pending mass of a source
depend on its own share and rate only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from airshed.errors import AirshedInputError
from airshed.model.random import mix64

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
        # tables are built every period: the ids of a study's tables and subsets increase, so check that
        # first (O(n)) and sort only otherwise
        if ids.size > 1 and not np.all(ids[1:] > ids[:-1]) and np.unique(ids).size != ids.size:
            raise AirshedInputError("release table: source_id values must be distinct")
        object.__setattr__(self, "source_id", ids)

    def take(self, index, tag_offset: int = 0) -> ReleaseTable:
        """Return the sources ``index`` (indices or a mask), keeping their ``source_id`` and allocation.

        A run over such a subset, given the full table's shares of the budget (``ParticleRun.advance(...,
        particle_share=...)``), moves each of its particles exactly as the run over the full table does.
        ``tag_offset`` is added to the tags (e.g. to number one region's tags from 0).
        """
        fields = {name: getattr(self, name)[index] for name in ReleaseTable.__dataclass_fields__}
        fields["tag"] = fields["tag"] + tag_offset
        return ReleaseTable(**fields)


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


def allocation_weights(rate: np.ndarray) -> np.ndarray:
    """Return each source's weight in the particle budget (sums to 1 over the sources; 0 for none emitting).

    Weight of a source = mean over the species with emissions of its share of the species total.
    """
    rate = np.asarray(rate, dtype=np.float64)
    totals = rate.sum(axis=0)
    active = totals > 0.0
    if not np.any(active):
        return np.zeros(rate.shape[0])
    return (rate[:, active] / totals[active]).mean(axis=1)


def allocate_particles(rate: np.ndarray, particles_per_period: int) -> np.ndarray:
    """Return particles per source for ONE period on its own (int64, >= 1 for each emitting source).

    The budget is split by :func:`allocation_weights` and largest remainders (ties to the lower index),
    then every emitting source with no particle gets one, so the total exceeds the budget by up to the
    number of small sources. Runs over many periods use :class:`ParticleCredit` instead, which honours
    the budget.
    """
    rate = np.asarray(rate, dtype=np.float64)
    n = np.zeros(rate.shape[0], dtype=np.int64)
    if particles_per_period <= 0 or not np.any(rate > 0.0):
        return n
    share = allocation_weights(rate) * particles_per_period
    n = np.floor(share).astype(np.int64)
    remainder = int(particles_per_period - n.sum())
    if remainder > 0:
        order = np.argsort(-(share - n), kind="stable")
        n[order[:remainder]] += 1
    emitting = rate.sum(axis=1) > 0.0
    n[emitting & (n == 0)] = 1
    n[~emitting] = 0
    return n


#: Credit within this much of a whole particle counts as the whole particle, so that a source whose
#: share is 1/k releases after exactly k periods although k rounded shares may sum to just below 1.
CREDIT_ROUNDING = 1e-9
#: Credit of a source before its first period: half a particle, so that a source has released its summed
#: shares rounded to the nearest whole particle (not rounded down), and the run releases about the budget
#: from its first period on instead of owing each source half a particle on average.
INITIAL_CREDIT = 0.5


class ParticleCredit:
    """Particle credit and pending mass per source id, carried from period to period.

    Every :meth:`allocate` call is one emission period: source ``source_id`` (starting with
    ``INITIAL_CREDIT``) gains ``share`` particles of credit and ``mass`` kg of pending emission per
    species; it releases floor(credit) particles, which carry its whole pending mass in equal parts. The
    state of a source depends on its own shares and masses only, so runs over subsets of the sources
    allocate every source as the full run does.

    :attr:`released` counts every source's particles over the run (sampling classes, :func:`particle_class`).
    """

    def __init__(self, nspecies: int) -> None:
        self.released = np.zeros(0, dtype=np.int64)
        self.credit = np.zeros(0)
        self.pending = np.zeros((0, int(nspecies)))

    def restore(self, credit: np.ndarray, pending: np.ndarray, released: np.ndarray) -> None:
        """Continue from another credit's state (``credit``, ``pending`` and ``released``, by source id)."""
        self._grow(credit.size)
        self.credit[: credit.size] = credit
        self.pending[: credit.size] = pending
        self.released[: credit.size] = released

    def _grow(self, size: int) -> None:
        if size > self.credit.size:
            size = max(size, 2 * self.credit.size)
            credit, pending = np.full(size, INITIAL_CREDIT), np.zeros((size, self.pending.shape[1]))
            released = np.zeros(size, dtype=np.int64)
            credit[: self.credit.size] = self.credit
            pending[: self.credit.size] = self.pending
            released[: self.credit.size] = self.released
            self.credit, self.pending, self.released = credit, pending, released

    def allocate(
        self, source_id: np.ndarray, share: np.ndarray, mass: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Add one period; return particles per source (int64) and the mass per particle (kg, [n, nspecies]).

        ``source_id`` distinct ids, ``share`` this period's particles per source (budget * weight, >= 0),
        ``mass`` [nsource, nspecies] kg emitted in the period. The mass per particle is 0 for a source
        releasing nothing (its mass stays pending).
        """
        source_id = np.asarray(source_id, dtype=np.int64)
        share = np.asarray(share, dtype=np.float64)
        mass = np.asarray(mass, dtype=np.float64)
        if share.shape != source_id.shape or not np.all(np.isfinite(share)) or np.any(share < 0.0):
            raise AirshedInputError(
                f"particle shares need {source_id.size} finite values >= 0 (one per source)"
            )
        if mass.shape != (source_id.size, self.pending.shape[1]):
            raise AirshedInputError(
                f"particle credit: mass must be [{source_id.size}, {self.pending.shape[1]}], got {mass.shape}"
            )
        if source_id.size:
            self._grow(int(source_id.max()) + 1)
        credit = self.credit[source_id] + share
        n = np.floor(credit + CREDIT_ROUNDING).astype(np.int64)
        self.credit[source_id] = credit - n
        self.released[source_id] += n
        pending = self.pending[source_id] + mass
        releasing = n > 0
        particle_mass = np.zeros_like(pending)
        particle_mass[releasing] = pending[releasing] / n[releasing, None]
        pending[releasing] = 0.0
        self.pending[source_id] = pending
        return n, particle_mass

    def pending_mass(self) -> np.ndarray:
        """Mass emitted but not yet released, summed over the sources, kg per species."""
        return self.pending.sum(axis=0)


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


#: Stream of the class hash (any constant other than the particle keys' seed offsets): the class of a
#: particle does not follow its random path.
_CLASS_STREAM = np.uint64(0xA5A5_5A5A_C3C3_3C3C)


def particle_class(ids: np.ndarray, index_in_run: np.ndarray, n_classes: int) -> np.ndarray:
    """Return the sampling class (int32, 0..n_classes-1) of particles, for batch means.

    ``index_in_run`` counts each particle among all its source's particles since the start of the run
    (:attr:`ParticleCredit.released` before its period plus its index in the period). A source's particles
    go round the classes in that order, starting at a class drawn from the source id by a hash:
    ``(index_in_run + mix64(source ^ stream)) mod n``. Every class so holds every n-th particle of every
    source's stream: the classes are systematic subsamples of the run with 1/n of its particles each,
    whose counts per source differ by at most one over the whole run. Dealing the particles out period by
    period instead gives the odd particles of the many sources that release fewer than n per period to
    some classes only, a spread between the classes that the run does not have (it overstated the
    standard error 1.5-fold in the small test case); FLEXPART's ``nclassunc`` draws each particle's class
    at random, which adds the spread of the class sizes likewise. The release timing is untouched, and
    the class depends on the source's own history only, so it is the same in any partition of the run.
    """
    if n_classes < 1:
        raise AirshedInputError(f"particle classes: need at least 1 class, got {n_classes}")
    ids = np.asarray(ids, dtype=np.int64)
    source = ((ids >> PARTICLE_INDEX_BITS) & ((1 << SOURCE_ID_BITS) - 1)).astype(np.uint64)
    n = np.uint64(n_classes)
    with np.errstate(over="ignore"):
        offset = mix64(source ^ _CLASS_STREAM) % n
    return ((np.asarray(index_in_run, dtype=np.uint64) + offset) % n).astype(np.int32)
