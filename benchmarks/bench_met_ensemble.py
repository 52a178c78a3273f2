"""Benchmark: the default case with its meteorology members and 1000 inventory members vs the single run.

Issue 16's target: the default case (``examples/jjj.toml``) with HYSPLIT's 27 offset members and 1000
inventory members finishes on 2 cores within 30 x the single run, and the run file stays under 2 x its
size. The script runs, in one process and on the same inputs:

1. a one-hour warm-up (Numba compilation out of the timings);
2. the single run (no ensemble; figures and report off in both);
3. the run with ``--members M`` of the 27 meteorology members and ``--inventory-members`` members
   (:func:`airshed.met_ensemble.run_with_members`, serial: the members one after the other).

It prints the CPU time (all threads of the process) and wall time of each, their ratio, the run-file
sizes, and the load average before and after. With M < 27 the 27-member figure is a projection: the CPU of
each rerun member is measured as (ensemble - single) / (M - 1), which counts the ensemble statistics and
file handling against the members (an over- rather than an under-estimate), and
``projected = single + 26 x per member``.

    python benchmarks/bench_met_ensemble.py [--config examples/jjj.toml] [--members 27]
        [--inventory-members 1000] [--threads 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from airshed.api import configure
from airshed.met_ensemble import run_with_members
from airshed.runner import run_study

ROOT = Path(__file__).resolve().parents[1]
OFFSET_MEMBERS = 27


def _timed(fn) -> tuple[object, float, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.process_time() - cpu0, time.perf_counter() - wall0


def measure(config: Path, members: int, inventory_members: int, threads: int) -> dict[str, float | str]:
    """CPU and wall seconds of the single run and the ensemble, file sizes, load (see the module doc)."""
    common = {"outputs__maps": False, "outputs__report": False, "compute__threads": threads,
              "compute__scheduler": "serial"}
    single_cfg = configure(config, uncertainty__members=0, uncertainty__meteorology__ensemble="none",
                           **common)
    # the same run (particle classes included, if the config has them) plus the members
    sources = list(dict.fromkeys([*single_cfg.uncertainty.sources, "inventory", "meteorology"]))
    ensemble_cfg = configure(config, uncertainty__members=inventory_members, uncertainty__sources=sources,
                             uncertainty__meteorology__ensemble="offsets", **common)
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="airshed_bench_met_") as tmp:
        folder = Path(tmp)
        start = single_cfg.run.start
        warm = configure(single_cfg, run__end=(start + timedelta(hours=1)).isoformat())
        run_study(warm, output=folder / "warm.nc", progress=False)
        single, cpu_single, wall_single = _timed(
            lambda: run_study(single_cfg, output=folder / "single.nc", progress=False))
        ens, cpu_ens, wall_ens = _timed(lambda: run_with_members(
            ensemble_cfg, output=folder / "ensemble.nc", progress=False, members=members))
        size_single, size_ens = Path(single).stat().st_size, Path(ens).stat().st_size
    per_member = (cpu_ens - cpu_single) / max(members - 1, 1)
    projected = cpu_single + (OFFSET_MEMBERS - 1) * per_member
    return {
        "config": str(config), "members": members, "inventory_members": inventory_members,
        "threads": threads,
        "cpu_single_s": round(cpu_single, 2), "wall_single_s": round(wall_single, 2),
        "cpu_ensemble_s": round(cpu_ens, 2), "wall_ensemble_s": round(wall_ens, 2),
        "cpu_ratio_measured": round(cpu_ens / cpu_single, 3),
        "cpu_per_member_over_single": round(per_member / cpu_single, 3),
        "cpu_ratio_27_members": round((cpu_ens if members == OFFSET_MEMBERS else projected) / cpu_single, 3),
        "ratio_27_is": "measured" if members == OFFSET_MEMBERS else "projected",
        "run_file_mb_single": round(size_single / 1e6, 2), "run_file_mb_ensemble": round(size_ens / 1e6, 2),
        "run_file_ratio": round(size_ens / size_single, 4),
        "load_before": " ".join(f"{x:.1f}" for x in load0),
        "load_after": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "jjj.toml")
    parser.add_argument("--members", type=int, default=OFFSET_MEMBERS)
    parser.add_argument("--inventory-members", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = measure(args.config, args.members, args.inventory_members, args.threads)
    for key, value in result.items():
        print(f"{key:30s} {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
