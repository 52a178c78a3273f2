"""Temporal profiles: month-of-year, day-of-week and hour-of-day factors per sector.

The emission rate at a time is the mean rate times ``month[m] * weekday[d] * hour[h]``, each profile
normalised to a mean of 1 (so the factors of a typical year average to ~1; exactly 1 for a flat
profile). Day of week and hour are in **local time**, China Standard Time (UTC+8) by default.

Profiles
--------
``"flat"``
    All factors 1 (the default).
``"china"``
    Typical Chinese profiles, per MEIC sector:

    * hour of day and day of week: the default allocation factors shipped by the MEIC team with
      their emission-processing tool meic2ctm (Tsinghua University MEIC model group,
      https://github.com/meicmodel/meic2ctm, files ``factor/hour.csv`` and ``factor/day.csv``, commit
      ef568123). The hourly table there is indexed in UTC (the industry profile's night minimum falls at
      17-22 UTC = 01-06 CST); it is shifted here by +8 h to China Standard Time. The weekly table runs
      Monday..Sunday. Residential and agriculture have flat weeks.
    * month of year: the China monthly profiles distributed with the EMIPS emission processor
      (Wang Y.Q. et al., MeteoInfo EMIPS, https://github.com/meteoinfo/EMIPS, file
      ``emips/ge_data/temporal_li.txt``, commit 83703864), whose file name refers to Li et al.; we
      understand these as the MEIC monthly profiles used in MIX (Li M. et al. 2017, Atmos. Chem. Phys.
      17:935) but have not verified the attribution: treat them as typical, approximate values. Power
      peaks in winter (1.20 in January, 0.80 in July), residential has a strong heating-season
      maximum (1.30 in January vs 0.67 in July), agriculture a spring fertilisation maximum.
    * sector ``other`` uses flat profiles.

Each table is renormalised to mean 1 (the sources give shares summing to 1 or to an arbitrary sum).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from airshed.errors import AirshedInputError
from airshed.inputs.emissions.species import SECTORS

CST_OFFSET_HOURS = 8
"""China Standard Time is UTC+8 (no daylight saving)."""

# meic2ctm factor/hour.csv, indexed by UTC hour 0..23 (shares summing to 1).
_HOUR_UTC = {
    "agriculture": [
        0.047344586,
        0.057636888,
        0.069987649,
        0.07822149,
        0.088513792,
        0.082338411,
        0.080279951,
        0.069987649,
        0.059695348,
        0.045286126,
        0.030876904,
        0.026759984,
        0.022643063,
        0.020584603,
        0.020584603,
        0.020584603,
        0.020584603,
        0.019349527,
        0.019349527,
        0.017702758,
        0.018937834,
        0.020996295,
        0.028818444,
        0.032935364,
    ],
    "industry": [
        0.045,
        0.068,
        0.068,
        0.068,
        0.068,
        0.068,
        0.068,
        0.068,
        0.068,
        0.066,
        0.063,
        0.037,
        0.037,
        0.037,
        0.037,
        0.037,
        0.026,
        0.007,
        0.007,
        0.007,
        0.007,
        0.007,
        0.007,
        0.029,
    ],
    "power": [
        0.043308662,
        0.045709142,
        0.047809562,
        0.048609722,
        0.049409882,
        0.049709942,
        0.050110022,
        0.050010002,
        0.049709942,
        0.048909782,
        0.047709542,
        0.047309462,
        0.046609322,
        0.044008802,
        0.039707942,
        0.035207041,
        0.032406481,
        0.030006001,
        0.028805761,
        0.028405681,
        0.029205841,
        0.031606321,
        0.035407081,
        0.040308062,
    ],
    "residential": [
        0.038,
        0.038,
        0.03,
        0.045,
        0.045,
        0.038,
        0.03,
        0.03,
        0.038,
        0.075,
        0.075,
        0.075,
        0.075,
        0.054,
        0.018,
        0.018,
        0.018,
        0.018,
        0.018,
        0.018,
        0.018,
        0.038,
        0.075,
        0.075,
    ],
    "transport": [
        0.059913919,
        0.058951217,
        0.059417271,
        0.053973297,
        0.050105587,
        0.058741691,
        0.060048034,
        0.061959877,
        0.059366207,
        0.057388808,
        0.055680067,
        0.049027628,
        0.045426384,
        0.041667392,
        0.030830955,
        0.021573887,
        0.017221058,
        0.013226732,
        0.013800055,
        0.015030489,
        0.015526895,
        0.015687039,
        0.029029551,
        0.056405959,
    ],
}

# meic2ctm factor/day.csv, Monday..Sunday (shares summing to 1).
_WEEKDAY = {
    "agriculture": [1 / 7] * 7,
    "industry": [0.162, 0.162, 0.162, 0.162, 0.162, 0.112, 0.078],
    "power": [0.147, 0.147, 0.147, 0.147, 0.147, 0.135, 0.13],
    "residential": [1 / 7] * 7,
    "transport": [0.155324459] * 5 + [0.116472545, 0.106905158],
}

# EMIPS temporal_li.txt /MONTHLY/ (Jan..Dec; arbitrary sums, renormalised).
_MONTH = {
    "power": [1.2, 1.15, 1.05, 1, 0.9, 0.85, 0.8, 0.875, 0.95, 1, 1.075, 1.15],
    "industry": [2.05, 2.055, 2.04, 2.01, 1.98, 1.91, 1.94, 1.94, 1.96, 2, 2.035, 2.07],
    "residential": [3.9, 3.7, 3.5, 2.8, 2.5, 2.2, 2, 2.2, 2.5, 3.25, 3.6, 3.85],
    "transport": [1.76, 1.84, 1.96, 2.06, 2.1, 2.12, 2.02, 2.04, 2.12, 2.1, 2.02, 1.86],
    "agriculture": [0.45, 1.3, 2.35, 1.7, 0.85, 0.85, 0.85, 1, 1.1, 0.65, 0.45, 0.45],
}

PROFILE_SETS = ("flat", "china")
"""Names of the built-in profile sets."""


def _mean_one(values: list[float] | np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return v / v.mean()


@dataclass(frozen=True)
class SectorProfile:
    """Temporal factors (mean 1) of one sector.

    ``month`` (12, Jan..Dec), ``weekday`` (7, Mon..Sun), ``hour`` (24, local hour 0..23).
    """

    month: np.ndarray = field(default_factory=lambda: np.ones(12))
    weekday: np.ndarray = field(default_factory=lambda: np.ones(7))
    hour: np.ndarray = field(default_factory=lambda: np.ones(24))

    def __post_init__(self) -> None:
        for name, n in (("month", 12), ("weekday", 7), ("hour", 24)):
            v = np.asarray(getattr(self, name), dtype=float)
            if v.shape != (n,) or not np.all(np.isfinite(v)) or (v < 0).any() or v.sum() <= 0:
                raise AirshedInputError(
                    f"temporal profile {name!r} must be {n} finite factors >= 0, not all zero; got {v!r}"
                )
            object.__setattr__(self, name, _mean_one(v))


@dataclass(frozen=True)
class TemporalProfiles:
    """Temporal profiles per sector; sectors without a profile are flat.

    Parameters
    ----------
    profiles
        Sector name -> :class:`SectorProfile`.
    utc_offset_hours
        Offset of local time from UTC in which weekday and hour factors are indexed (8 for China).
    """

    profiles: dict[str, SectorProfile] = field(default_factory=dict)
    utc_offset_hours: float = CST_OFFSET_HOURS

    @classmethod
    def builtin(cls, name: str = "flat") -> TemporalProfiles:
        """Return a built-in profile set: ``"flat"`` or ``"china"`` (see the module docstring)."""
        if name == "flat":
            return cls({})
        if name == "china":
            profiles = {}
            for sector in ("power", "industry", "residential", "transport", "agriculture"):
                local_hour = np.roll(np.asarray(_HOUR_UTC[sector]), CST_OFFSET_HOURS)
                profiles[sector] = SectorProfile(
                    month=np.asarray(_MONTH[sector]), weekday=np.asarray(_WEEKDAY[sector]), hour=local_hour
                )
            return cls(profiles)
        raise AirshedInputError(
            f"unknown temporal profile set {name!r}; choose one of {', '.join(PROFILE_SETS)}"
        )

    def factor(self, sector: str, times_utc: np.ndarray | pd.DatetimeIndex) -> np.ndarray:
        """Product of month, weekday and hour factors of a sector at the given UTC times.

        Parameters
        ----------
        sector
            Canonical sector name.
        times_utc
            Times in UTC (numpy datetime64 or anything :class:`pandas.DatetimeIndex` accepts; timezone-
            aware times are converted to UTC).

        Returns
        -------
        numpy.ndarray
            Dimensionless factors, float64, one per time.
        """
        if sector not in SECTORS:
            raise AirshedInputError(f"unknown sector {sector!r}; valid sectors are {', '.join(SECTORS)}")
        t = pd.DatetimeIndex(
            np.atleast_1d(times_utc) if not isinstance(times_utc, pd.DatetimeIndex) else times_utc
        )
        if t.tz is not None:
            t = t.tz_convert("UTC").tz_localize(None)
        profile = self.profiles.get(sector)
        if profile is None:
            return np.ones(t.size)
        local = t + pd.Timedelta(hours=self.utc_offset_hours)
        return (
            profile.month[local.month.to_numpy() - 1]
            * profile.weekday[local.day_of_week.to_numpy()]
            * profile.hour[local.hour.to_numpy()]
        )


def temporal_factor(
    sector: str, times_utc: np.ndarray | pd.DatetimeIndex, profiles: str = "flat"
) -> np.ndarray:
    """Temporal factor (mean 1) of a sector at UTC times, from a built-in profile set.

    Parameters
    ----------
    sector
        Canonical sector name (``power``, ``industry``, ``residential``, ``transport``, ``agriculture``,
        ``other``).
    times_utc
        Times in UTC.
    profiles
        ``"flat"`` (default: all ones) or ``"china"`` (typical MEIC profiles, local time UTC+8).
    """
    return TemporalProfiles.builtin(profiles).factor(sector, times_utc)
