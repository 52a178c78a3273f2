"""Benchmark of the particle step: Numba kernel vs its NumPy twin, in the same process.

Full step as in ``ParticleRun.advance`` (met interpolation, Petterssen advection, Hanna/Langevin
turbulence with per-particle vertical sub-steps, reflection, dry/wet removal, chemistry, tagging,
gridding) for N particles on a synthetic met of the default JJJ 9 km grid size (142 x 125 cells, 10
levels, 2 time levels, time-dependent, all stability regimes and rain present). The step is dt = 15 s so
that with FLEXPART's T_Lw >= 30 s and turbulence_step_fraction 0.5 most particles take one vertical
sub-step; the mean number of sub-steps is reported (work per particle-step scales with it). Each
turbulence scheme has its own kernel (``--turbulence hanna|similarity``).

    NUMBA_NUM_THREADS=2 python benchmarks/bench_lagrangian.py [--particles N] [--steps 100] [--turbulence S]
    NUMBA_NUM_THREADS=2 python benchmarks/bench_lagrangian.py --default-case HOURS   # the real workload

Reports compile time apart, particle-steps/s of kernel and twin, their ratio, max difference of one step
against the twin, peak memory (max RSS), threads and CPU, the 1-minute load average before and after
(the machine is shared: wall-clock rates drop with the load) and the kernel's CPU time per particle-step
(process CPU time over all threads; less sensitive to the load than the wall clock).
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
from airshed.model import lagrangian as lg
from airshed.model.lagrangian_reference import accumulate_concentration_reference, advance_particles_reference

NY, NX, NZ, NT = 125, 142, 10, 2
DX = 9000.0
SPECIES = ("SO2", "NOx", "PM2.5", "sulfate", "nitrate", "NH3", "NMVOC")
NTAG = 10


def synthetic_met() -> lg.MetWindow:
    """Time-dependent met with a westerly jet, convergence, a diurnal-like h and all stability regimes."""
    yy, xx = np.meshgrid(np.arange(NY) / NY, np.arange(NX) / NX, indexing="ij")
    z = np.array([10.0, 50.0, 100.0, 200.0, 400.0, 700.0, 1000.0, 1500.0, 2500.0, 5000.0])
    shape = (NT, NZ, NY, NX)
    prof = (np.log(z / 0.1) / np.log(10.0 / 0.1))[None, :, None, None]
    u = np.empty(shape)
    v = np.empty(shape)
    for t in range(NT):
        u[t] = prof * (3.0 + 4.0 * np.sin(np.pi * yy + 0.3 * t) + 2.0 * xx)
        v[t] = prof * (1.5 * np.cos(2 * np.pi * xx + 0.2 * t) - 1.0 * yy)
    w = 0.01 * np.sin(2 * np.pi * xx)[None, None] * np.ones(shape)
    s2 = (NT, NY, NX)
    inv_L = np.broadcast_to(np.linspace(-0.05, 0.03, NX), s2).copy()
    inv_L[:, :, NX // 3 : NX // 3 + 5] = 1e-5
    return lg.MetWindow(
        times=np.array([0.0, 3600.0]),
        z_levels=z,
        u=u,
        v=v,
        w=w,
        mixing_height=np.broadcast_to(300.0 + 1200.0 * yy, s2).copy(),
        ustar=np.broadcast_to(0.2 + 0.4 * xx, s2).copy(),
        wstar=np.where(inv_L < 0, 1.8, 0.0),
        inv_L=inv_L,
        precip=np.broadcast_to(np.where(xx > 0.7, 2.0, 0.0), s2).copy(),
    )


def initial_state(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random particles over the domain, ordered by grid cell as ParticleRun keeps them (every 24 steps)."""
    r = np.random.default_rng(seed)
    state = dict(
        x=r.uniform(0.0, NX * DX, n),
        y=r.uniform(0.0, NY * DX, n),
        z=np.concatenate([r.uniform(0.0, 100.0, n // 2), r.uniform(0.0, 2500.0, n - n // 2)]),
        un=r.standard_normal(n),
        vn=r.standard_normal(n),
        wn=r.standard_normal(n),
        um=r.standard_normal(n),
        vm=r.standard_normal(n),
        mass=r.uniform(0.0, 1.0, (len(SPECIES), n)),
        tag=r.integers(0, NTAG, n).astype(np.int32),
        pid=np.arange(n, dtype=np.int64),
        alive=np.ones(n, dtype=np.bool_),
        cell=np.full(n, -1, np.int64),
    )
    order = np.argsort(
        (state["y"] // DX).astype(np.int64) * NX + (state["x"] // DX).astype(np.int64), kind="stable"
    )
    return {k: np.ascontiguousarray(v[..., order]) for k, v in state.items()}


def step_args(state, met, p, t, dt, step, blocks):
    """The records of one step (:mod:`airshed.model.particle_records`) over the benchmark's grid."""
    particles = lg.Particles(*(state[k] for k in lg.Particles._fields[:-1]), state["x"].size)
    grid = lg.Grid(0.0, 0.0, DX, NX, NY, NZ, met.z_levels, 8000.0, p.sampling_depth_m)
    return (
        particles, met.record(), grid, lg.Step(t, dt, np.uint64(step), np.uint64(12345)), p.turbulence(),
        p.removal(), p.chemistry(), p.block_size, blocks,
    )


def run_steps(advance, accumulate, state, met, p, nsteps, dt, acc) -> int:
    """Advance ``nsteps`` steps; return the vertical sub-steps the kernel counted (0 from the twin)."""
    n = state["x"].size
    blocks = np.zeros(((n + p.block_size - 1) // p.block_size, lg.N_BUDGET_TERMS, len(SPECIES)))
    substeps = 0
    for k in range(nsteps):
        blocks[:] = 0.0
        substeps += advance(*step_args(state, met, p, k * dt, dt, k, blocks)) or 0
        accumulate(state["cell"], state["tag"], state["mass"], dt, acc)
    return substeps


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--particles", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--reference-steps", type=int, default=2)
    ap.add_argument("--dt", type=float, default=15.0)
    ap.add_argument("--turbulence", choices=lg.TURBULENCE_SCHEMES, default="hanna",
                    help="turbulence scheme (each has its own kernel; default hanna, FLEXPART's profiles)")
    args = ap.parse_args(argv)

    met = synthetic_met()
    p = lg.LagrangianParameters.for_species(SPECIES, turbulence_step_fraction=0.5,
                                            turbulence_scheme=args.turbulence)
    acc = np.zeros((NTAG, len(SPECIES), NY * NX))

    t0 = time.perf_counter()
    run_steps(lg.advance_particles, lg.accumulate_concentration, initial_state(2000), met, p, 1, args.dt, acc)
    compile_s = time.perf_counter() - t0

    # one step, kernel vs twin, on the same state
    check_k = initial_state(200_000, seed=1)
    check_r = {k: v.copy() for k, v in check_k.items()}
    acc_k, acc_r = np.zeros_like(acc), np.zeros_like(acc)
    run_steps(lg.advance_particles, lg.accumulate_concentration, check_k, met, p, 1, args.dt, acc_k)
    run_steps(
        advance_particles_reference, accumulate_concentration_reference, check_r, met, p, 1, args.dt, acc_r
    )
    max_diff = max(float(np.max(np.abs(check_k[k] - check_r[k]))) for k in ("x", "y", "z", "mass"))
    acc_diff = float(np.max(np.abs(acc_k - acc_r)) / acc_r.max())

    state = initial_state(args.particles)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    substeps = run_steps(
        lg.advance_particles, lg.accumulate_concentration, state, met, p, args.steps, args.dt, acc
    ) / (args.particles * args.steps)
    kernel_cpu_s = time.process_time() - cpu0
    kernel_s = time.perf_counter() - t0
    load_after = os.getloadavg()[0]
    kernel_rate = args.particles * args.steps / kernel_s

    ref_state = initial_state(args.particles)
    t0 = time.perf_counter()
    run_steps(
        advance_particles_reference, accumulate_concentration_reference, ref_state, met, p,
        args.reference_steps, args.dt, np.zeros_like(acc),
    )  # fmt: skip
    ref_s = time.perf_counter() - t0
    ref_rate = args.particles * args.reference_steps / ref_s

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"CPU: {cpu} ({platform.machine()}), {thread_info()}")
    print(f"particles {args.particles:,}, steps {args.steps} (dt {args.dt:g} s), grid {NX}x{NY}x{NZ}x{NT}, "
          f"turbulence {args.turbulence}")
    print(f"vertical sub-steps per particle-step (mixed-layer particles' sub-steps over all): {substeps:.2f}")
    print(f"compile (first call, incl. cache load): {compile_s:.2f} s")
    print(f"kernel: {kernel_s:.2f} s = {kernel_rate / 1e6:.1f} M particle-steps/s")
    cpu_ns = kernel_cpu_s / (args.particles * args.steps) * 1e9
    print(f"kernel CPU time: {cpu_ns:.0f} ns per particle-step (all threads together)")
    print(f"load average (1 min) before / after the kernel run: {load_before:.2f} / {load_after:.2f} "
          f"on {os.cpu_count()} CPUs")
    print(f"NumPy twin: {ref_s:.2f} s, {args.reference_steps} steps = {ref_rate / 1e6:.2f} M steps/s")
    print(f"speed-up kernel / NumPy twin: {kernel_rate / ref_rate:.1f}x")
    print(f"one step vs twin (200k particles): max |diff| {max_diff:.2e} (x, y, z m; mass kg)")
    print(f"gridded concentration vs twin: max relative difference {acc_diff:.1e}")
    print(f"peak memory (max RSS): {rss_gb:.2f} GB; numba {numba.__version__}")
    return {"kernel_steps_per_s": kernel_rate, "reference_steps_per_s": ref_rate, "compile_s": compile_s,
            "max_diff": max_diff, "kernel_cpu_ns_per_step": cpu_ns, "load_average": load_after}


def default_case(hours: int, config: str = "examples/jjj.toml") -> dict:
    """The real workload: the particle core on the default case's settings (full physics), ``hours`` hours.

    Steps the first ``hours`` output periods of the default JJJ case (examples/jjj.toml: 9 km grid, every
    source region and sector, steps up to 300 s, vertical sub-steps near the ground, unresolved mesoscale
    motions, removal and chemistry) through the pipeline's own core and accumulator, without writing a run
    file. Reports simulated particle-hours per second of wall time, CPU time per particle-step and the
    mean vertical sub-steps per particle-step. Met and emissions are read before the clock starts.
    """
    from pathlib import Path

    from airshed.config import load_config
    from airshed.pipeline.study import prepare_study, run_periods

    cfg = load_config(Path(__file__).resolve().parents[1] / config)
    study = prepare_study(cfg)
    core = study.core()
    acc = study.accumulator(hours, core.tracers)
    # the core keeps a particle run per live release window and drops it when its particles are gone:
    # count over every run it creates
    runs = []
    new_run = core.new_run

    def recorded_run(period):
        run = new_run(period)
        runs.append(run)
        return run

    core.new_run = recorded_run
    run_periods(study, core, acc, range(1))  # compile (or load the cache) and warm the met window

    def totals():
        return np.array([sum(getattr(r, name) for r in runs)
                         for name in ("particle_steps", "particle_seconds", "substeps")])

    before = totals()
    load_before = os.getloadavg()[0]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    run_periods(study, core, acc, range(1, hours))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    steps, seconds, substeps = totals() - before
    steps, substeps = int(steps), int(substeps)
    out = {
        "hours": hours - 1, "wall_s": wall, "cpu_s": cpu, "particle_steps": steps,
        "particle_hours_per_s": seconds / 3600.0 / wall, "cpu_ns_per_particle_step": cpu / steps * 1e9,
        "substeps_per_particle_step": substeps / steps, "load_average": (load_before, os.getloadavg()[0]),
        "turbulence": cfg.lagrangian.turbulence, "threads": numba.get_num_threads(),
    }
    print(f"default case ({config}, turbulence {out['turbulence']}), hours 2-{hours}: wall {wall:.1f} s, "
          f"CPU {cpu:.1f} s on {out['threads']} threads")
    print(f"  {steps:,} particle-steps, {out['particle_hours_per_s']:.0f} simulated particle-hours per wall "
          f"s, {out['cpu_ns_per_particle_step']:.0f} ns CPU per particle-step, "
          f"{out['substeps_per_particle_step']:.2f} vertical sub-steps per particle-step")
    print(f"  load average (1 min) before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
    return out


def benchmarks(quick: bool = False) -> list[dict]:
    """Records for ``airshed bench``: particle-steps/s of the full step, ratio to the NumPy twin."""
    argv = ["--particles", "50000", "--steps", "5", "--reference-steps", "1"] if quick else []
    r = main(argv)
    return [{"name": "particle step", "unit": "particle-steps/s", "value": r["kernel_steps_per_s"],
             "ratio_vs_reference": r["kernel_steps_per_s"] / r["reference_steps_per_s"],
             "compile_s": r["compile_s"]}]


if __name__ == "__main__":
    import sys

    if "--default-case" in sys.argv:
        default_case(int(sys.argv[sys.argv.index("--default-case") + 1]))
    else:
        main()
