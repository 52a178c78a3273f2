"""The default case on 2 cores and the particle core's scale-out: one command, one table.

Runs the default case (``examples/jjj.toml``: 9 km JJJ grid, 19 regions x 5 sectors, 5,000 particles/h,
5 days), each run in a fresh process from warm caches (a warm-up run first fills the Numba caches of the
main process and of two worker slots, and the derived-meteorology cache):

1. ``serial_1t``: the core, figures, report and inventory members off, serial, 1 Numba thread;
2. ``serial_2t``: the same on 2 Numba threads (the target: under 45 s wall on 2 cores);
3. ``cluster_1``: the same on a Dask LocalCluster of 1 worker process x 1 thread;
4. ``cluster_2``: the same on a LocalCluster of 2 worker processes x 1 thread each;
5. ``example``: ``examples/jjj.toml`` as shipped (maps, report, 1,000 inventory members) on 2 threads
   (the target: under 60 s wall on 2 cores).

For each it prints the CPU seconds (the process and every process it started: client, workers), the wall
time, the load average before and after, and whether the run file equals ``serial_1t``'s bit for bit;
then the ratios the scale-out is judged by: CPU(cluster_2) / CPU(serial_1t) (goal <= 1.15) and
wall(cluster_1) / wall(cluster_2) (goal >= 1.8), and the CPU the cluster runs spent outside their work
units (worker start-up, the client). Wall times mean little on a shared machine; CPU ratios do.

Then, in this process, the per-unit costs of the release-window work units: the core as one unit (every
window) and as one unit per release window, CPU each (1 Numba thread): the CPU per simulated hour and
the extra CPU per additional unit. From them: a projection of a year of hourly particle transport over
JJJ at 9 km (same particle rate) on 32 and 128 cores (``--no-unit-costs`` skips this part).

``--quick``: the first 2 days of the case at 2,000 particles/h (a smoke run).

Usage: python benchmarks/bench_scale.py [--quick] [--no-unit-costs] [--json FILE]
(also part of ``airshed bench``)
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
import json, logging, os, sys, time
from pathlib import Path
sys.path.insert(0, {bench_dir!r})
from bench_scale import case_config
from airshed.runner import run_study
units = []
class Units(logging.Handler):
    def emit(self, record):
        if record.getMessage().startswith("work units:"):
            units.append(json.loads(record.getMessage().split("per unit: ")[1].split(" (sum")[0]))
logging.getLogger("airshed.scale").addHandler(Units())
logging.getLogger("airshed.scale").setLevel(logging.INFO)
cfg = case_config(Path({folder!r}), **json.loads({options!r}))
t0 = time.perf_counter()
run_study(cfg, output=Path({output!r}), progress=False)
print(json.dumps({{"wall_s": time.perf_counter() - t0, "unit_cpu_s": units[0] if units else None}}))
"""


def case_config(folder: Path, quick: bool, shipped: bool = False, particles_per_hour: int | None = None,
                **compute):
    """The default case (figures, report and members off unless ``shipped``), or its first 2 days.

    ``quick``: 2 days at 2,000 particles/h; ``particles_per_hour`` overrides the rate (the warm-up).
    """
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
    if particles_per_hour is not None:
        lagrangian = lagrangian.model_copy(update={"particles_per_hour": particles_per_hour})
    update = {"run": run, "lagrangian": lagrangian, "compute": cfg.compute.model_copy(update=compute)}
    if not shipped:
        update["outputs"] = cfg.outputs.model_copy(update={"maps": False, "report": False})
        update["uncertainty"] = cfg.uncertainty.model_copy(update={"members": 0})
    return cfg.model_copy(update=update)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_in_fresh_process(folder: Path, quick: bool, name: str, compute: dict, shipped: bool = False,
                         particles_per_hour: int | None = None) -> dict:
    """Run the case in a new Python process; CPU s of it and every process it started, wall s, load."""
    output = folder / f"{name}.nc"
    options = {"quick": quick, "shipped": shipped, "particles_per_hour": particles_per_hour, **compute}
    code = _RUN.format(bench_dir=str(Path(__file__).resolve().parent), folder=str(folder),
                       options=json.dumps(options), output=str(output))
    env = {**os.environ, "NUMBA_NUM_THREADS": str(max(1, compute.get("threads", 1)))}
    load0 = os.getloadavg()[0]
    cpu0, t0 = _children_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    cpu, wall = _children_cpu() - cpu0, time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
    inner = json.loads(done.stdout.strip().splitlines()[-1])
    out = {"name": name, "cpu_s": cpu, "wall_s": wall, "run_study_wall_s": inner["wall_s"], "path": output,
           "load_before": load0, "load_after": os.getloadavg()[0], "unit_cpu_s": inner["unit_cpu_s"],
           "compute": compute}
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


