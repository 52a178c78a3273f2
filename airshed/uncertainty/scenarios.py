"""Scenario changes over the inventory members: each change as a median and a 5-95 % range.

In a member whose true emissions are ``f`` times the inventory's, a scenario multiplying the emissions by
``g`` changes the concentration by ``sum f (g - 1) c`` over the tags: the scenario's change of every stored
tagged contribution (:func:`airshed.scenarios.tagged_scenario_change`, the machinery of ``airshed
scenario``) weighted by the member's factors. Linear, so the whole ensemble costs one matrix product per
scenario.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from airshed.config import ScenarioConfig
from airshed.scenarios import own_region_mask, recompose_sums, tagged_scenario_change
from airshed.uncertainty.ensemble import InventoryEnsemble
from airshed.uncertainty.members import TaggedRun, draw_factors
from airshed.uncertainty.statistics import QUANTILES, ensemble_quantiles

__all__ = ["scenario_ensemble", "scenario_ranges"]


def scenario_ensemble(ds: xr.Dataset, scenarios: Sequence[ScenarioConfig], ensemble: InventoryEnsemble
                      ) -> xr.Dataset:
    """Evaluate scenarios on every inventory member of a run (period means, population-weighted).

    Returns
    -------
    xarray.Dataset
        ``scenario_change_members(scenario, member, receptor_region, species)`` (ug m-3), its quantiles
        ``scenario_change_quantile(quantile, scenario, receptor_region, species)``, the same for the part
        from the receptor region's own emission changes (``scenario_change_own_quantile``) and the others'
        (``scenario_change_others_quantile``), and ``scenario_change_percent_quantile`` (change relative to
        the member's own baseline, percent).
    """
    run = TaggedRun.from_dataset(ds)
    factors = draw_factors(run, ensemble.members, ensemble.seed, ensemble.correlation, ensemble.inventory)
    g = run.output_factors(factors)  # (N, R, K, S)
    is_own = own_region_mask(run.receptors, run.regions).astype(float)
    baseline = recompose_sums(np.einsum("nrks,qrks->nqs", g, run.mean), run.species)  # (N, Q, S)
    change, own, percent = [], [], []
    for scenario in scenarios:
        tagged = tagged_scenario_change(ds, scenario, run.hourly).mean(axis=0)  # (Q, R, K, S)
        by_region = recompose_sums(np.einsum("nrks,qrks->nqrs", g, tagged), run.species)  # (N, Q, R, S)
        total = by_region.sum(axis=2)
        change.append(total)
        own.append(np.einsum("nqrs,qr->nqs", by_region, is_own))
        with np.errstate(divide="ignore", invalid="ignore"):
            percent.append(np.where(baseline != 0, 100.0 * total / baseline, np.nan))
    change_a, own_a, percent_a = np.array(change), np.array(own), np.array(percent)  # (P, N, Q, S)
    dims = ("scenario", "receptor_region", "species")
    units = {"units": "ug m-3"}
    note = {"comment": f"over {ensemble.members} inventory members (seed {ensemble.seed}, correlation "
                       f"{ensemble.correlation:g})"}
    return xr.Dataset(
        {
            "scenario_change_members": (("scenario", "member") + dims[1:], change_a, {
                **units, "long_name": "scenario - baseline in each inventory member"}),
            "scenario_change_quantile": (("quantile",) + dims, ensemble_quantiles(change_a, axis=1), {
                **units, **note, "long_name": "quantiles of scenario - baseline"}),
            "scenario_change_own_quantile": (("quantile",) + dims, ensemble_quantiles(own_a, axis=1), {
                **units, **note, "long_name": "quantiles of the change from the receptor region's own "
                "emission changes"}),
            "scenario_change_others_quantile": (("quantile",) + dims,
                                                ensemble_quantiles(change_a - own_a, axis=1), {
                **units, **note, "long_name": "quantiles of the change from every other region's "
                "emission changes"}),
            "scenario_change_percent_quantile": (("quantile",) + dims,
                                                 ensemble_quantiles(percent_a, axis=1), {
                "units": "percent", **note, "long_name": "quantiles of the change relative to the member's "
                "baseline"}),
        },
        coords={"scenario": [s.name for s in scenarios], "member": np.arange(ensemble.members),
                "quantile": list(QUANTILES), "receptor_region": list(run.receptors),
                "species": list(run.species)},
        attrs={"uncertainty_members": ensemble.members},
    )


def scenario_ranges(ensemble: xr.Dataset, species: str = "PM2.5") -> dict[tuple[str, str], dict[str, float]]:
    """Per (scenario, receptor region): the 5, 50 and 95 % quantiles of the change and of its parts.

    Keys of each entry: ``change_ug_m3_p05``, ``_p50``, ``_p95``, the same for ``change_percent``,
    ``change_from_own_ug_m3`` and ``change_from_others_ug_m3``, and ``inventory_members``.
    """
    names = {"scenario_change_quantile": "change_ug_m3", "scenario_change_percent_quantile": "change_percent",
             "scenario_change_own_quantile": "change_from_own_ug_m3",
             "scenario_change_others_quantile": "change_from_others_ug_m3"}
    out: dict[tuple[str, str], dict[str, float]] = {}
    for scenario in ensemble["scenario"].values:
        for region in ensemble["receptor_region"].values:
            row: dict[str, float] = {"inventory_members": int(ensemble.attrs["uncertainty_members"])}
            for variable, stem in names.items():
                values = ensemble[variable].sel(scenario=scenario, receptor_region=region, species=species)
                for q in QUANTILES:
                    row[f"{stem}_p{round(100 * q):02d}"] = float(values.sel(quantile=q))
            out[(str(scenario), str(region))] = row
    return out
