"""The failure catalogue: every bad input and environment fault airshed is tested against (issue 13).

Each :class:`Case` builds its inputs in a fresh folder (small synthetic files written in code: ERA5-, WRF-
and CF-like meteorology, a point-source table, tiny NetCDF files), runs one ``airshed`` command and states
the expected exit status and a fragment of the message. ``tests/test_failure_catalogue.py`` runs them all
and checks, after each, that no temporary file (``.NAME.XXXXXXXX.tmp``) and no partial output is left, and
that an output file that existed before a failed run is untouched. ``docs/failure_catalogue.md`` is this
list as a table (``python tests/failure_catalogue_cases.py`` prints it; a test keeps the two identical).

Runs use a 50 km grid over Beijing (bbox 115-118 E, 38-41 N: 7 x 7 cells), two hours, the plume core and
one stack, so a case that runs to the end costs well under a second once the kernels are compiled.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_meteorology import era5_files, wrf_file  # noqa: E402  (synthetic met written in code)

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "examples" / "policy_jjj.toml"
OUT = "out/cat.nc"
"""Output of every run case, relative to the case folder (the folder ``out`` exists)."""
PREVIOUS = b"previous result"
"""Content of an output file that exists before a failing run (it must survive)."""


@dataclass(frozen=True)
class Invocation:
    """What a case runs: the CLI arguments (relative paths are inside the case folder)."""

    argv: list[str]
    output: str | None = OUT  # a file that must not appear (or must keep PREVIOUS content) after a failure
    previous: bool = False  # write PREVIOUS to ``output`` first
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """One entry of the catalogue."""

    id: str
    group: str
    what: str
    command: str
    exit_code: int
    fragment: str  # a regular expression searched in stderr
    build: Callable[[Path], Invocation]
    runner: str = "cli"  # "cli" (in process), "subprocess" (signals), "unshare" (a small tmpfs)
    one_line: bool = True  # exit 2 prints exactly one `error:` line (False: click's own usage errors)
    patch: str | None = None  # name of a monkeypatch the test applies (see test_failure_catalogue.PATCHES)
    checks: tuple[str, ...] = ()  # extra checks on the written run file (exit 0 cases)


# ---------------------------------------------------------------------------------------------------
# inputs written in code
# ---------------------------------------------------------------------------------------------------
POINTS_CSV = (
    "id,lon,lat,stack_height_m,diameter_m,exit_temperature_k,exit_velocity_m_s,sector,so2_kg_s,nox_kg_s\n"
    """P1,116.40,39.90,120,4,400,15,power,{so2},{nox}
"""
)


def write_points(folder: Path, so2: str = "1.0", nox: str = "0.5", name: str = "points.csv") -> str:
    (folder / name).write_text(POINTS_CSV.format(so2=so2, nox=nox), encoding="utf-8")
    return name


def config_text(
    met: str = "era5",
    start: str = "2024-01-10T00:00:00",
    end: str = "2024-01-10T02:00:00",
    core: str = "plume",
    output: str = OUT,
    extra: str = "",
    points: str = "points.csv",
    regions: str = 'set = "provinces"\npopulation = "none"',
    met_paths: str | None = None,
) -> str:
    paths = (
        {
            "era5": '["sl_new.nc", "pl_new.nc"]',
            "wrf": '["wrfout_d01_2024-01-10_00:00:00"]',
            "cf": '["met_cf.nc"]',
            "builtin": None,
        }[met]
        if met_paths is None
        else met_paths
    )
    met_table = f'format = "{met}"' + (f"\npaths = {paths}" if paths else "")
    emissions = 'inventory = "none"' + (f'\npoints = ["{points}"]' if points else "")
    return f"""
[run]
name = "cat"
start = {start}
end = {end}
core = "{core}"
output = "{output}"
[grid]
bbox = [115, 38, 118, 41]
cell_km = 50
[regions]
{regions}
[meteorology]
{met_table}
[emissions]
{emissions}
[plume]
area_source_subcells = 1
{extra}
"""


def run_case(
    folder: Path,
    met: str = "era5",
    mutate=None,
    n_t: int = 6,
    command: str = "run",
    previous: bool = False,
    points: tuple[str, str] = ("1.0", "0.5"),
    cfg_extra: str = "",
    end: str = "2024-01-10T02:00:00",
    args: tuple[str, ...] = (),
    write_met: bool = True,
    **cfg,
) -> Invocation:
    """Write met (``met`` reader, optionally mutated), a stack and a config; invoke ``command``."""
    (folder / "out").mkdir(exist_ok=True)
    if not write_met:
        pass
    elif met == "era5":
        era5_files(folder, n_t=n_t, mutate=mutate)
    elif met == "wrf":
        path = wrf_file(folder, alpha_deg=0.0)
        if mutate is not None:
            with xr.open_dataset(path, decode_times=False) as ds:
                changed = mutate(ds.load())
            path.unlink()
            changed.to_netcdf(path, encoding={"Times": {"char_dim_name": "DateStrLen"}})
    elif met == "cf":
        cf_file(folder, mutate)
    write_points(folder, *points)
    (folder / "run.toml").write_text(config_text(met=met, end=end, extra=cfg_extra, **cfg), encoding="utf-8")
    argv = ["-q", *command.split(), "run.toml", *args]
    return Invocation(argv, output=OUT, previous=previous)


def validate_case(folder: Path, **kwargs) -> Invocation:
    inv = run_case(folder, command="config validate", **kwargs)
    return Invocation(inv.argv, output=OUT)


def cf_file(folder: Path, mutate=None) -> Path:
    """CF NetCDF with the reader's default names (uas, vas, tas, hfss, blh, clt, pr, ps, ustar), 4 hours."""
    lat = np.arange(35.0, 44.1, 1.0)
    lon = np.arange(110.0, 122.1, 1.0)
    times = np.datetime64("2024-01-10T00") + np.arange(4) * np.timedelta64(1, "h")
    shape = (times.size, lat.size, lon.size)
    d = ("time", "lat", "lon")
    ds = xr.Dataset(
        {
            "uas": (d, np.full(shape, 4.0), {"units": "m s-1"}),
            "vas": (d, np.full(shape, 1.0), {"units": "m s-1"}),
            "tas": (d, np.full(shape, 272.0), {"units": "K"}),
            "hfss": (d, np.full(shape, 30.0), {"units": "W m-2"}),
            "blh": (d, np.full(shape, 700.0), {"units": "m"}),
            "clt": (d, np.full(shape, 0.3), {"units": "1"}),
            "pr": (d, np.full(shape, 0.0), {"units": "mm h-1"}),
            "ps": (d, np.full(shape, 101000.0), {"units": "Pa"}),
            "ustar": (d, np.full(shape, 0.35), {"units": "m s-1"}),
        },
        coords={"time": times, "lat": lat, "lon": lon},
    )
    if mutate is not None:
        ds = mutate(ds)
    path = folder / "met_cf.nc"
    ds.to_netcdf(path)
    return path


