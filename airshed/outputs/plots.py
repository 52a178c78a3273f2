"""Charts of a run's source apportionment, and :func:`write_figures`, which writes every figure.

- :func:`plot_source_receptor_heatmap`: the source-receptor matrix, receptors x sources, each cell the
  percentage of the receptor's population-weighted period-mean concentration, annotated;
- :func:`plot_city_contributions`: a stacked bar per city of the concentration each source region causes;
- :func:`plot_city_time_series`: hourly concentration at each city, stacked by source region.

Source regions keep one colour in every chart (:func:`source_colours`); ``outside`` is grey.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from airshed.atomic_files import OUTPUT_FOLDER, Destination
from airshed.errors import AirshedInputError, DataError
from airshed.grids.boundaries import MUNICIPALITIES, OUTSIDE, division_name, divisions_table
from airshed.outputs import maps
from airshed.outputs.style import FORMATS, figure_png_bytes, figure_style, new_figure, save_figure, unit_label


def source_colours(sources: Sequence[str]) -> dict[str, tuple]:
    """One colour per source region (tab20 in region order, then tab20b), grey for ``outside``."""
    palette = list(matplotlib.colormaps["tab20"].colors) + list(matplotlib.colormaps["tab20b"].colors)
    named = [s for s in sources if s != OUTSIDE]
    colours = {s: palette[k % len(palette)] for k, s in enumerate(named)}
    colours[OUTSIDE] = (0.6, 0.6, 0.6)
    return colours


def _require(ds: xr.Dataset, name: str) -> xr.DataArray:
    if name not in ds:
        raise DataError(f"run file lacks the variable {name!r}")
    return ds[name]


def _check_species(ds: xr.Dataset, species: str) -> None:
    available = [str(s) for s in ds["species"].values]
    if species not in available:
        raise AirshedInputError(f"unknown species {species!r}; the run file has: {', '.join(available)}")


def city_receptors(ds: xr.Dataset) -> list[str]:
    """Receptor regions that are cities, else all receptors.

    Cities are China's prefecture-level divisions and its four municipalities (Beijing, Tianjin,
    Shanghai, Chongqing), by name (``airshed/data/china_divisions.csv``), when the receptors include a
    prefecture: so a run over Beijing, Tianjin and Hebei's 11 cities charts those 13, and a run over
    provinces or a user's zones charts every receptor.
    """
    table = divisions_table()
    prefectures = set(table.loc[table["level"] == "prefecture", "name_en"])
    municipalities = {division_name(code) for code in MUNICIPALITIES}
    receptors = [str(r) for r in ds["receptor_region"].values]
    if not any(r in prefectures for r in receptors):
        return receptors
    return [r for r in receptors if r in prefectures or r in municipalities]


def plot_source_receptor_heatmap(ds: xr.Dataset, species: str = "PM2.5") -> Figure:
    """Annotated heatmap of the source-receptor matrix: % of each receptor's total from each source."""
    _check_species(ds, species)
    sr = _require(ds, "source_receptor").sel(species=species).transpose("receptor_region", "source_region")
    receptors = [str(r) for r in sr["receptor_region"].values]
    sources = [str(s) for s in sr["source_region"].values]
    values = sr.values
    total = values.sum(axis=1, keepdims=True)
    percent = np.divide(100.0 * values, total, out=np.full_like(values, np.nan), where=total > 0)
    with figure_style():
        fig = new_figure(0.36 * len(sources) + 2.6, 0.3 * len(receptors) + 2.2)
        ax = fig.add_subplot()
        image = ax.imshow(percent, cmap="Blues", vmin=0.0, vmax=100.0, aspect="auto")
        for r in range(len(receptors)):
            for s in range(len(sources)):
                value = percent[r, s]
                if not np.isfinite(value):
                    continue
                ax.text(s, r, f"{value:.0f}", ha="center", va="center", fontsize=5.5,
                        color="white" if value > 55.0 else "black")
        ax.set_xticks(range(len(sources)), sources, rotation=60, ha="right", rotation_mode="anchor",
                      fontsize=7)
        ax.set_yticks(range(len(receptors)), [f"{r} ({t:.0f})" for r, t in zip(receptors, total[:, 0],
                                                                                  strict=True)], fontsize=7)
        ax.set_xlabel("source region")
        ax.set_ylabel(f"receptor region (total, {unit_label(sr.attrs.get('units', 'ug m-3'))})")
        fig.colorbar(image, ax=ax, shrink=0.8, label="% of the receptor's population-weighted mean")
        ax.set_title(f"Source-receptor matrix of {species}\n{maps.run_label(ds)}")
    return fig


