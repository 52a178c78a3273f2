"""Benchmark: exact Shapley values of the abatement game on a synthetic JJJ-like instance.

15 regions x 5 precursors, 2**15 = 32,768 coalition LPs (HiGHS via scipy.optimize.linprog) solved in a
process pool, then Shapley (exact), core membership and core non-emptiness. A serial sample of coalitions
solved by the reference path (one cold ``linprog`` per coalition) gives the ratio to the warm-started
Gray-code path. Target: under 2 minutes on 2 cores.

    python benchmarks/bench_cooperation.py [--players 15] [--workers 2] [--serial-sample 300]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import numpy as np
import xarray as xr

from airshed.cooperation.abatement import all_coalition_costs, build_problem, coalition_cost
from airshed.cooperation.games import core_check, core_is_nonempty, shapley_exact
from airshed.cooperation.policy import PRECURSORS, policy_from_dict
from airshed.cooperation.runfile import run_tables


def synthetic_jjj(n: int, seed: int = 2017) -> tuple[xr.Dataset, dict]:
    """Source-receptor tables of ``n`` regions on a ~600 km square, a 10-day winter run, and a policy.

    Contributions fall off with distance (e-folding 150 km), own-region contributions dominate, and
    period emissions are of the order of a Hebei city's 10-day totals (hundreds to tens of thousands of t).
    """
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.0, 600.0, (n, 2))
    dist = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    transport = np.exp(-dist / 150.0)
    per_tonne = np.array([4e-4, 2e-4, 1.2e-3, 3e-4, 5e-5])  # ug m-3 per tonne at the source region
    emissions = rng.uniform(0.3, 3.0, (n + 1, 5)) * np.array([3e3, 6e3, 2e3, 2e3, 5e3])
    sr = np.zeros((n, n + 1, 5))
    sr[:, :n, :] = transport[:, :, None] * emissions[None, :n, :] * per_tonne[None, None, :]
    sr[:, n, :] = rng.uniform(1.0, 4.0, (n, 5))  # outside
    total = sr.sum(axis=(1, 2)) + 8.0
    regions = [f"City{i:02d}" for i in range(n)]
    run = xr.Dataset(
        {
            "pm25_source_receptor": (("receptor_region", "source_region", "precursor"), sr),
            "pm25_total": (("receptor_region",), total),
            "emission_total": (("source_region", "sector", "species"), emissions[:, None, :]),
            "population": (("receptor_region",), rng.uniform(3e6, 2e7, n)),
        },
        coords={
            "receptor_region": regions,
            "source_region": [*regions, "outside"],
            "precursor": list(PRECURSORS),
            "sector": ["all"],
            "species": list(PRECURSORS),
        },
        attrs={"time_coverage_start": "2017-12-01T00:00", "time_coverage_end": "2017-12-11T00:00"},
    )
    curves = {
        "SO2": [[0.0, 5052.6], [0.4, 44600.0], [0.8, 154395.0]],
        "NOx": [[0.0, 5052.6], [0.35, 23500.0], [0.7, 120000.0]],
        "PM2.5": [[0.0, 1500.0], [0.35, 4300.0], [0.7, 60000.0]],
        "NH3": [[0.0, 10000.0], [0.25, 30000.0], [0.5, 100000.0]],
        "NMVOC": [[0.0, 5052.6], [0.3, 20000.0], [0.6, 80000.0]],
    }
    policy = {
        "targets": {r: float(0.8 * total[i]) for i, r in enumerate(regions)},
        "costs": {"default": {p: {"max_fraction": c[-1][0], "marginal_cost": c} for p, c in curves.items()}},
    }
    return run, policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--serial-sample", type=int, default=300)
    args = parser.parse_args()

    run, pol = synthetic_jjj(args.players)
    policy = policy_from_dict(pol)
    t0 = time.perf_counter()
    problem = build_problem(run_tables(run), policy)
    t_build = time.perf_counter() - t0
    n = problem.n_players
    n_lp_vars = int((problem.seg_width > 0).sum())

    rng = np.random.default_rng(0)
    sample = rng.integers(1, 2**n, args.serial_sample)
    t0 = time.perf_counter()
    for m in sample:
        coalition_cost(problem, int(m))
    serial_per_lp = (time.perf_counter() - t0) / sample.size

    t0 = time.perf_counter()
    values = all_coalition_costs(problem, workers=args.workers)
    t_all = time.perf_counter() - t0
    t0 = time.perf_counter()
    phi = shapley_exact(values)
    core = core_check(values, phi, "cost", rtol=1e-7)
    nonempty = core_is_nonempty(values, "cost", rtol=1e-7)
    t_game = time.perf_counter() - t0

    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"CPU: {platform.processor() or platform.machine()}, os.cpu_count()={os.cpu_count()}, "
        f"affinity={len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.2f}"
    )
    print(f"players {n}, precursors {len(problem.precursors)}, LP columns (full coalition) {n_lp_vars}")
    print(f"build problem: {t_build * 1e3:.1f} ms")
    print(
        f"reference path (scipy linprog, cold start, 1 process): {serial_per_lp * 1e3:.2f} ms per LP "
        f"(sample of {sample.size})"
    )
    print(
        f"all {values.size} coalitions, {args.workers} workers: {t_all:.1f} s "
        f"({values.size / t_all:.0f} LP/s; "
        f"ratio vs reference path {serial_per_lp * values.size / t_all:.2f}x)"
    )
    print(f"Shapley + core check + core non-emptiness LP: {t_game:.2f} s")
    print(f"total {t_build + t_all + t_game:.1f} s (target < 120 s)")
    print(
        f"v(N) = {values[-1] / 1e6:,.1f} million yuan; sum(phi) = {phi.sum() / 1e6:,.1f}; "
        f"Shapley in core: {core.in_core} (max excess {core.max_excess:.3g} yuan); core non-empty: {nonempty}"
    )
    print(f"peak RSS: main {rss_self:.0f} MiB, largest worker {rss_children:.0f} MiB")


if __name__ == "__main__":
    main()
