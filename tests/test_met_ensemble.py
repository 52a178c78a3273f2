"""Meteorology members run end to end: serially and as Dask members, merged into the run file's ensemble.

A reduced case (3 hours, 27 km, the plume core, the 9 horizontal HYSPLIT offsets of which ``--members 3``
run) checks the orchestration: the unperturbed member is the central run, the others are reruns with
displaced meteorology, the crossed ensemble's variance splits into the inventory and the meteorology
parts by the law of total variance, and Dask members (a local cluster of two worker processes) give the
serial result bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from conftest import builtin_case_config
from typer.testing import CliRunner

from airshed.cli import app
from airshed.errors import AirshedInputError
from airshed.met_ensemble import run_with_members
from airshed.outputs.tables import transboundary_table
from airshed.uncertainty.ensemble import InventoryEnsemble, ensemble_statistics

OFFSETS = {"ensemble": "offsets", "vertical_offset_m": 0.0}


def _config(tmp_path, **compute):
    return builtin_case_config(
        tmp_path, "plume", hours=3, chemistry={"dry_deposition_velocity_m_s": 0.0},
        outputs={"maps": False, "report": False}, compute=compute or {"scheduler": "serial"},
        uncertainty={"members": 40, "seed": 3, "meteorology": {**OFFSETS, "keep_member_files": True}})


@pytest.fixture(scope="module")
def serial_ensemble(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("met_members")
    cfg = _config(tmp)
    path = run_with_members(cfg, output=tmp / "central.nc", progress=False, members=3)
    return cfg, path


def test_members_are_reruns_with_displaced_meteorology_merged_into_the_run_file(serial_ensemble):
    cfg, path = serial_ensemble
    names = ["x-1_y+0_z+0m", "x+1_y+0_z+0m"]
    files = [path.with_name(f"central_offset_{n}.nc") for n in names]
    with xr.open_dataset(path) as central:
        assert central.attrs["uncertainty_meteorology_members"] == 3
        assert central.attrs["uncertainty_meteorology_members_configured"] == 9
        assert central.attrs["uncertainty_meteorology_member_names"].split() == [
            "offset_x+0_y+0_z+0m", *(f"offset_{n}" for n in names)]
        assert central.attrs["uncertainty_sources_sampled"] == "inventory, meteorology"
        # the console's interval says it spans the crossed ensemble, not the inventory alone
        assert transboundary_table(central).caption.endswith(
            "over 3 meteorology x 40 inventory members; sampled: inventory, meteorology")
        runs = [central.load()] + [xr.open_dataset(f).load() for f in files]
    # the members moved the plumes: their source-receptor tables differ from the central run's
    for member in runs[1:]:
        diff = np.abs(member["source_receptor"] - runs[0]["source_receptor"]).max()
        assert float(diff) > 1e-3 * float(runs[0]["source_receptor"].max())
    # the run file's ensemble is the crossed ensemble of exactly these runs
    expect = ensemble_statistics(runs, InventoryEnsemble(40, seed=3))
    for name in ("source_receptor_quantile", "transboundary_share_quantile", "source_receptor_variance"):
        np.testing.assert_allclose(runs[0][name].values, expect[name].values, rtol=1e-12, err_msg=name)
    var = runs[0]["source_receptor_variance"].sel(species="PM2.5")
    met = var.sel(uncertainty_source="meteorology").values
    assert np.all(np.isfinite(met)) and met.max() > 0.0
    assert np.all(np.isnan(var.sel(uncertainty_source="sampling")))
    # the 90 % interval of the transboundary share contains the central run's share (PM2.5, Beijing)
    q = runs[0]["transboundary_share_quantile"].sel(species="PM2.5", receptor_region="Beijing").values
    share = float(runs[0]["transboundary_share"].sel(species="PM2.5", receptor_region="Beijing"))
    assert q[0] <= q[1] <= q[2] and q[2] > q[0]
    assert q[0] - 0.05 <= share <= q[2] + 0.05


@pytest.mark.slow  # two worker processes (their Numba caches seeded from this process's: airshed.jit)
def test_dask_members_give_the_serial_ensemble_bit_for_bit(serial_ensemble, tmp_path):
    _, serial = serial_ensemble
    cfg = _config(tmp_path, scheduler="local-cluster", workers=2, threads=1, memory_limit="2GB")
    cfg.uncertainty.meteorology.keep_member_files = False
    path = run_with_members(cfg, output=tmp_path / "central.nc", progress=False, members=3)
    assert sorted(p.name for p in tmp_path.glob("*.nc")) == ["central.nc"]  # member files removed
    with xr.open_dataset(path) as a, xr.open_dataset(serial) as b:
        for name in ("source_receptor_quantile", "transboundary_share_quantile",
                     "receptor_concentration_quantile", "source_receptor_variance"):
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_members_option_and_its_checks(tmp_path, monkeypatch):
    cfg = _config(tmp_path)
    for wrong in (1, 10):  # the config's ensemble has the 9 horizontal offsets
        with pytest.raises(AirshedInputError, match=f"--members {wrong}: expected 2 to 9"):
            run_with_members(cfg, output=tmp_path / "x.nc", progress=False, members=wrong)
    plain = cfg.model_copy(update={"uncertainty": cfg.uncertainty.model_copy(update={
        "meteorology": cfg.uncertainty.meteorology.model_copy(update={"ensemble": "none"})})})
    not_sampled = cfg.model_copy(update={"uncertainty": cfg.uncertainty.model_copy(update={
        "sources": ["inventory"]})})
    for no_members in (plain, not_sampled):
        with pytest.raises(AirshedInputError, match="runs no meteorology members"):
            run_with_members(no_members, output=tmp_path / "x.nc", progress=False, members=2)
    assert not list(tmp_path.glob("*.nc"))
    seen = {}

    def fake(cfg, output=None, zero_out=None, progress=True, scenario=None, members=None):
        seen["members"] = members
        return output

    monkeypatch.setattr("airshed.met_ensemble.run_with_members", fake)
    toml = tmp_path / "c.toml"
    from airshed.config import dump_config

    toml.write_text(dump_config(cfg))
    result = CliRunner().invoke(app, ["-q", "run", str(toml), "--members", "4", "-o", str(tmp_path / "o.nc")])
    assert result.exit_code == 0, result.output
    assert seen["members"] == 4
    bad = CliRunner().invoke(app, ["-q", "run", str(toml), "--members", "1"])
    assert bad.exit_code == 2


def test_a_stopped_ensemble_leaves_no_file(tmp_path, monkeypatch):
    # stopped (Ctrl-C, SIGTERM) after the central run and one member had written their files: the run is
    # the whole ensemble, so neither those files nor the central one without its ensemble stay behind
    def first_member_then_stop(compute, task, arguments, progress=True, label=""):
        yield task(*arguments[0])
        raise KeyboardInterrupt

    monkeypatch.setattr("airshed.met_ensemble.map_members", first_member_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_with_members(_config(tmp_path), output=tmp_path / "central.nc", progress=False, members=3)
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".nc", ".tmp")], list(tmp_path.iterdir())
    # an earlier run's file at the output stays as it was: the central run replaces it only with its ensemble
    earlier = tmp_path / "earlier.nc"
    earlier.write_bytes(b"an earlier run file")
    with pytest.raises(KeyboardInterrupt):
        run_with_members(_config(tmp_path), output=earlier, progress=False, members=3)
    assert [p.name for p in tmp_path.iterdir() if p.suffix in (".nc", ".tmp")] == ["earlier.nc"]
    assert earlier.read_bytes() == b"an earlier run file"


def test_uncertainty_command_refuses_to_drop_the_meteorology_members(serial_ensemble):
    _, path = serial_ensemble
    before = path.stat().st_mtime_ns
    result = CliRunner().invoke(app, ["uncertainty", str(path), "--members", "50"])
    assert result.exit_code == 2, result.output
    assert "3 meteorology members" in result.output and "rerun `airshed run`" in result.output
    assert path.stat().st_mtime_ns == before


def _run_file_values(path) -> dict[str, np.ndarray]:
    with xr.open_dataset(path) as ds:
        return {name: ds[name].values for name in ds.data_vars}


@pytest.mark.parametrize("core", ["plume", "lagrangian"])
def test_members_on_shared_inputs_write_the_run_files_they_write_alone(tmp_path, monkeypatch, core):
    """Shared inputs (read once, meteorology windows handed on) change no bit of any member's run file."""
    # Met read from files has no window cache on disk; switch off the built-in met's one, which would
    # otherwise serve windows before the shared reader sees them and make the read count depend on it.
    monkeypatch.setattr("airshed.pipeline.study.met_cache_folder", lambda *args: None)
    from airshed.inputs.meteorology.offsets import MetOffset
    from airshed.met_ensemble import SharedInputs
    from airshed.runner import run_study
    from airshed.uncertainty.meteorology import MetMember, member_config

    cfg = builtin_case_config(tmp_path, core, hours=2, outputs={"maps": False, "report": False},
                              compute={"scheduler": "serial"})
    shared = SharedInputs.read(cfg)
    run_study(cfg, output=tmp_path / "central.nc", progress=False, inputs=shared.central)
    reads = shared.reader.reads
    # a vertical member reads the central run's windows again, then one displaced both ways
    members = [MetMember("z", offset=MetOffset(0, 0, 250.0)),
               MetMember("xyz", offset=MetOffset(1, -1, -250.0))]
    for member in members:
        member_cfg = member_config(cfg, member)
        together = run_study(member_cfg, output=tmp_path / f"{member.name}_shared.nc", progress=False,
                             inputs=shared.for_member(member_cfg, member))
        alone = run_study(member_cfg, output=tmp_path / f"{member.name}_alone.nc", progress=False)
        a, b = _run_file_values(together), _run_file_values(alone)
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{member.name}: {name}")
        if member.name == "z":
            assert shared.reader.reads == reads  # no window read again from the files
    assert shared.reader.reads > reads  # the displaced member read its own window
