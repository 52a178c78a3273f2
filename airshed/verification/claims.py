"""Checking a claimed emission change against the posterior.

A claim names a region (a source region of the run, a province, or ``all``), a sector (or ``all``), an
emitted species, a change in percent and optionally a window (default: the whole run). Its estimate is
the emission-weighted mean of the posterior scaling factors of the state elements it covers,

    d = sum_j h_j x_j - 1,   h_j = E_j / sum_k E_k   (E_j: tonnes of element j),

with 1 sigma ``sqrt(h^T S_hat h)``; the same with Sa gives its prior uncertainty, and the information
fraction ``1 - sigma_post^2 / sigma_prior^2`` says how much of it the observations determine (the
averaging kernel of this one number). The verdict:

``contradicted``
    the claimed change lies outside the estimate's 95 % interval and the observations, not the prior,
    determine the estimate (information fraction >= 0.5);
``consistent``
    the claim lies inside the 95 % interval, the observations determine the estimate, and the interval
    excludes "no change" by as much as the claim: ``|claim| > 1.96 sigma``, so the claim could have been
    contradicted;
``not resolvable with this network``
    otherwise. The report then ranks the stations of the run's station list without observations by how
    much their observations (same species and averaging as the real ones, errors from the same model)
    would shrink the uncertainty, and adds them greedily until the claim would be resolvable; and names the
    observed stations the estimate rests on most (the largest increase of its variance if left out).

When the state vector is coarser than the claim (a city in a province element, one sector of an
all-sectors element, part of a window) the claim cannot be separated: ``not resolvable`` with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from airshed.errors import AirshedInputError
from airshed.verification.state import ALL, StateVector, province_groups

Z95 = 1.959963984540054
INFORMATION_THRESHOLD = 0.5
"""Smallest information fraction at which the observations, not the prior, determine an estimate."""

CONSISTENT, CONTRADICTED, NOT_RESOLVABLE = "consistent", "contradicted", "not resolvable with this network"


@dataclass(frozen=True)
class Claim:
    """A claimed emission change (percent, negative for a cut)."""

    region: str
    species: str
    percent: float
    sector: str = ALL
    start: np.datetime64 | None = None
    end: np.datetime64 | None = None

    @classmethod
    def parse(cls, text: str) -> Claim:
        """Parse ``region=Hebei,species=SO2,percent=-20[,sector=power][,start=ISO][,end=ISO]`` (UTC times)."""
        fields = {}
        for part in text.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep:
                raise AirshedInputError(f"--claim {text!r}: expected key=value pairs separated by commas, "
                                        "e.g. region=Hebei,species=SO2,percent=-20")
            fields[key.strip().lower()] = value.strip()
        unknown = set(fields) - {"region", "species", "percent", "sector", "start", "end"}
        missing = {"region", "species", "percent"} - set(fields)
        if unknown or missing:
            what = f"unknown key(s) {', '.join(sorted(unknown))}" if unknown else \
                f"missing {', '.join(sorted(missing))}"
            raise AirshedInputError(f"--claim {text!r}: {what}; keys: region, species, percent, sector, "
                                    "start, end")
        try:
            percent = float(fields["percent"].rstrip("%"))
        except ValueError:
            raise AirshedInputError(f"--claim {text!r}: percent {fields['percent']!r} is not a number") \
                from None
        if not math.isfinite(percent) or percent < -100:
            raise AirshedInputError(f"--claim {text!r}: percent must be finite and >= -100")
        times = {}
        for key in ("start", "end"):
            if key in fields:
                try:
                    when = pd.Timestamp(fields[key])  # an offset (+08:00, Z) is converted to UTC
                    if when.tzinfo is not None:
                        when = when.tz_convert("UTC").tz_localize(None)
                    times[key] = np.datetime64(when.to_datetime64(), "ns")
                except ValueError:
                    raise AirshedInputError(f"--claim {text!r}: {key} {fields[key]!r} is not an ISO 8601 "
                                            "time") from None
        return cls(fields["region"], fields["species"], percent, fields.get("sector", ALL),
                   times.get("start"), times.get("end"))

    def describe(self) -> str:
        """One line, e.g. ``Hebei SO2 (all sectors) -20%``."""
        sector = "all sectors" if self.sector == ALL else self.sector
        window = "" if self.start is None and self.end is None else \
            f", {self.start or 'start'} to {self.end or 'end'}"
        return f"{self.region} {self.species} ({sector}{window}) {self.percent:+g} %"


@dataclass
class ClaimResult:
    """The verdict on one claim (changes and sigmas in percent)."""

    claim: Claim
    verdict: str
    reason: str
    estimate_percent: float = float("nan")
    sigma_percent: float = float("nan")
    prior_sigma_percent: float = float("nan")
    information: float = float("nan")
    informative_stations: list[tuple[str, float]] = field(default_factory=list)
    resolving_stations: list[tuple[str, float]] = field(default_factory=list)

    @property
    def interval_percent(self) -> tuple[float, float]:
        """95 % interval of the estimated change."""
        half = Z95 * self.sigma_percent
        return (self.estimate_percent - half, self.estimate_percent + half)


def source_regions_of(name: str, state: StateVector, regions: tuple[str, ...]) -> tuple[str, ...]:
    """Return the run's source regions a claim's region means (a region, a state group, a province, all)."""
    if name == ALL:
        return tuple(r for r in regions if r != "outside")
    if name in regions:
        return (name,)
    if name in state.members:
        return state.members[name]
    provinces = province_groups(regions)
    if name in provinces:
        return provinces[name]
    raise AirshedInputError(f"claim region {name!r}: not a source region, province or state region of this "
                            f"run (regions: {', '.join(regions)}; provinces: {', '.join(provinces)})")


def claim_weights(claim: Claim, state: StateVector,
                  regions: tuple[str, ...]) -> tuple[np.ndarray | None, str]:
    """Emission weights h (n,) of the elements a claim covers, or (None, why the state cannot separate it)."""
    wanted = set(source_regions_of(claim.region, state, regions))
    covered = np.zeros(state.n, dtype=bool)
    for j in np.flatnonzero(state.is_emission & (state.species == claim.species)):
        members = set(state.members[str(state.region[j])])
        inside = members & wanted
        if not inside:
            continue
        if inside != members:
            return None, (f"the state vector estimates {state.region[j]} as one element, which holds more "
                          f"than {claim.region} (rerun with --regions run)")
        if claim.sector != ALL and state.sector[j] != claim.sector:
            if state.sector[j] == ALL:
                return None, "the state vector estimates all sectors together (rerun with --sectors each)"
            continue
        start, end = state.window_bounds[state.window[j]]
        lo = claim.start if claim.start is not None else state.window_bounds[0, 0]
        hi = claim.end if claim.end is not None else state.window_bounds[-1, 1]
        if end <= lo or start >= hi:
            continue
        if start < lo or end > hi:
            return None, (f"the claim's window cuts the state window {start} to {end} (choose state windows "
                          "that the claim's window is a union of)")
        covered[j] = True
    if not covered.any():
        return None, f"no emissions of {claim.species} by {claim.region} in this run (or none estimated)"
    h = np.where(covered, state.emission, 0.0)
    return h / h.sum(), ""


def _variance(h: np.ndarray, cov: np.ndarray) -> float:
    return float(h @ cov @ h)


def verdict(estimate: float, sigma: float, information: float, claimed: float) -> tuple[str, str]:
    """Return the verdict and its reason for a claimed change (all as fractions, e.g. -0.2)."""
    outside = abs(estimate - claimed) > Z95 * sigma
    data_driven = information >= INFORMATION_THRESHOLD
    separable = abs(claimed) > Z95 * sigma
    if outside and data_driven:
        return CONTRADICTED, "the claimed change lies outside the estimate's 95 % interval"
    if not outside and data_driven and separable:
        return CONSISTENT, ("the claimed change lies inside the estimate's 95 % interval, which excludes no "
                            "change")
    if not data_driven:
        return NOT_RESOLVABLE, (f"the observations determine only {information:.0%} of the estimate (the "
                                "rest is the prior)")
    return NOT_RESOLVABLE, (f"the 95 % interval (+-{Z95 * sigma:.1%}) is wider than the claimed change: "
                            "the network cannot tell it from no change")


def check_claim(claim: Claim, verification) -> ClaimResult:
    """Judge a claim (module docstring) on a :class:`~airshed.verification.verify.Verification`.

    A claim about a species the run does not emit (CO, or NO2 for NOx) is bad input, not a limit of the
    network: AirshedInputError naming the run's emitted species.
    """
    v = verification
    if claim.species not in v.sens.emitted_species:
        raise AirshedInputError(f"--claim {claim.describe()}: species {claim.species!r} is not emitted in "
                                f"this run; its emitted species: {', '.join(v.sens.emitted_species)}")
    h, why = claim_weights(claim, v.state, v.sens.regions)
    if h is None:
        return ClaimResult(claim, NOT_RESOLVABLE, why)
    post, x = v.posterior, v.posterior.x
    estimate = float(h @ x - 1.0)
    var, var_a = _variance(h, post.covariance), _variance(h, post.prior_covariance)
    sigma = math.sqrt(max(var, 0.0))
    information = 1.0 - var / var_a if var_a > 0 else 0.0
    kind, reason = verdict(estimate, sigma, information, claim.percent / 100.0)
    result = ClaimResult(claim, kind, reason, 100.0 * estimate, 100.0 * sigma, 100.0 * math.sqrt(var_a),
                         information)
    result.informative_stations = [(s, 100.0 * math.sqrt(max(d, 0.0))) for s, d in
                                   v.station_influence(h)[:5]]
    if kind == NOT_RESOLVABLE:
        chosen, done = v.stations_to_resolve(h, estimate, claim.percent / 100.0)
        result.resolving_stations = [(s, 100.0 * math.sqrt(max(new, 0.0))) for s, new in chosen]
        if not chosen:
            result.reason += ("; every station of the run's list is already observed: a denser network is "
                              "needed")
        elif not done:
            result.reason += (f"; even {len(chosen)} more of the run's stations would not resolve it (with "
                              f"them the interval would be +-{Z95 * result.resolving_stations[-1][1]:.1f} %)")
    return result
