"""The run configuration: one TOML file describes one airshed run.

:func:`load_config` reads the file, validates every key against the pydantic schema below and resolves
relative paths against the folder that holds the config. Any problem (a typo in a key, a value of the
wrong type or out of bounds, a glob that matches nothing, a TOML syntax error) becomes one
:class:`~airshed.errors.ConfigError` whose message names the file, the full key path
(``plume.dispersion``), the value and what was expected; unknown keys come with the nearest valid key.
:func:`dump_config` writes a validated config back as TOML with every default filled in, and that text
loads back to an identical config.

Conventions: times are UTC (a time-zone offset in the file is converted to UTC and dropped); lengths are
in metres unless the key name says otherwise (``cell_km``, ``max_distance_km``); rates are per second or
per hour as the key name says. ``[[scenarios]]`` (an array of tables) lists emission-change scenarios.
"""

from __future__ import annotations

import difflib
import glob
import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import pyproj
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from airshed.cores import core_class, core_names
from airshed.errors import AirshedInputError, ConfigError
from airshed.grids import builtin_case
from airshed.grids.boundaries import BUILTIN_SETS, boundaries_bbox, division_name, resolve_divisions
from airshed.grids.grid import Grid, fitted_projection
from airshed.inputs.meteorology.formats import MET_FORMATS
from airshed.physics.dispersion_schemes import DISPERSION_SCHEMES
from airshed.physics.mechanism import (
    EMITTED_SPECIES,
    NOX_TO_NITRATE_PER_HOUR,
    SO2_TO_SULFATE_PER_HOUR,
    TRACERS,
    Mechanism,
    default_mechanism,
)

__all__ = [
    "AirshedConfig",
    "BuiltinEmissionsConfig",
    "BuiltinMeteorologyConfig",
    "ChemistryConfig",
    "ComputeConfig",
    "EmissionsConfig",
    "GridConfig",
    "LagrangianConfig",
    "MetEnsembleConfig",
    "MetOffsetConfig",
    "MeteorologyConfig",
    "OutputsConfig",
    "FootprintConfig",
    "PlumeConfig",
    "ReceptorsConfig",
    "RegionsConfig",
    "RunConfig",
    "ScenarioChangeConfig",
    "ScenarioConfig",
    "UncertaintyConfig",
    "dump_config",
    "load_config",
    "parse_config",
    "read_config_file",
]

EmittedSpecies = Literal[EMITTED_SPECIES]  # the mechanism's (airshed.physics.mechanism)
Tracer = Literal[TRACERS]

REGION_SETS = tuple(BUILTIN_SETS)
"""Built-in region sets of the built-in Jing-Jin-Ji case (see airshed.grids.builtin_case)."""
REGION_FILE_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp")
LOCAL_SCHEDULERS = ("serial", "threads", "local-cluster")


class _Table(BaseModel):
    """Base of every config table: unknown keys are errors and values are not silently coerced.

    Assignments are validated too (``cfg.grid.cell_km = 0`` raises :class:`~airshed.errors.ConfigError`
    naming the key); checks that span tables run when the whole config is validated again
    (:func:`airshed.api.configure`, which :func:`airshed.api.run` calls).
    """

    # strict: a TOML string "5" is not a number and 1 is not a boolean; Path and datetime fields opt out
    # (Field(strict=False)) because TOML gives them as strings.
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=False, validate_assignment=True)

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise ConfigError(_describe_validation_error(exc, _table_key(type(self)))) from None


def _config_dir(info: ValidationInfo) -> Path:
    """Folder against which relative paths are resolved (the config file's folder, else the cwd)."""
    context = info.context or {}
    return Path(context.get("config_dir") or Path.cwd())


