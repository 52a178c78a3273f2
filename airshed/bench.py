"""The benchmark runner behind ``airshed bench``.

Benchmarks live in ``benchmarks/bench_*.py`` of a source checkout (scripts, not installed with the package
and not collected by pytest). Each module that defines ``benchmarks(quick: bool) -> list[dict]`` is run in
a fresh process of its own (so its peak memory is its own and its Numba thread setting does not leak),
one after the other. A record holds ``name``, ``unit`` and ``value`` (throughput in domain units) and may
hold ``ratio_vs_reference`` (against the NumPy twin in the same process), ``compile_s`` and ``wall_s``; the
runner adds ``peak_memory_mb`` (max RSS of the benchmark's process unless the benchmark measured it),
``threads`` (Numba threads) and ``cpu``.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import platform
import resource
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from airshed.errors import AirshedInputError

RECORD_KEYS = ("name", "unit", "value", "ratio_vs_reference", "compile_s", "wall_s", "peak_memory_mb",
               "threads", "cpu")


def find_benchmarks(folder: Path | None = None) -> Path:
    """Return the benchmark folder: ``folder``, ``$AIRSHED_BENCHMARKS`` or the checkout's ``benchmarks/``."""
    candidates = [folder] if folder is not None else []
    if os.environ.get("AIRSHED_BENCHMARKS"):
        candidates.append(Path(os.environ["AIRSHED_BENCHMARKS"]))
    candidates.append(Path(__file__).resolve().parent.parent / "benchmarks")
    for path in candidates:
        if path.is_dir() and any(path.glob("bench_*.py")):
            return path
    raise AirshedInputError(
        f"no benchmarks found (looked in {', '.join(str(c) for c in candidates)}): the benchmark scripts "
        "ship with the source checkout, not with the installed package; run `airshed bench` from a checkout "
        "(pip install -e .), or pass --benchmarks DIR / set AIRSHED_BENCHMARKS"
    )


def cpu_name() -> str:
    """CPU model name (``/proc/cpuinfo``), or what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _load(path: Path):
    sys.path.insert(0, str(path.parent))  # benchmarks import each other (bench_end_to_end uses bench_plume)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_module(path: str, quick: bool) -> list[dict]:
    import numba

    records = _load(Path(path)).benchmarks(quick)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for r in records:
        r.setdefault("peak_memory_mb", peak)
        r.setdefault("threads", numba.get_num_threads())
        r["cpu"] = cpu_name()
    return records


def run_benchmarks(folder: Path, quick: bool = False, only: list[str] | None = None) -> list[dict]:
    """Run every ``bench_*.py`` of ``folder`` that has ``benchmarks()`` (or those named in ``only``)."""
    paths = sorted(folder.glob("bench_*.py"))
    if only:
        paths = [p for p in paths if p.stem in only or p.stem.removeprefix("bench_") in only]
        if not paths:
            raise AirshedInputError(f"--only {only}: no such benchmark in {folder}")
    records: list[dict] = []
    # a fresh (spawned, non-daemonic) process per script: its compile times and peak memory are its own,
    # and it may start processes itself (the Dask LocalCluster benchmarks)
    context = multiprocessing.get_context("spawn")
    for path in paths:
        if "def benchmarks(" not in path.read_text():
            continue
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            records += pool.submit(_run_module, str(path), quick).result()
    return [{k: r.get(k) for k in RECORD_KEYS} for r in records]


def markdown_table(records: list[dict]) -> str:
    """Return the records as a markdown table (the machine and load average under it)."""

    def number(v, fmt):
        return "-" if v is None else format(v, fmt)

    lines = ["| benchmark | value | unit | ratio vs NumPy | compile s | wall s | peak MB | threads |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in records:
        lines.append(f"| {r['name']} | {number(r['value'], '.4g')} | {r['unit']} | "
                     f"{number(r['ratio_vs_reference'], '.1f')} | {number(r['compile_s'], '.2f')} | "
                     f"{number(r['wall_s'], '.2f')} | {number(r['peak_memory_mb'], '.0f')} | "
                     f"{r['threads']} |")
    cpu = records[0]["cpu"] if records else cpu_name()
    lines.append("")
    lines.append(f"CPU: {cpu}, {os.cpu_count()} logical cores; load average {os.getloadavg()[0]:.2f}")
    return "\n".join(lines)
