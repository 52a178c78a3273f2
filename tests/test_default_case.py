"""The default case end to end, as a user's first ``airshed run examples/jjj.toml`` does it.

CI runs its reduced form (the shipped config, six hours on a 27 km grid: particle core, built-in met and
inventory, figures and report); ``AIRSHED_FULL_VALIDATION=1`` runs the config exactly as shipped (five
days at 9 km, about two minutes plus compilation on two cores).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import airshed

pytestmark = pytest.mark.slow  # end-to-end runs (pyproject.toml markers)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "jjj.toml"
FULL = os.environ.get("AIRSHED_FULL_VALIDATION") == "1"


def test_default_case_end_to_end(tmp_path):
    reduced = {} if FULL else {"run__end": "2017-12-01T06:00:00", "grid__cell_km": 27.0}
    ds = airshed.run(EXAMPLE, run__output=str(tmp_path / "jjj_winter.nc"), **reduced)
    with ds:
        assert ds.attrs["core"] == "lagrangian" and ds.sizes["time"] == (120 if FULL else 6)
        # the mass budget of every tracer closes
        assert float(ds.attrs["mass_budget_max_relative_error"]) <= 1e-9
        budget = ds.airshed.mass_budget()
        assert budget.loc["produced", "sulfate"] > 0 and budget.loc["produced", "nitrate"] > 0
        # the tags add up, PM2.5 is primary + sulfate + nitrate
        conc = ds["concentration"]
        np.testing.assert_allclose(ds["contribution"].sum(("source_region", "sector")), conc.mean("time"),
                                   rtol=1e-9, atol=1e-12 * float(conc.max()))
        parts = conc.sel(species="PM2.5_primary") + conc.sel(species="sulfate") + conc.sel(species="nitrate")
        np.testing.assert_allclose(conc.sel(species="PM2.5"), parts, rtol=1e-12)
        shares = ds.airshed.transboundary_shares()
        assert shares.between(0.0, 1.0).all() and shares.loc["Beijing"] > 0
        sr = ds.airshed.source_receptor()
        np.testing.assert_allclose(sr.sum(axis=1), ds.airshed.receptor_series().mean(), rtol=1e-9)
        files = json.loads(ds.attrs["input_files"])
        assert len(files) >= 4 and all(len(f["sha256"]) == 64 for f in files)
    figures = sorted((tmp_path / "jjj_winter_figures").glob("*.png"))
    assert len(figures) >= 5 and all(f.stat().st_size > 10_000 for f in figures)
    assert (tmp_path / "jjj_winter.html").stat().st_size > 100_000
