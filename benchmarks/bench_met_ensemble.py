"""Benchmark: the default case with its meteorology members and 1000 inventory members vs the single run.

Issue 16's target: the default case (``examples/jjj.toml``) with HYSPLIT's 27 offset members and 1000
inventory members finishes on 2 cores within 30 x the single run, and the run file stays under 2 x its
size. The script runs, in one process and on the same inputs:

1. a one-hour warm-up (Numba compilation out of the timings);
2. the single run (no ensemble; figures and report off in both);
3. the run with ``--members M`` of the 27 meteorology members and ``--inventory-members`` members
   (:func:`airshed.met_ensemble.run_with_members`, serial: the members one after the other on the
   inputs they share, :class:`airshed.met_ensemble.SharedInputs`).

It prints the CPU time (all threads of the process) and wall time of each, their ratio, the run-file
sizes, the peak resident memory, and the load average before, after and sampled every 30 s during the
run (mean and maximum). Every finished run is appended as it ends to ``--log`` (JSON lines: CPU and wall
seconds since the ensemble began, the run file), so a benchmark stopped before the end still says what
each member cost. With M < 27, or from such a log (``--project LOG --member-files DIR``: the ensemble
statistics are then computed and timed over the member files there, kept with ``--keep-members``), the
27-member figure is a projection: ``projected = single + (26 x mean CPU of a rerun member + statistics
over the members scaled to 27) / single``, said as such in the output.

    python benchmarks/bench_met_ensemble.py [--config examples/jjj.toml] [--members 27]
        [--inventory-members 1000] [--threads 2] [--hours H] [--out DIR] [--keep-members] [--log FILE]
        [--json FILE]
    python benchmarks/bench_met_ensemble.py --project LOG --member-files DIR [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import xarray as xr

from airshed.api import configure
from airshed.inputs.meteorology.offsets import offset_members
from airshed.met_ensemble import run_with_members
from airshed.runner import run_study
from airshed.uncertainty.ensemble import (
    InventoryEnsemble,
    add_to_run_file,
    ensemble_statistics,
    sampling_variances,
)

ROOT = Path(__file__).resolve().parents[1]
OFFSET_MEMBERS = 27


def _timed(fn) -> tuple[object, float, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.process_time() - cpu0, time.perf_counter() - wall0


class LoadSampler:
    """The 1-minute load average every ``every`` seconds in a background thread (mean, max)."""

    def __init__(self, every: float = 30.0):
        self.values: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _run(self, every: float) -> None:
        while not self._stop.is_set():
            self.values.append(os.getloadavg()[0])
            self._stop.wait(every)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        """'mean x, max y' of the samples."""
        return f"mean {sum(self.values) / len(self.values):.1f}, max {max(self.values):.1f}"


class RunLog(logging.Handler):
    """Append one JSON line per finished run (the runner's 'wrote ... in' message) with CPU and wall."""

    def __init__(self, path: Path):
        super().__init__(logging.INFO)
        self.path = path
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()

    def emit(self, record: logging.LogRecord) -> None:
        if not record.getMessage().startswith("wrote "):
            return
        line = {"cpu_s": round(time.process_time() - self.cpu0, 2),
                "wall_s": round(time.perf_counter() - self.wall0, 2), "load1": round(os.getloadavg()[0], 1),
                "message": record.getMessage()}
        with self.path.open("a") as f:
            f.write(json.dumps(line) + "\n")


def peak_memory_mb() -> float:
    """Peak resident memory of this process, MB (ru_maxrss, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(config: Path, members: int, inventory_members: int, threads: int, out: Path,
            keep_members: bool, log_path: Path, hours: int | None = None) -> dict[str, float | str]:
    """CPU and wall seconds of the single run and the ensemble, file sizes, load (see the module doc)."""
    common = {"outputs__maps": False, "outputs__report": False, "compute__threads": threads,
              "compute__scheduler": "serial"}
    if hours is not None:
        common["run__end"] = (configure(config).run.start + timedelta(hours=hours)).isoformat()
    single_cfg = configure(config, uncertainty__members=0, uncertainty__meteorology__ensemble="none",
                           **common)
    # the same run (particle classes included, if the config has them) plus the members
    sources = list(dict.fromkeys([*single_cfg.uncertainty.sources, "inventory", "meteorology"]))
    ensemble_cfg = configure(config, uncertainty__members=inventory_members, uncertainty__sources=sources,
                             uncertainty__meteorology__ensemble="offsets",
                             uncertainty__meteorology__keep_member_files=keep_members, **common)
    load0 = os.getloadavg()
    start = single_cfg.run.start
    warm = configure(single_cfg, run__end=(start + timedelta(hours=1)).isoformat())
    run_study(warm, output=out / "warm.nc", progress=False)
    with LoadSampler() as load:
        single, cpu_single, wall_single = _timed(
            lambda: run_study(single_cfg, output=out / "single.nc", progress=False))
        handler = RunLog(log_path)
        with log_path.open("a") as f:
            f.write(json.dumps({"single_cpu_s": round(cpu_single, 2), "single_wall_s": round(wall_single, 2),
                                "members": members}) + "\n")
        logging.getLogger("airshed.runner").addHandler(handler)
        logging.getLogger("airshed.runner").setLevel(logging.INFO)
        try:
            ens, cpu_ens, wall_ens = _timed(lambda: run_with_members(
                ensemble_cfg, output=out / "ensemble.nc", progress=False, members=members))
        finally:
            logging.getLogger("airshed.runner").removeHandler(handler)
    size_single, size_ens = Path(single).stat().st_size, Path(ens).stat().st_size
    per_member = (cpu_ens - cpu_single) / max(members - 1, 1)
    projected = cpu_single + (OFFSET_MEMBERS - 1) * per_member
    return {
        "config": str(config), "hours": hours or "all", "members": members,
        "inventory_members": inventory_members,
        "threads": threads,
        "cpu_single_s": round(cpu_single, 2), "wall_single_s": round(wall_single, 2),
        "cpu_ensemble_s": round(cpu_ens, 2), "wall_ensemble_s": round(wall_ens, 2),
        "cpu_ratio_measured": round(cpu_ens / cpu_single, 3),
        "wall_ratio_measured": round(wall_ens / wall_single, 3),
        "cpu_per_member_over_single": round(per_member / cpu_single, 3),
        "cpu_ratio_27_members": round((cpu_ens if members == OFFSET_MEMBERS else projected) / cpu_single, 3),
        "ratio_27_is": "measured" if members == OFFSET_MEMBERS else "projected",
        "run_file_mb_single": round(size_single / 1e6, 2), "run_file_mb_ensemble": round(size_ens / 1e6, 2),
        "run_file_ratio": round(size_ens / size_single, 4),
        "peak_memory_mb": round(peak_memory_mb(), 1),
        "load_before": " ".join(f"{x:.1f}" for x in load0),
        "load_during": load.summary(),
        "load_after": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def project(log_path: Path, member_files: Path, inventory_members: int) -> dict[str, float | str]:
    """The 27-member CPU ratio projected from a stopped benchmark's log and its kept member files.

    Rerun members: the CPU between consecutive 'wrote' lines after the central run's. Statistics
    (reading the runs, quantiles and variance over the crossed ensemble, adding them to a copy of the
    central run file): computed and timed here over the central run and the member files, scaled linearly
    to 27 members. The copy (``projection_central.nc``) is the central run with the ensemble of the
    members that finished (e.g. for ``examples/verify_osse.py --ensemble``).
    """
    lines = [json.loads(t) for t in log_path.read_text().splitlines() if t.strip()]
    head = next(x for x in lines if "single_cpu_s" in x)
    runs = [x for x in lines if "cpu_s" in x]
    central, rerun = runs[0], runs[1:]
    member_cpu = [b["cpu_s"] - a["cpu_s"] for a, b in zip(runs[:-1], runs[1:], strict=True)]
    listed = [f"offset_{o.label}" for o in offset_members()]  # the run file's order of the members
    files = [member_files / "ensemble.nc"] + [member_files / f"ensemble_{n}.nc" for n in listed[1:]]
    names = [n for n, f in zip(listed, files, strict=True) if f.is_file()]
    files = [f for f in files if f.is_file()]
    copy = member_files / "projection_central.nc"
    shutil.copyfile(files[0], copy)
    cpu0 = time.process_time()
    datasets = [xr.open_dataset(f) for f in files]
    try:
        part = ensemble_statistics(datasets, InventoryEnsemble(inventory_members, seed=0),
                                   sampling_variances(datasets))
    finally:
        for ds in datasets:
            ds.close()
    part.attrs.update({"uncertainty_meteorology_ensemble": "offsets",
                       "uncertainty_meteorology_member_names": " ".join(names),
                       "uncertainty_meteorology_members_configured": OFFSET_MEMBERS})
    add_to_run_file(copy, part)
    cpu_stats = time.process_time() - cpu0
    single = head["single_cpu_s"]
    mean_member = sum(member_cpu) / len(member_cpu)
    statistics_27 = cpu_stats * OFFSET_MEMBERS / len(files)
    projected = central["cpu_s"] + (OFFSET_MEMBERS - 1) * mean_member + statistics_27
    return {
        "single_cpu_s": single, "central_run_cpu_s": central["cpu_s"],
        "rerun_members_measured": len(rerun), "member_cpu_s": [round(c, 2) for c in member_cpu],
        "member_cpu_over_single": [round(c / single, 3) for c in member_cpu],
        "mean_member_over_single": round(mean_member / single, 3),
        "statistics_cpu_s": round(cpu_stats, 2), "statistics_over_runs": len(files),
        "cpu_ratio_27_members": round(projected / single, 3), "ratio_27_is": "projected",
        "load_at_each_run_end": [x["load1"] for x in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "jjj.toml")
    parser.add_argument("--members", type=int, default=OFFSET_MEMBERS)
    parser.add_argument("--inventory-members", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hours", type=int, help="run only the first HOURS hours of the config's period")
    parser.add_argument("--out", type=Path, help="folder for the run files (default: a temporary one)")
    parser.add_argument("--keep-members", action="store_true", help="keep the members' run files in --out")
    parser.add_argument("--log", type=Path, help="JSON lines, one per finished run (default: in --out)")
    parser.add_argument("--project", type=Path, metavar="LOG", help="project from a stopped benchmark's log")
    parser.add_argument("--member-files", type=Path, help="with --project: the --out folder of that run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.project:
        result = project(args.project, args.member_files, args.inventory_members)
    else:
        with tempfile.TemporaryDirectory(prefix="airshed_bench_met_") as tmp:
            out = args.out or Path(tmp)
            out.mkdir(parents=True, exist_ok=True)
            result = measure(args.config, args.members, args.inventory_members, args.threads, out,
                             args.keep_members, args.log or out / "runs.jsonl", args.hours)
    for key, value in result.items():
        print(f"{key:30s} {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