def _resolve(value: str | Path, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _existing_files(value: Any, info: ValidationInfo) -> Any:
    """Resolve a list of file paths (or one path) against the config folder; every file must exist."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | Path) for v in value):
        return value  # pydantic reports the type error with the key path
    base = _config_dir(info)
    resolved = []
    for item in value:
        path = _resolve(item, base)
        if not path.is_file():
            raise ValueError(f"file {str(item)!r} does not exist (looked for {path})")
        resolved.append(path)
    return resolved


def _keyword_or_file(value: Any, info: ValidationInfo, keywords: tuple[str, ...]) -> Any:
    """Keep a keyword as is; resolve anything else as a path to an existing file."""
    if not isinstance(value, str) or value in keywords:
        return value
    path = _resolve(value, _config_dir(info))
    if path.is_file():
        return str(path)
    options = " or ".join(repr(k) for k in keywords)
    hint = difflib.get_close_matches(value, keywords, n=1)
    did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
    raise ValueError(f"expected {options} or the path of an existing file (no file at {path}){did_you_mean}")


def _expand_globs(value: Any, info: ValidationInfo) -> Any:
    """Resolve paths or glob patterns ('**' allowed) against the config folder; each must match a file."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | Path) for v in value):
        return value
    base = _config_dir(info)
    files: list[Path] = []
    for pattern in value:
        path = Path(pattern).expanduser()
        literal = path if path.is_absolute() else base / path
        if literal.is_file():
            matches = [str(literal)]
        else:
            full = str(path) if path.is_absolute() else str(Path(glob.escape(str(base))) / path)
            matches = sorted(m for m in glob.glob(full, recursive=True) if Path(m).is_file())
        if not matches:
            raise ValueError(f"{str(pattern)!r} matches no file (looked in {literal.parent})")
        for match in matches:
            resolved = Path(match).resolve()
            if resolved not in files:
                files.append(resolved)
    return files


def _one_of(names: Sequence[str]) -> str:
    """Write allowed values as pydantic's Literal errors do: ``'a', 'b' or 'c'``."""
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _registered(value: Any, names: Sequence[str]) -> Any:
    """Accept a name of a registry (a core, a met format, a dispersion scheme); else say which are valid."""
    if not isinstance(value, str) or value in names:
        return value  # a non-string gets pydantic's type error
    hint = difflib.get_close_matches(value, names, n=1, cutoff=0.5)
    did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
    raise ValueError(f"expected {_one_of(names)}{did_you_mean}")


def _to_utc_datetime(value: Any) -> Any:
    """Accept TOML date-times, dates and ISO 8601 strings; anything else is a clear error."""
    if isinstance(value, datetime):
        pass
    elif isinstance(value, date):
        value = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("expected an ISO 8601 date-time such as 2017-12-01T00:00") from None
    else:
        raise ValueError("expected an ISO 8601 date-time such as 2017-12-01T00:00 (UTC)")
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    if value.minute or value.second or value.microsecond:
        raise ValueError("expected a whole hour (the model steps through hourly meteorology)")
    return value


# ---------------------------------------------------------------------------------------------------
# [run]
# ---------------------------------------------------------------------------------------------------
class RunConfig(_Table):
    """``[run]``: what to simulate, when, and where the results go."""

    name: str = Field(
        description="Name of the run; letters, digits, '_', '-' and '.' only (it names the output file).",
    )
    start: datetime = Field(
        strict=False,
        description="Start of the simulated period, ISO 8601 date-time on a whole hour, UTC.",
    )
    end: datetime = Field(
        strict=False,
        description="End of the simulated period (exclusive), ISO 8601 date-time on a whole hour, UTC; "
        "must be after start.",
    )
    core: str = Field(
        description="Dispersion core, a name of the registry airshed.cores.CORES: 'plume' (steady Gaussian "
        "plume, hour by hour) or 'lagrangian' (stochastic Lagrangian particles).",
    )
    seed: int = Field(
        default=0,
        ge=0,
        description="Seed of the random number generator (integer >= 0); the same seed gives bit-identical "
        "results.",
    )
    output: Path | None = Field(
        default=None,
        strict=False,
        description="Path of the output NetCDF file, relative to the config file's folder; default "
        "'<name>.nc' beside the config.",
    )
    species: list[EmittedSpecies] = Field(
        default_factory=lambda: list(EMITTED_SPECIES),
        min_length=1,
        description="Emitted species to simulate: a subset of SO2, NOx, PM2.5, NH3, NMVOC (default all).",
    )

    @field_validator("core")
    @classmethod
    def _registered_core(cls, value: str) -> str:
        return _registered(value, core_names())

    @field_validator("name")
    @classmethod
    def _name_is_a_file_stem(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
            raise ValueError(
                "expected a name of letters, digits, '_', '-' and '.' (it names the output file)"
            )
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> Any:
        return _to_utc_datetime(value)

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError(f"expected a time after `run.start` ({start.isoformat()})")
        return value

    @field_validator("species")
    @classmethod
    def _species_unique(cls, value: list[str]) -> list[str]:
        repeated = sorted({s for s in value if value.count(s) > 1})
        if repeated:
            raise ValueError(f"expected each species once, {', '.join(repeated)} repeated")
        return value

    @field_validator("output", mode="before")
    @classmethod
    def _resolve_output(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str | Path):
            return _resolve(value, _config_dir(info))
        return value

    @model_validator(mode="after")
    def _default_output(self, info: ValidationInfo) -> RunConfig:
        if self.output is None:
            self.output = _config_dir(info).resolve() / f"{self.name}.nc"
        return self

    @property
    def hours(self) -> int:
        """Length of the simulated period in hours."""
        return int((self.end - self.start).total_seconds() // 3600)


# ---------------------------------------------------------------------------------------------------
# [grid]
# ---------------------------------------------------------------------------------------------------
class GridConfig(_Table):
    """``[grid]``: the projected model grid covering a lon/lat box."""

    bbox: list[float] | None = Field(
        default=None,
        min_length=4,
        max_length=4,
        description="Lon/lat box to cover, [west, south, east, north] in degrees (WGS84); west < east, "
        "south < north, latitudes in [-90, 90], longitudes in [-180, 360]. Default: the regions' "
        "bounding box plus 1 degree on every side (the built-in case's box for its built-in region sets).",
    )
    cell_km: float = Field(
        default=9.0,
        gt=0,
        le=100,
        description="Cell size, km (square cells on the projection plane); 0 < cell_km <= 100.",
    )
    projection: str | None = Field(
        default=None,
        description="Projected CRS in metres: a PROJ string, 'EPSG:nnnn', or an EPSG code as an integer. "
        "Default: a Lambert conformal conic fitted to bbox (standard parallels at 1/6 and 5/6 of its "
        "latitude span); for the built-in region sets the built-in case's cone (lat_1=25 lat_2=47 "
        "lat_0=39 lon_0=116.5).",
    )

    @field_validator("bbox")
    @classmethod
    def _bbox_ordered(cls, value: list[float]) -> list[float]:
        west, south, east, north = value
        if not all(math.isfinite(v) for v in value):
            raise ValueError("expected four finite numbers [west, south, east, north]")
        if not west < east:
            raise ValueError(
                f"expected [west, south, east, north] with west < east (west {west}, east {east})"
            )
        if not south < north:
            raise ValueError(
                f"expected [west, south, east, north] with south < north (south {south}, north {north})"
            )
        if not (-90 <= south and north <= 90):
            raise ValueError("expected latitudes (south, north) within [-90, 90] degrees")
        if not (-180 <= west and east <= 360 and east - west <= 360):
            raise ValueError("expected longitudes (west, east) within [-180, 360] degrees, at most 360 apart")
        return value

    @field_validator("projection", mode="before")
    @classmethod
    def _epsg_code(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return f"EPSG:{value}"
        return value

    @field_validator("projection")
    @classmethod
    def _projected_in_metres(cls, value: str) -> str:
        try:
            crs = pyproj.CRS.from_user_input(value)
        except pyproj.exceptions.CRSError as exc:
            raise ValueError(f"expected a PROJ string or EPSG code that pyproj understands ({exc})") from None
        if not crs.is_projected:
            raise ValueError(f"expected a projected CRS in metres, got the geographic CRS {crs.name!r}")
        units = {axis.unit_name for axis in crs.axis_info}
        if units != {"metre"}:
            raise ValueError(f"expected a projected CRS in metres, got units {sorted(units)}")
        return value

    def build(self) -> Grid:
        """Build the model grid (the smallest cell-aligned grid covering ``bbox``)."""
        if self.bbox is None:
            raise AirshedInputError("`grid.bbox` is not set (a loaded config fills it in from the regions)")
        west, south, east, north = self.bbox
        return Grid.from_bbox(west, south, east, north, self.cell_km, crs=self.projection)

    def resolve(self, regions: RegionsConfig) -> None:
        """Fill in a missing ``bbox`` and ``projection`` from the regions (see their descriptions)."""
        builtin = regions.builtin_set
        if self.bbox is None:
            if builtin:
                self.bbox = list(builtin_case.BBOX)
            else:
                try:
                    self.bbox = list(boundaries_bbox(regions.spec, regions.name_column, margin_deg=1.0))
                except AirshedInputError as exc:
                    raise ValueError(f"`grid.bbox` is not given and the regions give none: {exc}") from None
        if self.projection is None:
            self.projection = builtin_case.PROJECTION if builtin else fitted_projection(*self.bbox)


# ---------------------------------------------------------------------------------------------------
# [regions]
# ---------------------------------------------------------------------------------------------------
class RegionsConfig(_Table):
    """``[regions]``: the source regions that concentrations are apportioned to."""

    set: str | None = Field(
        default=None,
        description="Region set (default 'provinces' unless 'divisions' is given): the path of a GeoJSON "
        "/ GeoPackage / shapefile of polygons (relative to the config folder), or a built-in set of the "
        "built-in Jing-Jin-Ji case: 'provinces' (Beijing, Tianjin, Hebei and neighbouring provinces), "
        "'jjj-cities' (Beijing, Tianjin and the 11 Hebei prefecture-level cities).",
    )
    divisions: list[int | str] | None = Field(
        default=None,
        min_length=1,
        description="Regions chosen among the provinces and prefecture-level divisions of China, by "
        "administrative code (310000) or English or Chinese name ('Jiangsu', '浙江'); see "
        "airshed/data/china_divisions.csv. Divisions must not contain one another. Replaces 'set'.",
    )
    name_column: str | None = Field(
        default=None,
        description="Attribute column holding region names; required when 'set' is a file, unused otherwise.",
    )
    population: str = Field(
        default="builtin",
        description="Population for exposure weighting: 'builtin' (7th census 2020: the 31 provinces, "
        "Hebei's cities), 'none', or the path of a CSV file (relative to the config folder).",
    )

    @field_validator("set", mode="before")
    @classmethod
    def _set_keyword_or_file(cls, value: Any, info: ValidationInfo) -> Any:
        value = _keyword_or_file(value, info, REGION_SETS)
        if isinstance(value, str) and value not in REGION_SETS:
            if Path(value).suffix.lower() not in REGION_FILE_SUFFIXES:
                raise ValueError(
                    f"expected a polygon file ending in {', '.join(REGION_FILE_SUFFIXES)}, got {value}"
                )
        return value

    @field_validator("population", mode="before")
    @classmethod
    def _population_keyword_or_file(cls, value: Any, info: ValidationInfo) -> Any:
        return _keyword_or_file(value, info, ("builtin", "none"))

    @field_validator("divisions")
    @classmethod
    def _known_divisions(cls, value: list[int | str] | None) -> list[int] | None:
        if value is None:
            return value
        try:
            return list(resolve_divisions(value))
        except AirshedInputError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _name_column_for_files(self) -> RegionsConfig:
        if self.divisions is not None and self.set is not None:
            raise ValueError("give either `regions.set` or `regions.divisions`, not both")
        if self.divisions is None and self.set is None:
            self.set = "provinces"
        if self.divisions is not None and self.name_column:
            raise ValueError("`regions.name_column` is for a region file; divisions take their names from "
                             "airshed/data/china_divisions.csv")
        if self.is_file and not self.name_column:
            raise ValueError("`regions.name_column` is required when `regions.set` is a file")
        return self

    @property
    def builtin_set(self) -> bool:
        """Whether the regions are a built-in set of the built-in Jing-Jin-Ji case."""
        return self.divisions is None and self.set in REGION_SETS

    @property
    def is_file(self) -> bool:
        """Whether the region set is a user file rather than divisions or a built-in set."""
        return self.divisions is None and self.set not in REGION_SETS

    @property
    def spec(self) -> str | Path | tuple[int, ...]:
        """What to pass to ``airshed.grids.regions.build_regions``: adcodes, a built-in name or a file."""
        if self.divisions is not None:
            return tuple(int(code) for code in self.divisions)
        return Path(str(self.set)) if self.is_file else str(self.set)

    @property
    def label(self) -> str:
        """Say what the regions are, for summaries: the divisions' names, the set's name or the file."""
        if self.divisions is not None:
            return ", ".join(f"{division_name(int(c))} ({c})" for c in self.divisions)
        return str(self.spec)


# ---------------------------------------------------------------------------------------------------
# [meteorology]
# ---------------------------------------------------------------------------------------------------
class BuiltinMeteorologyConfig(_Table):
    """``[meteorology.builtin]``: the idealised winter-haze episode generator.

    A stagnant phase (weak southerly flow, shallow mixed layer) that lets emissions accumulate, followed
    after ``stagnation_days`` by a north-westerly outbreak that ventilates the plain.
    """

    days: float = Field(default=5.0, gt=0, le=62, description="Length of the episode, days; 0 < days <= 62.")
    stagnation_days: float = Field(
        default=3.5,
        ge=0,
        description="Length of the stagnant phase from the start, days; 0 <= value <= days.",
    )
    stagnant_wind_speed_m_s: float = Field(
        default=1.5, gt=0, le=30, description="Wind speed at 10 m during stagnation, m/s; (0, 30]."
    )
    stagnant_wind_direction_deg: float = Field(
        default=190.0,
        ge=0,
        lt=360,
        description="Direction the wind blows FROM during stagnation, degrees clockwise from N; [0, 360).",
    )
    outbreak_wind_speed_m_s: float = Field(
        default=9.0, gt=0, le=40, description="Wind speed at 10 m during the cold-air outbreak, m/s; (0, 40]."
    )
    outbreak_wind_direction_deg: float = Field(
        default=315.0,
        ge=0,
        lt=360,
        description="Direction the wind blows FROM during the outbreak, degrees clockwise from N; [0, 360).",
    )
    transition_hours: float = Field(
        default=6.0, ge=0, le=48, description="Duration of the stagnation-to-outbreak transition, h; [0, 48]."
    )
    day_mixing_height_stagnant_m: float = Field(
        default=500.0, gt=0, le=5000, description="Afternoon mixing height during stagnation, m; (0, 5000]."
    )
    day_mixing_height_clean_m: float = Field(
        default=1400.0, gt=0, le=5000, description="Afternoon mixing height after the outbreak, m; (0, 5000]."
    )
    night_mixing_height_m: float = Field(
        default=120.0, gt=0, le=2000, description="Night-time (stable) mixing height, m; (0, 2000]."
    )
    max_sensible_heat_flux_w_m2: float = Field(
        default=120.0, ge=0, le=800, description="Midday peak surface sensible heat flux, W/m2; [0, 800]."
    )
    surface_temperature_k: float = Field(
        default=272.0, ge=200, le=330, description="Mean near-surface air temperature, K; [200, 330]."
    )
    resolution_deg: float = Field(
        default=0.25,
        gt=0,
        le=5,
        description="Spacing of the generated lon/lat meteorology grid, degrees; (0, 5].",
    )

    @model_validator(mode="after")
    def _stagnation_within_episode(self) -> BuiltinMeteorologyConfig:
        if self.stagnation_days > self.days:
            raise ValueError(
                f"`meteorology.builtin.stagnation_days` ({self.stagnation_days:g}) must not exceed "
                f"`meteorology.builtin.days` ({self.days:g})"
            )
        return self


class MetOffsetConfig(_Table):
    """``[meteorology.offset]``: read the meteorology displaced, as a member of HYSPLIT's offset ensemble.

    HYSPLIT's meteorological grid ensemble offsets the meteorological data by one grid point horizontally
    and 0.01 sigma (about 250 m) vertically, all 27 combinations (Draxler et al., HYSPLIT User's Guide;
    see :mod:`airshed.inputs.meteorology.offsets`). All zero (the default) reads the meteorology as it is.
    """

    x_grid_points: int = Field(
        default=0, ge=-5, le=5,
        description="Meteorology taken this many of its own grid points east (negative: west); -5..5.",
    )
    y_grid_points: int = Field(
        default=0, ge=-5, le=5,
        description="Meteorology taken this many of its own grid points north (negative: south); -5..5.",
    )
    height_m: float = Field(
        default=0.0, ge=-2000.0, le=2000.0,
        description="3-D winds taken this many metres higher (negative: lower; at least at the lowest "
        "level), m; HYSPLIT's 0.01 sigma is about 250 m; -2000..2000.",
    )


class MeteorologyConfig(_Table):
    """``[meteorology]``: where the winds, turbulence and mixing heights come from."""

    format: str = Field(
        default="builtin",
        description="Meteorology source, a name of the registry airshed.inputs.meteorology.MET_FORMATS: "
        "'era5' (ECMWF ERA5 NetCDF), 'wrf' (WRF wrfout), 'cf' (any CF NetCDF, variable names mapped with "
        "'variables') or 'builtin' (idealised winter-haze episode).",
    )
    paths: list[Path] = Field(
        default_factory=list,
        strict=False,
        description="Meteorology files or glob patterns (relative to the config folder, '**' allowed); "
        "required unless format is 'builtin'. Each pattern must match at least one file.",
    )
    variables: dict[str, str] = Field(
        default_factory=dict,
        description="Map from airshed's model variable name to the variable name in the files "
        "(for format 'cf'; overrides the reader's defaults for 'era5'/'wrf').",
    )
    heights_m: list[Annotated[float, Field(gt=0, le=20000)]] = Field(
        default_factory=lambda: [10.0, 50.0, 100.0, 200.0, 400.0, 700.0, 1000.0, 1500.0, 2000.0, 3000.0],
        min_length=1,
        description="Model level heights above ground, m; strictly increasing, each in (0, 20000].",
    )
    roughness_length_m: float = Field(
        default=0.5,
        gt=0,
        le=5,
        description="Surface roughness length used where the meteorology gives none, m; (0, 5].",
    )
    builtin: BuiltinMeteorologyConfig = Field(
        default_factory=BuiltinMeteorologyConfig,
        description="Parameters of the built-in idealised episode (used when format is 'builtin').",
    )
    offset: MetOffsetConfig = Field(
        default_factory=MetOffsetConfig,
        description="Displacement of the meteorology for an offset-ensemble member (default none).",
    )

    @field_validator("format")
    @classmethod
    def _registered_format(cls, value: str) -> str:
        return _registered(value, tuple(MET_FORMATS))

    @field_validator("paths", mode="before")
    @classmethod
    def _expand_globs(cls, value: Any, info: ValidationInfo) -> Any:
        return _expand_globs(value, info)

    @field_validator("heights_m")
    @classmethod
    def _heights_increasing(cls, value: list[float]) -> list[float]:
        for lower, upper in zip(value, value[1:], strict=False):
            if not upper > lower:
                raise ValueError(f"expected strictly increasing heights, but {upper:g} follows {lower:g}")
        return value

    @model_validator(mode="after")
    def _paths_match_format(self) -> MeteorologyConfig:
        generated = MET_FORMATS[self.format].generate is not None  # a built-in source writes its files
        if generated and self.paths:
            raise ValueError(
                f"`meteorology.paths` must be empty when `meteorology.format` is {self.format!r}"
            )
        if not generated and not self.paths:
            raise ValueError(f"`meteorology.paths` is required when `meteorology.format` is {self.format!r}")
        return self


# ---------------------------------------------------------------------------------------------------
# [emissions]
# ---------------------------------------------------------------------------------------------------
class BuiltinEmissionsConfig(_Table):
    """``[emissions.builtin]``: the built-in approximate inventory.

    REAS v2.1 provincial totals for 2007 (Kurokawa et al. 2013, ACP 13:11019) scaled to ``year`` with the
    MEIC national trends (Zheng et al. 2018, ACP 18:14095). Approximate: use for demonstrations and
    sensitivity studies, not for policy numbers.
    """

    year: int = Field(
        default=2017,
        ge=2007,
        le=2017,
        description="Inventory year, 2007..2017 (REAS 2007 provincial totals scaled by MEIC trends).",
    )


class EmissionsConfig(_Table):
    """``[emissions]``: which sources emit."""

    inventory: Literal["builtin", "none"] = Field(
        default="builtin",
        description="Base inventory: 'builtin' (approximate REAS/MEIC provincial totals on power plants "
        "and population) or 'none' (only the files below).",
    )
    gridded: list[Path] = Field(
        default_factory=list,
        strict=False,
        description="Gridded emission files added to the inventory (relative to the config folder).",
    )
    points: list[Path] = Field(
        default_factory=list,
        strict=False,
        description="Point-source (stack) files added to the inventory (relative to the config folder).",
    )
    temporal_profiles: Literal["flat", "typical"] = Field(
        default="typical",
        description="Hour-of-day / day-of-week profiles: 'flat' (constant) or 'typical' (sector profiles).",
    )
    builtin: BuiltinEmissionsConfig = Field(
        default_factory=BuiltinEmissionsConfig,
        description="Parameters of the built-in inventory (used when inventory is 'builtin').",
    )

    @field_validator("gridded", "points", mode="before")
    @classmethod
    def _files_exist(cls, value: Any, info: ValidationInfo) -> Any:
        return _existing_files(value, info)

    @model_validator(mode="after")
    def _something_emits(self) -> EmissionsConfig:
        if self.inventory == "none" and not self.gridded and not self.points:
            raise ValueError(
                "no emissions: `emissions.inventory` is 'none' and neither `emissions.gridded` nor "
                "`emissions.points` lists a file"
            )
        return self


# ---------------------------------------------------------------------------------------------------
# [chemistry]
# ---------------------------------------------------------------------------------------------------
_DEFAULT = default_mechanism()  # every [chemistry] default is this mechanism's


def _defaults(table: str) -> dict[str, float]:
    """One of the default mechanism's per-tracer tables, as a dict in tracer order."""
    return dict(getattr(_DEFAULT, table))


def _per_tracer(value: Any, defaults: Mapping[str, float]) -> Any:
    """Broadcast a scalar to every tracer, or fill a partial table with the defaults."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {tracer: float(value) for tracer in TRACERS}
    if isinstance(value, Mapping):
        return {**defaults, **value}
    return value


class ChemistryConfig(_Table):
    """``[chemistry]``: linear chemistry, deposition and decay, shared by both cores.

    Per-tracer keys (deposition, scavenging, decay) take either one number for every tracer or a table
    keyed by tracer (SO2, NOx, PM2.5, NH3, NMVOC, sulfate, nitrate); tracers left out keep their default.
    """

    so2_to_sulfate_per_hour: float = Field(
        default=SO2_TO_SULFATE_PER_HOUR,
        ge=0,
        le=1,
        description="SO2 -> sulfate conversion rate, 1/h; [0, 1]. MESOPUFF II night-time rate as used by "
        "CALPUFF (Scire et al. 2000, CALPUFF user guide).",
    )
    nox_to_nitrate_per_hour: float = Field(
        default=NOX_TO_NITRATE_PER_HOUR,
        ge=0,
        le=1,
        description="NOx -> nitrate conversion rate, 1/h; [0, 1]. MESOPUFF II night-time rate as used by "
        "CALPUFF (Scire et al. 2000).",
    )
    dry_deposition_velocity_m_s: dict[Tracer, Annotated[float, Field(ge=0, le=0.1)]] = Field(
        default_factory=lambda: _defaults("dry_deposition_velocity_m_s"),
        description="Dry deposition velocity per tracer, m/s; [0, 0.1]. Typical values (Seinfeld & Pandis "
        "2016, ch. 19).",
    )
    wet_scavenging_a_per_s: dict[Tracer, Annotated[float, Field(ge=0, le=0.01)]] = Field(
        default_factory=lambda: _defaults("wet_scavenging_a_per_s"),
        description="Coefficient A of the scavenging rate A*P**B (P: precipitation, mm/h), 1/s per "
        "(mm/h)**B; [0, 0.01]. Maryon et al. 1996 (UK Met Office NAME).",
    )
    wet_scavenging_b: dict[Tracer, Annotated[float, Field(ge=0, le=2)]] = Field(
        default_factory=lambda: _defaults("wet_scavenging_b"),
        description="Exponent B of the scavenging rate A*P**B, dimensionless; [0, 2]. Maryon et al. 1996.",
    )
    decay_per_s: dict[Tracer, Annotated[float, Field(ge=0, le=0.01)]] = Field(
        default_factory=lambda: _defaults("decay_per_s"),
        description="First-order decay rate per tracer (other losses), 1/s; [0, 0.01].",
    )

    @field_validator("dry_deposition_velocity_m_s", mode="before")
    @classmethod
    def _fill_dry(cls, value: Any) -> Any:
        return _per_tracer(value, _defaults("dry_deposition_velocity_m_s"))

    @field_validator("wet_scavenging_a_per_s", mode="before")
    @classmethod
    def _fill_wet_a(cls, value: Any) -> Any:
        return _per_tracer(value, _defaults("wet_scavenging_a_per_s"))

    @field_validator("wet_scavenging_b", mode="before")
    @classmethod
    def _fill_wet_b(cls, value: Any) -> Any:
        return _per_tracer(value, _defaults("wet_scavenging_b"))

    @field_validator("decay_per_s", mode="before")
    @classmethod
    def _fill_decay(cls, value: Any) -> Any:
        return _per_tracer(value, _defaults("decay_per_s"))

    @field_validator(
        "dry_deposition_velocity_m_s", "wet_scavenging_a_per_s", "wet_scavenging_b", "decay_per_s"
    )
    @classmethod
    def _canonical_order(cls, value: dict[str, float]) -> dict[str, float]:
        return {tracer: value[tracer] for tracer in TRACERS}

    def mechanism(self) -> Mechanism:
        """Return the chemistry these settings describe: the default mechanism with their rates and tables."""
        return _DEFAULT.with_overrides(
            conversion_rates_per_s={("SO2", "sulfate"): self.so2_to_sulfate_per_hour / 3600.0,
                                    ("NOx", "nitrate"): self.nox_to_nitrate_per_hour / 3600.0},
            dry_deposition_velocity_m_s=self.dry_deposition_velocity_m_s,
            wet_scavenging_a_per_s=self.wet_scavenging_a_per_s,
            wet_scavenging_b=self.wet_scavenging_b,
            decay_per_s=self.decay_per_s,
        )


# ---------------------------------------------------------------------------------------------------
# [plume] and [lagrangian]
# ---------------------------------------------------------------------------------------------------
class PlumeConfig(_Table):
    """``[plume]``: the steady Gaussian-plume core."""

    dispersion: str = Field(
        default="boundary-layer",
        description="Dispersion scheme, a name of the registry airshed.physics.dispersion_schemes."
        "DISPERSION_SCHEMES: 'briggs-rural' / 'briggs-urban' (Pasquill-Gifford classes, Briggs 1973 fits) "
        "or 'boundary-layer' (from u*, w* and L, AERMOD-style).",
    )
    min_wind_speed_m_s: float = Field(
        default=0.5,
        gt=0,
        le=5,
        description="Wind speed floor, m/s; (0, 5]. Hours with slower winds are treated at this speed and "
        "counted as calms.",
    )
    receptor_height_m: float = Field(
        default=1.5, ge=0, le=500, description="Receptor height above ground, m; [0, 500]."
    )
    sigma_y_cutoff: float = Field(
        default=6.0,
        gt=0,
        le=20,
        description="Source-receptor pairs farther than this many sigma_y off the plume axis are skipped "
        "(dimensionless; (0, 20]).",
    )
    max_distance_km: float = Field(
        default=300.0,
        gt=0,
        le=3000,
        description="Largest source-receptor distance considered, km; (0, 3000].",
    )
    area_source_subcells: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Area sources are split into n x n point sources per cell (integer, [1, 64]).",
    )
    plume_rise: bool = Field(default=True, description="Apply Briggs buoyant/momentum plume rise to stacks.")
    stack_tip_downwash: bool = Field(
        default=True, description="Apply Briggs stack-tip downwash when exit velocity < 1.5 x wind speed."
    )
    lid_penetration: bool = Field(
        default=True,
        description="Boundary-layer option, convective hours: the share of a buoyant plume that penetrates "
        "the capping inversion (AERMOD, Cimorelli et al. 2005) leaves the mixed layer; the rest stays "
        "trapped below the lid. The penetrated part's later re-entry is not modelled (biased low then).",
    )

    @field_validator("dispersion")
    @classmethod
    def _registered_scheme(cls, value: str) -> str:
        return _registered(value, tuple(DISPERSION_SCHEMES))


class LagrangianConfig(_Table):
    """``[lagrangian]``: the stochastic Lagrangian-particle core."""

    particles_per_hour: int = Field(
        default=20000,
        ge=1,
        le=100_000_000,
        description="Particles released per hour over the whole domain (integer, [1, 1e8]).",
    )
    max_time_step_s: float = Field(
        default=300.0, gt=0, le=3600, description="Largest particle time step, s; (0, 3600]."
    )
    cfl: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Courant number limiting the step so particles cross at most cfl cells per step; (0, 1].",
    )
    sampling_depth_m: float = Field(
        default=50.0,
        gt=0,
        le=1000,
        description="Depth of the near-surface layer in which particles count towards concentration, m; "
        "(0, 1000].",
    )
    output_interval_h: int = Field(
        default=1,
        ge=1,
        le=24,
        description="Averaging interval of the output concentrations, h (integer, [1, 24]); the run length "
        "must be a multiple of it.",
    )
    horizontal_turbulence: bool = Field(
        default=True,
        description="Add horizontal turbulent velocities (false: advection and vertical mixing only).",
    )
    release_window_h: int = Field(
        default=24,
        ge=1,
        le=8784,
        description="Particles are grouped by the window of this many hours in which they were released "
        "(integer, [1, 8784], rounded down to whole output intervals): the work units of a cluster run and "
        "the order of the run's sums. Results do not depend on how windows are spread over workers; "
        "another window length changes them only by round-off.",
    )
    turbulence: Literal["hanna", "similarity"] = Field(
        default="hanna",
        description="Boundary-layer turbulence: 'hanna' (Hanna 1982 profiles as in FLEXPART; the default) or "
        "'similarity' (surface-layer similarity for the vertical and horizontal velocities blended into the "
        "Hanna 1982 mixed-layer profiles, skewed convective boundary layer for -h/L > 5; better on Prairie "
        "Grass, not yet the default: README, particle core).",
    )
    mesoscale_motions: bool = Field(
        default=True,
        description="Add the horizontal motions the meteorology does not resolve (NAME-style unresolved "
        "mesoscale velocities, scaled to the met's grid length; Maryon 1998): true (default since 6 Dec "
        "2026) spreads a plume sideways over hours to days as observed tracer plumes spread; false "
        "leaves only boundary-layer turbulence, which keeps each city's plume a narrow streak (README, "
        "particle core).",
    )
    met_resolution_km: float | None = Field(
        default=None,
        gt=0,
        le=500,
        description="Grid length of the meteorology for the unresolved mesoscale motions, km; (0, 500]. "
        "Leave out to use grid.cell_km (set it when coarser met, e.g. ERA5 at about 28 km, is regridded).",
    )
    vertical_step_fraction: float | None = Field(
        default=None,
        ge=0.01,
        le=1,
        description="Vertical sub-step of the particles' Langevin equation as a fraction of T_Lw, [0.01, 1] "
        "(FLEXPART's 1 / (CTL x IFINE)); leave out for the scheme's default: 0.5 for 'hanna', 0.1 for "
        "'similarity'. With the default 'baoab' integrator the default case at 0.5 is within about 2 % of "
        "itself at 0.25; the 'euler' step needs 0.1 to come within about 2 % of 0.05 (at 0.5 it is about "
        "10 % high near the ground), at 2.2x the CPU (README, particle core).",
    )
    vertical_integrator: Literal["euler", "baoab"] = Field(
        default="baoab",
        description="Integrator of the particles' vertical Langevin equation: 'baoab' (default; a splitting "
        "that keeps a well-mixed layer well mixed at the default sub-step, Leimkuhler & Matthews 2013) or "
        "'euler' (FLEXPART's step: at 0.5 T_Lw it piles particles near the ground, about 10 % too much PM2.5 "
        "there on the default case; the default until 6 Dec 2026; README, particle core).",
    )
    free_vertical_diffusion: bool = Field(
        default=False,
        description="false (default): no random vertical displacement above the mixing height, as in "
        "FLEXPART's troposphere above the boundary layer, so air crosses the mixing height only as it rises "
        "and falls and with the mean vertical wind, the same way in both directions of time (a backward run "
        "is then the adjoint of the forward one). true: displacements with 0.1 m2/s (FLEXPART's "
        "stratospheric value), which carry air down into the mixed layer while its particles are reflected "
        "at its top: a one-way exchange that fills the mixed layer (the default until 6 Dec 2026).",
    )


# ---------------------------------------------------------------------------------------------------
# [receptors] and [footprint]
# ---------------------------------------------------------------------------------------------------
class ReceptorsConfig(_Table):
    """``[receptors]``: monitoring stations (sampled by a forward run; the receptors of a backward run)."""

    stations: Path | None = Field(
        default=None,
        strict=False,
        description="Station list CSV (columns id, name, lon, lat in degrees, optionally height_m, the "
        "intake height above ground; relative to the config folder). When set, a forward run file also holds "
        "station_contribution(time, station, source_region, sector, species) and station_concentration: the "
        "hourly fields sampled at each station (what `airshed verify` needs); `airshed footprint` runs "
        "particles backward from these stations. Default: no stations.",
    )
    sampling: Literal["bilinear", "cell"] = Field(
        default="bilinear",
        description="How a forward run's field is read at a station: 'bilinear' (interpolated between the "
        "four surrounding cell centres) or 'cell' (the value of the cell holding the station).",
    )

    @field_validator("stations", mode="before")
    @classmethod
    def _station_file_exists(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        found = _existing_files(value, info)
        return found[0] if isinstance(found, list) and len(found) == 1 else found


class FootprintConfig(_Table):
    """``[footprint]``: the receptor-oriented (backward) run of the particle core, `airshed footprint`.

    Particles are released in each station's receptor volume over each averaging period and run back to
    the start of the run with the forward run's transport, removal and chemistry (``[lagrangian]``,
    ``[chemistry]``); their footprints are folded with the emissions hour by hour.
    """

    averaging_h: int = Field(
        default=24,
        ge=1,
        le=8784,
        description="Averaging period of the receptor concentrations, h (integer >= 1; the run length must "
        "be a multiple of it): one footprint per station and period.",
    )
    particles_per_period: int = Field(
        default=10000,
        ge=1,
        le=100_000_000,
        description="Particles released per station and averaging period (integer, [1, 1e8]), spread evenly "
        "over the period's hours.",
    )
    receptor_width_m: float | None = Field(
        default=None,
        gt=0,
        description="Side of the square receptor volume centred on each station, m; default the grid cell "
        "size (the horizontal resolution of a forward run's concentration).",
    )
    receptor_depth_m: float | None = Field(
        default=None,
        gt=0,
        le=1000,
        description="Depth of the receptor volume, m: the layer of this depth centred on the station height "
        "(lowered to start at the ground); default lagrangian.sampling_depth_m.",
    )
    batches: int = Field(
        default=1,
        ge=1,
        le=256,
        description="Monte-Carlo batches (integer, [1, 256]): with 2 or more, the particles of each station "
        "are split into independent batches and the output also holds the standard error of every "
        "contribution.",
    )


# ---------------------------------------------------------------------------------------------------
# [outputs] and [compute]
# ---------------------------------------------------------------------------------------------------
class OutputsConfig(_Table):
    """``[outputs]``: what is written besides the NetCDF file."""

    maps: bool = Field(default=False, description="Also write the run's figures (maps of mean concentration, "
                       "contributions and transboundary shares; source-receptor heatmap; city bars and time "
                       "series) as PNG files into '<output stem>_figures/' beside the run file.")
    report: bool = Field(default=False, description="Also write the self-contained HTML report "
                         "'<output stem>.html' beside the run file.")
    compression_level: int = Field(
        default=4, ge=0, le=9, description="zlib compression level of the NetCDF variables (integer, 0-9)."
    )
    time_chunk_hours: int = Field(
        default=24, ge=1, le=8784, description="NetCDF chunk length along time, h (integer >= 1)."
    )


class ComputeConfig(_Table):
    """``[compute]``: threads and the dask scheduler (results do not depend on these)."""

    threads: int | None = Field(
        default=None,
        ge=1,
        description="Numba threads per work unit (integer >= 1); leave out for every core ('serial'), "
        "cores / workers ('local-cluster') or 1 ('threads', whose units run side by side).",
    )
    scheduler: str = Field(
        default="serial",
        description="'serial', 'threads', 'local-cluster', or the address 'tcp://host:port' of a running "
        "dask scheduler.",
    )
    workers: int = Field(
        default=2, ge=1, le=1024,
        description="Worker processes of a 'local-cluster' (with 'threads': the threads of its one "
        "in-process worker; integer >= 1).",
    )
    memory_limit: str = Field(
        default="4GB",
        description="Memory limit per worker process of a 'local-cluster' (and the per-worker size a cluster "
        "run is checked against), e.g. '4GB' or '512MiB' (at least 256 MB); a 'threads' run is checked "
        "against the machine's memory.",
    )
    chunk_hours: int = Field(
        default=24, ge=1, le=8784, description="Hours of simulation per task (integer >= 1)."
    )

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        if value in LOCAL_SCHEDULERS or re.fullmatch(r"tcp://[^\s:/]+:\d{1,5}", value):
            return value
        hint = difflib.get_close_matches(value, LOCAL_SCHEDULERS, n=1)
        did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(f"expected 'serial', 'threads', 'local-cluster' or 'tcp://host:port'{did_you_mean}")

    @field_validator("memory_limit")
    @classmethod
    def _memory_size(cls, value: str) -> str:
        from dask.utils import parse_bytes

        try:
            n_bytes = parse_bytes(value)
        except (ValueError, TypeError):
            raise ValueError("expected a memory size such as '4GB' or '512MiB'") from None
        if n_bytes < 256e6:
            raise ValueError("expected at least 256 MB")
        return value


# ---------------------------------------------------------------------------------------------------
# [uncertainty]
# ---------------------------------------------------------------------------------------------------
UNCERTAINTY_SOURCES = ("inventory", "meteorology", "sampling")
"""Sources of uncertainty ``airshed run`` can sample (``[uncertainty] sources`` selects among them)."""
# Upper bound of inventory members, for [uncertainty] members and the CLI's --members alike: far above
# what converged quantiles need, and low enough that the member arrays fit in memory (no MemoryError).
MAX_INVENTORY_MEMBERS = 100_000


class MetEnsembleConfig(_Table):
    """``[uncertainty.meteorology]``: the meteorology members (each a full run; see airshed.uncertainty)."""

    ensemble: Literal["none", "offsets", "members"] = Field(
        default="none",
        description="'none'; 'offsets' (HYSPLIT's 27 members: the meteorology displaced by -1, 0, +1 grid "
        "points in x and y and -1, 0, +1 vertical offsets); 'members' (one run per entry of member_paths, "
        "e.g. the ERA5 ensemble members).",
    )
    horizontal_grid_points: int = Field(
        default=1, ge=1, le=5, description="Horizontal offset of the 'offsets' ensemble, meteorology grid "
        "points (HYSPLIT: 1); 1..5.",
    )
    vertical_offset_m: float = Field(
        default=250.0, ge=0.0, le=2000.0,
        description="Vertical offset of the 'offsets' ensemble, m (HYSPLIT: 0.01 sigma, about 250 m); "
        "0..2000 (0: the 9 horizontal members only).",
    )
    member_paths: list[list[Path]] = Field(
        default_factory=list, strict=False,
        description="For ensemble = 'members': the meteorology files (paths or globs, relative to the config "
        "folder) of each member, one list per member, read with meteorology.format.",
    )

    keep_member_files: bool = Field(
        default=False, description="Keep each member's run file (<stem>_<member>.nc beside the run file) "
        "after its quantiles are in the run file: true/false.",
    )

    @field_validator("member_paths", mode="before")
    @classmethod
    def _expand_member_globs(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, list):
            return value
        return [_expand_globs(member, info) for member in value]

    @model_validator(mode="after")
    def _paths_for_members(self) -> MetEnsembleConfig:
        if self.ensemble == "members" and len(self.member_paths) < 2:
            raise ValueError("`uncertainty.meteorology.member_paths` needs at least two members (one list of "
                             "files each) when `uncertainty.meteorology.ensemble` is 'members'")
        if self.ensemble != "members" and self.member_paths:
            raise ValueError("`uncertainty.meteorology.member_paths` is only read when "
                             "`uncertainty.meteorology.ensemble` is 'members'")
        return self


class UncertaintyConfig(_Table):
    """``[uncertainty]``: ensembles that give every attribution a range (5, 50, 95 % quantiles).

    Inventory members re-weight the run's stored tagged contributions by two-piece lognormal emission
    factors per (source region, sector, species) (:mod:`airshed.uncertainty.inventory`): no rerun,
    thousands of members in seconds. The quantiles are added to the run file (README, "Uncertainty").
    """

    members: int = Field(
        default=0, ge=0, le=MAX_INVENTORY_MEMBERS,
        description="Inventory members (integer, 0 = no uncertainty analysis); 1000 gives quantiles to about "
        f"1 % of the spread; 0..{MAX_INVENTORY_MEMBERS}.",
    )
    sources: list[Literal[UNCERTAINTY_SOURCES]] = Field(
        default_factory=lambda: list(UNCERTAINTY_SOURCES), min_length=1,
        description="Uncertainty sources `airshed run` samples when they are configured: 'inventory' "
        "(members > 0), 'meteorology' (meteorology.ensemble other than 'none'), 'sampling' "
        "(particle_classes > 1); leave one out to switch it off while keeping its settings.",
    )
    particle_classes: int = Field(
        default=1, ge=1, le=100,
        description="Independent particle classes of the particle core (FLEXPART's nclassunc), integer "
        "1..100: with 2 or more, every period-mean attribution gets its Monte Carlo standard error (batch "
        "means); 10 is typical. The per-period tagged fields take this many times the memory.",
    )
    seed: int = Field(default=0, ge=0, description="Seed of the members' random factors (integer >= 0).")
    correlation: float = Field(
        default=0.0, ge=0.0, le=1.0,
        description="Correlation of the factors of one sector and species across source regions, 0..1 "
        "(1: one factor per sector and species everywhere, as when the emission factors are shared).",
    )
    inventory: str = Field(
        default="builtin",
        description="Lognormal 95 % intervals per sector and species: 'builtin' (Zhao et al. 2011, ACP "
        "11:2295, China 2005) or the path of a CSV file of the same columns (relative to the config folder).",
    )
    meteorology: MetEnsembleConfig = Field(
        default_factory=MetEnsembleConfig, description="Meteorology members (each a full run)."
    )

    @field_validator("inventory", mode="before")
    @classmethod
    def _inventory_keyword_or_file(cls, value: Any, info: ValidationInfo) -> Any:
        return _keyword_or_file(value, info, ("builtin",))

    @field_validator("sources")
    @classmethod
    def _sources_unique(cls, value: list[str]) -> list[str]:
        repeated = sorted({s for s in value if value.count(s) > 1})
        if repeated:
            raise ValueError(f"expected each source once, {', '.join(repeated)} repeated")
        return value

    @property
    def meteorology_members(self) -> bool:
        """True when ``airshed run`` runs meteorology members (selected and an ensemble configured)."""
        return "meteorology" in self.sources and self.meteorology.ensemble != "none"

    @property
    def sampling_classes(self) -> int:
        """Particle classes of a run: ``particle_classes`` when 'sampling' is selected, else 1."""
        return self.particle_classes if "sampling" in self.sources else 1


# ---------------------------------------------------------------------------------------------------
# [[scenarios]]
# ---------------------------------------------------------------------------------------------------
ALL = "all"
"""Keyword that selects every region, sector or emitted species of a scenario change."""


def _all_or_names(value: Any, what: str) -> Any:
    """Accept "all" or a non-empty list of distinct names (a lone name is a one-element list)."""
    if isinstance(value, str) and value != ALL:
        value = [value]
    if isinstance(value, list):
        if not value:
            raise ValueError(f'expected "all" or a non-empty list of {what}')
        repeated = sorted({v for v in value if isinstance(v, str) and value.count(v) > 1})
        if repeated:
            raise ValueError(f"expected each of the {what} once, {', '.join(repeated)} repeated")
    return value


class ScenarioChangeConfig(_Table):
    """``[[scenarios.changes]]``: one emission change of a scenario.

    The change multiplies the emissions of the selected regions, sectors and species by
    ``1 + change_percent / 100`` between ``start`` and ``end``. Where several changes of a scenario select
    the same source at the same time their factors multiply (-50 % then -50 % leaves 25 %).
    """

    regions: Literal["all"] | list[str] = Field(
        description='Source regions changed: "all" (every region, "outside" included) or a list of '
        "region names of the run's region set (checked when the run or scenario is evaluated).",
    )
    sectors: Literal["all"] | list[str] = Field(
        default=ALL,
        description='Sectors changed: "all" or a list of power, industry, residential, transport, '
        "agriculture, other.",
    )
    species: Literal["all"] | list[str] = Field(
        default=ALL,
        description='Emitted species changed: "all" or a list of SO2, NOx, PM2.5, NH3, NMVOC; secondary '
        "sulfate and nitrate follow SO2 and NOx.",
    )
    change_percent: float = Field(
        description="Change of the emissions, percent: -100 removes them, -40 cuts 40 %, +20 adds 20 %; "
        "must be >= -100 and finite.",
    )
    start: datetime | None = Field(
        default=None,
        strict=False,
        description="Start of the change, ISO 8601 date-time on a whole hour, UTC, inside the run; default "
        "the start of the run.",
    )
    end: datetime | None = Field(
        default=None,
        strict=False,
        description="End of the change (exclusive), ISO 8601 date-time on a whole hour, UTC, inside the "
        "run and after start; default the end of the run.",
    )

    @field_validator("regions", "sectors", "species", mode="before")
    @classmethod
    def _all_or_list(cls, value: Any, info: ValidationInfo) -> Any:
        return _all_or_names(value, info.field_name)

    @field_validator("change_percent")
    @classmethod
    def _at_most_a_full_cut(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("expected a finite percentage")
        if value < -100.0:
            raise ValueError(
                "cuts above 100 % are impossible: expected change_percent >= -100 "
                "(-100 removes the emissions)"
            )
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> Any:
        return None if value is None else _to_utc_datetime(value)

    @model_validator(mode="after")
    def _end_after_start(self) -> ScenarioChangeConfig:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(
                f"the change ends ({self.end.isoformat()}) before or when it starts "
                f"({self.start.isoformat()})"
            )
        return self

    @property
    def factor(self) -> float:
        """Multiplier of the selected emissions, ``1 + change_percent / 100`` (dimensionless)."""
        return 1.0 + self.change_percent / 100.0


class ScenarioConfig(_Table):
    """``[[scenarios]]``: a named set of emission changes evaluated against the baseline run.

    ``airshed scenario CONFIG RUN.nc`` evaluates every scenario from the run's stored contributions
    (exact for airshed's linear chemistry); ``airshed run CONFIG --scenario NAME`` runs one in full.
    """

    name: str = Field(description="Name of the scenario; letters, digits, '_', '-' and '.' only.")
    description: str = Field(default="", description="What the scenario represents and where its numbers "
                             "come from (free text).")
    changes: list[ScenarioChangeConfig] = Field(
        min_length=1, description="The emission changes ([[scenarios.changes]] tables), at least one."
    )

    @field_validator("name")
    @classmethod
    def _name_is_a_word(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
            raise ValueError("expected a name of letters, digits, '_', '-' and '.'")
        return value

    def change_label(self, j: int) -> str:
        """Name change ``j`` (0-based) in messages, counted from 1 as the file's [[scenarios.changes]]."""
        return f"scenario {self.name!r}, change {j + 1} of {len(self.changes)}"

    @model_validator(mode="after")
    def _known_sectors_and_species(self) -> ScenarioConfig:
        # region names are checked against the run's region set when the scenario is used
        from airshed.inputs.emissions.species import SECTORS

        for j, change in enumerate(self.changes):
            for key, valid in (("sectors", SECTORS), ("species", EMITTED_SPECIES)):
                names = getattr(change, key)
                for name in [] if names == ALL else names:
                    if name not in valid:
                        hint = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
                        did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
                        raise ValueError(
                            f"{self.change_label(j)}: `{key}`: unknown "
                            f"{key.removesuffix('s') if key == 'sectors' else 'species'} {name!r}; valid "
                            f"{key}: {', '.join(valid)}{did_you_mean}"
                        )
        return self


# ---------------------------------------------------------------------------------------------------
# the whole file
# ---------------------------------------------------------------------------------------------------
class AirshedConfig(_Table):
    """A complete, validated airshed run configuration (one TOML file)."""

    run: RunConfig = Field(description="What to simulate, when, and where the results go.")
    grid: GridConfig = Field(default_factory=GridConfig, description="The projected model grid.")
    regions: RegionsConfig = Field(default_factory=RegionsConfig, description="Source regions.")
    meteorology: MeteorologyConfig = Field(default_factory=MeteorologyConfig, description="Meteorology.")
    emissions: EmissionsConfig = Field(default_factory=EmissionsConfig, description="Emission sources.")
    chemistry: ChemistryConfig = Field(
        default_factory=ChemistryConfig, description="Linear chemistry, deposition, decay."
    )
    plume: PlumeConfig = Field(default_factory=PlumeConfig, description="Gaussian-plume core.")
    lagrangian: LagrangianConfig = Field(default_factory=LagrangianConfig, description="Lagrangian core.")
    receptors: ReceptorsConfig = Field(default_factory=ReceptorsConfig,
                                       description="Monitoring stations (receptors).")
    footprint: FootprintConfig = Field(default_factory=FootprintConfig,
                                       description="Backward (receptor-oriented) particle run.")
    outputs: OutputsConfig = Field(default_factory=OutputsConfig, description="Extra outputs.")
    compute: ComputeConfig = Field(default_factory=ComputeConfig, description="Parallel execution.")
    uncertainty: UncertaintyConfig = Field(
        default_factory=UncertaintyConfig, description="Ensembles: quantiles of every attribution."
    )
    scenarios: list[ScenarioConfig] = Field(
        default_factory=list, description="Emission-change scenarios ([[scenarios]] tables); default none."
    )

    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent_tables(self) -> AirshedConfig:
        self.grid.resolve(self.regions)
        hours = (self.run.end - self.run.start).total_seconds() / 3600.0
        if self.meteorology.format == "builtin" and hours > self.meteorology.builtin.days * 24 + 1e-9:
            raise ValueError(
                f"the run ({self.run.start.isoformat()} to {self.run.end.isoformat()}, {hours / 24:g} days) "
                f"is longer than the built-in meteorology (`meteorology.builtin.days` = "
                f"{self.meteorology.builtin.days:g}); shorten the run or raise `meteorology.builtin.days`"
            )
        core_class(self.run.core).check_config(self)
        if self.uncertainty.particle_classes > 1 and self.run.core != "lagrangian":
            raise ValueError(f"`uncertainty.particle_classes` = {self.uncertainty.particle_classes}: only "
                             f"the particle core samples (run.core is {self.run.core!r}); set it to 1")
        if self.uncertainty.meteorology.ensemble == "members" and self.meteorology.format == "builtin":
            raise ValueError("`uncertainty.meteorology.ensemble` = 'members' needs member meteorology files: "
                             "set `meteorology.format` to the members' format (e.g. 'era5')")
        self._check_scenarios()
        return self

    def _check_scenarios(self) -> None:
        """Scenario names are unique and every change window lies inside the run."""
        seen: set[str] = set()
        for i, scenario in enumerate(self.scenarios):
            if scenario.name in seen:
                raise ValueError(f"`scenarios[{i}].name`: scenario {scenario.name!r} is defined twice")
            seen.add(scenario.name)
            for j, change in enumerate(scenario.changes):
                for key in ("start", "end"):
                    when = getattr(change, key)
                    if when is not None and not self.run.start <= when <= self.run.end:
                        raise ValueError(
                            f"{scenario.change_label(j)}: `{key}` = {when.isoformat()}: the window lies "
                            f"outside the run ({self.run.start.isoformat()} to {self.run.end.isoformat()})"
                        )
                start = change.start or self.run.start
                if (change.end or self.run.end) <= start:
                    raise ValueError(
                        f"{scenario.change_label(j)}: the window is empty (ends at or before "
                        f"{start.isoformat()})"
                    )

    @property
    def source(self) -> Path | None:
        """The TOML file this config was loaded from (None when built in code)."""
        return self._source


# ---------------------------------------------------------------------------------------------------
# loading, error messages, dumping
# ---------------------------------------------------------------------------------------------------
def load_config(path: str | Path) -> AirshedConfig:
    """Read, validate and resolve a TOML run configuration.

    Parameters
    ----------
    path
        The TOML file. Relative paths inside it are resolved against its folder.

    Returns
    -------
    AirshedConfig
        The validated configuration with every default filled in and every path absolute.

    Raises
    ------
    ConfigError
        For an unreadable file, invalid TOML (file, line and column named) or any invalid key or value
        (full key path, value and expectation named; unknown keys come with the nearest valid key).
    """
    path = Path(path).expanduser()
    return parse_config(read_config_file(path), config_dir=path.resolve().parent, source=path)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file into nested dicts, unvalidated (:class:`ConfigError` if unreadable)."""
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    binary = _binary_kind(raw)
    if binary is not None:
        raise ConfigError(f"{path}: not a TOML config: {binary}; give the run's .toml configuration file")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the config as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_error_message(path, exc)) from None


_BINARY_SIGNATURES = {b"\x89HDF\r\n\x1a\n": "a NetCDF-4/HDF5 file (e.g. a run file)",
                      b"CDF\x01": "a classic NetCDF file", b"CDF\x02": "a classic NetCDF file",
                      b"\x89PNG": "a PNG image", b"%PDF": "a PDF file", b"PK\x03\x04": "a ZIP archive"}


def _binary_kind(raw: bytes) -> str | None:
    """Say what a file that is not text is ("... binary content ..."); None for text.

    UTF-16 with a byte-order mark counts as text: the advice to save it as UTF-8 is the right one.
    """
    for signature, kind in _BINARY_SIGNATURES.items():
        if raw.startswith(signature):
            return f"it is {kind}, binary content"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 text: the advice to save as UTF-8 applies
        return None
    nul = raw.find(b"\0", 0, 8192)
    return f"binary content (a NUL byte at byte {nul})" if nul >= 0 else None


def parse_config(
    data: Mapping[str, Any], config_dir: str | Path | None = None, source: str | Path | None = None
) -> AirshedConfig:
    """Validate a config already parsed into a dict (as ``tomllib`` gives it).

    Parameters
    ----------
    data
        The TOML document as nested dicts.
    config_dir
        Folder against which relative paths are resolved; default the current directory.
    source
        Name of the file, used in error messages.
    """
    base = Path(config_dir) if config_dir is not None else Path.cwd()
    try:
        config = AirshedConfig.model_validate(data, context={"config_dir": base})
    except ValidationError as exc:
        where = f"{source}: " if source is not None else ""
        raise ConfigError(where + _describe_validation_error(exc)) from None
    config._source = Path(source) if source is not None else None
    return config


def _toml_error_message(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    message = str(exc)
    found = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if found:
        what = message[: found.start()]
        return f"{path}, line {found[1]}, column {found[2]}: invalid TOML: {what[:1].lower()}{what[1:]}"
    found = re.search(r"\s*\(at end of document\)$", message)
    if found:
        what = message[: found.start()]
        return f"{path}, at the end: invalid TOML: {what[:1].lower()}{what[1:]}"
    return f"{path}: invalid TOML: {message}"


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(part: str) -> str:
    return part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)


def _key_path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + _key(part)
    return text


def _table_model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """Follow ``loc`` from the top level to a config table class (None if it is not a table)."""
    cls: type[BaseModel] = AirshedConfig
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        field = cls.model_fields.get(part) if isinstance(part, str) else None
        annotation = field.annotation if field is not None else None
        if _is_table_list(annotation):  # an array of tables: [[name]] items are addressed by index
            if not parts or not isinstance(parts.pop(0), int):
                return None
            annotation = get_args(annotation)[0]
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        cls = annotation
    return cls


def _is_table_list(annotation: Any) -> bool:
    """Whether a field annotation is ``list[<config table>]`` (a TOML array of tables)."""
    args = get_args(annotation)
    return (getattr(annotation, "__origin__", None) is list and len(args) == 1
            and isinstance(args[0], type) and issubclass(args[0], BaseModel))


_TOML_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    list: "an array",
    dict: "a table",
    datetime: "a date-time",
    date: "a date",
    time: "a time",
}


def _toml_type_name(value: Any) -> str:
    for kind, name in _TOML_TYPE_NAMES.items():
        if type(value) is kind:
            return name
    return type(value).__name__


def _shown(value: Any) -> str:
    try:
        text = _toml_value(value)
    except TypeError:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _table_key(table: type[BaseModel]) -> tuple[str, ...]:
    """Key path of a config table class from the top level (``("meteorology", "builtin")``), () if none."""
    todo: list[tuple[type[BaseModel], tuple[str, ...]]] = [(AirshedConfig, ())]
    while todo:
        cls, path = todo.pop()
        if cls is table:
            return path
        for name, field in cls.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                todo.append((annotation, (*path, name)))
    return ()


def _describe_validation_error(exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    errors = [{**e, "loc": (*prefix, *e["loc"])} for e in exc.errors(include_url=False)]
    message = _describe_error(errors[0])
    if len(errors) > 1:
        more = len(errors) - 1
        message += f" ({more} more problem{'s' if more > 1 else ''} after this one)"
    return message


def _describe_error(error: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind in ("extra_forbidden", "no_such_attribute"):
        parent, name = loc[:-1], str(loc[-1])
        table = _table_model_at(parent)
        valid = list(table.model_fields) if table is not None else []
        where = f"[{_key_path(parent)}]" if parent else "the top level"
        match = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        if match:
            return f"unknown key `{_key_path(loc)}`; did you mean `{_key_path((*parent, match[0]))}`?"
        return f"unknown key `{_key_path(loc)}`; valid keys in {where}: {', '.join(valid)}"
    if kind == "missing":
        return f"`{_key_path(loc)}` is required but missing"

    if loc and loc[-1] == "[key]":  # an invalid key of a keyed table (e.g. an unknown tracer)
        table, bad = loc[:-2], str(loc[-2])
        options = re.findall(r"'([^']*)'", (error.get("ctx") or {}).get("expected", ""))
        match = difflib.get_close_matches(bad, options, n=1, cutoff=0.5)
        hint = f"; did you mean `{_key_path((*table, match[0]))}`?" if match else ""
        return f"unknown key `{_key_path(loc[:-1])}`: expected one of {', '.join(options)}{hint}"

    message = error["msg"]
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    elif message.startswith("Input should be "):
        rest = message.removeprefix("Input should be ")
        if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
            rest = "a value " + rest
        message = "expected " + rest
    elif kind in {"too_short", "too_long"}:
        ctx = error.get("ctx") or {}
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        message = f"expected {'at least' if kind == 'too_short' else 'at most'} {bound} item(s), got "
        message += str(ctx.get("actual_length"))
    if kind.endswith("_type") or kind.endswith("_parsing"):
        message += f" (got {_toml_type_name(error['input'])})"
    if kind == "literal_error" and isinstance(error.get("input"), str):
        options = re.findall(r"'([^']*)'", (error.get("ctx") or {}).get("expected", ""))
        # options are lower case: "BAOAB" should find 'baoab'
        lowered = {o.lower(): o for o in options}
        match = difflib.get_close_matches(error["input"].lower(), list(lowered), n=1, cutoff=0.5)
        if match:
            message += f"; did you mean {lowered[match[0]]!r}?"

    if not loc:
        return message
    value = error.get("input")
    if isinstance(value, Mapping) or _table_model_at(loc) is not None:
        # table-level checks already name their keys
        return message if "`" in message else f"`{_key_path(loc)}`: {message}"
    return f"`{_key_path(loc)}` = {_shown(value)}: {message}"


def _toml_value(value: Any) -> str:
    """One TOML value (inline form)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Path):
        return json.dumps(value.as_posix(), ensure_ascii=False)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _emit_table(lines: list[str], name: str, model: BaseModel) -> None:
    """Append ``[name]`` with the scalar keys of ``model``, then its sub-tables."""
    lines.append(f"[{name}]")
    subtables: list[tuple[str, Any]] = []
    for field_name in type(model).model_fields:
        value = getattr(model, field_name)
        if isinstance(value, BaseModel) or (isinstance(value, Mapping) and value):
            subtables.append((field_name, value))
        elif value is None:
            lines.append(f"# {field_name} is not set ({type(model).model_fields[field_name].description})")
        else:
            lines.append(f"{_key(field_name)} = {_toml_value(value)}")
    for field_name, value in subtables:
        lines.append("")
        if isinstance(value, BaseModel):
            _emit_table(lines, f"{name}.{_key(field_name)}", value)
        else:
            lines.append(f"[{name}.{_key(field_name)}]")
            lines.extend(f"{_key(str(k))} = {_toml_value(v)}" for k, v in value.items())


def _emit_array_of_tables(lines: list[str], name: str, items: list[BaseModel]) -> None:
    """Append one ``[[name]]`` table per item, each followed by its own arrays of tables."""
    for item in items:
        lines.append("")
        lines.append(f"[[{name}]]")
        nested: list[tuple[str, list[BaseModel]]] = []
        for field_name, field in type(item).model_fields.items():
            value = getattr(item, field_name)
            if _is_table_list(field.annotation):
                nested.append((field_name, value))
            elif value is None:
                lines.append(f"# {field_name} is not set ({field.description})")
            else:
                lines.append(f"{_key(field_name)} = {_toml_value(value)}")
        for field_name, value in nested:
            _emit_array_of_tables(lines, f"{name}.{_key(field_name)}", value)


def dump_config(config: AirshedConfig) -> str:
    """Write a validated config as TOML, every default filled in and every path absolute.

    ``load_config`` on the returned text gives back an identical configuration.
    """
    source = f" from {config.source}" if config.source is not None else ""
    lines = [f"# airshed run configuration{source}, resolved: every default written out, paths absolute."]
    arrays: list[tuple[str, list[BaseModel]]] = []
    for field_name, field in type(config).model_fields.items():
        if _is_table_list(field.annotation):
            arrays.append((field_name, getattr(config, field_name)))  # after every plain table
            continue
        lines.append("")
        _emit_table(lines, field_name, getattr(config, field_name))
    for field_name, items in arrays:
        if not items:
            lines += ["", f"# no [[{field_name}]] tables"]
        _emit_array_of_tables(lines, field_name, items)
    return "\n".join(lines) + "\n"
