"""The attribution check: switching a region off removes exactly its tagged contribution (linear model).

Small case for both cores: 27 km grid, 6 hours of the built-in winter episode, the province region set,
the built-in inventory. :func:`small_run` caches run files per (core, zero-out region, scenario) for the
whole session, so test_scenarios.py reuses the baselines computed here. The particle core holds to
rounding because zero-out and scenario factors scale particle masses while the baseline rates decide the
particles (common random numbers): every particle follows the same random path in both runs.
"""

from __future__ import annotations

import copy
import functools
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import airshed.runner as pipeline
from airshed.config import AirshedConfig, parse_config
from airshed.cores.plume import PlumeCore
from airshed.outputs.netcdf import write_netcdf_atomic

HOURS = 6
REGION = "Hebei"  # the largest emitter of the province set, felt everywhere in the domain

SMALL_CASE: dict = {
    "run": {"name": "small", "start": "2017-12-01T00:00:00", "end": f"2017-12-01T{HOURS:02d}:00:00",
            "seed": 11},
    "grid": {"cell_km": 27.0},
    "regions": {"set": "provinces", "population": "builtin"},
    "meteorology": {"format": "builtin"},
    "emissions": {"inventory": "builtin", "builtin": {"year": 2017}},
    "lagrangian": {"particles_per_hour": 2000},
    "plume": {"area_source_subcells": 1},
}
"""The small case, as a config dict (the core is added per test)."""

CORE_TABLES: dict[str, dict] = {
    # Source depletion by dry deposition costs a per-source table in Python (~10 s per model hour here);
    # linearity, which is what these tests check, holds with or without it.
    "plume": {"chemistry": {"dry_deposition_velocity_m_s": 0.0}},
    "lagrangian": {},
}

_RUN_DIR = tempfile.TemporaryDirectory(prefix="airshed_zero_out_")

def small_config(core: str, scenarios: list | None = None, base: dict | None = None, **run) -> AirshedConfig:
    """Config of the small case for ``core`` (``base``: another config dict to override the same way)."""
    data = copy.deepcopy(base) if base is not None else {}
    for table, values in (*SMALL_CASE.items(), *CORE_TABLES[core].items()):
        merged = data.setdefault(table, {})
        for key, value in values.items():
            if isinstance(value, dict):
                merged.setdefault(key, {}).update(value)
            else:
                merged[key] = value
    data["run"].update(core=core, **run)
    data.pop("outputs", None)
    if scenarios is not None:
        data["scenarios"] = scenarios
    return parse_config(data, config_dir=_RUN_DIR.name)


@functools.cache
def _cached_run(core: str, zero_out: str | None, scenarios_json: str, scenario: str | None) -> Path:
    scenarios = json.loads(scenarios_json) or None
    cfg = small_config(core, scenarios)
    name = f"{core}_{zero_out or 'base'}_{scenario or 'none'}.nc"
    return pipeline.run_study(cfg, output=Path(_RUN_DIR.name) / name, zero_out=zero_out, progress=False,
                              **({"scenario": scenario} if scenario else {}))


def small_run(core: str, zero_out: str | None = None, scenarios: list | None = None,
              scenario: str | None = None) -> Path:
    """Run file of the small case (computed once per session and arguments)."""
    return _cached_run(core, zero_out, json.dumps(scenarios or []), scenario)


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
        pipeline.run_study(small_config("plume"), output=Path(_RUN_DIR.name) / "x.nc", zero_out="Hebie",
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
