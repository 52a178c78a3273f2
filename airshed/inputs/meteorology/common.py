"""What every meteorology reader shares: opening files lazily, finding variables, units, checks.

Files are opened with :func:`xarray.open_dataset` (lazy backend arrays, no dask). Nothing is loaded
until a reader's ``load`` pulls one time window, so a month of hourly data never sits in memory.
Every problem is a :class:`~airshed.errors.DataError` naming the file(s) and variable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from airshed.errors import DataError

# canonical unit -> {normalised alias: (scale, offset)}: value_canonical = value * scale + offset
_UNITS: dict[str, dict[str, tuple[float, float]]] = {
    "m s-1": {
        "ms-1": (1.0, 0.0),
        "m/s": (1.0, 0.0),
        "meters/second": (1.0, 0.0),
        "metre/second": (1.0, 0.0),
        "meter/second": (1.0, 0.0),
        "kts": (0.514444, 0.0),
        "knots": (0.514444, 0.0),
        "km/h": (1 / 3.6, 0.0),
        "kmh-1": (1 / 3.6, 0.0),
    },
    "K": {
        "k": (1.0, 0.0),
        "kelvin": (1.0, 0.0),
        "degc": (1.0, 273.15),
        "c": (1.0, 273.15),
        "celsius": (1.0, 273.15),
        "degreesc": (1.0, 273.15),
        "degree_celsius": (1.0, 273.15),
    },
    "m": {
        "m": (1.0, 0.0),
        "metres": (1.0, 0.0),
        "meters": (1.0, 0.0),
        "metre": (1.0, 0.0),
        "meter": (1.0, 0.0),
        "km": (1000.0, 0.0),
    },
    "Pa": {
        "pa": (1.0, 0.0),
        "hpa": (100.0, 0.0),
        "mb": (100.0, 0.0),
        "mbar": (100.0, 0.0),
        "millibars": (100.0, 0.0),
        "kpa": (1000.0, 0.0),
    },
    "W m-2": {"wm-2": (1.0, 0.0), "w/m2": (1.0, 0.0), "w/m^2": (1.0, 0.0)},
    "J m-2": {"jm-2": (1.0, 0.0), "j/m2": (1.0, 0.0)},
    "m2 s-2": {"m2s-2": (1.0, 0.0)},
    "1": {
        "(0-1)": (1.0, 0.0),
        "1": (1.0, 0.0),
        "0-1": (1.0, 0.0),
        "fraction": (1.0, 0.0),
        "": (1.0, 0.0),
        "%": (0.01, 0.0),
        "percent": (0.01, 0.0),
    },
    "Pa s-1": {"pas-1": (1.0, 0.0), "pa/s": (1.0, 0.0)},
    "mm": {"mm": (1.0, 0.0), "kgm-2": (1.0, 0.0), "m": (1000.0, 0.0)},
    "mm h-1": {
        "mmh-1": (1.0, 0.0),
        "mm/h": (1.0, 0.0),
        "mm/hr": (1.0, 0.0),
        "kgm-2s-1": (3600.0, 0.0),
        "mms-1": (3600.0, 0.0),
        "ms-1": (3.6e6, 0.0),
    },
}


def normalise_units(units: str) -> str:
    """Lower-case a units string and drop spaces, '**', '^' and '.' so 'm s**-1' == 'm.s^-1' == 'ms-1'."""
    u = str(units).strip().lower()
    return re.sub(r"[\s.^*]", "", u)


def unit_conversion(units: str | None, canonical: str, where: str) -> tuple[float, float]:
    """Return (scale, offset) from ``units`` to ``canonical``; DataError naming ``where`` if unknown."""
    if units is None:
        raise DataError(f"{where}: no 'units' attribute (expected {canonical!r} or a known alternative)")
    key = normalise_units(units)
    table = _UNITS[canonical]
    if key not in table:
        raise DataError(
            f"{where}: units {units!r} are not known for this quantity (expected {canonical!r} or one of "
            f"{sorted(table)})"
        )
    return table[key]


def files_label(paths: Sequence[Path]) -> str:
    """Short, readable list of file names for error messages."""
    names = [str(p) for p in paths]
    return names[0] if len(names) == 1 else "[" + ", ".join(names) + "]"


_TIME_NAMES = ("valid_time", "time", "Time", "t")
_LAT_NAMES = ("latitude", "lat", "nav_lat")
_LON_NAMES = ("longitude", "lon", "nav_lon")
_LEVEL_NAMES = ("pressure_level", "level", "plev", "isobaricInhPa", "height", "z", "lev")


def open_dataset(path: Path) -> xr.Dataset:
    """Open one NetCDF file lazily (no dask), with a DataError naming the file when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"meteorology file {path} does not exist")
    try:
        return xr.open_dataset(path, decode_times=True, chunks=None, cache=False)
    except Exception as exc:  # netCDF4/HDF5 give many exception types; the user needs the file name
        raise DataError(f"cannot read meteorology file {path}: {exc}") from exc


