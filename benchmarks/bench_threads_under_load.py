"""Benchmark: the particle step and the plume kernel on 1 and 2 Numba threads, with and without a busy
competing process (script; not collected by pytest).

Users run airshed on shared laptops and cluster nodes where other work holds a core, and Dask workers x
Numba threads oversubscribe the cores by design. With OpenMP threads that spin while they wait at the end
of a parallel loop, 2 threads next to one busy process were *slower* than 1 (the spinning thread takes the
core the working thread needs). airshed sets a wait policy before Numba starts its threads
(:func:`airshed.jit.apply_thread_wait_policy`); this script measures it against libgomp's default.

Every measurement runs in a fresh process (the wait policy is read once, when the OpenMP runtime loads),
optionally next to one competing process that spins in a Python loop. Work per measurement:

- particle step (``benchmarks/bench_lagrangian.py``): 300,000 particles x 30 steps of 15 s on the
  synthetic 142 x 125 x 10 met of the default grid size (the reproduction in issue 13);
- plume kernel (``benchmarks/bench_plume.py``), footprint skipping as the runs use it: 300 sources x
  183 x 183 receptors, several calls.

Reported per configuration: throughput (wall), CPU time per unit of work of the measured process (all its
threads), and the 1-minute load average before and after. ``airshed bench`` records, for each kernel, the
rates of every configuration and the ratio "2 threads / 1 thread with a busy competitor" for libgomp's
default spinning and for airshed's policy (goal: >= 1, i.e. 2 threads not slower than 1).

    python benchmarks/bench_threads_under_load.py [--quick] [--repeat 3] [--policies default airshed ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

POLICIES: dict[str, dict[str, str]] = {
    # libgomp's own default when nothing is set: spin 300,000 times before sleeping (GOMP_SPINCOUNT;
    # an explicit value also tells airshed to leave the policy alone)
    "default": {"GOMP_SPINCOUNT": "300000"},
    # what importing airshed sets when the user set nothing (airshed.jit.apply_thread_wait_policy)
    "airshed": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spin10k": {"GOMP_SPINCOUNT": "10000"},
    "workqueue": {"NUMBA_THREADING_LAYER": "workqueue", "GOMP_SPINCOUNT": "300000"},
}
_POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "NUMBA_THREADING_LAYER")


def _measure(kernel: str, threads: int, quick: bool) -> dict:
    """Run one kernel in this (fresh) process; return wall and CPU time and the work done."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import numba
    import numpy as np

    from airshed.jit import thread_info

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    if kernel == "particle":
        import bench_lagrangian as bl

        n, steps = (60_000, 10) if quick else (300_000, 30)
        met = bl.synthetic_met()
        p = bl.lg.LagrangianParameters.for_species(bl.SPECIES)
        acc = np.zeros((bl.NTAG, len(bl.SPECIES), bl.NY * bl.NX))
        bl.run_steps(
            bl.lg.advance_particles,
            bl.lg.accumulate_concentration,
            bl.initial_state(2000),
            met,
            p,
            1,
            15.0,
            acc,
        )  # compile or load from the cache, and start the threads
        state = bl.initial_state(n)

        def work() -> None:
            bl.run_steps(
                bl.lg.advance_particles, bl.lg.accumulate_concentration, state, met, p, steps, 15.0, acc
            )

        units, unit = n * steps, "particle-steps"
    else:
        import bench_plume as bp

        sources, side, calls = (100, 100, 3) if quick else (300, 183, 8)
        prep = bp._sources(sources, side * 1000.0)
        grid = (500.0, 500.0, 1000.0, 1000.0, side, side)
        bp.pk.plume_concentration_grid(prep, *grid, 40, skip=True)

        def work() -> None:
            for _ in range(calls):
                bp.pk.plume_concentration_grid(prep, *grid, 40, skip=True)

        units, unit = sources * side * side * calls, "effective pairs"
    load_before = os.getloadavg()[0]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    work()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "units": units,
        "unit": unit,
        "wall_s": wall,
        "cpu_s": cpu,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        **thread_info(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", ""),
    }


