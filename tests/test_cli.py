"""The airshed command line: exit codes, one-line errors, and the wiring of every command."""

from __future__ import annotations

import json
import sys
import tomllib
import types
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from airshed import __version__
from airshed.cli import app
from airshed.config import load_config
from airshed.errors import DataError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "jjj.toml"
WIDE = {"COLUMNS": "200"}

MINIMAL = """
[run]
name = "t"
start = 2017-12-01T00:00:00
end = 2017-12-02T00:00:00
core = "plume"
[grid]
bbox = [115, 38, 118, 41]
cell_km = 50
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def minimal(tmp_path: Path) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    return path


def test_version(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"airshed {__version__}"


def test_help_lists_every_command(runner):
    result = runner.invoke(app, ["--help"], env=WIDE)
    assert result.exit_code == 0
    for command in ("config", "grid", "run", "validate"):
        assert command in result.stdout


def test_help_keeps_bracketed_config_tables(runner):
    # rich markup would swallow an unescaped [uncertainty.meteorology] as a style tag
    result = runner.invoke(app, ["run", "--help"], env=WIDE)
    assert result.exit_code == 0
    assert "[uncertainty.meteorology]" in result.stdout


def test_config_validate_ok_prints_a_summary(runner):
    result = runner.invoke(app, ["config", "validate", str(EXAMPLE)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout
    assert "jjj_winter" in result.stdout and "lagrangian" in result.stdout
    grid = load_config(EXAMPLE).grid.build()
    assert f"{grid.nx} x {grid.ny} cells of 9 km" in result.stdout
    assert "120 h" in result.stdout


def test_config_show_prints_the_resolved_config(runner, tmp_path):
    result = runner.invoke(app, ["config", "show", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    shown = tomllib.loads(result.stdout)
    assert shown["run"]["output"] == str(EXAMPLE.parent / "jjj_winter.nc")
    assert shown["lagrangian"]["particles_per_hour"] == 5000  # the example's own value
    (tmp_path / "shown.toml").write_text(result.stdout, encoding="utf-8")
    assert load_config(tmp_path / "shown.toml").model_dump() == load_config(EXAMPLE).model_dump()


def test_bad_key_exits_2_with_the_key_path_and_a_suggestion(runner, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(MINIMAL + '[plume]\ndispersoin = "briggs-rural"\n', encoding="utf-8")
    result = runner.invoke(app, ["config", "validate", str(path)], env=WIDE)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, "bad input is one line, no traceback"
    assert lines[0].startswith("error: ")
    assert "`plume.dispersoin`" in lines[0] and "did you mean `plume.dispersion`?" in lines[0]
    assert "Traceback" not in result.output


def test_out_of_bounds_value_exits_2(runner, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(MINIMAL.replace("cell_km = 50", "cell_km = 0"), encoding="utf-8")
    result = runner.invoke(app, ["config", "show", str(path)], env=WIDE)
    assert result.exit_code == 2
    assert "`grid.cell_km` = 0: expected a value greater than 0" in result.stderr


def test_missing_config_file_exits_2(runner, tmp_path):
    result = runner.invoke(app, ["config", "validate", str(tmp_path / "nope.toml")], env=WIDE)
    assert result.exit_code == 2
    assert "config file not found" in result.stderr


def test_verbose_and_quiet_together_is_bad_input(runner, minimal):
    result = runner.invoke(app, ["-v", "-q", "config", "validate", str(minimal)])
    assert result.exit_code == 2


def fake_module(monkeypatch, name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)
    return module


def test_run_passes_config_and_options_to_the_pipeline(runner, minimal, tmp_path, monkeypatch):
    calls = []

    def run_study(cfg, output=None, zero_out=None, progress=True):
        calls.append((cfg, output, zero_out, progress))
        return output

    fake_module(monkeypatch, "airshed.runner", run_study=run_study)
    out = tmp_path / "sens.nc"
    result = runner.invoke(app, ["-q", "run", str(minimal), "--output", str(out), "--zero-out", "Tianjin"])
    assert result.exit_code == 0, result.output
    ((cfg, output, zero_out, progress),) = calls
    assert cfg.run.name == "t" and output == out and zero_out == "Tianjin" and progress is False


def test_internal_error_is_one_line_and_exit_1(runner, minimal, monkeypatch):
    def run_study(cfg, output=None, zero_out=None, progress=True):
        raise ZeroDivisionError("float division by zero")

    fake_module(monkeypatch, "airshed.runner", run_study=run_study)
    result = runner.invoke(app, ["run", str(minimal)], env=WIDE)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error: ZeroDivisionError: float division by zero" in lines[0]
    assert "--verbose" in lines[0]

    verbose = runner.invoke(app, ["--verbose", "run", str(minimal)], env=WIDE)
    assert verbose.exit_code == 1
    assert "Traceback" in verbose.stderr and "run_study" in verbose.stderr


def test_sigterm_anywhere_in_a_command_runs_its_clean_up_and_says_so(runner, minimal, tmp_path, monkeypatch):
    """Every command, not only the writes that trap it themselves (newcomer trial: SIGTERM killed
    `airshed uncertainty` and `airshed report` silently and left a 128 MB temporary file)."""
    import signal

    cleaned = []

    def run_study(cfg, output=None, zero_out=None, progress=True):
        try:
            signal.raise_signal(signal.SIGTERM)
        finally:
            cleaned.append(True)

    fake_module(monkeypatch, "airshed.runner", run_study=run_study)
    result = runner.invoke(app, ["run", str(minimal)], env=WIDE)
    assert result.exit_code == 128 + signal.SIGTERM and cleaned == [True]
    assert result.stderr.strip() == "error: terminated by SIGTERM; unfinished output files were removed"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored after the command


def test_data_errors_from_deep_inside_exit_2(runner, minimal, monkeypatch):
    def run_study(cfg, output=None, zero_out=None, progress=True):
        raise DataError("met.nc: variable 'u10' not found; expected 10 m eastward wind")

    fake_module(monkeypatch, "airshed.runner", run_study=run_study)
    result = runner.invoke(app, ["run", str(minimal)], env=WIDE)
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: met.nc: variable 'u10' not found; expected 10 m eastward wind"


def test_grid_prints_the_grid_and_region_table(runner, minimal, monkeypatch):
    seen = {}

    def build_regions(grid, spec, name_column=None):
        seen.update(spec=spec, name_column=name_column, shape=grid.shape)
        fractions = np.zeros((2, *grid.shape))
        fractions[0, :, : grid.nx // 2] = 1.0
        fractions[1] = 1.0 - fractions[0]
        area = grid.cell_area
        return types.SimpleNamespace(
            names=("West", "outside"),
            fractions=fractions,
            area_km2=lambda: {
                "West": float((fractions[0] * area).sum() / 1e6),
                "outside": float((fractions[1] * area).sum() / 1e6),
            },
        )

    fake_module(monkeypatch, "airshed.grids.regions", build_regions=build_regions)
    result = runner.invoke(app, ["grid", str(minimal)], env=WIDE)
    assert result.exit_code == 0, result.output
    grid = load_config(minimal).grid.build()
    assert seen == {"spec": "provinces", "name_column": None, "shape": grid.shape}
    assert f"{grid.nx} x {grid.ny} (nx x ny)" in result.stdout
    assert "50 km" in result.stdout and "+proj=lcc" in result.stdout
    west_cells = grid.ny * (grid.nx // 2)
    row = next(line for line in result.stdout.splitlines() if "West" in line)
    assert str(west_cells) in row


ROWS = [
    {
        "core": "plume",
        "option": "default",
        "quantity": "arc max",
        "stability": "all",
        "distance_m": 100,
        "n": np.int64(40),
        "FB": np.float64(0.123456),
        "NMSE": 0.5,
        "MG": 1.1,
        "VG": float("nan"),
        "FAC2": 0.85,
    }
]


def test_validate_prairie_grass_table_and_json(runner, tmp_path, monkeypatch):
    calls = []

    def run_validation(data_dir, cores, observed_sigma_theta=False, processes=None, progress=None):
        calls.append((data_dir, cores) + ((True,) if observed_sigma_theta else ()))
        return ROWS

    fake_module(monkeypatch, "airshed.validation", __path__=[])
    fake_module(monkeypatch, "airshed.validation.prairie_grass", run_validation=run_validation)

    result = runner.invoke(app, ["validate", "prairie-grass", "--core", "plume"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert calls[-1] == (None, ["plume"])
    assert "arc max" in result.stdout and "0.123" in result.stdout and "0.85" in result.stdout

    result = runner.invoke(app, ["validate", "prairie-grass", "--data", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert calls[-1] == (tmp_path.resolve(), ["plume", "lagrangian"])
    rows = json.loads(result.stdout)
    assert rows[0]["n"] == 40 and rows[0]["FB"] == 0.123456 and rows[0]["VG"] is None

    result = runner.invoke(app, ["validate", "prairie-grass", "--core", "plume", "--observed-sigma-theta"])
    assert result.exit_code == 0, result.output
    assert calls[-1] == (None, ["plume"], True)


def test_validate_rejects_an_unknown_core(runner):
    result = runner.invoke(app, ["validate", "prairie-grass", "--core", "puff"])
    assert result.exit_code == 2
