"""The state vector of the inversion: emission scaling factors and background terms.

Emission elements are scaling factors (dimensionless, prior 1) of the emissions of a **region group** x a
**sector group** x an **emitted species** over a **time window**:

- region groups: the run's source regions (``"run"``), or provinces (``"provinces"``: a built-in city
  region set's Hebei cities become one ``Hebei`` element, by the census adcodes), ``outside`` always alone;
- sector groups: each sector (``"each"``) or all sectors together (``"total"``);
- emitted species: those that make an observed species (SO2 for SO2 and sulfate in PM2.5, NOx for NO2 and
  nitrate, PM2.5 for primary PM2.5); species that no observation sees are not estimated;
- time windows: the whole run (``"run"``), calendar months (``"month"``), or ``"<N>d"`` / ``"<N>h"``
  blocks from the run start. A window holds the contributions **observed** in it: exact for the plume
  core, and for the particle core an approximation by the transport time (hours to a day) -- emissions
  late in a window are partly seen in the next -- so choose windows of days or longer.

Background elements are additive concentrations (ug m-3, prior 0), one per observed species and window:
what the run does not model (sources outside the domain, unmodelled chemistry such as ammonium and
secondary organics in PM2.5). Elements whose tags emitted nothing are left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from airshed.errors import AirshedInputError
from airshed.grids.boundaries import OUTSIDE, census_table
from airshed.verification.sensitivity import StationSensitivity

REGION_GROUPINGS = ("run", "provinces")
"""Ways to group the run's source regions into state elements."""

SECTOR_MODES = ("each", "total")
"""Ways to group sectors into state elements."""

ALL = "all"
"""Sector (or region) name of an element that covers all of them."""


