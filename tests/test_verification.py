"""The inversion: closed forms, synthetic-data coverage, the observation operator and errors, claims."""

import functools
import importlib
import json
import math

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
from typer.testing import CliRunner
from verification_fixture import START, toy_run

from airshed.cli import app
from airshed.errors import AirshedInputError, DataError
from airshed.inputs.inventory_uncertainty import read_inventory_intervals
from airshed.inputs.observations import Observations
from airshed.physics.no2_ratio import (
    ARM2_MAX_RATIO,
    ARM2_MIN_RATIO,
    _polynomial,
    arm2_ratio,
    d_no2_d_nox,
    no2_from_nox,
)
from airshed.uncertainty.inventory import read_inventory_uncertainty
from airshed.verification import Claim, ObservationErrors, PriorErrors, VerifySettings, verify
from airshed.verification.claims import CONSISTENT, CONTRADICTED, NOT_RESOLVABLE, verdict
from airshed.verification.inversion import BlockCovariance, linear_posterior, solve
from airshed.verification.observing import INSTRUMENT_FLOOR_UG_M3, INSTRUMENT_RELATIVE
from airshed.verification.priors import read_prior_error_table
from airshed.verification.sampling_error import particle_sampling_sigma


def linear(k):
    return lambda x: (k @ x, k)


# --- the analytical solution ----------------------------------------------------------------------------
def test_closed_form_two_sources_three_stations():
    """Station 1 sees source 1, station 2 source 2, station 3 both (unit sensitivities, unit errors).

    By hand: S_hat = (K^T K + I)^-1 = [[3, 1], [1, 3]]^-1 = [[3, -1], [-1, 3]] / 8; y - K x_a = (1, -1, -1),
    K^T (y - K x_a) = (0, -2), so x_hat = x_a + S_hat (0, -2) = (1.25, 0.25);
    A = I - S_hat = [[5, 1], [1, 5]] / 8, DOFS 1.25; residual (0.75, -0.25, -0.5) and prior part
    (0.25, -0.75): chi2 = (0.875 + 0.625) / 3 = 0.5.
    """
    k = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = np.array([2.0, 0.0, 1.0])
    x_a = np.array([1.0, 1.0])
    post = solve(linear(k), y, x_a, np.eye(2), BlockCovariance([(np.arange(3), np.eye(3))], 3))
    np.testing.assert_allclose(post.x, [1.25, 0.25], rtol=0, atol=1e-12)
    np.testing.assert_allclose(post.covariance, np.array([[3.0, -1.0], [-1.0, 3.0]]) / 8, atol=1e-12)
    np.testing.assert_allclose(post.averaging_kernel, np.array([[5.0, 1.0], [1.0, 5.0]]) / 8, atol=1e-12)
    assert post.dofs == pytest.approx(1.25, abs=1e-12)
    assert post.chi2 == pytest.approx(0.5, abs=1e-12)
    assert (post.chi2_obs, post.chi2_prior) == (pytest.approx(0.875 / 3), pytest.approx(0.625 / 3))
    assert post.iterations == 2 and post.converged  # the second Gauss-Newton solve confirms the first
    x_m, s_m = linear_posterior(k, y, x_a, np.eye(2), np.eye(3))  # the m-space form agrees
    np.testing.assert_allclose(x_m, post.x, atol=1e-12)
    np.testing.assert_allclose(s_m, post.covariance, atol=1e-12)


def test_posterior_intervals_cover_the_truth_in_95_percent_of_synthetic_trials():
    """FLEXINVERT-style synthetic-data test: truth drawn from the prior, data with drawn errors."""
    rng = np.random.default_rng(18)
    n, m, trials = 4, 40, 1000
    sa = 0.25 * np.exp(-np.abs(np.subtract.outer(np.arange(n), np.arange(n))) / 2.0)  # correlated prior
    x_a = np.ones(n)
    inside, chi2 = 0, []
    for _ in range(trials):
        k = rng.uniform(0.0, 2.0, (m, n))
        so = np.diag(rng.uniform(0.2, 1.0, m))
        x_true = rng.multivariate_normal(x_a, sa)
        y = k @ x_true + rng.multivariate_normal(np.zeros(m), so)
        post = solve(linear(k), y, x_a, sa, BlockCovariance([(np.arange(m), so)], m))
        inside += int(np.sum(np.abs(post.x - x_true) < 1.959964 * post.sigma))
        chi2.append(post.chi2)
    coverage = inside / (trials * n)
    assert 0.935 < coverage < 0.965
    assert np.mean(chi2) == pytest.approx(1.0, abs=0.02)


