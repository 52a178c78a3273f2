"""``airshed verify``: estimate emission changes from monitoring data and check claims.

:func:`verify` ties the pieces together: the run's station sensitivities (:mod:`sensitivity`), the state
vector (:mod:`state`), the observations matched to the model with their errors (:mod:`observing`), the
prior (:mod:`priors`), the analytical inversion (:mod:`inversion`); :class:`Verification` then reports
changes by region and species and checks claims (:mod:`claims`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from airshed.errors import AirshedInputError, DataError
from airshed.inputs.observations import Observations
from airshed.verification.claims import (
    NOT_RESOLVABLE,
    Claim,
    ClaimResult,
    check_claim,
    claim_weights,
    verdict,
)
from airshed.verification.inversion import BlockCovariance, Posterior, solve
from airshed.verification.observing import (
    DEFAULT_SPECIES,
    OBSERVABLES,
    ObservationErrors,
    ObservingSystem,
    observing_system,
)
from airshed.verification.priors import PriorErrors, prior_covariance
from airshed.verification.sampling_error import particle_sampling_sigma
from airshed.verification.sensitivity import StationSensitivity, station_sensitivity
from airshed.verification.state import ALL, StateVector, build_state, province_groups
from airshed.verification.transport_error import run_file_transport_spread

log = logging.getLogger(__name__)

STATION_TOLERANCE_KM = 1.0
"""Largest distance between a station in the station list and the same id in the run file."""

MAX_ADDED_STATIONS = 10
"""Most stations proposed to resolve a claim."""


@dataclass(frozen=True)
class VerifySettings:
    """Choices of an inversion (defaults documented in the modules that use them).

    Attributes
    ----------
    species
        Observed species to use.
    regions, sectors, window
        State vector grouping (:mod:`airshed.verification.state`).
    average_hours, min_fraction
        Averaging of the observations (:mod:`airshed.verification.observing`).
    errors, prior
        Observation and prior error settings.
    """

    species: tuple[str, ...] = DEFAULT_SPECIES
    regions: str = "run"
    sectors: str = "each"
    window: str = "run"
    average_hours: int = 24
    min_fraction: float = 20.0 / 24.0
    errors: ObservationErrors = field(default_factory=ObservationErrors)
    prior: PriorErrors = field(default_factory=PriorErrors)

    def __post_init__(self) -> None:
        unknown = [s for s in self.species if s not in OBSERVABLES]
        if unknown or not self.species:
            what = f"{', '.join(map(repr, unknown))}: not" if unknown else "no species given; expected"
            raise AirshedInputError(f"--species {what} an observed species airshed verify can compare with "
                                    f"the model; use {', '.join(OBSERVABLES)}")


@dataclass
class Verification:
    """An inversion's inputs and result, with the summaries and claim checks built on it."""

    sens: StationSensitivity
    state: StateVector
    system: ObservingSystem
    rows: np.ndarray
    posterior: Posterior
    settings: VerifySettings
    notes: list[str]

    # -- summaries --------------------------------------------------------------------------------------
    def change(self, h: np.ndarray) -> tuple[float, float, float, float]:
        """(estimate, posterior sigma, prior sigma, information fraction) of ``h . x - 1``, fractions."""
        p = self.posterior
        var, var_a = float(h @ p.covariance @ h), float(h @ p.prior_covariance @ h)
        info = 1.0 - var / var_a if var_a > 0 else 0.0
        return float(h @ p.x - 1.0), math.sqrt(max(var, 0.0)), math.sqrt(max(var_a, 0.0)), info

    def region_table(self) -> pd.DataFrame:
        """Estimated change per region (state regions, provinces, all) x emitted species x window."""
        st = self.state
        names = list(st.members)
        extra = [g for g, m in province_groups(self.sens.regions).items()
                 if len(m) > 1 and g not in st.members]
        records = []
        for w in range(st.window_bounds.shape[0]):
            for sp in dict.fromkeys(st.species[st.is_emission]):
                for region in [*names, *extra, ALL]:
                    start, end = st.window_bounds[w]
                    claim = Claim(region, str(sp), 0.0, ALL, start, end)
                    h, _ = claim_weights(claim, st, self.sens.regions)
                    if h is None:
                        continue
                    est, sig, sig_a, info = self.change(h)
                    tonnes = float((st.emission * (h > 0)).sum())
                    records.append({"region": region, "species": sp, "window": w, "start": start, "end": end,
                                    "emission_t": tonnes, "change_percent": 100 * est,
                                    "sigma_percent": 100 * sig,
                                    "prior_sigma_percent": 100 * sig_a, "information": info})
        return pd.DataFrame(records)

    def element_table(self) -> pd.DataFrame:
        """Every state element with its prior, posterior, sigmas and averaging-kernel diagonal."""
        p = self.posterior
        table = self.state.table()
        table["posterior"] = p.x
        table["prior_sigma"] = np.sqrt(np.diag(p.prior_covariance))
        table["posterior_sigma"] = p.sigma
        table["averaging_kernel"] = np.diag(p.averaging_kernel)
        return table

    def check(self, claim: Claim) -> ClaimResult:
        """Judge a claimed change (:func:`airshed.verification.claims.check_claim`)."""
        return check_claim(claim, self)

    # -- network ----------------------------------------------------------------------------------------
    def _information(self, rows: np.ndarray) -> np.ndarray:
        """K^T So^-1 K of some rows at the posterior (their errors as in the inversion)."""
        _, k = self.system.forward(self.posterior.x, rows)
        so = BlockCovariance(self.system.covariance_blocks(rows), rows.size)
        return k.T @ so.solve(k)

    def station_influence(self, h: np.ndarray) -> list[tuple[str, float]]:
        """Observed stations by how much the variance of ``h . x`` grows without them (largest first)."""
        s_inv = np.linalg.inv(self.posterior.covariance)
        var = float(h @ self.posterior.covariance @ h)
        out = []
        for st in np.unique(self.system.rows.iloc[self.rows]["station_index"]):
            rows = self.system.station_rows(int(st), observed=True)
            try:
                without = np.linalg.inv(s_inv - self._information(rows))
            except np.linalg.LinAlgError:
                continue
            out.append((self.sens.stations[int(st)], float(h @ without @ h) - var))
        return sorted(out, key=lambda item: -item[1])

    def stations_to_resolve(self, h: np.ndarray, estimate: float,
                            claimed: float) -> tuple[list[tuple[str, float]], bool]:
        """Add unobserved stations greedily until the claim is resolvable: ([(station, variance)], done).

        Each candidate's hypothetical observations are those of the observed stations (species, averaging
        windows) with errors from the same model; the station that shrinks the variance of ``h . x`` most is
        added first. ``done`` says whether the claim became resolvable (at most :data:`MAX_ADDED_STATIONS`).
        """
        observed = set(self.system.rows.iloc[self.rows]["station_index"])
        candidates = [st for st in range(len(self.sens.stations)) if st not in observed]
        if not candidates:
            return [], False
        info = {st: self._information(self.system.station_rows(st)) for st in candidates}
        s_inv = np.linalg.inv(self.posterior.covariance)
        var_a = float(h @ self.posterior.prior_covariance @ h)
        chosen = []
        for _ in range(min(MAX_ADDED_STATIONS, len(candidates))):
            best = min(info, key=lambda st: float(h @ np.linalg.inv(s_inv + info[st]) @ h))
            s_inv = s_inv + info.pop(best)
            var = float(h @ np.linalg.inv(s_inv) @ h)
            chosen.append((self.sens.stations[best], var))
            kind, _ = verdict(estimate, math.sqrt(var), 1.0 - var / var_a, claimed)
            if kind != NOT_RESOLVABLE:
                return chosen, True
        return chosen, False


