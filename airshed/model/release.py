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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from airshed.errors import AirshedInputError

#: Depth through which area-source particles are released, m.
AREA_RELEASE_DEPTH_M = 50.0


@dataclass(frozen=True)
class ReleaseTable:
    """Sources as plain arrays (length nsource; ``rate`` is [nsource, nspecies] in kg/s)."""

    x: np.ndarray
    y: np.ndarray
    half_width: np.ndarray
    z_bottom: np.ndarray
    z_top: np.ndarray
    tag: np.ndarray
    rate: np.ndarray

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


def point_release_table(x, y, release_height, tag, rate) -> ReleaseTable:
    """Release table of stacks at their effective release height (m AGL; stack height + plume rise)."""
    h = np.asarray(release_height, dtype=np.float64)
    return ReleaseTable(x, y, np.zeros_like(h), h, h.copy(), tag, rate)


def area_release_table(
    x, y, cell_size: float, tag, rate, depth: float = AREA_RELEASE_DEPTH_M
) -> ReleaseTable:
    """Release table of grid-cell sources centred at (x, y), spread over the cell and lowest ``depth`` m."""
    x = np.asarray(x, dtype=np.float64)
    return ReleaseTable(
        x, y, np.full(x.size, 0.5 * cell_size), np.zeros(x.size), np.full(x.size, float(depth)), tag, rate
    )


def concatenate_release_tables(*tables: ReleaseTable) -> ReleaseTable:
    """One table holding the sources of several tables, in order."""
    return ReleaseTable(
        *(np.concatenate([getattr(t, name) for t in tables]) for name in ReleaseTable.__dataclass_fields__)
    )


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


def particles_due(
    n_per_period: np.ndarray, period_start: float, period: float, t: float, dt: float
) -> np.ndarray:
    """How many particles of each source have release times in [t, t + dt) (times as in the module doc)."""
    n = np.asarray(n_per_period, dtype=np.int64)
    spacing = period / np.maximum(n, 1)

    def released_before(time: float) -> np.ndarray:
        k = np.ceil((time - period_start) / spacing - 0.5).astype(np.int64)
        return np.clip(k, 0, n)

    return released_before(t + dt) - released_before(t)
