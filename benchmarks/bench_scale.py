"""Particle core scale-out: cluster CPU over the serial run, 2 workers vs 1, projection of a year.

Runs the default case (``examples/jjj.toml``: 9 km JJJ grid, 19 regions x 5 sectors, 5,000 particles/h,
5 days; figures, report and inventory members off) three times, each in a fresh process:

1. serial, 1 Numba thread;
2. a Dask LocalCluster of 1 worker process x 1 thread;
3. a LocalCluster of 2 worker processes x 1 thread each;

and reports the CPU seconds of each (the process and all its children: client, nannies, workers), the wall
time, whether the cluster run files equal the serial one bit for bit, and the ratios the scale-out is
judged by: CPU(2 workers) / CPU(serial) and wall(1 worker) / wall(2 workers). The machine's load average
is printed next to every run (wall times mean little on a shared machine; CPU ratios do).

Then, in this process, the per-unit costs of the release-window work units: the core of the run as one unit
(every window) and as one unit per release window, CPU each (1 Numba thread), which gives the CPU per
simulated hour and the extra CPU per additional unit (the met and the reduction of the tails that units
share). From them: a projection of a year of hourly particle transport over JJJ at 9 km (same particle
rate) on 32 and 128 cores, with ``[compute]``'s choice of 2 units per worker slot.

``--quick``: the first 2 days of the case at 2,000 particles/h (a smoke run; on a quiet 16-core machine
well under 4 minutes, most of it Numba loading its caches in the worker processes).

Usage: python benchmarks/bench_scale.py [--quick] [--json FILE]     (also part of ``airshed bench``)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "jjj.toml"
YEAR_H = 8760
PROJECTED_CORES = (32, 128)

_RUN = r"""
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, {bench_dir!r})
from bench_scale import case_config
from airshed.runner import run_study
cfg = case_config(Path({folder!r}), {quick!r}, **json.loads({compute!r}))
t0 = time.perf_counter()
run_study(cfg, output=Path({output!r}), progress=False)
print(json.dumps({{"wall_s": time.perf_counter() - t0}}))
"""


def case_config(folder: Path, quick: bool, **compute):
    """The default case (figures, report and members off), or its first 2 days at 2,000 particles/h."""
    from datetime import timedelta

    from airshed.config import load_config

    if not EXAMPLE.is_file():
        raise FileNotFoundError(f"{EXAMPLE} not found: the default case runs from a source checkout")
    cfg = load_config(EXAMPLE)
    run = cfg.run.model_copy(update={"output": folder / "jjj_winter.nc"})
    lagrangian = cfg.lagrangian
    if quick:
        run = run.model_copy(update={"end": cfg.run.start + timedelta(days=2)})
        lagrangian = lagrangian.model_copy(update={"particles_per_hour": 2000})
    return cfg.model_copy(update={
        "run": run, "lagrangian": lagrangian,
        "outputs": cfg.outputs.model_copy(update={"maps": False, "report": False}),
        "uncertainty": cfg.uncertainty.model_copy(update={"members": 0}),
        "compute": cfg.compute.model_copy(update=compute),
    })


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_in_fresh_process(folder: Path, quick: bool, name: str, compute: dict) -> dict:
    """Run the case in a new Python process; CPU s of it and every process it started, wall s, load."""
    output = folder / f"{name}.nc"
    code = _RUN.format(bench_dir=str(Path(__file__).resolve().parent), folder=str(folder), quick=quick,
                       compute=json.dumps(compute), output=str(output))
    env = {**os.environ, "NUMBA_NUM_THREADS": str(max(1, compute.get("threads", 1)))}
    load0 = os.getloadavg()[0]
    cpu0, t0 = _children_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    cpu, wall = _children_cpu() - cpu0, time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
    inner = json.loads(done.stdout.strip().splitlines()[-1])
    out = {"name": name, "cpu_s": cpu, "wall_s": wall, "run_study_wall_s": inner["wall_s"], "path": output,
           "load_before": load0, "load_after": os.getloadavg()[0]}
    print(f"{name}: CPU {cpu:.1f} s, wall {wall:.1f} s, load {load0:.1f} -> {out['load_after']:.1f}",
          file=sys.stderr, flush=True)  # progress: the full mode takes minutes per run
    return out


def same_bits(a: Path, b: Path) -> bool:
    """Whether every floating-point variable of two run files is equal bit for bit (NaN equal to NaN)."""
    import numpy as np
    import xarray as xr

    with xr.open_dataset(a) as x, xr.open_dataset(b) as y:
        names = [n for n in x.data_vars if x[n].dtype.kind == "f"]
        return all(np.array_equal(x[n].values, y[n].values, equal_nan=True) for n in names)


def unit_costs(folder: Path, quick: bool) -> dict:
    """CPU s of the core as one unit and as one unit per release window (this process, 1 Numba thread)."""
    import numba

    from airshed.pipeline.study import prepare_study
    from airshed.pipeline.units import run_unit, with_starts, work_units

    numba.set_num_threads(1)
    cfg = case_config(folder, quick, threads=1)
    c0 = time.process_time()
    study = prepare_study(cfg)
    prepare = time.process_time() - c0
    window = study.core_class.window_periods_of(cfg)
    n_windows = -(-study.n_periods // window)
    out = {"hours": study.n_periods * study.period_h, "windows": n_windows, "prepare_cpu_s": prepare}
    for label, n_units in (("one_unit", 1), ("unit_per_window", n_windows)):
        study = prepare_study(cfg)  # a fresh met cache, as in a fresh worker
        units = work_units(study.core_class, study.n_periods, cfg.compute.chunk_hours, window, n_units)
        c0 = time.process_time()
        per_unit = []
        for u in with_starts(study, units):
            c1 = time.process_time()
            run_unit(study, u)
            per_unit.append(time.process_time() - c1)
        out[f"{label}_cpu_s"] = time.process_time() - c0
        out[f"{label}_per_unit_cpu_s"] = per_unit
    return out


def projection(costs: dict, worker_start_cpu_s: float) -> list[dict]:
    """A year of hourly transport on N cores from the measured per-hour and per-unit costs (module doc)."""
    per_hour = costs["one_unit_cpu_s"] / costs["hours"]
    extra_per_unit = (costs["unit_per_window_cpu_s"] - costs["one_unit_cpu_s"]) / max(1, costs["windows"] - 1)
    rows = []
    for cores in PROJECTED_CORES:
        units = 2 * cores
        cpu = YEAR_H * per_hour + (units - 1) * extra_per_unit + cores * worker_start_cpu_s
        rows.append({"cores": cores, "units": units, "cpu_h": cpu / 3600.0, "wall_h": cpu / cores / 3600.0,
                     "cpu_over_serial": cpu / (YEAR_H * per_hour)})
    return rows


def measure(quick: bool) -> dict:
    """Every measurement of this benchmark (module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs = {
            "serial": run_in_fresh_process(folder, quick, "serial", {"scheduler": "serial", "threads": 1}),
            "cluster_1": run_in_fresh_process(folder, quick, "cluster_1", {
                "scheduler": "local-cluster", "workers": 1, "threads": 1, "memory_limit": "6GB"}),
            "cluster_2": run_in_fresh_process(folder, quick, "cluster_2", {
                "scheduler": "local-cluster", "workers": 2, "threads": 1, "memory_limit": "6GB"}),
        }
        identical = {name: same_bits(runs["serial"]["path"], r["path"]) for name, r in runs.items()
                     if name != "serial"}
        costs = unit_costs(folder, quick)
    for r in runs.values():
        r.pop("path")
    serial, one, two = runs["serial"], runs["cluster_1"], runs["cluster_2"]
    # what a worker process adds before its first unit: imports, reading the inputs (the study)
    worker_start = max(0.0, (one["cpu_s"] - serial["cpu_s"]))
    return {
        "quick": quick, "runs": runs, "identical_to_serial": identical, "unit_costs": costs,
        "ratios": {
            "cpu_cluster2_over_serial": two["cpu_s"] / serial["cpu_s"],
            "cpu_cluster1_over_serial": one["cpu_s"] / serial["cpu_s"],
            "speedup_wall_2_vs_1_worker": one["wall_s"] / two["wall_s"],
            "cpu_units_per_window_over_one_unit": costs["unit_per_window_cpu_s"] / costs["one_unit_cpu_s"],
        },
        "projection": projection(costs, worker_start),
        "cpu_count": os.cpu_count(),
    }


def benchmarks(quick: bool = False) -> list[dict]:
    """Records for ``airshed bench``."""
    m = measure(quick)
    r, runs = m["ratios"], m["runs"]
    records = [
        {"name": f"particle default case, {name.replace('_', ' ')} (CPU s of all processes)", "unit": "CPU s",
         "value": run["cpu_s"], "wall_s": run["wall_s"]} for name, run in runs.items()
    ]
    records += [
        {"name": "cluster of 2 workers: CPU over the serial run", "unit": "x",
         "value": r["cpu_cluster2_over_serial"]},
        {"name": "2 workers vs 1: wall-time speed-up", "unit": "x", "value": r["speedup_wall_2_vs_1_worker"]},
    ]
    records += [{"name": f"projected year of hourly particles at 9 km, {p['cores']} cores", "unit": "h wall",
                 "value": p["wall_h"]} for p in m["projection"]]
    return records


def report(m: dict) -> str:
    """The measurements as text."""
    lines = [f"bench_scale ({'quick' if m['quick'] else 'full'}), {m['cpu_count']} CPUs"]
    for name, run in m["runs"].items():
        lines.append(f"  {name:10s} CPU {run['cpu_s']:8.1f} s  wall {run['wall_s']:7.1f} s  "
                     f"(load {run['load_before']:.1f} -> {run['load_after']:.1f})")
    lines.append(f"  cluster run files identical to the serial one: {m['identical_to_serial']}")
    r = m["ratios"]
    lines.append(f"  CPU(2 workers) / CPU(serial) = {r['cpu_cluster2_over_serial']:.3f}   (goal <= 1.15)")
    lines.append(f"  CPU(1 worker)  / CPU(serial) = {r['cpu_cluster1_over_serial']:.3f}")
    lines.append(f"  wall(1 worker) / wall(2 workers) = {r['speedup_wall_2_vs_1_worker']:.2f}x "
                 "(goal >= 1.8x)")
    c = m["unit_costs"]
    lines.append(f"  core of {c['hours']} h in {c['windows']} release windows, 1 thread: one unit "
                 f"{c['one_unit_cpu_s']:.1f} CPU s, one unit per window "
                 f"{c['unit_per_window_cpu_s']:.1f} CPU s "
                 f"({r['cpu_units_per_window_over_one_unit']:.3f}x; per unit "
                 f"{', '.join(f'{x:.1f}' for x in c['unit_per_window_per_unit_cpu_s'])}); study "
                 f"{c['prepare_cpu_s']:.1f} CPU s")
    for p in m["projection"]:
        lines.append(f"  projected year (8760 h, 9 km JJJ, same particle rate) on {p['cores']} cores, "
                     f"{p['units']} units: {p['wall_h']:.2f} h wall, {p['cpu_h']:.1f} CPU h "
                     f"({p['cpu_over_serial']:.3f}x the serial CPU)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--quick``, ``--json FILE``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 days at 2,000 particles/h")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args(argv)
    m = measure(args.quick)
    print(report(m))
    if args.json:
        args.json.write_text(json.dumps(m, indent=2, default=str))


if __name__ == "__main__":
    main()
