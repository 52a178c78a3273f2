"""The ``airshed`` command line.

Every command goes through :class:`_AirshedGroup`, the one place that turns exceptions into exit codes:
0 success; 2 bad input (an :class:`~airshed.errors.AirshedInputError`, printed as one red line
``error: ...`` without a traceback); 1 internal error (one line, the traceback only with ``--verbose``).
Heavy modules (region masks, the pipeline, the validation) are imported inside the commands so that
``airshed --help`` and ``airshed config validate`` stay fast.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from airshed.atomic_files import Destination, termination_as_exception
from airshed.config import MAX_INVENTORY_MEMBERS, AirshedConfig, dump_config, load_config
from airshed.errors import AirshedInputError, Terminated
from airshed.version import __version__

EXIT_OK = 0
EXIT_INTERNAL_ERROR = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

# Consoles resolve sys.stdout / sys.stderr when they print, so output redirection (and tests) work.
# Output that is not a terminal (a log file, a pipe) gets tables PIPED_WIDTH wide instead of rich's 80
# columns, which cut region names ("Shijia…"); COLUMNS still sets the width when given.
PIPED_WIDTH = 160
stdout = Console(highlight=False,
                 width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else PIPED_WIDTH)
stderr = Console(stderr=True, highlight=False)


@dataclass
class _Options:
    """Global options, stored on the click context for every command."""

    verbose: bool = False
    quiet: bool = False


class _AirshedGroup(TyperGroup):
    """Top-level command group that maps exceptions to exit codes and one-line messages."""

    def invoke(self, ctx: typer.Context) -> Any:
        """Run the command; report bad input (exit 2) and internal errors (exit 1) in one line.

        SIGTERM and SIGHUP raise :class:`~airshed.errors.Terminated` for the whole command, as SIGINT raises
        KeyboardInterrupt, so every command's clean-up runs and says so, whatever it was doing.
        """
        try:
            with termination_as_exception():
                return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # help, usage errors, Ctrl-C
            raise
        except AirshedInputError as exc:
            _print_error(f"error: {exc}")
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except Terminated as exc:  # SIGTERM/SIGHUP while writing: the unfinished files are gone already
            _print_error(f"error: {exc}; unfinished output files were removed")
            raise typer.Exit(exc.code) from None
        except KeyboardInterrupt:  # Ctrl-C: the same clean-up ran on the way out
            _print_error("error: interrupted (SIGINT); unfinished output files were removed")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            options = ctx.obj if isinstance(ctx.obj, _Options) else _Options()
            if options.verbose:
                stderr.print_exception()
            hint = "" if options.verbose else " (rerun with --verbose for the traceback)"
            _print_error(f"internal error: {type(exc).__name__}: {exc}{hint}; please report it")
            raise typer.Exit(EXIT_INTERNAL_ERROR) from None


def _print_error(message: str) -> None:
    # Text, not markup: messages hold brackets ([grid], [0]) that rich would take for style tags.
    stderr.print(Text(message, style="bold red"), soft_wrap=True)


app = typer.Typer(
    cls=_AirshedGroup,
    name="airshed",
    help="Where haze comes from: dispersion and source apportionment for Jing-Jin-Ji and beyond.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(
    help="Check a run configuration, or show it with every default filled in.", no_args_is_help=True
)
validate_app = typer.Typer(help="Score the dispersion cores against field experiments.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(validate_app, name="validate")


def _print_version(value: bool) -> None:
    if value:
        stdout.print(f"airshed {__version__}")
        raise typer.Exit()


def _configure_logging(options: _Options) -> None:
    """Send airshed's log records to stderr: warnings only with --quiet, debug with --verbose."""
    logger = logging.getLogger("airshed")
    for handler in list(logger.handlers):
        if getattr(handler, "_airshed_cli", False):
            logger.removeHandler(handler)
    handler = RichHandler(console=stderr, show_path=False, markup=False, rich_tracebacks=False)
    handler._airshed_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if options.verbose else logging.WARNING if options.quiet else logging.INFO)


@app.callback()
def main(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the airshed version and exit."
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show debug messages, and tracebacks of internal errors.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Show only warnings and errors; no progress bars.")
    ] = False,
) -> None:
    """Where haze comes from: dispersion and source apportionment for Jing-Jin-Ji and beyond."""
    if verbose and quiet:
        raise AirshedInputError("--verbose and --quiet cannot be used together")
    ctx.obj = _Options(verbose=verbose, quiet=quiet)
    _configure_logging(ctx.obj)


def _options(ctx: typer.Context) -> _Options:
    obj = ctx.find_object(_Options)
    return obj if obj is not None else _Options()


ConfigFile = Annotated[Path, typer.Argument(help="TOML run configuration (see examples/jjj.toml).")]


# --- airshed config ----------------------------------------------------------------------------------
@config_app.command("validate")
def config_validate(
    file: ConfigFile,
    zero_out: Annotated[str | None, typer.Option(
        "--zero-out", metavar="REGION", help="Also check a region for `airshed run --zero-out`.")] = None,
    scenario: Annotated[str | None, typer.Option(
        "--scenario", metavar="NAME", help="Also check a scenario for `airshed run --scenario`.")] = None,
) -> None:
    """Check a run configuration: print OK and a summary, or one line naming the problem (exit 2).

    Checks everything a run would reject before computing: the schema, region names of scenarios (and
    --zero-out), the met files' variables, units and coverage of the domain and period, the emission
    files, the population, the output folder, disk space and memory.
    """
    from airshed.preflight import validate_study

    cfg = load_config(file)
    grid = cfg.grid.build()
    checked = validate_study(cfg, zero_out=zero_out, scenario=scenario)
    stdout.print(Text(f"OK: {file} is a valid airshed configuration", style="bold green"), soft_wrap=True)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in _summary(cfg, grid_text=f"{grid.nx} x {grid.ny} cells of {cfg.grid.cell_km:g} km"):
        table.add_row(key, value)
    for key, value in checked:
        table.add_row(key, value)
    stdout.print(table)


