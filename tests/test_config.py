"""The TOML run configuration: defaults, path resolution, round trip, and one clear error per mistake."""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path

import pytest

from airshed.config import (
    AirshedConfig,
    dump_config,
    load_config,
    parse_config,
)
from airshed.errors import AirshedInputError, ConfigError
from airshed.grids import builtin_case
from airshed.physics.mechanism import EMITTED_SPECIES, TRACERS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "jjj.toml"

MINIMAL = """
[run]
name = "t"
start = 2017-12-01T00:00:00
end = 2017-12-03T00:00:00
core = "plume"
"""


def write(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message, "a config error is one line"
    assert message.startswith(str(path)), "a config error names the file"
    return message


# --- the example and defaults ------------------------------------------------------------------------
def test_example_loads_with_the_jjj_case():
    cfg = load_config(EXAMPLE)
    assert cfg.run.core == "lagrangian"
    assert cfg.run.seed == 20171201
    assert cfg.run.start == datetime(2017, 12, 1) and cfg.run.end == datetime(2017, 12, 6)
    assert cfg.run.hours == 5 * 24 == cfg.meteorology.builtin.days * 24
    assert cfg.run.output == EXAMPLE.parent / "jjj_winter.nc"
    assert cfg.grid.cell_km == 9.0
    assert cfg.regions.set == "jjj-cities" and cfg.regions.spec == "jjj-cities"
    assert cfg.meteorology.format == "builtin" and cfg.emissions.inventory == "builtin"
    assert cfg.source == EXAMPLE


def test_example_writes_every_key_of_the_schema():
    """The example documents every key: its TOML holds the full schema (some keys commented out)."""
    written = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    dumped = tomllib.loads(dump_config(load_config(EXAMPLE)))

    def keys(table: dict, prefix: str = "") -> set[str]:
        out = set()
        for key, value in table.items():
            out.add(prefix + key)
            if isinstance(value, dict):
                out |= keys(value, prefix + key + ".")
        return out

    assert keys(written) == keys(dumped)
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "# threads = " in text and "# name_column = " in text and "# divisions = " in text


def test_dump_round_trips_through_load(tmp_path):
    cfg = load_config(EXAMPLE)
    text = dump_config(cfg)
    again = load_config(write(tmp_path, text, "dumped.toml"))
    assert again.model_dump() == cfg.model_dump()
    assert dump_config(again).splitlines()[1:] == text.splitlines()[1:]


def test_defaults_of_a_minimal_config(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.run.species == list(EMITTED_SPECIES)
    assert cfg.run.output == tmp_path.resolve() / "t.nc"
    assert cfg.run.seed == 0
    assert cfg.grid.bbox == [110.0, 34.0, 124.0, 44.0] and cfg.grid.cell_km == 9.0
    assert cfg.grid.projection == builtin_case.PROJECTION
    assert cfg.meteorology.heights_m == [10, 50, 100, 200, 400, 700, 1000, 1500, 2000, 3000]
    b = cfg.meteorology.builtin
    assert (b.days, b.stagnation_days, b.stagnant_wind_speed_m_s, b.stagnant_wind_direction_deg) == (
        5.0,
        3.5,
        1.5,
        190.0,
    )
    assert (b.outbreak_wind_speed_m_s, b.outbreak_wind_direction_deg, b.transition_hours) == (9.0, 315.0, 6.0)
    assert (b.day_mixing_height_stagnant_m, b.day_mixing_height_clean_m, b.night_mixing_height_m) == (
        500.0,
        1400.0,
        120.0,
    )
    assert (b.max_sensible_heat_flux_w_m2, b.surface_temperature_k, b.resolution_deg) == (120.0, 272.0, 0.25)
    assert cfg.emissions.builtin.year == 2017
    # Hanna's profiles with unresolved mesoscale motions, the well-mixed splitting step and no vertical
    # diffusion above the mixing height (the defaults since 6 Dec 2026; README, particle core)
    assert (cfg.lagrangian.turbulence, cfg.lagrangian.mesoscale_motions) == ("hanna", True)
    assert (cfg.lagrangian.vertical_integrator, cfg.lagrangian.free_vertical_diffusion) == ("baoab", False)
    chem = cfg.chemistry
    assert (chem.so2_to_sulfate_per_hour, chem.nox_to_nitrate_per_hour) == (0.01, 0.02)
    assert chem.dry_deposition_velocity_m_s == {
        "SO2": 0.005,
        "NOx": 0.001,
        "PM2.5": 0.001,
        "NH3": 0.005,
        "NMVOC": 0.0,
        "sulfate": 0.001,
        "nitrate": 0.001,
    }
    assert chem.wet_scavenging_a_per_s == {**dict.fromkeys(TRACERS, 8.4e-5), "NMVOC": 0.0}  # not scavenged
    assert chem.wet_scavenging_b == dict.fromkeys(TRACERS, 0.79)
    assert chem.decay_per_s == dict.fromkeys(TRACERS, 0.0)
    assert cfg.plume.dispersion == "boundary-layer" and cfg.plume.area_source_subcells == 4
    assert cfg.lagrangian.particles_per_hour == 20000 and cfg.lagrangian.cfl == 0.5
    assert cfg.outputs.compression_level == 4 and not cfg.outputs.maps
    assert cfg.compute.threads is None and cfg.compute.scheduler == "serial"
    assert cfg.compute.memory_limit == "4GB"


def test_per_tracer_tables_take_a_scalar_or_a_partial_table(tmp_path):
    cfg = load_config(
        write(
            tmp_path,
            MINIMAL + '[chemistry]\ndecay_per_s = 1e-6\ndry_deposition_velocity_m_s = { "PM2.5" = 0.002 }\n',
        )
    )
    assert cfg.chemistry.decay_per_s == dict.fromkeys(TRACERS, 1e-6)
    assert cfg.chemistry.dry_deposition_velocity_m_s["PM2.5"] == 0.002
    assert cfg.chemistry.dry_deposition_velocity_m_s["SO2"] == 0.005  # default kept
    assert list(cfg.chemistry.dry_deposition_velocity_m_s) == list(TRACERS)


def test_time_zones_are_converted_to_utc(tmp_path):
    text = MINIMAL.replace("2017-12-01T00:00:00", '"2017-12-01T08:00+08:00"')
    cfg = load_config(write(tmp_path, text))
    assert cfg.run.start == datetime(2017, 12, 1, 0) and cfg.run.start.tzinfo is None


def test_grid_build_gives_the_projected_grid(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL + "[grid]\nbbox = [115, 38, 118, 41]\ncell_km = 27\n"))
    grid = cfg.grid.build()
    assert grid.dx == 27_000.0
    lon, lat = grid.lon, grid.lat
    assert lon.min() < 115.2 and lon.max() > 117.8 and lat.min() < 38.2 and lat.max() > 40.8


def test_epsg_code_as_integer(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL + "[grid]\nprojection = 3857\n"))
    assert cfg.grid.projection == "EPSG:3857"


