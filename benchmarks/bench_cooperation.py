"""Benchmark: the cooperation games on a synthetic JJJ-like instance (every coalition, Shapley, core).

Gamma game (the default): all ``2**n`` coalition values from the closed-form best replies, vectorised
over coalitions, against the reference twin that hands each coalition's problem to HiGHS as a QP
(:func:`airshed.cooperation.gamma.qp_coalition_value`, timed on a sample) -- the ratio is the gain of
exploiting the linear damages. Target game: ``2**n`` warm-started HiGHS LPs in a process pool against
one cold ``linprog`` per coalition. Both then compute exact Shapley values and check the core.

    python benchmarks/bench_cooperation.py [--players 15] [--gamma-players 18] [--workers 2]

``airshed bench`` runs the gamma game only (``benchmarks()``); the target game's 32,768 LPs take a
minute and run here on their own.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import numpy as np
import xarray as xr

from airshed.cooperation.abatement import (
    all_coalition_costs,
    build_problem,
    check_attainable,
    coalition_cost,
)
from airshed.cooperation.games import core_check, core_is_nonempty, shapley_exact
from airshed.cooperation.gamma import (
    all_coalition_values,
    build_game,
    chander_tulkens,
    grand_coalition_abatement,
    nash_abatement,
    outcome,
    qp_coalition_value,
)
from airshed.cooperation.health import damages
from airshed.cooperation.policy import PRECURSORS, policy_from_dict
from airshed.cooperation.runfile import run_tables

CURVES = {
    "SO2": [[0.0, 5052.6], [0.4, 44600.0], [0.8, 154395.0]],
    "NOx": [[0.0, 5052.6], [0.35, 23500.0], [0.7, 120000.0]],
    "PM2.5": [[0.0, 1500.0], [0.35, 4300.0], [0.7, 60000.0]],
    "NH3": [[0.0, 10000.0], [0.25, 30000.0], [0.5, 100000.0]],
    "NMVOC": [[0.0, 5052.6], [0.3, 20000.0], [0.6, 80000.0]],
}


def synthetic_jjj(n: int, seed: int = 2017) -> xr.Dataset:
    """Source-receptor tables of ``n`` regions on a ~600 km square over a 10-day winter run.

    Contributions fall off with distance (e-folding 150 km), own-region contributions dominate, and
    period emissions are of the order of a Hebei city's 10-day totals (hundreds to tens of thousands of t);
    populations 3-20 million.
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
    regions = [f"City{i:02d}" for i in range(n)]
    return xr.Dataset(
        {
            "pm25_source_receptor": (("receptor_region", "source_region", "precursor"), sr),
            "pm25_total": (("receptor_region",), sr.sum(axis=(1, 2)) + 8.0),
            "emission_total": (("source_region", "sector", "species"), emissions[:, None, :]),
            "population_region": (("receptor_region",), rng.uniform(3e6, 2e7, n)),
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


def _costs() -> dict:
    return {"default": {p: {"max_fraction": c[-1][0], "marginal_cost": c} for p, c in CURVES.items()}}


def _load() -> str:
    return f"load average {os.getloadavg()[0]:.2f}"


def gamma_game(n: int, basis: str = "annual", sample: int = 50) -> dict:
    """Time the gamma game of ``n`` players: all coalitions, Shapley, core; the QP twin on a sample."""
    tables = run_tables(synthetic_jjj(n))
    policy = policy_from_dict({"costs": _costs(), "options": {"cost_basis": basis}})
    kind = "chronic" if basis == "annual" else "acute"
    game = build_game(tables, policy, damages(tables, policy.health, kind))
    cpu0, t0 = time.process_time(), time.perf_counter()
    values = all_coalition_values(game)
    cpu_values, t_values = time.process_time() - cpu0, time.perf_counter() - t0
    t0 = time.perf_counter()
    nash, best = outcome(game, nash_abatement(game)), outcome(game, grand_coalition_abatement(game))
    ct = chander_tulkens(game, nash, best).net_cost_yuan
    phi = shapley_exact(values)
    in_core = tuple(core_check(values, x, "cost", rtol=1e-9).in_core for x in (phi, ct))
    t_game = time.perf_counter() - t0
    masks = np.random.default_rng(0).integers(1, 2**n, sample)
    cpu0 = time.process_time()
    qp = np.array([qp_coalition_value(game, int(m)) for m in masks])
    cpu_qp = (time.process_time() - cpu0) / sample
    return {
        "n": n, "coalitions": values.size, "wall_values": t_values, "cpu_values": cpu_values,
        "cpu_per_coalition": cpu_values / values.size, "cpu_qp_per_coalition": cpu_qp,
        "max_rel_diff_vs_qp": float(np.max(np.abs(values[masks] - qp) / np.abs(qp))),
        "wall_game": t_game, "in_core": in_core, "surplus": nash.total_cost_yuan.sum() - values[-1],
    }


def benchmarks(quick: bool = False) -> list[dict]:
    """Records for ``airshed bench``: the gamma game's coalition values (value: coalitions per second)."""
    records = []
    for n in (12,) if quick else (15, 18):
        r = gamma_game(n, sample=10 if quick else 50)
        records.append({
            "name": f"gamma game, all 2^{n} coalition values (closed form, vectorised)",
            "unit": "coalitions/s", "value": r["coalitions"] / r["wall_values"],
            "ratio_vs_reference": r["cpu_qp_per_coalition"] / r["cpu_per_coalition"],
            "compile_s": None, "wall_s": r["wall_values"] + r["wall_game"], "threads": 1,
        })
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=15, help="players of the target game")
    parser.add_argument("--gamma-players", type=int, default=18, help="players of the gamma game")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--serial-sample", type=int, default=300)
    args = parser.parse_args()
    print(f"CPU: {platform.processor() or platform.machine()}, os.cpu_count()={os.cpu_count()}, "
          f"affinity={len(os.sched_getaffinity(0))}, {_load()}")

    g = gamma_game(args.gamma_players)
    print(f"gamma game, {g['n']} players: all {g['coalitions']:,} coalition values in "
          f"{g['wall_values']:.2f} s wall, {g['cpu_per_coalition'] * 1e6:.1f} us CPU per coalition; "
          "HiGHS QP twin "
          f"{g['cpu_qp_per_coalition'] * 1e3:.2f} ms CPU per coalition (ratio "
          f"{g['cpu_qp_per_coalition'] / g['cpu_per_coalition']:,.0f}x), largest relative difference "
          f"{g['max_rel_diff_vs_qp']:.1e}; Nash, optimum, Chander-Tulkens, Shapley, 2 core checks "
          f"{g['wall_game']:.2f} s; in core (Shapley, Chander-Tulkens): {g['in_core']}; {_load()}")

    tables = run_tables(synthetic_jjj(args.players))
    total = tables.pm25_total
    reach = 0.5 * tables.source_receptor[:, :-1, :].sum(axis=(1, 2))
    policy = policy_from_dict({
        "game": "targets", "costs": _costs(),
        "targets": {r: float(total[i] - 0.5 * reach[i]) for i, r in enumerate(tables.receptors)},
    })
    t0 = time.perf_counter()
    problem = build_problem(tables, policy)
    check_attainable(problem)
    t_build = time.perf_counter() - t0
    n = problem.n_players
    sample = np.random.default_rng(0).integers(1, 2**n, args.serial_sample)
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
    columns = int((problem.seg_width > 0).sum())
    print(f"target game, {n} players, {columns} LP columns: build {t_build * 1e3:.1f} ms; "
          f"cold linprog {serial_per_lp * 1e3:.2f} ms per LP (sample of {sample.size}); all {values.size:,} "
          f"coalitions, {args.workers} workers (warm HiGHS): {t_all:.1f} s ({values.size / t_all:.0f} LP/s, "
          f"{serial_per_lp * values.size / t_all:.2f}x the cold path); Shapley + core + non-emptiness LP "
          f"{t_game:.2f} s; Shapley in core: {core.in_core}, core non-empty: {nonempty}; {_load()}")
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: main {rss_self:.0f} MiB, largest worker {rss_children:.0f} MiB")


if __name__ == "__main__":
    main()
