"""End-to-end benchmarks of the pipeline: met reading, the default case, NetCDF writing, maps, scaling.

- met: a month (quick: 2 days) of hourly ERA5-layout meteorology (the built-in episode written as ERA5
  single- and pressure-level files) read hour by hour onto the default 9 km JJJ grid, in met hours/s;
- default case: ``examples/jjj.toml`` (quick: the 27 km test case, 3 hours), in simulated hours/s, with the
  wall time and the peak memory of the process;
- NetCDF: writing that run's file again (compressed as configured), in MB/s of uncompressed data;
- maps: every figure of that run (``airshed plot``), in figures/s;
- scaling (not in quick mode): plume kernel time vs sources x receptors and particle step time vs particle
  count over two decades, on 1 and 2 Numba threads; the default case on a Dask LocalCluster of 1 and 2
  workers.

Usage: NUMBA_NUM_THREADS=2 python benchmarks/bench_end_to_end.py [--quick]   (or ``airshed bench``)
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "jjj.toml"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _quick_config(folder: Path, **compute):
    from airshed.config import parse_config

    data = {
        "run": {"name": "bench_quick", "start": "2017-12-01T00:00:00", "end": "2017-12-01T03:00:00",
                "core": "lagrangian", "seed": 7},
        "grid": {"cell_km": 27.0}, "regions": {"set": "provinces"}, "meteorology": {"format": "builtin"},
        "emissions": {"inventory": "builtin"}, "lagrangian": {"particles_per_hour": 4000},
        "compute": compute,
    }
    return parse_config(data, config_dir=folder)


def _default_config(folder: Path, **compute):
    from airshed.config import load_config

    if not EXAMPLE.is_file():
        raise FileNotFoundError(f"{EXAMPLE} not found: the default case runs from a source checkout")
    cfg = load_config(EXAMPLE)
    run = cfg.run.model_copy(update={"output": folder / "jjj_winter.nc"})
    outputs = cfg.outputs.model_copy(update={"maps": False, "report": False})
    return cfg.model_copy(update={"run": run, "outputs": outputs,
                                  "compute": cfg.compute.model_copy(update=compute)})


def bench_met(quick: bool) -> dict:
    """Hourly ERA5-layout met read onto the default grid, met hours/s."""
    from datetime import datetime

    from airshed.config import GridConfig
    from airshed.inputs.builtin_met import BuiltinMetParameters, ensure_builtin_met
    from airshed.inputs.meteorology import open_meteorology
    from airshed.pipeline.inputs import cache_dir
    from airshed.pipeline.study import MetByDay

    days = 2.0 if quick else 30.0
    grid = GridConfig().build()
    params = BuiltinMetParameters(days=days, stagnation_days=min(3.5, days / 2))
    paths = ensure_builtin_met(cache_dir() / "met", datetime(2017, 12, 1), params)
    heights = [10.0, 50.0, 100.0, 200.0, 400.0, 700.0, 1000.0, 1500.0, 2000.0, 3000.0]
    t0 = time.perf_counter()
    met = open_meteorology("era5", paths, grid, heights, roughness_length_m=0.5)
    by_day = MetByDay(met)
    hours = 0
    for t in met.times:
        by_day.at(t)["u"].values.sum()
        hours += 1
    seconds = time.perf_counter() - t0
    return {"name": f"met reading, {days:g} days ERA5 layout, {grid.nx}x{grid.ny} grid",
            "unit": "met hours/s",
            "value": hours / seconds, "wall_s": seconds}


def bench_default_case(quick: bool, folder: Path) -> tuple[list[dict], Path]:
    """The default case end to end (inputs, core, apportionment, run file), simulated hours/s."""
    from airshed.runner import run_study

    cfg = _quick_config(folder) if quick else _default_config(folder)
    run_study(cfg, output=folder / "warmup.nc", progress=False) if quick else None  # compile and caches
    t0 = time.perf_counter()
    path = run_study(cfg, output=folder / "case.nc", progress=False)
    seconds = time.perf_counter() - t0
    name = "quick case (27 km, 3 h)" if quick else "default JJJ case (examples/jjj.toml)"
    return [{"name": name, "unit": "simulated hours/s", "value": cfg.run.hours / seconds,
             "wall_s": seconds, "threads": numba.get_num_threads()}], path


def bench_netcdf(path: Path, folder: Path) -> dict:
    """Rewrite a run file (xarray + netCDF4, compressed), MB/s of uncompressed data."""
    import xarray as xr

    from airshed.outputs.netcdf import write_netcdf_atomic

    with xr.open_dataset(path) as ds:
        ds = ds.load()
    t0 = time.perf_counter()
    write_netcdf_atomic(ds, folder / "rewrite.nc")
    seconds = time.perf_counter() - t0
    return {"name": "NetCDF writing of the run file", "unit": "MB/s", "value": ds.nbytes / 1e6 / seconds,
            "wall_s": seconds}


def bench_maps(path: Path, folder: Path) -> dict:
    """Every figure of a run (cartopy + matplotlib), figures/s."""
    import xarray as xr

    from airshed.outputs.plots import write_figures

    out = folder / "figures"
    out.mkdir(exist_ok=True)
    with xr.open_dataset(path) as ds:
        t0 = time.perf_counter()
        figures = write_figures(ds, out)
        seconds = time.perf_counter() - t0
    return {"name": "map rendering", "unit": "figures/s", "value": len(figures) / seconds, "wall_s": seconds}


def _growth(records: list[dict], what: str, sizes: list[float], threads: int) -> dict:
    """Exponent b of wall time ~ size^b (least squares in log-log) over the records of one thread count.

    b = 1 is linear cost growth; b < 1 means a fixed cost per call still weighs on the small sizes.
    """
    times = [r["wall_s"] / r["calls"] for r in records if r["threads"] == threads]
    b = float(np.polyfit(np.log(sizes), np.log(times), 1)[0])
    return {"name": f"{what}: exponent b of time ~ size^b, {threads} thread(s)", "unit": "-", "value": b,
            "wall_s": sum(r["wall_s"] for r in records if r["threads"] == threads), "threads": threads}


def _thread_speedup(records: list[dict], what: str) -> dict:
    """Wall time on 1 thread / on 2 threads at the largest size."""
    largest = max(r["size"] for r in records)
    one, two = (next(r["wall_s"] / r["calls"] for r in records if r["size"] == largest and r["threads"] == t)
                for t in (1, 2))
    return {"name": f"{what}: speed-up 2 threads vs 1 at the largest size", "unit": "x", "value": one / two,
            "wall_s": 0.0, "threads": 2}


def bench_plume_scaling() -> list[dict]:
    """Plume kernel wall time vs sources x receptors (two decades and a half), 1 and 2 Numba threads."""
    import bench_plume as bp

    out = []
    cases = ((30, 58), (100, 100), (300, 183), (1000, 316))
    for sources, side in cases:
        prep = bp._sources(sources, side * 1000.0)
        grid = (500.0, 500.0, 1000.0, 1000.0, side, side)
        pairs = sources * side * side
        calls = max(1, round(3e8 / pairs))  # at least ~0.3 s of work per size
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            bp.pk.plume_concentration_grid(prep, *grid, 40, skip=True)
            t0 = time.perf_counter()
            for _ in range(calls):
                bp.pk.plume_concentration_grid(prep, *grid, 40, skip=True)
            s = time.perf_counter() - t0
            out.append({"name": f"plume scaling {sources} x {side * side} pairs, {threads} thread(s)",
                        "unit": "effective pairs/s", "value": pairs * calls / s, "wall_s": s, "calls": calls,
                        "size": pairs, "threads": threads})
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    sizes = [float(s * side * side) for s, side in cases]
    return out + [_growth(out, "plume scaling", sizes, t) for t in (1, 2)] + [_thread_speedup(out, "plume")]


def bench_particle_scaling() -> list[dict]:
    """Particle step wall time vs particle count (two decades), 1 and 2 Numba threads."""
    import bench_lagrangian as bl

    met = bl.synthetic_met()
    p = bl.lg.LagrangianParameters.for_species(bl.SPECIES)
    acc = np.zeros((bl.NTAG, len(bl.SPECIES), bl.NY * bl.NX))
    out = []
    counts = (10_000, 100_000, 1_000_000)
    for n in counts:
        steps = max(5, 5_000_000 // n)  # at least 5 M particle-steps per size
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            state = bl.initial_state(n)
            t0 = time.perf_counter()
            bl.run_steps(bl.lg.advance_particles, bl.lg.accumulate_concentration, state, met, p, steps, 15.0,
                         acc)
            s = time.perf_counter() - t0
            out.append({"name": f"particle scaling {n:,} particles, {threads} thread(s)",
                        "unit": "particle-steps/s", "value": n * steps / s, "wall_s": s, "calls": steps,
                        "size": n, "threads": threads})
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    sizes = [float(n) for n in counts]
    return out + [_growth(out, "particle scaling", sizes, t) for t in (1, 2)] + \
        [_thread_speedup(out, "particles")]


def bench_dask_scaling(folder: Path) -> list[dict]:
    """The default case on a Dask LocalCluster of 1 and 2 worker processes (1 Numba thread each)."""
    from airshed.runner import run_study

    out = []
    for workers in (1, 2):
        cfg = _default_config(folder, scheduler="local-cluster", workers=workers, threads=1)
        t0 = time.perf_counter()
        run_study(cfg, output=folder / f"dask{workers}.nc", progress=False)
        s = time.perf_counter() - t0
        out.append({"name": f"default case, LocalCluster {workers} worker(s) x 1 thread",
                    "unit": "simulated hours/s", "value": cfg.run.hours / s, "wall_s": s, "threads": workers})
    return out


def benchmarks(quick: bool = False) -> list[dict]:
    """Records for ``airshed bench`` (each with name, unit, value and wall_s)."""
    records = [bench_met(quick)]
    with tempfile.TemporaryDirectory(prefix="airshed_bench_") as tmp:
        folder = Path(tmp)
        case, path = bench_default_case(quick, folder)
        case[0]["peak_memory_mb"] = _peak_mb()
        records += case
        records.append(bench_netcdf(path, folder))
        records.append(bench_maps(path, folder))
        if not quick:
            records += bench_plume_scaling()
            records += bench_particle_scaling()
            records += bench_dask_scaling(folder)
    return records


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = ap.parse_args(argv)
    for r in benchmarks(args.quick):
        print(f"{r['name']}: {r['value']:.4g} {r['unit']} ({r['wall_s']:.2f} s)")
    print(f"peak memory (max RSS) {_peak_mb():.0f} MiB; numba threads {numba.get_num_threads()}; "
          f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