# --- path resolution ---------------------------------------------------------------------------------
def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    folder = tmp_path / "study"
    (folder / "met").mkdir(parents=True)
    for day in (2, 1):
        (folder / "met" / f"era5_2017120{day}.nc").write_bytes(b"")
    (folder / "stacks.csv").write_text("x\n")
    (folder / "regions.geojson").write_text("{}")
    text = MINIMAL.replace('name = "t"', 'name = "t"\noutput = "out/result.nc"') + (
        '[meteorology]\nformat = "cf"\npaths = ["met/era5_*.nc"]\n'
        'variables = { u10 = "U10M", "v.10" = "V" }\n'
        '[emissions]\npoints = ["stacks.csv"]\n'
        '[regions]\nset = "regions.geojson"\nname_column = "NAME"\n'
        "[grid]\nbbox = [114.0, 38.0, 118.0, 41.0]\n"  # the dummy region file has no outline to give it
    )
    config = write(folder, text)
    monkeypatch.chdir(tmp_path)  # the cwd must not matter
    cfg = load_config(Path("study") / "run.toml")
    base = folder.resolve()
    assert cfg.run.output == base / "out" / "result.nc"
    assert cfg.meteorology.paths == [base / "met" / "era5_20171201.nc", base / "met" / "era5_20171202.nc"]
    assert cfg.emissions.points == [base / "stacks.csv"]
    assert cfg.meteorology.variables == {"u10": "U10M", "v.10": "V"}
    assert cfg.regions.is_file and cfg.regions.spec == base / "regions.geojson"
    # the resolved dump is self-contained: it loads the same from anywhere
    again = load_config(write(tmp_path, dump_config(cfg), "elsewhere.toml"))
    assert again.model_dump() == cfg.model_dump()
    assert config.exists()


