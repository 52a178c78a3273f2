"""Physical plausibility of meteorology: what is impossible (an error) and what is merely unusual (a warning).

Every window of meteorology a run reads is checked here, for every reader (ERA5, WRF, CF and the built-in
episode, which is read as ERA5), on the source grid in canonical units, before interpolation, so a bad
value is reported where it is in the file. A value outside the *possible* range stops the run with one
:class:`~airshed.errors.DataError` line naming the variable, the file, how many values are bad and the
first one (time, longitude, latitude, value); a value outside the *usual* range is used as given and
logged once per variable as a warning. Nothing is clamped silently: where the model floors a plausible
value (a mixing height below :data:`~airshed.physics.boundary_layer.MIN_MIXING_HEIGHT_M`), the values are
counted (:class:`AdjustmentLog`), logged, and the counts go into the run file (``met_adjustments``).

The ranges (:data:`RANGES`, canonical units; the same table is in docs/failure_catalogue.md), as
impossible | unusual (a warning) | basis:

- t2m, K: < 170 or > 340 | < 200 or > 325 | WMO Archive of Weather and Climate Extremes: lowest 184.0 K
  (Vostok 1983), highest 329.9 K (Death Valley 1913); degrees C labelled K fall below 170.
- 10 m wind speed, m/s: > 150 | > 50 | WMO record gust 113 m/s (Barrow Island 1996); hourly means above
  50 m/s occur only in the strongest tropical cyclones.
- wind speed on levels, m/s: > 200 | > 120 | jet-stream cores reach ~100 m/s (Holton & Hakim 2013, An
  Introduction to Dynamic Meteorology).
- w, m/s: |w| > 100 | |w| > 10 | the strongest convective updrafts ~50 m/s; grid-scale w is cm/s to a
  few m/s.
- blh, m: <= 0 or > 20000 | < 10 or > 4000 | a layer has a positive depth and stays below the tropopause
  (<= ~18 km); deep desert boundary layers reach 4-5 km (Stull 1988, ch. 1; Seidel et al. 2012,
  J. Geophys. Res. 117:D17106); ERA5's blh rarely falls below ~10 m.
- ustar, m/s: < 0 or > 5 | > 2 | u* is a magnitude; 0.05-1 m/s over land, ~2 m/s in hurricanes
  (Stull 1988).
- shf (upward), W m-2: < -1000 or > 1500 | < -300 or > 700 | a surface flux cannot exceed the solar
  constant, 1361 W m-2 (Kopp & Lean 2011, Geophys. Res. Lett. 38:L01706); observed hourly extremes
  ~+600 (deserts) and ~-200 (stable nights).
- precip, mm/h: < -0.01 or > 500 | > 100 | WMO record 1 h rainfall 305 mm (Holt, Missouri, 1947);
  -0.01 allows GRIB packing noise (set to 0 and counted).
- surface_pressure, Pa: < 30000 or > 110000 | < 50000 or > 108500 | Everest summit ~33.7 kPa (West 1999,
  J. Appl. Physiol. 86:1062); WMO record high 1083.8 hPa (Agata 1968).
- cloud_cover, 1: < -0.01 or > 1.01 | - | a fraction (a percentage labelled 0-1 exceeds 1.01).
- z0, m: <= 0 or > 10 | > 3 | Davenport-Wieringa classes reach ~2 m for city centres and forests
  (Wieringa 1993, Boundary-Layer Meteorol. 63:323).
- level heights above ground: decreasing (or repeating) upward is impossible | - | geopotential height
  grows monotonically with height.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from airshed.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlausibleRange:
    """Possible and usual values of one canonical met variable (canonical units).

    ``low``/``high`` bound the possible values (``low_inclusive`` False: the value must exceed ``low``);
    ``usual_low``/``usual_high`` bound the values that pass without a warning. None: no bound.
    """

    what: str
    units: str
    low: float | None
    high: float | None
    usual_low: float | None
    usual_high: float | None
    basis: str
    low_inclusive: bool = True
    magnitude: bool = False  # bounds apply to |value|

    def impossible(self, values: np.ndarray) -> np.ndarray:
        """Mask of impossible values (NaN is not judged here: the finiteness check reports it)."""
        v = np.abs(values) if self.magnitude else values
        bad = np.zeros(v.shape, dtype=bool)
        if self.low is not None:
            bad |= (v < self.low) if self.low_inclusive else (v <= self.low)
        if self.high is not None:
            bad |= v > self.high
        return bad

    def unusual(self, values: np.ndarray) -> np.ndarray:
        """Mask of possible but unusual values."""
        v = np.abs(values) if self.magnitude else values
        odd = np.zeros(v.shape, dtype=bool)
        if self.usual_low is not None:
            odd |= v < self.usual_low
        if self.usual_high is not None:
            odd |= v > self.usual_high
        return odd & ~self.impossible(values)

    def describe_possible(self) -> str:
        """E.g. ``> 0 and <= 20000 m``."""
        parts = []
        name = "|value|" if self.magnitude else ""
        if self.low is not None:
            parts.append(f"{name}{'>=' if self.low_inclusive else '>'} {self.low:g}")
        if self.high is not None:
            parts.append(f"{name}<= {self.high:g}")
        return " and ".join(parts) + f" {self.units}"

    def describe_usual(self) -> str:
        """E.g. ``10 to 4000 m``."""
        lo = "" if self.usual_low is None else f"{self.usual_low:g}"
        hi = "" if self.usual_high is None else f"{self.usual_high:g}"
        if lo and hi:
            return f"{lo} to {hi} {self.units}"
        return (f">= {lo}" if lo else f"<= {hi}") + f" {self.units}"


RANGES: dict[str, PlausibleRange] = {
    "t2m": PlausibleRange("2 m air temperature", "K", 170.0, 340.0, 200.0, 325.0,
                          "WMO extremes 184.0 K (Vostok 1983) and 329.9 K (Death Valley 1913)"),
    "wind_speed_10m": PlausibleRange("10 m wind speed", "m s-1", None, 150.0, None, 50.0,
                                     "WMO record gust 113 m/s (Barrow Island 1996)"),
    "wind_speed_levels": PlausibleRange("wind speed on levels", "m s-1", None, 200.0, None, 120.0,
                                        "jet-stream cores ~100 m/s (Holton & Hakim 2013)"),
    "w": PlausibleRange("vertical velocity", "m s-1", None, 100.0, None, 10.0,
                        "strongest convective updrafts ~50 m/s", magnitude=True),
    "blh": PlausibleRange("mixing height", "m", 0.0, 20000.0, 10.0, 4000.0,
                          "positive depth below the tropopause; deep desert layers 4-5 km "
                          "(Seidel et al. 2012)",
                          low_inclusive=False),
    "ustar": PlausibleRange("friction velocity", "m s-1", 0.0, 5.0, None, 2.0,
                            "u* >= 0 by definition; ~2 m/s in hurricanes (Stull 1988)"),
    "shf": PlausibleRange("upward sensible heat flux", "W m-2", -1000.0, 1500.0, -300.0, 700.0,
                          "below the solar constant 1361 W m-2 (Kopp & Lean 2011)"),
    "precip": PlausibleRange("precipitation rate", "mm h-1", -0.01, 500.0, None, 100.0,
                             "WMO record 305 mm in 1 h (Holt 1947)"),
    "surface_pressure": PlausibleRange("surface pressure", "Pa", 30000.0, 110000.0, 50000.0, 108500.0,
                                       "Everest summit ~33.7 kPa, WMO record high 1083.8 hPa"),
    "cloud_cover": PlausibleRange("cloud cover", "1", -0.01, 1.01, None, None, "a fraction, 0-1"),
    "z0": PlausibleRange("roughness length", "m", 0.0, 10.0, None, 3.0,
                         "at most ~2 m for city centres and forests (Wieringa 1993)", low_inclusive=False),
}
"""Possible and usual ranges per canonical variable (see the module docstring for the table)."""

_HINTS: dict[str, Callable[[np.ndarray], str]] = {
    "t2m": lambda v: " (values look like degrees Celsius labelled K?)"
    if np.nanmedian(v) < 100.0 and np.nanmedian(v) > -100.0 else "",
    "surface_pressure": lambda v: " (values look like hPa labelled Pa?)"
    if 300.0 <= np.nanmedian(v) <= 1100.0 else "",
    "cloud_cover": lambda v: " (values look like percent labelled as a fraction?)"
    if np.nanmax(v) > 1.5 else "",
}


@dataclass
class Where:
    """How to name a place in a met window: times and the lon/lat of the window's source points."""

    times: np.ndarray
    lat: np.ndarray  # (ny, nx) of the source window
    lon: np.ndarray
    source: Callable[[str], str]  # canonical key -> "variable 'blh' in file.nc"

    def first(self, mask: np.ndarray, values: np.ndarray) -> str:
        """Describe the first True of ``mask`` (time first, then level, then y, x) and its value."""
        index = np.unravel_index(int(np.argmax(mask)), mask.shape)
        t = self.times[min(index[0], self.times.size - 1)] if mask.shape[0] == self.times.size else None
        j, i = index[-2], index[-1]
        lat, lon = np.broadcast_to(self.lat, mask.shape[-2:]), np.broadcast_to(self.lon, mask.shape[-2:])
        level = f", level {index[1]}" if mask.ndim == 4 else ""
        when = f"{np.datetime_as_string(t, unit='m')} " if t is not None else ""
        place = f"lon {float(lon[j, i]):.2f} lat {float(lat[j, i]):.2f}{level}"
        return f"{when}{place} (value {values[index]:.4g})"