def _summary(cfg: AirshedConfig, grid_text: str) -> list[tuple[str, str]]:
    met = cfg.meteorology
    emissions = cfg.emissions
    met_text = (
        f"built-in winter-haze episode ({met.builtin.days:g} days)"
        if met.format == "builtin"
        else f"{met.format}, {len(met.paths)} file(s)"
    )
    inventory = (
        f"built-in REAS/MEIC {emissions.builtin.year} (approximate)"
        if emissions.inventory == "builtin"
        else "none"
    )
    extra = len(emissions.gridded) + len(emissions.points)
    if extra:
        inventory += f" + {extra} file(s)"
    return [
        ("run", cfg.run.name),
        ("period", f"{cfg.run.start.isoformat()} to {cfg.run.end.isoformat()} UTC ({cfg.run.hours} h)"),
        ("core", cfg.run.core),
        ("species", ", ".join(cfg.run.species)),
        ("grid", grid_text),
        ("regions", cfg.regions.label),
        ("meteorology", met_text),
        ("emissions", f"{inventory}, {emissions.temporal_profiles} time profiles"),
        ("seed", str(cfg.run.seed)),
        ("output", str(cfg.run.output)),
    ]


@config_app.command("show")
def config_show(file: ConfigFile) -> None:
    """Print the resolved configuration as TOML: every default written out, every path absolute."""
    typer.echo(dump_config(load_config(file)), nl=False)


# --- airshed grid ------------------------------------------------------------------------------------
@app.command("grid")
def grid_command(file: ConfigFile) -> None:
    """Build the grid and region masks of a configuration; print the grid and each region's area."""
    from airshed.grids.regions import build_regions

    cfg = load_config(file)
    grid = cfg.grid.build()
    regions = build_regions(grid, cfg.regions.spec, cfg.regions.name_column)

    lon, lat = grid.lon, grid.lat
    info = Table(show_header=False, box=None, pad_edge=False)
    info.add_column(style="bold")
    info.add_column()
    info.add_row("projection", grid.crs.srs)
    info.add_row("cell size", f"{grid.dx / 1000:g} km")
    info.add_row("cells", f"{grid.nx} x {grid.ny} (nx x ny) = {grid.nx * grid.ny}")
    info.add_row(
        "extent",
        f"x {grid.x_edges[0] / 1000:.0f} to {grid.x_edges[-1] / 1000:.0f} km, "
        f"y {grid.y_edges[0] / 1000:.0f} to {grid.y_edges[-1] / 1000:.0f} km",
    )
    info.add_row(
        "cell centres",
        f"lon {np.min(lon):.2f} to {np.max(lon):.2f} E, lat {np.min(lat):.2f} to {np.max(lat):.2f} N",
    )
    info.add_row("domain area", f"{grid.cell_area.sum() / 1e6:,.0f} km²")
    stdout.print(info)

    areas = regions.area_km2()
    table = Table(title=f"regions: {cfg.regions.label}", title_justify="left")
    table.add_column("region")
    table.add_column("area in domain (km²)", justify="right")
    table.add_column("cells touched", justify="right")
    table.add_column("cells ≥ 50 %", justify="right")
    for k, name in enumerate(regions.names):
        fraction = regions.fractions[k]
        table.add_row(
            name,
            f"{areas[name]:,.0f}",
            str(int(np.count_nonzero(fraction > 0))),
            str(int(np.count_nonzero(fraction >= 0.5))),
        )
    table.add_section()
    table.add_row("total", f"{sum(areas.values()):,.0f}", str(grid.nx * grid.ny), "")
    stdout.print(table)


# --- airshed run -------------------------------------------------------------------------------------
class Direction(StrEnum):
    """Direction of a particle run."""

    forward = "forward"
    backward = "backward"


@app.command("run")
def run_command(
    ctx: typer.Context,
    config: ConfigFile,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the NetCDF here instead of run.output of the config.",
            dir_okay=False,
        ),
    ] = None,
    zero_out: Annotated[
        str | None,
        typer.Option(
            "--zero-out",
            metavar="REGION",
            help="Switch off every emission of this region (a brute-force sensitivity run).",
        ),
    ] = None,
    scenario: Annotated[
        str | None,
        typer.Option(
            "--scenario",
            metavar="NAME",
            help="Apply the emission changes of this scenario of the config (a full run).",
        ),
    ] = None,
    direction: Annotated[
        Direction,
        typer.Option("--direction", help="forward (sources to the grid) or backward (footprints of the "
                     "config's stations, as `airshed footprint`)."),
    ] = None,
    members: Annotated[
        int | None,
        typer.Option("--members", min=2, metavar="N", help="Run only the first N meteorology members of "
                     "\\[uncertainty.meteorology] (a quick look at the spread)."),
    ] = None,
) -> None:
    """Run the dispersion model for a configuration and write the NetCDF output."""
    from airshed.met_ensemble import run_with_members

    if direction == Direction.backward:
        footprint_command(ctx, config, output=output, stations=None, zero_out=zero_out, scenario=scenario)
        return
    cfg = load_config(config)
    target = output.expanduser().resolve() if output is not None else None
    extra: dict[str, str] = {}
    if scenario is not None:
        from airshed.scenarios import scenario_named

        scenario_named(cfg, scenario)  # an unknown name fails before any input is read
        extra["scenario"] = scenario
    if zero_out is not None:
        from airshed.preflight import check_zero_out, region_names

        check_zero_out(zero_out, region_names(cfg))  # before any input is read
    result = run_with_members(cfg, output=target, zero_out=zero_out, progress=not _options(ctx).quiet,
                              members=members, **extra)
    if isinstance(result, str | os.PathLike) and not _options(ctx).quiet:
        _print_run_summary(Path(result))
        stdout.print(Text(f"wrote {os.fspath(result)}", style="green"), soft_wrap=True)