def check_station_list(stations: pd.DataFrame, sens: StationSensitivity, origin: str) -> list[str]:
    """Compare a station list with the run's stations; errors for moved stations, notes for missing ones."""
    notes = []
    run = {s: (lo, la) for s, lo, la in zip(sens.stations, sens.station_lon, sens.station_lat, strict=True)}
    missing = [s for s in stations["id"] if s not in run]
    if missing:
        notes.append(f"{len(missing)} station(s) of {origin} are not sampled by the run (e.g. "
                     f"{', '.join(missing[:3])}); add them to [receptors] stations and rerun to use them")
    for sid, lon, lat in zip(stations["id"], stations["lon"], stations["lat"], strict=True):
        if sid in run and np.isfinite(run[sid][0]):
            lo, la = run[sid]
            d = 6371.0 * math.radians(1) * math.hypot((lon - lo) * math.cos(math.radians(lat)), lat - la)
            if d > STATION_TOLERANCE_KM:
                raise DataError(f"{origin}: station {sid!r} lies {d:.1f} km from where the run sampled it "
                                f"(lon={lo:g}, lat={la:g}); rerun with this station list")
    return notes


def ensemble_spread(paths: list[str | Path], sens: StationSensitivity,
                    species: tuple[str, ...]) -> np.ndarray:
    """(T, N, O) standard deviation over ensemble members of the hourly model equivalent at the stations.

    ``paths`` are member run files with the same stations and hours (issue 16's meteorological members,
    or any set of runs); each member's ``station_concentration`` is taken through the observation
    operator (the ARM2 ratio for NO2). At least two members.
    """
    if len(paths) < 2:
        raise AirshedInputError("--transport-ensemble needs at least two member run files")
    members = []
    for p in paths:
        try:
            opened = xr.open_dataset(Path(p).expanduser())
        except (OSError, ValueError) as exc:  # not NetCDF, unreadable, missing: bad input, not a crash
            raise DataError(f"ensemble member {p}: cannot read it as a NetCDF run file ({exc})") from None
        with opened as ds:
            if "station_concentration" not in ds.variables:
                raise DataError(f"ensemble member {p}: no station_concentration (run it with [receptors] "
                                "stations)")
            sc = ds["station_concentration"].transpose("time", "station", "species")
            if tuple(map(str, sc["station"].values)) != sens.stations or sc.sizes["time"] != sens.run_hours:
                raise DataError(f"ensemble member {p}: its stations or hours differ from the run's")
            values = []
            for o in species:
                eq = OBSERVABLES[o]
                v = sc.sel(species=eq.output).values
                values.append(eq.nonlinear[0](v) if eq.nonlinear is not None else v)
            members.append(np.stack(values, axis=-1))
    return np.std(np.stack(members), axis=0, ddof=1)


