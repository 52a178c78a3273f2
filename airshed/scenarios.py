"""Emission-change scenarios: factors for a full run, and evaluation from a run's stored contributions.

A scenario (``[[scenarios]]`` in the config) is a list of changes, each multiplying the emissions of some
source regions, sectors and emitted species by ``1 + change_percent / 100`` inside a time window. Changes
that select the same source at the same time compose multiplicatively.

Two ways to use a scenario:

* :func:`emission_factors` gives, for one model period, the factor of every area and point source and
  every emitted species; ``airshed run CONFIG --scenario NAME`` applies them in the pipeline (a full run).
* :func:`evaluate_scenarios` re-weights the hourly tagged receptor contributions stored in a run file
  (``receptor_contribution``): with airshed's linear chemistry, the concentration caused by a tag scales
  with that tag's emissions, so

      C_scenario(t, q, s) = sum_{r, k} f(t, r, k, precursor(s)) * c(t, q, r, k, s)

  where ``c`` is the contribution of source region ``r``, sector ``k`` to receptor region ``q`` and output
  species ``s``, and secondary species follow their precursor (sulfate <- SO2, nitrate <- NOx, primary
  PM2.5 <- PM2.5; PM2.5 is their sum). This is exact when the factor of an hour's contribution is the
  factor of that hour's emissions: the plume core (every hour is a steady state of that hour's emissions,
  no transport lag) for any windows, and both cores when every change covers the whole run (constant
  factors). The particle core carries emissions from hour to hour, and the run file does not store
  contributions by emission time, so a window covering only part of a particle run is refused (run the
  scenario in full instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import xarray as xr

from airshed.config import ALL, AirshedConfig, ScenarioChangeConfig, ScenarioConfig
from airshed.cores import core_class
from airshed.errors import AirshedInputError
from airshed.physics.mechanism import EMITTED_SPECIES, default_mechanism

__all__ = [
    "SCENARIO_VARIABLES",
    "ScenarioPM25",
    "composite_parts",
    "emission_factors",
    "evaluate_scenarios",
    "factor_table",
    "hourly_factor_table",
    "own_region_mask",
    "pm25_summary",
    "recompose_sums",
    "scenario_named",
    "species_factors",
    "stored_contributions",
    "tagged_scenario_change",
    "validate_scenario",
]

MECHANISM = default_mechanism()

REQUIRED_VARIABLES = ("receptor_contribution", "receptor_concentration", "time_bnds")
"""Run-file variables that :func:`evaluate_scenarios` reads."""

SCENARIO_VARIABLES = ("scenario_receptor_concentration", "scenario_delta_own", "scenario_delta_others")
"""Variables of the scenario part of a run file (see :func:`evaluate_scenarios`)."""


def _as_seconds(t: datetime | np.datetime64) -> np.datetime64:
    if isinstance(t, np.datetime64):
        return t.astype("datetime64[s]")
    return np.datetime64(t.replace(tzinfo=None), "s")


def validate_scenario(scenario: ScenarioConfig, region_names: Sequence[str],
                      run_start: datetime | np.datetime64 | None = None,
                      run_end: datetime | np.datetime64 | None = None, origin: object = None) -> None:
    """Check a scenario against a run's regions and period.

    Sectors and species are checked by the config (a canonical sector the run has no emissions of changes
    nothing); region names can only be checked here, against the run's region set (a user boundary file is
    read at run time).

    Raises
    ------
    AirshedInputError
        Naming ``origin`` (the config file, when given), the scenario, the change (counted from 1) and the
        unknown region (with the valid names), or a change window outside [run_start, run_end].
    """
    where = f"{origin}: " if origin is not None else ""
    for j, change in enumerate(scenario.changes):
        for name in [] if change.regions == ALL else change.regions:
            if name not in region_names:
                raise AirshedInputError(
                    f"{where}{scenario.change_label(j)}: unknown region {name!r} in `regions`; the "
                    f"source regions are {', '.join(region_names)}"
                )
        if run_start is None or run_end is None:
            continue
        t0, t1 = _as_seconds(run_start), _as_seconds(run_end)
        for key in ("start", "end"):
            when = getattr(change, key)
            if when is not None and not t0 <= _as_seconds(when) <= t1:
                raise AirshedInputError(
                    f"{where}{scenario.change_label(j)}: `{key}` = {when.isoformat()} lies outside the run "
                    f"({t0} to {t1})"
                )


def scenario_named(cfg: AirshedConfig, name: str) -> ScenarioConfig:
    """Find the scenario called ``name`` in a config (an error lists the config's scenarios)."""
    for scenario in cfg.scenarios:
        if scenario.name == name:
            return scenario
    known = ", ".join(s.name for s in cfg.scenarios) or "none: add [[scenarios]] tables"
    raise AirshedInputError(f"unknown scenario {name!r}; scenarios of this config: {known}")


def _selection(change: ScenarioChangeConfig, regions: Sequence[str], sectors: Sequence[str]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean masks over (regions, sectors, emitted species) selected by a change."""

    def mask(chosen, names):
        return np.ones(len(names), bool) if chosen == ALL else np.isin(np.asarray(names, dtype=object),
                                                                        np.asarray(chosen, dtype=object))

    return mask(change.regions, regions), mask(change.sectors, sectors), mask(change.species, EMITTED_SPECIES)


def factor_table(scenario: ScenarioConfig | None, regions: Sequence[str], sectors: Sequence[str],
                 t0: datetime | np.datetime64, t1: datetime | np.datetime64,
                 run_start: datetime | np.datetime64, run_end: datetime | np.datetime64) -> np.ndarray:
    """Mean emission factor of every (region, sector, emitted species) over the period [t0, t1).

    Parameters
    ----------
    scenario
        The scenario (None: all ones).
    regions, sectors
        Names along the first two axes (a run's source regions, "outside" included, and sectors).
    t0, t1
        The period, UTC.
    run_start, run_end
        The run's period: the default window of a change without start / end.

    Returns
    -------
    numpy.ndarray
        (len(regions), len(sectors), len(EMITTED_SPECIES)) dimensionless factors. Inside a window the
        factors of overlapping changes multiply; a window covering part of the period counts by the
        fraction of the period it covers (the period's emitted mass scales by this mean factor).
    """
    out = np.ones((len(regions), len(sectors), len(EMITTED_SPECIES)))
    if scenario is None:
        return out
    t0, t1 = _as_seconds(t0), _as_seconds(t1)
    windows = [(_as_seconds(c.start or run_start), _as_seconds(c.end or run_end)) for c in scenario.changes]
    cuts = sorted({t0, t1, *(t for w in windows for t in w if t0 < t < t1)})
    total = (t1 - t0) / np.timedelta64(1, "s")
    mean = np.zeros_like(out)
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        piece = np.ones_like(out)
        for change, (w0, w1) in zip(scenario.changes, windows, strict=True):
            if w0 <= a and b <= w1:
                r, k, e = _selection(change, regions, sectors)
                piece[np.ix_(r, k, e)] *= change.factor
        mean += piece * ((b - a) / np.timedelta64(1, "s") / total)
    return mean


def emission_factors(scenario: ScenarioConfig | None, emissions, t0: datetime | np.datetime64,
                     t1: datetime | np.datetime64, run_start: datetime | np.datetime64 | None = None,
                     run_end: datetime | np.datetime64 | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Factors of every area and point source for the period [t0, t1).

    Parameters
    ----------
    scenario
        The scenario (None: all ones), checked with :func:`validate_scenario`.
    emissions
        The run's :class:`~airshed.inputs.emissions.sources.EmissionSet`.
    t0, t1
        The model period, UTC.
    run_start, run_end
        The run's period, the default window of changes without start / end (default [t0, t1)).

    Returns
    -------
    tuple of numpy.ndarray
        (area factors (n_area, len(EMITTED_SPECIES)), point factors (n_point, len(EMITTED_SPECIES))),
        dimensionless, EMITTED_SPECIES order; multiply the emission rates of the period by them.
    """
    table = factor_table(scenario, emissions.regions, emissions.sectors, t0, t1,
                         t0 if run_start is None else run_start, t1 if run_end is None else run_end)
    return (table[emissions.area.region, emissions.area.sector],
            table[emissions.points.region, emissions.points.sector])


def hourly_factor_table(scenario: ScenarioConfig, regions: Sequence[str], sectors: Sequence[str],
                        time_bounds: np.ndarray) -> np.ndarray:
    """Factors (T, R, K, E) for periods given by ``time_bounds`` (T, 2) datetime64, run = their span."""
    start, end = time_bounds[0, 0], time_bounds[-1, 1]
    return np.stack([factor_table(scenario, regions, sectors, a, b, start, end) for a, b in time_bounds])


# ---------------------------------------------------------------------------------------------------
# evaluation from a run file
# ---------------------------------------------------------------------------------------------------
def _precursor_index(species: Sequence[str]) -> dict[str, int]:
    """Position along EMITTED_SPECIES of each output species' precursor (PM2.5 itself: none).

    The mapping is the mechanism's (:meth:`~airshed.physics.mechanism.Mechanism.precursor_of`): sulfate
    follows SO2, nitrate NOx, primary PM2.5 follows PM2.5.
    """
    out = {}
    for s in species:
        if s not in MECHANISM.output_species:
            raise AirshedInputError(
                f"run file: unknown species {s!r} (expected {', '.join(MECHANISM.output_species)})")
        precursor = MECHANISM.precursor_of(s)
        if precursor is not None:
            out[s] = MECHANISM.emitted.index(precursor)
    return out


def _periods_independent(core: str) -> bool:
    """Whether a run file's core computes every period from that period's emissions alone."""
    try:
        return core_class(core).periods_independent
    except KeyError:  # a core not registered in this process: assume it carries emissions over
        return False


def composite_parts(species: Sequence[str]) -> dict[int, list[int]]:
    """Output species that are sums of others (PM2.5), each with the positions of its parts in ``species``.

    Raises
    ------
    AirshedInputError
        When a sum is present without all of its parts.
    """
    out = {}
    for c, name in enumerate(species):
        if name not in MECHANISM.output_species or MECHANISM.precursor_of(name) is not None:
            continue
        whole = set(MECHANISM.output_composition[name])
        parts = [o for o in MECHANISM.output_species
                 if o != name and MECHANISM.precursor_of(o) is not None
                 and set(MECHANISM.output_composition[o]) <= whole]
        missing = [p for p in parts if p not in species]
        if missing:
            raise AirshedInputError(f"run file: species {name} without all of {', '.join(parts)}")
        out[c] = [list(species).index(p) for p in parts]
    return out


def species_factors(factors: np.ndarray, species: Sequence[str]) -> np.ndarray:
    """Emission factors (..., len(EMITTED_SPECIES)) as factors of the output ``species`` (..., len(species)).

    Each output species takes its precursor's factor; a sum of species with different precursors (PM2.5)
    has no single factor and gets 1: re-weight its parts, then :func:`recompose_sums`.
    """
    out = np.ones((*factors.shape[:-1], len(species)))
    for s, e in _precursor_index(species).items():
        out[..., list(species).index(s)] = factors[..., e]
    return out


def recompose_sums(values: np.ndarray, species: Sequence[str]) -> np.ndarray:
    """Set every sum species (PM2.5) along the last axis of ``values`` to the sum of its parts, in place."""
    for c, parts in composite_parts(species).items():
        values[..., c] = values[..., parts].sum(axis=-1)
    return values


def _check_run_file(ds: xr.Dataset) -> None:
    missing = [v for v in REQUIRED_VARIABLES if v not in ds.variables]
    missing += [c for c in ("source_region", "receptor_region", "sector", "species") if c not in ds.coords]
    if missing:
        raise AirshedInputError(
            f"run file has no {', '.join(missing)}: scenarios are evaluated from the tagged contributions "
            "that `airshed run` stores (receptor_contribution(time, receptor_region, source_region, sector, "
            "species)); rerun with this version of airshed"
        )


def own_region_mask(receptors: Sequence[str], regions: Sequence[str]) -> np.ndarray:
    """(Q, R) boolean: True where the source region is the receptor region itself."""
    is_own = np.zeros((len(receptors), len(regions)), bool)
    is_own[np.arange(len(receptors)), [list(regions).index(q) for q in receptors]] = True
    return is_own


def _time_bounds(ds: xr.Dataset) -> np.ndarray:
    tb = ds["time_bnds"].values
    if not np.issubdtype(tb.dtype, np.datetime64):
        raise AirshedInputError("run file: time_bnds is not a CF-encoded time (scenario windows need it)")
    return tb.astype("datetime64[s]")


def stored_contributions(ds: xr.Dataset) -> np.ndarray:
    """Read a run file's hourly tagged receptor contributions (T, Q, R, K, S), ug m-3, checked.

    Raises
    ------
    AirshedInputError
        For a run file without them (naming what is missing).
    """
    _check_run_file(ds)
    return ds["receptor_contribution"].transpose("time", "receptor_region", "source_region", "sector",
                                                 "species").values


def tagged_scenario_change(ds: xr.Dataset, scenario: ScenarioConfig, rc: np.ndarray | None = None,
                           origin: object = None) -> np.ndarray:
    """Change of every stored hourly tagged contribution under a scenario, (T, Q, R, K, S) ug m-3.

    ``(f - 1) * c`` for every hour, tag and species (``f`` the scenario's factor of the tag's precursor in
    that hour), PM2.5 the sum of its parts' changes. ``rc`` is :func:`stored_contributions` (read when
    not given); ``origin``, the config file, is named in errors.

    Raises
    ------
    AirshedInputError
        For an unknown region, a window outside the run, or a particle-core run with a window covering only
        part of it.
    """
    rc = stored_contributions(ds) if rc is None else rc
    regions = [str(r) for r in ds["source_region"].values]
    sectors = [str(k) for k in ds["sector"].values]
    species = [str(s) for s in ds["species"].values]
    tb = _time_bounds(ds)
    start, end = tb[0, 0], tb[-1, 1]
    core = str(ds.attrs.get("core", ""))
    validate_scenario(scenario, regions, start, end, origin)
    where = f"{origin}: " if origin is not None else ""
    for j, change in enumerate(scenario.changes):
        whole_run = (change.start is None or _as_seconds(change.start) <= start) and (
            change.end is None or _as_seconds(change.end) >= end)
        if not _periods_independent(core) and not whole_run:
            raise AirshedInputError(
                f"{where}{scenario.change_label(j)}: its window covers only part of a "
                f"{core or 'particle'}-core run, whose stored contributions are not split by emission "
                f"time (emissions of one hour stay airborne for many); run it in full with `airshed run "
                f"CONFIG --scenario "
                f"{scenario.name}`"
            )
    g = species_factors(hourly_factor_table(scenario, regions, sectors, tb), species)  # (T, R, K, S)
    return recompose_sums((g[:, None] - 1.0) * rc, species)


def evaluate_scenarios(ds: xr.Dataset, scenarios: Sequence[ScenarioConfig], origin: object = None
                       ) -> xr.Dataset:
    """Evaluate scenarios from a run file's stored hourly receptor contributions (linear re-weighting).

    Parameters
    ----------
    ds
        A run file written by ``airshed run`` (``receptor_contribution``, ``time_bnds``, ...).
    scenarios
        The scenarios to evaluate.
    origin
        The config file the scenarios come from, named in errors.

    Returns
    -------
    xarray.Dataset
        ``scenario_receptor_concentration(scenario, receptor_region, species)`` (period mean, ug m-3),
        ``scenario_delta_own`` and ``scenario_delta_others`` (scenario - baseline caused by the receptor
        region's own emission changes and by every other region's, ug m-3), ``baseline_receptor_concentration
        (receptor_region, species)`` and the hourly ``scenario_receptor_series(scenario, time,
        receptor_region, species)``. Population-weighted like the run's receptor means.

    Raises
    ------
    AirshedInputError
        For a run file without contributions (naming what is missing), an unknown region, a window outside
        the run, or a particle-core run with a window covering only part of it.
    """
    rc = stored_contributions(ds)  # (T, Q, R, K, S)
    regions = [str(r) for r in ds["source_region"].values]
    receptors = [str(r) for r in ds["receptor_region"].values]
    species = [str(s) for s in ds["species"].values]
    _time_bounds(ds)
    composite_parts(species)  # a sum species without its parts is an error before any work
    is_own = own_region_mask(receptors, regions)

    names, conc, d_own, d_others, series = [], [], [], [], []
    for scenario in scenarios:
        delta = tagged_scenario_change(ds, scenario, rc, origin)  # (T, Q, R, K, S)
        by_region = delta.sum(axis=3)  # (T, Q, R, S)
        own_part = np.einsum("tqrs,qr->tqs", by_region, is_own.astype(float))
        other_part = by_region.sum(axis=2) - own_part
        baseline_series = rc.sum(axis=(2, 3))
        scenario_series = baseline_series + by_region.sum(axis=2)
        names.append(scenario.name)
        series.append(scenario_series)
        conc.append(scenario_series.mean(axis=0))
        d_own.append(own_part.mean(axis=0))
        d_others.append(other_part.mean(axis=0))

    coords = {"scenario": ("scenario", np.array(names, dtype=object)),
              "receptor_region": ds["receptor_region"].values, "species": ds["species"].values,
              "time": ds["time"].values}
    dims = ("scenario", "receptor_region", "species")
    units = {"units": "ug m-3"}
    baseline = rc.sum(axis=(2, 3)).mean(axis=0)
    return xr.Dataset(
        {
            "baseline_receptor_concentration": (("receptor_region", "species"), baseline,
                                                {**units, "long_name": "period-mean population-weighted "
                                                 "concentration of the run (baseline)"}),
            "scenario_receptor_concentration": (dims, np.array(conc).reshape(-1, *baseline.shape),
                                                {**units, "long_name": "period-mean population-weighted "
                                                 "concentration under each scenario"}),
            "scenario_delta_own": (dims, np.array(d_own).reshape(-1, *baseline.shape),
                                   {**units, "long_name": "scenario - baseline caused by the receptor "
                                    "region's own emission changes"}),
            "scenario_delta_others": (dims, np.array(d_others).reshape(-1, *baseline.shape),
                                      {**units, "long_name": "scenario - baseline caused by the emission "
                                       "changes of every other region"}),
            "scenario_receptor_series": (("scenario", "time", "receptor_region", "species"),
                                         np.array(series).reshape(-1, *rc.shape[:2], len(species)),
                                         {**units, "long_name": "hourly population-weighted concentration "
                                          "under each scenario"}),
        },
        coords=coords,
        attrs={"scenario_method": "linear re-weighting of the stored hourly tagged receptor contributions",
               "core": str(ds.attrs.get("core", ""))},
    )


@dataclass(frozen=True)
class ScenarioPM25:
    """PM2.5 in one receptor region under one scenario, ug m-3 (period mean, population-weighted)."""

    scenario: str
    receptor_region: str
    baseline: float
    scenario_value: float
    change: float
    change_own: float
    change_others: float

    @property
    def change_percent(self) -> float:
        """Change relative to the baseline, percent (NaN for a zero baseline)."""
        return 100.0 * self.change / self.baseline if self.baseline else float("nan")


def pm25_summary(result: xr.Dataset) -> list[ScenarioPM25]:
    """PM2.5 rows (scenario x receptor region) of :func:`evaluate_scenarios`' result."""
    rows = []
    base = result["baseline_receptor_concentration"].sel(species="PM2.5")
    for name in result["scenario"].values:
        sc = result.sel(scenario=name, species="PM2.5")
        for q in result["receptor_region"].values:
            b = float(base.sel(receptor_region=q))
            v = float(sc["scenario_receptor_concentration"].sel(receptor_region=q))
            rows.append(ScenarioPM25(
                scenario=str(name), receptor_region=str(q), baseline=b, scenario_value=v, change=v - b,
                change_own=float(sc["scenario_delta_own"].sel(receptor_region=q)),
                change_others=float(sc["scenario_delta_others"].sel(receptor_region=q)),
            ))
    return rows
