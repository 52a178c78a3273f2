"""Scaling out on Dask: partitions, a 2-process LocalCluster against a serial run, killed workers."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import cloudpickle
import dask
import numpy as np
import pytest
import xarray as xr
from conftest import builtin_case_config

from airshed import scale
from airshed.cores import core_class
from airshed.pipeline.units import work_units
from airshed.runner import run_study

pytestmark = pytest.mark.slow  # end-to-end runs (pyproject.toml markers)

CLUSTER = {"scheduler": "local-cluster", "workers": 2, "threads": 1, "memory_limit": "2GB"}


def float_variables(path: Path) -> dict[str, np.ndarray]:
    with xr.open_dataset(path) as ds:
        return {name: ds[name].values for name in ds.data_vars if ds[name].dtype.kind == "f"}


def test_work_units_cover_the_run_once():
    plume = work_units(core_class("plume"), 50, 24)
    assert [(u.first, u.stop, u.windows) for u in plume] == [(0, 24, None), (24, 48, None), (48, 50, None)]
    particles = work_units(core_class("lagrangian"), 50, 24, window_periods=6, n_units=4)
    assert [(u.first, u.stop, u.windows) for u in particles] == [
        (0, 12, range(0, 2)), (12, 24, range(2, 4)), (24, 42, range(4, 7)), (42, 50, range(7, 9))]
    assert [u.windows for u in work_units(core_class("lagrangian"), 50, 24, 6, n_units=100)] == [
        range(w, w + 1) for w in range(9)]
    together = work_units(core_class("lagrangian"), 50, 24, 6)
    assert [(u.first, u.stop, u.windows) for u in together] == [(0, 50, range(9))]


WINDOWED = {"release_window_h": 1, "particles_per_hour": 3000}
"""Release windows of 1 h, so a short run has several."""


@pytest.fixture(scope="module")
def serial_runs(tmp_path_factory):
    """Serial runs of the small case (plume in 1-hour chunks, particles in 1-hour release windows)."""
    tmp = tmp_path_factory.mktemp("serial")
    out = {}
    for core, hours in (("plume", 2), ("lagrangian", 4)):
        cfg = builtin_case_config(tmp, core, hours=hours, compute={"chunk_hours": 1}, lagrangian=WINDOWED)
        out[core] = run_study(cfg, output=tmp / f"{core}.nc", progress=False)
    return out


@pytest.mark.parametrize(("n_units", "threads"), [(2, 1), (3, 2), (4, 1)])
def test_release_window_units_give_the_serial_result(n_units, threads, serial_runs, tmp_path, monkeypatch):
    """Any grouping of 4 release windows into units, on 1 or 2 Numba threads, gives the serial bits."""
    monkeypatch.setattr(scale, "unit_count", lambda study, slots: n_units)
    cfg = builtin_case_config(tmp_path, "lagrangian", hours=4, lagrangian=WINDOWED,
                              compute={"scheduler": "threads", "workers": 2, "threads": threads})
    path = run_study(cfg, output=tmp_path / "units.nc", progress=False)
    serial, units = float_variables(serial_runs["lagrangian"]), float_variables(path)
    with xr.open_dataset(path) as ds:  # the provenance names the threads the units ran on
        assert ds.attrs["numba_threads"] == str(threads)
    assert serial.keys() == units.keys() and "mass_budget" in serial
    assert np.abs(serial["concentration"]).max() > 0
    for name, a in serial.items():
        assert np.array_equal(a, units[name], equal_nan=True), name


def test_particle_sampling_classes_in_release_window_units_give_the_serial_result(tmp_path, monkeypatch):
    """Sampling classes (batch means) ride on the windows: 3 units give the serial bits, standard errors too.

    A unit that starts later continues each source's particle count over the run (the class of a particle
    follows it), so its particles fall in the classes they fall in serially.
    """
    tables = {"lagrangian": WINDOWED, "outputs": {"maps": False, "report": False},
              "uncertainty": {"particle_classes": 4, "sources": ["sampling"]}}
    serial = builtin_case_config(tmp_path, "lagrangian", hours=4, **tables)
    a = float_variables(run_study(serial, output=tmp_path / "serial.nc", progress=False))
    monkeypatch.setattr(scale, "unit_count", lambda study, slots: 3)
    units = builtin_case_config(tmp_path, "lagrangian", hours=4, **tables,
                                compute={"scheduler": "threads", "workers": 2, "threads": 1})
    b = float_variables(run_study(units, output=tmp_path / "units.nc", progress=False))
    assert a.keys() == b.keys() and "source_receptor_standard_error" in a
    assert np.abs(a["source_receptor_standard_error"]).max() > 0
    for name, value in a.items():
        assert np.array_equal(value, b[name], equal_nan=True), name


def test_release_window_units_repeat_no_particle_work(tmp_path):
    """Units follow only their own windows' particles: particle-steps add up to the serial run's."""
    from airshed.model.lagrangian import ParticleRun
    from airshed.pipeline.study import prepare_study
    from airshed.pipeline.units import run_unit, with_starts

    cfg = builtin_case_config(tmp_path, "lagrangian", hours=4, lagrangian=WINDOWED)
    study = prepare_study(cfg)
    steps: list[int] = []
    original = ParticleRun.step_once

    def counting(self, met, t, dt):
        steps.append(self.n)
        original(self, met, t, dt)

    ParticleRun.step_once = counting
    try:
        counts = []
        for n_units in (1, 4):
            steps.clear()
            units = work_units(study.core_class, study.n_periods, 24, 1, n_units)
            results = [run_unit(study, u) for u in with_starts(study, units)]
            counts.append(sum(steps))
            assert [w.window for r in results for w in r.windows] == [0, 1, 2, 3]
    finally:
        ParticleRun.step_once = original
    assert counts[0] > 0 and counts[0] == counts[1]


@pytest.mark.parametrize("core", ["lagrangian", "plume"])
def test_local_cluster_gives_the_serial_result(core, serial_runs, tmp_path):
    """2 worker processes: bitwise for the particle core (release windows), within 1e-12 for the plume."""
    hours = 2 if core == "plume" else 4
    cfg = builtin_case_config(tmp_path, core, hours=hours, compute={**CLUSTER, "chunk_hours": 1},
                              lagrangian=WINDOWED)
    path = run_study(cfg, output=tmp_path / "cluster.nc", progress=False)
    serial, cluster = float_variables(serial_runs[core]), float_variables(path)
    assert serial.keys() == cluster.keys()
    assert np.abs(serial["concentration"]).max() > 0
    for name, a in serial.items():
        b = cluster[name]
        if core == "lagrangian":
            assert np.array_equal(a, b, equal_nan=True), name
        else:
            scale_ = np.nanmax(np.abs(a)) if a.size else 0.0
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12 * scale_, err_msg=name)


def _kill_first_attempt_of_unit_1(cfg, zero_out, scenario, unit, threads):
    """Dask task that kills its worker process the first time it runs unit 1 (marker file in the cache)."""
    from airshed import scale as worker_scale

    marker = Path(os.environ["AIRSHED_CACHE_DIR"]) / f"killed-{os.environ['AIRSHED_KILL_TAG']}"
    if unit.index == 1 and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return worker_scale.run_unit_task(cfg, zero_out, scenario, unit, threads)


def _always_kill(cfg, zero_out, scenario, unit, threads):
    """Dask task that kills its worker process whenever it runs unit 1."""
    from airshed import scale as worker_scale

    if unit.index == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return worker_scale.run_unit_task(cfg, zero_out, scenario, unit, threads)


@pytest.fixture
def by_value(monkeypatch):
    """Ship this module's task wrappers to the workers by value (they cannot import the test module)."""
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield monkeypatch
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_killed_worker_is_retried_and_output_is_unchanged(serial_runs, tmp_path, by_value):
    """Dask reruns the unit of a killed worker elsewhere; the run file equals the serial one bit for bit."""
    by_value.setenv("AIRSHED_KILL_TAG", tmp_path.name)
    by_value.setattr(scale, "run_unit_task", _kill_first_attempt_of_unit_1)
    cfg = builtin_case_config(tmp_path, "plume", hours=2, compute={**CLUSTER, "chunk_hours": 1})
    path = run_study(cfg, output=tmp_path / "killed.nc", progress=False)
    assert (Path(os.environ["AIRSHED_CACHE_DIR"]) / f"killed-{tmp_path.name}").exists()
    serial, retried = float_variables(serial_runs["plume"]), float_variables(path)
    for name, a in serial.items():
        assert np.array_equal(a, retried[name], equal_nan=True), name


