"""The meteorology the model sees: :func:`open_meteorology` and :class:`MetSource`.

``MetSource.window(start, end)`` reads one time window from the source files, interpolates it to the
model grid, rotates winds to grid-relative components and derives the boundary-layer quantities with
:mod:`airshed.physics.boundary_layer`. The result is an in-memory :class:`xarray.Dataset` with dims
``(time, z, y, x)`` / ``(time, y, x)`` (the contract the pipeline uses):

======================  =========================================================================
u10, v10                10 m wind, grid-relative x/y components, m s-1
u, v, w                 wind at ``z`` (m above ground), grid-relative, m s-1 (w = 0 when not given)
t2m                     2 m air temperature, K
blh                     mixing height, m (met value, else diagnosed; see ``comment``; >= 20 m)
shf                     surface sensible heat flux, W m-2, upward positive
ustar                   friction velocity, m s-1
obukhov_length          Monin-Obukhov length, m (+/-1e5 when neutral)
wstar                   Deardorff convective velocity scale, m s-1 (0 when stable)
precip                  precipitation rate, mm h-1
cloud_cover             total cloud fraction, 0-1 (NaN when the source has none)
surface_pressure        Pa (101325 when the source has none)
air_density             near-surface dry-air density, kg m-3
z0                      roughness length, m
pg_class                Pasquill-Gifford class, int8 1..6 = A..F
======================  =========================================================================

Stability: with a sensible heat flux in the source, u* (from the source, else iterated from the 10 m
wind) and L come from similarity and the PG class from L and z0 (Golder 1972). Without heat flux, the
PG class comes from Turner's (1964) method (10 m wind, cloud cover, solar elevation) and u*, L, H are
those of the class's representative 1/L.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import xarray as xr

from airshed.errors import AirshedInputError, DataError
from airshed.grids.grid import Grid
from airshed.inputs.meteorology.common import check_finite, check_period, files_label
from airshed.inputs.meteorology.formats import MetReader, met_format
from airshed.inputs.meteorology.plausibility import AdjustmentLog, Where, check_met_window
from airshed.inputs.meteorology.regrid import rotate_earth_to_grid, scalar_at_heights, winds_at_heights
from airshed.physics.boundary_layer import (
    MIN_MIXING_HEIGHT_M,
    NEUTRAL_OBUKHOV_LENGTH_M,
    air_density_array,
    convective_velocity_scale_array,
    diagnosed_mixing_height_array,
    pasquill_class_from_obukhov_array,
    pasquill_class_turner_array,
    solar_elevation_deg,
    surface_layer_from_heat_flux,
    surface_layer_from_stability,
)

log = logging.getLogger(__name__)

STANDARD_PRESSURE_PA = 101325.0
MIN_ROUGHNESS_LENGTH_M = 1.0e-4
"""Smallest roughness length used, m (smooth open water; ERA5's fsr over the sea is of this order)."""
WARN_WHEN_DERIVED = frozenset({"shf", "blh", "surface_pressure", "precip"})
"""Derived variables that change the physics enough to warn about (the others are logged as info)."""

_ATTRS: dict[str, dict[str, str]] = {
    "u10": {"standard_name": "x_wind", "units": "m s-1", "long_name": "10 m wind, grid x component"},
    "v10": {"standard_name": "y_wind", "units": "m s-1", "long_name": "10 m wind, grid y component"},
    "u": {"standard_name": "x_wind", "units": "m s-1", "long_name": "wind, grid x component"},
    "v": {"standard_name": "y_wind", "units": "m s-1", "long_name": "wind, grid y component"},
    "w": {"standard_name": "upward_air_velocity", "units": "m s-1"},
    "t2m": {"standard_name": "air_temperature", "units": "K", "long_name": "2 m air temperature"},
    "blh": {
        "standard_name": "atmosphere_boundary_layer_thickness",
        "units": "m",
        "long_name": "mixing height",
    },
    "shf": {"standard_name": "surface_upward_sensible_heat_flux", "units": "W m-2"},
    "ustar": {"units": "m s-1", "long_name": "friction velocity"},
    "obukhov_length": {"units": "m", "long_name": "Monin-Obukhov length"},
    "wstar": {"units": "m s-1", "long_name": "Deardorff convective velocity scale"},
    "precip": {"standard_name": "lwe_precipitation_rate", "units": "mm h-1"},
    "cloud_cover": {"standard_name": "cloud_area_fraction", "units": "1"},
    "surface_pressure": {"standard_name": "surface_air_pressure", "units": "Pa"},
    "air_density": {
        "standard_name": "air_density",
        "units": "kg m-3",
        "long_name": "near-surface air density",
    },
    "z0": {"standard_name": "surface_roughness_length", "units": "m"},
    "pg_class": {
        "long_name": "Pasquill-Gifford stability class",
        "units": "1",
        "flag_values": "1 2 3 4 5 6",
        "flag_meanings": "A B C D E F",
    },
}


def _as_datetime64(t: datetime | np.datetime64 | str) -> np.datetime64:
    return (
        np.datetime64(t, "ns") if not isinstance(t, datetime) else np.datetime64(t.replace(tzinfo=None), "ns")
    )


class MetSource:
    """An opened meteorology source, ready to hand out time windows on the model grid."""

    def __init__(self, reader: MetReader, grid: Grid, heights_m: Sequence[float], roughness_length_m: float,
                 fmt: str):
        heights = np.asarray(heights_m, dtype=np.float64)
        if heights.ndim != 1 or heights.size == 0 or not (heights > 0).all() or (np.diff(heights) <= 0).any():
            raise AirshedInputError(
                f"meteorology heights_m must be positive and increasing, got {list(heights_m)}"
            )
        if not (roughness_length_m > 0 and np.isfinite(roughness_length_m)):
            raise AirshedInputError(
                f"roughness_length_m must be a positive number of metres, got {roughness_length_m!r}"
            )
        reader.check_units()  # unknown units fail when the files are opened, not in the middle of a run
        self.reader = reader
        self.grid = grid
        self.heights_m = heights
        self.roughness_length_m = float(roughness_length_m)
        self.format = fmt
        self.label = files_label(reader.paths)
        self._interp = reader.interpolator(grid)
        self._angle = grid.grid_north_angle
        self._warned: set[str] = set()
        self.adjustments = AdjustmentLog()
        self.derived = self._derived_variables()
        for key, method in self.derived.items():
            level = logging.WARNING if key in WARN_WHEN_DERIVED else logging.INFO
            log.log(level, "%s: %s not in the input: %s", self.label, key, method)

    def _derived_variables(self) -> dict[str, str]:
        """Variables the source lacks and how they are derived instead (the run file's ``met_derived``)."""
        has = self.reader.provides
        out: dict[str, str] = {}
        if "shf" not in has:
            out["shf"] = ("stability from Turner's (1964) method (10 m wind, cloud cover, solar elevation); "
                          "heat flux, u* and L of the class's representative 1/L")
        elif "ustar" not in has:
            out["ustar"] = "from the 10 m wind and the heat flux by Monin-Obukhov similarity (iterated)"
        if "blh" not in has:
            out["blh"] = ("diagnosed from u* and L: 0.3 u*/|f|, or Zilitinkevich's (1972) 0.4 sqrt(u* L/|f|) "
                          "when stable and lower; in convective hours this is a lower estimate; floored at "
                          f"{MIN_MIXING_HEIGHT_M:g} m")
        if "z0" not in has:
            out["z0"] = (f"the configured meteorology.roughness_length_m = {self.roughness_length_m:g} m "
                         "everywhere")
        if "surface_pressure" not in has:
            out["surface_pressure"] = f"standard sea-level pressure {STANDARD_PRESSURE_PA:g} Pa everywhere"
        if "precip" not in has:
            out["precip"] = "set to 0: no wet removal"
        if "w" not in has:
            out["w"] = "set to 0 (no resolved vertical motion; turbulence still mixes vertically)"
        return out

    @property
    def times(self) -> np.ndarray:
        """Valid times of the source (datetime64[ns], UTC, uniform step)."""
        return self.reader.times

    def window(
        self, start: datetime | np.datetime64 | str, end: datetime | np.datetime64 | str
    ) -> xr.Dataset:
        """Meteorology for start <= time <= end (UTC) on the model grid; see the module docstring."""
        t0, t1 = _as_datetime64(start), _as_datetime64(end)
        if t1 < t0:
            raise AirshedInputError(f"meteorology window: end {t1} is before start {t0}")
        check_period(self.times, t0, t1, self.label)
        times = self.times[(self.times >= t0) & (self.times <= t1)]
        if times.size == 0:
            raise DataError(f"{self.label}: no meteorology time step between {t0} and {t1}")
        raw = self.reader.load(times[0], times[-1], self._interp.slices)
        resets = raw.pop("precip_reset", None)
        lat, lon = self.reader.window_lonlat(self._interp.slices)
        check_met_window(raw, Where(times, lat, lon, self.reader.source_of), self._warned,
                         self.reader.level_order_upward)
        f = {}
        for key, values in raw.items():
            f[key] = self._interp.apply(values)
            check_finite(f[key], key, f"{self.label} ({self.format})")
        if resets is not None:
            self.adjustments.record("precip: negative differences of WRF accumulated rain (bucket resets or "
                                    "restarts) set to 0", resets, times, self.reader.source_of("precip"))
        return self._derive(times, f)

    def _floor(self, key: str, values: np.ndarray, low: float, times: np.ndarray, what: str) -> np.ndarray:
        """``max(values, low)``, counting the raised values (model grid) in :attr:`adjustments`."""
        self.adjustments.record(what, values < low, times, self.reader.source_of(key))
        return np.maximum(values, low)

    def _derive(self, times: np.ndarray, f: dict[str, np.ndarray]) -> xr.Dataset:
        shape2 = (times.size,) + self.grid.shape
        comments: dict[str, str] = {}
        u10e, v10e, t2m = f["u10"], f["v10"], f["t2m"]
        speed10 = np.hypot(u10e, v10e)
        if "z0" in f:
            z0 = self._floor("z0", np.broadcast_to(f["z0"], shape2), MIN_ROUGHNESS_LENGTH_M, times,
                             f"z0 below {MIN_ROUGHNESS_LENGTH_M:g} m raised to {MIN_ROUGHNESS_LENGTH_M:g} m")
        else:
            z0 = np.full(shape2, self.roughness_length_m)
            comments["z0"] = f"not in the input; configured roughness_length_m = {self.roughness_length_m} m"
        if "surface_pressure" in f:
            p_s = f["surface_pressure"]
        else:
            p_s = np.full(shape2, STANDARD_PRESSURE_PA)
            comments["surface_pressure"] = "not in the input; standard sea-level pressure used"
        rho = air_density_array(p_s, t2m)
        if "shf" in f:
            shf = f["shf"]
            ustar, obukhov = surface_layer_from_heat_flux(speed10, z0, shf, t2m, rho, ustar=f.get("ustar"))
            pg = pasquill_class_from_obukhov_array(obukhov, z0)
        else:
            if "cloud_cover" not in f:
                raise DataError(
                    f"{self.label}: neither a sensible heat flux nor a cloud cover was found; stability "
                    "needs "
                    "one of them (Turner's method uses cloud cover)"
                )
            elevation = solar_elevation_deg(times[:, None, None], self.grid.lon, self.grid.lat)
            pg, inv_l = pasquill_class_turner_array(speed10, f["cloud_cover"], elevation, z0)
            ustar, shf = surface_layer_from_stability(speed10, z0, inv_l, t2m, rho)
            if "ustar" in f:
                ustar = f["ustar"]
            with np.errstate(divide="ignore"):
                obukhov = np.clip(1.0 / inv_l, -NEUTRAL_OBUKHOV_LENGTH_M, NEUTRAL_OBUKHOV_LENGTH_M)
            comments["shf"] = comments["obukhov_length"] = (
                "from the Turner (1964) class (no heat flux in the input)"
            )
        if "blh" in f:
            blh = self._floor("blh", f["blh"], MIN_MIXING_HEIGHT_M, times,
                              f"blh below {MIN_MIXING_HEIGHT_M:g} m raised to {MIN_MIXING_HEIGHT_M:g} m")
        else:
            blh = diagnosed_mixing_height_array(ustar, obukhov, self.grid.lat)
            self.adjustments.record(f"diagnosed blh below {MIN_MIXING_HEIGHT_M:g} m raised to "
                                    f"{MIN_MIXING_HEIGHT_M:g} m", blh <= MIN_MIXING_HEIGHT_M, times,
                                    self.label)
            comments["blh"] = "diagnosed (Zilitinkevich 1972 / neutral scaling): not in the input"
        wstar = convective_velocity_scale_array(shf, blh, t2m, rho)
        inv_l = 1.0 / obukhov
        u_e, v_e = winds_at_heights(
            f.get("u"), f.get("v"), f.get("level_height"), u10e, v10e, z0, inv_l, self.heights_m
        )
        ug, vg = rotate_earth_to_grid(u_e, v_e, self._angle)
        u10g, v10g = rotate_earth_to_grid(u10e, v10e, self._angle)
        if "w" in f:
            w = scalar_at_heights(f["w"], f["level_height"], np.zeros(shape2), self.heights_m)
        else:
            w = np.zeros_like(ug)
            comments["w"] = "not in the input; set to 0"
        if "precip" in f:
            precip = self._floor("precip", f["precip"], 0.0, times,
                                 "precip between -0.01 and 0 mm/h (packing noise) set to 0")
        else:
            precip = np.zeros(shape2)
            comments["precip"] = "not in the input; set to 0 (no wet removal)"
        if "cloud_cover" in f:
            outside = (f["cloud_cover"] < 0.0) | (f["cloud_cover"] > 1.0)
            self.adjustments.record("cloud_cover within 0.01 outside 0-1 clipped to 0-1", outside, times,
                                    self.reader.source_of("cloud_cover"))
            cloud = np.clip(f["cloud_cover"], 0.0, 1.0)
        else:
            cloud = np.full(shape2, np.nan)
            comments["cloud_cover"] = "not in the input"
        d2, d3 = ("time", "y", "x"), ("time", "z", "y", "x")
        data = {
            "u10": (d2, u10g),
            "v10": (d2, v10g),
            "u": (d3, ug),
            "v": (d3, vg),
            "w": (d3, w),
            "t2m": (d2, t2m),
            "blh": (d2, blh),
            "shf": (d2, shf),
            "ustar": (d2, ustar),
            "obukhov_length": (d2, obukhov),
            "wstar": (d2, wstar),
            "precip": (d2, precip),
            "cloud_cover": (d2, cloud),
            "surface_pressure": (d2, p_s),
            "air_density": (d2, rho),
            "z0": (d2, np.ascontiguousarray(z0)),
            "pg_class": (d2, pg.astype(np.int8)),
        }
        ds = xr.Dataset(
            {k: (dims, np.asarray(v), dict(_ATTRS[k])) for k, (dims, v) in data.items()},
            coords={
                "time": ("time", times),
                "z": (
                    "z",
                    self.heights_m,
                    {
                        "standard_name": "height",
                        "units": "m",
                        "positive": "up",
                        "long_name": "height above ground",
                    },
                ),
                "y": ("y", self.grid.y, {"standard_name": "projection_y_coordinate", "units": "m"}),
                "x": ("x", self.grid.x, {"standard_name": "projection_x_coordinate", "units": "m"}),
                "lat": (("y", "x"), self.grid.lat, {"standard_name": "latitude", "units": "degrees_north"}),
                "lon": (("y", "x"), self.grid.lon, {"standard_name": "longitude", "units": "degrees_east"}),
            },
            attrs={
                "source": f"{self.format} meteorology from {self.label}",
                "comment": "winds are grid-relative (x/y of the model projection)",
            },
        )
        for k, text in comments.items():
            ds[k].attrs["comment"] = text
        return ds


def open_meteorology(
    fmt: str,
    paths: Sequence[Path],
    grid: Grid,
    heights_m: Sequence[float],
    variables: Mapping[str, str] | None = None,
    roughness_length_m: float = 0.5,
) -> MetSource:
    """Open meteorology files lazily for the model grid.

    Parameters
    ----------
    fmt : a format of :data:`~airshed.inputs.meteorology.formats.MET_FORMATS`: 'era5' (CDS NetCDF),
        'wrf' (wrfout), 'cf' (any CF NetCDF on a regular lon/lat grid), ...
    paths : the files (several files may split variables or time).
    grid : the model grid.
    heights_m : model heights above ground where u, v, w are wanted, m.
    variables : for 'cf', model name -> name in the file (see ``cf.CF_VARIABLES``).
    roughness_length_m : z0 where the source has none, m.
    """
    fmt = str(fmt).lower()
    paths = [Path(p) for p in paths]
    reader = met_format(fmt).open(paths, variables)
    log.info("opened %s meteorology: %d files, %d times", fmt, len(paths), reader.times.size)
    return MetSource(reader, grid, heights_m, roughness_length_m, fmt)
