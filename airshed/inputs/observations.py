"""Station observations of air quality and the station list: readers (and the CNEMC writer for tests).

Two layouts of hourly observations are read, both into one long table (:class:`Observations`) in
ug m-3 with UTC times at the **end** of each averaging hour (the run file's convention):

``cnemc``
    The layout in which the hourly data of China's national monitoring network (China National
    Environmental Monitoring Centre, CNEMC) are mirrored publicly, one file per day
    (``china_sites_YYYYMMDD.csv``): columns ``date`` (YYYYMMDD), ``hour`` (0-23), ``type`` and one column
    per station id (``1001A``, ...); one row per (hour, type). Hourly types ``PM2.5``, ``PM10``, ``SO2``,
    ``NO2``, ``O3`` in ug m-3 and ``CO`` in mg m-3. The derived running means (``PM2.5_24h``,
    ``PM10_24h``, ``SO2_24h``, ``NO2_24h``, ``CO_24h``, ``O3_24h``, ``O3_8h``, ``O3_8h_24h``) and ``AQI``
    are recognised and skipped (they are averages of the hourly values, not new information). An empty
    cell is a missing value. Times are Beijing time (UTC+8) and a value is the mean of the hour ending at
    ``hour``: CNEMC's publication notes state that the 16 h value is the mean of 15:00-16:00 (quoted in
    the README of the public mirror HeQinWill/CNEMC); hour 0 of day D is the last hour of day D-1.
``long``
    A plain CSV with columns ``station, time, species, value, unit`` (case-insensitive, ``#`` comment
    lines allowed): ``time`` is ISO 8601, the end of the averaging hour, UTC unless it carries an offset
    (``2017-12-01T09:00+08:00``); ``species`` one of :data:`OBSERVED_SPECIES` (aliases such as ``pm25``,
    ``no2`` accepted); ``unit`` a mass concentration, ``ug m-3`` or ``mg m-3`` in any common spelling
    (``ug/m3``, ``µg/m³``, ...). Volume mixing ratios (ppb, ppm) are refused: they need the temperature
    and pressure of the air sample, which the file does not give.

Units are checked: every value is converted to ug m-3, and a value above :data:`MAX_PLAUSIBLE_UG_M3` (far
above any recorded hourly value of that species) is refused as a unit mix-up (CO in ug m-3 labelled mg
m-3, say). Negative values are errors. Every problem is one :class:`~airshed.errors.DataError` naming the
file, the row or column and what was expected.

Station list: a CSV with columns ``id, name, lon, lat`` (degrees, WGS84) and optionally ``height_m`` (intake
height above ground, m; further columns are kept), read by :func:`read_stations`: the stations of
``[receptors]`` for a forward run's sampling, ``airshed verify`` and a backward run's receptors.

Readers know no kernels and no run file: matching observations to model output is
:mod:`airshed.verification`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from airshed.errors import DataError

OBSERVED_SPECIES: tuple[str, ...] = ("PM2.5", "PM10", "SO2", "NO2", "CO", "O3")
"""Species of the national monitoring network, canonical names."""

CNEMC_UTC_OFFSET_H = 8
"""CNEMC times are Beijing time, UTC+8."""

CNEMC_UNITS: dict[str, str] = {s: ("mg m-3" if s == "CO" else "ug m-3") for s in OBSERVED_SPECIES}
"""Units of the hourly types of the CNEMC layout."""

CNEMC_DERIVED_TYPES: tuple[str, ...] = ("PM2.5_24h", "PM10_24h", "SO2_24h", "NO2_24h", "CO_24h", "O3_24h",
                                        "O3_8h", "O3_8h_24h", "AQI")
"""Types of the CNEMC layout that are running means (or an index) of the hourly values: skipped."""

UNIT_TO_UG_M3: dict[str, float] = {"ug m-3": 1.0, "mg m-3": 1000.0}
"""Accepted units (canonical spelling) and their factor to ug m-3."""

MAX_PLAUSIBLE_UG_M3: dict[str, float] = {
    "PM2.5": 3000.0, "PM10": 20000.0, "SO2": 10000.0, "NO2": 3000.0, "CO": 100000.0, "O3": 2000.0,
}
"""Largest hourly value accepted, ug m-3: several times the highest hourly values recorded in China's
haze and dust episodes (PM2.5 about 1000, PM10 in dust storms several thousand, CO about 20 mg m-3).
A larger value is taken for a unit mix-up and refused."""

LONG_COLUMNS: tuple[str, ...] = ("station", "time", "species", "value", "unit")
"""Columns of the long layout."""

STATION_COLUMNS: tuple[str, ...] = ("id", "name", "lon", "lat")
"""Required columns of a station list."""

HEIGHT_COLUMN = "height_m"
"""Optional column of a station list: intake height above ground, m."""

DEFAULT_STATION_HEIGHT_M = 10.0
"""Intake height of a station whose list gives none, m (monitors sample at 3-15 m above ground; a backward
run's receptor volume is the layer of the forward run's sampling depth that holds this height)."""

MAX_STATION_HEIGHT_M = 1000.0
"""Highest intake accepted, m (tall towers reach about 500 m)."""

_SPECIES_ALIASES = {re.sub(r"[^a-z0-9]", "", s.lower()): s for s in OBSERVED_SPECIES} | {
    "pm2p5": "PM2.5", "pmfine": "PM2.5", "ozone": "O3", "no2": "NO2",
}


def canonical_observed_species(name: str) -> str | None:
    """Canonical name of an observed species (``pm25`` -> ``PM2.5``), None if it is not one."""
    return _SPECIES_ALIASES.get(re.sub(r"[^a-z0-9]", "", str(name).strip().lower()))


def canonical_unit(unit: str) -> str | None:
    """``ug m-3`` or ``mg m-3`` for any common spelling of those units (``µg/m³``, ``ug/m3``), else None."""
    text = str(unit).strip().lower().replace("µ", "u").replace("μ", "u").replace("³", "3")
    text = re.sub(r"\s+", "", text).replace("**", "").replace("^", "")
    match = re.fullmatch(r"(ug|mg)(/m3|m-3)", text)
    return f"{match.group(1)} m-3" if match else None


@dataclass
class Observations:
    """Hourly station observations in one long table.

    Attributes
    ----------
    frame
        Columns ``station`` (str), ``time`` (datetime64[ns], UTC, end of the averaging hour), ``species``
        (one of :data:`OBSERVED_SPECIES`), ``value`` (float64, ug m-3), sorted by station, species, time;
        missing values are not rows.
    files
        The files read.
    """

    frame: pd.DataFrame
    files: list[Path] = field(default_factory=list)

    @property
    def species(self) -> list[str]:
        """Species present, in :data:`OBSERVED_SPECIES` order."""
        present = set(self.frame["species"])
        return [s for s in OBSERVED_SPECIES if s in present]

    @property
    def stations(self) -> list[str]:
        """Station ids present, sorted."""
        return sorted(set(self.frame["station"]))


def _line_numbers(path: Path, rows: int) -> np.ndarray | None:
    """File line numbers (1-based) of a CSV's ``rows`` data rows, as pandas read them (comment="#").

    Blank and comment lines are skipped like pandas skips them; None when the count does not match (a
    quoted field spanning lines), and the messages then count data rows instead.
    """
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    kept = [n for n, line in enumerate(lines, 1) if line.strip() and not line.strip().startswith("#")]
    return np.asarray(kept[1:]) if len(kept) == rows + 1 else None


def _where(path: Path, lines: np.ndarray | None, row: int, station: str, time: str) -> str:
    """``observation file PATH, line N (station S, time T)`` for data row ``row`` (0-based)."""
    place = f"line {lines[row]}" if lines is not None else f"data row {row + 1}"
    return f"observation file {path}, {place} (station {station}, {time})"


def _check_values(values: np.ndarray, species: str, locate: Callable[[int], str]) -> None:
    """Refuse negative, non-finite or implausibly large values (ug m-3) of one species.

    ``locate(i)`` says where ``values[i]`` is in its file (file, line, station, time) for the message.
    """
    if values.size == 0:
        return
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise DataError(f"{locate(bad[0])}: {species} value is not a finite number")
    bad = np.flatnonzero(values < 0)
    if bad.size:
        raise DataError(f"{locate(bad[0])}: negative {species} concentration {values[bad[0]]:g} ug m-3; "
                        "concentrations are >= 0 (mark a missing value by an empty cell)")
    limit = MAX_PLAUSIBLE_UG_M3[species]
    bad = np.flatnonzero(values > limit)
    if bad.size:
        raise DataError(f"{locate(bad[0])}: {species} = {values[bad[0]]:g} ug m-3 exceeds {limit:g} ug m-3, "
                        "far above any recorded hourly value; check the unit (CO is in mg m-3 in the CNEMC "
                        "layout)")


def _first_not_a_number(cells: pd.DataFrame) -> tuple[int, int]:
    """(row, column) position of the first cell of ``cells`` (strings; '' is missing) float() refuses."""
    for i, row in enumerate(cells.itertuples(index=False)):
        for j, text in enumerate(row):
            try:
                float(text or "nan")
            except ValueError:
                return i, j
    raise AssertionError("no cell refused")  # pragma: no cover - called after float() refused one


def _finish(frames: list[pd.DataFrame], files: list[Path]) -> Observations:
    columns = ["station", "time", "species", "value"]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    frame = frame[columns].astype({"station": str, "species": str, "value": "float64"})
    frame["time"] = pd.to_datetime(frame["time"]).astype("datetime64[ns]")
    duplicated = frame.duplicated(["station", "species", "time"], keep=False)
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise DataError(f"observations {', '.join(map(str, files))}: station {row.station}, {row.species} at "
                        f"{row.time:%Y-%m-%dT%H:%M} (UTC, end of hour) is given more than once")
    frame = frame.sort_values(["station", "species", "time"], kind="stable").reset_index(drop=True)
    return Observations(frame, list(files))


# ---------------------------------------------------------------------------------------------------
# the CNEMC daily layout
# ---------------------------------------------------------------------------------------------------
def _read_cnemc_file(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, comment="#", encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read observation file {path}: {exc}") from None
    head = [c.strip().lower() for c in table.columns[:3]]
    if head != ["date", "hour", "type"]:
        raise DataError(f"observation file {path}: expected the CNEMC layout with columns date, hour, type, "
                        f"<station ids>; found {list(table.columns[:4])}")
    stations = [str(c).strip() for c in table.columns[3:]]
    if not stations:
        raise DataError(f"observation file {path}: no station columns after date, hour, type")
    table.columns = ["date", "hour", "type", *stations]
    known = set(OBSERVED_SPECIES) | set(CNEMC_DERIVED_TYPES)
    unknown = sorted(set(table["type"].str.strip()) - known)
    if unknown:
        raise DataError(f"observation file {path}: unknown type {unknown[0]!r}; the CNEMC layout has "
                        f"{', '.join(OBSERVED_SPECIES)} and their running means "
                        f"({', '.join(CNEMC_DERIVED_TYPES)})")
    try:
        date = pd.to_datetime(table["date"].str.strip(), format="%Y%m%d")
        hour = table["hour"].str.strip().astype(int)
    except ValueError as exc:
        raise DataError(f"observation file {path}: date must be YYYYMMDD and hour an integer 0-23 ({exc})") \
            from None
    if ((hour < 0) | (hour > 23)).any():
        raise DataError(f"observation file {path}: hour {int(hour[(hour < 0) | (hour > 23)].iloc[0])} "
                        "outside 0-23")
    end_utc = date + pd.to_timedelta(hour - CNEMC_UTC_OFFSET_H, unit="h")
    lines = _line_numbers(path, len(table))

    def where(row: int, column: int) -> str:
        return _where(path, lines, row, stations[column],
                      f"date {table['date'].iloc[row].strip()} hour {table['hour'].iloc[row].strip()}")

    frames = []
    for species in OBSERVED_SPECIES:
        rows = np.flatnonzero((table["type"].str.strip() == species).to_numpy())
        if rows.size == 0:
            continue
        block = table.iloc[rows, 3:].apply(lambda col: col.str.strip())
        try:
            values = block.replace("", np.nan).astype(float).to_numpy()
        except ValueError:
            i, j = _first_not_a_number(block)
            raise DataError(f"{where(rows[i], j)}: {species} value {block.iloc[i, j]!r} is not a number") \
                from None
        values = values * UNIT_TO_UG_M3[CNEMC_UNITS[species]]
        present = np.isfinite(values)
        r, s = np.nonzero(present)
        _check_values(values[present], species, lambda i, r=r, s=s, rows=rows: where(rows[r[i]], s[i]))
        frames.append(pd.DataFrame({"station": np.asarray(stations, dtype=object)[s],
                                    "time": end_utc.to_numpy()[rows[r]],
                                    "species": species, "value": values[present]}))
    if not frames:
        return pd.DataFrame(columns=["station", "time", "species", "value"])
    return pd.concat(frames, ignore_index=True)


def read_cnemc(paths: Iterable[str | Path]) -> Observations:
    """Read CNEMC-layout daily files (``china_sites_YYYYMMDD.csv``); see the module docstring."""
    files = [Path(p) for p in paths]
    return _finish([_read_cnemc_file(p) for p in files], files)


def write_cnemc(observations: Observations, folder: str | Path) -> list[Path]:
    """Write observations in the CNEMC daily layout (one ``china_sites_YYYYMMDD.csv`` per Beijing day).

    The inverse of :func:`read_cnemc` (values rounded to 0.001 in the file's units). Used to hand synthetic
    observations to ``airshed verify`` through the same reader as real data.
    """
    folder = Path(folder)
    frame = observations.frame.copy()
    local_end = frame["time"] + pd.Timedelta(hours=CNEMC_UTC_OFFSET_H)
    frame["date"] = local_end.dt.strftime("%Y%m%d")
    frame["hour"] = local_end.dt.hour
    frame["value"] = frame["value"] / frame["species"].map(lambda s: UNIT_TO_UG_M3[CNEMC_UNITS[s]])
    stations = sorted(set(frame["station"]))
    written = []
    for day, part in frame.groupby("date", sort=True):
        wide = part.pivot_table(index=["hour", "species"], columns="station", values="value", aggfunc="first")
        wide = wide.reindex(columns=stations)
        order = {s: i for i, s in enumerate(OBSERVED_SPECIES)}
        rows = sorted(wide.index, key=lambda hs: (hs[0], order[hs[1]]))
        wide = wide.loc[rows].round(3)
        out = pd.DataFrame({"date": day, "hour": [h for h, _ in rows], "type": [s for _, s in rows]})
        out = pd.concat([out, wide.reset_index(drop=True)], axis=1)
        path = folder / f"china_sites_{day}.csv"
        out.to_csv(path, index=False, na_rep="", float_format="%.3f")
        written.append(path)
    return written


# ---------------------------------------------------------------------------------------------------
# the long layout
# ---------------------------------------------------------------------------------------------------
def _read_long_file(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, comment="#", encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read observation file {path}: {exc}") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in LONG_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"observation file {path}: missing column(s) {', '.join(missing)}; the long layout "
                        f"has columns {', '.join(LONG_COLUMNS)}")
    lines = _line_numbers(path, len(table))
    table = table[table["value"].str.strip() != ""]

    def where(i: int) -> str:  # the i-th row left
        return _where(path, lines, int(table.index[i]), table["station"].iloc[i].strip(),
                      f"time {table['time'].iloc[i].strip()}")

    species = table["species"].map(canonical_observed_species)
    if species.isna().any():
        bad = table["species"][species.isna()].iloc[0]
        raise DataError(f"observation file {path}: unknown species {bad!r}; expected one of "
                        f"{', '.join(OBSERVED_SPECIES)}")
    units = table["unit"].map(canonical_unit)
    if units.isna().any():
        bad = table["unit"][units.isna()].iloc[0]
        hint = (" (a mixing ratio needs the air's temperature and pressure: convert to ug m-3)"
                if re.search(r"pp[mbt]", str(bad).lower()) else "")
        raise DataError(f"observation file {path}: unit {bad!r} is not a mass concentration; expected ug m-3 "
                        f"or mg m-3{hint}")
    try:
        values = table["value"].str.strip().astype(float).to_numpy() * units.map(UNIT_TO_UG_M3).to_numpy()
    except ValueError:
        i, _ = _first_not_a_number(table[["value"]].apply(lambda col: col.str.strip()))
        raise DataError(f"{where(i)}: value {table['value'].iloc[i].strip()!r} is not a number") from None
    text = table["time"].str.strip()
    times = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    if times.isna().any():
        raise DataError(f"observation file {path}: time {text[times.isna()].iloc[0]!r} is not ISO 8601, e.g. "
                        "2017-12-01T09:00 or 2017-12-01T09:00+08:00")
    for name in OBSERVED_SPECIES:
        chosen = np.flatnonzero((species == name).to_numpy())
        _check_values(values[chosen], name, lambda i, chosen=chosen: where(chosen[i]))
    return pd.DataFrame({"station": table["station"].str.strip().to_numpy(),
                         "time": times.dt.tz_convert(None).to_numpy(),
                         "species": species.to_numpy(), "value": values})


def read_long(paths: Iterable[str | Path]) -> Observations:
    """Read long-layout CSV files (station, time, species, value, unit); see the module docstring."""
    files = [Path(p) for p in paths]
    return _finish([_read_long_file(p) for p in files], files)


# ---------------------------------------------------------------------------------------------------
# either layout
# ---------------------------------------------------------------------------------------------------
def observation_layout(path: str | Path) -> str:
    """``"cnemc"`` or ``"long"``: the layout of an observation file, from its header line."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig") as f:
            header = next((line for line in f if line.strip() and not line.startswith("#")), "")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read observation file {path}: {exc}") from None
    columns = [c.strip().lower() for c in header.split(",")]
    if columns[:3] == ["date", "hour", "type"]:
        return "cnemc"
    if set(LONG_COLUMNS) <= set(columns):
        return "long"
    raise DataError(f"observation file {path}: unknown layout; expected the CNEMC layout (date, hour, type, "
                    f"<station ids>) or the long layout ({', '.join(LONG_COLUMNS)})")