def set_var(
    name: str,
    value,
    where: Callable[[xr.DataArray], xr.DataArray] | None = None,
    units=None,
    dataset: str = "single",
):
    """A met mutation: set ``name`` to ``value`` (everywhere, or where ``where`` is true)."""

    def change(ds: xr.Dataset) -> xr.Dataset:
        da = ds[name]
        new = xr.full_like(da, value) if where is None else da.where(~where(da), value)
        ds[name] = new.assign_attrs(da.attrs if units is None else {**da.attrs, "units": units})
        return ds

    def era5(single: xr.Dataset, pres: xr.Dataset):
        if dataset == "single":
            return change(single), pres
        return single, change(pres)

    era5.single_dataset = change  # CF and WRF files are one dataset
    return era5


def one_dataset(mutation):
    """The same mutation for a reader with one dataset (CF, WRF)."""
    return mutation.single_dataset


def drop(*names: str):
    def era5(single: xr.Dataset, pres: xr.Dataset):
        return single.drop_vars([n for n in names if n in single]), pres.drop_vars(
            [n for n in names if n in pres]
        )

    era5.single_dataset = lambda ds: ds.drop_vars([n for n in names if n in ds])
    return era5


def first_hour(da: xr.DataArray) -> xr.DataArray:
    tdim = da.dims[0]
    return da[tdim] == da[tdim][0]


def at_hour(index: int):
    def where(da: xr.DataArray) -> xr.DataArray:
        tdim = da.dims[0]
        return (da[tdim] == da[tdim][index]).broadcast_like(da)

    return where


def swap_levels(single: xr.Dataset, pres: xr.Dataset):
    """Geopotential of the two lowest pressure levels exchanged: heights decrease upward there."""
    z = pres["z"].values.copy()
    lev = pres["pressure_level"].values
    lo, hi = int(np.argmax(lev)), int(np.argsort(lev)[-2])  # 1000 hPa and the next one up
    z[:, [lo, hi]] = z[:, [hi, lo]]
    pres["z"] = (pres["z"].dims, z, pres["z"].attrs)
    return single, pres


def wrf_heights_swapped(ds: xr.Dataset) -> xr.Dataset:
    """The fourth staggered level put at 20 m, below the third (150 m): mass levels 100 m then 85 m."""
    phb = ds["PHB"].values.copy()
    phb[:, 3] = 20.0 * 9.80665
    ds["PHB"] = (ds["PHB"].dims, phb, ds["PHB"].attrs)
    return ds


def wrf_set(name: str, value):
    def change(ds: xr.Dataset) -> xr.Dataset:
        ds[name] = xr.full_like(ds[name], value)
        return ds

    return change


def wrf_t2_celsius(ds: xr.Dataset) -> xr.Dataset:
    ds["T2"] = ds["T2"] - 273.15
    ds["T2"].attrs["units"] = "K"
    return ds


def t2m_celsius(single: xr.Dataset, pres: xr.Dataset):
    single["t2m"] = (single["t2m"] - 273.15).assign_attrs(units="K")
    return single, pres


def no_heat_flux(single, pres):
    return single.drop_vars(["sshf"]), pres


# --- small NetCDF and config files for the readers of run files ------------------------------------------
def foreign_netcdf(folder: Path, name: str = "foreign.nc") -> str:
    xr.Dataset(
        {"tas": (("time",), np.array([270.0, 271.0]), {"units": "K"})},
        coords={"time": np.arange(2.0)},
        attrs={"title": "someone else's file"},
    ).to_netcdf(folder / name)
    return name


def airshed_like_netcdf(folder: Path, name: str = "run.nc", **attrs) -> str:
    xr.Dataset({"population": (("y", "x"), np.ones((2, 2)))}, attrs=attrs).to_netcdf(folder / name)
    return name


def scenario_config(folder: Path) -> str:
    text = (
        config_text(met="builtin", start="2017-12-01T00:00:00", end="2017-12-01T02:00:00")
        + """
[[scenarios]]
name = "cut"
[[scenarios.changes]]
regions = ["Beijing"]
change_percent = -30
"""
    )
    write_points(folder)
    (folder / "out").mkdir(exist_ok=True)
    (folder / "scen.toml").write_text(text, encoding="utf-8")
    return "scen.toml"


def reader_case(command: str, file_builder, figures: bool = False):
    def build(folder: Path) -> Invocation:
        name = file_builder(folder)
        stem = Path(name).stem
        if command == "plot":
            argv = ["plot", name]
            out = f"{stem}_figures"
        elif command == "report":
            argv = ["report", name]
            out = f"{stem}.html"
        elif command == "scenario":
            argv = ["scenario", scenario_config(folder), name]
            out = None
        elif command == "cooperate":
            argv = ["cooperate", name, "--policy", str(POLICY), "--save"]
            out = f"{stem}.cooperation.json"
        else:  # performance
            argv = ["performance", name, name]
            out = None
        return Invocation(argv, output=out)

    return build


def config_case(
    text: str,
    *,
    name: str = "bad.toml",
    raw: bytes | None = None,
    command: str = "config validate",
    extra_files: dict[str, str] | None = None,
) -> Callable[[Path], Invocation]:
    def build(folder: Path) -> Invocation:
        (folder / "out").mkdir(exist_ok=True)
        write_points(folder)
        for fname, content in (extra_files or {}).items():
            (folder / fname).write_text(content, encoding="utf-8")
        path = folder / name
        if raw is not None:
            path.write_bytes(raw)
        else:
            path.write_text(text, encoding="utf-8")
        return Invocation([*command.split(), name], output=OUT)

    return build