def province_groups(regions: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Group region names by province (census adcodes); unknown names and ``outside`` stay alone.

    Returns
    -------
    dict
        Province (or region) name -> member region names, in order of first member.
    """
    census = census_table()
    code = dict(zip(census["name_en"].astype(str), census["adcode"].astype(int), strict=True))
    name_of = {c: n for n, c in code.items()}
    groups: dict[str, list[str]] = {}
    for r in regions:
        group = r
        if r in code and r != OUTSIDE:
            province = code[r] // 10000 * 10000
            group = name_of.get(province, r)
        groups.setdefault(group, []).append(r)
    return {g: tuple(m) for g, m in groups.items()}


def region_groups(regions: tuple[str, ...], grouping: str) -> dict[str, tuple[str, ...]]:
    """Group name -> member source regions for a grouping of :data:`REGION_GROUPINGS`."""
    if grouping == "run":
        return {r: (r,) for r in regions}
    if grouping == "provinces":
        return province_groups(regions)
    raise AirshedInputError(f"region grouping {grouping!r}: expected one of {', '.join(REGION_GROUPINGS)}")


def time_windows(times: np.ndarray, spec: str) -> np.ndarray:
    """Window index of every hour (``times`` = end of each hour) for a window spec (module docstring)."""
    starts = times.astype("datetime64[h]") - np.timedelta64(1, "h")
    if spec == "run":
        return np.zeros(times.size, dtype=np.int64)
    if spec == "month":
        months = starts.astype("datetime64[M]")
        return np.unique(months, return_inverse=True)[1].astype(np.int64)
    match = re.fullmatch(r"(\d+)([dh])", spec.strip())
    if not match or int(match.group(1)) < 1:
        raise AirshedInputError(f"state window {spec!r}: expected 'run', 'month', '<N>d' or '<N>h' (N >= 1)")
    hours = int(match.group(1)) * (24 if match.group(2) == "d" else 1)
    elapsed = (starts - starts[0]).astype("timedelta64[h]").astype(np.int64)
    return elapsed // hours


@dataclass(frozen=True)
class StateVector:
    """Elements of the state (see the module docstring).

    Attributes
    ----------
    kind
        (n,) ``"emission"`` or ``"background"``.
    region, sector, species
        (n,) region group and sector group (``"all"``), emitted species of an emission element; for a
        background element region and sector are ``"all"`` and species is the observed species.
    window
        (n,) window index.
    window_bounds
        (W, 2) start and end of each window, datetime64[ns].
    members
        Region group -> member source regions.
    emission
        (n,) tonnes emitted by an emission element's tags in its window (the run's emission over the run
        times the window's share of the hours); 0 for background.
    prior
        (n,) prior mean: 1 for emission elements, 0 for background (ug m-3).
    tag_element
        Emitted species -> (W, R, K) element index of each tag in each window (-1: not estimated).
    hour_window
        (T,) window index of every hour of the run.
    """

    kind: np.ndarray
    region: np.ndarray
    sector: np.ndarray
    species: np.ndarray
    window: np.ndarray
    window_bounds: np.ndarray
    members: dict[str, tuple[str, ...]]
    emission: np.ndarray
    prior: np.ndarray
    tag_element: dict[str, np.ndarray]
    hour_window: np.ndarray

    @property
    def n(self) -> int:
        """Number of elements."""
        return int(self.kind.size)

    @property
    def is_emission(self) -> np.ndarray:
        """(n,) True for emission elements."""
        return self.kind == "emission"

    def labels(self) -> list[str]:
        """Return a readable label per element, e.g. ``Hebei/power/SO2@0`` or ``background/PM2.5@0``."""
        return [f"{r}/{k}/{s}@{w}" if kind == "emission" else f"background/{s}@{w}"
                for kind, r, k, s, w in zip(self.kind, self.region, self.sector, self.species, self.window,
                                            strict=True)]

    def table(self) -> pd.DataFrame:
        """Return the elements as a table (one row each)."""
        return pd.DataFrame({"kind": self.kind, "region": self.region, "sector": self.sector,
                             "species": self.species, "window": self.window,
                             "window_start": self.window_bounds[self.window, 0],
                             "window_end": self.window_bounds[self.window, 1],
                             "emission_t": self.emission, "prior": self.prior})

    def element_index(self, region: str, sector: str, species: str, window: int) -> int:
        """Index of one emission element (-1 if there is none)."""
        hit = np.flatnonzero(self.is_emission & (self.region == region) & (self.sector == sector)
                             & (self.species == species) & (self.window == window))
        return int(hit[0]) if hit.size else -1


def build_state(sens: StationSensitivity, emitted: list[str], observed: list[str], grouping: str = "run",
                sectors: str = "each", window: str = "run") -> StateVector:
    """Build the state vector for a run, the emitted species to estimate and the observed species."""
    if sectors not in SECTOR_MODES:
        raise AirshedInputError(f"sector grouping {sectors!r}: expected one of {', '.join(SECTOR_MODES)}")
    groups = region_groups(sens.regions, grouping)
    hour_window = time_windows(sens.times, window)
    n_windows = int(hour_window.max()) + 1
    hours_per_window = np.bincount(hour_window, minlength=n_windows)
    ends = sens.times
    bounds = np.array([[ends[hour_window == w][0] - np.timedelta64(1, "h"), ends[hour_window == w][-1]]
                       for w in range(n_windows)], dtype="datetime64[ns]")
    sector_groups = {s: (s,) for s in sens.sectors} if sectors == "each" else {ALL: tuple(sens.sectors)}
    rows = []
    tag_element: dict[str, np.ndarray] = {}
    for e in emitted:
        if e not in sens.emitted_species:
            raise AirshedInputError(f"{sens.origin}: the run did not simulate {e} (emitted species: "
                                    f"{', '.join(sens.emitted_species)})")
        ei = sens.emitted_species.index(e)
        index = np.full((n_windows, len(sens.regions), len(sens.sectors)), -1, dtype=np.int64)
        for w in range(n_windows):
            share = hours_per_window[w] / sens.run_hours
            for g, members in groups.items():
                r_idx = [sens.regions.index(m) for m in members]
                for k_name, k_members in sector_groups.items():
                    k_idx = [sens.sectors.index(m) for m in k_members]
                    tonnes = float(sens.emission_total[np.ix_(r_idx, k_idx, [ei])].sum()) * share
                    if tonnes <= 0.0:
                        continue
                    index[w][np.ix_(r_idx, k_idx)] = len(rows)
                    rows.append(("emission", g, k_name, e, w, tonnes, 1.0))
        tag_element[e] = index
    for o in observed:
        for w in range(n_windows):
            rows.append(("background", ALL, ALL, o, w, 0.0, 0.0))
    if not any(r[0] == "emission" for r in rows):
        raise AirshedInputError(f"{sens.origin}: no emissions of {', '.join(emitted)} in the run to estimate")
    kind, region, sector, species, win, tonnes, prior = (np.array(c) for c in zip(*rows, strict=True))
    return StateVector(kind=kind.astype(object), region=region.astype(object), sector=sector.astype(object),
                       species=species.astype(object), window=win.astype(np.int64), window_bounds=bounds,
                       members=groups, emission=tonnes.astype(float), prior=prior.astype(float),
                       tag_element=tag_element, hour_window=hour_window)