def _print_run_summary(path: Path) -> None:
    """Print the source-receptor matrix and the cross-border balance of a finished run."""
    from airshed.outputs.tables import source_receptor_table, transboundary_table

    try:
        ds = _open_run(path)
    except AirshedInputError:  # a stand-in pipeline (tests) may write no NetCDF
        return
    with ds:
        if "source_receptor" in ds:
            stdout.print(source_receptor_table(ds))
            stdout.print(transboundary_table(ds))


# --- airshed plot / report ---------------------------------------------------------------------------
RunFile = Annotated[Path, typer.Argument(help="Run NetCDF file written by `airshed run`.", dir_okay=False)]
_OUT_OPTION = Destination("output", "--out / -o")
"""An output file or folder the command's --out/-o chooses (named in 'not writable' errors)."""
_JSON_OPTION = Destination("output", "--json")
"""A JSON file the command's --json chooses."""
FootprintFile = Annotated[Path, typer.Argument(help="Footprint NetCDF file written by `airshed footprint`.",
                                               dir_okay=False)]


@app.command("footprint")
def footprint_command(
    ctx: typer.Context,
    config: ConfigFile,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the NetCDF here instead of run.output of the config.",
                     dir_okay=False),
    ] = None,
    stations: Annotated[
        Path | None,
        typer.Option("--stations", metavar="FILE", help="Station list CSV (id, name, lon, lat, optionally "
                     "height_m) instead of \\[receptors] stations.", exists=True, dir_okay=False),
    ] = None,
    zero_out: Annotated[
        str | None,
        typer.Option("--zero-out", metavar="REGION", help="Fold without this region's emissions."),
    ] = None,
    scenario: Annotated[
        str | None,
        typer.Option("--scenario", metavar="NAME", help="Fold with this scenario's emission changes."),
    ] = None,
) -> None:
    """Run particles backward from stations: footprints (s) and each station's concentration by source."""
    from airshed.footprint import run_footprints

    # --stations replaces the key before the config is checked: a broken [receptors] stations is not used
    cfg = load_config(config) if stations is None else _with_stations(config, stations)
    if scenario is not None:
        from airshed.scenarios import scenario_named

        scenario_named(cfg, scenario)
    target = output.expanduser().resolve() if output is not None else None
    path = run_footprints(cfg, output=target, stations=stations.expanduser().resolve() if stations else None,
                          progress=not _options(ctx).quiet, zero_out=zero_out, scenario=scenario)
    if not _options(ctx).quiet:
        _print_station_summary(path)
        stdout.print(Text(f"wrote {os.fspath(path)}", style="green"), soft_wrap=True)


def _with_stations(config: Path, stations: Path) -> AirshedConfig:
    """Load ``config`` with ``[receptors] stations`` set to ``stations``."""
    from airshed.api import configure

    return configure(config, receptors__stations=str(stations.expanduser().resolve()))


def _print_station_summary(path: Path) -> None:
    """Print each station's run-mean PM2.5 and its largest source regions from a footprint file."""
    with _open_run(path, ("station_contribution", "air_in_domain_at_start")) as ds:
        sc = ds["station_contribution"].sel(species="PM2.5").mean("time").sum("sector")
        table = Table(title="Run-mean PM2.5 at the stations (ug m-3), from the footprints")
        for column in ("station", "PM2.5", "largest sources", "air in domain at start"):
            table.add_column(column)
        for q, name in enumerate(ds["station"].values):
            row = sc.isel(station=q)
            order = np.argsort(-row.values)[:3]
            total = float(row.sum())
            top = ", ".join(f"{ds['source_region'].values[k]} {100 * float(row.values[k]) / total:.0f}%"
                            for k in order if total > 0)
            table.add_row(str(name), f"{total:.1f}", top,
                          f"{100 * float(ds['air_in_domain_at_start'].isel(station=q).mean()):.0f}%")
        stdout.print(table)


@app.command("footprint-map")
def footprint_map_command(
    ctx: typer.Context,
    footprint_file: FootprintFile,
    station: Annotated[str, typer.Option("--station", help="Station id to map.")],
    pathway: Annotated[str, typer.Option("--pathway", help="Footprint pathway: air, PM2.5<-PM2.5, "
                                         "sulfate<-SO2, ...")] = "air",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="FILE", help="Figure file (default FOOTPRINT_STATION.png).",
                     dir_okay=False),
    ] = None,
) -> None:
    """Map a station's footprint (summed over the run's averaging periods) from a footprint file."""
    from airshed.outputs.footprint_maps import plot_footprint_map
    from airshed.outputs.style import save_figure

    target = out.expanduser() if out is not None else footprint_file.with_name(
        f"{footprint_file.stem}_{station}.png")
    with _open_run(footprint_file, ("footprint",), "footprint-map") as ds:
        saved = save_figure(plot_footprint_map(ds, station, pathway), target, destination=_OUT_OPTION)
    if not _options(ctx).quiet:
        stdout.print(Text(f"wrote {saved}", style="green"), soft_wrap=True)


_TABLES = ("pm25_source_receptor", "pm25_total", "emission_total", "population_region")


def _open_run(path: Path, needs: tuple[str, ...] | None = None, reader: str = "this command"):
    """Open a run file: one-line error when it is missing, not NetCDF, not airshed's or lacks ``needs``.

    ``reader``, the command, is named when the file is of the other kind (forward run or footprint file).
    """
    from airshed.outputs.runfile import RUN_FILE_VARIABLES, open_run_file

    return open_run_file(path, RUN_FILE_VARIABLES if needs is None else needs, reader)


