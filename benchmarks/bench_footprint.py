"""Cost of the receptor-oriented (backward) run against the forward default case, in the same process.

- forward: the default case, ``examples/jjj.toml`` (9 km, 5 days, 19 regions x 6 sectors, 5,000
  particles per hour; no figures), :func:`airshed.runner.run_study`;
- backward: ``examples/jjj_footprints.toml`` (the same case; daily footprints of the 13 JJJ city centres,
  10,000 particles per station and day, folded with the hourly emissions of every source cell and stack),
  :func:`airshed.footprint.run_footprints`;
- the same backward run for one station, for the cost of each additional station.

Each is timed in CPU seconds of the process (the machine is shared; wall time is printed beside it), after
a warm-up that fills the Numba cache. Printed: the ratios backward / forward (goal <= 2) and the cost per
additional station, the number of source cells each station's footprint resolves, the load average.
``--quick``: the 27 km grid over one day (a smoke run, not the figures of the README).

Usage: NUMBA_NUM_THREADS=2 python benchmarks/bench_footprint.py [--quick]   (or ``airshed bench``)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FORWARD = ROOT / "examples" / "jjj.toml"
BACKWARD = ROOT / "examples" / "jjj_footprints.toml"


def _configs(folder: Path, quick: bool):
    from airshed.config import load_config

    out = []
    for path, name in ((FORWARD, "forward.nc"), (BACKWARD, "backward.nc")):
        cfg = load_config(path)
        run = cfg.run.model_copy(update={"output": folder / name})
        outputs = cfg.outputs.model_copy(update={"maps": False, "report": False})
        update = {"run": run, "outputs": outputs}
        if quick:
            run = run.model_copy(update={"end": run.start.replace(day=run.start.day + 1)})
            update |= {"run": run, "grid": cfg.grid.model_copy(update={"cell_km": 27.0})}
        out.append(cfg.model_copy(update=update))
    return out


def _timed(fn):
    load0 = os.getloadavg()[0]
    c0, w0 = time.process_time(), time.perf_counter()
    result = fn()
    return result, time.process_time() - c0, time.perf_counter() - w0, 0.5 * (load0 + os.getloadavg()[0])


def benchmarks(quick: bool) -> list[dict]:
    """Forward default case vs daily footprints of the 13 city centres, and the cost per station."""
    import xarray as xr

    from airshed.footprint import run_backward, run_footprints, study_receptors
    from airshed.pipeline.study import prepare_study
    from airshed.runner import run_study

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        forward_cfg, backward_cfg = _configs(folder, quick)
        # warm-up: compile (or load) every kernel both runs use, on a short run
        warm = backward_cfg.model_copy(update={"run": backward_cfg.run.model_copy(
            update={"end": backward_cfg.run.start.replace(hour=backward_cfg.run.start.hour + 1),
                    "output": folder / "warm.nc"}), "footprint": backward_cfg.footprint.model_copy(
            update={"averaging_h": 1, "particles_per_period": 50})})
        run_footprints(warm, progress=False)
        _, fwd_cpu, fwd_wall, fwd_load = _timed(lambda: run_study(forward_cfg, progress=False))
        path, bwd_cpu, bwd_wall, bwd_load = _timed(lambda: run_footprints(backward_cfg, progress=False))
        with xr.open_dataset(path) as ds:
            resolved = (ds["footprint"].sel(pathway="air").sum("time") > 0).sum(("y", "x")).values
            cells = ds.sizes["y"] * ds.sizes["x"]
        study = prepare_study(backward_cfg)
        receptors = study_receptors(study)
        _, all_cpu, _, _ = _timed(lambda: run_backward(study, receptors))
        _, one_cpu, _, one_load = _timed(lambda: run_backward(study, receptors.take([0])))
    n = len(receptors)
    per_station = (all_cpu - one_cpu) / (n - 1)
    hours = forward_cfg.run.hours
    print(f"forward default case: {fwd_cpu:.1f} s CPU ({fwd_wall:.1f} s wall, load {fwd_load:.1f})")
    print(f"backward, {n} stations daily: {bwd_cpu:.1f} s CPU ({bwd_wall:.1f} s wall, load {bwd_load:.1f}); "
          f"ratio backward / forward = {bwd_cpu / fwd_cpu:.2f} CPU, {bwd_wall / fwd_wall:.2f} wall "
          "(goal <= 2)")
    print(f"backward core alone: {n} stations {all_cpu:.1f} s CPU, 1 station {one_cpu:.1f} s CPU "
          f"(load {one_load:.1f}): {per_station:.1f} s CPU per additional station "
          f"({per_station / fwd_cpu:.3f} of the forward case), fixed part {one_cpu - per_station:.1f} s")
    print(f"source cells resolved per station footprint: min {int(resolved.min())}, median "
          f"{int(np.median(resolved))}, max {int(resolved.max())} of {cells}")
    return [
        {"name": "forward default case (run_study)", "unit": "simulated hours/s", "value": hours / fwd_wall,
         "wall_s": fwd_wall},
        {"name": f"footprints of {n} stations, daily (run_footprints)", "unit": "simulated hours/s",
         "value": hours / bwd_wall, "wall_s": bwd_wall},
        {"name": "footprints / forward default case, CPU time", "unit": "x", "value": bwd_cpu / fwd_cpu},
        {"name": "CPU per additional station / forward default case", "unit": "x",
         "value": per_station / fwd_cpu},
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    for record in benchmarks(parser.parse_args().quick):
        print(record)