READERS = {"cnemc": read_cnemc, "long": read_long}
"""Observation layouts and their readers."""


def read_observations(paths: str | Path | Sequence[str | Path]) -> Observations:
    """Read observation files of either layout (mixed allowed; a folder means its ``*.csv`` files)."""
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    files: list[Path] = []
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            found = sorted(p.glob("*.csv"))
            if not found:
                raise DataError(f"observation folder {p} holds no .csv files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(f"observation file {p} not found")
    frames = []
    for layout, reader in READERS.items():
        chosen = [f for f in files if observation_layout(f) == layout]
        if chosen:
            frames.append(reader(chosen).frame)
    return _finish(frames, files)


# ---------------------------------------------------------------------------------------------------
# station lists
# ---------------------------------------------------------------------------------------------------
def read_stations(path: str | Path) -> pd.DataFrame:
    """Read a station list: ``id, name, lon, lat`` (degrees, WGS84), optionally ``height_m``, and any others.

    ``height_m`` is the height of the air intake above ground, m (a backward run's receptor volume needs
    it); where the column is absent or a cell empty it is :data:`DEFAULT_STATION_HEIGHT_M`.

    Returns
    -------
    pandas.DataFrame
        One row per station in file order: ``id`` and ``name`` as str, ``lon``, ``lat`` and ``height_m``
        float64, further columns as str.

    Raises
    ------
    DataError
        Missing columns, duplicated or empty ids, coordinates that are not numbers in range, a height that is
        not a number in [0, :data:`MAX_STATION_HEIGHT_M`] m.
    """
    path = Path(path).expanduser()
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, comment="#", encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"station list {path} not found") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot read station list {path}: {exc}") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in STATION_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"station list {path}: missing column(s) {', '.join(missing)}; expected "
                        f"{', '.join(STATION_COLUMNS)} (lon/lat in degrees) and optionally {HEIGHT_COLUMN}")
    if len(table) == 0:
        raise DataError(f"station list {path} holds no stations")
    table["id"] = table["id"].str.strip()
    table["name"] = table["name"].str.strip()
    if (table["id"] == "").any():
        raise DataError(f"station list {path}: row {int(np.flatnonzero(table['id'] == '')[0]) + 1} has no id")
    repeated = table["id"][table["id"].duplicated()]
    if len(repeated):
        raise DataError(f"station list {path}: station id {repeated.iloc[0]!r} appears more than once")
    for column, bound in (("lon", 180.0), ("lat", 90.0)):
        values = pd.to_numeric(table[column].str.strip(), errors="coerce")
        bad = values.isna() | (values.abs() > bound)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"station list {path}: station {table['id'].iloc[row]!r}: {column} = "
                            f"{table[column].iloc[row]!r}, expected a number in [-{bound:g}, {bound:g}] "
                            "degrees")
        table[column] = values.astype("float64")
    if HEIGHT_COLUMN in table.columns:
        text = table[HEIGHT_COLUMN].str.strip()
        values = pd.to_numeric(text.where(text != "", str(DEFAULT_STATION_HEIGHT_M)), errors="coerce")
        bad = values.isna() | (values < 0.0) | (values > MAX_STATION_HEIGHT_M)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"station list {path}: station {table['id'].iloc[row]!r}: {HEIGHT_COLUMN} = "
                            f"{table[HEIGHT_COLUMN].iloc[row]!r}, expected a height above ground in "
                            f"[0, {MAX_STATION_HEIGHT_M:g}] m")
        table[HEIGHT_COLUMN] = values.astype("float64")
    else:
        table[HEIGHT_COLUMN] = DEFAULT_STATION_HEIGHT_M
    return table.reset_index(drop=True)
