"""End-to-end runs of the pipeline on a small case (27 km grid, a few hours, built-in inputs)."""

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from cf_check import cf_failures
from conftest import builtin_case_config

from airshed.runner import run_study

pytestmark = pytest.mark.slow  # end-to-end runs (pyproject.toml markers)


@pytest.fixture(scope="module", params=["lagrangian", "plume"])
def run_file(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    cfg = builtin_case_config(tmp, request.param)
    path = run_study(cfg, progress=False)
    return path


def test_contributions_sum_to_concentration(run_file):
    ds = xr.open_dataset(run_file)
    conc_mean = ds["concentration"].mean("time")
    total = ds["contribution"].sum(("source_region", "sector"))
    scale = float(np.abs(conc_mean).max())
    assert scale > 0
    assert float(np.abs(total - conc_mean).max()) <= 1e-9 * scale
    rc = ds["receptor_contribution"].sum(("source_region", "sector"))
    np.testing.assert_allclose(rc, ds["receptor_concentration"], rtol=1e-9, atol=1e-12 * scale)
    # PM2.5 is primary + sulfate + nitrate everywhere
    c = ds["concentration"]
    parts = c.sel(species="PM2.5_primary") + c.sel(species="sulfate") + c.sel(species="nitrate")
    np.testing.assert_allclose(c.sel(species="PM2.5"), parts, rtol=1e-12, atol=0)


def test_source_receptor_rows_are_receptor_means(run_file):
    ds = xr.open_dataset(run_file)
    sr = ds["source_receptor"].sum("source_region")
    np.testing.assert_allclose(sr, ds["receptor_concentration"].mean("time"), rtol=1e-9)
    share = ds["transboundary_share"].sel(species="PM2.5")
    assert np.all((share >= 0) & (share <= 1))


def test_provenance_and_no_temporary_files_left(run_file):
    ds = xr.open_dataset(run_file)
    for key in ("airshed_config", "input_files", "seed", "numba_threads", "wall_time_s", "source",
                "time_coverage_start", "time_coverage_end"):
        assert key in ds.attrs, key
    files = json.loads(ds.attrs["input_files"])
    assert files and all(len(f["sha256"]) == 64 for f in files)
    assert not list(Path(run_file).parent.glob(".*.tmp"))
    if ds.attrs["core"] == "lagrangian":
        assert float(ds.attrs["mass_budget_max_relative_error"]) <= 1e-9
        b = ds["mass_budget"]
        lhs = b.sel(budget_term="emitted") + b.sel(budget_term="produced")
        rhs = sum(b.sel(budget_term=t) for t in ("airborne", "dry_deposited", "wet_deposited", "converted",
                                                    "decayed", "left_domain"))
        np.testing.assert_allclose(lhs, rhs, rtol=1e-9)


def test_run_file_passes_cf_checker(run_file, tmp_path):
    """compliance-checker (cf:1.8, offline) finds no error in the run file."""
    failed = cf_failures(run_file, tmp_path)
    assert failed[3] == []
    # what remains are recommendations: dimension order (the layout puts species after time)
    assert {name for name, _ in failed[2]} <= {"§2.4 Dimensions"}, failed[2]
