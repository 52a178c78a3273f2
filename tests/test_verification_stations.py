"""Station sampling in the run pipeline: the sampler, the run-file variables, partitions, the config."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import builtin_case_config as small_config

from airshed.errors import AirshedInputError, ConfigError
from airshed.grids.grid import Grid
from airshed.grids.sampling import point_sampler
from airshed.runner import run_study
from airshed.verification.sensitivity import station_sensitivity
from airshed.verification.transport_error import station_receptor_region

STATIONS = Path(__file__).resolve().parents[1] / "airshed" / "data" / "stations_jjj_synthetic.csv"


@pytest.fixture(scope="module")
def grid():
    return Grid.from_bbox(110.0, 34.0, 124.0, 44.0, 27.0)


def test_bilinear_sampling_reproduces_linear_fields(grid):
    """Bilinear interpolation between cell centres is exact for a field linear in x and y."""
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(112.0, 122.0, 50), rng.uniform(35.0, 43.0, 50)
    s = point_sampler(grid, [f"p{k}" for k in range(50)], ["p"] * 50, lon, lat)
    xx, yy = np.meshgrid(grid.x, grid.y)
    field = 3.0 + 2e-5 * xx - 7e-6 * yy
    expected = 3.0 + 2e-5 * s.x - 7e-6 * s.y
    np.testing.assert_allclose(s.sample(field.reshape(1, -1))[:, 0], expected, rtol=1e-12)
    np.testing.assert_allclose(s.weights.sum(axis=1), 1.0, rtol=1e-15)
    cell = point_sampler(grid, ["a"], ["a"], [116.4], [39.9], "cell")
    j, i = grid.cell_index(cell.x, cell.y)
    assert cell.sample(field.reshape(1, -1))[0, 0] == field[j[0], i[0]]


def test_sampling_at_the_domain_edge_and_outside(grid):
    x_edge, y_edge = grid.x_edges[-1] - 1.0, grid.y_edges[0] + 1.0  # within half a cell of a corner
    lon, lat = grid.xy_to_lonlat(x_edge, y_edge)
    s = point_sampler(grid, ["corner"], ["corner"], [lon], [lat])
    assert s.weights.sum() == pytest.approx(1.0) and (s.weights >= 0).all()
    assert s.cells.max() < grid.nx * grid.ny
    with pytest.raises(AirshedInputError, match="station 'far' at lon=150"):
        point_sampler(grid, ["far"], ["far"], [150.0], [40.0], source="stations.csv")


def test_receptors_config_checks_the_file(tmp_path):
    with pytest.raises(ConfigError, match="receptors.stations"):
        small_config(tmp_path, "plume", receptors={"stations": "nope.csv"})
    cfg = small_config(tmp_path, "plume", receptors={"stations": str(STATIONS)})
    assert cfg.receptors.stations == STATIONS and cfg.receptors.sampling == "bilinear"


@pytest.fixture(scope="module", params=["plume", "lagrangian"])
def station_run(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"stations_{request.param}")
    cfg = small_config(tmp, request.param, hours=2, receptors={"stations": str(STATIONS)})
    return run_study(cfg, output=tmp / "run.nc", progress=False)


def test_station_variables_are_the_sampled_fields(station_run):
    with xr.open_dataset(station_run) as ds:
        sc, total = ds["station_contribution"], ds["station_concentration"]
        assert sc.dims == ("time", "station", "source_region", "sector", "species")
        assert sc.sizes["station"] == 80 and ds.attrs["station_sampling"] == "bilinear"
        assert float(total.sel(species="SO2").max()) > 0
        # the tags add up to the sampled total, which is the bilinear sample of the hourly field
        np.testing.assert_allclose(sc.sum(["source_region", "sector"]), total, rtol=1e-12, atol=1e-12)
        from airshed.grids.cf import grid_from_dataset

        grid = grid_from_dataset(ds)
        s = point_sampler(grid, ds["station"].values, ds["station_name"].values, ds["station_lon"].values,
                          ds["station_lat"].values)
        conc = ds["concentration"].transpose("time", "species", "y", "x").values
        sampled = s.sample(conc.reshape(*conc.shape[:2], -1))  # (station, time, species)
        np.testing.assert_allclose(sampled.transpose(1, 0, 2), total.values, rtol=1e-12, atol=1e-12)
        sens = station_sensitivity(ds)
        assert sens.spread is not None and (sens.spread >= 0).all()


def test_window_units_give_the_serial_station_series(tmp_path, station_run):
    """Release windows run as separate units (Dask threads) merge to the serial run's bits."""
    with xr.open_dataset(station_run) as serial:
        core = serial.attrs["core"]
        if core != "lagrangian":
            pytest.skip("release-window units are the particle core's partition")
        cfg = small_config(tmp_path, core, hours=2, receptors={"stations": str(STATIONS)},
                           compute={"scheduler": "threads", "workers": 2, "threads": 1})
        path = run_study(cfg, output=tmp_path / "units.nc", progress=False)
        with xr.open_dataset(path) as units:
            for name in ("station_contribution", "station_concentration", "concentration"):
                assert np.array_equal(serial[name].values, units[name].values), name


def test_osse_example_config_is_the_default_case_with_stations_and_the_truth():
    from airshed.config import load_config

    root = Path(__file__).resolve().parents[1] / "examples"
    osse, default = load_config(root / "verify_osse.toml"), load_config(root / "jjj.toml")
    assert osse.receptors.stations == STATIONS
    for table in ("grid", "meteorology", "emissions", "chemistry", "lagrangian", "regions"):
        assert getattr(osse, table) == getattr(default, table), table
    assert (osse.run.start, osse.run.end, osse.run.core, osse.run.seed) == \
        (default.run.start, default.run.end, default.run.core, default.run.seed)
    (truth,) = osse.scenarios
    cuts = {(tuple(c.regions), tuple(c.species)): c.change_percent for c in truth.changes}
    assert cuts[(("Tianjin",), ("NOx",))] == -30.0
    hebei = [k for k in cuts if "Shijiazhuang" in k[0]][0]
    assert len(hebei[0]) == 11 and cuts[hebei] == -20.0


def test_stations_fall_in_their_receptor_regions(station_run):
    """The region masks of the run place the synthetic network's stations in their own cities."""
    stations = pd.read_csv(STATIONS, comment="#").set_index("id")
    with xr.open_dataset(station_run) as ds:
        sens = station_sensitivity(ds, spread=False)
        receptors = [str(r) for r in ds["receptor_region"].values]
        index = station_receptor_region(ds, sens, receptors)
    found = np.array([receptors[i] if i >= 0 else "" for i in index])
    city = stations.loc[list(sens.stations), "city"].to_numpy()
    own = np.where(np.isin(city, receptors), city, "Hebei")  # the test case's regions may be provinces
    assert np.mean(found == own) >= 0.9  # a coarse test grid may put a station by a border next door
    assert np.mean(index >= 0) >= 0.95  # a coastal station in a half-sea 27 km cell is in no region
