"""Meteorology members: HYSPLIT's offset ensemble on the built-in meteorology, ERA5 members as configs.

An offset member must read, at every model cell, exactly what the unshifted source gives one source grid
point away (checked against the same reader with its coordinates moved by one spacing), and its 3-D winds
at the heights 250 m above (checked against a source opened at those heights).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from test_meteorology import era5_files, small_grid

import airshed.pipeline.inputs as pipeline
from airshed.config import parse_config
from airshed.errors import ConfigError, DataError
from airshed.inputs.builtin_met import BuiltinMetParameters, ensure_builtin_met
from airshed.inputs.meteorology import open_meteorology
from airshed.inputs.meteorology.dataset import MetSource
from airshed.inputs.meteorology.offsets import MetOffset, OffsetMetSource, offset_members
from airshed.uncertainty.meteorology import member_config, met_members

HEIGHTS = [10.0, 50.0, 100.0, 200.0, 400.0, 700.0, 1000.0, 1500.0]
START = "2017-12-01T00:00"
RUN = {"name": "m", "start": "2017-12-01T00:00:00", "end": "2017-12-01T06:00:00", "core": "plume"}


@pytest.fixture(scope="module")
def builtin():
    """The built-in episode's ERA5 files and a model grid inside them (27 km over the plain)."""
    from datetime import datetime

    paths = ensure_builtin_met(pipeline.cache_dir() / "met", datetime(2017, 12, 1), BuiltinMetParameters())
    grid = small_grid(113.0, 36.0, 120.0, 42.0)
    return paths, grid


def _window(source, start: str = START) -> xr.Dataset:
    return source.window(start, np.datetime64(start) + np.timedelta64(3, "h"))


FRONT = "2017-12-04T12:00"
"""The cold front crosses the plain: every field varies in space."""


def test_offset_members_are_hysplits_27():
    members = offset_members()
    assert len(members) == 27 and members[0].is_zero
    assert {(m.x_grid_points, m.y_grid_points, m.height_m) for m in members} == set(
        itertools.product((-1, 0, 1), (-1, 0, 1), (-250.0, 0.0, 250.0)))
    assert len(offset_members(2, 0.0)) == 9
    assert {m.x_grid_points for m in offset_members(2, 0.0)} == {-2, 0, 2}


@pytest.mark.parametrize(("dx", "dy"), [(1, 0), (0, 1), (-1, -1)])
def test_horizontal_offset_reads_the_neighbouring_grid_point(builtin, dx, dy):
    paths, grid = builtin
    base = open_meteorology("era5", paths, grid, HEIGHTS)
    member = OffsetMetSource(base, MetOffset(dx, dy, 0.0))
    # the same data with its coordinates moved one spacing west/south: at a model cell it gives the value
    # one grid point east/north
    moved = open_meteorology("era5", paths, grid, HEIGHTS)
    spacing = abs(float(moved.reader.lon[1] - moved.reader.lon[0]))
    moved.reader.lon = moved.reader.lon - dx * spacing
    moved.reader.lat = moved.reader.lat - dy * spacing
    expected = _window(MetSource(moved.reader, grid, HEIGHTS, moved.roughness_length_m, "era5"), FRONT)
    got, unshifted = _window(member, FRONT), _window(base, FRONT)
    for name in ("u10", "v10", "t2m", "blh", "ustar", "obukhov_length", "u", "v", "precip"):
        np.testing.assert_allclose(got[name].values, expected[name].values, rtol=1e-9, atol=1e-9,
                                   err_msg=name)
        assert float(np.abs(got[name] - unshifted[name]).max()) > 1e-3, name  # the member differs
    assert got["u"].dims == unshifted["u"].dims and got.sizes == unshifted.sizes
    assert "offset x" in got.attrs["source"]


