"""The Python API: overrides, validated assignment, open_run and the ds.airshed accessor; the README's
notebook example is run as written (with the example config's path made absolute)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from runfile_fixture import synthetic_run_dataset

import airshed
from airshed.errors import AirshedInputError, ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "jjj.toml"


def test_overrides_set_nested_keys_and_are_validated():
    cfg = airshed.configure(EXAMPLE, run__core="plume", grid__cell_km=27.0, meteorology__builtin__days=4.0,
                            run__end="2017-12-03T00:00:00")
    assert (cfg.run.core, cfg.grid.cell_km, cfg.meteorology.builtin.days) == ("plume", 27.0, 4.0)
    assert cfg.run.output == EXAMPLE.parent / "jjj_winter.nc" and cfg.source == EXAMPLE
    with pytest.raises(ConfigError, match=r"`grid.cell_km` = 0: expected a value greater than 0"):
        airshed.configure(EXAMPLE, grid__cell_km=0)
    with pytest.raises(ConfigError, match=r"unknown key `grid.cell_kmm`; did you mean `grid.cell_km`\?"):
        airshed.configure(EXAMPLE, grid__cell_kmm=27.0)
    # a cross-table check runs on the whole config: the run outlasts the built-in episode
    with pytest.raises(ConfigError, match="longer than the built-in meteorology"):
        airshed.configure(cfg, run__end="2017-12-05T12:00:00")
    # a config object and a dict round-trip
    assert airshed.configure(cfg) == cfg
    assert airshed.configure({"run": {"name": "d", "start": "2017-12-01T00:00", "end": "2017-12-01T01:00",
                                      "core": "plume"}}).run.name == "d"


def test_config_tables_validate_assignments():
    cfg = airshed.configure(EXAMPLE)
    cfg.plume.dispersion = "briggs-rural"
    assert cfg.plume.dispersion == "briggs-rural"
    with pytest.raises(ConfigError, match=r"`plume.dispersion` = \"briggs\": expected 'briggs-rural'"):
        cfg.plume.dispersion = "briggs"
    with pytest.raises(ConfigError, match=r"`meteorology.builtin.days` = -1.0: expected a value greater"):
        cfg.meteorology.builtin.days = -1.0
    with pytest.raises(ConfigError, match=r"`run.core` = 3: expected a string|`run.core` = 3"):
        cfg.run.core = 3


def test_open_run_errors_name_the_file(tmp_path):
    with pytest.raises(AirshedInputError, match="run file .*nope.nc not found"):
        airshed.open_run(tmp_path / "nope.nc")
    (tmp_path / "text.nc").write_text("not netcdf")
    with pytest.raises(AirshedInputError, match="cannot read run file .*text.nc as NetCDF"):
        airshed.open_run(tmp_path / "text.nc")


def test_accessor_tables_are_the_run_file_variables(tmp_path):
    ds = synthetic_run_dataset()
    sr = ds.airshed.source_receptor("PM2.5")
    assert isinstance(sr, pd.DataFrame) and sr.index.name == "receptor_region"
    assert list(sr.columns) == [str(r) for r in ds["source_region"].values]
    np.testing.assert_allclose(sr.sum(axis=1), ds["receptor_concentration"].sel(species="PM2.5").mean("time"),
                               rtol=1e-9)
    np.testing.assert_array_equal(ds.airshed.source_receptor("SO2", weighting="area"),
                                  ds["source_receptor_area"].sel(species="SO2").values)
    shares = ds.airshed.transboundary_shares()
    np.testing.assert_array_equal(shares.values, ds["transboundary_share"].sel(species="PM2.5").values)
    beijing = ds.airshed.contributions("Beijing")
    series = ds.airshed.receptor_series()
    assert beijing.sum().sum() == pytest.approx(float(series["Beijing"].mean()), rel=1e-9)
    assert set(ds.airshed.pm25_by_precursor().columns) == {str(e) for e in ds["emitted_species"].values}
    assert ds.airshed.mass_budget().shape == ds["mass_budget"].shape
    with pytest.raises(AirshedInputError, match="unknown species 'PM10'"):
        ds.airshed.source_receptor("PM10")
    with pytest.raises(AirshedInputError, match="unknown receptor region 'Paris'"):
        ds.airshed.contributions("Paris")


def readme_notebook_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- notebook example: tests/test_api.py runs this block -->\n```python\n(.*?)```",
                      readme, re.S)
    assert block, "README has no notebook example"
    return block.group(1)


@pytest.mark.slow
def test_readme_notebook_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = readme_notebook_example().replace('"examples/jjj.toml"', repr(str(EXAMPLE)))
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    ds = namespace["ds"]
    assert Path(ds.encoding["source"]) == tmp_path / "jjj_quick.nc"
    assert ds.attrs["core"] == "plume" and ds.sizes["time"] == 2
    sr = namespace["sr"]
    assert sr.loc["Beijing"].sum() > 0 and float(ds["concentration"].sel(species="sulfate").max()) > 0
    assert namespace["cfg"].plume.dispersion == "briggs-rural"
    assert "Beijing" in capsys.readouterr().out
