"""The default case's sensitivity to the particle core's vertical sub-step and integrator (an accuracy study).

Runs ``examples/jjj.toml`` once per run given as ``FRACTION[:INTEGRATOR[:FREE]]`` (``[lagrangian]
vertical_step_fraction``, ``vertical_integrator``, default ``baoab``, and ``free_vertical_diffusion``:
``on`` or ``off``, default ``off``; Hanna scheme), in this process, one after the other, and prints each
run's CPU and wall time, then, against the last run given (the reference): the receptor regions' PM2.5,
Beijing's transboundary share, the sector totals summed over receptors and the relative differences of
the source-receptor entries above 1 % of their receptor's total. ``--core-only`` leaves out the maps,
report and inventory members (the numbers compared are the same). README, "Particle core: turbulence
near the ground", gives the numbers measured: the defaults since 6 Dec 2026 (``baoab`` at 0.5, no free
diffusion) against ``baoab`` at 1.0 and 0.25 (6 Dec), and the former defaults (Euler at 0.5, 0.1 and
0.05 with free diffusion on, and ``baoab`` at 0.5 with it on; 5 Dec).

Usage: python benchmarks/step_fraction_default_case.py [--runs 1.0 0.5 0.25] [--core-only] [--out DIR]
       (run from the repository root; 0.25 costs about 1.5x the default case's CPU)
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import xarray as xr

from airshed.api import configure
from airshed.config import LagrangianConfig
from airshed.model.lagrangian import VERTICAL_INTEGRATORS
from airshed.runner import run_study

#: What a run string leaves out takes the config's defaults.
DEFAULT_INTEGRATOR = LagrangianConfig.model_fields["vertical_integrator"].default
DEFAULT_FREE = "on" if LagrangianConfig.model_fields["free_vertical_diffusion"].default else "off"


def run_with_fraction(fraction: float, integrator: str, free: bool, out: Path,
                      core_only: bool) -> tuple[float, float]:
    """Run the default case with sub-steps of ``fraction`` T_Lw, ``integrator`` and free vertical diffusion
    on or off; return (CPU s, wall s)."""
    documents = ({"outputs__maps": False, "outputs__report": False, "uncertainty__members": 0} if core_only
                 else {})
    cfg = configure("examples/jjj.toml", run__output=str(out), lagrangian__vertical_step_fraction=fraction,
                    lagrangian__vertical_integrator=integrator, lagrangian__free_vertical_diffusion=free,
                    **documents)
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
    parser.add_argument("--runs", nargs="+", default=["1.0", "0.5", "0.25"],
                        help="FRACTION[:INTEGRATOR[:FREE]] per run (FREE: on or off); the last is the "
                        "reference")
    parser.add_argument("--core-only", action="store_true", help="no maps, report or inventory members")
    parser.add_argument("--out", type=Path, default=Path("step_fraction_runs"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    files = {}
    for run in args.runs:
        fraction, integrator, free = (run.split(":") + ["", ""])[:3]
        integrator, free = integrator or DEFAULT_INTEGRATOR, free or DEFAULT_FREE
        if integrator not in VERTICAL_INTEGRATORS or free not in ("on", "off"):
            parser.error(f"run {run!r}: expected FRACTION[:{'|'.join(VERTICAL_INTEGRATORS)}[:on|off]]")
        files[run] = args.out / f"jjj_step_{fraction}_{integrator}_free-{free}.nc"
        if files[run].exists():  # a run file of an earlier call (the runs are deterministic)
            print(f"{run}: reusing {files[run]}", flush=True)
            continue
        load = os.getloadavg()[0]
        cpu, wall = run_with_fraction(float(fraction), integrator, free == "on", files[run], args.core_only)
        print(f"{run}: {cpu:.1f} s CPU, {wall:.1f} s wall (load {load:.1f} -> {os.getloadavg()[0]:.1f})",
              flush=True)
    compare(files)


if __name__ == "__main__":
    main()