def test_vertical_offset_takes_the_winds_250_m_higher_and_keeps_the_surface(builtin):
    paths, grid = builtin
    base = open_meteorology("era5", paths, grid, HEIGHTS)
    up, down = (_window(OffsetMetSource(base, MetOffset(0, 0, h))) for h in (250.0, -250.0))
    higher = _window(open_meteorology("era5", paths, grid, [h + 250.0 for h in HEIGHTS]))
    unshifted = _window(base)
    for name in ("u", "v", "w"):
        np.testing.assert_allclose(up[name].values, higher[name].values, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(up["z"].values, HEIGHTS)
    for name in ("u10", "blh", "ustar", "t2m"):  # surface fields have no height: unchanged
        np.testing.assert_array_equal(up[name].values, unshifted[name].values)
    # 250 m lower: levels below the lowest model level take its wind
    lowest = unshifted["u"].isel(z=0).values
    for k, h in enumerate(HEIGHTS):
        if h - 250.0 <= HEIGHTS[0]:
            np.testing.assert_array_equal(down["u"].isel(z=k).values, lowest)
    k700 = HEIGHTS.index(700.0)
    lower = _window(open_meteorology("era5", paths, grid, [450.0]))
    np.testing.assert_allclose(down["u"].isel(z=k700).values, lower["u"].isel(z=0).values, rtol=1e-12)


def test_offset_beyond_the_meteorology_is_an_error_naming_the_files(tmp_path):
    grid = small_grid()
    # a source whose first column is the first one the model domain needs: nothing to spare to the west,
    # one column to spare to the east
    west, east = np.floor(grid.lon.min() * 4) / 4, np.ceil(grid.lon.max() * 4) / 4 + 0.25
    south, north = np.floor(grid.lat.min() * 4) / 4 - 0.5, np.ceil(grid.lat.max() * 4) / 4 + 0.5
    lon, lat = np.arange(west, east + 0.01, 0.25), np.arange(north, south - 0.01, -0.25)
    files = era5_files(tmp_path, lon=lon, lat=lat)
    base = open_meteorology("era5", files, grid, HEIGHTS)
    base.window("2024-01-10T00", "2024-01-10T01")
    OffsetMetSource(base, MetOffset(1, 0, 250.0)).window("2024-01-10T00", "2024-01-10T01")
    with pytest.raises(DataError, match=r"sl_new.nc.*1 grid point\(s\) short of that around the model"):
        OffsetMetSource(base, MetOffset(-1, 0, 0.0))


def test_offset_in_the_config_reaches_the_cores(builtin):
    cfg = parse_config({"run": RUN, "meteorology": {"offset": {"x_grid_points": 1, "height_m": 250.0}}})
    met, _ = pipeline.open_met(cfg, cfg.grid.build())
    assert isinstance(met, OffsetMetSource) and met.offset == MetOffset(1, 0, 250.0)
    plain, _ = pipeline.open_met(parse_config({"run": RUN}), cfg.grid.build())
    assert not isinstance(plain, OffsetMetSource)
    with pytest.raises(ConfigError, match=r"`meteorology.offset.x_grid_points` = 9: expected a value less"):
        parse_config({"run": RUN, "meteorology": {"offset": {"x_grid_points": 9}}})


def test_member_configs_offsets_and_era5_members(tmp_path):
    cfg = parse_config({"run": {**RUN, "output": str(tmp_path / "base.nc")},
                        "uncertainty": {"meteorology": {"ensemble": "offsets"}}})
    members = met_members(cfg)
    assert len(members) == 27 and members[0].offset.is_zero
    assert len(met_members(cfg, subset=5)) == 5
    one = member_config(cfg, members[5])
    assert (one.meteorology.offset.x_grid_points, one.meteorology.offset.y_grid_points,
            one.meteorology.offset.height_m) == (members[5].offset.x_grid_points,
                                                 members[5].offset.y_grid_points, members[5].offset.height_m)
    assert Path(one.run.output).name == f"base_{members[5].name}.nc"
    # ERA5 ensemble members: one list of files per member, read with meteorology.format
    for j in range(3):
        (tmp_path / f"m{j}").mkdir()
    files = [era5_files(tmp_path / f"m{j}") for j in range(3)]
    data = {"run": {**RUN, "output": str(tmp_path / "e.nc")},
            "meteorology": {"format": "era5", "paths": [str(p) for p in files[0]]},
            "uncertainty": {"meteorology": {"ensemble": "members",
                                            "member_paths": [[str(p) for p in f] for f in files]}}}
    ens = parse_config(data)
    members = met_members(ens)
    assert [m.name for m in members] == ["member00", "member01", "member02"]
    two = member_config(ens, members[2])
    assert [Path(p) for p in two.meteorology.paths] == [Path(p).resolve() for p in files[2]]
    assert two.meteorology.offset.x_grid_points == 0
    with pytest.raises(ConfigError, match="needs member meteorology files"):
        parse_config({"run": RUN, "uncertainty": {"meteorology": {
            "ensemble": "members", "member_paths": [[str(p) for p in f] for f in files[:2]]}}})
