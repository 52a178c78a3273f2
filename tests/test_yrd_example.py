"""The README's "Your own region" commands, run on a reduced Yangtze River Delta example.

The reduced config is examples/yrd.toml with 6 hours instead of 3 days, 36 km cells instead of 9 km,
500 particles an hour and flat time profiles (so the emitted mass is the inventory's annual total times
6 h); everything else -- divisions by name, the user gridded inventory, ERA5-layout meteorology read with
``format = "era5"``, the fitted projection -- is the example's.
"""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import shapely
import xarray as xr
from matplotlib.collections import LineCollection
from typer.testing import CliRunner

from airshed.cli import app
from airshed.grids.boundaries import load_boundaries
from airshed.inputs.emissions.gridded import SECONDS_PER_YEAR
from airshed.outputs import maps

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "yrd.toml"
PROVINCES = ["Shanghai", "Jiangsu", "Zhejiang", "Anhui"]
HOURS = 6


def readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Your own region\n.*?```\n(.*?)```", readme, re.S)
    assert block, "README has no 'Your own region' command block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def _inputs_module():
    spec = importlib.util.spec_from_file_location("yrd_inputs", ROOT / "examples" / "yrd_inputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reduced_config(folder: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in [("end = 2017-12-04T00:00:00", f"end = 2017-12-01T{HOURS:02d}:00:00"),
                     ("cell_km = 9.0", "cell_km = 36.0"),
                     ("particles_per_hour = 5000", "particles_per_hour = 500"),
                     ('temporal_profiles = "typical"', 'temporal_profiles = "flat"'),
                     ("maps = true", "maps = false"), ("report = true", "report = false")]:
        assert old in text, old
        text = text.replace(old, new)
    path = folder / "yrd.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def yrd_run(tmp_path_factory):
    """The README's four commands, on the reduced config, in a scratch folder."""
    folder = tmp_path_factory.mktemp("yrd")
    config = reduced_config(folder)
    inputs = _inputs_module()
    written = inputs.write_inputs(folder / "yrd_inputs", config, days=0.5)
    runner = CliRunner()
    run_file = folder / "yrd_winter.nc"
    for args in (["run", str(config)], ["plot", str(run_file), "--out", str(folder / "yrd_winter_figures")],
                 ["report", str(run_file), "--out", str(folder / "yrd_winter.html")]):
        result = runner.invoke(app, ["-q", *args])
        assert result.exit_code == 0, (args, result.output)
    return folder, run_file, written, inputs


def test_readme_commands_are_the_ones_tested():
    assert readme_commands() == [
        "python examples/yrd_inputs.py",
        "airshed run examples/yrd.toml",
        "airshed plot examples/yrd_winter.nc --out examples/yrd_winter_figures",
        "airshed report examples/yrd_winter.nc --out examples/yrd_winter.html",
    ]


def test_yrd_run_apportions_to_the_four_provinces(yrd_run):
    _, run_file, _, _ = yrd_run
    with xr.open_dataset(run_file) as ds:
        assert [str(r) for r in ds["receptor_region"].values] == PROVINCES
        assert [str(r) for r in ds["source_region"].values] == [*PROVINCES, "outside"]
        assert "+proj=lcc +lat_1=27.7 +lat_2=34.5" in ds.attrs["airshed_config"]
        pm25 = ds["source_receptor"].sel(species="PM2.5").values
        assert np.isfinite(pm25).all() and (pm25.sum(axis=1) > 0).all()
        share = ds["transboundary_share"].sel(species="PM2.5").values
        assert ((share >= 0) & (share <= 1)).all()


