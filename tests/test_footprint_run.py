"""The footprint run end to end: the file, its folding rule, and the tools that read forward run files.

Small case: 27 km grid, 12 hours of the built-in episode with flat emission profiles (so the folding rule of
the file's time-integrated footprints is exact), the 13 JJJ city centres, 6 h averaging periods.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from airshed.cli import app
from airshed.config import parse_config
from airshed.errors import AirshedInputError, DataError

ROOT = Path(__file__).resolve().parents[1]
STATIONS = ROOT / "examples" / "jjj_city_centres.csv"
_DIR = tempfile.TemporaryDirectory(prefix="airshed_footprint_")

CASE = {
    "run": {"name": "fp", "start": "2017-12-01T00:00:00", "end": "2017-12-01T12:00:00", "seed": 5,
            "core": "lagrangian"},
    "grid": {"cell_km": 27.0},
    "regions": {"set": "jjj-cities", "population": "builtin"},
    "meteorology": {"format": "builtin"},
    "emissions": {"inventory": "builtin", "builtin": {"year": 2017}, "temporal_profiles": "flat"},
    "receptors": {"stations": str(STATIONS)},
    "footprint": {"averaging_h": 6, "particles_per_period": 240, "batches": 2},
}


def case_config(**changes):
    data = {k: dict(v) for k, v in CASE.items()}
    for table, values in changes.items():
        data.setdefault(table, {}).update(values)
    return parse_config(data, config_dir=_DIR.name)


@functools.cache
def footprint_file(zero_out: str | None = None) -> Path:
    from airshed.footprint import run_footprints

    return run_footprints(case_config(), output=Path(_DIR.name) / f"fp_{zero_out or 'base'}.nc",
                          progress=False, zero_out=zero_out)


def cli_config(path: Path, end: str, tables: str = "", run_keys: str = "") -> Path:
    """Write a TOML config of the 27 km JJJ-cities particle case for the CLI tests (``tables`` appended)."""
    path.write_text(f"""
