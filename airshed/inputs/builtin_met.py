"""Idealised winter-haze episodes written as ERA5 files; the built-in case's is over Jing-Jin-Ji.

The episode is *idealised*, not a reanalysis of any date: a stagnation period with weak southerly
flow, a shallow nocturnal boundary layer and a weak diurnal cycle of mixing height, ended by a
north-westerly cold-air outbreak (stronger wind, deeper boundary layer, colder, cloud-free). This is the
synoptic sequence that the literature on JJJ winter haze describes as typical (stagnant southerly flow
under a weak pressure gradient that accumulates pollution, swept away by a dry cold front from the
north-west); the parameter defaults are typical values of such episodes, not fitted to one case.

The files are written in the CDS NetCDF layout of ERA5 (``valid_time``, ``pressure_level``,
latitude descending, ECMWF units and sign conventions) and are read back by the ordinary ERA5 reader,
so the default case exercises the same code path as real data.

Construction (all deterministic, no random numbers):

- Outbreak weight s in 0..1: ``s = (1 + tanh((t - t_front) / (transition_hours / 2))) / 2``; the front
  reaches the geography's reference point (:class:`EpisodeGeography`; Beijing, 116.4E 39.9N, in the
  built-in case) at ``stagnation_days`` after the start and moves south-east at 10 m/s, so t_front
  varies across the domain (the only horizontal variation; no terrain).
- 10 m wind: the vector blend of the stagnant and outbreak winds (speed, direction "from").
- Sensible heat flux from the sun (NOAA solar elevation, :func:`solar_elevation_deg`):
  ``H = H_max sin(elev)/sin(elev at local solar noon)`` by day, ``-0.1 H_max`` at night; written as
  ERA5 ``sshf``
  (J m-2 over the hour ending at the valid time, downward positive: ``-H(t - 30 min) * 3600``).
- Mixing height: night value (the larger of ``night_mixing_height_m`` and the wind-driven stable
  height of :func:`diagnosed_mixing_height` for the night heat flux with z0 = 0.5 m, itself at most the
  day value), growing by day towards the day value
  (stagnant or clean blend), with the sun's elevation lagged by 2 h (afternoon maximum).
- 2 m temperature: ``surface_temperature_k`` in stagnation, 8 K colder after the outbreak, with a
  diurnal amplitude of 3 K following the mixing-height cycle.
- Upper air on 1000-700 hPa: geostrophic wind 1.8 times the 10 m speed, veered 30 degrees from the
  surface wind (Ekman turning over land), reached at the top of the mixing layer (square-root speed
  profile in between); temperature with a 4 K inversion over the lowest 300 m in stagnation and a
  -8 K/km lapse rate after the outbreak; geopotential from the hypsometric equation
  (:func:`hypsometric_thickness_array`) with flat ground at sea level (surface geopotential 0).
- Cloud: 0.3 in stagnation (haze with some cloud), 0 after the outbreak, 0.8 with 0.2 mm/h of
  precipitation in a band of +/- 3 h around the front passage; precipitation is zero elsewhere.
- Surface pressure 1020 hPa in stagnation, 1035 hPa after the outbreak (cold high).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from airshed.atomic_files import CACHE_FOLDER, atomic_path, make_folder
from airshed.physics.boundary_layer import (
    STANDARD_GRAVITY,
    air_density_array,
    diagnosed_mixing_height_array,
    hypsometric_thickness_array,
    solar_elevation_deg,
    surface_layer_from_heat_flux,
)

FRONT_SPEED_M_S = 10.0
"""Speed of the cold front towards the south-east, m/s."""
PRESSURE_LEVELS_HPA = (1000, 975, 950, 925, 900, 850, 800, 700)
BUILTIN_Z0_M = 0.5
"""Roughness length used inside the generator to diagnose the wind-driven night mixing height, m."""


@dataclass(frozen=True)
class BuiltinMetParameters:
    """Parameters of the idealised episode (mirrored by the config); units in the names."""

    days: float = 5.0
    stagnation_days: float = 3.5
    stagnant_wind_speed_m_s: float = 1.5
    stagnant_wind_direction_deg: float = 190.0
    outbreak_wind_speed_m_s: float = 9.0
    outbreak_wind_direction_deg: float = 315.0
    transition_hours: float = 6.0
    day_mixing_height_stagnant_m: float = 500.0
    day_mixing_height_clean_m: float = 1400.0
    night_mixing_height_m: float = 120.0
    max_sensible_heat_flux_w_m2: float = 120.0
    surface_temperature_k: float = 272.0
    resolution_deg: float = 0.25


@dataclass(frozen=True)
class EpisodeGeography:
    """Where an episode is laid out: the lon/lat box of its files and the front's reference point.

    Attributes
    ----------
    west, south, east, north
        Extent of the written lon/lat grid, degrees (cover the model domain with some margin).
    front_lon, front_lat
        Where the cold front is ``stagnation_days`` after the start, degrees.
    """

    west: float
    south: float
    east: float
    north: float
    front_lon: float
    front_lat: float

    @classmethod
    def around(cls, bbox: tuple[float, float, float, float], margin_deg: float = 3.0) -> EpisodeGeography:
        """Return a geography covering a lon/lat box plus a margin, the front referenced at its centre."""
        west, south, east, north = bbox
        return cls(west - margin_deg, max(south - margin_deg, -89.0), east + margin_deg,
                   min(north + margin_deg, 89.0), 0.5 * (west + east), 0.5 * (south + north))


BUILTIN_CASE_GEOGRAPHY = EpisodeGeography(west=105.0, south=30.0, east=130.0, north=48.0,
                                          front_lon=116.4, front_lat=39.9)
"""The built-in Jing-Jin-Ji case: files over 105-130E, 30-48N; the front reaches Beijing."""


def _wind_components(
    speed: float | np.ndarray, direction_from_deg: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Eastward/northward components of a wind blowing *from* ``direction_from_deg``."""
    d = np.radians(direction_from_deg)
    return -speed * np.sin(d), -speed * np.cos(d)


