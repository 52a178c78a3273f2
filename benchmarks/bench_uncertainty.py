"""Benchmark: inventory members by re-weighting, at the size of the default case.

A synthetic run file's tagged receptor part of the default JJJ case's size (120 hours, 13 receptor
regions, 14 source regions, 5 sectors, 8 species) gets 1000 inventory members: quantiles of the
source-receptor table, the transboundary shares and the hourly receptor series, and the variance by
source (:func:`airshed.uncertainty.ensemble.inventory_ensemble`). The reference path evaluates members one
at a time with the scenario machinery (each member's factors as a ``[[scenarios]]`` entry, then
``evaluate_scenarios``), the way a user without the ensemble code would; the ratio is its CPU time per
member over the ensemble's. Target: 1000 members in seconds.

    python benchmarks/bench_uncertainty.py [--members 1000] [--reference-members 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import xarray as xr

from airshed.physics.mechanism import EMITTED_SPECIES, OUTPUT_SPECIES
from airshed.scenarios import evaluate_scenarios
from airshed.uncertainty.ensemble import InventoryEnsemble, inventory_ensemble
from airshed.uncertainty.members import TaggedRun, draw_factors, factors_as_scenario

SECTORS = ("power", "industry", "residential", "transport", "agriculture")


def default_case_sized_run(hours: int = 120, receptors: int = 13, seed: int = 0) -> xr.Dataset:
    """A run file's tagged receptor part with the default case's dimensions (random contributions)."""
    rng = np.random.default_rng(seed)
    regions = [f"R{i:02d}" for i in range(receptors)] + ["outside"]
    rc = rng.lognormal(0.0, 1.0, (hours, receptors, len(regions), len(SECTORS), len(OUTPUT_SPECIES)))
    parts = [OUTPUT_SPECIES.index(p) for p in ("PM2.5_primary", "sulfate", "nitrate")]
    rc[..., OUTPUT_SPECIES.index("PM2.5")] = rc[..., parts].sum(axis=-1)
    edges = np.datetime64("2017-12-01T00:00", "s") + np.arange(hours + 1) * np.timedelta64(1, "h")
    dims = ("time", "receptor_region", "source_region", "sector", "species")
    return xr.Dataset(
        {
            "receptor_contribution": (dims, rc),
            "receptor_concentration": (("time", "receptor_region", "species"), rc.sum(axis=(2, 3))),
            "time_bnds": (("time", "nv"), np.stack([edges[:-1], edges[1:]], axis=-1)),
            "population_region": (("receptor_region",), rng.uniform(1e6, 2e7, receptors)),
            "emission_total": (("source_region", "sector", "emitted_species"),
                               rng.uniform(1e2, 1e4, (len(regions), len(SECTORS), len(EMITTED_SPECIES)))),
        },
        coords={"time": edges[1:], "receptor_region": regions[:-1], "source_region": regions,
                "sector": list(SECTORS), "species": list(OUTPUT_SPECIES),
                "emitted_species": list(EMITTED_SPECIES)},
        attrs={"core": "lagrangian"},
    )


def measure(members: int, reference_members: int) -> dict[str, float]:
    """CPU seconds of the ensemble and, per member, of the reference path; the load average."""
    ds = default_case_sized_run()
    t0 = time.process_time()
    inventory_ensemble(ds, InventoryEnsemble(members, seed=1))
    ensemble_cpu = time.process_time() - t0
    run = TaggedRun.from_dataset(ds)
    factors = draw_factors(run, reference_members, seed=1)
    t0 = time.process_time()
    for j in range(reference_members):
        scenario = factors_as_scenario(factors[j], run.regions, run.sectors, name=f"m{j}")
        evaluate_scenarios(ds, [scenario])
    reference_per_member = (time.process_time() - t0) / reference_members
    return {"ensemble_cpu_s": ensemble_cpu, "per_member_ms": 1e3 * ensemble_cpu / members,
            "reference_per_member_ms": 1e3 * reference_per_member,
            "ratio": reference_per_member / (ensemble_cpu / members), "load": os.getloadavg()[0]}


def benchmarks(quick: bool) -> list[dict]:
    """Records for ``airshed bench``: inventory members per CPU second at the default case's size."""
    members = 200 if quick else 1000
    m = measure(members, 1 if quick else 3)
    return [{"name": f"inventory ensemble, {members} members, default-case size (120 h, 13 x 14 regions)",
             "unit": "members/s (CPU)", "value": members / m["ensemble_cpu_s"],
             "ratio_vs_reference": m["ratio"], "wall_s": m["ensemble_cpu_s"]}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--reference-members", type=int, default=3)
    args = parser.parse_args()
    m = measure(args.members, args.reference_members)
    print(f"load average {m['load']:.2f}, os.cpu_count()={os.cpu_count()}")
    print(f"{args.members} inventory members (quantiles + variance): {m['ensemble_cpu_s']:.2f} s CPU, "
          f"{m['per_member_ms']:.2f} ms per member")
    print(f"reference (scenario machinery, one member at a time): {m['reference_per_member_ms']:.0f} ms per "
          f"member; ratio {m['ratio']:.0f}x")


if __name__ == "__main__":
    main()