# --- bad input: one clear message naming the key path and the expectation ----------------------------
def test_errors_are_input_errors():
    assert issubclass(ConfigError, AirshedInputError)


def test_typo_in_a_key_suggests_the_nearest(tmp_path):
    message = error_of(tmp_path, MINIMAL + '[plume]\ndispersoin = "briggs-rural"\n')
    assert "unknown key `plume.dispersoin`" in message
    assert "did you mean `plume.dispersion`?" in message


def test_unknown_key_without_a_close_match_lists_the_valid_keys(tmp_path):
    message = error_of(tmp_path, MINIMAL + "[outputs]\ncolour = true\n")
    assert "unknown key `outputs.colour`" in message
    assert "maps, report, compression_level, time_chunk_hours" in message


def test_typo_in_a_table_name(tmp_path):
    message = error_of(tmp_path, MINIMAL + "[meterology]\nformat = 'era5'\n")
    assert "unknown key `meterology`; did you mean `meteorology`?" in message


def test_typo_in_a_nested_key(tmp_path):
    message = error_of(tmp_path, MINIMAL + "[meteorology.builtin]\nstagnation_day = 2.0\n")
    assert (
        "`meteorology.builtin.stagnation_day`; did you mean `meteorology.builtin.stagnation_days`?" in message
    )


def test_unknown_tracer_in_a_per_tracer_table(tmp_path):
    message = error_of(tmp_path, MINIMAL + "[chemistry.dry_deposition_velocity_m_s]\nPM25 = 0.002\n")
    assert "unknown key `chemistry.dry_deposition_velocity_m_s.PM25`" in message
    assert 'did you mean `chemistry.dry_deposition_velocity_m_s."PM2.5"`?' in message


def test_wrong_type_names_key_value_and_expectation(tmp_path):
    message = error_of(tmp_path, MINIMAL + '[grid]\ncell_km = "9"\n')
    assert '`grid.cell_km` = "9": expected a valid number (got a string)' in message
    message = error_of(tmp_path, MINIMAL + "[plume]\nplume_rise = 1\n")
    assert "`plume.plume_rise` = 1: expected a valid boolean (got an integer)" in message
    message = error_of(tmp_path, MINIMAL + "[lagrangian]\nparticles_per_hour = 1.5\n")
    assert "`lagrangian.particles_per_hour` = 1.5: expected a valid integer" in message


def test_bbox_with_west_east_swapped(tmp_path):
    message = error_of(tmp_path, MINIMAL + "[grid]\nbbox = [124, 34, 110, 44]\n")
    assert "`grid.bbox` = [124, 34, 110, 44]" in message and "west < east" in message


def test_bbox_with_three_numbers(tmp_path):
    message = error_of(tmp_path, MINIMAL + "[grid]\nbbox = [110, 34, 124]\n")
    assert "`grid.bbox`" in message and "expected at least 4 item(s), got 3" in message


def test_bbox_latitude_out_of_range(tmp_path):
    message = error_of(tmp_path, MINIMAL + "[grid]\nbbox = [110, 34, 124, 95]\n")
    assert "`grid.bbox`" in message and "[-90, 90]" in message


def test_zero_cell_size(tmp_path):
    message = error_of(tmp_path, MINIMAL + "[grid]\ncell_km = 0\n")
    assert "`grid.cell_km` = 0: expected a value greater than 0" in message


def test_vertical_step_fraction_out_of_range(tmp_path):
    message = error_of(tmp_path, MINIMAL + "[lagrangian]\nvertical_step_fraction = 0.001\n")
    expected = "`lagrangian.vertical_step_fraction` = 0.001: expected a value greater than or equal to 0.01"
    assert expected in message


