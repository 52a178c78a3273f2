"""Derived windows of the built-in met are cached on disk; a warm run equals a cold one bit for bit."""

import shutil

import numpy as np
import pytest
import xarray as xr
from conftest import builtin_case_config

from airshed.pipeline.study import prepare_study
from airshed.runner import run_study

pytestmark = pytest.mark.slow  # end-to-end runs (pyproject.toml markers)


def test_warm_met_window_cache_gives_the_cold_run(tmp_path):
    cfg = builtin_case_config(tmp_path, "plume", hours=2)
    folder = prepare_study(cfg).met.cache
    assert folder is not None
    shutil.rmtree(folder, ignore_errors=True)
    cold = run_study(cfg, output=tmp_path / "cold.nc", progress=False)
    written = sorted(folder.glob("*.nc"))
    assert len(written) == 1  # one day-long window covers the 2 hours
    with xr.open_dataset(written[0]) as ds:
        assert "airshed_met_adjustments" in ds.attrs and {"u", "v", "blh"} <= set(ds.data_vars)
    warm = run_study(cfg, output=tmp_path / "warm.nc", progress=False)
    with xr.open_dataset(cold) as a, xr.open_dataset(warm) as b:
        for name in a.data_vars:
            assert np.array_equal(a[name].values, b[name].values, equal_nan=a[name].dtype.kind == "f"), name
        assert a.attrs["met_adjustments"] == b.attrs["met_adjustments"]


def test_met_from_files_is_not_cached(tmp_path):
    from airshed.pipeline.study import met_cache_folder

    cfg = builtin_case_config(tmp_path, "plume", hours=1)
    study = prepare_study(cfg)
    era5 = cfg.model_copy(update={"meteorology": cfg.meteorology.model_copy(update={"format": "era5"})})
    assert met_cache_folder(era5, study.inputs, tmp_path) is None
    windier = builtin_case_config(tmp_path, "plume", hours=1,
                                  meteorology={"builtin": {"stagnant_wind_speed_m_s": 2.5}})
    assert met_cache_folder(cfg, study.inputs, tmp_path) != met_cache_folder(windier, study.inputs, tmp_path)
