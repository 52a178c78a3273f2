"""The three recipes of README "Extending airshed": a core, a met reader, a dispersion scheme each added
by one class or function plus one registry entry, then used by name from a config.

The met reader recipe is :class:`conftest.UniformMetReader` (registered by the ``uniform_met`` fixture);
every test here runs through it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import xarray as xr
from conftest import single_stack_config

from airshed import cores
from airshed.errors import ConfigError
from airshed.model import plume as pk
from airshed.physics import dispersion as disp
from airshed.physics.dispersion_schemes import DISPERSION_SCHEMES, DispersionScheme
from airshed.runner import run_study


# --- a core: the ventilated box ------------------------------------------------------------------------
class VentilatedBoxCore:
    """Each cell a box of depth h ventilated by the 10 m wind: steady C = Q / (u h dx) (no transport).

    The box model of Hanna, Briggs & Hosker (1982, Handbook on Atmospheric Diffusion, section 4.7),
    cell by cell; only what the :class:`airshed.cores.Core` contract asks for.
    """

    periods_independent: ClassVar[bool] = True

    @classmethod
    def output_period_hours(cls, cfg):
        return 1

    @classmethod
    def check_config(cls, cfg):
        pass

    def __init__(self, cfg, inputs, mechanism, regions=None):
        self.grid, self.em = inputs.grid, inputs.emissions
        self.tracers = mechanism.emitted
        self.calm_hours = 0

    def period(self, met0, met1, emissions, t0, t1):
        g, em = self.grid, self.em
        out = np.zeros((em.ntag, len(self.tracers), g.ny * g.nx))
        ventilation = (np.hypot(met1["u10"].values, met1["v10"].values) * met1["blh"].values * g.dx).ravel()
        point_row, point_col = g.cell_index(em.points.x, em.points.y)
        for rows, cols, tags, rates in ((em.area.row, em.area.col, em.area_tag, emissions.area),
                                        (point_row, point_col, em.point_tag, emissions.points)):
            cell = rows * g.nx + cols
            np.add.at(out, (tags, slice(None), cell), rates * 1e9 / ventilation[cell, None])
        return out.reshape(em.ntag, len(self.tracers), g.ny, g.nx)

    def budget(self):
        return None


def test_a_registered_core_runs_from_the_config(tmp_path, uniform_met, monkeypatch):
    monkeypatch.setitem(cores.CORES, "box", "test_extending:VentilatedBoxCore")
    cfg = single_stack_config(tmp_path, "box", hours=2)
    path = run_study(cfg, progress=False)
    with xr.open_dataset(path) as ds:
        so2 = ds["concentration"].sel(species="SO2")
        expected = 10.0 * 1e9 / (5.0 * 800.0 * 5000.0)  # Q / (u h dx), ug m-3
        assert float(so2.max()) == pytest.approx(expected, rel=1e-12)
        assert int((so2 > 0).sum()) == 2  # the stack's cell, both hours
        assert ds.attrs["core"] == "box"
        np.testing.assert_allclose(ds["contribution"].sum(("source_region", "sector")),
                                   ds["concentration"].mean("time"), rtol=1e-12)


def test_an_unregistered_core_is_a_config_error(tmp_path, uniform_met):
    with pytest.raises(ConfigError, match=r"`run.core` = \"boxx\": expected 'plume' or 'lagrangian'"):
        single_stack_config(tmp_path, "boxx")


# --- a met reader: registered by the fixture --------------------------------------------------------------
def test_a_registered_met_format_feeds_both_cores(tmp_path, uniform_met):
    for core in ("plume", "lagrangian"):
        cfg = single_stack_config(tmp_path / core, core, hours=2, lagrangian={"particles_per_hour": 500})
        with xr.open_dataset(run_study(cfg, progress=False)) as ds:
            so2 = ds["concentration"].sel(species="SO2").isel(time=-1)
            # the uniform westerly carries the plume east along its row: the stack's row holds the maximum
            j, i = np.unravel_index(int(np.argmax(so2.values)), so2.shape)
            assert float(ds["x"][i]) > 0.0 and abs(float(ds["y"][j])) < 5000.0


def test_an_unregistered_met_format_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"`meteorology.format` = \"uniform\": expected 'era5', 'wrf'"):
        single_stack_config(tmp_path, "plume")


# --- a dispersion scheme --------------------------------------------------------------------------------
def linear_spread(inputs):
    """sigma_y = 0.08 x, sigma_z = 0.06 x (the near-source Briggs D slopes, without their bends)."""
    n = inputs.u.size
    zero, one = np.zeros(n), np.ones(n)
    return disp.SigmaParameters(0.08 * one, zero, zero, 0.06 * one, zero.copy(), zero.copy(), zero.copy(),
                                zero.copy(), zero.copy(), zero.copy())


def test_a_registered_dispersion_scheme_drives_the_plume(tmp_path, uniform_met, monkeypatch):
    monkeypatch.setitem(DISPERSION_SCHEMES, "linear-spread", DispersionScheme("tests", linear_spread))
    # the kernel with the scheme: a ground-level source without lid, C = Q / (pi u sy sz) on the centre line
    x = np.array([200.0, 1000.0, 5000.0])
    prepared = pk.prepare_point_sources(
        0.0, 0.0, 1.0, 0, 0.0, wind_speed=4.0, wind_direction_deg=270.0, wind_height=10.0,
        roughness_length=0.1, ustar=0.3, obukhov_length=1e6, mixing_height=np.inf, pg_class=4,
        air_temperature=280.0, option="linear-spread", wind_floor_height=0.0, min_wind_speed=0.1)
    conc = pk.plume_concentration_points(prepared, x, np.zeros(3), 1)[0]
    u = float(pk.plume_wind_speed(4.0, 10.0, 0.0, 0.1, 1e6, 0.0))
    np.testing.assert_allclose(conc, 1.0 / (np.pi * u * 0.08 * x * 0.06 * x), rtol=1e-12)
    # and from the config
    cfg = single_stack_config(tmp_path, "plume", hours=1, plume={"dispersion": "linear-spread"})
    with xr.open_dataset(run_study(cfg, progress=False)) as ds:
        assert float(ds["concentration"].sel(species="SO2").max()) > 0.0
    with pytest.raises(ConfigError, match=r"`plume.dispersion` = \"linear\": expected .*'linear-spread'"):
        single_stack_config(tmp_path, "plume", plume={"dispersion": "linear"})