def standardise_dims(ds: xr.Dataset, path: Path, level_names: Sequence[str] = _LEVEL_NAMES) -> xr.Dataset:
    """Rename time/lat/lon/level coordinates to 'time', 'lat', 'lon', 'level' and drop ensemble leftovers."""
    ren: dict[str, str] = {}
    for canon, names in (
        ("time", _TIME_NAMES),
        ("lat", _LAT_NAMES),
        ("lon", _LON_NAMES),
        ("level", level_names),
    ):
        for n in names:
            if n in ds.dims or n in ds.coords:
                if n != canon:
                    ren[n] = canon
                break
    ds = ds.rename(ren)
    for extra in ("number", "expver"):
        if extra in ds.coords and extra not in ds.dims:
            ds = ds.drop_vars(extra)
    if "time" not in ds.dims and "time" in ds.coords:
        ds = ds.expand_dims("time")
    return ds


@dataclass
class FieldRef:
    """A variable found in one or more files (time chunks), still lazy."""

    name: str
    pieces: list[tuple[Path, xr.DataArray]]

    @property
    def units(self) -> str | None:
        """Units attribute of the first file's variable."""
        return self.pieces[0][1].attrs.get("units")

    @property
    def paths(self) -> list[Path]:
        """Files holding the variable."""
        return [p for p, _ in self.pieces]

    @property
    def where(self) -> str:
        """Variable and file names, for error messages."""
        return f"variable {self.name!r} in {files_label(self.paths)}"

    def conversion(self, canonical: str) -> tuple[float, float]:
        """Return the unit conversion to ``canonical``, checking that all files agree on the units."""
        units = {p: da.attrs.get("units") for p, da in self.pieces}
        if len(set(units.values())) > 1:
            raise DataError(f"{self.where}: inconsistent units between files: {units}")
        return unit_conversion(self.units, canonical, self.where)

    def load(
        self, start: np.datetime64, end: np.datetime64, isel: dict[str, slice] | None = None
    ) -> np.ndarray:
        """Values with start <= time <= end, concatenated over files along time (first axis), float64.

        ``isel`` restricts horizontal dimensions (by name) before reading. A variable without a time
        dimension (e.g. orography) comes back with a time axis of length 1.
        """
        parts = []
        for path, da in self.pieces:
            if isel:
                da = da.isel({k: v for k, v in isel.items() if k in da.dims})
            if "time" not in da.dims:
                parts.append(np.asarray(da.values, dtype=np.float64)[None])
                continue
            sub = da.sel(time=slice(start, end))
            if sub.sizes["time"]:
                try:
                    parts.append(np.asarray(sub.values, dtype=np.float64))
                except Exception as exc:  # corrupt chunk, truncated file
                    raise DataError(f"cannot read {self.name!r} from {path}: {exc}") from exc
        if not parts:
            raise DataError(f"{self.where}: no data between {start} and {end}")
        return np.concatenate(parts, axis=0)


