"""Maps and charts of a run: projection from the file, image baselines, determinism, bad input.

Image tests compare against tests/baseline/<test name>.png twice: through pytest-mpl when pytest runs
with ``--mpl``, and always through matplotlib.testing.compare.compare_images, so that a broken map fails
plain ``python -m pytest`` too. Regenerate the baselines (after a deliberate change of the figures) with
``python -m pytest tests/test_maps.py --mpl-generate-path=tests/baseline`` and look at them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyproj
import pytest
from matplotlib.testing.compare import compare_images
from runfile_fixture import synthetic_run_dataset

from airshed.errors import AirshedInputError, DataError
from airshed.grids.cf import grid_from_dataset
from airshed.outputs import maps, plots
from airshed.outputs.style import save_figure

BASELINE_DIR = Path(__file__).parent / "baseline"
TEST_DPI = 50
TOLERANCE = 3.0  # RMS difference of 0-255 pixel values
IMAGE_COMPARE = {"baseline_dir": "baseline", "tolerance": TOLERANCE, "style": "default",
                 "savefig_kwargs": {"dpi": TEST_DPI}}


@pytest.fixture(scope="module")
def run_ds():
    return synthetic_run_dataset(27)


def _compare_with_baseline(fig, name: str, tmp_path: Path, request) -> str | None:
    """Compare_images message of ``fig`` against its baseline (None when they agree within TOLERANCE)."""
    # saving first also fixes the figure's layout, so pytest-mpl's own save draws the same image
    actual = save_figure(fig, tmp_path / f"{name}.png", dpi=TEST_DPI)
    if request.config.getoption("--mpl-generate-path", default=None):
        return None  # pytest-mpl is writing the baselines in this session
    baseline = BASELINE_DIR / f"{name}.png"
    assert baseline.is_file(), f"missing baseline {baseline}; see this module's docstring"
    return compare_images(str(baseline), str(actual), tol=TOLERANCE)


def _check_image(fig, request, tmp_path: Path):
    message = _compare_with_baseline(fig, request.node.name, tmp_path, request)
    assert message is None, message
    return fig


# --- projection ------------------------------------------------------------------------------------
def test_map_projection_matches_the_file_grid(run_ds):
    projection = maps.map_projection(run_ds)
    grid = grid_from_dataset(run_ds)
    lon = np.array([110.5, 116.4, 123.5])
    lat = np.array([34.5, 39.9, 43.5])
    expected = np.column_stack(grid.lonlat_to_xy(lon, lat))
    to_map = pyproj.Transformer.from_crs("EPSG:4326", projection, always_xy=True)
    got = np.column_stack(to_map.transform(lon, lat))
    np.testing.assert_allclose(got, expected, atol=1e-3)  # m
    assert maps.map_extent(run_ds) == (grid.x_edges[0], grid.x_edges[-1], grid.y_edges[0], grid.y_edges[-1])


def test_map_projection_rejects_other_grid_mappings(run_ds):
    ds = run_ds.copy()
    ds["crs"] = ds["crs"].copy()
    ds["crs"].attrs = {"grid_mapping_name": "transverse_mercator"}
    with pytest.raises(DataError, match="lambert_conformal_conic"):
        maps.map_projection(ds)
    with pytest.raises(DataError, match="'crs'"):
        maps.map_projection(run_ds.drop_vars("crs"))


def test_run_period_text(run_ds):
    assert maps.run_period_text(run_ds) == "2017-12-01 00:00 to 2017-12-03 00:00 UTC"
    ds = run_ds.copy()
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in ("start", "end")}
    assert maps.run_period_text(ds) == "2017-12-01 00:00 to 2017-12-03 00:00 UTC"  # from time_bnds


def test_region_polygons_follow_the_configured_set(run_ds):
    polygons = maps.run_region_polygons(run_ds)
    assert list(polygons["name"]) == [str(r) for r in run_ds["receptor_region"].values]
    ds = run_ds.copy()
    ds.attrs["airshed_config"] = '[regions]\nset = "/nonexistent/regions.geojson"\nname_column = "n"\n'
    assert maps.run_region_polygons(ds) is None  # then the choropleth falls back to the cells


# --- image baselines -------------------------------------------------------------------------------
@pytest.mark.mpl_image_compare(**IMAGE_COMPARE)
def test_concentration_map(run_ds, request, tmp_path):
    return _check_image(maps.plot_concentration_map(run_ds, "PM2.5"), request, tmp_path)


@pytest.mark.mpl_image_compare(**IMAGE_COMPARE)
def test_transboundary_map(run_ds, request, tmp_path):
    return _check_image(maps.plot_transboundary_map(run_ds, "PM2.5"), request, tmp_path)


@pytest.mark.mpl_image_compare(**IMAGE_COMPARE)
def test_source_receptor_heatmap(run_ds, request, tmp_path):
    return _check_image(plots.plot_source_receptor_heatmap(run_ds, "PM2.5"), request, tmp_path)


@pytest.mark.mpl_image_compare(**IMAGE_COMPARE)
def test_city_time_series(run_ds, request, tmp_path):
    return _check_image(plots.plot_city_time_series(run_ds, "PM2.5"), request, tmp_path)


def test_a_broken_map_fails_the_comparison(run_ds, request, tmp_path):
    # the field misregistered by three cells (a transposed or shifted grid is the classic map bug)
    broken = run_ds.copy()
    broken["concentration"] = broken["concentration"].roll(x=3)
    fig = maps.plot_concentration_map(broken, "PM2.5")
    message = _compare_with_baseline(fig, "test_concentration_map", tmp_path, request)
    if request.config.getoption("--mpl-generate-path", default=None):
        pytest.skip("baselines being generated")
    assert message is not None and "did not match" in message
    rms = float(message.split("RMS Value:")[1].split()[0])
    assert rms > 3 * TOLERANCE


def test_gridded_choropleth_fallback_draws(run_ds, tmp_path):
    ds = run_ds.copy()
    ds.attrs["airshed_config"] = ""
    path = save_figure(maps.plot_transboundary_map(ds), tmp_path / "fallback.png", dpi=TEST_DPI)
    assert path.stat().st_size > 10_000


# --- determinism, formats, files -------------------------------------------------------------------
def test_figures_are_byte_identical_and_carry_no_timestamps(run_ds, tmp_path):
    fig = plots.plot_city_contributions(run_ds)
    first = save_figure(fig, tmp_path / "a.png", dpi=TEST_DPI).read_bytes()
    second = save_figure(plots.plot_city_contributions(run_ds), tmp_path / "b.png", dpi=TEST_DPI).read_bytes()
    assert first == second
    pdf_a = save_figure(fig, tmp_path / "a.pdf").read_bytes()
    pdf_b = save_figure(fig, tmp_path / "b.pdf").read_bytes()
    assert pdf_a == pdf_b
    assert b"CreationDate" not in pdf_a and b"matplotlib" not in pdf_a.lower()
    assert b"Software" not in first


def test_save_figure_rejects_unknown_format(run_ds, tmp_path):
    fig = plots.plot_source_receptor_heatmap(run_ds)
    with pytest.raises(AirshedInputError, match="tiff"):
        save_figure(fig, tmp_path / "x.tiff")
    with pytest.raises(AirshedInputError, match="does not exist"):
        save_figure(fig, tmp_path / "missing" / "x.png")


def test_figure_specs_follow_the_file(run_ds):
    stems = [s.stem for s in plots.figure_specs(run_ds, ("PM2.5", "sulfate"))]
    assert stems == [
        "concentration_PM25", "contribution_maps_PM25", "transboundary_share_PM25",
        "concentration_sulfate", "contribution_maps_sulfate", "transboundary_share_sulfate",
        "source_receptor_PM25", "city_contributions_PM25", "city_time_series_PM25",
    ]
    reduced = run_ds.drop_vars(["receptor_contribution", "contribution"])
    assert [s.stem for s in plots.figure_specs(reduced)] == [
        "concentration_PM25", "transboundary_share_PM25", "source_receptor_PM25", "city_contributions_PM25",
    ]
    with pytest.raises(AirshedInputError, match="unknown species 'PM10'"):
        plots.figure_specs(run_ds, ("PM10",))


def test_city_receptors_are_the_jjj_cities(run_ds):
    cities = plots.city_receptors(run_ds)
    assert len(cities) == 13 and cities[:2] == ["Beijing", "Tianjin"] and "Shanxi" not in cities


def test_plot_command_errors_are_one_line(tmp_path):
    from typer.testing import CliRunner

    from airshed.cli import app

    result = CliRunner().invoke(app, ["plot", str(tmp_path / "none.nc")])
    assert result.exit_code == 2
    assert "run file" in result.output and "not found" in result.output
    bad = tmp_path / "bad.nc"
    bad.write_text("not netcdf")
    result = CliRunner().invoke(app, ["plot", str(bad)])
    assert result.exit_code == 2 and "cannot read run file" in result.output


def test_plot_out_needs_an_existing_writable_parent(tmp_path, run_ds):
    from typer.testing import CliRunner

    from airshed.cli import app

    run = tmp_path / "run.nc"
    run_ds.to_netcdf(run)
    # a missing parent is refused (no folders built silently), as report --out and cooperate --json do
    missing = tmp_path / "nonexistent" / "a" / "b"
    result = CliRunner().invoke(app, ["plot", str(run), "--out", str(missing)], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "output folder" in result.output and "does not exist" in result.output
    assert not (tmp_path / "nonexistent").exists()
    # a parent that is a file: the same one-line error, not an internal error
    result = CliRunner().invoke(app, ["plot", str(run), "--out", str(run / "figs")], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "does not exist" in result.output and "internal error" not in result.output