[run]
name = "fp"
start = 2017-12-01T00:00:00
end = {end}
core = "lagrangian"
{run_keys}
[grid]
cell_km = 27.0
[regions]
set = "jjj-cities"
{tables}""", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ds():
    with xr.open_dataset(footprint_file()) as opened:
        yield opened.load()


def test_file_holds_footprints_in_seconds_and_the_folding_rule(ds):
    fp = ds["footprint"]
    assert fp.attrs["units"] == "s" and "footprint (s) * emission rate" in fp.attrs["folding_rule"]
    assert fp.dims == ("time", "station", "pathway", "y", "x")
    assert ds.sizes["time"] == 2 and ds.sizes["station"] == 13
    assert list(ds["pathway"].values) == ["air", "SO2<-SO2", "NOx<-NOx", "PM2.5<-PM2.5", "NH3<-NH3",
                                          "NMVOC<-NMVOC", "sulfate<-SO2", "nitrate<-NOx"]
    assert float(fp.min()) >= 0.0
    # 'air': released over 0-50 m, each particle spends part of the 6-12 h before it in the source layer
    per_particle = fp.sel(pathway="air").sum(("y", "x"))
    assert float(per_particle.min()) > 0.0 and float(per_particle.max()) < 12 * 3600.0
    # removal and conversion weigh the other pathways below the air's residence time
    assert (fp.sel(pathway="SO2<-SO2") <= fp.sel(pathway="air") + 1e-9).all()
    cell = float(ds["footprint"].attrs["cell_area_m2"])
    np.testing.assert_allclose(ds["footprint_per_emission"], fp * 1e9 / (cell * 50.0), rtol=1e-12)
    assert ds.attrs["core"] == "lagrangian-backward" and ds.attrs["direction"] == "backward"


def test_folding_the_file_footprints_gives_the_station_contributions(ds):
    """Folding rule of the attributes, applied by hand: sum over cells of F E / (A H) (+ the stacks)."""
    from airshed.pipeline.study import emitted_rates, prepare_study

    study = prepare_study(case_config())
    em, grid = study.emissions, study.grid
    area_rates, point_rates = em.rates_at(np.datetime64("2017-12-01T03:00"))  # flat profiles: any hour
    area_rates = emitted_rates(em, area_rates, study.mechanism.emitted, list(study.cfg.run.species))
    point_rates = emitted_rates(em, point_rates, study.mechanism.emitted, list(study.cfg.run.species))
    scale = 1e9 / (grid.dx * grid.dx * 50.0)
    fp = ds["footprint"].values.reshape(2, 13, 8, -1)
    sfp = ds["stack_footprint"].values
    cell = em.area.row.astype(int) * grid.nx + em.area.col
    emitted_of = {"PM2.5<-PM2.5": "PM2.5", "sulfate<-SO2": "SO2", "nitrate<-NOx": "NOx"}
    pathways = [str(p) for p in ds["pathway"].values]
    expected = np.zeros((2, 13, em.ntag))
    for name, species in emitted_of.items():
        k, e = pathways.index(name), ["SO2", "NOx", "PM2.5", "NH3", "NMVOC"].index(species)
        for tag in range(em.ntag):
            mine = em.area_tag == tag
            expected[:, :, tag] += (fp[:, :, k][:, :, cell[mine]] * area_rates[mine, e]).sum(axis=2) * scale
            stacks = em.point_tag == tag
            expected[:, :, tag] += (sfp[:, :, k][:, :, stacks] * point_rates[stacks, e]).sum(axis=2) * scale
    got = ds["station_contribution"].sel(species="PM2.5").values.reshape(2, 13, -1)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())
    assert got.sum() > 0.0


def test_station_and_receptor_series_add_up(ds):
    sc = ds["station_contribution"]
    total = sc.sum(("source_region", "sector"))
    np.testing.assert_allclose(ds["station_concentration"], total, rtol=1e-12)
    pm = ds["station_concentration"].sel(species="PM2.5")
    parts = ds["station_concentration"].sel(species=["PM2.5_primary", "sulfate", "nitrate"]).sum("species")
    np.testing.assert_allclose(pm, parts, rtol=1e-12)
    # one station per city: the receptor-region series are the stations' (Langfang lies in its region)
    regions = [str(r) for r in ds["receptor_region"].values]
    assert "Beijing" in regions and "Langfang" in regions
    np.testing.assert_allclose(ds["receptor_concentration"].sel(receptor_region="Beijing"),
                               ds["station_concentration"].sel(station="Beijing"), rtol=1e-12)
    assert "station_contribution_stderr" in ds and float(ds["station_contribution_stderr"].max()) > 0.0
    assert float(ds["air_in_domain_at_start"].min()) > 0.5


def test_scenario_cooperate_and_performance_read_the_footprint_file(ds):
    from airshed.config import ScenarioConfig
    from airshed.cooperation.performance import performance_split
    from airshed.cooperation.runfile import run_tables
    from airshed.scenarios import evaluate_scenarios

    cut = ScenarioConfig(name="half_beijing", changes=[{"regions": ["Beijing"], "change_percent": -50.0}])
    result = evaluate_scenarios(ds, [cut])
    delta = result["scenario_delta_own"].sel(scenario="half_beijing", receptor_region="Beijing",
                                             species="PM2.5")
    own = ds["source_receptor"].sel(receptor_region="Beijing", source_region="Beijing", species="PM2.5")
    assert float(delta) == pytest.approx(-0.5 * float(own), rel=1e-9)
    tables = run_tables(ds, "footprint file")
    assert tables.receptors[0] == "Beijing" and tables.source_receptor.shape[1] == ds.sizes["source_region"]
    with xr.open_dataset(footprint_file("Beijing")) as zero:
        split = performance_split(ds, zero.load())
    sr = ds["pm25_source_receptor"].sum("emitted_species")
    np.testing.assert_allclose(split["own_emissions_change"].sel(receptor_region="Beijing"),
                               -sr.sel(receptor_region="Beijing", source_region="Beijing"), rtol=1e-9)
    assert float(split["other_regions_change"].sel(receptor_region="Beijing")) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(split["other_regions_change"].sel(receptor_region="Tianjin"),
                               -sr.sel(receptor_region="Tianjin", source_region="Beijing"), rtol=1e-9)


def test_scenario_cooperate_and_performance_commands_run_on_the_footprint_file(tmp_path, ds):
    """The folded file goes through the three commands unchanged, with the numbers the tables imply."""
    import json

    runner = CliRunner()
    base, zero = footprint_file(), footprint_file("Beijing")
    config = cli_config(tmp_path / "scenario.toml", "2017-12-01T12:00:00", """