CLUSTER = {"scheduler": "local-cluster", "threads": 1, "memory_limit": "6GB"}
RUNS = {  # name: (compute, shipped example)
    "serial_1t": ({"scheduler": "serial", "threads": 1}, False),
    "serial_2t": ({"scheduler": "serial", "threads": 2}, False),
    "cluster_1": ({**CLUSTER, "workers": 1}, False),
    "cluster_2": ({**CLUSTER, "workers": 2}, False),
    "example": ({"scheduler": "serial", "threads": 2}, True),
}
TARGET_WALL_S = {"serial_2t": 45.0, "example": 60.0}
"""The default case's wall-time targets on 2 cores (issue 20): the figures-free core, the shipped example."""


def warm_up(folder: Path, quick: bool) -> None:
    """Fill the caches the measured runs read: derived meteorology, Numba (main process, two worker slots)."""
    run_in_fresh_process(folder, quick, "warm_up_serial", {"scheduler": "serial", "threads": 1},
                         particles_per_hour=100)
    run_in_fresh_process(folder, True, "warm_up_cluster", {**CLUSTER, "workers": 2}, particles_per_hour=100)


def measure(quick: bool, unit_cost: bool = True) -> dict:
    """Every measurement of this benchmark (module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        warm_up(folder, quick)
        runs = {name: run_in_fresh_process(folder, quick, name, compute, shipped)
                for name, (compute, shipped) in RUNS.items()}
        identical = {name: same_bits(runs["serial_1t"]["path"], r["path"]) for name, r in runs.items()
                     if name not in ("serial_1t", "example")}
        costs = unit_costs(folder, quick) if unit_cost else None
    for r in runs.values():
        r.pop("path")
    serial, one, two = runs["serial_1t"], runs["cluster_1"], runs["cluster_2"]
    out = {
        "quick": quick, "runs": runs, "identical_to_serial": identical, "unit_costs": costs,
        "ratios": {
            "cpu_cluster2_over_serial": two["cpu_s"] / serial["cpu_s"],
            "cpu_cluster1_over_serial": one["cpu_s"] / serial["cpu_s"],
            "speedup_wall_2_vs_1_worker": one["wall_s"] / two["wall_s"],
            "speedup_wall_2_vs_1_thread": serial["wall_s"] / runs["serial_2t"]["wall_s"],
            "cpu_2_threads_over_1": runs["serial_2t"]["cpu_s"] / serial["cpu_s"],
        },
        "cpu_count": os.cpu_count(),
    }
    if costs is not None:
        # what a worker process adds before its first unit: imports, reading the inputs (the study)
        worker_start = max(0.0, (one["cpu_s"] - sum(one["unit_cpu_s"] or [0.0])) - serial["cpu_s"]
                           + costs["one_unit_cpu_s"])
        out["ratios"]["cpu_units_per_window_over_one_unit"] = (costs["unit_per_window_cpu_s"]
                                                              / costs["one_unit_cpu_s"])
        out["projection"] = projection(costs, worker_start)
    return out


def benchmarks(quick: bool = False) -> list[dict]:
    """Records for ``airshed bench``."""
    m = measure(quick)
    r, runs = m["ratios"], m["runs"]
    records = [
        {"name": f"particle default case, {name} (CPU s of all processes)", "unit": "CPU s",
         "value": run["cpu_s"], "wall_s": run["wall_s"]} for name, run in runs.items()
    ]
    records += [
        {"name": "cluster of 2 workers: CPU over the serial run", "unit": "x",
         "value": r["cpu_cluster2_over_serial"]},
        {"name": "2 workers vs 1: wall-time speed-up", "unit": "x", "value": r["speedup_wall_2_vs_1_worker"]},
        {"name": "serial 2 threads vs 1: wall-time speed-up", "unit": "x",
         "value": r["speedup_wall_2_vs_1_thread"]},
    ]
    records += [{"name": f"projected year of hourly particles at 9 km, {p['cores']} cores", "unit": "h wall",
                 "value": p["wall_h"]} for p in m.get("projection", [])]
    return records


def report(m: dict) -> str:
    """The measurements as a table and the ratios."""
    lines = [f"bench_scale ({'quick: 2 days, 2,000 particles/h' if m['quick'] else 'default case'}), "
             f"{m['cpu_count']} CPUs",
             "| run | compute | CPU s | wall s | target wall | load before -> after | CPU in units | "
             "identical to serial_1t |",
             "|---|---|---:|---:|---:|---|---:|---|"]
    for name, run in m["runs"].items():
        c = run["compute"]
        where = (f"{c['scheduler']} {c.get('workers', '')}x{c['threads']}" if c["scheduler"] != "serial"
                 else f"serial, {c['threads']} thread{'s' if c['threads'] > 1 else ''}")
        target = TARGET_WALL_S.get(name)
        target = f"< {target:.0f} s" if target and not m["quick"] else "-"
        units = run["unit_cpu_s"]
        units = f"{sum(units):.1f} ({len(units)} units)" if units else "-"
        lines.append(
            f"| {name} | {where} | {run['cpu_s']:.1f} | {run['wall_s']:.1f} | {target} | "
            f"{run['load_before']:.1f} -> {run['load_after']:.1f} | {units} | "
            f"{m['identical_to_serial'].get(name, '-')} |")
    r = m["ratios"]
    lines.append(f"CPU(cluster_2) / CPU(serial_1t) = {r['cpu_cluster2_over_serial']:.3f}   (goal <= 1.15)")
    lines.append(f"CPU(cluster_1) / CPU(serial_1t) = {r['cpu_cluster1_over_serial']:.3f}")
    lines.append(f"wall(cluster_1) / wall(cluster_2) = {r['speedup_wall_2_vs_1_worker']:.2f}x (goal >= 1.8x)")
    lines.append(f"wall(serial_1t) / wall(serial_2t) = {r['speedup_wall_2_vs_1_thread']:.2f}x; "
                 f"CPU(serial_2t) / CPU(serial_1t) = {r['cpu_2_threads_over_1']:.3f}")
    for name in ("cluster_1", "cluster_2"):
        run = m["runs"][name]
        if run["unit_cpu_s"]:
            lines.append(f"{name}: CPU outside the work units (client, worker start-up, Dask) "
                         f"{run['cpu_s'] - sum(run['unit_cpu_s']):.1f} s; units "
                         f"{', '.join(f'{x:.1f}' for x in run['unit_cpu_s'])} s")
    c = m["unit_costs"]
    if c is not None:
        lines.append(f"core of {c['hours']} h in {c['windows']} release windows, 1 thread: one unit "
                     f"{c['one_unit_cpu_s']:.1f} CPU s, one unit per window "
                     f"{c['unit_per_window_cpu_s']:.1f} CPU s "
                     f"({r['cpu_units_per_window_over_one_unit']:.3f}x; per unit "
                     f"{', '.join(f'{x:.1f}' for x in c['unit_per_window_per_unit_cpu_s'])}); study "
                     f"{c['prepare_cpu_s']:.1f} CPU s")
        for p in m["projection"]:
            lines.append(f"projected year (8760 h, 9 km JJJ, same particle rate) on {p['cores']} cores, "
                         f"{p['units']} units: {p['wall_h']:.2f} h wall, {p['cpu_h']:.1f} CPU h "
                         f"({p['cpu_over_serial']:.3f}x the serial CPU)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--quick``, ``--json FILE``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 days at 2,000 particles/h")
    parser.add_argument("--no-unit-costs", action="store_true",
                        help="skip the per-unit costs and the projection of a year")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args(argv)
    m = measure(args.quick, unit_cost=not args.no_unit_costs)
    print(report(m))
    if args.json:
        args.json.write_text(json.dumps(m, indent=2, default=str))


if __name__ == "__main__":
    main()