# --- the whole chain on a toy run -----------------------------------------------------------------------
def two_source_run(hours=48, nox=False):
    """Sources A and B, stations 1-3: 1 sees A, 2 sees B, 3 both; contributions vary by hour."""
    t = np.arange(hours)
    shape = 40.0 + 20.0 * np.sin(2 * np.pi * t / 24.0)  # a diurnal cycle, ug m-3 per unit emission
    c = np.zeros((hours, 3, 2, 1))
    c[:, 0, 0, 0] = shape
    c[:, 1, 1, 0] = 1.5 * shape
    c[:, 2, 0, 0] = 0.6 * shape
    c[:, 2, 1, 0] = 0.5 * shape[::-1]
    species = "NOx" if nox else "SO2"
    ds = toy_run({species: (8.0 if nox else 1.0) * c}, ["A", "B"], ["power"], ["S1", "S2", "S3"],
                 {species: np.array([[100.0], [300.0]])})
    return ds, c * (8.0 if nox else 1.0)


def observations_of(ds, values, species):
    t, n = values.shape
    times = ds["time"].values
    return Observations(pd.DataFrame({"station": np.tile(ds["station"].values.astype(str), t),
                                      "time": np.repeat(times, n), "species": species,
                                      "value": values.ravel()}))


def test_toy_run_gives_the_closed_form_of_its_own_jacobian():
    ds, c = two_source_run()
    truth = np.array([0.8, 1.3])
    y = np.einsum("tnrk,r->tn", c, truth) + 2.0  # 2 ug m-3 of background
    v = verify(ds, observations_of(ds, y, "SO2"), VerifySettings(species=("SO2",), average_hours=24))
    rows = v.rows
    f, k = v.system.forward(v.posterior.prior, rows)
    so = BlockCovariance(v.system.covariance_blocks(rows), rows.size).dense()
    x_hat, s_hat = linear_posterior(k, v.system.rows["value"].to_numpy()[rows], v.posterior.prior,
                                    v.posterior.prior_covariance, so)
    np.testing.assert_allclose(v.posterior.x, x_hat, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(v.posterior.covariance, s_hat, rtol=1e-8, atol=1e-14)
    # Jacobian of a daily mean = the mean sensitivity of its hours; background counts 1
    assert v.state.labels() == ["A/power/SO2@0", "B/power/SO2@0", "background/SO2@0"]
    first_day = (v.system.rows.iloc[rows]["window"] == 0).to_numpy()
    np.testing.assert_allclose(k[first_day, :2], c[:24].mean(axis=0)[..., 0], rtol=1e-12)
    np.testing.assert_allclose(k[:, 2], 1.0)


def test_toy_run_recovers_the_truth_when_the_data_dominate():
    ds, c = two_source_run(hours=96)
    truth = np.array([0.8, 1.3])
    y = np.einsum("tnrk,r->tn", c, truth)
    settings = VerifySettings(species=("SO2",), average_hours=1,
                              errors=ObservationErrors(transport_fraction=0.02, correlation_hours=0.0))
    v = verify(ds, observations_of(ds, y, "SO2"), settings)
    np.testing.assert_allclose(v.posterior.x[:2], truth, atol=0.01)
    assert np.all(np.diag(v.posterior.averaging_kernel)[:2] > 0.99)
    assert v.posterior.chi2 < 0.5  # error-free data: much less misfit than the errors allow


def test_no2_operator_is_solved_by_gauss_newton():
    """NO2 = ARM2 ratio x NOx is nonlinear; the iterations find the truth from NO2 alone."""
    ds, c = two_source_run(hours=72, nox=True)  # NOx 160-480 ug m-3: the ratio falls from 0.9 to 0.5
    truth = np.array([0.7, 1.2])
    no2 = no2_from_nox(np.einsum("tnrk,r->tn", c, truth))
    settings = VerifySettings(species=("NO2",), average_hours=1,
                              errors=ObservationErrors(transport_fraction=0.02, correlation_hours=0.0))
    v = verify(ds, observations_of(ds, no2, "NO2"), settings)
    assert v.posterior.converged and v.posterior.iterations > 2
    np.testing.assert_allclose(v.posterior.x[:2], truth, atol=0.01)


def arm2_polynomial(nox):
    """The ARM2 ratio polynomial, unbounded, at one NOx value (ug m-3)."""
    return float(_polynomial(np.array([nox]))[0][0])


def gauss_newton(forward, y, x_a, sa, so, iterations):
    """Plain Gauss-Newton, n-form (Rodgers 2000, sec. 5.3): the iterates x_1..x_N."""
    x, out = x_a.copy(), []
    for _ in range(iterations):
        f, k = forward(x)
        hessian = k.T @ np.linalg.solve(so, k) + np.linalg.inv(sa)
        x = x_a + np.linalg.solve(hessian, k.T @ np.linalg.solve(so, y - f + k @ (x - x_a)))
        out.append(float(x[0]))
    return np.array(out)


def kinked(x):
    """F(x) = 2x up to x = 1, then 2 + (x - 1) / 2: continuous, its slope jumps from 2 to 1/2 (as ARM2's)."""
    above = x[0] > 1.0
    return np.array([2.0 + 0.5 * (x[0] - 1.0) if above else 2.0 * x[0]]), np.array([[0.5 if above else 2.0]])


def test_levenberg_marquardt_finds_the_minimum_on_a_kink_where_gauss_newton_cycles():
    """Closed form. x_a = 0, Sa = 1, So = 0.01, y = 2.01. Each side's cost is a quadratic:

    left (F = 2x):  J = (2.01 - 2x)^2 / 0.01 + x^2, minimum at 402/401 = 1.00249 -- beyond the kink;
    right (F = 1.5 + x/2): J = (0.51 - x/2)^2 / 0.01 + x^2, minimum at 25.5/26 = 0.98077 -- before it.
    So the minimum of J is the kink x = 1 (dJ/dx = -2 from the left, +1 from the right), J(1) = 1.01, and
    Gauss-Newton, which jumps to the minimum of the side it stands on, cycles between the two forever.
    """
    y, x_a, sa, so = np.array([2.01]), np.array([0.0]), np.eye(1), 0.01 * np.eye(1)
    cycle = gauss_newton(kinked, y, x_a, sa, so, 8)
    np.testing.assert_allclose(cycle, [402 / 401, 25.5 / 26] * 4, rtol=1e-14)
    post = solve(kinked, y, x_a, sa, BlockCovariance([(np.arange(1), so)], 1))
    assert post.converged and post.step_d2 < 1e-8
    sigma = 1 / math.sqrt(401)  # posterior sigma with the left slope (x_hat <= 1)
    assert post.sigma[0] == pytest.approx(sigma, rel=1e-9)
    assert abs(post.x[0] - 1.0) < 1e-4 * sigma  # measured 9e-7 (2e-5 sigma)
    assert post.chi2 == pytest.approx(1.01, abs=1e-5)  # m = 1: chi2 = J
    for x in (402 / 401, 25.5 / 26):  # both points of the cycle cost more
        assert ((2.01 - kinked(np.array([x]))[0][0]) ** 2 / 0.01 + x ** 2) > 1.01 + 1e-4


def test_levenberg_marquardt_finds_the_arm2_cap_where_gauss_newton_cycles():
    """NO2 of one source through the real ARM2 ratio, NOx = 100 x ug m-3, y = 103.2, x_a = 1, Sa = 0.1^2,
    So = 1. The minimum is where the ratio leaves its 0.9 cap, NOx 114.4076 ug m-3 (x = 1.144076): with
    J = (y - F)^2 / So + (x - x_a)^2 / Sa and y - F = 0.2332 there, dJ/dx = -2 * 90 * 0.2332 + 2 * 0.144076 /
    0.01 = -13.2 from the left (slope 0.9 * 100) and -2 * 55.9 * 0.2332 + 28.8 = +2.7 from the right."""
    kink = scipy.optimize.brentq(lambda n: arm2_polynomial(n) - ARM2_MAX_RATIO, 50.0, 200.0, xtol=1e-13) / 100

    def forward(x):
        return no2_from_nox(100.0 * x), 100.0 * d_no2_d_nox(100.0 * x)[:, None]

    y, x_a, sa, so = np.array([103.2]), np.array([1.0]), 0.01 * np.eye(1), np.eye(1)
    assert 114.40 < 100 * kink < 114.41
    cycle = gauss_newton(forward, y, x_a, sa, so, 20) - kink
    np.testing.assert_allclose(cycle[::2], cycle[0], rtol=1e-9)  # a 2-cycle straddling the kink:
    np.testing.assert_allclose(cycle[1::2], cycle[1], rtol=1e-9)  # +0.00080 and -0.00043
    assert cycle[0] > 5e-4 and cycle[1] < -3e-4
    post = solve(forward, y, x_a, sa, BlockCovariance([(np.arange(1), so)], 1))
    assert post.converged
    assert abs(post.x[0] - kink) < 1e-4 * post.sigma[0]  # measured 1.2e-7 (1e-5 sigma; sigma 0.011)


def test_an_iteration_that_does_not_converge_says_so(tmp_path, monkeypatch):
    """Stopped early: converged is False, the estimate is the lowest-cost iterate, verify notes it and the
    command line warns on stderr (and writes converged: false)."""
    y, x_a, sa, so = np.array([2.01]), np.array([0.0]), np.eye(1), 0.01 * np.eye(1)
    post = solve(kinked, y, x_a, sa, BlockCovariance([(np.arange(1), so)], 1), max_iterations=1)
    assert not post.converged and post.iterations == 1
    assert post.x[0] == pytest.approx(402 / 401)  # the first step lowered the cost: J 404.01 -> 1.0125
    ds, c = two_source_run(hours=72, nox=True)
    run = tmp_path / "run.nc"
    ds.to_netcdf(run)
    frame = observations_of(ds, no2_from_nox(np.einsum("tnrk,r->tn", c, [0.7, 1.2])), "NO2").frame
    pd.DataFrame({"station": frame["station"], "time": frame["time"].dt.strftime("%Y-%m-%dT%H:%M"),
                  "species": "NO2", "value": frame["value"], "unit": "ug m-3"}).to_csv(tmp_path / "obs.csv",
                                                                                        index=False)
    verify_module = importlib.import_module("airshed.verification.verify")
    monkeypatch.setattr(verify_module, "solve", functools.partial(solve, max_iterations=1))
    result = CliRunner().invoke(app, ["verify", str(run), "--observations", str(tmp_path / "obs.csv"),
                                      "--species", "NO2", "--average-hours", "1", "--json",
                                      str(tmp_path / "v.json")])
    assert result.exit_code == 0, result.output
    assert "warning: the inversion did not converge in 1 iterations" in result.output
    assert "did NOT converge" in result.output  # the note under the tables
    assert json.loads((tmp_path / "v.json").read_text())["diagnostics"]["converged"] is False


def test_arm2_ratio_bounds_and_derivative():
    nox = np.linspace(0.0, 1200.0, 601)
    r = arm2_ratio(nox)
    assert r.max() == ARM2_MAX_RATIO and r.min() == ARM2_MIN_RATIO
    # NOx in ug m-3, as AERMOD's ARM2_CALC takes it: the cap holds to 115 ug m-3, the floor from 284 ug m-3
    assert arm2_ratio(np.array([114.0]))[0] == 0.9 and arm2_ratio(np.array([116.0]))[0] < 0.9
    assert arm2_ratio(np.array([283.0]))[0] > 0.5 and arm2_ratio(np.array([285.0]))[0] == 0.5
    assert arm2_ratio(np.array([200.0]))[0] == pytest.approx(0.6682, abs=1e-4)  # the polynomial at 200
    h = 1e-4
    x = np.linspace(5.0, 1200.0, 97)
    central = (no2_from_nox(x + h) - no2_from_nox(x - h)) / (2 * h)
    np.testing.assert_allclose(d_no2_d_nox(x), central, atol=1e-6)
    assert np.all(np.diff(no2_from_nox(nox)) >= 0)  # NO2 never falls when NOx rises


# --- errors -------------------------------------------------------------------------------------------
def test_averaging_reduces_each_error_as_its_correlation_allows():
    """Daily mean of a constant series: instrument variance / n, model variance x mean of rho^|i-j|."""
    ds, c = two_source_run(hours=24)
    c[:] = 50.0
    ds["station_contribution"][:] = 0.0
    ds["station_contribution"].loc[{"source_region": "A", "species": "SO2", "station": "S1"}] = 50.0
    tau = 6.0
    settings = VerifySettings(species=("SO2",), average_hours=24,
                              errors=ObservationErrors(transport_fraction=0.3, correlation_hours=tau))
    y = np.full((24, 3), 50.0)
    v = verify(ds, observations_of(ds, y, "SO2"), settings)
    blocks = v.system.covariance_blocks(v.rows)
    variance = {int(v.system.rows.iloc[v.rows[pos[0]]]["station_index"]): m[0, 0] for pos, m in blocks}
    lag = np.abs(np.subtract.outer(np.arange(24), np.arange(24)))
    inst = INSTRUMENT_FLOOR_UG_M3["SO2"] ** 2 + (INSTRUMENT_RELATIVE["SO2"] * 50.0) ** 2
    model = (0.3 * 50.0) ** 2 * np.exp(-lag / tau).mean()
    assert variance[0] == pytest.approx(inst / 24 + model, rel=1e-12)
    assert variance[1] == pytest.approx(INSTRUMENT_FLOOR_UG_M3["SO2"] ** 2 / 24, rel=1e-12)  # sees nothing


def test_one_inventory_table_for_the_ensemble_and_the_prior():
    """verify's prior and the inventory ensemble read the same rows of the same file."""
    rows = read_inventory_intervals().rows
    table = read_prior_error_table()
    assert read_inventory_intervals().source == "airshed/data/inventory_uncertainty.csv"
    assert list(table["species"]) == list(rows["species"]) == ["SO2", "NOx", "PM2.5"]
    ensemble = read_inventory_uncertainty()
    for _, row in table.iterrows():  # the ensemble's 95 % interval is the one the prior's sigma spans
        lo, hi = ensemble.interval(row["sector"], row["species"])
        assert row["sigma"] == pytest.approx((hi - lo) / (2 * 1.959964), rel=1e-6)


def test_region_rows_in_the_prior_table(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("region,sector,species,lower_percent,upper_percent\nall,all,SO2,-10,10\n"
                    "Tianjin,all,SO2,-30,30\n")
    table = read_prior_error_table(path)
    assert dict(zip(table["region"], table["sigma"], strict=True)) == pytest.approx(
        {"all": 20 / (2 * 1.959964) / 100, "Tianjin": 60 / (2 * 1.959964) / 100}, rel=1e-6)
    with pytest.raises(AirshedInputError, match="row 2: region 'Tianjin': the inventory ensemble takes one"):
        read_inventory_uncertainty(path)
    path.write_text("species,sector,lower_95_percent,upper_95_percent\nSO2,all,-14,13\n")
    with pytest.raises(AirshedInputError, match="missing column.s. lower_percent, upper_percent"):
        read_prior_error_table(path)


def test_prior_table_and_window_structure():
    table = read_prior_error_table()
    sigma = dict(zip(table["species"], table["sigma"], strict=True))
    assert sigma["SO2"] == pytest.approx(27 / (2 * 1.959964) / 100, rel=1e-6)  # Zhao et al. 2011: -14/+13 %
    assert sigma["NOx"] == pytest.approx(50 / (2 * 1.959964) / 100, rel=1e-6)  # -13/+37 %
    ds, c = two_source_run(hours=48)
    y = np.einsum("tnrk,r->tn", c, [1.0, 1.0])
    v = verify(ds, observations_of(ds, y, "SO2"), VerifySettings(species=("SO2",), window="1d"))
    sa = v.posterior.prior_covariance
    a0, a1 = v.state.element_index("A", "power", "SO2", 0), v.state.element_index("A", "power", "SO2", 1)
    assert sa[a0, a0] == pytest.approx(sigma["SO2"] ** 2 + 0.5 ** 2)
    # the inventory error is the same bias in both windows: it cancels from the change between them
    assert sa[a0, a0] + sa[a1, a1] - 2 * sa[a0, a1] == pytest.approx(2 * 0.5 ** 2)
    b0 = v.state.element_index("B", "power", "SO2", 0)
    assert sa[a0, b0] == 0.0  # regions independent by default


# --- claims -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("estimate", "sigma", "information", "claimed", "expected"), [
    (-0.20, 0.03, 0.9, -0.20, CONSISTENT),
    (-0.20, 0.03, 0.9, -0.40, CONTRADICTED),
    (-0.20, 0.03, 0.2, -0.40, NOT_RESOLVABLE),  # outside the interval, but the prior decides
    (-0.02, 0.08, 0.9, -0.10, NOT_RESOLVABLE),  # inside, but the interval also holds "no change"
    (0.00, 0.03, 0.9, 0.00, NOT_RESOLVABLE),
])
def test_verdicts(estimate, sigma, information, claimed, expected):
    assert verdict(estimate, sigma, information, claimed)[0] == expected