def plot_city_contributions(ds: xr.Dataset, species: str = "PM2.5") -> Figure:
    """Stacked bars of the period-mean concentration in each city caused by each source region."""
    _check_species(ds, species)
    cities = city_receptors(ds)
    sr = _require(ds, "source_receptor").sel(species=species, receptor_region=cities)
    sr = sr.transpose("receptor_region", "source_region")
    sources = [str(s) for s in sr["source_region"].values]
    colours = source_colours(sources)
    values = sr.values
    with figure_style():
        fig = new_figure(7.6, 4.6)
        ax = fig.add_subplot()
        bottom = np.zeros(len(cities))
        positions = np.arange(len(cities))
        for s, name in enumerate(sources):
            ax.bar(positions, values[:, s], bottom=bottom, color=colours[name], label=name, width=0.75,
                   edgecolor="white", linewidth=0.3)
            bottom += values[:, s]
        ax.set_xticks(positions, cities, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_ylabel(f"{species} ({unit_label(sr.attrs.get('units', 'ug m-3'))})")
        ax.set_xlim(-0.6, len(cities) - 0.4)
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], labels[::-1], title="source region", loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), fontsize=6.5, title_fontsize=7, frameon=False)
        ax.set_title(f"Period-mean {species} in each city by source region (population-weighted)\n"
                     f"{maps.run_label(ds)}")
    return fig