[[scenarios]]
name = "half_beijing"
[[scenarios.changes]]
regions = ["Beijing"]
change_percent = -50.0
""")
    sr = ds["pm25_source_receptor"].sum("emitted_species")
    result = runner.invoke(app, ["scenario", str(config), str(base), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["receptor_region"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {str(r) for r in ds["receptor_region"].values}
    assert rows["Beijing"]["change_from_own_ug_m3"] == pytest.approx(
        -0.5 * float(sr.sel(receptor_region="Beijing", source_region="Beijing")), rel=1e-9)
    assert rows["Tianjin"]["change_from_others_ug_m3"] == pytest.approx(
        -0.5 * float(sr.sel(receptor_region="Tianjin", source_region="Beijing")), rel=1e-9)
    result = runner.invoke(app, ["performance", str(base), str(zero), "--json"])
    assert result.exit_code == 0, result.output
    split = json.loads(result.stdout)["receptors"]
    assert split["Beijing"]["own_emissions_change"] == pytest.approx(
        -float(sr.sel(receptor_region="Beijing", source_region="Beijing")), rel=1e-9)
    assert split["Tianjin"]["other_regions_change"] == pytest.approx(
        -float(sr.sel(receptor_region="Tianjin", source_region="Beijing")), rel=1e-9)
    # the tables say the values are station means here, not population-weighted (newcomer trial)
    for argv in (["scenario", str(config), str(base)], ["performance", str(base), str(zero)]):
        table = runner.invoke(app, argv)
        words = " ".join(table.stdout.split())  # the title may wrap
        assert table.exit_code == 0 and "mean of each region's stations" in words
        assert "population-weighted" not in words
    # the shipped gamma-game policy, its players the regions that hold a station (a footprint file's
    # receptor regions; the neighbouring provinces have none, so they carry no damage in the game)
    cities = [str(r) for r in ds["receptor_region"].values]
    text = (ROOT / "examples" / "policy_jjj.toml").read_text(encoding="utf-8")
    assert '# players = ["Beijing", "Tianjin", ...]' in text
    policy = tmp_path / "policy.toml"
    players = f"players = {json.dumps(cities)}"
    policy.write_text(text.replace('# players = ["Beijing", "Tianjin", ...]', players), encoding="utf-8")
    result = runner.invoke(app, ["cooperate", str(base), "--policy", str(policy), "--json", "-"])
    assert result.exit_code == 0, result.output
    game = json.loads(result.stdout)
    assert game["game"] and game["run_file"] == str(base)


def test_footprint_file_passes_cf_checker(tmp_path):
    from cf_check import cf_failures

    failed = cf_failures(footprint_file(), tmp_path)
    assert failed[3] == [], failed[3]


def test_cli_footprint_run_and_map(tmp_path):
    runner = CliRunner()
    config = cli_config(tmp_path / "fp.toml", "2017-12-01T06:00:00", """
