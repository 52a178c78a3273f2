"""The observing system: observations matched to the model, the observation operator and its errors.

**What is compared.** Each observed species is matched with a model equivalent made of the run's output
species, each scaling with one emitted species (:data:`OBSERVABLES`, derived from the mechanism):

==========  ==========================================================================================
SO2         model SO2 (scales with SO2 emissions)
NO2         ARM2 NO2/NOx ratio x model NOx (NOx is carried as NO2 mass; :mod:`airshed.physics.no2_ratio`):
            not linear in the emissions, so the inversion iterates (Gauss-Newton)
PM2.5       model primary PM2.5 + sulfate + nitrate (scale with PM2.5, SO2 and NOx emissions). **Loosely
            linear only**: real sulfate and nitrate respond less than proportionally to their precursors
            (oxidant- and ammonia-limited), and real PM2.5 holds ammonium, organics and dust that airshed
            does not model (they go to the background term). Use PM2.5 to constrain primary PM2.5 with
            care; ``--species SO2,NO2`` leaves it out.
CO          model CO, when the run carries it. airshed's mechanism has no CO tracer, so CO observations
            are read but not used (said in the report).
PM10, O3    no model equivalent: not used.
==========  ==========================================================================================

**Averaging.** Hourly observations are averaged over windows of ``average_hours`` (default 24 h from the
run start) at each station; a window counts when at least ``min_fraction`` of its hours are observed
(default 20/24, the completeness rule of China's GB 3095-2012 for daily means), and the model is averaged
over exactly the observed hours.

**Errors** (per hour, then averaged; :class:`ObservationErrors`): independent parts.

* instrument: ``sqrt(floor^2 + (rel * c)^2)``, rel half the expanded (95 %) uncertainty of the EU data
  quality objectives for fixed measurements (Directive 2008/50/EC, Annex I: 15 % for SO2, NO2 and CO,
  25 % for PM), floors of the order of analyser detection limits (airshed choices: 1 ppb of SO2 or NO2,
  2 ug m-3 PM2.5, 0.05 mg m-3 CO); independent from hour to hour;
* representation: the spread of the modelled field over the four cells around the station
  (:func:`~airshed.verification.sensitivity.neighbourhood_spread`), a point monitor against cell means;
* transport: the spread of an ensemble of runs (issue 16's members, or any member run files with the same
  stations) when given, else ``transport_fraction`` (default 30 %, an airshed choice: replace it with an
  ensemble) of the modelled concentration;
* particle sampling (runs of the particle core only): the Monte-Carlo noise of the modelled hourly value,
  estimated from the run's own station series (:mod:`~airshed.verification.sampling_error`), independent
  from hour to hour like the instrument error.

``c`` is the prior modelled concentration, not the observed one, so that low observations do not get
small errors and pull the estimate down. Representation and transport errors are correlated in time at a
station with ``exp(-|dt| / correlation_hours)`` (default 12 h, an airshed choice: the errors of a weather
situation persist for hours), instrument and sampling errors are not; averaging then reduces each part by
exactly what its correlation allows (the covariance of two window means is the mean of the hourly
covariances), which is the super-observation error of Chen et al. (2023) with the correlation made
explicit. Errors of different
stations and species are independent, so the observation error covariance is block diagonal.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from airshed.errors import AirshedInputError
from airshed.inputs.observations import Observations
from airshed.physics.mechanism import default_mechanism
from airshed.physics.no2_ratio import UG_M3_PER_PPB_NO2, d_no2_d_nox, no2_from_nox
from airshed.verification.sampling_error import MONTE_CARLO_CORES, particle_sampling_sigma
from airshed.verification.sensitivity import StationSensitivity
from airshed.verification.state import StateVector

log = logging.getLogger(__name__)

MECHANISM = default_mechanism()


@dataclass(frozen=True)
class ModelEquivalent:
    """How an observed species is computed from the model.

    ``output`` is the run's output species whose total the observation sees; ``parts`` maps each emitted
    species to the single-tracer output species it makes (e.g. PM2.5: PM2.5 -> PM2.5_primary, SO2 ->
    sulfate, NOx -> nitrate); ``nonlinear`` is ``(f, df/dc)`` applied to the hourly model total, or None.
    """

    output: str
    parts: dict[str, tuple[str, ...]]
    nonlinear: tuple | None = None


def _parts(output: str) -> dict[str, tuple[str, ...]]:
    """Map emitted species -> single-tracer output species composing ``output`` (from the mechanism)."""
    single = {parts[0]: name for name, parts in MECHANISM.output_composition.items() if len(parts) == 1}
    out: dict[str, list[str]] = {}
    for tracer in MECHANISM.output_composition[output]:
        out.setdefault(MECHANISM.emitted_origin(tracer), []).append(single[tracer])
    return {e: tuple(v) for e, v in out.items()}


OBSERVABLES: dict[str, ModelEquivalent] = {
    "SO2": ModelEquivalent("SO2", _parts("SO2")),
    "NO2": ModelEquivalent("NOx", _parts("NOx"), nonlinear=(no2_from_nox, d_no2_d_nox)),
    "PM2.5": ModelEquivalent("PM2.5", _parts("PM2.5")),
}
"""Observed species with a model equivalent in airshed's mechanism (CO would need a CO tracer)."""