def builtin_config(extra: str = "", **kw) -> str:
    return config_text(
        met="builtin", start="2017-12-01T00:00:00", end="2017-12-01T02:00:00", extra=extra, **kw
    )


def gridded_file(folder: Path, value: float | None = None, units: str = "kg m-2 s-1") -> str:
    lat = np.arange(37.05, 42.0, 0.1)
    lon = np.arange(114.05, 119.0, 0.1)
    field_ = np.full((lat.size, lon.size), 1e-10)
    if value is not None:
        field_[10, 12] = value
    xr.Dataset(
        {"so2_industry": (("lat", "lon"), field_, {"units": units})},
        coords={
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    ).to_netcdf(folder / "grid_emis.nc")
    return "grid_emis.nc"


def gridded_case(value: float | None = None, units: str = "kg m-2 s-1", command: str = "run"):
    def build(folder: Path) -> Invocation:
        gridded_file(folder, value, units)
        inv = run_case(
            folder,
            met="builtin",
            command=command,
            start="2017-12-01T00:00:00",
            end="2017-12-01T02:00:00",
            points="",
        )
        text = (
            (folder / "run.toml")
            .read_text()
            .replace('inventory = "none"', 'inventory = "none"\ngridded = ["grid_emis.nc"]')
        )
        (folder / "run.toml").write_text(text)
        return inv

    return build


def regions_file(folder: Path, bowtie: bool = False, column: str = "name") -> str:
    import geopandas as gpd
    import shapely

    beijing = shapely.box(115.5, 39.5, 117.0, 41.0)
    if bowtie:  # a figure eight: the ring crosses itself at (116.25, 38.75)
        south = shapely.Polygon([(115.5, 38.0), (117.0, 39.5), (117.0, 38.0), (115.5, 39.5)])
    else:
        south = shapely.box(115.5, 38.0, 117.0, 39.5)
    gpd.GeoDataFrame({column: ["North", "South"]}, geometry=[beijing, south], crs="EPSG:4326").to_file(
        folder / "regions.geojson", driver="GeoJSON"
    )
    return "regions.geojson"


def region_file_case(command: str, bowtie: bool = False, name_column: str = "name", column: str = "name"):
    def build(folder: Path) -> Invocation:
        regions_file(folder, bowtie=bowtie, column=column)
        regions = f'set = "regions.geojson"\nname_column = "{name_column}"\npopulation = "none"'
        return run_case(
            folder,
            met="builtin",
            command=command,
            start="2017-12-01T00:00:00",
            end="2017-12-01T02:00:00",
            regions=regions,
        )

    return build


def _run_builtin(command: str = "run", **kw) -> Callable[[Path], Invocation]:
    def build(folder: Path) -> Invocation:
        return run_case(
            folder,
            met="builtin",
            command=command,
            start="2017-12-01T00:00:00",
            end="2017-12-01T02:00:00",
            **kw,
        )

    return build


def _era5(command: str = "run", **kw) -> Callable[[Path], Invocation]:
    return lambda folder: run_case(folder, met="era5", command=command, **kw)


def _readonly_output(folder: Path) -> Invocation:
    """Output into a folder nobody may write to: chmod 555, or /sys where root ignores the mode bits."""
    import os

    locked = folder / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    target = "locked/cat.nc" if not os.access(locked, os.W_OK) else "/sys/airshed_catalogue.nc"
    inv = run_case(
        folder, met="builtin", start="2017-12-01T00:00:00", end="2017-12-01T02:00:00", output=target
    )
    return Invocation(inv.argv, output=None)


def _cache_folder_is_a_file(folder: Path) -> Invocation:
    """AIRSHED_CACHE_DIR names a file: the built-in inputs' cache folder cannot be made there."""
    blocker = folder / "not_a_folder"
    blocker.write_text("")
    inv = _run_builtin()(folder)
    return Invocation(inv.argv, output=inv.output, env={"AIRSHED_CACHE_DIR": str(blocker)})


def _validate_readonly(folder: Path) -> Invocation:
    _readonly_output(folder)
    return Invocation(["-q", "config", "validate", "run.toml"], output=None)


def _output_is_folder(command: str):
    def build(folder: Path) -> Invocation:
        (folder / "out" / "cat.nc").mkdir(parents=True)
        inv = run_case(
            folder, met="builtin", command=command, start="2017-12-01T00:00:00", end="2017-12-01T02:00:00"
        )
        return Invocation(inv.argv, output=None)

    return build


def _output_option_is_folder(folder: Path) -> Invocation:
    (folder / "elsewhere").mkdir()
    inv = run_case(folder, met="builtin", start="2017-12-01T00:00:00", end="2017-12-01T02:00:00")
    return Invocation([*inv.argv, "--output", "elsewhere"], output=None)


def _missing_output_folder(command: str):
    def build(folder: Path) -> Invocation:
        inv = run_case(
            folder,
            met="builtin",
            command=command,
            start="2017-12-01T00:00:00",
            end="2017-12-01T02:00:00",
            output="nowhere/cat.nc",
        )
        return Invocation(inv.argv, output="nowhere/cat.nc")

    return build


def _population_file(command: str):
    def build(folder: Path) -> Invocation:
        (folder / "pop.csv").write_text("region,population\nBeijing,21893095\n", encoding="utf-8")
        return run_case(
            folder,
            met="builtin",
            command=command,
            start="2017-12-01T00:00:00",
            end="2017-12-01T02:00:00",
            regions='set = "provinces"\npopulation = "pop.csv"',
        )

    return build


def _scenario_region(command: str):
    def build(folder: Path) -> Invocation:
        extra = '[[scenarios]]\nname = "cut"\n[[scenarios.changes]]\n'
        extra += 'regions = ["Atlantis"]\nchange_percent = -30\n'
        args = ("--scenario", "cut") if command == "run" else ()
        return run_case(
            folder,
            met="builtin",
            command=command,
            start="2017-12-01T00:00:00",
            end="2017-12-01T02:00:00",
            cfg_extra=extra,
            args=args,
        )

    return build


def _met_period(command: str):
    return lambda folder: run_case(folder, met="era5", command=command, n_t=2, end="2024-01-10T03:00:00")


def _met_domain(command: str):
    def build(folder: Path) -> Invocation:
        lon = np.arange(110.0, 116.1, 0.5)  # ends at 116 E; the domain reaches 118 E
        era5_files(folder, lon=lon)
        return run_case(folder, met="era5", command=command, write_met=False)

    return build


def _met_units(command: str):
    return lambda folder: run_case(
        folder, met="era5", command=command, mutate=set_var("u10", 5.0, units="furlongs per fortnight")
    )


def _zero_out(command: str):
    def build(folder: Path) -> Invocation:
        inv = run_case(
            folder, met="builtin", command=command, start="2017-12-01T00:00:00", end="2017-12-01T02:00:00"
        )
        return Invocation([*inv.argv, "--zero-out", "Atlantis"], output=OUT)

    return build


def _station_outside(command: str):
    def build(folder: Path) -> Invocation:
        (folder / "stations.csv").write_text("id,name,lon,lat\nBJ,Beijing,116.4,39.9\nP,Paris,2.35,48.85\n",
                                             encoding="utf-8")
        return run_case(folder, met="era5", command=command,
                        cfg_extra='[receptors]\nstations = "stations.csv"\n')

    return build


def _memory(command: str, scheduler: str = "serial"):
    extra = "[lagrangian]\nparticles_per_hour = 100000000\n"
    if scheduler != "serial":
        extra += f'[compute]\nscheduler = "{scheduler}"\nmemory_limit = "256MB"\n'
    return lambda folder: run_case(
        folder,
        met="builtin",
        command=command,
        start="2017-12-01T00:00:00",
        end="2017-12-03T00:00:00",
        core="lagrangian",
        cfg_extra=extra,
    )


def _signal_case(folder: Path) -> Invocation:
    """A plume run long enough to be interrupted while it writes (built-in inputs, 27 km, dry deposition)."""
    (folder / "out").mkdir()
    (folder / "out" / "cat.nc").write_bytes(PREVIOUS)
    text = f"""
[run]
name = "cat"
start = 2017-12-01T00:00:00
end = 2017-12-02T00:00:00
core = "plume"
output = "{OUT}"
[grid]
cell_km = 27
[regions]
population = "none"
[emissions]
inventory = "builtin"
[plume]
area_source_subcells = 1
"""
    (folder / "run.toml").write_text(text, encoding="utf-8")
    return Invocation(["-q", "run", "run.toml"], output=OUT, previous=True)


def _all_zero(folder: Path) -> Invocation:
    return run_case(folder, met="era5", points=("0.0", "0.0"))


def _points_outside(folder: Path) -> Invocation:
    inv = run_case(folder, met="era5")
    (folder / "points.csv").write_text(
        POINTS_CSV.format(so2="1.0", nox="0.5").replace("116.40,39.90", "125.0,30.0")
    )
    return inv


# ---------------------------------------------------------------------------------------------------
# the catalogue
# ---------------------------------------------------------------------------------------------------
MINIMAL = builtin_config()
_NOT_OK = r"^error: "

CASES: list[Case] = [
    # --- the config file (schema) -------------------------------------------------------------------
    Case(
        "config-unknown-key",
        "config",
        "a misspelt key",
        "config validate",
        2,
        r"unknown key `plume\.dispersoin`; did you mean `plume\.dispersion`\?",
        config_case(MINIMAL.replace("area_source_subcells = 1", 'dispersoin = "briggs-rural"')),
    ),
    Case(
        "config-out-of-bounds",
        "config",
        "a value out of bounds (cell_km = 0)",
        "config validate",
        2,
        r"`grid\.cell_km` = 0: expected a value greater than 0",
        config_case(MINIMAL.replace("cell_km = 50", "cell_km = 0")),
    ),
    Case(
        "config-missing-file",
        "config",
        "the config file does not exist",
        "config validate",
        2,
        r"config file not found",
        lambda f: Invocation(["config", "validate", "nope.toml"], output=None),
    ),
    Case(
        "config-invalid-toml",
        "config",
        "invalid TOML",
        "config validate",
        2,
        r"line \d+, column \d+: invalid TOML",
        config_case("[run\nname = 1"),
    ),
    Case(
        "config-not-utf8",
        "config",
        "a config that is not UTF-8 text",
        "config validate",
        2,
        r"not UTF-8 text",
        config_case("", raw=b'[run]\nname = "caf\xe9"\n'),
    ),
    Case(
        "config-wrong-type",
        "config",
        'a string where a number belongs (seed = "5")',
        "config validate",
        2,
        r"`run\.seed`",
        config_case(MINIMAL.replace('core = "plume"', 'core = "plume"\nseed = "5"')),
    ),
    Case(
        "config-end-before-start",
        "config",
        "run.end before run.start",
        "config validate",
        2,
        r"`run\.end`",
        config_case(MINIMAL.replace("end = 2017-12-01T02:00:00", "end = 2017-11-30T02:00:00")),
    ),
    Case(
        "config-not-whole-hour",
        "config",
        "a start time that is not a whole hour",
        "config validate",
        2,
        r"whole hour",
        config_case(MINIMAL.replace("start = 2017-12-01T00:00:00", "start = 2017-12-01T00:30:00")),
    ),
    Case(
        "config-unknown-core",
        "config",
        "an unknown core",
        "config validate",
        2,
        r"`run\.core`",
        config_case(MINIMAL.replace('core = "plume"', 'core = "puff"')),
    ),
    Case(
        "config-unknown-scheduler",
        "config",
        "an unknown Dask scheduler",
        "config validate",
        2,
        r"did you mean 'serial'\?",
        config_case(MINIMAL + '[compute]\nscheduler = "seral"\n'),
    ),
    Case(
        "config-memory-limit-small",
        "config",
        "compute.memory_limit below 256 MB",
        "config validate",
        2,
        r"expected at least 256 MB",
        config_case(MINIMAL + '[compute]\nmemory_limit = "100MB"\n'),
    ),
    Case(
        "config-met-glob-empty",
        "config",
        "a met path pattern that matches no file",
        "config validate",
        2,
        r"matches no file",
        config_case(config_text(met="era5", met_paths='["met/*.nc"]')),
    ),
    Case(
        "config-builtin-too-short",
        "config",
        "a run longer than the built-in episode",
        "config validate",
        2,
        r"longer than the built-in meteorology",
        config_case(MINIMAL.replace("end = 2017-12-01T02:00:00", "end = 2017-12-31T00:00:00")),
    ),
    Case(
        "config-interval-multiple",
        "config",
        "a particle run not a multiple of output_interval_h",
        "config validate",
        2,
        r"not a multiple of `lagrangian\.output_interval_h`",
        config_case(builtin_config("[lagrangian]\noutput_interval_h = 3\n", core="lagrangian")),
    ),
    Case(
        "config-region-suffix",
        "config",
        "a region file of an unknown type",
        "config validate",
        2,
        r"expected a polygon file ending in",
        config_case(
            MINIMAL.replace('set = "provinces"', 'set = "regions.txt"'), extra_files={"regions.txt": "x"}
        ),
    ),
    Case(
        "config-region-name-column",
        "config",
        "a region file without regions.name_column",
        "config validate",
        2,
        r"`regions\.name_column` is required",
        config_case(
            MINIMAL.replace('set = "provinces"', 'set = "regions.geojson"'),
            extra_files={"regions.geojson": "{}"},
        ),
    ),
    Case(
        "config-scenario-window",
        "config",
        "a scenario window outside the run",
        "config validate",
        2,
        r"the window lies outside the run",
        config_case(
            MINIMAL + '[[scenarios]]\nname = "s"\n[[scenarios.changes]]\n'
            'regions = "all"\nstart = 2018-01-01T00:00:00\n'
            "change_percent = -10\n"
        ),
    ),
    Case(
        "config-scenario-twice",
        "config",
        "two scenarios of the same name",
        "config validate",
        2,
        r"is defined twice",
        config_case(
            MINIMAL
            + ('[[scenarios]]\nname = "s"\n[[scenarios.changes]]\nregions = "all"\nchange_percent = -10\n')
            * 2
        ),
    ),
    Case(
        "config-unknown-species",
        "config",
        "an unknown species in run.species",
        "config validate",
        2,
        r"`run\.species",
        config_case(MINIMAL.replace('core = "plume"', 'core = "plume"\nspecies = ["SO3"]')),
    ),
    Case(
        "config-projection-degrees",
        "config",
        "a projection in degrees",
        "config validate",
        2,
        r"`grid\.projection`",
        config_case(MINIMAL.replace("cell_km = 50", 'cell_km = 50\nprojection = "EPSG:4326"')),
    ),
    Case(
        "config-bbox-unordered",
        "config",
        "a bbox with west > east",
        "config validate",
        2,
        r"`grid\.bbox`",
        config_case(MINIMAL.replace("bbox = [115, 38, 118, 41]", "bbox = [118, 38, 115, 41]")),
    ),
    Case(
        "config-nothing-emits",
        "config",
        "no inventory and no emission files",
        "config validate",
        2,
        r"no emissions: `emissions\.inventory` is 'none'",
        config_case(builtin_config(points="")),
    ),
    Case(
        "cli-verbose-quiet",
        "config",
        "--verbose and --quiet together",
        "config validate",
        2,
        r"--verbose and --quiet cannot be used together",
        lambda f: Invocation(["-v", "-q", "config", "validate", "x.toml"], output=None),
    ),
    # --- what `config validate` now catches that only the run rejected before ------------------------------
    *[
        Case(f"{stem}-{cmd.split()[-1]}", "validate = run", what, cmd, 2, frag, builder(cmd))
        for stem, what, frag, builder in (
            (
                "population-file",
                "a population CSV (not supported yet)",
                r"reading a population file is not supported",
                _population_file,
            ),
            (
                "scenario-region",
                "a scenario naming an unknown region",
                r"unknown region 'Atlantis'",
                _scenario_region,
            ),
            (
                "met-period",
                "meteorology that ends before the run does",
                r"meteorology covers .* but the run needs",
                _met_period,
            ),
            (
                "met-domain",
                "meteorology that does not cover the domain",
                r"but the model domain needs",
                _met_domain,
            ),
            (
                "met-units",
                "met units nobody knows",
                r"units 'furlongs per fortnight' are not known",
                _met_units,
            ),
            (
                "output-folder-missing",
                "an output folder that does not exist",
                r"output folder .*nowhere does not exist",
                _missing_output_folder,
            ),
            ("output-is-folder", "run.output names a folder", r"is a folder", _output_is_folder),
            (
                "zero-out-region",
                "--zero-out with an unknown region",
                r"--zero-out 'Atlantis': unknown region",
                _zero_out,
            ),
            (
                "station-outside-grid",
                "a monitoring station outside the grid",
                r"station 'P' at lon=2\.35, lat=48\.85 lies outside the model grid",
                _station_outside,
            ),
            (
                "memory",
                "1e8 particles per hour for 2 days",
                r"needs an estimated ~[\d.]+ GB \([\d,]+ particles x \d+ B x 3 .* of memory, more than",
                _memory,
            ),
        )
        for cmd in ("config validate", "run")
    ],
    Case(
        "output-readonly-run",
        "validate = run",
        "an output folder that is not writable",
        "run",
        2,
        r"not writable",
        _readonly_output,
    ),
    Case(
        "output-readonly-validate",
        "validate = run",
        "an output folder that is not writable",
        "config validate",
        2,
        r"not writable",
        _validate_readonly,
    ),
    Case(
        "region-name-column-missing-validate",
        "validate = run",
        "a region file without the named column",
        "config validate",
        2,
        r"has no name column 'NAME'",
        region_file_case("config validate", name_column="NAME"),
    ),
    Case(
        "region-name-column-missing-run",
        "validate = run",
        "a region file without the named column",
        "run",
        2,
        r"has no name column 'NAME'",
        region_file_case("run", name_column="NAME"),
    ),
    Case(
        "met-missing-variable-validate",
        "validate = run",
        "ERA5 files without 10 m wind",
        "config validate",
        2,
        r"no 10 m eastward wind: tried",
        _era5("config validate", mutate=drop("u10")),
    ),
    Case(
        "gridded-units-validate",
        "validate = run",
        "gridded emissions in unknown units",
        "config validate",
        2,
        r"unknown emission units|cannot parse units",
        gridded_case(units="bananas", command="config validate"),
    ),
    Case(
        "gridded-units-run",
        "validate = run",
        "gridded emissions in unknown units",
        "run",
        2,
        r"unknown emission units|cannot parse units",
        gridded_case(units="bananas"),
    ),
    Case(
        "point-column-validate",
        "validate = run",
        "a point table without diameter_m",
        "config validate",
        2,
        r"missing columns \['diameter_m'\]",
        lambda f: _drop_point_column(f, "config validate"),
    ),
    Case(
        "scenario-unknown-run",
        "validate = run",
        "run --scenario with a name the config lacks",
        "run",
        2,
        r"unknown scenario 'nope'",
        _run_builtin(args=("--scenario", "nope")),
    ),
    Case(
        "memory-cluster-validate",
        "validate = run",
        "particles per worker above compute.memory_limit",
        "config validate",
        2,
        r"compute\.memory_limit.* per worker",
        _memory("config validate", "local-cluster"),
    ),
    # --- physically impossible meteorology (every reader, every window) ---------------------------------
    Case(
        "met-blh-negative-era5",
        "met physics",
        "ERA5 blh = -500 m",
        "run",
        2,
        r"variable 'blh' in .*sl_new\.nc: \d+ impossible value\(s\) of mixing height "
        r".*first at 2024-01-10T00:00 "
        r"lon [\d.]+ lat [\d.]+ \(value -500\)",
        _era5(mutate=set_var("blh", -500.0)),
    ),
    Case(
        "met-blh-zero-era5",
        "met physics",
        "ERA5 blh = 0 m",
        "run",
        2,
        r"impossible value\(s\) of mixing height",
        _era5(mutate=set_var("blh", 0.0)),
    ),
    Case(
        "met-blh-negative-cf",
        "met physics",
        "CF blh = -500 m",
        "run",
        2,
        r"variable 'blh' in .*met_cf\.nc: \d+ impossible value\(s\) of mixing height",
        lambda f: run_case(f, met="cf", mutate=one_dataset(set_var("blh", -500.0))),
    ),
    Case(
        "met-blh-negative-wrf",
        "met physics",
        "WRF PBLH = -500 m",
        "run",
        2,
        r"variable 'PBLH' in .*wrfout.*impossible value\(s\) of mixing height",
        lambda f: run_case(f, met="wrf", mutate=wrf_set("PBLH", -500.0)),
    ),
    Case(
        "met-wind-1e5-era5",
        "met physics",
        "10 m wind of 1e5 m/s",
        "run",
        2,
        r"variable 'u10'.*impossible value\(s\) of 10 m wind speed",
        _era5(mutate=set_var("u10", 1e5)),
    ),
    Case(
        "met-wind-levels-era5",
        "met physics",
        "wind on pressure levels of 1e5 m/s",
        "run",
        2,
        r"variable 'u'.*impossible value\(s\) of wind speed on levels",
        _era5(mutate=set_var("u", 1e5, dataset="pressure")),
    ),
    Case(
        "met-wind-1e5-wrf",
        "met physics",
        "WRF U10 of 1e5 m/s",
        "run",
        2,
        r"impossible value\(s\) of 10 m wind speed",
        lambda f: run_case(f, met="wrf", mutate=wrf_set("U10", 1e5)),
    ),
    Case(
        "met-t2m-celsius-era5",
        "met physics",
        "t2m in degrees C labelled K",
        "run",
        2,
        r"impossible value\(s\) of 2 m air temperature .*look like degrees Celsius labelled K",
        _era5(mutate=t2m_celsius),
    ),
    Case(
        "met-t2m-celsius-wrf",
        "met physics",
        "WRF T2 in degrees C labelled K",
        "run",
        2,
        r"variable 'T2'.*look like degrees Celsius labelled K",
        lambda f: run_case(f, met="wrf", mutate=wrf_t2_celsius),
    ),
    Case(
        "met-t2m-celsius-cf",
        "met physics",
        "CF tas in degrees C labelled K",
        "run",
        2,
        r"variable 'tas'.*look like degrees Celsius",
        lambda f: run_case(f, met="cf", mutate=one_dataset(set_var("tas", -5.0))),
    ),
    Case(
        "met-ustar-negative-era5",
        "met physics",
        "negative u* (zust)",
        "run",
        2,
        r"variable 'zust'.*impossible value\(s\) of friction velocity",
        _era5(mutate=set_var("zust", -0.2)),
    ),
    Case(
        "met-ustar-negative-wrf",
        "met physics",
        "negative WRF UST",
        "run",
        2,
        r"variable 'UST'.*impossible value\(s\) of friction velocity",
        lambda f: run_case(f, met="wrf", mutate=wrf_set("UST", -0.2)),
    ),
    Case(
        "met-precip-negative-era5",
        "met physics",
        "negative precipitation (tp = -1 mm)",
        "run",
        2,
        r"variable 'tp'.*impossible value\(s\) of precipitation rate",
        _era5(mutate=set_var("tp", -0.001)),
    ),
    Case(
        "met-precip-negative-cf",
        "met physics",
        "negative CF precipitation rate",
        "run",
        2,
        r"variable 'pr'.*impossible value\(s\) of precipitation rate",
        lambda f: run_case(f, met="cf", mutate=one_dataset(set_var("pr", -2.0))),
    ),
    Case(
        "met-precip-accumulation-wrf",
        "met physics",
        "negative WRF accumulated rain",
        "run",
        2,
        r"negative accumulated precipitation",
        lambda f: run_case(f, met="wrf", mutate=wrf_set("RAINNC", -3.0)),
    ),
    Case(
        "met-pressure-low-era5",
        "met physics",
        "surface pressure 20 kPa",
        "run",
        2,
        r"variable 'sp'.*impossible value\(s\) of surface pressure",
        _era5(mutate=set_var("sp", 20000.0)),
    ),
    Case(
        "met-pressure-hpa-as-pa",
        "met physics",
        "surface pressure in hPa labelled Pa",
        "run",
        2,
        r"surface pressure .*look like hPa labelled Pa",
        _era5(mutate=set_var("sp", 1013.0)),
    ),
    Case(
        "met-pressure-high-wrf",
        "met physics",
        "WRF PSFC of 120 kPa",
        "run",
        2,
        r"variable 'PSFC'.*impossible value\(s\) of surface pressure",
        lambda f: run_case(f, met="wrf", mutate=wrf_set("PSFC", 120000.0)),
    ),
    Case(
        "met-heights-decrease-era5",
        "met physics",
        "geopotential of 1000 and 925 hPa swapped",
        "run",
        2,
        r"level heights decrease \(or repeat\) upward",
        _era5(mutate=swap_levels),
    ),
    Case(
        "met-heights-decrease-wrf",
        "met physics",
        "WRF level heights that decrease upward",
        "run",
        2,
        r"variable 'PH'.*level heights decrease",
        lambda f: run_case(f, met="wrf", mutate=wrf_heights_swapped),
    ),
    Case(
        "met-cloud-percent",
        "met physics",
        "cloud cover in percent labelled 0-1",
        "run",
        2,
        r"impossible value\(s\) of cloud cover .*percent",
        _era5(mutate=set_var("tcc", 60.0)),
    ),
    Case(
        "met-heat-flux-huge",
        "met physics",
        "sensible heat flux of 5000 W m-2",
        "run",
        2,
        r"variable 'sshf'.*impossible value\(s\) of upward sensible heat flux",
        _era5(mutate=set_var("sshf", -5000.0 * 3600.0)),
    ),
    Case(
        "met-z0-negative",
        "met physics",
        "negative roughness length (CF z0)",
        "run",
        2,
        r"variable 'z0'.*impossible value\(s\) of roughness length",
        lambda f: run_case(
            f,
            met="cf",
            mutate=(
                lambda ds: ds.assign(
                    z0=(("time", "lat", "lon"), np.full(ds["uas"].shape, -0.1), {"units": "m"})
                )
            ),
        ),
    ),
    Case(
        "met-nan",
        "met physics",
        "NaN inside the domain",
        "run",
        2,
        r"missing \(NaN/fill\) values of 'blh'",
        _era5(mutate=set_var("blh", np.nan)),
    ),
    Case(
        "met-later-window",
        "met physics",
        "an impossible value only in the second day's window",
        "run",
        2,
        r"impossible value\(s\) of mixing height .*first at 2024-01-11T06:00",
        lambda f: run_case(
            f,
            met="era5",
            n_t=32,
            end="2024-01-11T07:00:00",
            mutate=set_var("blh", -500.0, where=at_hour(30)),
            previous=True,
        ),
    ),
    # --- unusual, floored or derived meteorology: warnings, the run goes on ---------------------------------
    Case(
        "met-blh-5km",
        "met warnings",
        "blh of 5 km (unusual, used as given)",
        "run",
        0,
        r"unusual value\(s\) of mixing height \(usual: 10 to 4000 m\), used as given",
        _era5(mutate=set_var("blh", 5000.0)),
        checks=("written",),
    ),
    Case(
        "met-blh-floor",
        "met warnings",
        "blh of 15 m (raised to 20 m, counted)",
        "run",
        0,
        r"blh below 20 m raised to 20 m: \d+ value\(s\)",
        _era5(mutate=set_var("blh", 15.0)),
        checks=("written", "adjusted:blh below 20 m raised to 20 m"),
    ),
    Case(
        "met-blh-derived",
        "met warnings",
        "ERA5 without blh (diagnosed)",
        "run",
        0,
        r"blh not in the input: diagnosed from u\* and L",
        _era5(mutate=drop("blh")),
        checks=("written", "derived:blh"),
    ),
    Case(
        "met-turner",
        "met warnings",
        "no sensible heat flux (Turner classes)",
        "run",
        0,
        r"shf not in the input: stability from Turner",
        _era5(mutate=no_heat_flux),
        checks=("written", "derived:shf"),
    ),
    Case(
        "met-no-precip",
        "met warnings",
        "no precipitation (no wet removal)",
        "run",
        0,
        r"precip not in the input: set to 0: no wet removal",
        _era5(mutate=drop("tp")),
        checks=("written", "derived:precip"),
    ),
    # --- emissions --------------------------------------------------------------------------------------
    Case(
        "points-nan",
        "emissions",
        "a stack's SO2 rate written as NaN",
        "run",
        2,
        r"column 'so2_kg_s' holds 1 NaN, infinite or non-numeric value\(s\) \('NaN'\) for ids \['P1'\]",
        _era5(points=("NaN", "0.5")),
    ),
    Case(
        "points-inf",
        "emissions",
        "a stack's NOx rate written as inf",
        "run",
        2,
        r"column 'nox_kg_s' holds 1 NaN, infinite or non-numeric value\(s\) \('inf'\) for ids \['P1'\]",
        _era5(points=("1.0", "inf")),
    ),
    Case(
        "points-negative",
        "emissions",
        "a negative stack rate",
        "run",
        2,
        r"negative emission in column 'so2_kg_s' for ids \['P1'\]",
        _era5(points=("-1.0", "0.5")),
    ),
    Case(
        "points-missing-column",
        "emissions",
        "a point table without diameter_m",
        "run",
        2,
        r"missing columns \['diameter_m'\]",
        lambda f: _drop_point_column(f, "run"),
    ),
    Case(
        "gridded-nan",
        "emissions",
        "NaN in a gridded inventory",
        "run",
        2,
        r"1 NaN \(missing data or _FillValue\) and 0 infinite values in 1 cell\(s\), "
        r"first at lat 38\.050 lon 115\.250",
        gridded_case(value=np.nan),
    ),
    Case(
        "gridded-inf",
        "emissions",
        "inf in a gridded inventory",
        "run",
        2,
        r"0 NaN .* and 1 infinite values in 1 cell\(s\)",
        gridded_case(value=np.inf),
    ),
    Case(
        "gridded-negative",
        "emissions",
        "a negative gridded emission",
        "run",
        2,
        r"1 negative values",
        gridded_case(value=-1e-9),
    ),
    Case(
        "emissions-all-zero",
        "emissions",
        "every emission rate zero",
        "run",
        0,
        r"every emission rate in the inputs is zero .*every concentration it writes will be 0",
        _all_zero,
        checks=("written",),
    ),
    Case(
        "points-outside",
        "emissions",
        "the only stack outside the domain",
        "run",
        0,
        r"1 point source\(s\) outside the model domain"
        r".*every source with emissions lies outside the model domain",
        _points_outside,
        checks=("written",),
    ),
    Case(
        "region-bowtie",
        "emissions",
        "a self-intersecting (bow-tie) region polygon",
        "grid",
        0,
        r"region 'South' has an invalid polygon \(Self-intersection.*repaired with shapely\.make_valid",
        lambda f: _grid_command(f, bowtie=True),
    ),
    # --- environment and interruptions ------------------------------------------------------------------
    Case(
        "output-option-folder",
        "environment",
        "--output names a folder",
        "run",
        2,
        r"is a directory",
        _output_option_is_folder,
        one_line=False,
    ),
    Case(
        "cache-folder-is-a-file",
        "environment",
        "AIRSHED_CACHE_DIR names a file",
        "run",
        2,
        r"cache folder .*not_a_folder is not a folder .* choose another with the environment variable "
        r"AIRSHED_CACHE_DIR",
        _cache_folder_is_a_file,
    ),
    Case(
        "disk-full-preflight",
        "environment",
        "less free space than the run file needs",
        "run",
        2,
        r"not enough space for the run file .* needs up to [\d,]+ MB",
        _run_builtin(previous=True),
        patch="little_free_space",
    ),
    Case(
        "disk-full-while-writing",
        "environment",
        "the disk fills up while hours are written (ENOSPC)",
        "run",
        2,
        r"no space left on the device of .* while writing cat\.nc; it needs about [\d,]+ MB",
        _era5(previous=True),
        patch="enospc_on_write",
    ),
    Case(
        "disk-full-at-finish",
        "environment",
        "the disk fills up while the period means are written",
        "run",
        2,
        r"no space left on the device",
        _era5(previous=True),
        patch="enospc_on_finish",
    ),
    Case(
        "disk-full-tmpfs",
        "environment",
        "a real 64 kB file system (tmpfs) as the output folder",
        "run",
        2,
        r"not enough space for the run file .* needs up to [\d,.]+ MB .* has 0 MB free",
        _era5(previous=True),
        runner="unshare",
    ),
    Case(
        "memory-warning",
        "environment",
        "an estimate above half of the free memory",
        "config validate",
        0,
        r"more than half of the memory available",
        _run_builtin(command="config validate"),
        patch="memory_two_thirds",
    ),
    Case(
        "sigterm",
        "environment",
        "SIGTERM while the run file is written",
        "run",
        143,
        r"error: terminated by SIGTERM; unfinished output files were removed",
        _signal_case,
        runner="subprocess",
    ),
    Case(
        "sighup",
        "environment",
        "SIGHUP (terminal closed) while the run file is written",
        "run",
        129,
        r"error: terminated by SIGHUP",
        _signal_case,
        runner="subprocess",
    ),
    Case(
        "sigint",
        "environment",
        "Ctrl-C (SIGINT) while the run file is written",
        "run",
        130,
        r"error: interrupted \(SIGINT\)",
        _signal_case,
        runner="subprocess",
    ),
    # --- files given to the readers of run files --------------------------------------------------------
    *[
        Case(
            f"foreign-netcdf-{cmd}",
            "run files",
            "a NetCDF that is not an airshed run file",
            cmd,
            2,
            r"is not an airshed run file",
            reader_case(cmd, foreign_netcdf),
        )
        for cmd in ("plot", "report", "scenario", "cooperate", "performance")
    ],
    Case(
        "runfile-newer-format",
        "run files",
        "a run file of a newer format",
        "plot",
        2,
        r"written by airshed 9\.1 in run-file format 99; this airshed .* reads formats 1, 2: upgrade airshed",
        reader_case(
            "plot",
            lambda f: airshed_like_netcdf(f, run_file_format=99, airshed_version="9.1", source="airshed 9.1"),
        ),
    ),
    Case(
        "runfile-incomplete",
        "run files",
        "an airshed file without its variables",
        "report",
        2,
        r"variable\(s\) 'concentration', 'contribution'.* missing",
        reader_case("report", lambda f: airshed_like_netcdf(f, source="airshed 0.1.0")),
    ),
    Case(
        "runfile-missing",
        "run files",
        "a run file that does not exist",
        "plot",
        2,
        r"run file .*nope\.nc not found",
        reader_case("plot", lambda f: "nope.nc"),
    ),
    Case(
        "runfile-folder",
        "run files",
        "a folder given as the run file",
        "scenario",
        2,
        r"is a directory",
        reader_case("scenario", lambda f: (f / "adir").mkdir() or "adir"),
        one_line=False,
    ),
    Case(
        "runfile-not-netcdf",
        "run files",
        "a text file given as the run file",
        "cooperate",
        2,
        r"cannot read run file .* as NetCDF",
        reader_case("cooperate", lambda f: (f / "notes.nc").write_text("hello") and "notes.nc"),
    ),
]


def _drop_point_column(folder: Path, command: str) -> Invocation:
    inv = run_case(
        folder, met="builtin", command=command, start="2017-12-01T00:00:00", end="2017-12-01T02:00:00"
    )
    lines = (folder / "points.csv").read_text().splitlines()
    header = lines[0].split(",")
    k = header.index("diameter_m")
    (folder / "points.csv").write_text(
        "\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != k) for line in lines) + "\n"
    )
    return inv


def _grid_command(folder: Path, bowtie: bool) -> Invocation:
    region_file_case("grid", bowtie=bowtie)(folder)
    return Invocation(["grid", "run.toml"], output=None)


def markdown() -> str:
    """The catalogue as the markdown table of docs/failure_catalogue.md."""
    lines = [
        "| # | case | group | input or fault | command | exit | message (fragment, regular expression) |",
        "|---:|---|---|---|---|---:|---|",
    ]
    for k, c in enumerate(CASES, 1):
        fragment = c.fragment.replace("|", "\\|")
        lines.append(
            f"| {k} | `{c.id}` | {c.group} | {c.what} | `airshed {c.command}` | {c.exit_code} | "
            f"`` {fragment} `` |"
        )
    return "\n".join(lines) + "\n"


DOC = ROOT / "docs" / "failure_catalogue.md"
TABLE_START, TABLE_END = "<!-- catalogue table: start -->", "<!-- catalogue table: end -->"


def doc_table(text: str) -> str:
    """The generated part of docs/failure_catalogue.md."""
    return text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip() + "\n"


def write_doc() -> None:
    """Replace the table in docs/failure_catalogue.md by the one generated from :data:`CASES`."""
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(TABLE_START, 1)
    tail = rest.split(TABLE_END, 1)[1]
    DOC.write_text(f"{head}{TABLE_START}\n{markdown()}{TABLE_END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
    if "--write-doc" in sys.argv:
        write_doc()
    else:
        print(markdown(), end="")