[emissions]
temporal_profiles = "flat"
[footprint]
averaging_h = 6
particles_per_period = 60
""", run_keys="seed = 5")
    result = runner.invoke(app, ["footprint", str(config), "--stations", str(STATIONS), "-o",
                                 str(tmp_path / "out.nc")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Beijing" in result.stdout and "wrote" in result.stdout
    with xr.open_dataset(tmp_path / "out.nc") as out:
        assert out["footprint"].attrs["units"] == "s"
    result = runner.invoke(app, ["footprint-map", str(tmp_path / "out.nc"), "--station", "Tianjin"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out_Tianjin.png").stat().st_size > 10_000
    result = runner.invoke(app, ["footprint-map", str(tmp_path / "out.nc"), "--station", "Paris"])
    assert result.exit_code == 2 and "unknown station 'Paris'" in result.output
    # a file of the other kind: say which kind the command needs and which command writes it (trial 10, 8)
    result = runner.invoke(app, ["report", str(tmp_path / "out.nc")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert ("out.nc is a footprint (backward) file, written by `airshed footprint`; report needs a forward "
            "run file, the output of `airshed run`") in " ".join(result.output.split())
    forward = tmp_path / "forward.nc"
    xr.Dataset({"concentration": ("time", [1.0])}, attrs={"run_file_format": 2}).to_netcdf(forward)
    result = runner.invoke(app, ["footprint-map", str(forward), "--station", "Tianjin"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert ("forward.nc is a forward run file, written by `airshed run`; footprint-map needs a footprint "
            "file, the output of `airshed footprint`") in " ".join(result.output.split())
    assert "written by `airshed footprint`" in runner.invoke(app, ["footprint-map", "--help"],
                                                             env={"COLUMNS": "200"}).output
    # no stations anywhere: one line naming both ways to give them
    result = runner.invoke(app, ["run", str(config), "--direction", "backward"])
    assert result.exit_code == 2 and "receptors.stations" in result.output and "--stations" in result.output


def test_footprint_checks_its_arguments_before_reading_inputs(tmp_path, monkeypatch):
    """--stations replaces a broken [receptors] stations, and a bad --stations file or --zero-out region is
    refused before any input is read (newcomer trial: both came after the met was opened)."""
    import airshed.footprint as footprint

    def no_reading(*args, **kwargs):
        raise AssertionError("inputs read before the arguments were checked")

    monkeypatch.setattr(footprint, "prepare_study", no_reading)
    config = cli_config(tmp_path / "fp.toml", "2017-12-01T06:00:00", """
[receptors]
stations = "missing.csv"
""")
    outside = tmp_path / "outside.csv"
    outside.write_text("id,name,lon,lat\nBJ,Beijing,116.4,39.9\nP,Paris,2.35,48.85\n", encoding="utf-8")
    runner = CliRunner()
    wide = {"COLUMNS": "300"}
    result = runner.invoke(app, ["footprint", str(config), "--stations", str(outside)], env=wide)
    assert result.exit_code == 2 and "station 'P' at lon=2.35, lat=48.85 lies outside" in result.stderr
    result = runner.invoke(app, ["footprint", str(config), "--stations", str(STATIONS), "--zero-out",
                                 "Atlantis"], env=wide)
    assert result.exit_code == 2 and "--zero-out 'Atlantis': unknown region" in result.stderr


@pytest.mark.parametrize("row, message", [
    ("X,X,140.0,40.0,10", "does not lie inside the model grid"),
    ("X,X,116.0,40.0,-3", "height_m = '-3'"),
    ("X,X,east,40.0,10", "lon = 'east'"),
])
def test_bad_station_lists_are_one_line_errors(tmp_path, row, message):
    from airshed.footprint import study_receptors
    from airshed.pipeline.study import prepare_study

    path = tmp_path / "stations.csv"
    path.write_text(f"id,name,lon,lat,height_m\n{row}\n", encoding="utf-8")
    study = prepare_study(case_config(run={"end": "2017-12-01T06:00:00"}))
    with pytest.raises((AirshedInputError, DataError), match=message):
        study_receptors(study, path)


def test_averaging_period_must_divide_the_run():
    from airshed.footprint import averaging_periods
    from airshed.pipeline.study import prepare_study

    study = prepare_study(case_config(footprint={"averaging_h": 5}))
    with pytest.raises(AirshedInputError, match="footprint.averaging_h"):
        averaging_periods(study)


def test_a_run_for_one_station_gives_the_bits_of_the_run_for_all(ds):
    """Stations are independent: a station's particles, footprint and folding do not see the others."""
    from airshed.footprint import run_backward, station_series, study_receptors
    from airshed.pipeline.study import prepare_study

    study = prepare_study(case_config())
    receptors = study_receptors(study)
    one = run_backward(study, receptors.take([3]))
    mean, _ = station_series(one, study.mechanism)
    got = mean.reshape(2, 1, ds.sizes["source_region"], ds.sizes["sector"], -1)[:, 0]
    np.testing.assert_array_equal(got, ds["station_contribution"].isel(station=3).values)
    np.testing.assert_array_equal(one.footprint[:, 0].reshape(2, 8, ds.sizes["y"], ds.sizes["x"]),
                                  ds["footprint"].isel(station=3).values)