DEFAULT_SPECIES = ("SO2", "NO2", "PM2.5")
"""Observed species used by default."""

INSTRUMENT_RELATIVE = {"SO2": 0.075, "NO2": 0.075, "CO": 0.075, "PM2.5": 0.125, "PM10": 0.125, "O3": 0.075}
"""Instrument error, 1 sigma relative: half the 95 % data quality objectives of Directive 2008/50/EC."""

INSTRUMENT_FLOOR_UG_M3 = {"SO2": 64.066 / 24.4654, "NO2": UG_M3_PER_PPB_NO2, "CO": 50.0, "PM2.5": 2.0,
                          "PM10": 2.0, "O3": 48.0 / 24.4654}
"""Instrument error floor, ug m-3: 1 ppb of the gases (25 C), 2 ug m-3 for PM, 0.05 mg m-3 CO."""


@dataclass(frozen=True)
class ObservationErrors:
    """Settings of the observation error model (see the module docstring).

    Attributes
    ----------
    transport_fraction
        Transport error as a fraction of the modelled hourly concentration, used when no ensemble spread
        is given (default 0.30).
    transport_spread
        (T, N, O) ensemble standard deviation of the hourly model equivalent of each observed species
        (ug m-3) at the run's stations, in the order of ``observed``; replaces the fraction.
    correlation_hours
        e-folding time of the correlation of representation and transport errors at a station, h.
    representation
        Use the neighbourhood spread as representation error (True), or none (False).
    sampling
        Count the particle sampling error of a particle-core run (True), or not (False).
    """

    transport_fraction: float = 0.30
    transport_spread: np.ndarray | None = None
    correlation_hours: float = 12.0
    representation: bool = True
    sampling: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.transport_fraction) and self.transport_fraction >= 0):
            raise AirshedInputError(f"transport error fraction {self.transport_fraction}: expected >= 0")
        if not (math.isfinite(self.correlation_hours) and self.correlation_hours >= 0):
            raise AirshedInputError(f"error correlation time {self.correlation_hours} h: expected >= 0")