def _speed(fields: Mapping[str, np.ndarray], u: str, v: str) -> np.ndarray | None:
    if u in fields and v in fields:
        return np.hypot(fields[u], fields[v])
    return None


def check_met_window(fields: Mapping[str, np.ndarray], where: Where, warned: set[str],
                     level_order_upward: np.ndarray | None = None) -> None:
    """Raise DataError for impossible values in a window's canonical fields; log unusual ones once.

    Parameters
    ----------
    fields
        Canonical fields of one window on the source grid (time first; levels second for upper air).
    where
        Times and coordinates of the window, and the file/variable behind each key.
    warned
        Keys already warned about (updated): an unusual variable is logged once per source.
    level_order_upward
        Indices that sort the level axis from the ground up; level heights must increase along it.
    """
    derived = {"wind_speed_10m": (_speed(fields, "u10", "v10"), "u10"),
               "wind_speed_levels": (_speed(fields, "u", "v"), "u")}
    for key, rng in RANGES.items():
        if key in derived:
            values, source_key = derived[key]
        else:
            values, source_key = fields.get(key), key
        if values is None:
            continue
        bad = rng.impossible(values)
        if bad.any():
            finite = values[np.isfinite(values)]
            hint = _HINTS[key](finite) if key in _HINTS and finite.size else ""
            raise DataError(
                f"{where.source(source_key)}: {int(bad.sum())} impossible value(s) of {rng.what} "
                f"(range {np.nanmin(values):.4g} to {np.nanmax(values):.4g} {rng.units}; possible: "
                f"{rng.describe_possible()}){hint}; first at {where.first(bad, values)} [{rng.basis}]"
            )
        odd = rng.unusual(values)
        if odd.any() and key not in warned:
            warned.add(key)
            log.warning("%s: %d unusual value(s) of %s (usual: %s), used as given; first at %s",
                        where.source(source_key), int(odd.sum()), rng.what, rng.describe_usual(),
                        where.first(odd, values))
    height = fields.get("level_height")
    if height is not None and height.shape[1] > 1:
        ordered = height if level_order_upward is None else np.take(height, level_order_upward, axis=1)
        falls = np.diff(ordered, axis=1) <= 0.0
        if falls.any():
            first = np.unravel_index(int(np.argmax(falls)), falls.shape)
            raise DataError(
                f"{where.source('level_height')}: level heights decrease (or repeat) upward in "
                f"{int(falls.any(axis=1).sum())} column(s) and time step(s); first at "
                f"{where.first(falls, ordered[:, 1:] - ordered[:, :-1])} m between levels "
                f"{first[1]} and {first[1] + 1} from the ground; heights above ground must increase upward"
            )