def test_readme_worked_example_of_units_and_folding():
    """The README's worked example, computed by the code that folds and converts footprints."""
    from airshed.footprint import SOURCE_LAYER_M
    from airshed.model.backward import fold_area_sources
    from airshed.outputs.footprint_file import per_emission

    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert "(V = 9000 m x 9000 m x 50 m = 4.05e9 m3)" in readme and SOURCE_LAYER_M == 50.0
    assert "1,200 x 0.008 / 4.05e9 = 2.4e-9 kg m-3 = **2.4 ug m-3**" in readme
    assert "1e9 x 1,200 / 4.05e9 = 296 ug m-3 per kg/s" in readme
    # one station whose 1,000 particles spent 1,200 s each in cell 2 of a 9 km grid, which emits 0.008 kg/s
    # of primary PM2.5 (slots: air, PM2.5<-PM2.5); run_backward divides by the particles and turns kg to ug
    particles, cell_area = 1000, 9000.0 * 9000.0
    footprint = np.zeros((1, 2, 4))
    footprint[0, :, 2] = 1200.0 * particles  # particle-seconds
    out = np.zeros((1, 1, 2))
    fold_area_sources(footprint, np.ones(1, dtype=bool), np.array([2]), np.array([0]), np.array([[0.008]]),
                      np.array([-1, 0]), 1.0 / (cell_area * SOURCE_LAYER_M), out)
    ug_m3 = out[0, 0, 1] * 1e9 / particles
    assert ug_m3 == pytest.approx(1200.0 * 0.008 / 4.05e9 * 1e9, rel=1e-12) and round(ug_m3, 1) == 2.4
    assert out[0, 0, 0] == 0.0  # the air's residence time is not folded
    assert round(float(per_emission(1200.0, cell_area, SOURCE_LAYER_M))) == 296
    assert per_emission(1200.0, cell_area, SOURCE_LAYER_M) * 0.008 == pytest.approx(ug_m3, rel=1e-12)


def test_verify_reads_hourly_footprints_and_refuses_longer_means(ds, tmp_path):
    """`airshed verify`'s Jacobian from a footprint file: hourly means plug in, 6-h means are refused."""
    from airshed.footprint import run_footprints
    from airshed.verification.sensitivity import station_sensitivity

    with pytest.raises(DataError, match="6-h means.*footprint.averaging_h = 1"):
        station_sensitivity(ds, "footprint file")
    cfg = case_config(run={"end": "2017-12-01T03:00:00"},
                      footprint={"averaging_h": 1, "particles_per_period": 40})
    with xr.open_dataset(run_footprints(cfg, output=tmp_path / "hourly.nc", progress=False)) as opened:
        hourly = opened.load()
    sens = station_sensitivity(hourly, "footprint file")
    assert sens.run_hours == 3 and sens.stations == tuple(ds["station"].values)
    assert sens.contribution.shape == (3, 13, *(ds.sizes[d] for d in ("source_region", "sector", "species")))
    np.testing.assert_array_equal(sens.contribution, hourly["station_contribution"].values)
    assert sens.emission_total.sum() > 0 and sens.spread is None  # no gridded concentration in the file