def test_claims_on_the_toy_run():
    ds, c = two_source_run(hours=96)
    truth = np.array([0.8, 1.0])  # A cut 20 %
    y = np.einsum("tnrk,r->tn", c, truth)
    settings = VerifySettings(species=("SO2",), average_hours=1,
                              errors=ObservationErrors(transport_fraction=0.05, correlation_hours=0.0))
    v = verify(ds, observations_of(ds, y, "SO2"), settings)
    assert v.check(Claim.parse("region=A,species=SO2,percent=-20")).verdict == CONSISTENT
    twice = v.check(Claim.parse("region=A,species=SO2,percent=-40"))
    assert twice.verdict == CONTRADICTED and twice.estimate_percent == pytest.approx(-20, abs=1)
    assert twice.informative_stations[0][0] in ("S1", "S3")
    coarse = v.check(Claim.parse("region=A,species=SO2,percent=-20,sector=industry"))
    assert coarse.verdict == NOT_RESOLVABLE and "no emissions" in coarse.reason


def test_stations_that_would_resolve_a_claim():
    """Only station 2 (which sees B alone) observes: A's cut is unresolvable, and S1 would resolve it."""
    ds, c = two_source_run(hours=96)
    y = np.einsum("tnrk,r->tn", c, [0.8, 1.0])
    obs = observations_of(ds, y, "SO2")
    obs = Observations(obs.frame[obs.frame["station"] == "S2"].reset_index(drop=True))
    settings = VerifySettings(species=("SO2",), average_hours=1,
                              errors=ObservationErrors(transport_fraction=0.05, correlation_hours=0.0))
    v = verify(ds, obs, settings)
    result = v.check(Claim.parse("region=A,species=SO2,percent=-20"))
    assert result.verdict == NOT_RESOLVABLE and result.information < 0.5
    assert result.resolving_stations[0][0] in ("S1", "S3")
    assert result.resolving_stations[-1][1] < 10.0  # sigma after, percent