class FileSet:
    """The opened files of one meteorology source, and variable lookup across them."""

    def __init__(self, paths: Sequence[Path], datasets: Sequence[xr.Dataset]):
        self.paths = [Path(p) for p in paths]
        self.datasets = list(datasets)

    @property
    def label(self) -> str:
        """File names, for error messages."""
        return files_label(self.paths)

    def find(
        self, candidates: Sequence[str], what: str, required: bool = True, levels: bool | None = None
    ) -> FieldRef | None:
        """Return the first of ``candidates`` present in the files (all files holding it, in time order).

        ``levels``: True keeps only variables with a 'level' dimension, False only those without.
        """
        for name in candidates:
            pieces = [
                (p, ds[name])
                for p, ds in zip(self.paths, self.datasets, strict=True)
                if name in ds.data_vars and (levels is None or ("level" in ds[name].dims) == levels)
            ]
            if pieces:
                if "time" in pieces[0][1].dims:
                    pieces.sort(key=lambda item: item[1]["time"].values[0])
                return FieldRef(name, pieces)
        if required:
            raise DataError(f"no {what}: tried {', '.join(candidates)} in {self.label}")
        return None

    def time_axis(self, fields: Sequence[FieldRef]) -> np.ndarray:
        """Return the common, strictly increasing, uniformly spaced time axis of ``fields`` (datetime64).

        Raises DataError when a variable's times (over its files) are not increasing, have gaps, or differ
        from the other variables' times.
        """
        axis = None
        for f in fields:
            times = np.concatenate(
                [
                    np.asarray(da["time"].values, dtype="datetime64[ns]")
                    for _, da in f.pieces
                    if "time" in da.dims
                ]
            )
            check_time_axis(times, f.where)
            if axis is None:
                axis = times
                first = f
            elif not np.array_equal(axis, times):
                raise DataError(
                    f"{f.where} has times {times[0]}..{times[-1]} ({times.size} steps) but {first.where} has "
                    f"{axis[0]}..{axis[-1]} ({axis.size} steps): all variables must share one time axis"
                )
        if axis is None:
            raise DataError(f"no time-dependent meteorology in {self.label}")
        return axis


def check_time_axis(times: np.ndarray, where: str) -> None:
    """Check that times increase strictly with one uniform step; DataError naming ``where`` otherwise."""
    if times.size < 2:
        raise DataError(f"{where}: needs at least two time steps, found {times.size}")
    if np.isnat(times).any():
        raise DataError(f"{where}: time coordinate holds missing values (NaT)")
    step = np.diff(times)
    if (step <= np.timedelta64(0, "ns")).any():
        k = int(np.argmax(step <= np.timedelta64(0, "ns")))
        raise DataError(f"{where}: time is not strictly increasing at {times[k]} -> {times[k + 1]}")
    if (step != step[0]).any():
        k = int(np.argmax(step != step[0]))
        raise DataError(
            f"{where}: time step is not uniform (gap or irregular step): {times[k]} -> {times[k + 1]} "
            f"is {step[k] / np.timedelta64(1, 'm'):g} min, expected {step[0] / np.timedelta64(1, 'm'):g} min"
        )


def check_monotonic(values: np.ndarray, name: str, where: str) -> None:
    """Check that a 1-D coordinate is strictly increasing or strictly decreasing, without NaN."""
    v = np.asarray(values, dtype=np.float64)
    if np.isnan(v).any():
        raise DataError(f"{where}: coordinate {name!r} holds NaN")
    d = np.diff(v)
    if not ((d > 0).all() or (d < 0).all()):
        raise DataError(f"{where}: coordinate {name!r} is not monotonic (sorted increasing or decreasing)")


def check_period(times: np.ndarray, start: np.datetime64, end: np.datetime64, where: str) -> None:
    """Check that the data's time axis covers [start, end]."""
    if start < times[0] or end > times[-1]:
        raise DataError(
            f"{where}: meteorology covers {times[0]}..{times[-1]} but the run needs {start}..{end}"
        )


def check_finite(values: np.ndarray, name: str, where: str) -> None:
    """No NaN/inf in values sampled inside the model domain."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(
            f"{where}: {int(bad.sum())} missing (NaN/fill) values of {name!r} inside the model domain"
        )
