"""The default case's sensitivity to the particle core's vertical sub-step and integrator (an accuracy study).

Runs ``examples/jjj.toml`` in full (maps and report included, as shipped) once per run given as
``FRACTION[:INTEGRATOR]`` (``[lagrangian] vertical_step_fraction`` and ``vertical_integrator``, Hanna
scheme; ``euler`` by default), in this process, one after the other, and prints each run's CPU and wall
time, then, against the last run given (the reference: the finest Euler sub-step): the receptor regions'
PM2.5, Beijing's transboundary share, the sector totals summed over receptors and the relative differences
of the source-receptor entries above 1 % of their receptor's total. README, "Particle core: turbulence near
the ground", gives the numbers measured (5 Dec 2026): Euler at 0.5, 0.1 and 0.05 (the first time with caps
of 256 sub-steps, which a Hanna step at 0.1 and 0.05 T_Lw never reaches: at the 30 s floor a 300 s step
takes 100 and 200; the option's caps are 101 and 201) and the BAOAB splitting at 0.5.

Usage: python benchmarks/step_fraction_default_case.py [--runs 0.5 0.5:baoab 0.1 0.05] [--out DIR]
       (run from the repository root; about 2.2x and 4.4x the default case's CPU for 0.1 and 0.05)
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import xarray as xr

from airshed.api import configure
from airshed.runner import run_study


def run_with_fraction(fraction: float, integrator: str, out: Path) -> tuple[float, float]:
    """Run the default case with sub-steps of ``fraction`` T_Lw and ``integrator``; return (CPU s, wall s)."""
    cfg = configure("examples/jjj.toml", run__output=str(out), lagrangian__vertical_step_fraction=fraction,
                    lagrangian__vertical_integrator=integrator)
    wall, cpu = time.perf_counter(), time.process_time()
    run_study(cfg, progress=False)
    return time.process_time() - cpu, time.perf_counter() - wall


def compare(files: dict[str, Path]) -> None:
    """Print each run's numbers against the last run."""
    ref = xr.open_dataset(files[list(files)[-1]])
    sr_ref = ref["source_receptor"].sel(species="PM2.5")
    big = sr_ref > 0.01 * sr_ref.sum("source_region")
    pm_ref = ref["receptor_concentration"].sel(species="PM2.5").mean("time")
    sector_ref = ref["receptor_contribution"].sel(species="PM2.5").mean("time").sum(
        ("receptor_region", "source_region"))
    for run, path in files.items():
        ds = xr.open_dataset(path)
        pm = ds["receptor_concentration"].sel(species="PM2.5").mean("time")
        sector = ds["receptor_contribution"].sel(species="PM2.5").mean("time").sum(
            ("receptor_region", "source_region"))
        rel = np.abs(ds["source_receptor"].sel(species="PM2.5") / sr_ref - 1.0).where(big)
        share = ds["transboundary_share"].sel(species="PM2.5")
        print(f"{run}:")
        for region in ("Beijing", "Tianjin", "Shijiazhuang"):
            print(f"  {region} PM2.5 {float(pm.sel(receptor_region=region)):.2f} ug m-3 "
                  f"({float(pm.sel(receptor_region=region) / pm_ref.sel(receptor_region=region) - 1):+.1%})")
        print(f"  mean over receptor regions {float((pm / pm_ref - 1).mean()):+.1%}; Beijing transboundary "
              f"share {float(share.sel(receptor_region='Beijing')):.3f}, largest difference of a share "
              f"{float(np.abs(share - ref['transboundary_share'].sel(species='PM2.5')).max()):.4f}")
        change = sector / sector_ref - 1.0
        print("  sectors: " + ", ".join(f"{s} {float(change.sel(sector=s)):+.1%}" for s in ds.sector.values
                                        if float(sector_ref.sel(sector=s)) > 0))
        print(f"  source-receptor entries > 1 %: median |difference| {float(rel.median()):.3f}, "
              f"largest {float(rel.max()):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["0.5", "0.5:baoab", "0.1", "0.05"],
                        help="FRACTION[:INTEGRATOR] per run; the last is the reference")
    parser.add_argument("--out", type=Path, default=Path("step_fraction_runs"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    files = {}
    for run in args.runs:
        fraction, _, integrator = run.partition(":")
        integrator = integrator or "euler"
        files[run] = args.out / f"jjj_step_{fraction}_{integrator}.nc"
        if files[run].exists():  # a run file of an earlier call (the runs are deterministic)
            print(f"{run}: reusing {files[run]}", flush=True)
            continue
        load = os.getloadavg()[0]
        cpu, wall = run_with_fraction(float(fraction), integrator, files[run])
        print(f"{run}: {cpu:.1f} s CPU, {wall:.1f} s wall (load {load:.1f} -> {os.getloadavg()[0]:.1f})",
              flush=True)
    compare(files)


if __name__ == "__main__":
    main()