def test_unknown_vertical_integrator(tmp_path):
    message = error_of(tmp_path, MINIMAL + '[lagrangian]\nvertical_integrator = "rk4"\n')
    assert "`lagrangian.vertical_integrator` = \"rk4\": expected 'euler' or 'baoab'" in message
    message = error_of(tmp_path, MINIMAL + '[lagrangian]\nvertical_integrator = "BAOAB"\n')
    assert message.endswith("expected 'euler' or 'baoab'; did you mean 'baoab'?")


def test_vertical_integrator_reaches_the_particle_core_and_the_backward_run(tmp_path):
    from conftest import builtin_case_config

    from airshed.cores.lagrangian import LagrangianCore
    from airshed.model.backward import transport_parameters
    from airshed.model.lagrangian import BAOAB, EULER
    from airshed.physics.adjoint import adjoint_slots
    from airshed.pipeline.study import prepare_study

    for integrator, code in (("euler", EULER), ("baoab", BAOAB)):
        cfg = builtin_case_config(tmp_path, "lagrangian", hours=1,
                                  lagrangian={"vertical_integrator": integrator})
        study = prepare_study(cfg)
        params = LagrangianCore(cfg, study.inputs, study.mechanism).params
        assert params.turbulence().integrator == code
        slots = adjoint_slots(study.mechanism.tracers, params.conversions)
        assert transport_parameters(params, slots, 50.0).turbulence().integrator == code


def test_vertical_step_fraction_reaches_the_particle_core(tmp_path):
    """Left out: the scheme's default sub-step and cap; set: that fraction, with the cap that goes with it."""
    from conftest import builtin_case_config

    from airshed.cores.lagrangian import LagrangianCore
    from airshed.model.lagrangian import DEFAULT_MAX_SUBSTEPS, DEFAULT_STEP_FRACTION
    from airshed.pipeline.study import prepare_study

    params = {}
    for fraction in (None, 0.1):
        lagrangian = {} if fraction is None else {"vertical_step_fraction": fraction}
        cfg = builtin_case_config(tmp_path, "lagrangian", hours=1, lagrangian=lagrangian)
        study = prepare_study(cfg)
        params[fraction] = LagrangianCore(cfg, study.inputs, study.mechanism).params
    assert params[None].turbulence_step_fraction == DEFAULT_STEP_FRACTION["hanna"] == 0.5
    assert params[None].max_substeps == DEFAULT_MAX_SUBSTEPS["hanna"]
    assert (params[0.1].turbulence_step_fraction, params[0.1].max_substeps) == (0.1, 101)


def test_end_not_after_start(tmp_path):
    text = MINIMAL.replace("end = 2017-12-03T00:00:00", "end = 2017-12-01T00:00:00")
    message = error_of(tmp_path, text)
    assert (
        "`run.end` = 2017-12-01T00:00:00: expected a time after `run.start` (2017-12-01T00:00:00)" in message
    )


def test_unknown_core_suggests_the_nearest(tmp_path):
    message = error_of(tmp_path, MINIMAL.replace('core = "plume"', 'core = "lagrangain"'))
    assert (
        "`run.core` = \"lagrangain\": expected 'plume' or 'lagrangian'; did you mean 'lagrangian'?" in message
    )


def test_missing_required_key(tmp_path):
    message = error_of(tmp_path, MINIMAL.replace('core = "plume"\n', ""))
    assert "`run.core` is required but missing" in message


def test_meteorology_glob_matching_nothing(tmp_path):
    message = error_of(tmp_path, MINIMAL + '[meteorology]\nformat = "era5"\npaths = ["met/*.nc"]\n')
    assert "`meteorology.paths`" in message
    assert "'met/*.nc' matches no file" in message and str(tmp_path / "met") in message


def test_meteorology_files_required_unless_builtin(tmp_path):
    message = error_of(tmp_path, MINIMAL + '[meteorology]\nformat = "wrf"\n')
    assert "`meteorology.paths` is required when `meteorology.format` is 'wrf'" in message


