"""Station lists: the receptors of a backward (footprint) run and of station sampling.

A station list is a CSV with columns ``id, name, lon, lat`` (degrees, WGS84) and optionally ``height_m``
(height of the air intake above ground, m; default :data:`DEFAULT_STATION_HEIGHT_M`). Further columns are
kept; ``#`` lines are comments. This is the format of ``[receptors] stations`` (the same columns and checks
as the station lists of the observation readers, plus the height, which a receptor volume needs).

Every problem is one :class:`~airshed.errors.DataError` naming the file, the station and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from airshed.errors import DataError

#: Required columns of a station list.
STATION_COLUMNS: tuple[str, ...] = ("id", "name", "lon", "lat")
#: Optional column: intake height above ground, m.
HEIGHT_COLUMN = "height_m"
#: Intake height of a station whose list gives none, m (monitors sample at 3-15 m above ground; the receptor
#: volume of a backward run is the layer of the forward run's sampling depth that holds this height).
DEFAULT_STATION_HEIGHT_M = 10.0
#: Highest intake accepted, m (tall towers reach about 500 m).
MAX_STATION_HEIGHT_M = 1000.0


def read_stations(path: str | Path) -> pd.DataFrame:
    """Read a station list: ``id, name, lon, lat`` (degrees) and optionally ``height_m`` (m above ground).

    Returns
    -------
    pandas.DataFrame
        One row per station in file order: ``id`` and ``name`` as str, ``lon``, ``lat`` and ``height_m``
        float64 (the default height where the column is absent or a cell is empty), further columns as str.

    Raises
    ------
    DataError
        Missing columns, duplicated or empty ids, coordinates that are not numbers in range, a height that is
        not a number in [0, 1000] m.
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