def test_yrd_emissions_are_the_user_inventory(yrd_run):
    folder, run_file, written, inputs = yrd_run
    with xr.open_dataset(written[0]) as inventory, xr.open_dataset(run_file) as ds:
        annual = {"SO2": "SO2", "NOx": "NOx", "PM2.5": "PM25", "NH3": "NH3", "NMVOC": "NMVOC"}
        emitted = ds["emission_total"].sum(["source_region", "sector"])
        for species, variable in annual.items():
            # flat profiles: 6 hours of the annual rate; the domain holds every inventory cell
            expected = float(inventory[variable].sum()) * HOURS * 3600.0 / SECONDS_PER_YEAR
            assert float(emitted.sel(emitted_species=species)) == pytest.approx(expected, rel=1e-9)
        # Each province keeps its share of the regional total but for the inventory cells (0.1 degree)
        # and model cells (36 km) that straddle a border or the coast: their emission is tagged by area
        # share, so small coastal Shanghai loses most. Measured (SO2 shares of the total): Shanghai -21 %,
        # Jiangsu -4 %, Zhejiang -5 %, Anhui -2 %, outside 5.8 % (at 9 km: Shanghai -12 %, outside 2.7 %).
        totals = inputs.provincial_totals(PROVINCES)
        so2 = ds["emission_total"].sel(emitted_species="SO2").sum("sector")
        for province, tolerance in zip(PROVINCES, (0.25, 0.1, 0.1, 0.1), strict=True):
            expected = totals[province]["SO2"] * HOURS * 3600.0 / SECONDS_PER_YEAR
            assert float(so2.sel(source_region=province)) == pytest.approx(expected, rel=tolerance)
        assert 0 < float(so2.sel(source_region="outside")) < 0.08 * float(so2.sum())


def test_yrd_population_is_the_provincial_census(yrd_run):
    _, run_file, _, _ = yrd_run
    with xr.open_dataset(run_file) as ds:
        population = ds["population"].values
    # the four provinces lie inside the grid; cells outside them hold nobody
    census = {"Shanghai": 24_870_895, "Jiangsu": 84_748_016, "Zhejiang": 64_567_588, "Anhui": 61_027_171}
    assert population.sum() == pytest.approx(sum(census.values()), rel=1e-5)


def test_yrd_maps_draw_the_delta(yrd_run):
    folder, run_file, _, _ = yrd_run
    assert sorted(p.name for p in (folder / "yrd_winter_figures").glob("*.png"))
    assert (folder / "yrd_winter.html").stat().st_size > 10_000
    with xr.open_dataset(run_file) as ds:
        polygons = maps.run_region_polygons(ds)
        assert list(polygons["name"]) == PROVINCES
        fig = maps.plot_concentration_map(ds)
        ax = fig.axes[0]
        x0, x1, y0, y1 = maps.map_extent(ds)
        assert (ax.get_xlim(), ax.get_ylim()) == ((x0, x1), (y0, y1))
        # about 1,000 km square, the delta in the middle
        assert 900e3 < x1 - x0 < 1300e3 and 900e3 < y1 - y0 < 1300e3
        lines = [c for c in ax.collections if isinstance(c, LineCollection)]
        region_lines, province_lines = lines[0], lines[1]
        drawn = np.concatenate([np.asarray(p.vertices) for p in region_lines.get_paths()])
        delta = maps._project(load_boundaries(tuple([310000, 320000, 330000, 340000])).geometry.to_numpy(),
                              maps._crs_wkt(ds, maps.map_projection(ds)), maps._domain_lonlat_box(ds))
        bx0, by0, bx1, by1 = shapely.total_bounds(delta)
        # the thin outlines are the four provinces (to the simplification tolerance of 1/2000 of the map)
        tol = (x1 - x0) / 1000.0
        np.testing.assert_allclose([*drawn.min(axis=0), *drawn.max(axis=0)], [bx0, by0, bx1, by1], atol=tol)
        assert x0 < bx0 < bx1 < x1 and y0 < by0 < by1 < y1
        # the thick outlines show the neighbouring provinces too (Henan, Hubei, Jiangxi, Fujian, Shandong)
        assert len(province_lines.get_paths()) > len(region_lines.get_paths())