class FigureFormat(StrEnum):
    """File format of the figures."""

    png = "png"
    pdf = "pdf"
    svg = "svg"


@app.command("plot")
def plot_command(
    ctx: typer.Context,
    run_file: RunFile,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="DIR", help="Folder for the figures (default: RUN_figures).",
                     file_okay=False),
    ] = None,
    fmt: Annotated[FigureFormat, typer.Option("--format", help="png, pdf or svg.")] = FigureFormat.png,
    species: Annotated[
        list[str] | None,
        typer.Option("--species", help="Species to map (repeat for several; default PM2.5)."),
    ] = None,
) -> None:
    """Draw the maps and charts of a run: concentration, source-region and transboundary maps, charts."""
    from airshed.outputs.plots import write_figures

    out_dir = out.expanduser() if out is not None else run_file.with_name(f"{run_file.stem}_figures")
    with _open_run(run_file, reader="plot") as ds:
        if not out_dir.exists():
            # Only the figures folder itself is created: a missing or unwritable parent is most likely a
            # typo, refused (exit 2) by the same check as report --out and cooperate --json, not built.
            from airshed.atomic_files import remove_quietly, temporary_beside

            remove_quietly(temporary_beside(out_dir, what="figures folder", destination=_OUT_OPTION))
        paths = write_figures(ds, out_dir, fmt=fmt.value, species=tuple(species or ("PM2.5",)),
                              destination=_OUT_OPTION)
    if not _options(ctx).quiet:
        for path in paths:
            stdout.print(Text(f"wrote {path}", style="green"), soft_wrap=True)