@dataclass
class AdjustmentLog:
    """Counts of plausible values the model adjusted (floors, clips), per met time step and kind.

    Keyed by time step, so a time step read by several windows or work units counts once; the totals
    (:meth:`totals`) go into the run file. The first adjustment of each kind is logged as a warning.
    """

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    _warned: set[str] = field(default_factory=set)

    def record(self, kind: str, mask: np.ndarray, times: np.ndarray, where: str) -> None:
        """Count the True values of ``mask`` (time first) under ``kind``, per time step."""
        per_time = mask.reshape(mask.shape[0], -1).sum(axis=1)
        if not per_time.any():
            return
        for t, n in zip(times, per_time, strict=True):
            if n:
                self.counts.setdefault(str(np.datetime_as_string(t, unit="s")), {})[kind] = int(n)
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning("%s: %s: %d value(s) in the window from %s (the run file's attribute "
                        "met_adjustments counts the whole run)", where, kind, int(per_time.sum()),
                        np.datetime_as_string(times[0], unit="m"))

    def merge(self, other: Mapping[str, Mapping[str, int]]) -> None:
        """Add another log's counts (time steps already present are kept: they hold the same values)."""
        for t, kinds in other.items():
            self.counts.setdefault(t, {}).update(kinds)

    def totals(self) -> dict[str, int]:
        """Count per kind over every time step seen."""
        out: dict[str, int] = {}
        for kinds in self.counts.values():
            for kind, n in kinds.items():
                out[kind] = out.get(kind, 0) + n
        return dict(sorted(out.items()))
