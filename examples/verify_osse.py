"""Observing-system simulation (OSSE) of `airshed verify` on the default Jing-Jin-Ji case.

Run from the repository root:

    python examples/verify_osse.py            # about 2 x the default case's run time, then seconds

What it does (nothing but the observations is known to the inversion):

1. **prior run**: ``examples/verify_osse.toml`` (the default five-day case with the 80 stations of the
   synthetic JJJ network sampled hour by hour), particle seed 20171201 -> ``prior.nc``;
2. **truth run**: the same config with the scenario ``osse_truth`` (Hebei SO2 -20 %, Tianjin NOx -30 %,
   all sectors, the whole run) and another particle seed (7): the truth is produced by a different
   realisation of the particle transport, not by the linear operator the inversion uses, so the test does
   not commit the "inverse crime" -> ``truth.nc``;
3. **synthetic observations** of SO2, NO2 and PM2.5 at the 80 stations
   (:func:`airshed.verification.synthetic.synthetic_observations`): the truth's hourly station series
   (NO2 through the ARM2 ratio), plus a background the model does not know (SO2 2, NO2 4, PM2.5 15 ug m-3),
   plus noise (instrument errors; a 30 % model error correlated in time with an e-folding time of 12 h),
   seed 2018, written as CNEMC daily files (``observations/china_sites_YYYYMMDD.csv``);
4. **airshed verify** on the prior run with those files, provinces as state regions (each sector and
   species its own scaling factor), daily means, the default errors and priors, and four claims: the true
   cuts and claims twice as large -> ``verify.json`` and the printed tables;
5. **acceptance** (issue 18): each cut recovered within 5 percentage points with 1 sigma <= 7 %, chi2/n in
   [0.5, 2], the posterior total of each species within +-10 % of the true total, "consistent" for the
   true claims and "contradicted" for the doubled ones. Exit status 0 when every check passes.

Options: ``--out DIR`` (default ``examples/verify_osse/``), ``--rerun`` (run the model again even if the
run files exist), ``--threads N``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from airshed.config import load_config
from airshed.inputs.observations import write_cnemc
from airshed.run import run_study
from airshed.verification.synthetic import synthetic_observations

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "verify_osse.toml"
TRUTH_SEED = 7
NOISE_SEED = 2018
BACKGROUND = {"SO2": 2.0, "NO2": 4.0, "PM2.5": 15.0}
MODEL_ERROR = 0.30
CORRELATION_HOURS = 12.0
CUTS = {("Hebei", "SO2"): -20.0, ("Tianjin", "NOx"): -30.0}
"""The truth's cuts (percent), as in the scenario osse_truth of verify_osse.toml."""


def model_runs(out: Path, rerun: bool, threads: int | None) -> tuple[Path, Path]:
    """The prior and truth runs (reused when present unless ``rerun``)."""
    cfg = load_config(CONFIG)
    if threads is not None:
        cfg = cfg.model_copy(update={"compute": cfg.compute.model_copy(update={"threads": threads})})
    prior, truth = out / "prior.nc", out / "truth.nc"
    for path, seed, scenario in ((prior, cfg.run.seed, None), (truth, TRUTH_SEED, "osse_truth")):
        if path.is_file() and not rerun:
            print(f"reusing {path}")
            continue
        started = time.perf_counter()
        run_cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update={"seed": seed})})
        run_study(run_cfg, output=path, progress=True, scenario=scenario)
        print(f"wrote {path} in {time.perf_counter() - started:.0f} s")
    return prior, truth


