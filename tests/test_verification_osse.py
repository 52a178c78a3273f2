"""Observing-system simulation: synthetic observations from a run with known cuts, then `airshed verify`.

The reduced form, run by CI: a 27 km grid, one day, provinces as regions; the truth is a scenario run
(Hebei SO2 -20 %, Tianjin NOx -30 %) with another particle seed and noisy synthetic observations at the 80
stations of the synthetic network. The full form is ``python examples/verify_osse.py``: the default case
run twice, then the acceptance criteria of issue 18 over ten noise draws (README, Verification).
"""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import builtin_case_config as small_config

from airshed.config import ScenarioConfig
from airshed.runner import run_study
from airshed.verification import Claim, VerifySettings, verify
from airshed.verification.claims import CONSISTENT, CONTRADICTED
from airshed.verification.synthetic import synthetic_observations

ROOT = Path(__file__).resolve().parents[1]
STATIONS = ROOT / "airshed" / "data" / "stations_jjj_synthetic.csv"
TRUTH = {"name": "truth", "changes": [{"regions": ["Hebei"], "species": ["SO2"], "change_percent": -20.0},
                                      {"regions": ["Tianjin"], "species": ["NOx"], "change_percent": -30.0}]}


@pytest.mark.validation
def test_reduced_osse_recovers_the_cuts(tmp_path):
    tables = {"receptors": {"stations": str(STATIONS)}, "lagrangian": {"particles_per_hour": 8000}}
    prior_cfg = small_config(tmp_path, "lagrangian", run={"end": "2017-12-02T00:00:00"}, **tables)
    prior_cfg = prior_cfg.model_copy(update={"scenarios": [ScenarioConfig.model_validate(TRUTH)]})
    prior = run_study(prior_cfg, output=tmp_path / "prior.nc", progress=False)
    truth_cfg = prior_cfg.model_copy(update={"run": prior_cfg.run.model_copy(update={"seed": 8})})
    truth = run_study(truth_cfg, output=tmp_path / "truth.nc", progress=False, scenario="truth")
    with xr.open_dataset(truth) as ds:
        obs = synthetic_observations(ds, background={"SO2": 2.0, "NO2": 4.0, "PM2.5": 15.0}, seed=2018)
    with xr.open_dataset(prior) as ds:
        v = verify(ds, obs, VerifySettings(average_hours=6))
    table = v.region_table().set_index(["region", "species"])
    hebei, tianjin = table.loc[("Hebei", "SO2")], table.loc[("Tianjin", "NOx")]
    assert abs(hebei["change_percent"] + 20.0) < 10.0 and hebei["information"] > 0.5
    assert abs(tianjin["change_percent"] + 30.0) < 10.0 and tianjin["information"] > 0.5
    assert 0.3 < v.posterior.chi2 < 3.0
    assert v.posterior.converged
    assert v.check(Claim.parse("region=Hebei,species=SO2,percent=-20")).verdict == CONSISTENT
    assert v.check(Claim.parse("region=Hebei,species=SO2,percent=-40")).verdict == CONTRADICTED
    assert np.isfinite(v.posterior.x).all()


def test_synthetic_noise_with_a_given_transport_error_is_the_fraction_model_when_equal():
    """A per-station transport sigma equal to fraction x value draws exactly the fraction model's noise."""
    from airshed.verification.synthetic import true_station_values

    rng = np.random.default_rng(1)
    times = np.arange("2017-12-01T00", "2017-12-02T00", dtype="datetime64[h]").astype("datetime64[ns]")
    values = rng.uniform(5.0, 80.0, (times.size, 3, 3))
    ds = xr.Dataset({"station_concentration": (("time", "station", "species"), values)},
                    coords={"time": times, "station": ["a", "b", "c"], "species": ["SO2", "NOx", "PM2.5"]})
    species = ("SO2", "NO2", "PM2.5")
    spread = {o: np.full((times.size, 3), 1.5) for o in species}
    truth = true_station_values(ds, species)
    by_fraction = synthetic_observations(ds, species, model_fraction=0.2, seed=5, station_spread=spread)
    given = synthetic_observations(ds, species, seed=5, station_spread=spread,
                                   transport_sigma={o: 0.2 * truth[o] for o in species})
    np.testing.assert_array_equal(by_fraction.frame["value"].to_numpy(), given.frame["value"].to_numpy())
    # and a smaller transport error gives observations closer to the truth
    small = synthetic_observations(ds, species, seed=5, station_spread=spread,
                                   transport_sigma={o: 0.02 * truth[o] for o in species})
    frame = small.frame.set_index(["station", "species", "time"])["value"]
    wide = by_fraction.frame.set_index(["station", "species", "time"])["value"]
    exact = {o: pd_series(truth[o], times, o) for o in species}
    err_small = np.mean([(frame.xs(o, level="species") - exact[o]).abs().mean() for o in species])
    err_wide = np.mean([(wide.xs(o, level="species") - exact[o]).abs().mean() for o in species])
    assert err_small < err_wide


def pd_series(values, times, species):
    """(T, N) station values as a Series indexed like the observations (station, time)."""
    import pandas as pd

    stations = ["a", "b", "c"]
    index = pd.MultiIndex.from_product([stations, times], names=["station", "time"])
    return pd.Series(values.T.ravel(), index=index, name=species)