def test_unit_that_keeps_killing_workers_stops_the_run_cleanly(tmp_path, by_value):
    """Past allowed-failures the run stops with a ClusterError naming the unit; no output file is left."""
    by_value.setattr(scale, "run_unit_task", _always_kill)
    cfg = builtin_case_config(tmp_path, "plume", hours=2, compute={**CLUSTER, "chunk_hours": 1})
    out = tmp_path / "never.nc"
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with pytest.raises(scale.ClusterError, match=r"periods 1-1 killed every Dask worker.*memory_limit"):
            run_study(cfg, output=out, progress=False)
    assert not out.exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(scale, "CONNECT_TIMEOUT_S", 1)
    cfg = builtin_case_config(tmp_path, "plume", hours=1, compute={"scheduler": "tcp://127.0.0.1:9"})
    with pytest.raises(scale.ClusterError, match=r"tcp://127.0.0.1:9.*no Dask scheduler answered"):
        run_study(cfg, output=tmp_path / "x.nc", progress=False)


@pytest.mark.parametrize(("core", "chunk", "expected"), [("lagrangian", 24, [0, 1, 2]), ("plume", 2, [0, 2])])
def test_serial_runs_write_hours_as_they_are_done(core, chunk, expected, tmp_path, monkeypatch):
    """The particle run writes each hour when it ends; the plume run each time chunk when merged."""
    from airshed.outputs.netcdf import IncrementalNetCDF

    written: list[tuple[str, int, int]] = []
    write = IncrementalNetCDF.write

    def recording_write(self, name, first, values):
        written.append((name, first, values.shape[0]))
        write(self, name, first, values)

    monkeypatch.setattr(IncrementalNetCDF, "write", recording_write)
    hours = 3 if core == "lagrangian" else 4
    cfg = builtin_case_config(tmp_path, core, hours=hours, compute={"chunk_hours": chunk})
    path = run_study(cfg, output=tmp_path / "run.nc", progress=False)
    assert [first for name, first, _ in written if name == "concentration"] == expected
    assert sum(n for name, _, n in written if name == "concentration") == hours
    with xr.open_dataset(path) as ds:
        assert not np.isnan(ds["concentration"].values).any()


