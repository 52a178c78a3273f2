"""Premature deaths from PM2.5 exposure, attributed to source regions, and their monetary value.

Concentration-response: log-linear relative risk ``RR(C) = exp(beta * max(C - C0, 0))`` with
``beta = ln(HR10) / 10`` per ug m-3, where ``HR10`` is a cohort hazard ratio per 10 ug m-3. The default
``HR10 = 1.09`` is non-accidental mortality in 189,793 Chinese men (Yin et al. 2017, Environ. Health
Perspect. 125:117002, doi:10.1289/EHP1673; packaged ``data/policy/health_valuation.csv``); the default
counterfactual ``C0 = 2.4`` ug m-3 is that of the GEMM (Burnett et al. 2018, PNAS 115:9592).

Attributable deaths in receptor ``i`` (deaths per year): ``D_i = P_i * m * (1 - 1/RR(C_i))`` with
population ``P_i``, baseline mortality ``m`` (deaths per person per year, from the policy file) and the
population-weighted period mean ``C_i`` used as the long-term exposure (the cohort estimate is for
long-term exposure: a short run over- or under-states it by its season).

Attribution to sources: the burden is shared in proportion to each source's contribution to ``C_i``
(``D_ij = D_i * SR_ij / C_i``, summed over precursors), with the part of ``C_i`` no modelled source
explains reported as ``unattributed``. Shares add up to ``D_i`` exactly and treat every microgram alike
regardless of the order in which sources are removed (the RR curve is concave above C0, so removing
sources one at a time would give order-dependent answers). Values use a value of a statistical life (VSL).
"""

from __future__ import annotations

import numpy as np

from airshed.cooperation.policy import Health
from airshed.cooperation.runfile import RunTables
from airshed.errors import DataError

UNATTRIBUTED = "unattributed"


def log_linear_attributable_fraction(
    concentration: np.ndarray, hazard_ratio_per_10: float, counterfactual: float
) -> np.ndarray:
    """Attributable fraction ``1 - 1/RR = 1 - exp(-beta (C - C0)+)``, ``beta = ln(HR10)/10``.

    Parameters
    ----------
    concentration
        Long-term PM2.5, ug m-3.
    hazard_ratio_per_10
        Hazard ratio per 10 ug m-3 (e.g. 1.09, Yin et al. 2017).
    counterfactual
        Concentration with no excess risk, ug m-3.
    """
    beta = np.log(hazard_ratio_per_10) / 10.0
    excess = np.clip(np.asarray(concentration, dtype=float) - counterfactual, 0.0, None)
    return -np.expm1(-beta * excess)


def health_damages(tables: RunTables, health: Health) -> dict:
    """Attributable deaths per year and their value, per receptor region and source region.

    Returns
    -------
    dict
        ``{receptor: {"total": {...}, "sources": {source: {"deaths": d, "value_yuan": y}}}}`` plus a
        ``"population_weighted_pm25_ugm3"`` entry over all receptors and the parameters used.
    """
    total = tables.pm25_total
    by_source = tables.source_receptor.sum(axis=2)  # (receptor, source)
    explained = by_source.sum(axis=1)
    excess = explained - total
    if np.any(excess > 1e-6 * np.maximum(total, 1.0)):
        bad = tables.receptors[int(np.argmax(excess))]
        raise DataError(f"run: pm25_source_receptor for {bad!r} sums to more than pm25_total")
    af = log_linear_attributable_fraction(total, health.hazard_ratio_per_10ugm3, health.counterfactual_ugm3)
    deaths = tables.population * health.baseline_mortality * af
    share = np.divide(by_source, total[:, None], out=np.zeros_like(by_source), where=total[:, None] > 0.0)
    out: dict = {}
    for i, receptor in enumerate(tables.receptors):
        per_source = {
            src: {
                "deaths": float(deaths[i] * share[i, j]),
                "value_yuan": float(deaths[i] * share[i, j] * health.vsl_yuan),
            }
            for j, src in enumerate(tables.sources)
        }
        rest = max(1.0 - share[i].sum(), 0.0)
        per_source[UNATTRIBUTED] = {
            "deaths": float(deaths[i] * rest),
            "value_yuan": float(deaths[i] * rest * health.vsl_yuan),
        }
        out[receptor] = {
            "total": {
                "pm25_ugm3": float(total[i]),
                "population": float(tables.population[i]),
                "attributable_fraction": float(af[i]),
                "deaths": float(deaths[i]),
                "value_yuan": float(deaths[i] * health.vsl_yuan),
            },
            "sources": per_source,
        }
    pop = tables.population.sum()
    return {
        "receptors": out,
        "population_weighted_pm25_ugm3": float((tables.population * total).sum() / pop) if pop > 0 else None,
        "parameters": {
            "deaths_unit": "premature deaths per year (period mean taken as the long-term exposure)",
            "hazard_ratio_per_10ugm3": health.hazard_ratio_per_10ugm3,
            "hazard_ratio_source": health.hazard_ratio_source,
            "counterfactual_ugm3": health.counterfactual_ugm3,
            "baseline_mortality": health.baseline_mortality,
            "baseline_mortality_source": health.baseline_mortality_source,
            "vsl_yuan": health.vsl_yuan,
            "vsl_source": health.vsl_source,
        },
    }
