"""WRF-ARW ``wrfout`` files, read as written by WRF (Skamarock et al. 2019, NCAR/TN-556+STR).

- Winds: U is staggered in x (``west_east_stag``), V in y (``south_north_stag``), W in z; they are
  averaged to mass points. WRF winds (U, V, U10, V10) are relative to the WRF grid; they are turned to
  earth-relative with the grid's ``SINALPHA``/``COSALPHA``: u_e = u cos(alpha) - v sin(alpha),
  v_e = v cos(alpha) + u sin(alpha) (WRF ARW user guide; wrf-python ``uvmet``).
- Heights: geopotential (PH + PHB)/g on staggered (w) levels, averaged to mass levels, minus the
  lowest staggered level (the terrain height), gives metres above ground.
- Precipitation: RAINC + RAINNC are accumulated since the model start (mm); the rate is the backward
  difference over one output step (mm/h); the first record of the data uses the forward difference.
  Negative differences (bucket resets, restarts) are set to 0.
- ``HFX`` is already upward-positive W m-2; ``UST`` u*; ``PBLH`` mixing height; ``ZNT`` roughness;
  cloud cover (optional) is the column maximum of ``CLDFRA`` (maximum-overlap assumption).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from airshed.errors import DataError
from airshed.grids.grid import Grid
from airshed.inputs.meteorology.common import FieldRef, FileSet, open_dataset, unit_conversion
from airshed.inputs.meteorology.regrid import HorizontalInterpolator, curvilinear_interpolator
from airshed.physics.boundary_layer import STANDARD_GRAVITY


def _decode_wrf_times(ds: xr.Dataset, path: Path) -> xr.Dataset:
    if "Times" not in ds.variables:
        raise DataError(f"{path}: no 'Times' variable; is this a wrfout file?")
    raw = np.asarray(ds["Times"].values)
    if raw.dtype.kind == "S" and raw.ndim == 2:  # undecoded char array (Time, DateStrLen)
        raw = np.array([b"".join(row) for row in raw])
    text = [r.decode() if isinstance(r, bytes) else str(r) for r in np.atleast_1d(raw)]
    try:
        times = np.array([np.datetime64(t.strip().replace("_", "T"), "ns") for t in text])
    except ValueError as exc:
        raise DataError(f"{path}: cannot parse WRF Times {text[:2]} (expected YYYY-MM-DD_hh:mm:ss)") from exc
    ds = ds.drop_vars("Times")
    if "XTIME" in ds.variables:
        ds = ds.drop_vars("XTIME")
    ds = ds.rename_dims({"Time": "time"}) if "Time" in ds.dims else ds
    return ds.assign_coords(time=("time", times))


class WrfReader:
    """Meteorology from one or more wrfout files of one WRF domain, lazily."""

    def __init__(self, paths: Sequence[Path]):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise DataError("no WRF files given")
        datasets = [_decode_wrf_times(open_dataset(p), p) for p in self.paths]
        fs = FileSet(self.paths, datasets)
        self.files = fs
        self.refs: dict[str, FieldRef] = {}
        for key, names, what, required in (
            ("u10", ("U10",), "10 m wind (x)", True),
            ("v10", ("V10",), "10 m wind (y)", True),
            ("t2m", ("T2",), "2 m temperature", True),
            ("sina", ("SINALPHA",), "grid rotation (sine)", True),
            ("cosa", ("COSALPHA",), "grid rotation (cosine)", True),
            ("blh", ("PBLH",), "boundary-layer height", False),
            ("shf", ("HFX",), "sensible heat flux", False),
            ("ustar", ("UST",), "friction velocity", False),
            ("z0", ("ZNT",), "roughness length", False),
            ("surface_pressure", ("PSFC",), "surface pressure", False),
            ("rainc", ("RAINC",), "convective rain", False),
            ("rainnc", ("RAINNC",), "non-convective rain", False),
            ("cldfra", ("CLDFRA",), "cloud fraction", False),
            ("u", ("U",), "staggered x wind", False),
            ("v", ("V",), "staggered y wind", False),
            ("w", ("W",), "staggered vertical wind", False),
            ("ph", ("PH",), "perturbation geopotential", False),
            ("phb", ("PHB",), "base-state geopotential", False),
        ):
            ref = fs.find(names, what, required=required)
            if ref is not None:
                self.refs[key] = ref
        if "u" in self.refs:
            for key, name in (("v", "V"), ("ph", "PH"), ("phb", "PHB")):
                if key not in self.refs:
                    fs.find((name,), f"{name} (needed with 3-D U)")
        self.times = fs.time_axis([r for k, r in self.refs.items()])
        ds0 = datasets[0]
        for c in ("XLAT", "XLONG"):
            if c not in ds0.variables:
                raise DataError(f"{self.paths[0]}: no {c} (WRF mass-point latitude/longitude)")
        lat = ds0["XLAT"]
        lon = ds0["XLONG"]
        self.lat = np.asarray(lat.isel(time=0).values if "time" in lat.dims else lat.values, dtype=np.float64)
        self.lon = np.asarray(lon.isel(time=0).values if "time" in lon.dims else lon.values, dtype=np.float64)

    def interpolator(self, grid: Grid) -> HorizontalInterpolator:
        """Barycentric weights from the WRF mass grid to ``grid``."""
        return curvilinear_interpolator(
            self.lat, self.lon, grid, "south_north", "west_east", self.refs["u10"].where
        )

    def _get(self, key: str, units: str, start, end, isel) -> np.ndarray:
        ref = self.refs[key]
        scale, offset = unit_conversion(ref.units, units, ref.where)
        return ref.load(start, end, isel) * scale + offset

    def load(self, start: np.datetime64, end: np.datetime64, isel: dict[str, slice]) -> dict[str, np.ndarray]:
        """Canonical fields (earth-relative winds) for start <= time <= end on the source window."""
        sy, sx = isel["south_north"], isel["west_east"]
        stag = {
            "south_north": sy,
            "west_east": sx,
            "west_east_stag": slice(sx.start, sx.stop + 1),
            "south_north_stag": slice(sy.start, sy.stop + 1),
        }
        sina = self.refs["sina"].load(start, end, isel)
        cosa = self.refs["cosa"].load(start, end, isel)

        def to_earth(ug: np.ndarray, vg: np.ndarray, level_axis: bool) -> tuple[np.ndarray, np.ndarray]:
            s, c = (sina[:, None], cosa[:, None]) if level_axis else (sina, cosa)
            return ug * c - vg * s, vg * c + ug * s

        out: dict[str, np.ndarray] = {}
        out["u10"], out["v10"] = to_earth(
            self._get("u10", "m s-1", start, end, isel), self._get("v10", "m s-1", start, end, isel), False
        )
        out["t2m"] = self._get("t2m", "K", start, end, isel)
        for key, units in (
            ("blh", "m"),
            ("shf", "W m-2"),
            ("ustar", "m s-1"),
            ("z0", "m"),
            ("surface_pressure", "Pa"),
        ):
            if key in self.refs:
                out[key] = self._get(key, units, start, end, isel)
        if "cldfra" in self.refs:
            out["cloud_cover"] = self._get("cldfra", "1", start, end, isel).max(axis=1)
        if "rainc" in self.refs or "rainnc" in self.refs:
            rate = self._precip_rate(start, end, isel)
            out["precip"] = np.maximum(rate, 0.0)
            out["precip_reset"] = rate < 0.0
        if "u" in self.refs:
            u = self._get("u", "m s-1", start, end, stag)
            v = self._get("v", "m s-1", start, end, stag)
            u = 0.5 * (u[..., :-1] + u[..., 1:])
            v = 0.5 * (v[..., :-1, :] + v[..., 1:, :])
            out["u"], out["v"] = to_earth(u, v, True)
            z = (
                self._get("ph", "m2 s-2", start, end, isel) + self._get("phb", "m2 s-2", start, end, isel)
            ) / STANDARD_GRAVITY
            out["level_height"] = 0.5 * (z[:, :-1] + z[:, 1:]) - z[:, :1]
            if "w" in self.refs:
                w = self._get("w", "m s-1", start, end, isel)
                out["w"] = 0.5 * (w[:, :-1] + w[:, 1:])
        return out

    def _precip_rate(self, start, end, isel) -> np.ndarray:
        n = self.times.size
        k0 = int(np.searchsorted(self.times, start, side="left"))
        k1 = int(np.searchsorted(self.times, end, side="right")) - 1
        lo, hi = max(k0 - 1, 0), min(k1 + 1, n - 1)
        acc = sum(
            self._get(k, "mm", self.times[lo], self.times[hi], isel)
            for k in ("rainc", "rainnc")
            if k in self.refs
        )
        if (acc < 0.0).any():
            raise DataError(f"{self.source_of('precip')}: {int((acc < 0.0).sum())} negative accumulated "
                            f"precipitation value(s) (minimum {acc.min():.4g} mm) between "
                            f"{self.times[lo]} and {self.times[hi]}; accumulations are >= 0")
        rate = np.diff(acc, axis=0) / ((self.times[1] - self.times[0]) / np.timedelta64(1, "h"))
        # rate[i] belongs to time lo + 1 + i; the very first record takes the forward difference
        pick = [max(k, 1) - lo - 1 for k in range(k0, k1 + 1)]
        return rate[pick]

    _UNITS = {"u10": "m s-1", "v10": "m s-1", "t2m": "K", "blh": "m", "shf": "W m-2", "ustar": "m s-1",
              "z0": "m", "surface_pressure": "Pa", "rainc": "mm", "rainnc": "mm", "cldfra": "1", "u": "m s-1",
              "v": "m s-1", "w": "m s-1", "ph": "m2 s-2", "phb": "m2 s-2"}

    def check_units(self) -> None:
        """Check every variable's units before any data is read (as :meth:`load` will convert them)."""
        for key, ref in self.refs.items():
            if key in self._UNITS:
                unit_conversion(ref.units, self._UNITS[key], ref.where)

    def window_lonlat(self, isel: dict[str, slice]) -> tuple[np.ndarray, np.ndarray]:
        """Latitude and longitude (2-D, degrees) of the source window ``isel``, for messages."""
        j, i = isel.get("south_north", slice(None)), isel.get("west_east", slice(None))
        return self.lat[j, i], self.lon[j, i]

    @property
    def provides(self) -> set[str]:
        """Canonical variables :meth:`load` returns (besides those derived from them)."""
        keys = set(self.refs) & {"u10", "v10", "t2m", "blh", "shf", "ustar", "z0", "surface_pressure", "u",
                                 "v"}
        if "cldfra" in self.refs:
            keys.add("cloud_cover")
        if "rainc" in self.refs or "rainnc" in self.refs:
            keys.add("precip")
        if "u" in self.refs and "w" in self.refs:
            keys.add("w")
        return keys

    def source_of(self, key: str) -> str:
        """Name the wrfout variable behind a canonical key, for messages."""
        key = {"level_height": "ph", "cloud_cover": "cldfra", "precip": "rainnc" if "rainnc" in self.refs
               else "rainc"}.get(key, key)
        ref = self.refs.get(key)
        return ref.where if ref is not None else self.files.label

    level_order_upward = None
    """WRF's vertical index already runs from the ground up."""
