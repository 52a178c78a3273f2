"""The benchmarks still run (smoke tests, never timed: their figures are measured in benchmarks/)."""

import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_real_workload_benchmark_counts_every_particle_run():
    """``bench_lagrangian.py --default-case`` (the README's real workload) steps the default case's first
    hours through the core and counts the work of every particle run it creates (it once crashed, reading
    the core's live release-window runs as a list)."""
    out = load_benchmark("bench_lagrangian").default_case(3)
    assert out["hours"] == 2 and out["particle_steps"] > 10_000
    assert 1.0 <= out["substeps_per_particle_step"] < 64
    assert out["particle_hours_per_s"] > 0 and out["cpu_ns_per_particle_step"] > 0