def _numba_cache_of_this_worker() -> tuple[str | None, str]:
    import numba

    import airshed.jit  # noqa: F401  (applies AIRSHED_NUMBA_CACHE)

    return os.environ.get("AIRSHED_NUMBA_CACHE"), numba.config.CACHE_DIR


def test_local_cluster_workers_compile_into_caches_of_their_own(tmp_path):
    """numba issue 4807: each worker process of a LocalCluster has its own Numba cache folder."""
    from airshed.config import ComputeConfig

    compute = ComputeConfig(scheduler="local-cluster", workers=2, threads=1, memory_limit="1GB")
    with scale.dask_client(compute) as client:
        caches = client.run(_numba_cache_of_this_worker)
    modes, folders = zip(*caches.values(), strict=True)
    assert set(modes) == {"per-process"}
    assert len(set(folders)) == 2 and all(Path(f).name.startswith("process-") for f in folders)


def test_threads_cluster_worker_has_no_memory_limit_of_its_own():
    """The in-process worker would measure this whole process against ``memory_limit`` and, past 80 % of
    it, pause for good (a hung run, no message); a threads run is checked against the machine instead."""
    from airshed.config import ComputeConfig

    with scale.dask_client(ComputeConfig(scheduler="threads", workers=2, memory_limit="256MB")) as client:
        workers = client.scheduler_info()["workers"].values()
        assert [w["memory_limit"] for w in workers] == [0]
        # the process is already far above 256 MB, yet tasks run
        assert client.submit(sum, [1, 2]).result(timeout=30) == 3


@pytest.mark.parametrize("mode", ["per-process", "off", "shared"])
def test_numba_cache_policy_per_process(tmp_path, mode):
    """Two live processes get different cache slots; a slot is reused once its process has ended."""
    script = ("import numba, airshed.jit as j, sys; print(j.CACHE, numba.config.CACHE_DIR); "
              "sys.stdout.flush(); sys.stdin.read()")
    env = {**os.environ, "AIRSHED_NUMBA_CACHE": mode, "NUMBA_CACHE_DIR": str(tmp_path)}

    def start():
        return subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                env=env, text=True)

    first, second = start(), start()
    lines = [first.stdout.readline().split(), second.stdout.readline().split()]
    first.communicate(""), second.communicate("")
    third = start()
    again = third.stdout.readline().split()
    third.communicate("")
    if mode == "per-process":
        assert {line[1] for line in lines} == {str(tmp_path / "process-0"), str(tmp_path / "process-1")}
        assert again == ["True", str(tmp_path / "process-0")]
    else:
        assert {line[0] for line in lines} == {"True" if mode == "shared" else "False"}
        assert {line[1] for line in lines} == {str(tmp_path)}  # NUMBA_CACHE_DIR as numba reads it


