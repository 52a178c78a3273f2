"""Tables and JSON of a verification: diagnostics, changes by region and species, claim verdicts."""

from __future__ import annotations

import math

import numpy as np
from rich.table import Table

from airshed.verification.claims import Z95, ClaimResult
from airshed.verification.verify import Verification


def _number(value: float, fmt: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, fmt)


def diagnostics(v: Verification) -> dict:
    """Return counts and diagnostics of the inversion (plain JSON values)."""
    p, rows = v.posterior, v.system.rows.iloc[v.rows]
    return {
        "observations": int(p.m),
        "observations_by_species": {str(k): int(n) for k, n in rows["species"].value_counts().items()},
        "stations_observed": int(rows["station"].nunique()),
        "stations_in_run": len(v.sens.stations),
        "state_elements": int(v.state.n),
        "dofs": p.dofs,
        "chi2_per_observation": p.chi2,
        "chi2_observation_part": p.chi2_obs,
        "chi2_prior_part": p.chi2_prior,
        "gauss_newton_iterations": p.iterations,
        "converged": p.converged,
        "last_step_d2": p.step_d2,
        "average_hours": v.settings.average_hours,
        "regions": v.settings.regions,
        "sectors": v.settings.sectors,
        "window": v.settings.window,
    }


def diagnostics_table(v: Verification) -> Table:
    """Return the diagnostics as a two-column table."""
    d = diagnostics(v)
    table = Table(title="airshed verify: inversion diagnostics", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    by_species = ", ".join(f"{k} {n}" for k, n in d["observations_by_species"].items())
    table.add_row("observations", f"{d['observations']} ({by_species}; {d['average_hours']} h means)")
    table.add_row("stations", f"{d['stations_observed']} observed of {d['stations_in_run']} in the run")
    table.add_row("state", f"{d['state_elements']} elements (regions: {d['regions']}, sectors: "
                  f"{d['sectors']}, window: {d['window']})")
    table.add_row("DOFS", f"{d['dofs']:.1f}")
    table.add_row("chi2 / n", f"{d['chi2_per_observation']:.2f} (observations "
                  f"{d['chi2_observation_part']:.2f}, prior {d['chi2_prior_part']:.2f}; expected about 1)")
    table.add_row("iteration", f"{d['gauss_newton_iterations']} Gauss-Newton / Levenberg-Marquardt step(s), "
                  f"{'converged' if d['converged'] else 'NOT converged: the estimates are the last iterate'} "
                  f"(last step d2 = {d['last_step_d2']:.1e}, n = {d['state_elements']})")
    return table


def region_table(v: Verification, only_jjj_and_all: bool = False) -> Table:
    """Estimated change per region and species (all windows)."""
    frame = v.region_table()
    table = Table(title="estimated emission change (posterior - prior) / prior, aggregated over sectors",
                  title_justify="left")
    for column in ("region", "species", "window", "emission (t)", "change %", "1 sigma %", "prior sigma %",
                   "information"):
        table.add_column(column, justify="left" if column in ("region", "species", "window") else "right")
    for _, r in frame.iterrows():
        table.add_row(str(r.region), str(r.species), f"{r.start:%m-%d %H}h..{r.end:%m-%d %H}h",
                      f"{r.emission_t:,.0f}", f"{r.change_percent:+.1f}", f"{r.sigma_percent:.1f}",
                      f"{r.prior_sigma_percent:.1f}", f"{r.information:.2f}")
    table.caption = ("information = 1 - posterior variance / prior variance: the share of the estimate that "
                     "the observations determine (0: prior only, 1: observations only).")
    table.caption_justify = "left"
    return table


def claim_json(result: ClaimResult) -> dict:
    """Return a claim verdict as plain JSON values."""
    c = result.claim
    lo, hi = result.interval_percent
    return {
        "claim": c.describe(), "region": c.region, "sector": c.sector, "species": c.species,
        "claimed_percent": c.percent,
        "start": None if c.start is None else str(c.start), "end": None if c.end is None else str(c.end),
        "verdict": result.verdict, "reason": result.reason,
        "estimated_percent": _finite(result.estimate_percent), "sigma_percent": _finite(result.sigma_percent),
        "interval_95_percent": [_finite(lo), _finite(hi)],
        "prior_sigma_percent": _finite(result.prior_sigma_percent),
        "information": _finite(result.information),
        "informative_stations": [{"station": s, "sigma_increase_percent": d}
                                 for s, d in result.informative_stations],
        "resolving_stations": [{"station": s, "sigma_after_percent": d}
                               for s, d in result.resolving_stations],
    }


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def claims_table(results: list[ClaimResult]) -> Table:
    """Claim verdicts."""
    table = Table(title="claim check", title_justify="left")
    for column in ("claim", "estimate %", "95 % interval", "information", "verdict", "stations"):
        table.add_column(column, justify="right" if column in ("estimate %", "information") else "left")
    for r in results:
        lo, hi = r.interval_percent
        if r.resolving_stations:
            stations = "would resolve with: " + ", ".join(s for s, _ in r.resolving_stations)
        elif r.informative_stations:
            stations = "rests most on: " + ", ".join(s for s, _ in r.informative_stations[:3])
        else:
            stations = ""
        table.add_row(r.claim.describe(), _number(r.estimate_percent, "+.1f"),
                      f"[{_number(lo, '+.1f')}, {_number(hi, '+.1f')}]", _number(r.information, ".2f"),
                      f"{r.verdict}: {r.reason}", stations)
    table.caption = f"95 % interval = estimate +- {Z95:.2f} sigma."
    table.caption_justify = "left"
    return table


def verification_json(v: Verification, claims: list[ClaimResult]) -> dict:
    """Everything of a verification as plain JSON values."""
    regions = v.region_table()
    elements = v.element_table()
    for frame in (regions, elements):
        for column in ("start", "end", "window_start", "window_end"):
            if column in frame:
                frame[column] = frame[column].astype(str)
    return {
        "diagnostics": diagnostics(v),
        "notes": list(v.notes),
        "regions": regions.replace({np.nan: None}).to_dict(orient="records"),
        "elements": elements.replace({np.nan: None}).to_dict(orient="records"),
        "claims": [claim_json(c) for c in claims],
    }