@pytest.mark.parametrize(("text", "message"), [
    ("region=A,species=SO2", "missing percent"),
    ("region=A,species=SO2,percent=x", "not a number"),
    ("region=A,species=SO2,percent=-120", ">= -100"),
    ("region=A,species=SO2,percent=-20,colour=red", "unknown key"),
    ("A,SO2,-20", "key=value"),
])
def test_bad_claims(text, message):
    with pytest.raises(AirshedInputError, match=message):
        Claim.parse(text)


def test_unknown_claim_region():
    ds, c = two_source_run(hours=24)
    v = verify(ds, observations_of(ds, np.einsum("tnrk,r->tn", c, [1.0, 1.0]), "SO2"),
               VerifySettings(species=("SO2",)))
    with pytest.raises(AirshedInputError, match="claim region 'Atlantis'"):
        v.check(Claim.parse("region=Atlantis,species=SO2,percent=-20"))


def test_particle_sampling_error_is_estimated_from_the_series():
    """Poisson-like noise (variance a c) on a smooth diurnal signal: a recovered within 2 %."""
    rng = np.random.default_rng(1)
    hours = np.arange(240)[:, None]
    signal = 20.0 + 10.0 * np.sin(2 * np.pi * hours / 24) * np.ones((1, 40))
    noisy = signal + np.sqrt(4.0 * signal) * rng.standard_normal(signal.shape)
    a = np.sum(particle_sampling_sigma(noisy) ** 2) / np.sum(noisy)
    assert a == pytest.approx(4.0, rel=0.02)
    smooth = particle_sampling_sigma(signal)  # the signal's curvature alone: 1 % of the noise above
    assert np.max(smooth ** 2 / signal) < 0.01 * 4.0
    assert np.all(particle_sampling_sigma(np.zeros((24, 2))) == 0.0)


