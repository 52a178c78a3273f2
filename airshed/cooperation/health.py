"""Premature deaths from PM2.5 and their money value: acute (episode) and chronic (annual) exposure.

Two exposure-response functions, each for the exposure it was estimated on:

Acute, for the run period (any length)
    Daily non-accidental deaths rise by ``0.22 %`` per 10 ug m-3 of two-day mean PM2.5 in 272 Chinese
    cities (Chen et al. 2017, Am. J. Respir. Crit. Care Med. 196:73, doi:10.1164/rccm.201609-1862OC;
    ``data/policy/health_valuation.csv``). Deaths during the run:
    ``D = P * r * T * (1 - exp(-beta (C - C0)+))`` with ``beta = ln(1 + 0.0022) / 10`` per ug m-3,
    population ``P``, the all-age natural death rate ``r`` (per person per day), the run length ``T`` in
    days and the run's population-weighted mean ``C``. Using the period mean instead of daily means
    changes ``D`` by a term of order ``beta^2 var(C)``: below 1 % for any realistic episode.
Chronic, per year, for an annual-mean exposure
    GEMM NCD+LRI with the Chinese cohort, age-specific for adults 25+ (Burnett et al. 2018, PNAS
    115:9592; parameters in ``data/policy/gemm_ncd_lri.csv``):
    ``RR_a(z) = exp(theta_a ln(1 + z/alpha) / (1 + exp(-(z - mu)/nu)))``, ``z = max(0, C - 2.4)``, and
    ``D = P * sum_a m_a (1 - 1/RR_a(C))`` with ``m_a`` the NCD+LRI deaths of age group ``a`` per person
    of all ages (China 2015, GBD 2015 as tabulated by the GEMM authors;
    ``data/policy/baseline_mortality_china_2015.csv``). Only meaningful for an annual mean: a run shorter
    than a year gets a chronic figure only when the policy says the run stands for a year
    (``cost_basis = "annual"``), and the output says so.

Both functions are applied to each receptor region's population-weighted mean (not cell by cell): a
simplification that the concave GEMM makes conservative (Jensen's inequality). The burden of a receptor
is shared among source regions in proportion to their contributions to ``C`` (the part no modelled
source explains is ``unattributed``), so the shares add up and do not depend on an order of removal.
Money values use a value of a statistical life (VSL).

The cooperation game uses the derivative: the marginal damage of PM2.5 at each receptor, yuan per
ug m-3 (:class:`Damages`), evaluated at the run's baseline.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import numpy as np

from airshed.cooperation.policy import Health
from airshed.cooperation.runfile import RunTables
from airshed.errors import DataError

UNATTRIBUTED = "unattributed"
DAYS_PER_YEAR = 365.25
#: Counterfactual of the GEMM: the lowest concentration in its cohorts, ug m-3 (Burnett et al. 2018).
GEMM_COUNTERFACTUAL_UGM3 = 2.4
ACUTE_SOURCE = "Chen R. et al. (2017) Am. J. Respir. Crit. Care Med. 196:73, doi:10.1164/rccm.201609-1862OC"
CHRONIC_SOURCE = (
    "GEMM NCD+LRI incl. the Chinese cohort, age-specific (Burnett R. et al. 2018, PNAS 115:9592, "
    "doi:10.1073/pnas.1803222115); baseline NCD+LRI deaths China 2015 (GBD 2015, GEMM calculator)"
)


def _data_rows(name: str) -> list[dict[str, str]]:
    text = resources.files("airshed.data").joinpath(f"policy/{name}").read_text("utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return list(csv.DictReader(io.StringIO(body)))


@dataclass(frozen=True)
class GemmParameters:
    """Age-specific GEMM NCD+LRI parameters and baseline deaths per person (of all ages) per year."""

    age_groups: tuple[str, ...]
    theta: np.ndarray
    alpha: np.ndarray
    mu: np.ndarray
    nu: np.ndarray
    deaths_per_person: np.ndarray  # NCD+LRI deaths per year in each age group, per person of all ages


@dataclass(frozen=True)
class MortalityData:
    """The shipped exposure-response parameters and baseline rates (see the module docstring)."""

    gemm: GemmParameters
    natural_deaths_per_person_year: float  # all ages, all natural causes


@functools.cache
def mortality_data() -> MortalityData:
    """Read ``gemm_ncd_lri.csv`` and ``baseline_mortality_china_2015.csv`` from the package."""
    gemm = {r["age_group"]: r for r in _data_rows("gemm_ncd_lri.csv") if r["age_group"] != "25+"}
    base = {r["group"]: r for r in _data_rows("baseline_mortality_china_2015.csv")}
    population = float(base["all ages"]["population"])
    ages = tuple(gemm)
    if set(ages) - set(base):
        raise DataError(f"baseline_mortality_china_2015.csv lacks age groups {sorted(set(ages) - set(base))}")
    column = {k: np.array([float(gemm[a][k]) for a in ages]) for k in ("theta", "alpha", "mu", "nu")}
    natural = sum(float(r["natural_deaths"]) for g, r in base.items() if g != "all ages")
    return MortalityData(
        gemm=GemmParameters(
            age_groups=ages,
            deaths_per_person=np.array([float(base[a]["ncd_lri_deaths"]) for a in ages]) / population,
            **column,
        ),
        natural_deaths_per_person_year=natural / population,
    )


def gemm_attributable_fraction(
    concentration: np.ndarray, theta: np.ndarray, alpha: np.ndarray, mu: np.ndarray, nu: np.ndarray,
    counterfactual: float = GEMM_COUNTERFACTUAL_UGM3,
) -> tuple[np.ndarray, np.ndarray]:
    """GEMM attributable fraction ``1 - 1/RR`` and its derivative per ug m-3 (Burnett et al. 2018, eq. 1).

    Parameters broadcast against each other (e.g. concentrations ``(n, 1)`` against age groups ``(k,)``).

    Returns
    -------
    af, daf_dc
        Attributable fraction (0 at and below the counterfactual) and its derivative, per ug m-3.
    """
    z = np.clip(np.asarray(concentration, dtype=float) - counterfactual, 0.0, None)
    e = np.exp(-(z - mu) / nu)
    logistic = 1.0 / (1.0 + e)
    log_term = np.log1p(z / alpha)
    transform = log_term * logistic
    d_transform = logistic / (alpha + z) + log_term * e * logistic**2 / nu
    survive = np.exp(-theta * transform)  # 1 / RR
    above = np.asarray(concentration, dtype=float) > counterfactual
    return 1.0 - survive, np.where(above, theta * d_transform * survive, 0.0)


def chronic_deaths(
    concentration: np.ndarray, population: np.ndarray, data: MortalityData | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Deaths per year attributable to annual-mean PM2.5 (GEMM NCD+LRI, adults 25+), and per ug m-3.

    Parameters
    ----------
    concentration
        Annual-mean PM2.5 of each region, ug m-3.
    population
        Persons of all ages in each region.
    data
        Parameters and rates (default: the shipped ones).
    """
    g = (data or mortality_data()).gemm
    c = np.asarray(concentration, dtype=float)[..., None]
    af, daf = gemm_attributable_fraction(c, g.theta, g.alpha, g.mu, g.nu)
    pop = np.asarray(population, dtype=float)
    return pop * (af * g.deaths_per_person).sum(axis=-1), pop * (daf * g.deaths_per_person).sum(axis=-1)