def sampling_note(system: ObservingSystem) -> str:
    """One line on the particle sampling error the error model holds (median relative hourly 1 sigma)."""
    parts = []
    for o in system.observed_species:
        c = system.prior_hourly(o)
        sigma = particle_sampling_sigma(c)
        relative = sigma[c > 0] / c[c > 0]
        if relative.size:
            parts.append(f"{o} {100 * np.median(relative):.0f} %")
    return ("particle sampling error estimated from the run's station series (median hourly 1 sigma: "
            f"{', '.join(parts)}); raise particles_per_hour to shrink it")


def verify(ds: xr.Dataset, observations: Observations, settings: VerifySettings | None = None,
           stations: pd.DataFrame | None = None, origin: str = "run file",
           transport_ensemble: list[str | Path] | None = None) -> Verification:
    """Run the inversion of a run file against observations (see the package docstring)."""
    settings = settings or VerifySettings()
    sens = station_sensitivity(ds, origin)
    notes: list[str] = []
    if stations is not None:
        notes += check_station_list(stations, sens, "the station list")
    species = tuple(s for s in settings.species if s in observations.species) or settings.species
    absent = [s for s in settings.species if s not in observations.species]
    if absent:
        notes.append(f"no observations of {', '.join(absent)}")
    used = tuple(s for s in species if s in OBSERVABLES and OBSERVABLES[s].output in sens.species)
    if not used:
        raise AirshedInputError(f"{sens.origin}: the run does not model {', '.join(species)} (its species: "
                                f"{', '.join(sens.species)}); choose others with --species")
    emitted = list(dict.fromkeys(e for s in used for e in OBSERVABLES[s].parts))
    state = build_state(sens, emitted, list(used), settings.regions, settings.sectors, settings.window)
    errors = settings.errors
    if transport_ensemble:
        errors = dataclasses.replace(errors, transport_spread=ensemble_spread(transport_ensemble, sens, used))
        notes.append(f"transport error from the spread of {len(transport_ensemble)} member runs")
    elif errors.transport_spread is None:
        spread, note = run_file_transport_spread(ds, sens, used, errors.correlation_hours)
        if spread is not None:
            errors = dataclasses.replace(errors, transport_spread=spread)
            notes.append(note)
        else:
            notes.append(f"transport error {100 * errors.transport_fraction:g} % of the modelled value (the "
                         "default: the run file carries no meteorological ensemble; --transport-ensemble "
                         "MEMBER.nc ... uses member runs)")
    system = observing_system(sens, state, observations, species, errors, settings.average_hours,
                              settings.min_fraction)
    notes += system.notes
    if system.counts_sampling:
        notes.append(sampling_note(system))
    rows = system.observed_rows
    y = system.rows["value"].to_numpy()[rows]
    table = system.rows.iloc[rows]
    means = {o: float(table["value"][table["species"] == o].mean()) for o in system.observed_species}
    sa = prior_covariance(state, sens, settings.prior, means)
    so = BlockCovariance(system.covariance_blocks(rows), rows.size)
    posterior = solve(lambda x: system.forward(x, rows), y, state.prior, sa, so)
    if not posterior.converged:
        notes.append(f"the inversion did NOT converge in {posterior.iterations} iterations (last step d2 = "
                     f"{posterior.step_d2:.2g} in units of the posterior covariance, n = {state.n}): the "
                     "estimates are the lowest-cost iterate, not a solution; check the observations' units "
                     "and the NO2 operator, or leave NO2 out (--species SO2,PM2.5)")
    negative = np.flatnonzero(state.is_emission & (posterior.x < 0))
    if negative.size:
        labels = [state.labels()[j] for j in negative[:3]]
        notes.append(f"{negative.size} scaling factor(s) came out negative (e.g. {', '.join(labels)}): the "
                     "Gaussian prior allows it; read them as 'near zero'")
    return Verification(sens, state, system, rows, posterior, settings, notes)