def test_sampling_error_only_for_particle_runs():
    """A run said to come from the particle core gets the sampling term; from the plume it does not."""
    ds, c = two_source_run(hours=48)
    y = np.einsum("tnrk,r->tn", c, [1.0, 1.0])
    obs = observations_of(ds, y, "SO2")
    settings = VerifySettings(species=("SO2",))
    plume = verify(ds.assign_attrs(core="plume"), obs, settings)
    particle = verify(ds.assign_attrs(core="lagrangian"), obs, settings)
    inst_plume, _ = plume.system.hourly_errors("SO2")
    inst_particle, _ = particle.system.hourly_errors("SO2")
    expected = np.sqrt(inst_plume ** 2 + particle_sampling_sigma(plume.system.prior_hourly("SO2")) ** 2)
    np.testing.assert_allclose(inst_particle, expected, rtol=1e-12)
    assert any("particle sampling error" in n for n in particle.notes)
    assert not any("particle sampling error" in n for n in plume.notes)


def test_prior_error_settings_are_checked():
    with pytest.raises(AirshedInputError, match="change_percent"):
        PriorErrors(change_percent=-1.0)
    with pytest.raises(AirshedInputError, match="transport error fraction"):
        ObservationErrors(transport_fraction=math.nan)


# --- command line ---------------------------------------------------------------------------------------
def test_verify_command(tmp_path):
    ds, c = two_source_run(hours=48)
    run = tmp_path / "run.nc"
    ds.to_netcdf(run)
    y = np.einsum("tnrk,r->tn", c, [0.8, 1.0])
    frame = observations_of(ds, y, "SO2").frame
    pd.DataFrame({"station": frame["station"], "time": frame["time"].dt.strftime("%Y-%m-%dT%H:%M"),
                  "species": "SO2", "value": frame["value"], "unit": "ug m-3"}).to_csv(tmp_path / "obs.csv",
                                                                                        index=False)
    runner = CliRunner()
    result = runner.invoke(app, ["verify", str(run), "--observations", str(tmp_path / "obs.csv"),
                                 "--species", "SO2", "--claim", "region=A,species=SO2,percent=-20",
                                 "--json", str(tmp_path / "v.json")])
    assert result.exit_code == 0, result.output
    assert "claim check" in result.output and "DOFS" in result.output
    data = json.loads((tmp_path / "v.json").read_text())
    assert data["diagnostics"]["observations"] == 6
    assert data["claims"][0]["verdict"] in (CONSISTENT, NOT_RESOLVABLE)
    bad = runner.invoke(app, ["verify", str(run), "--observations", str(tmp_path / "obs.csv"),
                              "--claim", "region=A"])
    assert bad.exit_code == 2 and "error: --claim" in bad.output
    (tmp_path / "prior.csv").write_text("sector,species,lower_percent,upper_percent\nall,SO2,5,10\n")
    bad_prior = runner.invoke(app, ["verify", str(run), "--observations", str(tmp_path / "obs.csv"),
                                    "--prior-error", str(tmp_path / "prior.csv")])
    assert bad_prior.exit_code == 2
    assert "prior.csv, row 1: expected -100 < lower_percent < 0" in bad_prior.output
    (tmp_path / "ppb.csv").write_text("station,time,species,value,unit\nS1,2017-12-01T05:00,SO2,4,ppb\n")
    wrong_unit = runner.invoke(app, ["verify", str(run), "--observations", str(tmp_path / "ppb.csv")])
    assert wrong_unit.exit_code == 2 and len(wrong_unit.output.strip().splitlines()) == 1
    assert "ppb.csv: unit 'ppb' is not a mass concentration" in wrong_unit.output
    plain = tmp_path / "plain.nc"
    ds.drop_vars(["station_contribution"]).to_netcdf(plain)
    missing = runner.invoke(app, ["verify", str(plain), "--observations", str(tmp_path / "obs.csv")])
    assert missing.exit_code == 2 and "[receptors] stations" in missing.output
    # the checks every command makes on a run file (trial 10, items 4 and 5)
    toml = tmp_path / "config.toml"
    toml.write_text("[run]\nstart = 2017-12-01\n")
    not_netcdf = runner.invoke(app, ["verify", str(toml), "--observations", str(tmp_path / "obs.csv")])
    assert not_netcdf.exit_code == 2 and len(not_netcdf.output.strip().splitlines()) == 1
    assert f"cannot read run file {toml} as NetCDF: it is not a NetCDF" in not_netcdf.output
    newer = tmp_path / "newer.nc"
    ds.assign_attrs(run_file_format=99).to_netcdf(newer)
    refused = runner.invoke(app, ["verify", str(newer), "--observations", str(tmp_path / "obs.csv")])
    assert refused.exit_code == 2 and "in run-file format 99" in refused.output
    unwritable = runner.invoke(app, ["verify", str(run), "--observations", str(tmp_path / "obs.csv"),
                                     "--species", "SO2", "--json", str(tmp_path / "no" / "v.json")])
    assert unwritable.exit_code == 2 and "does not exist" in unwritable.output
    assert " ".join(unwritable.output.split()).endswith("choose another with --json")
    (tmp_path / "late.csv").write_text("station,time,species,value,unit\nS1,2018-03-01T05:00,SO2,4,ug m-3\n")
    late = runner.invoke(app, ["verify", str(run), "--observations", str(tmp_path / "late.csv")])
    assert late.exit_code == 2 and "within the run period (2017-12-01T00:00 to 2017-12-03T00:00 UTC)" \
        in " ".join(late.output.split())
    # species: one a run cannot be compared with, a claim about one the run does not emit (trial 10, item 11)
    ozone = runner.invoke(app, ["verify", str(run), "--observations", str(tmp_path / "obs.csv"),
                                "--species", "O3"])
    assert ozone.exit_code == 2 and len(ozone.output.strip().splitlines()) == 1
    assert "--species 'O3': not an observed species" in ozone.output and "SO2, NO2, PM2.5" in ozone.output
    co = runner.invoke(app, ["verify", str(run), "--observations", str(tmp_path / "obs.csv"),
                             "--species", "SO2", "--claim", "region=A,species=CO,percent=-20"])
    assert co.exit_code == 2 and len(co.output.strip().splitlines()) == 1
    assert "species 'CO' is not emitted in this run; its emitted species: SO2" in co.output