def plot_transboundary_share_intervals(ds: xr.Dataset, species: str = "PM2.5") -> Figure:
    """Bars of each receptor region's transboundary share with the ensemble's 90 % interval (error bars).

    The bar is the run's share, the dot the ensemble median and the error bar the 5-95 % range
    (``transboundary_share_quantile``).
    """
    _check_species(ds, species)
    share = 100.0 * _require(ds, "transboundary_share").sel(species=species)
    q = 100.0 * _require(ds, "transboundary_share_quantile").sel(species=species).transpose(
        "quantile", "receptor_region")
    receptors = [str(r) for r in share["receptor_region"].values]
    lo, mid, hi = q.values[0], q.values[1], q.values[-1]
    positions = np.arange(len(receptors))
    with figure_style():
        fig = new_figure(7.6, 4.2)
        ax = fig.add_subplot()
        ax.bar(positions, share.values, color="0.75", width=0.7, label="run")
        ax.errorbar(positions, mid, yerr=[mid - lo, hi - mid], fmt="o", color="black", markersize=3,
                    capsize=3, linewidth=1.0, label="ensemble median, 5-95 %")
        ax.set_xticks(positions, receptors, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_ylabel(f"transboundary share of {species} (%)")
        ax.set_ylim(0.0, 100.0)
        ax.set_xlim(-0.6, len(receptors) - 0.4)
        ax.legend(loc="upper right", fontsize=7, frameon=False)
        ax.set_title(f"Transboundary share of {species} with its 90 % interval "
                     f"({ds.attrs.get('uncertainty_sources_sampled', 'ensemble')})\n{maps.run_label(ds)}")
    return fig


def plot_city_time_series(ds: xr.Dataset, species: str = "PM2.5", ncols: int = 4) -> Figure:
    """Hourly ``species`` at each city, stacked by source region, with the total as a black line."""
    _check_species(ds, species)
    cities = city_receptors(ds)
    split = _require(ds, "receptor_contribution").sel(species=species, receptor_region=cities)
    split = split.sum("sector").transpose("receptor_region", "time", "source_region")
    total = _require(ds, "receptor_concentration").sel(species=species, receptor_region=cities)
    total = total.transpose("receptor_region", "time")
    sources = [str(s) for s in split["source_region"].values]
    colours = [source_colours(sources)[s] for s in sources]
    time = split["time"].values
    units = unit_label(split.attrs.get("units", "ug m-3"))
    nrows = -(-len(cities) // ncols)
    top = float(np.nanmax(total.values)) * 1.05 if total.size else 1.0
    with figure_style():
        fig = new_figure(2.3 * ncols + 1.6, 1.6 * nrows + 0.8)
        grid = fig.add_gridspec(nrows, ncols)
        axes = []
        for k, city in enumerate(cities):
            ax = fig.add_subplot(grid[k // ncols, k % ncols], sharex=axes[0] if axes else None,
                                 sharey=axes[0] if axes else None)
            parts = np.clip(split.values[k].T, 0.0, None)
            ax.stackplot(time, parts, colors=colours, labels=sources, linewidth=0)
            ax.plot(time, total.values[k], color="black", linewidth=0.7, label="total")
            ax.set_title(city, fontsize=8, pad=2)
            ax.tick_params(labelsize=6)
            ax.set_ylim(0.0, top)
            if k % ncols == 0:
                ax.set_ylabel(units, fontsize=7)
            axes.append(ax)
        for ax in axes:
            locator = matplotlib.dates.AutoDateLocator(minticks=2, maxticks=4)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(matplotlib.dates.ConciseDateFormatter(locator))
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles[::-1], labels[::-1], loc="outside right center", fontsize=6.5, frameon=False,
                   title="source region", title_fontsize=7)
        fig.suptitle(f"Hourly {species} at each city by source region (population-weighted, time is the "
                     f"end of each hour, UTC)\n{maps.run_label(ds)}")
    return fig


@dataclass(frozen=True)
class FigureSpec:
    """One figure of a run: file stem, caption, and the function drawing it from the dataset."""

    stem: str
    caption: str
    draw: Callable[[xr.Dataset], Figure]


def figure_specs(ds: xr.Dataset, species: Sequence[str] = ("PM2.5",)) -> list[FigureSpec]:
    """List the figures of a run in report order: maps per species, then the apportionment charts of PM2.5.

    Charts whose variables the file lacks are left out (e.g. no time series without
    ``receptor_contribution``).
    """
    for name in species:
        _check_species(ds, name)
    specs: list[FigureSpec] = []
    for name in species:
        tag = name.replace(".", "")
        specs.append(FigureSpec(f"concentration_{tag}", f"Period-mean {name} concentration",
                                lambda d, n=name: maps.plot_concentration_map(d, n)))
        if "contribution" in ds:
            specs.append(FigureSpec(f"contribution_maps_{tag}", f"{name} from each source region",
                                    lambda d, n=name: maps.plot_contribution_maps(d, n)))
        if "transboundary_share" in ds:
            specs.append(FigureSpec(f"transboundary_share_{tag}", f"Transboundary share of {name}",
                                    lambda d, n=name: maps.plot_transboundary_map(d, n)))
    main = "PM2.5" if "PM2.5" in [str(s) for s in ds["species"].values] else species[0]
    tag = main.replace(".", "")
    if "source_receptor" in ds:
        specs.append(FigureSpec(f"source_receptor_{tag}", f"Source-receptor matrix of {main}",
                                lambda d: plot_source_receptor_heatmap(d, main)))
        specs.append(FigureSpec(f"city_contributions_{tag}", f"{main} in each city by source region",
                                lambda d: plot_city_contributions(d, main)))
    if "transboundary_share_quantile" in ds:
        specs.append(FigureSpec(f"transboundary_share_interval_{tag}",
                                f"Transboundary share of {main} with its 90 % interval",
                                lambda d: plot_transboundary_share_intervals(d, main)))
    if "net_export_exposure_quantile" in ds and maps.run_region_polygons(ds) is not None:
        specs.append(FigureSpec(f"net_export_{tag}", f"Net export of {main} exposure",
                                lambda d: maps.plot_net_export_map(d, main)))
    if "receptor_contribution" in ds and "receptor_concentration" in ds:
        specs.append(FigureSpec(f"city_time_series_{tag}", f"Hourly {main} at each city by source region",
                                lambda d: plot_city_time_series(d, main)))
    return specs


def write_figures(
    ds: xr.Dataset, out_dir: Path, fmt: str = "png", species: Sequence[str] = ("PM2.5",),
    report_pngs: dict[str, bytes] | None = None, report_dpi: float = 80.0,
    destination: Destination = OUTPUT_FOLDER,
) -> list[Path]:
    """Draw every figure of a run and write each to ``out_dir`` (atomically).

    Parameters
    ----------
    ds
        The run dataset (the contract of ``airshed run``'s NetCDF file).
    out_dir
        Folder for the figures; created if missing.
    fmt
        ``"png"``, ``"pdf"`` or ``"svg"``.
    species
        Species to map (each gets a concentration map, source-region maps and a transboundary map).
    report_pngs
        When given, each figure is also encoded as PNG at ``report_dpi`` into it (stem -> bytes), for
        the HTML report (:func:`airshed.outputs.report.write_report`), so a figure is drawn once.
    report_dpi
        Resolution of those PNGs.
    destination
        Names the option that chooses ``out_dir`` in the error for a folder that is not writable.

    Returns
    -------
    list of Path
        The files written, in :func:`figure_specs` order.
    """
    if fmt not in FORMATS:
        raise AirshedInputError(f"figure format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise AirshedInputError(f"figure folder {out_dir} exists and is not a folder")
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. a read-only or virtual file system: bad output path, not a crash
        raise AirshedInputError(f"cannot create figure folder {out_dir}: {exc.strerror}") from None
    written = []
    try:
        for spec in figure_specs(ds, species):
            fig = spec.draw(ds)
            written.append(save_figure(fig, out_dir / f"{spec.stem}.{fmt}", fmt, destination=destination))
            if report_pngs is not None:
                report_pngs[spec.stem] = figure_png_bytes(fig, dpi=report_dpi)
    except BaseException:
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()  # a failed first drawing leaves no empty folder behind
        raise
    return written