def measure(kernel: str, threads: int, policy: str, competitor: bool, quick: bool) -> dict:
    """One measurement in a fresh process with ``policy``'s environment, next to a busy process or not."""
    env = {k: v for k, v in os.environ.items() if k not in _POLICY_VARIABLES} | POLICIES[policy]
    busy = None
    try:
        if competitor:  # one core busy in a Python loop until terminated
            busy = subprocess.Popen([sys.executable, "-c", "x = 0\nwhile True: x += 1"])
            time.sleep(0.5)  # let it take its core
        child = subprocess.run(
            [sys.executable, __file__, "--child", kernel, str(threads)] + (["--quick"] if quick else []),
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    finally:
        if busy is not None:
            busy.terminate()
            busy.wait()
    if child.returncode != 0:
        raise RuntimeError(f"measurement {kernel}/{threads}/{policy} failed: {child.stderr[-2000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    rate = result["units"] / result["wall_s"]
    return {
        **result,
        "kernel": kernel,
        "threads": threads,
        "policy": policy,
        "competitor": competitor,
        "rate": rate,
        "cpu_ns_per_unit": result["cpu_s"] / result["units"] * 1e9,
    }


def run_matrix(
    policies: list[str], quick: bool, kernels=("particle", "plume"), repeat: int = 1
) -> list[dict]:
    """Every kernel x policy x competitor x threads (1, 2); each the run of median rate of ``repeat``."""
    out = []
    for kernel in kernels:
        for policy in policies:
            for competitor in (False, True):
                for threads in (1, 2):
                    runs = sorted(
                        (measure(kernel, threads, policy, competitor, quick) for _ in range(repeat)),
                        key=lambda r: r["rate"],
                    )
                    r = runs[len(runs) // 2]
                    busy = "yes" if competitor else "no "
                    rates = ", ".join(f"{x['rate'] / 1e6:.3g}" for x in runs)
                    spread = f" (of {rates})" if repeat > 1 else ""
                    print(
                        f"{kernel:8s} {policy:9s} busy={busy} threads={threads} "
                        f"{r['rate'] / 1e6:9.2f} M {r['unit']}/s{spread}  CPU {r['cpu_ns_per_unit']:8.2f} "
                        f"ns/unit  layer {r['numba_threading_layer']}  "
                        f"load {r['load_before']:.2f}->{r['load_after']:.2f}",
                        flush=True,
                    )
                    out.append(r)
    return out


def _pick(rows: list[dict], kernel: str, policy: str, competitor: bool, threads: int) -> dict:
    return next(
        r
        for r in rows
        if (r["kernel"], r["policy"], r["competitor"], r["threads"]) == (kernel, policy, competitor, threads)
    )


def benchmarks(quick: bool = False) -> list[dict]:
    """Records for ``airshed bench``: rates per configuration and the 2-vs-1-thread ratios under load."""
    rows = run_matrix(["default", "airshed"], quick, repeat=1 if quick else 3)
    records = []
    label = {"default": "libgomp default spin", "airshed": "airshed wait policy"}
    for r in rows:
        competing = "1 busy competitor" if r["competitor"] else "no competitor"
        records.append(
            {
                "name": f"{r['kernel']} under load: {label[r['policy']]}, {competing}, "
                f"{r['threads']} thread(s) "
                f"({r['cpu_ns_per_unit']:.3g} ns CPU per unit, load {r['load_after']:.1f})",
                "unit": f"{r['unit']}/s",
                "value": r["rate"],
                "wall_s": r["wall_s"],
                "threads": r["threads"],
            }
        )
    for kernel in ("particle", "plume"):
        for policy in ("default", "airshed"):
            one, two = (_pick(rows, kernel, policy, True, t) for t in (1, 2))
            records.append(
                {
                    "name": f"{kernel} under load: 2 threads / 1 thread with a busy competitor, "
                    f"{label[policy]} (goal >= 1)",
                    "unit": "x",
                    "value": two["rate"] / one["rate"],
                    "wall_s": 0.0,
                    "threads": 2,
                }
            )
    return records


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--policies", nargs="+", default=["default", "airshed"], choices=sorted(POLICIES))
    ap.add_argument("--kernels", nargs="+", default=["particle", "plume"], choices=["particle", "plume"])
    ap.add_argument(
        "--repeat", type=int, default=1, help="measurements per configuration (the median is kept)"
    )
    ap.add_argument("--child", nargs=2, metavar=("KERNEL", "THREADS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:  # one measurement, in this fresh process: print it as JSON
        print(json.dumps(_measure(args.child[0], int(args.child[1]), args.quick)))
        return
    print(f"{os.cpu_count()} logical CPUs; load average {os.getloadavg()}")
    rows = run_matrix(args.policies, args.quick, tuple(args.kernels), args.repeat)
    for kernel in args.kernels:
        for policy in args.policies:
            one, two = (_pick(rows, kernel, policy, True, t) for t in (1, 2))
            q1, q2 = (_pick(rows, kernel, policy, False, t) for t in (1, 2))
            print(
                f"{kernel} {policy}: 2 vs 1 thread, quiet {q2['rate'] / q1['rate']:.2f}x, "
                f"with a busy competitor {two['rate'] / one['rate']:.2f}x"
            )


if __name__ == "__main__":
    main()