def test_start_is_the_fixture_start():
    assert START == np.datetime64("2017-12-01T00:00")


def test_transport_error_from_an_ensemble_of_member_runs(tmp_path):
    """Two members whose station series differ by 10 % give a spread of 0.1/sqrt(2) x the mean level."""
    ds, c = two_source_run(hours=24)
    paths = []
    for k, scale in enumerate((0.95, 1.05)):
        member = ds.copy(deep=True)
        member["station_concentration"] = member["station_concentration"] * scale
        paths.append(tmp_path / f"member{k}.nc")
        member.to_netcdf(paths[-1])
    y = np.einsum("tnrk,r->tn", c, [1.0, 1.0])
    settings = VerifySettings(species=("SO2",), average_hours=24,
                              errors=ObservationErrors(correlation_hours=1e9))  # fully correlated over a day
    v = verify(ds, observations_of(ds, y, "SO2"), settings, transport_ensemble=paths)
    spread = v.system.errors.transport_spread[..., 0]
    np.testing.assert_allclose(spread, 0.1 * y / np.sqrt(2), rtol=1e-12)
    with pytest.raises(AirshedInputError, match="at least two"):
        verify(ds, observations_of(ds, y, "SO2"), settings, transport_ensemble=paths[:1])
    not_netcdf = tmp_path / "member.toml"
    not_netcdf.write_text("[run]\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"ensemble member .*member\.toml: cannot read it as a NetCDF run"):
        verify(ds, observations_of(ds, y, "SO2"), settings, transport_ensemble=[paths[0], not_netcdf])


def test_transport_error_from_the_run_files_meteorological_variance():
    """Receptor A: sources 10 and 30 ug m-3 with sd 2 and 3 -> 5/40; B: 5 and 5 with sd 1 and 1 -> 2/10."""
    ds, c = two_source_run(hours=48)
    sources = [str(r) for r in ds["source_region"].values]
    so2 = [str(x) for x in ds["species"].values].index("SO2")
    mean = np.zeros((2, len(sources), ds.sizes["species"]))
    mean[0, :2, so2], mean[1, :2, so2] = (10.0, 30.0), (5.0, 5.0)
    met = np.zeros_like(mean)
    met[0, :2, so2], met[1, :2, so2] = (4.0, 9.0), (1.0, 1.0)
    var = np.stack([0.01 * mean ** 2, met, np.full_like(mean, np.nan)])  # inventory, meteorology, sampling
    dims = ("receptor_region", "source_region", "species")
    with_ensemble = ds.assign(
        source_receptor=(dims, mean), source_receptor_variance=(("uncertainty_source", *dims), var)
    ).assign_coords(receptor_region=["A", "B"], uncertainty_source=["inventory", "meteorology", "sampling"])
    y = np.einsum("tnrk,r->tn", c, [1.0, 1.0])
    settings = VerifySettings(species=("SO2",), errors=ObservationErrors(correlation_hours=12.0))
    v = verify(with_ensemble, observations_of(ds, y, "SO2"), settings)
    # no region masks in the toy file: every station takes the larger relative error (B: 0.2)
    lag = np.abs(np.subtract.outer(np.arange(48), np.arange(48)))
    hourly = 0.2 / np.sqrt(np.exp(-lag / 12.0).mean())
    np.testing.assert_allclose(v.system.errors.transport_spread[..., 0], hourly * y, rtol=1e-12)
    assert any("meteorological ensemble variance" in n for n in v.notes)
    # meteorology not sampled (NaN, as `airshed run` writes it): the default fraction, said in a note
    var[1] = np.nan
    unsampled = with_ensemble.assign(source_receptor_variance=(("uncertainty_source", *dims), var))
    v = verify(unsampled, observations_of(ds, y, "SO2"), settings)
    assert v.system.errors.transport_spread is None
    assert any("transport error 30 % of the modelled value (the default" in n for n in v.notes)


def test_a_cut_in_one_window_is_found_in_that_window():
    """Daily state windows: A cut by 30 % on the second day only; claims by window."""
    ds, c = two_source_run(hours=96)
    scale = np.ones((96, 1, 2, 1))
    scale[24:48, :, 0] = 0.7
    y = (c * scale).sum(axis=(2, 3))
    settings = VerifySettings(species=("SO2",), average_hours=1, window="1d",
                              errors=ObservationErrors(transport_fraction=0.05, correlation_hours=0.0))
    v = verify(ds, observations_of(ds, y, "SO2"), settings)
    day2 = "start=2017-12-02T00:00,end=2017-12-03T00:00"
    result = v.check(Claim.parse(f"region=A,species=SO2,percent=-30,{day2}"))
    assert result.verdict == CONSISTENT and result.estimate_percent == pytest.approx(-30, abs=2)
    day3 = "start=2017-12-03T00:00,end=2017-12-04T00:00"
    other = v.check(Claim.parse(f"region=A,species=SO2,percent=-30,{day3}"))
    assert other.verdict == CONTRADICTED and other.estimate_percent == pytest.approx(0, abs=2)
    whole = v.check(Claim.parse("region=A,species=SO2,percent=-7.5"))  # a quarter of the run at -30 %
    assert whole.estimate_percent == pytest.approx(-7.5, abs=1)
    cut = v.check(Claim.parse("region=A,species=SO2,percent=-30,start=2017-12-02T12:00,end=2017-12-03T00:00"))
    assert cut.verdict == NOT_RESOLVABLE and "cuts the state window" in cut.reason


def test_claim_times_with_an_offset_are_utc():
    claim = Claim.parse("region=A,species=SO2,percent=-30,start=2017-12-02T08:00+08:00,end=2017-12-03T00:00Z")
    assert claim.start == np.datetime64("2017-12-02T00:00") and claim.end == np.datetime64("2017-12-03T00:00")
    with pytest.raises(AirshedInputError, match="not an ISO 8601"):
        Claim.parse("region=A,species=SO2,percent=-30,start=tomorrow")
