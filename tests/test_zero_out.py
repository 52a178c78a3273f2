"""The attribution check: switching a region off removes exactly its tagged contribution (linear model).

Small case for both cores: 27 km grid, 6 hours of the built-in winter episode, the province region set,
the built-in inventory. :func:`small_run` caches run files per (core, zero-out region, scenario) for the
whole session, so test_scenarios.py reuses the baselines computed here. The particle core holds to
rounding because zero-out and scenario factors scale particle masses while the baseline rates decide the
particles (common random numbers): every particle follows the same random path in both runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import SMALL_RUN_DIR, small_config, small_run

import airshed.runner as pipeline
from airshed.cores.plume import PlumeCore
from airshed.outputs.netcdf import write_netcdf_atomic

pytestmark = pytest.mark.slow  # end-to-end runs (pyproject.toml markers)

REGION = "Hebei"  # the largest emitter of the province set, felt everywhere in the domain


def _rel_max(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| relative to max |b| (the field's max)."""
    scale = float(np.abs(b).max())
    assert scale > 0
    return float(np.abs(a - b).max()) / scale


CORES = [pytest.param("plume"), pytest.param("lagrangian")]


@pytest.mark.parametrize("core", CORES)
def test_contributions_sum_to_concentration(core):
    with xr.open_dataset(small_run(core)) as ds:
        mean = ds["concentration"].mean("time").values
        assert _rel_max(ds["contribution"].sum(("source_region", "sector")).values, mean) <= 1e-9
        series = ds["receptor_concentration"].values
        assert _rel_max(ds["receptor_contribution"].sum(("source_region", "sector")).values, series) <= 1e-9


@pytest.mark.parametrize("core", CORES)
def test_zero_out_removes_exactly_the_tagged_contribution(core):
    with xr.open_dataset(small_run(core)) as base, xr.open_dataset(small_run(core, zero_out=REGION)) as zo:
        assert zo.attrs["zero_out_region"] == REGION
        assert float(np.abs(zo["emission_total"].sel(source_region=REGION)).max()) == 0.0
        assert float(base["emission_total"].sel(source_region=REGION).sum()) > 0
        # period-mean field: baseline - zero-out == the region's tagged contribution (all its sectors)
        tagged = base["contribution"].sel(source_region=REGION).sum("sector").values
        difference = (base["concentration"].mean("time") - zo["concentration"].mean("time")).values
        assert float(np.abs(tagged).max()) > 1e-3 * float(np.abs(base["concentration"]).max())
        assert _rel_max(difference, tagged) <= 1e-6
        # hourly receptor-region series, likewise
        tagged_series = base["receptor_contribution"].sel(source_region=REGION).sum("sector").values
        series = (base["receptor_concentration"] - zo["receptor_concentration"]).values
        assert _rel_max(series, tagged_series) <= 1e-6
        # the secondary species too, each against its own scale (both cores form them)
        for species in ("sulfate", "nitrate"):
            own = tagged[list(base["species"].values).index(species)]
            assert float(np.abs(own).max()) > 0
            assert _rel_max(difference[list(base["species"].values).index(species)], own) <= 1e-6
        # and nothing else changed: the other regions' contributions are those of the baseline
        others = [r for r in base["source_region"].values if r != REGION]
        assert _rel_max(zo["contribution"].sel(source_region=others).values,
                        base["contribution"].sel(source_region=others).values) <= 1e-6


def test_zero_out_of_an_unknown_region_is_an_input_error():
    from airshed.errors import AirshedInputError

    with pytest.raises(AirshedInputError, match=r"--zero-out 'Hebie': unknown region; valid .*Hebei"):
        pipeline.run_study(small_config("plume"), output=Path(SMALL_RUN_DIR.name) / "x.nc", zero_out="Hebie",
                           progress=False)


# --- interrupted runs leave nothing that looks complete ---------------------------------------------
def test_interrupted_run_leaves_no_file(tmp_path, monkeypatch):
    """A core failing midway: no output file, no temporary file, an older file of the name untouched."""
    calls = []

    def failing_period(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("simulated crash in hour 3")
        return np.zeros((self.ntag, len(self.tracers), *self.grid.shape))  # hours 1-2 "succeed"

    monkeypatch.setattr(PlumeCore, "period", failing_period)
    target = tmp_path / "run.nc"
    with pytest.raises(RuntimeError, match="hour 3"):
        pipeline.run_study(small_config("plume"), output=target, progress=False)
    assert len(calls) == 3
    assert list(tmp_path.iterdir()) == []

    target.write_bytes(b"an older run")
    with pytest.raises(RuntimeError, match="hour 3"):
        calls.clear()
        pipeline.run_study(small_config("plume"), output=target, progress=False)
    assert list(tmp_path.iterdir()) == [target] and target.read_bytes() == b"an older run"


def test_run_interrupted_while_adding_its_inventory_ensemble_leaves_no_file(tmp_path, monkeypatch):
    """The inventory ensemble goes into the run file before the file appears (newcomer trial: Ctrl-C or
    SIGTERM there left a finished-looking run file without the ranges its config asked for)."""
    import airshed.uncertainty.ensemble as ensemble

    cfg = small_config("plume")
    cfg = cfg.model_copy(update={"uncertainty": cfg.uncertainty.model_copy(update={"members": 20})})
    real = ensemble.ensemble_statistics

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ensemble, "ensemble_statistics", interrupted)
    target = tmp_path / "run.nc"
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_study(cfg, output=target, progress=False)
    assert list(tmp_path.iterdir()) == []

    monkeypatch.setattr(ensemble, "ensemble_statistics", real)
    pipeline.run_study(cfg, output=target, progress=False)
    assert list(tmp_path.iterdir()) == [target]
    with xr.open_dataset(target) as ds:
        assert "transboundary_share_quantile" in ds and int(ds.attrs["uncertainty_members"]) == 20


def test_writer_failing_midway_leaves_no_file(tmp_path, monkeypatch):
    """The NetCDF writer dying after writing part of the file leaves neither the file nor its temp."""
    def half_write(self, path, *args, **kwargs):
        Path(path).write_bytes(b"CDF\x01 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", half_write)
    ds = xr.Dataset({"a": ("x", np.arange(3.0))})
    with pytest.raises(OSError, match="disk full"):
        write_netcdf_atomic(ds, tmp_path / "out.nc")
    assert list(tmp_path.iterdir()) == []
