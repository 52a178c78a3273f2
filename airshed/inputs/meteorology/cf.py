"""Reader for meteorology on a regular longitude/latitude grid (CF NetCDF with a name mapping).

It is also the shared machinery that the ERA5 reader (:mod:`.era5`) configures.

Canonical variables a reader delivers (source grid, canonical units, time first):
``u10, v10`` earth-relative m/s; ``t2m`` K; optional ``blh`` m, ``shf`` W m-2 upward, ``ustar`` m/s,
``cloud_cover`` 0-1, ``precip`` mm/h, ``surface_pressure`` Pa, ``z0`` m; optional upper air ``u, v``
(earth-relative, m/s), ``w`` m/s and ``level_height`` (m above ground) with a level axis after time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from airshed.errors import DataError
from airshed.grids.grid import Grid
from airshed.inputs.meteorology.common import (
    FieldRef,
    FileSet,
    check_monotonic,
    open_dataset,
    standardise_dims,
    unit_conversion,
)
from airshed.inputs.meteorology.regrid import (
    HorizontalInterpolator,
    regular_latlon_interpolator,
    surface_heights_from_pressure,
)
from airshed.physics.boundary_layer import GRAVITY, STANDARD_GRAVITY, air_density_array

# canonical name -> (description for errors, canonical units, default candidate names, on levels?)
CF_VARIABLES: dict[str, tuple[str, str, tuple[str, ...], bool]] = {
    "u10": ("10 m eastward wind", "m s-1", ("uas", "u10"), False),
    "v10": ("10 m northward wind", "m s-1", ("vas", "v10"), False),
    "t2m": ("2 m air temperature", "K", ("tas", "t2m"), False),
    "blh": ("boundary-layer (mixing) height", "m", ("blh", "pblh", "zmla"), False),
    "shf": ("surface sensible heat flux", "W m-2", ("hfss", "shf"), False),
    "ustar": ("friction velocity", "m s-1", ("ustar", "zust"), False),
    "cloud_cover": ("total cloud cover", "1", ("clt", "tcc"), False),
    "precip": ("precipitation", "mm h-1", ("pr", "precip"), False),
    "surface_pressure": ("surface pressure", "Pa", ("ps", "sp"), False),
    "surface_geopotential": ("surface geopotential", "m2 s-2", (), False),
    "surface_height": ("surface height", "m", ("orog",), False),
    "z0": ("roughness length", "m", ("z0",), False),
    "u": ("eastward wind on levels", "m s-1", ("ua",), True),
    "v": ("northward wind on levels", "m s-1", ("va",), True),
    "w": ("upward air velocity on levels", "m s-1", ("wa",), True),
    "omega": ("pressure vertical velocity on levels", "Pa s-1", ("wap",), True),
    "t": ("air temperature on levels", "K", ("ta",), True),
    "geopotential": ("geopotential on levels", "m2 s-2", (), True),
    "geopotential_height": ("geopotential height on levels", "m", ("zg",), True),
}
REQUIRED = ("u10", "v10", "t2m")
STATIC_CANDIDATES = ("surface_geopotential", "surface_height", "z0")
"""Variables that may be time-invariant (no time axis, or a single time step)."""


@dataclass
class LatLonConventions:
    """How a source encodes fluxes.

    shf_downward_positive : None reads the direction from the variable's standard_name (CF: 'upward'
        unless it says 'downward'); True/False force it (ECMWF: downward positive).
    accumulation_seconds : period over which J m-2 / m amounts are accumulated; None = the time step.
    names : candidate names per canonical variable (first found wins).
    """

    names: dict[str, tuple[str, ...]]
    shf_downward_positive: bool | None = None
    accumulation_seconds: float | None = None


class LatLonReader:
    """Meteorology on a regular lon/lat grid, possibly split over several files (by variable or time)."""

    def __init__(self, paths: Sequence[Path], conventions: LatLonConventions):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise DataError("no meteorology files given")
        datasets = [standardise_dims(open_dataset(p), p) for p in self.paths]
        self.files = FileSet(self.paths, datasets)
        self.conv = conventions
        self.refs: dict[str, FieldRef] = {}
        for key, (what, _units, _default, levels) in CF_VARIABLES.items():
            names = conventions.names.get(key, ())
            if not names:
                continue
            ref = self.files.find(names, what, required=key in REQUIRED, levels=levels)
            if ref is not None:
                self.refs[key] = ref
        if "u" in self.refs and "v" not in self.refs:
            self.files.find(conventions.names.get("v", ()), CF_VARIABLES["v"][0], levels=True)
        for key in STATIC_CANDIDATES:
            ref = self.refs.get(key)
            if ref is not None and sum(da.sizes.get("time", 1) for _, da in ref.pieces) == 1:
                # invariant field (orography, roughness) stored with one time step: use it for all times
                ref.pieces = [
                    (p, da.isel(time=0, drop=True) if "time" in da.dims else da) for p, da in ref.pieces[:1]
                ]
        timed = [r for r in self.refs.values() if "time" in r.pieces[0][1].dims]
        self.times = self.files.time_axis(timed)
        self._check_horizontal()
        self._levels_pa, self._levels_are_heights = self._vertical()

    # --- coordinates -------------------------------------------------------------------------------------
    def _check_horizontal(self) -> None:
        ref = self.refs["u10"]
        ds0 = ref.pieces[0][1]
        for c in ("lat", "lon"):
            if c not in ds0.coords:
                raise DataError(
                    f"{ref.where}: no {'latitude' if c == 'lat' else 'longitude'} coordinate "
                    f"(tried latitude, lat, nav_lat / longitude, lon, nav_lon)"
                )
        self.lat = np.asarray(ds0["lat"].values, dtype=np.float64)
        self.lon = np.asarray(ds0["lon"].values, dtype=np.float64)
        if self.lat.ndim != 1 or self.lon.ndim != 1:
            raise DataError(
                f"{ref.where}: latitude/longitude must be 1-D (regular grid); use the WRF reader "
                "for curvilinear grids"
            )
        check_monotonic(self.lat, "latitude", ref.where)
        check_monotonic(self.lon, "longitude", ref.where)
        for r in self.refs.values():
            for path, da in r.pieces:
                if not (
                    np.array_equal(da["lat"].values, self.lat) and np.array_equal(da["lon"].values, self.lon)
                ):
                    raise DataError(
                        f"variable {r.name!r} in {path}: latitude/longitude differ from those of "
                        f"{ref.where}; all meteorology must share one grid"
                    )

    def _vertical(self) -> tuple[np.ndarray | None, bool]:
        if "u" not in self.refs:
            return None, False
        ref = self.refs["u"]
        lev = ref.pieces[0][1]["level"] if "level" in ref.pieces[0][1].coords else None
        if lev is None:
            raise DataError(f"{ref.where}: upper-air wind without a vertical coordinate")
        check_monotonic(np.atleast_1d(lev.values), "level", ref.where)
        units = lev.attrs.get("units")
        where = f"vertical coordinate of {ref.where}"
        try:
            scale, _ = unit_conversion(units, "Pa", where)
        except DataError:
            scale, _ = unit_conversion(units, "m", f"{where} (pressure or height above ground)")
            return np.asarray(lev.values, dtype=np.float64) * scale, True
        if not ("geopotential" in self.refs or "geopotential_height" in self.refs):
            tried = self.conv.names.get("geopotential", ()) + self.conv.names.get("geopotential_height", ())
            raise DataError(
                f"{ref.where} is on pressure levels but there is no geopotential: tried "
                f"{', '.join(tried)} in {self.files.label}"
            )
        return np.asarray(lev.values, dtype=np.float64) * scale, False

    def interpolator(self, grid: Grid) -> HorizontalInterpolator:
        """Bilinear weights from this source's lon/lat grid to ``grid``."""
        return regular_latlon_interpolator(self.lat, self.lon, grid, "lat", "lon", self.refs["u10"].where)

    def _used_keys(self) -> list[str]:
        """Return the canonical keys :meth:`load` reads (others found in the files are not used)."""
        surface = ("u10", "v10", "t2m", "blh", "ustar", "cloud_cover", "surface_pressure", "z0", "shf",
                   "precip")
        used = [k for k in surface if k in self.refs]
        if "u" in self.refs:
            used += ["u", "v"]
            if not self._levels_are_heights:
                used += [next(k for k in ("geopotential_height", "geopotential") if k in self.refs)]
                used += [k for k in ("surface_geopotential", "surface_height") if k in self.refs][:1]
            if "w" in self.refs:
                used.append("w")
            elif "omega" in self.refs and "t" in self.refs and not self._levels_are_heights:
                used += ["omega", "t"]
        return used

    def check_units(self) -> None:
        """Check the units of every variable :meth:`load` will read, before any data is read."""
        for key in self._used_keys():
            ref = self.refs[key]
            canonical = CF_VARIABLES[key][1]
            alternative = {"shf": "J m-2", "precip": "mm"}.get(key)
            try:
                ref.conversion(canonical)
            except DataError:
                if alternative is None:
                    raise
                ref.conversion(alternative)

    def window_lonlat(self, isel: dict[str, slice]) -> tuple[np.ndarray, np.ndarray]:
        """Latitude and longitude (2-D, degrees) of the source window ``isel``, for messages."""
        lon2, lat2 = np.meshgrid(self.lon[isel.get("lon", slice(None))],
                                 self.lat[isel.get("lat", slice(None))])
        return lat2, lon2

    @property
    def provides(self) -> set[str]:
        """Canonical variables :meth:`load` returns (besides those derived from them)."""
        keys = set(self.refs) & {"u10", "v10", "t2m", "blh", "ustar", "cloud_cover", "surface_pressure", "z0",
                                 "shf", "precip", "u", "v"}
        if "w" in self.refs or ("omega" in self.refs and "t" in self.refs and not self._levels_are_heights):
            keys.add("w")
        return keys

    def source_of(self, key: str) -> str:
        """Name the file variable behind a canonical key, for messages (``variable 'blh' in a.nc``)."""
        if key == "level_height":
            key = next((k for k in ("geopotential_height", "geopotential") if k in self.refs), "u")
        if key == "w" and "w" not in self.refs:
            key = "omega"
        ref = self.refs.get(key)
        return ref.where if ref is not None else self.files.label

    @property
    def level_order_upward(self) -> np.ndarray | None:
        """Indices of the level axis from the ground up (pressure descending, or height ascending)."""
        if self._levels_pa is None:
            return None
        return np.argsort(self._levels_pa if self._levels_are_heights else -self._levels_pa, kind="stable")

    def _step_seconds(self) -> float:
        return float((self.times[1] - self.times[0]) / np.timedelta64(1, "s"))

    # --- loading -----------------------------------------------------------------------------------------
    def _get(self, key: str, start, end, isel) -> np.ndarray:
        ref = self.refs[key]
        scale, offset = ref.conversion(CF_VARIABLES[key][1])
        return ref.load(start, end, isel) * scale + offset

    def load(self, start: np.datetime64, end: np.datetime64, isel: dict[str, slice]) -> dict[str, np.ndarray]:
        """Canonical fields for start <= time <= end on the source window ``isel``."""
        out: dict[str, np.ndarray] = {}
        for key in ("u10", "v10", "t2m", "blh", "ustar", "cloud_cover", "surface_pressure", "z0"):
            if key in self.refs:
                out[key] = self._get(key, start, end, isel)
        if "z0" in out and out["z0"].shape[0] == 1:
            out["z0"] = np.broadcast_to(out["z0"], out["u10"].shape)
        accumulation = self.conv.accumulation_seconds or self._step_seconds()
        if "shf" in self.refs:
            out["shf"] = self._sensible_heat_flux(self.refs["shf"], start, end, isel, accumulation)
        if "precip" in self.refs:
            ref = self.refs["precip"]
            try:
                scale, offset = ref.conversion("mm h-1")
                out["precip"] = ref.load(start, end, isel) * scale + offset
            except DataError:
                scale, _ = ref.conversion("mm")  # an amount accumulated over the period
                out["precip"] = ref.load(start, end, isel) * scale / (accumulation / 3600.0)
        if "u" in self.refs:
            self._upper_air(out, start, end, isel)
        return out

    def _sensible_heat_flux(self, ref: FieldRef, start, end, isel, accumulation: float) -> np.ndarray:
        values = ref.load(start, end, isel)
        try:
            scale, _ = ref.conversion("W m-2")
        except DataError:
            scale, _ = ref.conversion("J m-2")
            scale /= accumulation
        downward = self.conv.shf_downward_positive
        if downward is None:
            downward = "downward" in str(ref.pieces[0][1].attrs.get("standard_name", ""))
        return values * (-scale if downward else scale)

    def _upper_air(self, out: dict[str, np.ndarray], start, end, isel) -> None:
        out["u"] = self._get("u", start, end, isel)
        out["v"] = self._get("v", start, end, isel)
        if self._levels_are_heights:
            out["level_height"] = np.broadcast_to(self._levels_pa[None, :, None, None], out["u"].shape).copy()
        else:
            if "geopotential_height" in self.refs:
                zg = self._get("geopotential_height", start, end, isel)
            else:
                zg = self._get("geopotential", start, end, isel) / STANDARD_GRAVITY
            if "surface_geopotential" in self.refs:
                zs = self._get("surface_geopotential", start, end, isel)[:1] / STANDARD_GRAVITY
            elif "surface_height" in self.refs:
                zs = self._get("surface_height", start, end, isel)[:1]
            elif "surface_pressure" in out:
                zs = surface_heights_from_pressure(zg, self._levels_pa, out["surface_pressure"])
            else:  # no way to find the ground: take the highest-pressure level as the surface
                zs = zg[:, np.argmax(self._levels_pa)]
            out["level_height"] = zg - np.broadcast_to(zs, out["u10"].shape)[:, None]
        if "w" in self.refs:
            out["w"] = self._get("w", start, end, isel)
        elif "omega" in self.refs and "t" in self.refs and not self._levels_are_heights:
            # w = -omega / (rho g), hydrostatic; rho from the ideal gas law at the level's p and T.
            rho = air_density_array(self._levels_pa[None, :, None, None], self._get("t", start, end, isel))
            out["w"] = -self._get("omega", start, end, isel) / (rho * GRAVITY)


def cf_conventions(variables: Mapping[str, str] | None) -> LatLonConventions:
    """Name candidates for a CF file: the config mapping (model name -> file name) first, then CF names."""
    variables = dict(variables or {})
    unknown = sorted(set(variables) - set(CF_VARIABLES))
    if unknown:
        raise DataError(
            f"meteorology variable mapping: unknown model variable(s) {unknown}; "
            f"known: {sorted(CF_VARIABLES)}"
        )
    names = {}
    for key, (_what, _units, default, _levels) in CF_VARIABLES.items():
        names[key] = ((variables[key],) if key in variables else ()) + tuple(
            n for n in default if n != variables.get(key)
        )
    return LatLonConventions(names=names)


def open_cf(paths: Sequence[Path], variables: Mapping[str, str] | None = None) -> LatLonReader:
    """Open CF NetCDF meteorology; ``variables`` maps model names (see :data:`CF_VARIABLES`) to file names."""
    return LatLonReader(paths, cf_conventions(variables))
