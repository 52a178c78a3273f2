"""Maps of a footprint file (``airshed footprint``): where a station's air, and its pollution, came from.

- :func:`plot_footprint_map`: one station's footprint (summed over the file's averaging periods) on a
  logarithmic scale, in s per cell (``air``: the residence time of the station's air in the lowest 50 m)
  or, for a pathway such as ``sulfate<-SO2``, the share of an emission there that reaches the station;
- :func:`plot_footprint_panels`: small multiples of every station's ``air`` footprint.

Drawn in the file's projection with the outlines airshed ships (:mod:`airshed.outputs.maps`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from airshed.errors import AirshedInputError, DataError
from airshed.outputs.maps import (
    _draw_cities,
    _draw_outlines,
    _gridlines,
    _new_map_axes,
    cell_edges,
    map_projection,
    run_label,
)
from airshed.outputs.style import figure_style, new_figure, save_figure

#: Decades shown below the largest value of a footprint map.
DECADES = 4.0


def _footprint(ds: xr.Dataset, station: str, pathway: str) -> xr.DataArray:
    if "footprint" not in ds:
        raise DataError("file lacks the variable 'footprint' (write one with `airshed footprint`)")
    stations = [str(s) for s in ds["station"].values]
    if station not in stations:
        raise AirshedInputError(f"unknown station {station!r}; the file has: {', '.join(stations)}")
    pathways = [str(p) for p in ds["pathway"].values]
    if pathway not in pathways:
        raise AirshedInputError(f"unknown pathway {pathway!r}; the file has: {', '.join(pathways)}")
    return ds["footprint"].sel(station=station, pathway=pathway).sum("time").transpose("y", "x")


def _station_xy(ds: xr.Dataset, station: str, projection) -> tuple[float, float]:
    import pyproj

    q = [str(s) for s in ds["station"].values].index(station)
    transformer = pyproj.Transformer.from_crs("EPSG:4326", pyproj.CRS.from_wkt(projection.to_wkt()),
                                              always_xy=True)
    x, y = transformer.transform(float(ds["station_lon"].values[q]), float(ds["station_lat"].values[q]))
    return float(x), float(y)


def _log_norm(values: np.ndarray) -> mcolors.LogNorm:
    positive = values[np.isfinite(values) & (values > 0)]
    top = float(positive.max()) if positive.size else 1.0
    return mcolors.LogNorm(vmin=top / 10.0**DECADES, vmax=top)


def plot_footprint_map(ds: xr.Dataset, station: str, pathway: str = "air") -> Figure:
    """Map of a station's footprint for one pathway, summed over the averaging periods of the file."""
    field = _footprint(ds, station, pathway)
    projection = map_projection(ds)
    x_edges, y_edges = cell_edges(ds)
    values = field.values
    with figure_style():
        fig = new_figure(6.4, 5.6)
        ax = _new_map_axes(fig, 111, ds, projection)
        mesh = ax.pcolormesh(x_edges, y_edges, np.where(values > 0, values, np.nan), cmap="viridis_r",
                             norm=_log_norm(values), shading="flat", transform=projection, rasterized=True)
        _draw_outlines(ax, ds, projection)
        _draw_cities(ax, ds, projection)
        sx, sy = _station_xy(ds, station, projection)
        ax.scatter([sx], [sy], marker="*", s=80, c="red", edgecolors="white", linewidths=0.6, zorder=6)
        _gridlines(ax)
        what = "residence time of the station's air" if pathway == "air" else f"sensitivity {pathway}"
        layer = float(ds.attrs.get("source_layer_depth_m", 50.0))
        fig.colorbar(mesh, ax=ax, shrink=0.85, extend="min",
                     label=f"footprint, {what} (s per cell, lowest {layer:g} m)")
        ax.set_title(f"Footprint of {station} ({pathway})\n{run_label(ds)}")
    return fig


def plot_footprint_panels(ds: xr.Dataset, pathway: str = "air", ncols: int = 5) -> Figure:
    """Small multiples of every station's footprint (shared logarithmic scale)."""
    stations = [str(s) for s in ds["station"].values]
    fields = np.stack([_footprint(ds, s, pathway).values for s in stations])
    projection = map_projection(ds)
    x_edges, y_edges = cell_edges(ds)
    norm = _log_norm(fields)
    nrows = -(-len(stations) // ncols)
    with figure_style():
        fig = new_figure(1.9 * ncols, 1.75 * nrows + 0.6)
        grid = fig.add_gridspec(nrows, ncols)
        axes = []
        for k, name in enumerate(stations):
            ax = _new_map_axes(fig, grid[k // ncols, k % ncols], ds, projection)
            mesh = ax.pcolormesh(x_edges, y_edges, np.where(fields[k] > 0, fields[k], np.nan),
                                 cmap="viridis_r", norm=norm, shading="flat", transform=projection,
                                 rasterized=True)
            _draw_outlines(ax, ds, projection)
            sx, sy = _station_xy(ds, name, projection)
            ax.scatter([sx], [sy], marker="*", s=20, c="red", zorder=6, linewidths=0)
            ax.set_title(name, fontsize=8, pad=2)
            axes.append(ax)
        fig.colorbar(mesh, ax=axes, shrink=0.6, extend="min", label=f"footprint {pathway} (s per cell)")
        fig.suptitle(f"Station footprints ({pathway})\n{run_label(ds)}")
    return fig


def write_footprint_figures(path: Path, fmt: str = "png") -> list[Path]:
    """Write the panel map and one map per station of a footprint file into ``<stem>_figures/``."""
    path = Path(path)
    folder = path.with_name(f"{path.stem}_figures")
    folder.mkdir(exist_ok=True)
    written = []
    with xr.open_dataset(path) as ds:
        written.append(save_figure(plot_footprint_panels(ds), folder / f"footprints.{fmt}"))
        for station in [str(s) for s in ds["station"].values]:
            figure = plot_footprint_map(ds, station)
            written.append(save_figure(figure, folder / f"footprint_{station}.{fmt}"))
    return written
