"""The built-in idealised haze episode: what it promises, read back through the ERA5 reader."""

from dataclasses import replace
from datetime import datetime

import numpy as np
import pytest
import xarray as xr

from airshed.grids import builtin_case
from airshed.grids.grid import Grid
from airshed.inputs.builtin_met import (
    BUILTIN_CASE_GEOGRAPHY,
    BuiltinMetParameters,
    ensure_builtin_met,
    write_builtin_era5,
)
from airshed.inputs.meteorology import open_meteorology

START = datetime(2024, 1, 10)
# reduced episode for CI: 2 days, outbreak after 1 day, 0.5 degree source grid
PARAMS = replace(BuiltinMetParameters(), days=2.0, stagnation_days=1.0, resolution_deg=0.5)


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    return ensure_builtin_met(tmp_path_factory.mktemp("met_cache"), START, PARAMS)


def test_defaults_match_the_config_contract():
    p = BuiltinMetParameters()
    assert (p.days, p.stagnation_days, p.stagnant_wind_speed_m_s, p.stagnant_wind_direction_deg) == (
        5.0,
        3.5,
        1.5,
        190.0,
    )
    assert (p.outbreak_wind_speed_m_s, p.outbreak_wind_direction_deg, p.transition_hours) == (9.0, 315.0, 6.0)
    assert (p.day_mixing_height_stagnant_m, p.day_mixing_height_clean_m, p.night_mixing_height_m) == (
        500.0,
        1400.0,
        120.0,
    )
    assert (p.max_sensible_heat_flux_w_m2, p.surface_temperature_k, p.resolution_deg) == (120.0, 272.0, 0.25)


def test_era5_layout(episode):
    with xr.open_dataset(episode[0]) as sl, xr.open_dataset(episode[1]) as pl:
        assert "valid_time" in sl.dims and "pressure_level" in pl.dims
        assert sl.latitude[0] > sl.latitude[-1]  # descending, as from the CDS
        assert sl.sshf.attrs["units"] == "J m**-2" and sl.tp.attrs["units"] == "m"
        assert sl.sizes["valid_time"] == 49
        # geopotential increases upward (hypsometric), 1000 hPa near the ground at ~1020 hPa surface pressure
        z = pl.z.isel(valid_time=0, latitude=10, longitude=10).values / 9.80665
        assert (np.diff(z) > 0).all() and 100 < z[0] < 250


def _beijing_series(episode):
    with xr.open_dataset(episode[0]) as sl:
        return sl.sel(latitude=40.0, longitude=116.5).load()


def test_stagnation_then_outbreak(episode):
    b = _beijing_series(episode)
    speed = np.hypot(b.u10, b.v10).values
    direction = (np.degrees(np.arctan2(-b.u10, -b.v10)).values + 360.0) % 360.0
    assert speed[:12] == pytest.approx(1.5, abs=0.01)
    assert direction[:12] == pytest.approx(190.0, abs=0.5)
    assert speed[-6:] == pytest.approx(9.0, abs=0.05)
    assert direction[-6:] == pytest.approx(315.0, abs=0.5)
    blh = b.blh.values
    assert blh[:24].max() == pytest.approx(500.0, rel=0.05)  # stagnant day
    assert blh[12:22].min() == pytest.approx(120.0, rel=1e-3)  # night (20-06 LST)
    assert blh[-24:].max() == pytest.approx(1400.0, rel=0.02)  # clean day after the outbreak
    assert b.t2m.values[-24:].mean() < b.t2m.values[:24].mean() - 6.0  # colder
    assert (b.tcc.values[-12:] < 0.01).all()  # cloud-free


def test_diurnal_cycle(episode):
    b = _beijing_series(episode)
    shf_up = -b.sshf.values / 3600.0
    # 06 UTC = 14 LST: heating; 18 UTC = 02 LST: cooling
    assert shf_up[6] > 80.0 and shf_up[18] < 0.0
    assert b.blh.values[7] > 3 * b.blh.values[18]
    assert b.t2m.values[8] > b.t2m.values[20]