@dataclass
class ObservingSystem:
    """Every (station, observed species, averaging window) of the run's stations, observed or not.

    Rows with an observation carry its mean (``value``); the others are hypothetical observations of the
    same kind, used to say which stations would resolve a claim.

    Attributes
    ----------
    rows
        Columns ``station`` (id), ``station_index``, ``species``, ``window`` (averaging window index),
        ``start``, ``end`` (datetime64), ``n_hours`` (hours averaged), ``observed`` (bool), ``value``
        (ug m-3, NaN when not observed).
    hours
        Per row, the run hour indices averaged.
    """

    rows: pd.DataFrame
    hours: list[np.ndarray]
    sens: StationSensitivity
    state: StateVector
    errors: ObservationErrors
    observed_species: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    _design: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _prior_total: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    # -- the model operator -------------------------------------------------------------------------------
    def design(self, species: str) -> np.ndarray:
        """(T, N, n) hourly model total of an observed species' model equivalent per unit of each element.

        Emission elements only (background enters after the nonlinear step); for NO2 the total is NOx.
        """
        if species not in self._design:
            s, st = self.sens, self.state
            d = np.zeros((s.run_hours, len(s.stations), st.n))
            for e, outputs in OBSERVABLES[species].parts.items():
                if e not in st.tag_element:
                    continue
                contrib = sum(s.output(o) for o in outputs)  # (T, N, R, K)
                contrib = contrib.reshape(s.run_hours, len(s.stations), -1)
                for w, index in enumerate(st.tag_element[e]):  # (R, K) element of each tag
                    hours = np.flatnonzero(st.hour_window == w)
                    tags = np.flatnonzero(index.ravel() >= 0)
                    to_element = np.zeros((tags.size, st.n))  # several tags may feed one element
                    to_element[np.arange(tags.size), index.ravel()[tags]] = 1.0
                    d[hours] += contrib[hours][:, :, tags] @ to_element
            self._design[species] = d
        return self._design[species]

    def prior_hourly(self, species: str) -> np.ndarray:
        """(T, N) hourly model equivalent of an observed species at the prior state (no background)."""
        if species not in self._prior_total:
            total = self.design(species) @ self.state.prior
            f = OBSERVABLES[species].nonlinear
            self._prior_total[species] = f[0](total) if f is not None else total
        return self._prior_total[species]

    def forward(self, x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model values F(x) (m,) and Jacobian dF/dx (m, n) of the given rows."""
        F = np.zeros(rows.size)
        K = np.zeros((rows.size, self.state.n))
        background = self._background_columns()
        table = self.rows.iloc[rows]
        for pos, (row, o, st) in enumerate(zip(rows, table["species"], table["station_index"], strict=True)):
            h = self.hours[row]
            g = self.design(o)[h, st]  # (nh, n)
            total = g @ x
            f = OBSERVABLES[o].nonlinear
            if f is None:
                F[pos] = total.mean()
                K[pos] = g.mean(axis=0)
            else:
                F[pos] = f[0](total).mean()
                K[pos] = (f[1](total)[:, None] * g).mean(axis=0)
            for w, j in background[o].items():
                share = np.mean(self.state.hour_window[h] == w)
                if share:
                    F[pos] += share * x[j]
                    K[pos, j] += share
        return F, K

    def _background_columns(self) -> dict[str, dict[int, int]]:
        st = self.state
        out: dict[str, dict[int, int]] = {o: {} for o in self.observed_species}
        for j in np.flatnonzero(st.kind == "background"):
            out[str(st.species[j])][int(st.window[j])] = int(j)
        return out

    # -- errors ---------------------------------------------------------------------------------------
    @property
    def counts_sampling(self) -> bool:
        """Whether the particle sampling error is part of the error model (a particle-core run)."""
        return self.errors.sampling and self.sens.core in MONTE_CARLO_CORES

    def hourly_errors(self, species: str) -> tuple[np.ndarray, np.ndarray]:
        """(T, N) hourly errors, 1 sigma, ug m-3: independent (instrument + sampling) and correlated.

        The first is independent from hour to hour (instrument, particle sampling), the second correlated in
        time (representation + transport).
        """
        c = self.prior_hourly(species)
        inst_var = INSTRUMENT_FLOOR_UG_M3[species] ** 2 + (INSTRUMENT_RELATIVE[species] * c) ** 2
        if self.counts_sampling:
            inst_var = inst_var + particle_sampling_sigma(c) ** 2
        inst = np.sqrt(inst_var)
        o = self.observed_species.index(species)
        if self.errors.transport_spread is not None:
            transport = self.errors.transport_spread[:, :, o]
        else:
            transport = self.errors.transport_fraction * c
        model_var = transport ** 2
        if self.errors.representation and self.sens.spread is not None:
            eq = OBSERVABLES[species]
            spread = self.sens.spread[:, :, self.sens.species.index(eq.output)]
            if eq.nonlinear is not None:  # the spread of NOx seen through the NO2 ratio's slope
                total = self.design(species) @ self.state.prior
                spread = spread * eq.nonlinear[1](total)
            model_var = model_var + spread ** 2
        return inst, np.sqrt(model_var)

    def covariance_blocks(self, rows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Observation error covariance of the given rows as blocks (positions in ``rows``, matrix).

        One block per (station, species): ``P C P^T`` with ``C`` the hourly covariance (instrument on the
        diagonal, model errors correlated as ``exp(-|dt|/tau)``) and ``P`` the averaging over each row's
        hours.
        """
        table = self.rows.iloc[rows]
        tau = self.errors.correlation_hours
        blocks = []
        errors = {o: self.hourly_errors(o) for o in set(table["species"])}
        for st, o in table.groupby(["station_index", "species"], sort=False).groups:
            positions = np.flatnonzero((table["station_index"] == st).to_numpy()
                                       & (table["species"] == o).to_numpy())
            hours = np.unique(np.concatenate([self.hours[rows[p]] for p in positions]))
            inst, model = errors[o]
            lag = np.abs(hours[:, None] - hours[None, :]).astype(float)
            rho = np.exp(-lag / tau) if tau > 0 else (lag == 0).astype(float)
            c = np.diag(inst[hours, st] ** 2) + rho * np.outer(model[hours, st], model[hours, st])
            p = np.zeros((positions.size, hours.size))
            for a, pos in enumerate(positions):
                h = self.hours[rows[pos]]
                p[a, np.searchsorted(hours, h)] = 1.0 / h.size
            blocks.append((positions, p @ c @ p.T))
        return blocks

    # -- selections -------------------------------------------------------------------------------------
    @property
    def observed_rows(self) -> np.ndarray:
        """Indices of the rows with an observation."""
        return np.flatnonzero(self.rows["observed"].to_numpy())

    def station_rows(self, station_index: int, observed: bool | None = None) -> np.ndarray:
        """Return the indices of a station's rows (all, or only observed / only hypothetical ones)."""
        mask = (self.rows["station_index"] == station_index).to_numpy().copy()
        if observed is not None:
            mask &= self.rows["observed"].to_numpy() == observed
        return np.flatnonzero(mask)


def observing_system(sens: StationSensitivity, state: StateVector, observations: Observations,
                     species: tuple[str, ...], errors: ObservationErrors, average_hours: int = 24,
                     min_fraction: float = 20.0 / 24.0) -> ObservingSystem:
    """Match observations to the run's stations and hours (see the module docstring).

    Raises
    ------
    AirshedInputError
        No usable observation (no station, species or hour in common with the run).
    """
    if average_hours < 1:
        raise AirshedInputError(f"averaging window {average_hours} h: expected >= 1 h")
    if not 0.0 < min_fraction <= 1.0:
        raise AirshedInputError(f"minimum observed fraction of a window {min_fraction}: expected (0, 1]")
    notes: list[str] = []
    frame = observations.frame
    used = [s for s in species if s in OBSERVABLES and OBSERVABLES[s].output in sens.species]
    for s in species:
        if s not in used:
            why = ("the run carries no CO tracer (airshed's mechanism has none)" if s == "CO" else
                   "no model equivalent in airshed's mechanism")
            notes.append(f"{s} observations not used: {why}")
    if not used:
        raise AirshedInputError(f"none of the observed species {', '.join(species)} has a model equivalent "
                                f"(usable: {', '.join(OBSERVABLES)})")
    unknown = sorted(set(frame["station"]) - set(sens.stations))
    if unknown:
        notes.append(f"{len(unknown)} observed station(s) are not in the run's station list and are not used "
                     f"(e.g. {', '.join(unknown[:3])}); add them to [receptors] stations and rerun")
    station_pos = {s: i for i, s in enumerate(sens.stations)}
    hour_pos = {t: i for i, t in enumerate(sens.times)}
    frame = frame[frame["station"].isin(station_pos) & frame["species"].isin(used)
                  & frame["time"].isin(hour_pos)]
    if frame.empty:
        raise AirshedInputError(
            f"no observation of {', '.join(used)} at the run's stations within the run period "
            f"({np.datetime_as_string(sens.times[0] - np.timedelta64(1, 'h'), unit='m')} to "
            f"{np.datetime_as_string(sens.times[-1], unit='m')} UTC)")
    T, N = sens.run_hours, len(sens.stations)
    hourly = {o: np.full((T, N), np.nan) for o in used}
    for o, part in frame.groupby("species"):
        hourly[o][part["time"].map(hour_pos).to_numpy(), part["station"].map(station_pos).to_numpy()] = \
            part["value"].to_numpy()
    window_of_hour = np.arange(T) // average_hours
    n_windows = int(window_of_hour[-1]) + 1
    need = {w: math.ceil(min_fraction * np.count_nonzero(window_of_hour == w) - 1e-9)
            for w in range(n_windows)}
    records, hours = [], []
    for o in used:
        for st in range(N):
            for w in range(n_windows):
                span = np.flatnonzero(window_of_hour == w)
                valid = span[np.isfinite(hourly[o][span, st])]
                observed = valid.size >= need[w] and valid.size > 0
                h = valid if observed else span
                records.append({"station": sens.stations[st], "station_index": st, "species": o, "window": w,
                                "start": sens.times[span[0]] - np.timedelta64(1, "h"),
                                "end": sens.times[span[-1]],
                                "n_hours": h.size, "observed": observed,
                                "value": float(hourly[o][h, st].mean()) if observed else np.nan})
                hours.append(h)
    rows = pd.DataFrame(records)
    if not rows["observed"].any():
        raise AirshedInputError(f"no averaging window of {average_hours} h has enough observed hours "
                                f"(at least {min_fraction:.0%}); lower --average-hours or --min-fraction")
    return ObservingSystem(rows=rows, hours=hours, sens=sens, state=state, errors=errors,
                           observed_species=tuple(used), notes=notes)