def test_a_new_cache_slot_loads_the_shared_cache_s_kernels_instead_of_compiling(tmp_path):
    """A worker's slot is seeded from the shared cache (airshed.jit.seed_cache_slot): a hit, no compile."""
    script = ("import numpy as np, numba, airshed.jit; "
              "from airshed.model.lagrangian import mark_sampled as k; "
              "t = np.zeros((2, 3), np.bool_); k(np.array([0, 2]), np.array([1, 0]), t); "
              "assert t.sum() == 2; print(numba.config.CACHE_DIR, sum(k.stats.cache_hits.values()), "
              "sum(k.stats.cache_misses.values()))")

    def run(mode):
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "AIRSHED_NUMBA_CACHE": mode}
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert run("shared") == [str(tmp_path / "cache"), "0", "1"]  # compiled into the shared cache
    assert run("per-process") == [str(tmp_path / "cache" / "process-0"), "1", "0"]  # seeded: loaded
    slot = tmp_path / "cache" / "process-0"
    assert {p.suffix for p in slot.rglob("lagrangian.mark_sampled-*")} == {".nbi", ".nbc"}
    # a slot keeps its own entries: a second seeding copies nothing it already has
    from airshed import jit

    assert jit.seed_cache_slot(slot, Path(jit.__file__).parent, str(tmp_path / "cache")) == 0


def test_seeding_takes_the_in_tree_cache_first_then_the_user_wide_one_and_keeps_the_slot_s_own(
        tmp_path, monkeypatch):
    """Where Numba keeps a kernel without a slot: beside the module, else (read-only) its user-wide folder."""
    from numba.core.caching import UserProvidedCacheLocator

    from airshed import jit

    package = tmp_path / "pkg"
    (package / "__pycache__").mkdir(parents=True)
    (package / "mod.py").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    sub = UserProvidedCacheLocator.get_suitable_cache_subpath(str(package / "module.py"))
    user_wide = tmp_path / "xdg" / "numba" / sub
    user_wide.mkdir(parents=True)
    for folder, tag in ((package / "__pycache__", b"in-tree"), (user_wide, b"user-wide")):
        for name in ("mod.both-1.py311.nbi", "mod.both-1.py311.1.nbc"):
            (folder / name).write_bytes(tag)
    (user_wide / "mod.wide-5.py311.nbi").write_bytes(b"user-wide")
    (user_wide / "mod.wide-5.py311.1.nbc").write_bytes(b"user-wide")
    slot = tmp_path / "slot"
    (slot / sub).mkdir(parents=True)
    (slot / sub / "mod.own-9.py311.nbi").write_bytes(b"own")
    (package / "__pycache__" / "mod.own-9.py311.nbi").write_bytes(b"in-tree")
    assert jit.seed_cache_slot(slot, package, None) == 2
    got = {p.name: p.read_bytes() for p in (slot / sub).iterdir()}
    assert got == {"mod.both-1.py311.nbi": b"in-tree", "mod.both-1.py311.1.nbc": b"in-tree",
                   "mod.wide-5.py311.nbi": b"user-wide", "mod.wide-5.py311.1.nbc": b"user-wide",
                   "mod.own-9.py311.nbi": b"own"}
    assert jit.seed_cache_slot(slot, package, None) == 0


def test_a_kernel_that_cannot_be_copied_is_left_to_compile(tmp_path, monkeypatch):
    """A full disk while seeding: nothing half-written in the slot, no error (the process compiles)."""
    from airshed import jit

    package = tmp_path / "pkg"
    (package / "__pycache__").mkdir(parents=True)
    (package / "mod.py").write_text("")
    (package / "__pycache__" / "mod.f-1.py311.nbi").write_bytes(b"index")
    (package / "__pycache__" / "mod.f-1.py311.1.nbc").write_bytes(b"data")
    real = Path.write_bytes

    def full_disk(self, data):
        if "mod.f-1.py311.nbi" in self.name:  # the index's temporary file
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert jit.seed_cache_slot(tmp_path / "slot", package, None) == 0
    assert not [p.name for p in (tmp_path / "slot").rglob("*.nbi*")]  # no index, no temporary file