def test_read_back_on_default_9km_grid(episode):
    grid = Grid.from_bbox(*builtin_case.BBOX, cell_km=9.0, crs=builtin_case.PROJECTION)
    src = open_meteorology("era5", episode, grid, [10.0, 100.0, 500.0, 1500.0])
    ds = src.window("2024-01-10T04", "2024-01-10T06")
    assert ds.sizes == {"time": 3, "z": 4, "y": grid.ny, "x": grid.nx}
    assert all(np.isfinite(ds[v]).all() for v in ds.data_vars if v != "cloud_cover")
    assert (ds.shf > 0).all() and (ds.obukhov_length < 0).all()
    # the front reaches the north-west corner early (hour ~5): unstable classes where the wind is still light
    light = np.hypot(ds.u10, ds.v10) < 2.0
    assert light.mean() > 0.8 and (ds.pg_class.where(light) <= 3).sum() == light.sum()
    speed = np.hypot(ds.u, ds.v)
    assert (speed.isel(z=-1) > speed.isel(z=0)).all()  # wind increases with height
    night = src.window("2024-01-10T18", "2024-01-10T18")
    calm = np.hypot(night.u10, night.v10) < 2.0
    assert calm.mean() > 0.5 and (night.pg_class.where(calm) >= 5).sum() == calm.sum()
    assert (night.wstar == 0).all() and (night.obukhov_length > 0).all()


def test_deterministic_and_cached(tmp_path, episode):
    again = write_builtin_era5(tmp_path, START, PARAMS, BUILTIN_CASE_GEOGRAPHY)
    for a, b in zip(episode, again, strict=True):
        with xr.open_dataset(a) as x, xr.open_dataset(b) as y:
            xr.testing.assert_identical(x, y)
    mtime = episode[0].stat().st_mtime_ns
    assert ensure_builtin_met(episode[0].parent.parent, START, PARAMS) == episode
    assert episode[0].stat().st_mtime_ns == mtime


def _build_episode(cache_dir: str) -> None:
    ensure_builtin_met(cache_dir, START, PARAMS)


def test_two_processes_building_the_episode_at_once_both_get_whole_files(tmp_path):
    """Two runs (or cluster workers) on a fresh cache write the same files at once: each writes a temporary
    file of its own and renames it, so both finish and the files read back whole (a fixed temporary name let
    one process publish a file the other was still writing: 'NetCDF: HDF error', or a permission error)."""
    import multiprocessing

    cache = tmp_path / "cache"
    # another writer's temporary file in the way (the old fixed name) does not stop this one
    folder_paths = ensure_builtin_met(tmp_path / "probe", START, PARAMS)
    blocked = cache / folder_paths[0].parent.name
    blocked.mkdir(parents=True)
    (blocked / "era5_single_levels.nc.tmp").mkdir()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_build_episode, [str(cache)] * 2)
    paths = ensure_builtin_met(cache, START, PARAMS)
    for built, probe in zip(paths, folder_paths, strict=True):
        with xr.open_dataset(built) as a, xr.open_dataset(probe) as b:
            xr.testing.assert_identical(a.load(), b.load())
    assert sorted(p.name for p in blocked.iterdir()) == ["era5_pressure_levels.nc", "era5_single_levels.nc",
                                                         "era5_single_levels.nc.tmp"]


def test_the_cache_files_are_ordinary_files_readable_as_the_umask_allows(episode):
    """The cache is written through airshed.atomic_files like every output: the published files take the
    umask's permissions, not the temporary file's private 0600."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    assert {oct(p.stat().st_mode & 0o777) for p in episode} == {oct(0o666 & ~umask)}


def test_a_full_disk_while_building_the_cache_is_a_one_line_error_and_leaves_nothing(tmp_path, monkeypatch):
    """ENOSPC while writing a cache file: DiskFullError naming AIRSHED_CACHE_DIR, nothing left behind."""
    import errno

    from airshed.atomic_files import DiskFullError

    def no_room(self, path, *args, **kwargs):
        open(path, "wb").write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", no_room)
    with pytest.raises(DiskFullError, match="era5_single_levels.nc.*AIRSHED_CACHE_DIR") as caught:
        ensure_builtin_met(tmp_path, START, PARAMS)
    assert "\n" not in str(caught.value)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_cache_folder_that_cannot_be_made_is_a_one_line_error(tmp_path, monkeypatch):
    """mkdir failing (here ENOSPC) while making a cache folder: one line quoting the reason and naming
    AIRSHED_CACHE_DIR, not an internal error."""
    import errno
    from pathlib import Path

    from airshed.atomic_files import make_folder
    from airshed.errors import AirshedInputError

    def no_room(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "mkdir", no_room)
    expected = ("cannot create the cache folder .*: No space left on device; choose another with the "
                "environment variable AIRSHED_CACHE_DIR")
    with pytest.raises(AirshedInputError, match=expected):
        make_folder(tmp_path / "met")