def acute_deaths(
    concentration: np.ndarray, population: np.ndarray, days: float, percent_per_10ugm3: float,
    counterfactual: float, data: MortalityData | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Deaths during ``days`` attributable to short-term PM2.5 (log-linear, Chen et al. 2017), and per ug m-3.

    Parameters
    ----------
    concentration
        Mean PM2.5 over the days, ug m-3.
    population
        Persons of all ages.
    days
        Length of the exposure, days.
    percent_per_10ugm3
        Percent increase of daily non-accidental deaths per 10 ug m-3 (0.22, Chen et al. 2017).
    counterfactual
        Concentration without excess risk, ug m-3.
    """
    rate = (data or mortality_data()).natural_deaths_per_person_year / DAYS_PER_YEAR
    beta = np.log1p(percent_per_10ugm3 / 100.0) / 10.0
    c = np.asarray(concentration, dtype=float)
    excess = np.clip(c - counterfactual, 0.0, None)
    expected = np.asarray(population, dtype=float) * rate * days
    survive = np.exp(-beta * excess)
    return expected * (1.0 - survive), np.where(c > counterfactual, expected * beta * survive, 0.0)


DamageKind = Literal["acute", "chronic"]


@dataclass(frozen=True)
class Damages:
    """Health damage of each receptor region at the run's baseline, and its derivative.

    ``kind`` says which function (acute deaths during the run, chronic deaths per year); money is deaths
    times the VSL.
    """

    kind: DamageKind
    deaths: np.ndarray
    marginal_deaths: np.ndarray  # per ug m-3
    vsl_yuan: float
    unit: str

    @property
    def value_yuan(self) -> np.ndarray:
        """Damage at baseline, yuan."""
        return self.deaths * self.vsl_yuan

    @property
    def marginal_yuan_per_ugm3(self) -> np.ndarray:
        """Marginal damage, yuan per ug m-3 of the receptor's mean PM2.5."""
        return self.marginal_deaths * self.vsl_yuan


def _period_days(tables: RunTables) -> float:
    if tables.period_days is None:
        raise DataError(
            "run: health damages need the run period: attributes time_coverage_start and "
            "time_coverage_end missing"
        )
    return tables.period_days


def damages(tables: RunTables, health: Health, kind: DamageKind) -> Damages:
    """Damages of every receptor region: ``"acute"`` over the run period or ``"chronic"`` per year.

    The chronic function takes the run's period mean as the annual mean (the caller decides that the
    run stands for a year).
    """
    if kind == "acute":
        days = _period_days(tables)
        deaths, marginal = acute_deaths(tables.pm25_total, tables.population, days,
                                        health.acute_percent_per_10ugm3, health.acute_counterfactual_ugm3)
        unit = f"deaths during the run period ({days:g} days)"
    else:
        deaths, marginal = chronic_deaths(tables.pm25_total, tables.population)
        unit = "deaths per year (the run's period mean taken as the annual mean)"
    return Damages(kind, deaths, marginal, health.vsl_yuan, unit)


def _burden(tables: RunTables, damage: Damages) -> dict:
    """Per receptor: PM2.5, population, deaths, money, marginal money, and deaths by source region."""
    total = tables.pm25_total
    by_source = tables.source_receptor.sum(axis=2)
    share = np.divide(by_source, total[:, None], out=np.zeros_like(by_source), where=total[:, None] > 0.0)
    receptors = {}
    for i, receptor in enumerate(tables.receptors):
        sources = {src: float(damage.deaths[i] * share[i, j]) for j, src in enumerate(tables.sources)}
        sources[UNATTRIBUTED] = float(damage.deaths[i] * max(1.0 - share[i].sum(), 0.0))
        receptors[receptor] = {
            "pm25_ugm3": float(total[i]),
            "population": float(tables.population[i]),
            "deaths": float(damage.deaths[i]),
            "value_yuan": float(damage.value_yuan[i]),
            "marginal_value_yuan_per_ugm3": float(damage.marginal_yuan_per_ugm3[i]),
            "sources": sources,
        }
    return {
        "unit": damage.unit,
        "total_deaths": float(damage.deaths.sum()),
        "total_value_yuan": float(damage.value_yuan.sum()),
        "receptors": receptors,
    }


def health_report(tables: RunTables, health: Health, annual: bool) -> dict:
    """Build the health section of the cooperation JSON: acute deaths in the run, chronic deaths per year.

    ``annual``: the policy takes the run as representative of a year (``cost_basis = "annual"``). The
    chronic burden is reported when it is, or when the run covers a year; otherwise ``chronic`` is None
    and ``chronic_note`` says why.
    """
    by_source = tables.source_receptor.sum(axis=2).sum(axis=1)
    if np.any(by_source - tables.pm25_total > 1e-6 * np.maximum(tables.pm25_total, 1.0)):
        bad = tables.receptors[int(np.argmax(by_source - tables.pm25_total))]
        raise DataError(f"run: pm25_source_receptor for {bad!r} sums to more than pm25_total")
    days = _period_days(tables)
    covers_year = days >= 365.0
    chronic, note = None, None
    if annual or covers_year:
        chronic = _burden(tables, damages(tables, health, "chronic"))
        if not covers_year:
            chronic["unit"] = (f"deaths per year IF the {days:g}-day period mean were the annual mean "
                               "(cost_basis = 'annual': the run taken as representative of a year)")
    else:
        note = (f"not reported: a {days:g}-day run is not an annual exposure (set options.cost_basis = "
                "'annual' to take the period mean as the annual mean)")
    pop = tables.population.sum()
    return {
        "acute": _burden(tables, damages(tables, health, "acute")),
        "chronic": chronic,
        "chronic_note": note,
        "population_weighted_pm25_ugm3": float((tables.population * tables.pm25_total).sum() / pop)
        if pop > 0 else None,
        "parameters": {
            "acute_function": f"log-linear, {health.acute_percent_per_10ugm3} % more daily non-accidental "
                              f"deaths per 10 ug m-3 ({health.acute_source})",
            "chronic_function": CHRONIC_SOURCE,
            "acute_counterfactual_ugm3": health.acute_counterfactual_ugm3,
            "chronic_counterfactual_ugm3": GEMM_COUNTERFACTUAL_UGM3,
            "vsl_yuan": health.vsl_yuan,
            "vsl_source": health.vsl_source,
            "exposure": "population-weighted mean PM2.5 of each receptor region over the run period",
        },
    }
