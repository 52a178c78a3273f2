"""Benchmark of the Gaussian plume kernels (script; not collected by pytest).

1,000 point sources x 316 x 316 receptors (1 km spacing), one met hour, float64. Reports compile (or cache
load) time apart, dense throughput and its ratio to the NumPy reference in the same process (reference
run on a subsample of sources and scaled per pair), footprint-skipping throughput in effective pairs/s
(all source-receptor pairs / wall time), max relative error vs the reference, threads, CPU, load average,
peak memory, and a projection of a year of hourly met on the default 9 km grid.

Pair counts: "all pairs" = sources x receptors. Upwind pairs (x <= x_min, about half here) are exactly 0
and neither the kernel nor the reference evaluates them, so the rate per evaluated (downwind) pair is also
printed. On a shared machine wall times drift with the load; the CPU-time ratio (process CPU seconds,
kernel on 1 thread vs reference) is printed as well, since it is insensitive to other users.

Usage: NUMBA_NUM_THREADS=2 python benchmarks/bench_plume.py [--sources 1000] [--side 316] [--ref-sources 40]
[--dispersion briggs-rural|briggs-urban|boundary-layer] [--obukhov-length -200] [--release stacks|ground]

``--release stacks`` (default): buoyant stacks 20-200 m with plume rise; in convective hours of the
boundary-layer option these are two-component (bi-Gaussian) sources. ``--release ground``: non-buoyant
releases at the ground (the area sub-sources of the default case), one Gaussian with the surface-layer
spread in convective hours.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import numba
import numpy as np

from airshed.jit import thread_info
from airshed.model import plume as pk
from airshed.model.plume_reference import reference_concentration_grid
from airshed.physics.dispersion_schemes import DISPERSION_SCHEMES


def project_year_seconds(
    n_point_sources: int,
    n_area_cells: int,
    n_sub: int,
    n_receptors: int,
    effective_pairs_per_s: float,
    prep_s_per_source: float,
    n_species: int = 1,
    hours: int = 8760,
) -> float:
    """Wall time of a year of hourly plume runs (s).

    T = hours * n_species * N_src * (t_prep + N_rec / R_eff), with N_src = point sources
    + area cells * n_sub^2 sub-points, t_prep the per-source preparation time and R_eff the
    footprint-skipping rate in effective (all) pairs per second measured by this script (it depends on
    the footprint share, i.e. on stability and the domain size in plume widths; the benchmark's 316 km
    domain is of the same order as JJJ's).
    Species share geometry but each species is one kernel call here, hence the factor n_species.
    """
    n_src = n_point_sources + n_area_cells * n_sub * n_sub
    return hours * n_species * n_src * (prep_s_per_source + n_receptors / effective_pairs_per_s)


def _sources(n, side_m, seed=0, option="briggs-rural", obukhov_length=-200.0, release="stacks"):
    rng = np.random.default_rng(seed)
    stacks = release == "stacks"
    return pk.prepare_point_sources(
        rng.uniform(0, side_m, n),
        rng.uniform(0, side_m, n),
        rng.uniform(1, 100, n),
        rng.integers(0, 40, n),
        rng.uniform(20, 200, n) if stacks else np.zeros(n),
        wind_speed=5.0,
        wind_direction_deg=225.0,
        wind_height=10.0,
        roughness_length=0.3,
        ustar=0.4,
        obukhov_length=obukhov_length,
        mixing_height=1000.0,
        pg_class=4,
        air_temperature=290.0,
        option=option,
        diameter=rng.uniform(1, 6, n) if stacks else 0.0,
        exit_velocity=rng.uniform(5, 20, n) if stacks else 0.0,
        stack_temperature=rng.uniform(350, 450, n) if stacks else 290.0,
        receptor_height=1.5,
        x_max=side_m * 1.5,
    )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", type=int, default=1000)
    ap.add_argument("--side", type=int, default=316)
    ap.add_argument("--ref-sources", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dispersion", choices=sorted(DISPERSION_SCHEMES), default="briggs-rural")
    ap.add_argument("--obukhov-length", type=float, default=-200.0, help="m (boundary-layer option)")
    ap.add_argument("--release", choices=("stacks", "ground"), default="stacks")
    args = ap.parse_args(argv)
    option = args.dispersion
    dx = 1000.0
    n, side = args.sources, args.side
    grid = (0.5 * dx, 0.5 * dx, dx, dx, side, side)
    small = _sources(2, 10 * dx, seed=1)  # also loads the boundary-layer helpers before timing preparation
    t0 = time.perf_counter()
    prep = _sources(n, side * dx, option=option, obukhov_length=args.obukhov_length, release=args.release)
    t_prep = time.perf_counter() - t0

    t0 = time.perf_counter()
    pk.plume_concentration_grid(small, 0.0, 0.0, dx, dx, 4, 4, 40, skip=False)
    t_compile = time.perf_counter() - t0

    pairs = n * side * side

    def best(f):
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            out = f()
            times.append(time.perf_counter() - t)
        return min(times), out

    load_before = os.getloadavg()
    t_dense, dense = best(lambda: pk.plume_concentration_grid(prep, *grid, 40, skip=False))
    t_skip, skipped = best(lambda: pk.plume_concentration_grid(prep, *grid, 40, skip=True))

    m = args.ref_sources
    sub = pk.PreparedSources(
        prep.params[:m],
        prep.tag[:m],
        prep.fourier[:m],
        prep.depletion[:m],
        prep.receptor_height,
        prep.x_min,
        0,
        0,
    )
    t, c = time.perf_counter(), time.process_time()
    ref = reference_concentration_grid(sub, *grid, 40)
    t_ref, c_ref = time.perf_counter() - t, time.process_time() - c
    ker = pk.plume_concentration_grid(sub, *grid, 40, skip=False)
    big = np.abs(ref) > 1e-30 * np.abs(ref).max()
    max_rel = float(np.max(np.abs(ker - ref)[big] / np.abs(ref)[big]))
    ref_rate = m * side * side / t_ref
    dense_rate = pairs / t_dense
    skip_rate = pairs / t_skip
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    c = time.process_time()
    pk.plume_concentration_grid(prep, *grid, 40, skip=False)
    c_dense = time.process_time() - c
    numba.set_num_threads(threads)
    load_after = os.getloadavg()
    gx = 0.5 * dx + dx * np.arange(side)
    px, py = np.meshgrid(gx, gx)
    p = prep.params
    downwind = 0
    for k in range(n):
        x_down = (px - p[k, pk.XS]) * p[k, pk.EX] + (py - p[k, pk.YS]) * p[k, pk.EY]
        downwind += int(np.count_nonzero(x_down > prep.x_min))

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = thread_info()
    print(
        f"CPU: {cpu}; threads: {info['numba_threads']} ({info['numba_threading_layer']}), "
        f"numba {info['numba_version']}"
    )
    print(
        f"sources {n}, receptors {side}x{side} = {side * side}, pairs {pairs:.3e}, float64, one met hour, "
        f"dispersion {args.dispersion} (L = {args.obukhov_length:g} m), {args.release} releases"
    )
    print(f"per-source preparation: {t_prep:.3f} s ({t_prep / n * 1e6:.1f} us/source)")
    print(f"first call (compile or cache load): {t_compile:.2f} s")
    print(
        f"load average (1 min) before/after timing: {load_before[0]:.2f} / {load_after[0]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )
    print(f"NumPy reference: {ref_rate / 1e6:.1f} M pairs/s ({m} sources subsample, {t_ref:.2f} s)")
    print(
        f"dense kernel:    {t_dense:.3f} s  {dense_rate / 1e9:.3f} G pairs/s  "
        f"({downwind / t_dense / 1e9:.3f} G evaluated downwind pairs/s, {downwind / pairs:.0%} of pairs) "
        f"= {dense_rate / ref_rate:.1f}x reference"
    )
    print(
        f"CPU time per pair, dense kernel on 1 thread vs reference: "
        f"{c_ref / (m * side * side) * 1e9:.1f} ns / {c_dense / pairs * 1e9:.2f} ns "
        f"= {(c_ref / (m * side * side)) / (c_dense / pairs):.1f}x"
    )
    print(
        f"skipping kernel: {t_skip:.3f} s  {skip_rate / 1e9:.3f} G effective pairs/s "
        f"(max |dense - skip| / max = {np.max(np.abs(dense - skipped)) / dense.max():.1e})"
    )
    print(f"max relative error kernel vs reference (values > 1e-30 max): {max_rel:.2e}")
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    # default case: 110-124E x 34-44N at 9 km ~ 133 x 124 cells; 387 power plants; area emissions per cell
    n_cells = 133 * 124
    year = project_year_seconds(387, n_cells, 2, n_cells, skip_rate, t_prep / n, n_species=5)
    print("year projection, 9 km default grid (387 stacks + 16,492 area cells x 2x2 sub-points, 5 species;")
    print(f"  T = 8760 * n_species * N_src * (t_prep + N_rec / R_eff)): {year / 3600:.1f} h")
    return {"dense_pairs_per_s": dense_rate, "skip_pairs_per_s": skip_rate, "reference_pairs_per_s": ref_rate,
            "compile_s": t_compile, "max_relative_error": max_rel, "pairs": pairs}


def benchmarks(quick: bool = False) -> list[dict]:
    """Records for ``airshed bench``: dense and footprint-skipping kernel throughput (pairs/s).

    Briggs rural (the rational sigma forms) and the boundary-layer option's convective hour with stacks
    (two-component vertical distribution), each against its NumPy twin.
    """
    argv = ["--sources", "100", "--side", "100", "--repeat", "1", "--ref-sources", "5"] if quick else []
    r = main(argv)
    ref = r["reference_pairs_per_s"]
    c = main([*argv, "--dispersion", "boundary-layer", "--obukhov-length", "-200"])
    return [
        {"name": "plume kernel, dense", "unit": "pairs/s", "value": r["dense_pairs_per_s"],
         "ratio_vs_reference": r["dense_pairs_per_s"] / ref, "compile_s": r["compile_s"]},
        {"name": "plume kernel, footprint skipping", "unit": "effective pairs/s",
         "value": r["skip_pairs_per_s"], "ratio_vs_reference": r["skip_pairs_per_s"] / ref,
         "compile_s": r["compile_s"]},
        {"name": "plume kernel, boundary-layer convective stacks, footprint skipping",
         "unit": "effective pairs/s", "value": c["skip_pairs_per_s"],
         "ratio_vs_reference": c["skip_pairs_per_s"] / c["reference_pairs_per_s"],
         "compile_s": c["compile_s"]},
    ]


if __name__ == "__main__":
    main()