def test_heights_must_increase(tmp_path):
    message = error_of(tmp_path, MINIMAL + "[meteorology]\nheights_m = [10, 50, 40]\n")
    assert "`meteorology.heights_m`" in message and "strictly increasing" in message
    message = error_of(tmp_path, MINIMAL + "[meteorology]\nheights_m = [10, -5]\n")
    assert "`meteorology.heights_m[1]` = -5: expected a value greater than 0" in message


def test_run_longer_than_the_builtin_episode(tmp_path):
    message = error_of(tmp_path, MINIMAL.replace("2017-12-03", "2017-12-09"))
    assert "`meteorology.builtin.days` = 5" in message


def test_region_file_needs_a_name_column(tmp_path):
    (tmp_path / "zones.gpkg").write_bytes(b"")
    message = error_of(tmp_path, MINIMAL + '[regions]\nset = "zones.gpkg"\n')
    assert "`regions.name_column` is required" in message


def test_region_set_typo(tmp_path):
    message = error_of(tmp_path, MINIMAL + '[regions]\nset = "jjj-city"\n')
    assert '`regions.set` = "jjj-city"' in message and "did you mean 'jjj-cities'?" in message


def test_out_of_bounds_year_and_species(tmp_path):
    message = error_of(tmp_path, MINIMAL + "[emissions.builtin]\nyear = 2020\n")
    assert "`emissions.builtin.year` = 2020: expected a value less than or equal to 2017" in message
    message = error_of(tmp_path, MINIMAL.replace('core = "plume"', 'core = "plume"\nspecies = ["SO2", "O3"]'))
    assert '`run.species[1]` = "O3"' in message


def test_geographic_projection_is_refused(tmp_path):
    message = error_of(tmp_path, MINIMAL + '[grid]\nprojection = "EPSG:4326"\n')
    assert "`grid.projection`" in message and "projected CRS in metres" in message


def test_scheduler_typo(tmp_path):
    message = error_of(tmp_path, MINIMAL + '[compute]\nscheduler = "thread"\n')
    assert "`compute.scheduler`" in message and "did you mean 'threads'?" in message


def test_toml_syntax_error_names_file_and_line(tmp_path):
    message = error_of(tmp_path, MINIMAL + "[grid]\ncell_km = \n")
    assert ", line 8, column" in message and "invalid TOML" in message


def test_missing_file():
    with pytest.raises(ConfigError, match="config file not found: .*nowhere.toml"):
        load_config("/nonexistent/nowhere.toml")


def test_several_problems_are_counted(tmp_path):
    message = error_of(tmp_path, MINIMAL + "[grid]\ncell_km = 0\n[plume]\ncfl = 1\n")
    assert "`grid.cell_km`" in message and "(1 more problem after this one)" in message


def test_parse_config_without_a_file_uses_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = parse_config(tomllib.loads(MINIMAL))
    assert isinstance(cfg, AirshedConfig) and cfg.run.output == tmp_path.resolve() / "t.nc"


def test_a_single_path_string_is_a_one_element_list(tmp_path):
    (tmp_path / "wrfout_d01").write_bytes(b"")
    cfg = load_config(write(tmp_path, MINIMAL + '[meteorology]\nformat = "wrf"\npaths = "wrfout_*"\n'))
    assert cfg.meteorology.paths == [tmp_path.resolve() / "wrfout_d01"]


@pytest.mark.parametrize(("raw", "message"), [
    (b"\x89HDF\r\n\x1a\n\x00\x00",
     "not a TOML config: it is a NetCDF-4/HDF5 file (e.g. a run file), binary content"),
    (b"[run]\x00\x01", "not a TOML config: binary content (a NUL byte at byte 5)"),
    (b'[run]\nname = "caf\xe9"\n', "not UTF-8 text (byte 17); save the config as UTF-8"),
])
def test_a_binary_file_given_as_config_is_named_binary_not_told_to_be_saved_as_utf8(tmp_path, raw, message):
    """Trial 10: `airshed run X.nc` said 'save the config as UTF-8'; text in another encoding is."""
    path = tmp_path / "x.nc"
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: {message}")
