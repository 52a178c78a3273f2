"""The default case's sensitivity to the particle core's vertical sub-step (an accuracy study, not a timing).

Runs ``examples/jjj.toml`` in full (no figures) once per Hanna sub-step fraction of T_Lw, in this process,
one after the other, and prints each run's CPU and wall time, then, against the last (smallest) fraction:
the receptor regions' PM2.5, Beijing's transboundary share, the sector totals summed over receptors and
the relative differences of the source-receptor entries above 1 % of their receptor's total. The fraction
is set through ``airshed.model.lagrangian.DEFAULT_STEP_FRACTION["hanna"]`` (and the sub-step cap through
``DEFAULT_MAX_SUBSTEPS``) for this process only: it is no configuration option. README, "Particle core:
turbulence near the ground", gives the numbers measured with the defaults below.

Usage: python benchmarks/step_fraction_default_case.py [--fractions 0.5 0.1 0.05] [--caps 64 256 256]
       [--out DIR]    (run from the repository root; about 2.2x and 4.4x the default case for 0.1, 0.05)
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import xarray as xr

import airshed.model.lagrangian as lagrangian
from airshed.api import configure
from airshed.runner import run_study


def run_with_fraction(fraction: float, cap: int, out: Path) -> tuple[float, float]:
    """Run the default case with the Hanna sub-step ``fraction`` T_Lw (at most ``cap``); (CPU s, wall s)."""
    lagrangian.DEFAULT_STEP_FRACTION["hanna"] = fraction
    lagrangian.DEFAULT_MAX_SUBSTEPS["hanna"] = cap
    cfg = configure("examples/jjj.toml", run__output=str(out))
    wall, cpu = time.perf_counter(), time.process_time()
    run_study(cfg, progress=False)
    return time.process_time() - cpu, time.perf_counter() - wall


def compare(files: dict[float, Path]) -> None:
    """Print each run's numbers against the run with the smallest fraction."""
    ref = xr.open_dataset(files[min(files)])
    sr_ref = ref["source_receptor"].sel(species="PM2.5")
    big = sr_ref > 0.01 * sr_ref.sum("source_region")
    pm_ref = ref["receptor_concentration"].sel(species="PM2.5").mean("time")
    sector_ref = ref["receptor_contribution"].sel(species="PM2.5").mean("time").sum(
        ("receptor_region", "source_region"))
    for fraction, path in files.items():
        ds = xr.open_dataset(path)
        pm = ds["receptor_concentration"].sel(species="PM2.5").mean("time")
        sector = ds["receptor_contribution"].sel(species="PM2.5").mean("time").sum(
            ("receptor_region", "source_region"))
        rel = np.abs(ds["source_receptor"].sel(species="PM2.5") / sr_ref - 1.0).where(big)
        share = ds["transboundary_share"].sel(species="PM2.5")
        print(f"fraction {fraction}:")
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
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.5, 0.1, 0.05])
    parser.add_argument("--caps", type=int, nargs="+", default=[64, 256, 256])
    parser.add_argument("--out", type=Path, default=Path("step_fraction_runs"))
    args = parser.parse_args()
    if len(args.caps) != len(args.fractions):
        parser.error("--caps needs one cap per fraction")
    args.out.mkdir(parents=True, exist_ok=True)
    files = {}
    for fraction, cap in zip(args.fractions, args.caps, strict=True):
        files[fraction] = args.out / f"jjj_step_{fraction}.nc"
        load = os.getloadavg()[0]
        cpu, wall = run_with_fraction(fraction, cap, files[fraction])
        print(f"fraction {fraction} (at most {cap} sub-steps): {cpu:.1f} s CPU, {wall:.1f} s wall "
              f"(load {load:.1f} -> {os.getloadavg()[0]:.1f})", flush=True)
    compare(files)


if __name__ == "__main__":
    main()