def true_scaling(elements: list[dict]) -> np.ndarray:
    """The truth's scaling factor of every emission element of the state (1 where nothing was cut)."""
    return np.array([1.0 + CUTS.get((e["region"], e["species"]), 0.0) / 100.0 for e in elements])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "verify_osse")
    parser.add_argument("--rerun", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    prior, truth = model_runs(out, args.rerun, args.threads)

    with xr.open_dataset(truth) as ds:
        obs = synthetic_observations(ds, ("SO2", "NO2", "PM2.5"), BACKGROUND, MODEL_ERROR, CORRELATION_HOURS,
                                     NOISE_SEED)
    folder = out / "observations"
    folder.mkdir(exist_ok=True)
    for old in folder.glob("china_sites_*.csv"):
        old.unlink()
    files = write_cnemc(obs, folder)
    print(f"wrote {len(files)} CNEMC daily files ({len(obs.frame)} hourly values) to {folder}")

    claims = []
    for (region, species), cut in CUTS.items():
        claims += ["--claim", f"region={region},species={species},percent={cut:g}",
                   "--claim", f"region={region},species={species},percent={2 * cut:g}"]
    report = out / "verify.json"
    command = ["airshed", "verify", str(prior), "--observations", str(folder), "--stations",
               str(HERE.parent / "airshed" / "data" / "stations_jjj_synthetic.csv"), "--regions", "provinces",
               *claims, "--json", str(report)]
    print("$", " ".join(command))
    started = time.perf_counter()
    subprocess.run(command, check=True)
    print(f"airshed verify took {time.perf_counter() - started:.1f} s")
    return acceptance(json.loads(report.read_text()))


def acceptance(result: dict) -> int:
    """Print the acceptance checks of issue 18; return 0 when all pass."""
    checks = []
    regions = {(r["region"], r["species"]): r for r in result["regions"]}
    for (region, species), cut in CUTS.items():
        r = regions[(region, species)]
        checks.append((f"{region} {species}: estimate {r['change_percent']:+.1f} % (truth {cut:+.0f} %)",
                       abs(r["change_percent"] - cut) <= 5.0))
        checks.append((f"{region} {species}: 1 sigma {r['sigma_percent']:.1f} % <= 7 %", r["sigma_percent"] <= 7.0))
    for province in ("Beijing", "Tianjin", "Hebei"):
        for species in ("SO2", "NOx", "PM2.5"):
            r = regions[(province, species)]
            truth = CUTS.get((province, species), 0.0)
            print(f"  {province:8s} {species:6s} estimate {r['change_percent']:+6.1f} % +- {r['sigma_percent']:4.1f} "
                  f"(truth {truth:+.0f} %, prior sigma {r['prior_sigma_percent']:.1f} %, information "
                  f"{r['information']:.2f})")
    chi2 = result["diagnostics"]["chi2_per_observation"]
    checks.append((f"chi2/n = {chi2:.2f} in [0.5, 2]", 0.5 <= chi2 <= 2.0))
    elements = [e for e in result["elements"] if e["kind"] == "emission"]
    x_true = true_scaling(elements)
    for species in ("SO2", "NOx", "PM2.5"):
        sel = [k for k, e in enumerate(elements) if e["species"] == species]
        tonnes = np.array([elements[k]["emission_t"] for k in sel])
        posterior = float(tonnes @ np.array([elements[k]["posterior"] for k in sel]))
        true_total = float(tonnes @ x_true[sel])
        bias = 100.0 * (posterior / true_total - 1.0)
        checks.append((f"{species} total over the domain: posterior bias {bias:+.1f} % (within +-10 %)",
                       abs(bias) <= 10.0))
    for claim in result["claims"]:
        region, species = claim["region"], claim["species"]
        doubled = abs(claim["claimed_percent"]) > abs(CUTS[(region, species)]) + 1e-9
        want = "contradicted" if doubled else "consistent"
        lo, hi = claim["interval_95_percent"]
        checks.append((f"claim {claim['claim']}: {claim['verdict']} (estimate {claim['estimated_percent']:+.1f}, "
                       f"95 % [{lo:+.1f}, {hi:+.1f}]; expected {want})", claim["verdict"] == want))
    d = result["diagnostics"]
    print(f"\n{d['observations']} observations at {d['stations_observed']} stations, {d['state_elements']} state "
          f"elements, DOFS {d['dofs']:.1f}")
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    passed = all(ok for _, ok in checks)
    print("OSSE acceptance:", "all checks pass" if passed else "FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
