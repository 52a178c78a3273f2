"""Health damages: the GEMM against its authors' calculator and a published JJJ burden, acute effects."""

from __future__ import annotations

import csv
import io
import math
from importlib import resources

import numpy as np
import pytest
from cooperation_runs import PRECURSORS, make_run

from airshed.cooperation.health import (
    acute_deaths,
    chronic_deaths,
    gemm_attributable_fraction,
    health_report,
    mortality_data,
)
from airshed.cooperation.policy import Health
from airshed.cooperation.runfile import run_tables

# GEMM Calculator (PNAS)_ab.xlsx (Burnett et al. 2018), sheet Burden_YesCN_NCD+LRI, row China: deaths in 2015
# at China's population-weighted 58 ug m-3, age-specific functions (column AN) and the all-age one (AS)
CHINA_2015_AGE_SPECIFIC = 2_439_962.3978107679
CHINA_2015_ALL_AGE = 2_633_488.7883895854
CHINA_2015_POPULATION = 1_383_471_404


def _census(name: str) -> float:
    text = resources.files("airshed.data").joinpath("population_census_2020.csv").read_text("utf-8")
    rows = csv.DictReader(io.StringIO("\n".join(r for r in text.splitlines() if not r.startswith("#"))))
    for row in rows:
        if name in row.values():
            return float(next(v for k, v in row.items() if "population" in k.lower()))
    raise KeyError(name)


def test_gemm_reproduces_the_authors_calculator_for_china_2015():
    data = mortality_data()
    deaths, _ = chronic_deaths(np.array([58.0]), np.array([CHINA_2015_POPULATION]), data)
    assert deaths[0] == pytest.approx(CHINA_2015_AGE_SPECIFIC, rel=1e-8)  # CSV deaths to 0.01
    # the all-age (25+) function on all NCD+LRI deaths over 25
    text = resources.files("airshed.data").joinpath("policy/gemm_ncd_lri.csv").read_text("utf-8")
    row = next(r for r in csv.DictReader(io.StringIO(
        "\n".join(x for x in text.splitlines() if not x.startswith("#")))) if r["age_group"] == "25+")
    af, _ = gemm_attributable_fraction(58.0, *(float(row[k]) for k in ("theta", "alpha", "mu", "nu")))
    over_25 = data.gemm.deaths_per_person.sum() * CHINA_2015_POPULATION
    assert af * over_25 == pytest.approx(CHINA_2015_ALL_AGE, rel=1e-8)


def test_uniform_46_ugm3_over_jjj_falls_in_the_published_interval():
    """Wu et al. (2020, Chin. J. Epidemiol. 41:1471): 193,800 (95 % CI 140,900-233,300) deaths in JJJ in 2015
    at a 46 ug m-3 regional mean (GEMM); shipped rates, 2020 census population, uniform 46.25 ug m-3."""
    population = sum(_census(name) for name in ("Beijing", "Tianjin", "Hebei"))
    assert 1.09e8 < population < 1.12e8
    deaths, _ = chronic_deaths(np.array([46.25]), np.array([population]))
    assert 140_900 <= deaths[0] <= 233_300
    assert deaths[0] == pytest.approx(170_500, rel=0.01)  # the value this data gives, for the record


def test_gemm_and_acute_derivatives_match_finite_differences():
    c = np.array([1.0, 2.4, 5.0, 20.0, 46.25, 80.0, 150.0, 300.0])
    pop = np.full(c.size, 1e7)
    h = 1e-4
    for fn in (lambda x: chronic_deaths(x, pop), lambda x: acute_deaths(x, pop, 5.0, 0.22, 2.4)):
        _, slope = fn(c)
        numeric = (fn(c + h)[0] - fn(c - h)[0]) / (2 * h)
        above = c > 2.4 + h
        np.testing.assert_allclose(slope[above], numeric[above], rtol=1e-6)
        assert np.all(slope[c < 2.4] == 0.0)
    # GEMM: the marginal effect per ug m-3 falls as PM2.5 rises (the supralinear shape at high levels)
    _, slope = chronic_deaths(c, pop)
    assert np.all(np.diff(slope[c >= 46.25]) < 0)


def test_acute_deaths_closed_form():
    data = mortality_data()
    deaths, marginal = acute_deaths(np.array([102.4]), np.array([2.0e7]), 5.0, 0.22, 2.4, data)
    expected_baseline = 2.0e7 * data.natural_deaths_per_person_year / 365.25 * 5.0
    beta = math.log(1.0022) / 10.0
    assert deaths[0] == pytest.approx(expected_baseline * (1 - math.exp(-beta * 100.0)), rel=1e-12)
    assert marginal[0] == pytest.approx(expected_baseline * beta * math.exp(-beta * 100.0), rel=1e-12)
    # China 2015: 8.65 million natural deaths in 1.383 billion people (6.25 per 1000 per year)
    assert data.natural_deaths_per_person_year == pytest.approx(8_649_484 / CHINA_2015_POPULATION, rel=1e-6)


def test_health_report_attributes_deaths_and_reports_chronic_only_for_a_year():
    sr = np.zeros((2, 3, 5))
    sr[0, 0, 0], sr[0, 1, 2], sr[1, 1, 0] = 20.0, 10.0, 8.0
    run = run_tables(make_run(["A", "B"], sr, np.full((3, 5), 100.0), background=np.array([30.0, 10.0]),
                              population=np.array([2e7, 5e6]), days=5.0))
    report = health_report(run, Health(), annual=False)
    assert report["chronic"] is None and "not an annual exposure" in report["chronic_note"]
    a = report["acute"]["receptors"]["A"]
    assert a["pm25_ugm3"] == pytest.approx(60.0)
    parts = a["sources"]
    assert sum(parts.values()) == pytest.approx(a["deaths"], rel=1e-12)
    assert parts["A"] == pytest.approx(a["deaths"] * 20 / 60) and parts["unattributed"] == pytest.approx(
        a["deaths"] * 30 / 60)
    assert a["value_yuan"] == pytest.approx(a["deaths"] * Health().vsl_yuan)
    annual = health_report(run, Health(), annual=True)
    chronic = annual["chronic"]["receptors"]["A"]
    assert "IF the 5-day period mean were the annual mean" in annual["chronic"]["unit"]
    assert chronic["deaths"] == pytest.approx(chronic_deaths(np.array([60.0]), np.array([2e7]))[0][0])
    assert set(PRECURSORS) == set(run.precursors)