def _episode_fields(
    start: datetime, p: BuiltinMetParameters, geo: EpisodeGeography
) -> tuple[xr.Dataset, xr.Dataset]:
    lat = np.arange(geo.north, geo.south - 1e-9, -p.resolution_deg)
    lon = np.arange(geo.west, geo.east + 1e-9, p.resolution_deg)
    n_t = int(round(p.days * 24)) + 1
    t0 = np.datetime64(start.replace(tzinfo=None), "ns")
    times = t0 + np.arange(n_t) * np.timedelta64(3600, "s")
    hours = np.arange(n_t, dtype=np.float64)[:, None, None]
    lon2, lat2 = np.meshgrid(lon, lat)

    # Outbreak weight: distance (km) along the NW -> SE axis from the reference point sets the arrival.
    km_e = (lon2 - geo.front_lon) * 111.2 * np.cos(np.radians(lat2))
    km_n = (lat2 - geo.front_lat) * 111.2
    along = (km_e - km_n) / np.sqrt(2.0)
    t_front = p.stagnation_days * 24.0 + along / (FRONT_SPEED_M_S * 3.6)
    s = 0.5 * (1.0 + np.tanh((hours - t_front) / (0.5 * p.transition_hours)))

    us, vs = _wind_components(p.stagnant_wind_speed_m_s, p.stagnant_wind_direction_deg)
    uo, vo = _wind_components(p.outbreak_wind_speed_m_s, p.outbreak_wind_direction_deg)
    u10 = us + s * (uo - us)
    v10 = vs + s * (vo - vs)
    speed10 = np.hypot(u10, v10)

    def sun_factor(offset_h: float) -> np.ndarray:
        """sin(solar elevation) relative to its value at that day's local solar noon, 0 at night."""
        t = times[:, None, None] + np.timedelta64(int(offset_h * 3600), "s")
        elev = solar_elevation_deg(t, lon2, lat2)
        noon = (
            t.astype("datetime64[D]")
            + np.timedelta64(12 * 3600, "s")
            - (lon2 * 240.0).astype("timedelta64[s]")
        )
        elev_noon = solar_elevation_deg(noon, lon2, lat2)
        return np.clip(np.sin(np.radians(elev)) / np.sin(np.radians(elev_noon)), 0.0, 1.0)

    def heat_flux(sun: np.ndarray) -> np.ndarray:
        return np.where(sun > 0.0, p.max_sensible_heat_flux_w_m2 * sun, -0.1 * p.max_sensible_heat_flux_w_m2)

    h_mid_hour = heat_flux(sun_factor(-0.5))
    growth = sun_factor(-2.0)

    t_mean = p.surface_temperature_k - 8.0 * s
    t2m = t_mean - 1.5 + 3.0 * growth
    sp = 102000.0 + 1500.0 * s
    rho = air_density_array(sp, t2m)
    h_day = p.day_mixing_height_stagnant_m + s * (
        p.day_mixing_height_clean_m - p.day_mixing_height_stagnant_m
    )
    night_flux = -0.1 * p.max_sensible_heat_flux_w_m2
    ustar, obukhov = surface_layer_from_heat_flux(speed10, BUILTIN_Z0_M, night_flux, t2m, rho)
    h_wind = np.minimum(diagnosed_mixing_height_array(ustar, obukhov, lat2), h_day)
    h_night = np.maximum(p.night_mixing_height_m, h_wind)
    blh = np.maximum(h_night, h_night + (h_day - h_night) * growth)

    band = np.abs(hours - t_front) <= 3.0
    tcc = np.where(band, 0.8, 0.3 * (1.0 - s))
    precip_mm_h = np.where(band, 0.2, 0.0)

    # Upper air: pressure levels, heights from the hypsometric equation with the layer-mean temperature.
    plev = np.asarray(PRESSURE_LEVELS_HPA, dtype=np.float64)
    pa = plev[None, :, None, None] * 100.0
    z_guess = 8000.0 * np.log(sp[:, None] / pa)  # first guess (scale height 8 km) to place the profile
    inversion = 4.0 * np.clip(z_guess / 300.0, 0.0, 1.0) - 6.5e-3 * np.maximum(z_guess - 300.0, 0.0)
    t_lev = t_mean[:, None] + (1.0 - s[:, None]) * inversion + s[:, None] * (-8.0e-3 * z_guess)
    t_layer = 0.5 * (t2m[:, None] + t_lev)
    height = hypsometric_thickness_array(sp[:, None], pa, t_layer)
    frac = np.clip(height / blh[:, None], 0.0, 1.0)
    geo_speed = 1.8 * speed10[:, None]
    speed = speed10[:, None] + (geo_speed - speed10[:, None]) * np.sqrt(frac)
    dir10 = np.degrees(np.arctan2(-u10, -v10))
    u_lev, v_lev = _wind_components(speed, dir10[:, None] + 30.0 * frac)

    f32 = np.float32
    coords = {
        "valid_time": ("valid_time", times),
        "latitude": ("latitude", lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "longitude": ("longitude", lon, {"units": "degrees_east", "standard_name": "longitude"}),
    }
    d2 = ("valid_time", "latitude", "longitude")
    single = xr.Dataset(
        {
            "u10": (d2, u10.astype(f32), {"units": "m s**-1", "long_name": "10 metre U wind component"}),
            "v10": (d2, v10.astype(f32), {"units": "m s**-1", "long_name": "10 metre V wind component"}),
            "t2m": (d2, t2m.astype(f32), {"units": "K", "long_name": "2 metre temperature"}),
            "blh": (d2, blh.astype(f32), {"units": "m", "long_name": "Boundary layer height"}),
            "sshf": (
                d2,
                (-h_mid_hour * 3600.0).astype(f32),
                {"units": "J m**-2", "long_name": "Surface sensible heat flux"},
            ),
            "tcc": (d2, tcc.astype(f32), {"units": "(0 - 1)", "long_name": "Total cloud cover"}),
            "tp": (
                d2,
                (precip_mm_h / 1000.0).astype(f32),
                {"units": "m", "long_name": "Total precipitation"},
            ),
            "sp": (d2, sp.astype(f32), {"units": "Pa", "long_name": "Surface pressure"}),
            "z": (d2, np.zeros(sp.shape, f32), {"units": "m**2 s**-2", "long_name": "Geopotential"}),
        },
        coords=coords,
        attrs={
            "Conventions": "CF-1.7",
            "institution": "airshed built-in idealised episode (ERA5 CDS layout)",
            "history": "written by airshed.inputs.builtin_met; idealised, not a reanalysis",
        },
    )
    d3 = ("valid_time", "pressure_level", "latitude", "longitude")
    pcoords = dict(coords, pressure_level=("pressure_level", plev, {"units": "hPa", "long_name": "pressure"}))
    pressure = xr.Dataset(
        {
            "u": (d3, u_lev.astype(f32), {"units": "m s**-1", "long_name": "U component of wind"}),
            "v": (d3, v_lev.astype(f32), {"units": "m s**-1", "long_name": "V component of wind"}),
            "t": (d3, t_lev.astype(f32), {"units": "K", "long_name": "Temperature"}),
            "z": (
                d3,
                (height * STANDARD_GRAVITY).astype(f32),
                {"units": "m**2 s**-2", "long_name": "Geopotential"},
            ),
        },
        coords=pcoords,
        attrs=single.attrs,
    )
    return single, pressure


def write_builtin_era5(
    directory: Path, start: datetime, params: BuiltinMetParameters, geography: EpisodeGeography
) -> list[Path]:
    """Write an idealised episode as ERA5 single- and pressure-level NetCDF files; return their paths."""
    directory = Path(directory)
    make_folder(directory)
    single, pressure = _episode_fields(start, params, geography)
    paths = [directory / "era5_single_levels.nc", directory / "era5_pressure_levels.nc"]
    time_enc = {"valid_time": {"units": "seconds since 1970-01-01", "dtype": "int64"}}
    for ds, path in zip((single, pressure), paths, strict=True):
        enc = {v: {"zlib": True, "complevel": 1} for v in ds.data_vars} | time_enc
        with atomic_path(path, destination=CACHE_FOLDER) as tmp:
            ds.to_netcdf(tmp, encoding=enc)
    return paths


def generate_builtin_met(cache_dir: Path, start: datetime, options: Mapping[str, Any]) -> list[Path]:
    """Write (once) and return the built-in episode's ERA5 files; ``options``: ``[meteorology.builtin]``."""
    return ensure_builtin_met(cache_dir, start, BuiltinMetParameters(**options))


def ensure_builtin_met(cache_dir: Path, start: datetime, params: BuiltinMetParameters) -> list[Path]:
    """Return the built-in case's episode files under ``cache_dir``, writing them if missing (deterministic).

    The episode is laid out over :data:`BUILTIN_CASE_GEOGRAPHY`.

    Files live in a sub-folder named by the start time and a hash of the parameters, so changing either
    writes a new episode and never reuses a stale one.
    """
    key = json.dumps({"start": start.replace(tzinfo=None).isoformat(), **asdict(params)}, sort_keys=True)
    folder = (
        Path(cache_dir) / f"builtin_era5_{start:%Y%m%dT%H%M}_{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    )
    paths = [folder / "era5_single_levels.nc", folder / "era5_pressure_levels.nc"]
    if all(p.is_file() for p in paths):
        return paths
    return write_builtin_era5(folder, start, params, BUILTIN_CASE_GEOGRAPHY)