@app.command("report")
def report_command(
    ctx: typer.Context,
    run_file: RunFile,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="FILE.html", help="Report file (default: RUN.html).",
                     dir_okay=False),
    ] = None,
    cooperation: Annotated[
        Path | None,
        typer.Option("--cooperation", metavar="FILE.json",
                     help="Cooperation results JSON to include (default: the run file's cooperation_json "
                     "attribute, or RUN.cooperation.json beside it).", dir_okay=False),
    ] = None,
) -> None:
    """Write a self-contained HTML report of a run: summary, tables, maps and charts."""
    from airshed.outputs.report import write_report

    target = out.expanduser() if out is not None else run_file.with_suffix(".html")
    extra = None
    if cooperation is not None:
        try:
            extra = json.loads(cooperation.expanduser().read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise AirshedInputError(f"cannot read cooperation results {cooperation}: {exc}") from None
    with _open_run(run_file, reader="report") as ds:
        if extra is not None:
            ds.attrs["cooperation_json"] = json.dumps(extra)
        path = write_report(ds, target, run_path=run_file, destination=_OUT_OPTION)
    if not _options(ctx).quiet:
        stdout.print(Text(f"wrote {path}", style="green"), soft_wrap=True)


# --- airshed scenario --------------------------------------------------------------------------------
@app.command("scenario")
def scenario_command(
    config: ConfigFile,
    run_file: RunFile,
    names: Annotated[
        list[str] | None,
        typer.Option("--name", "-n", metavar="NAME", help="Evaluate only this scenario (repeatable)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON instead of a table.")
    ] = False,
) -> None:
    """Evaluate the config's scenarios from a run's stored contributions (seconds, linear chemistry).

    For each scenario and receptor region: baseline and scenario PM2.5 (population-weighted period means),
    the change, and its split into the part from the region's own emission changes and from the others'.
    """
    from airshed.scenarios import evaluate_scenarios, pm25_summary, scenario_named

    cfg = load_config(config)
    if not cfg.scenarios:
        raise AirshedInputError(f"{config}: no [[scenarios]] tables to evaluate")
    chosen = [scenario_named(cfg, n) for n in names] if names else list(cfg.scenarios)
    ranges = None
    with _open_run(run_file, ("receptor_contribution",), "scenario") as ds:
        result = evaluate_scenarios(ds, chosen, config)
        averaging = _receptor_averaging(ds)
        if cfg.uncertainty.members:  # each change as median and 5-95 % range over the inventory members
            from airshed.uncertainty.ensemble import InventoryEnsemble
            from airshed.uncertainty.scenarios import scenario_ensemble, scenario_ranges

            ranges = scenario_ranges(scenario_ensemble(ds, chosen, InventoryEnsemble.from_config(cfg)))
    rows = pm25_summary(result)
    if as_json:
        typer.echo(json.dumps([{
            "scenario": r.scenario, "receptor_region": r.receptor_region, "pm25_baseline_ug_m3": r.baseline,
            "pm25_scenario_ug_m3": r.scenario_value, "change_ug_m3": r.change,
            "change_percent": _jsonable(r.change_percent), "change_from_own_ug_m3": r.change_own,
            "change_from_others_ug_m3": r.change_others,
            **({k: _jsonable(v) for k, v in ranges[(r.scenario, r.receptor_region)].items()}
               if ranges else {}),
        } for r in rows], indent=2))
        return
    descriptions = {s.name: s.description for s in chosen}
    extra = ("change median", "change 5-95 %") if ranges else ()
    for name in dict.fromkeys(r.scenario for r in rows):
        caption = descriptions[name] or ""
        if ranges:
            caption += (" " if caption else "") + (f"Median and 5-95 % range over "
                                                   f"{cfg.uncertainty.members} inventory members.")
        table = Table(title=f"scenario {name}: PM2.5, ug m-3 (period mean, {averaging})",
                      title_justify="left", caption=caption or None, caption_justify="left")
        for column in ("receptor region", "baseline", "scenario", "change", "change %", "from own cuts",
                       "from others' cuts", *extra):
            table.add_column(column, justify="left" if column == "receptor region" else "right")
        for r in (r for r in rows if r.scenario == name):
            cells = [r.receptor_region, f"{r.baseline:.2f}", f"{r.scenario_value:.2f}", f"{r.change:+.2f}",
                     f"{r.change_percent:+.1f}", f"{r.change_own:+.2f}", f"{r.change_others:+.2f}"]
            if ranges:
                q = ranges[(r.scenario, r.receptor_region)]
                cells += [f"{q['change_ug_m3_p50']:+.2f}",
                          f"{q['change_ug_m3_p05']:+.2f} to {q['change_ug_m3_p95']:+.2f}"]
            table.add_row(*cells)
        stdout.print(table)


# --- airshed uncertainty -----------------------------------------------------------------------------
@app.command("uncertainty")
def uncertainty_command(
    ctx: typer.Context,
    run_file: RunFile,
    members: Annotated[
        int | None,
        typer.Option("--members", min=2, max=MAX_INVENTORY_MEMBERS, metavar="N",
                     help="Inventory members (default: the run's "
                     "\\[uncertainty] members, else 1000)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="Seed of the factors (default: the run's).")
    ] = None,
    correlation: Annotated[
        float | None,
        typer.Option("--correlation", min=0.0, max=1.0, help="Correlation of a sector's factors across "
                     "regions, 0..1 (default: the run's)."),
    ] = None,
) -> None:
    """Add (or recompute) the inventory ensemble of a run: quantiles of every attribution, in the run file.

    Re-weights the run's stored tagged contributions by two-piece lognormal emission factors (no rerun;
    thousands of members in seconds) and prints each receptor region's transboundary share with its 90 %
    interval.
    """
    from airshed.outputs.tables import transboundary_table
    from airshed.uncertainty.ensemble import InventoryEnsemble, add_inventory_ensemble, config_of_run

    with _open_run(run_file, reader="uncertainty") as ds:
        cfg = config_of_run(ds, str(run_file))
    u = cfg.uncertainty
    ensemble = InventoryEnsemble(members or u.members or 1000, u.seed if seed is None else seed,
                                 u.correlation if correlation is None else correlation, str(u.inventory))
    add_inventory_ensemble(run_file.expanduser(), cfg, ensemble)
    if not _options(ctx).quiet:
        with _open_run(run_file, reader="uncertainty") as ds:
            stdout.print(transboundary_table(ds))
        stdout.print(Text(f"added {ensemble.members} inventory members to {run_file}", style="green"),
                     soft_wrap=True)


# --- airshed cooperate / performance ----------------------------------------------------------------
def _cooperation_ensemble_table(ensemble) -> Table:
    """Each player's Shapley net cost and transfer as median [5-95 %] over the inventory members."""
    sq, tq = ensemble.shapley_quantiles / 1e6, ensemble.transfer_quantiles / 1e6
    table = Table(title=f"Over {ensemble.members} inventory members (seed {ensemble.seed}): median [5-95 %], "
                  f"million yuan; transfers of the {ensemble.transfers_rule} allocation (+ receives); the "
                  f"ranking of payers is the run's in {100 * ensemble.same_payer_ranking:.0f} % of members")
    for column in ("player", "Shapley net cost", "transfer", "sign as in the run"):
        table.add_column(column, justify="left" if column == "player" else "right")
    for j, player in enumerate(ensemble.players):
        table.add_row(player, f"{sq[1, j]:.2f} [{sq[0, j]:.2f}, {sq[2, j]:.2f}]",
                      f"{tq[1, j]:+.2f} [{tq[0, j]:+.2f}, {tq[2, j]:+.2f}]",
                      f"{100 * ensemble.same_sign[j]:.0f} %")
    return table


@app.command("cooperate")
def cooperate_command(
    ctx: typer.Context,
    run_file: RunFile,
    policy: Annotated[
        Path,
        typer.Option("--policy", "-p", metavar="POLICY.toml", dir_okay=False,
                     help="The game, abatement cost curves and options (see examples/policy_jjj.toml)."),
    ],
    json_out: Annotated[
        str | None,
        typer.Option("--json", metavar="FILE|-",
                     help="Also write the results as JSON to FILE; '-' prints only the JSON, to stdout."),
    ] = None,
    save: Annotated[
        bool,
        typer.Option("--save", help="Write RUN.cooperation.json beside the run file (`airshed report` "
                     "includes it)."),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, metavar="N",
                     help="Processes for the target game's coalition LPs (default: every CPU available)."),
    ] = None,
    members: Annotated[
        int | None,
        typer.Option("--members", min=2, max=MAX_INVENTORY_MEMBERS, metavar="N",
                     help="Also solve the game on N inventory members: each Shapley share and transfer as "
                     "median and 5-95 % range, and how often the ranking of payers is the run's."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", min=0, help="Seed of the inventory members (default: the run's "
                     "\\[uncertainty] seed)."),
    ] = None,
) -> None:
    """Who should cut and who should pay: the policy's cooperation game, its allocations, core and transfers.

    The gamma game (Chander-Tulkens) weighs abatement cost against health damage; the target game shares
    the least cost of meeting PM2.5 targets. The first table names the game and its assumptions.
    """
    from airshed.atomic_files import atomic_path
    from airshed.cooperation import cooperate, load_policy, render_tables
    from airshed.outputs.report import COOPERATION_SUFFIX

    rules = load_policy(policy.expanduser())
    ensemble = None
    with _open_run(run_file, _TABLES, "cooperate") as ds:
        result = cooperate(ds, rules, workers=workers, origin=str(policy))
        if members is not None:
            from airshed.uncertainty.cooperation import cooperation_ensemble
            from airshed.uncertainty.ensemble import InventoryEnsemble, config_of_run

            try:  # the run's [uncertainty] settings; the defaults for a run file without its config
                u = config_of_run(ds, str(run_file)).uncertainty
                drawn = (u.seed, u.correlation, str(u.inventory))
            except AirshedInputError:
                drawn = (0, 0.0, "builtin")
            draw = InventoryEnsemble(members, drawn[0] if seed is None else seed, *drawn[1:])
            ensemble = cooperation_ensemble(ds, rules, draw, workers=workers, origin=str(policy))
    data = {**_json_tree(result.to_json_dict()), "run_file": str(run_file), "policy_file": str(policy)}
    if ensemble is not None:
        data["ensemble"] = _json_tree(ensemble.to_json_dict())
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    written = []
    if save:
        side_car = run_file.expanduser().with_suffix(COOPERATION_SUFFIX)
        with atomic_path(side_car, destination=Destination("output", "--json FILE instead of --save, "
                                                           "which writes beside the run file")) as tmp:
            tmp.write_text(text, encoding="utf-8")
        written.append(side_car)
    if json_out == "-":
        typer.echo(text, nl=False)
        return
    if json_out is not None:
        target = Path(json_out).expanduser()
        with atomic_path(target, destination=_JSON_OPTION) as tmp:
            tmp.write_text(text, encoding="utf-8")
        written.append(target)
    for table in render_tables(result):
        stdout.print(table)
    if ensemble is not None:
        stdout.print(_cooperation_ensemble_table(ensemble))
    if not _options(ctx).quiet:
        for path in written:
            stdout.print(Text(f"wrote {path}", style="green"), soft_wrap=True)


def _json_tree(value: Any) -> Any:
    """``value`` with every leaf made plain JSON (see :func:`_jsonable`), containers copied."""
    if isinstance(value, dict):
        return {str(k): _json_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_tree(v) for v in value]
    return _jsonable(value)


_PERFORMANCE_PARTS = (
    ("own_emissions_change", "own emissions"),
    ("other_regions_change", "other regions"),
    ("outside_change", "outside"),
    ("unattributed_change", "unattributed"),
)


def _signed(value: float) -> str:
    # + 0.0 turns a value that rounds to zero from below into +0.00 instead of -0.00
    return f"{round(float(value), 2) + 0.0:+.2f}"


@app.command("performance")
def performance_command(
    run_a: Annotated[
        Path, typer.Argument(help="Run file A (the reference, e.g. last year).", dir_okay=False)
    ],
    run_b: Annotated[Path, typer.Argument(help="Run file B (e.g. this year).", dir_okay=False)],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the split as JSON instead of a table.")
    ] = False,
) -> None:
    """Split each region's PM2.5 change from run A to run B into its own emissions' part and others'."""
    from airshed.cooperation import performance_split

    with _open_run(run_a, _TABLES, "performance") as ds_a, _open_run(run_b, _TABLES, "performance") as ds_b:
        split = performance_split(ds_a, ds_b)
        pm25_a = ds_a["pm25_total"].sel(receptor_region=split["receptor_region"]).values
        pm25_b = ds_b["pm25_total"].sel(receptor_region=split["receptor_region"]).values
        caveats = _transport_differences(ds_a, ds_b)
        averaging = _receptor_averaging(ds_a)
    receptors = [str(r) for r in split["receptor_region"].values]
    change = split["pm25_change"].values
    parts = {key: split[key].values for key, _ in _PERFORMANCE_PARTS}
    if as_json:
        data = {
            "units": "ug m-3",
            "run_a": str(run_a),
            "run_b": str(run_b),
            "receptors": {
                name: {"pm25_a": float(pm25_a[r]), "pm25_b": float(pm25_b[r]),
                       "pm25_change": float(change[r]),
                       **{key: float(values[r]) for key, values in parts.items()}}
                for r, name in enumerate(receptors)
            },
            "notes": caveats,
        }
        typer.echo(json.dumps(_json_tree(data), indent=2, allow_nan=False))
        return
    table = Table(title="PM2.5 change from run A to run B by whose emissions moved it (µg m⁻³, "
                  f"period means, {averaging})")
    table.add_column("receptor region")
    for column in ("A", "B", "change", *(label for _, label in _PERFORMANCE_PARTS)):
        table.add_column(column, justify="right")
    for r, name in enumerate(receptors):
        table.add_row(name, f"{pm25_a[r]:.2f}", f"{pm25_b[r]:.2f}", _signed(change[r]),
                      *(_signed(parts[key][r]) for key, _ in _PERFORMANCE_PARTS))
    table.caption = (f"A = {run_a}, B = {run_b}. change = own emissions + other regions + outside + "
                     "unattributed (background); each part is the change of that source's contribution.")
    stdout.print(table)
    for note in caveats:
        stdout.print(Text(f"note: {note}", style="yellow"), soft_wrap=True)


def _receptor_averaging(ds) -> str:
    """Say how a file's receptor-region values average: the population, or a footprint file's stations."""
    backward = ds.attrs.get("direction") == "backward"
    return "mean of each region's stations" if backward else "population-weighted"


def _transport_differences(ds_a, ds_b) -> list[str]:
    """Say where two runs differ in more than emissions: then each part mixes emissions and transport.

    The split credits a source with the change of its contribution; with another particle seed or other
    meteorology that change holds sampling noise or weather too (newcomer trial: two runs of the same
    emissions and different seeds showed Beijing's 'own emissions' moving by -0.19 ug m-3).
    """
    import tomllib

    def meteorology(ds) -> dict:
        try:
            return tomllib.loads(str(ds.attrs.get("airshed_config", ""))).get("meteorology", {})
        except tomllib.TOMLDecodeError:
            return {}

    notes = []
    seeds = (ds_a.attrs.get("seed"), ds_b.attrs.get("seed"))
    if str(ds_a.attrs.get("core")) == "lagrangian" and seeds[0] != seeds[1]:
        notes.append(f"the runs use different particle seeds (A {seeds[0]}, B {seeds[1]}): each part also "
                     "holds the particles' sampling noise, not only the change of emissions")
    periods = [(ds.attrs.get("start"), ds.attrs.get("end")) for ds in (ds_a, ds_b)]
    if meteorology(ds_a) != meteorology(ds_b) or periods[0] != periods[1]:
        notes.append("the runs differ in meteorology or period: each part also holds the change of "
                     "transport (weather), not only of emissions; run B's emissions with A's meteorology to "
                     "separate them")
    return notes


# --- airshed verify ----------------------------------------------------------------------------------
@app.command("verify")
def verify_command(
    ctx: typer.Context,
    run_file: RunFile,
    observations: Annotated[
        list[Path],
        typer.Option("--observations", "-O", metavar="FILE|DIR",
                     help="Observation files (CNEMC daily layout or long CSV; a folder means its *.csv); "
                     "repeatable."),
    ],
    stations: Annotated[
        Path | None,
        typer.Option("--stations", metavar="STATIONS.csv", dir_okay=False,
                     help="Station list (id, name, lon, lat), checked against the stations the run sampled."),
    ] = None,
    prior_error: Annotated[
        str | None,
        typer.Option("--prior-error", metavar="FILE|PERCENT",
                     help="Inventory uncertainty: a table of 95 % intervals (sector, species, lower_percent, "
                     "upper_percent[, region]) or one 1-sigma percentage for all (default: the shipped "
                     "airshed/data/inventory_uncertainty.csv, Zhao et al. 2011)."),
    ] = None,
    change_prior: Annotated[
        float, typer.Option("--change-prior", metavar="PERCENT",
                            help="1 sigma of the change of emissions in a window, percent.")
    ] = 50.0,
    prior_correlation_km: Annotated[
        float, typer.Option("--prior-correlation-km", metavar="KM",
                            help="e-folding distance of prior errors between regions (0: independent).")
    ] = 0.0,
    prior_correlation_days: Annotated[
        float, typer.Option("--prior-correlation-days", metavar="DAYS",
                            help="e-folding time of the change between windows (0: independent).")
    ] = 0.0,
    species: Annotated[
        str, typer.Option("--species", help="Observed species to use, comma-separated.")
    ] = "SO2,NO2,PM2.5",
    regions: Annotated[
        str, typer.Option("--regions", help="State regions: 'run' (the run's source regions) or 'provinces'.")
    ] = "run",
    sectors: Annotated[
        str, typer.Option("--sectors", help="State sectors: 'each' or 'total'.")
    ] = "each",
    window: Annotated[
        str, typer.Option("--window", help="State time windows: 'run', 'month', '<N>d' or '<N>h'.")
    ] = "run",
    average_hours: Annotated[
        int, typer.Option("--average-hours", min=1, metavar="H",
                          help="Average the hourly observations over H hours.")
    ] = 24,
    transport_fraction: Annotated[
        float, typer.Option("--transport-error", metavar="PERCENT",
                            help="Transport error, percent of the modelled concentration: used when there "
                            "is no ensemble (neither --transport-ensemble nor a meteorological variance "
                            "in the run file).")
    ] = 30.0,
    transport_ensemble: Annotated[
        list[Path] | None,
        typer.Option("--transport-ensemble", metavar="RUN.nc",
                     help="Member run files (same stations): their spread is the transport error; "
                     "repeatable."),
    ] = None,
    sampling_error: Annotated[
        bool, typer.Option("--sampling-error/--no-sampling-error",
                           help="Count the particle core's Monte-Carlo sampling error, estimated from the "
                           "run's station series.")
    ] = True,
    error_correlation_hours: Annotated[
        float, typer.Option("--error-correlation-hours", metavar="H",
                            help="e-folding time of representation and transport errors at a station, h.")
    ] = 12.0,
    claims: Annotated[
        list[str] | None,
        typer.Option("--claim", metavar="SPEC",
                     help="A claimed change to check: region=Hebei,species=SO2,percent=-20[,sector=power]"
                     "[,start=ISO][,end=ISO]; repeatable."),
    ] = None,
    json_out: Annotated[
        str | None,
        typer.Option("--json", metavar="FILE|-",
                     help="Also write everything as JSON to FILE ('-': only the JSON, to stdout)."),
    ] = None,
) -> None:
    """Estimate emission changes from monitoring data (analytical Bayesian inversion); check claimed cuts."""
    from airshed.inputs.observations import read_observations, read_stations
    from airshed.verification import Claim, ObservationErrors, PriorErrors, VerifySettings, verify
    from airshed.verification.priors import read_prior_error_table
    from airshed.verification.report import claims_table, diagnostics_table, region_table, verification_json

    inventory_percent, table = None, None
    if prior_error is not None:
        try:
            inventory_percent = float(prior_error.rstrip("%"))
        except ValueError:
            table = read_prior_error_table(prior_error)
    settings = VerifySettings(
        species=tuple(s.strip() for s in species.split(",") if s.strip()),
        regions=regions, sectors=sectors, window=window, average_hours=average_hours,
        errors=ObservationErrors(transport_fraction=transport_fraction / 100.0,
                                 correlation_hours=error_correlation_hours, sampling=sampling_error),
        prior=PriorErrors(table=table, inventory_percent=inventory_percent, change_percent=change_prior,
                          correlation_km=prior_correlation_km, correlation_days=prior_correlation_days),
    )
    parsed = [Claim.parse(c) for c in claims or []]
    obs = read_observations([p.expanduser() for p in observations])
    station_list = read_stations(stations) if stations is not None else None
    # the checks every command makes (NetCDF, an airshed run file of a readable format); the variables
    # verify reads beyond emission_total are checked by verify itself, with their hints
    with _open_run(run_file, ("emission_total",), "verify") as ds:
        result = verify(ds, obs, settings, station_list, str(run_file.expanduser()), transport_ensemble)
    if not result.posterior.converged:  # also with --json -: the JSON's "converged" is false
        stderr.print(Text(f"warning: the inversion did not converge in {result.posterior.iterations} "
                          "iterations; its estimates are the lowest-cost iterate, not a solution",
                          style="bold yellow"), soft_wrap=True)
    checked = [result.check(c) for c in parsed]
    if json_out is not None:
        text = json.dumps(_json_tree(verification_json(result, checked)), indent=2, allow_nan=False) + "\n"
        if json_out == "-":
            typer.echo(text, nl=False)
            return
        from airshed.atomic_files import atomic_path

        with atomic_path(Path(json_out).expanduser(), destination=_JSON_OPTION) as tmp:
            tmp.write_text(text, encoding="utf-8")
    stdout.print(diagnostics_table(result))
    stdout.print(region_table(result))
    if checked:
        stdout.print(claims_table(checked))
    for note in result.notes:
        stdout.print(Text(f"note: {note}", style="yellow"), soft_wrap=True)
    if json_out is not None and not _options(ctx).quiet:
        stdout.print(Text(f"wrote {json_out}", style="green"), soft_wrap=True)


# --- airshed bench -----------------------------------------------------------------------------------
@app.command("bench")
def bench_command(
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes: a smoke run.")] = False,
    json_file: Annotated[
        Path | None,
        typer.Option("--json", metavar="FILE", dir_okay=False,
                     help="Also write the records (name, unit, value, ratio_vs_reference, peak_memory_mb, "
                     "threads, cpu, ...) as a JSON list."),
    ] = None,
    benchmarks: Annotated[
        Path | None,
        typer.Option("--benchmarks", metavar="DIR", file_okay=False,
                     help="Folder of bench_*.py scripts (default: benchmarks/ of the source checkout)."),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", metavar="NAME", help="Run only this benchmark, e.g. plume (repeatable)."),
    ] = None,
) -> None:
    """Run the benchmarks (kernels and end to end) and print a markdown table."""
    from airshed.bench import find_benchmarks, markdown_table, run_benchmarks

    records = run_benchmarks(find_benchmarks(benchmarks), quick=quick, only=only)
    if json_file is not None:
        from airshed.atomic_files import atomic_path

        with atomic_path(json_file, destination=_JSON_OPTION) as tmp:
            tmp.write_text(json.dumps([{k: _jsonable(v) for k, v in r.items()} for r in records], indent=2))
    typer.echo(markdown_table(records))


# --- airshed validate --------------------------------------------------------------------------------
class CoreChoice(StrEnum):
    """Which dispersion core(s) to validate."""

    plume = "plume"
    lagrangian = "lagrangian"
    both = "both"


@validate_app.command("prairie-grass")
def prairie_grass_command(
    ctx: typer.Context,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            metavar="DIR",
            help="Folder with the Prairie Grass CSV files (default: the development subset shipped with "
            "airshed).",
            file_okay=False,
        ),
    ] = None,
    core: Annotated[
        CoreChoice, typer.Option("--core", help="Dispersion core to score: plume, lagrangian or both.")
    ] = CoreChoice.both,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the scores as a JSON list instead of a table.")
    ] = False,
    observed_sigma_theta: Annotated[
        bool,
        typer.Option(
            "--observed-sigma-theta",
            help="Also score the plume's boundary-layer option with the measured sigma of wind azimuth as "
            "lateral turbulence (sigma_v = sigma_theta u, as AERMOD takes on-site data); option "
            "'boundary-layer+sigma-theta'.",
        ),
    ] = False,
    processes: Annotated[
        int | None,
        typer.Option("--processes", min=1, help="Processes for the particle runs (default: every CPU); the "
                     "scores do not depend on it."),
    ] = None,
) -> None:
    """Score the cores on Project Prairie Grass (Barad 1958): FB, NMSE, MG, VG, FAC2 per arc."""
    from airshed.pipeline.progress import ProgressBar
    from airshed.validation.prairie_grass import run_validation

    cores = ["plume", "lagrangian"] if core is CoreChoice.both else [core.value]
    rows = run_validation(
        data.expanduser().resolve() if data is not None else None,
        cores,
        observed_sigma_theta=observed_sigma_theta,
        processes=processes,
        progress=lambda total: ProgressBar(not _options(ctx).quiet and not as_json, total,
                                           "Prairie Grass", unit="runs"),
    )
    if as_json:
        typer.echo(json.dumps([{k: _jsonable(v) for k, v in row.items()} for row in rows], indent=2))
        return
    columns = ["core", "option", "quantity", "stability", "distance_m", "n", "FB", "NMSE", "MG", "VG", "FAC2"]
    table = Table(title="Project Prairie Grass (Barad 1958): statistics of Chang & Hanna (2004)")
    for column in columns:
        table.add_column(
            column, justify="left" if column in {"core", "option", "quantity", "stability"} else "right"
        )
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    stdout.print(table)
    stdout.print(
        "FB = 2(O - P)/(O + P): positive means under-prediction. Ideal: FB 0, NMSE 0, MG 1, VG 1, FAC2 1."
    )


def _jsonable(value: Any) -> Any:
    """Plain JSON value: NumPy scalars unwrapped, NaN and infinities as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _cell(value: Any) -> str:
    value = _jsonable(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)
