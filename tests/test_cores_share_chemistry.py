"""Both cores apply one mechanism: the plume and the particle core side by side in a uniform wind.

One 10 m stack, copied into five sectors (five independent Monte Carlo replicates of the particle core,
identical plumes for the plume core), emits SO2, NOx and primary PM2.5 into a 5 m/s westerly, neutral,
800 m mixed layer (:func:`conftest.single_stack_config`), no deposition. Hours 9-12 are steady out to
160 km. Each core gives the crosswind integrals (sum over y of the near-surface concentration times dy)
of every species at four distances downwind (travel times 1.5 to 6.5 h), compared as ratios: product to
precursor, and product to the inert primary PM2.5 released with it (the share of the emission turned
into sulfate or nitrate by then, free of the cores' different dispersion).

The cores' dispersion itself differs here: 60-120 km downwind the particle core's crosswind integral of
the inert PM2.5 in its 50 m sampling layer was 1.34 times the well-mixed value Q / (u h) that the plume
core gives with the Euler vertical step, the particle core's default until 6 Dec 2026 (measured with this
case; the particle core's vertical profile is its own subject).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import single_stack_config

from airshed.cores import PeriodEmissions
from airshed.pipeline.study import emitted_rates, prepare_study

pytestmark = pytest.mark.slow  # end-to-end runs (pyproject.toml markers)

COPIES = 5
HOURS = 12
STEADY = slice(9, 12)  # the hours averaged
X_KM = (30.0, 60.0, 90.0, 120.0)
RAIN_MM_H = 1.0  # the rain variant: NAME's Lambda = 8.4e-5 s-1 for every tracer but NMVOC


def crosswind_integrals(cfg) -> dict[str, np.ndarray]:
    """{species: (replicate, len(X_KM))} crosswind integrals, ug m-2, averaged over the steady hours.

    ``"x"`` holds the distances of the columns (the cell centres nearest :data:`X_KM`), m.
    """
    study = prepare_study(cfg)
    em, grid, m = study.emissions, study.grid, study.mechanism
    core = study.core()
    fields = []
    for k in range(study.n_periods):
        t0, t1 = study.edges[k], study.edges[k + 1]
        area, points = em.rates_at(pd.Timestamp(t0 + (t1 - t0) / 2))
        a, p = emitted_rates(em, area, m.emitted, m.emitted), emitted_rates(em, points, m.emitted, m.emitted)
        tagged = core.period(study.met.at(t0), study.met.at(t1), PeriodEmissions(a, p, a, p), k * 3600.0,
                             (k + 1) * 3600.0)
        if k in range(HOURS)[STEADY]:
            fields.append(tagged)
    box = em.regions.index("box")
    mean = np.mean(fields, axis=0)[box * em.nsector:(box + 1) * em.nsector]  # the stacks' tags
    columns = [int(np.argmin(np.abs(grid.x - x * 1000.0))) for x in X_KM]
    by_tracer = mean[:, :, :, columns].sum(axis=2) * grid.dx  # (tag, tracer, column)
    return {"x": grid.x[columns], **{name: by_tracer[:, i] for i, name in enumerate(core.tracers)}}


@pytest.fixture(scope="module")
def both_cores(tmp_path_factory):
    from conftest import UNIFORM_FORMAT

    from airshed.inputs.meteorology.formats import MET_FORMATS

    MET_FORMATS["uniform"] = UNIFORM_FORMAT
    try:
        out = {}
        for core in ("plume", "lagrangian"):
            for weather, precip in (("", 0.0), ("_rain", RAIN_MM_H)):
                cfg = single_stack_config(
                    tmp_path_factory.mktemp(core), core, hours=HOURS, copies=COPIES, met={"precip": precip},
                    rates_kg_s={"SO2": 10.0, "NOx": 5.0, "PM2.5": 1.0, "NMVOC": 1.0},
                    chemistry={"dry_deposition_velocity_m_s": 0.0},
                    # no unresolved mesoscale motions (on by default since c6249a4): their along-wind
                    # velocity spread makes the mean age of the particles at x exceed x / u (slow particles
                    # linger), which raises the product/precursor ratio by about 2 % (measured: sulfate/SO2
                    # 0.02358 against the plume's 0.02308 at 30 km), a transport difference the plume core
                    # does not have
                    lagrangian={"particles_per_hour": 4000 * COPIES, "mesoscale_motions": False},
                )
                out[core + weather] = crosswind_integrals(cfg)
        yield out
    finally:
        MET_FORMATS.pop("uniform")


def test_the_plume_core_forms_sulfate_and_nitrate(both_cores):
    plume = both_cores["plume"]
    assert np.all(plume["sulfate"] > 0) and np.all(plume["nitrate"] > 0)
    # the five copies of the stack are identical plumes
    np.testing.assert_allclose(plume["sulfate"], plume["sulfate"][:1].repeat(COPIES, axis=0), rtol=1e-12)


def test_the_plume_core_conserves_the_inert_tracer(both_cores):
    """Mixed layer: the plume core's crosswind integral of primary PM2.5 tends to Q / (u h) (1 kg/s).

    At 57.5 km the near-surface value is still 0.13 % below the mixed one, from 87.5 km on within 1e-5.
    """
    plume = both_cores["plume"]["PM2.5"][0]
    np.testing.assert_allclose(plume[1], 1e9 / (5.0 * 800.0), rtol=2e-3)
    np.testing.assert_allclose(plume[2:], 1e9 / (5.0 * 800.0), rtol=1e-5)


@pytest.mark.parametrize(("product", "precursor", "yield_", "k_per_h"),
                         [("sulfate", "SO2", 96.0 / 64.0, 0.01), ("nitrate", "NOx", 62.0 / 46.0, 0.02)])
def test_product_to_precursor_ratio_is_the_same_in_both_cores(both_cores, product, precursor, yield_,
                                                              k_per_h):
    """Both follow y (exp(k t) - 1) at the travel time t = x / u.

    The particle core's ratio is set by the ages of the particles in the column, not by their number,
    so its replicates scatter by only 5e-4 to 7e-5 of it; it may differ from the plume's by their spread
    in age about x / u (along-wind turbulence, the slower wind below 10 m), allowed for by 1e-3 of the
    value (measured: 3e-4 to 7e-4).
    """
    t_h = both_cores["plume"]["x"] / 5.0 / 3600.0
    plume = both_cores["plume"][product][0] / both_cores["plume"][precursor][0]
    np.testing.assert_allclose(plume, yield_ * np.expm1(k_per_h * t_h), rtol=1e-3)
    particle = both_cores["lagrangian"][product] / both_cores["lagrangian"][precursor]
    error = particle.std(axis=0, ddof=1) / np.sqrt(COPIES)
    assert np.all(np.abs(particle.mean(axis=0) - plume) <= 3 * error + 1e-3 * plume), (particle, plume)


@pytest.mark.parametrize(("product", "precursor", "yield_", "k_per_h"),
                         [("sulfate", "SO2", 96.0 / 64.0, 0.01), ("nitrate", "NOx", 62.0 / 46.0, 0.02)])
def test_crosswind_integrated_product_per_inert_tracer_agrees_within_the_monte_carlo_error(
        both_cores, product, precursor, yield_, k_per_h):
    """Product per unit of the inert PM2.5 released with it: the share converted by then, q y (1 - e^-kt).

    Tolerance as for the ratio to the precursor (measured deviations 3e-4 to 7e-4 of the value).
    """
    q_ratio = {"SO2": 10.0, "NOx": 5.0}[precursor]  # precursor per PM2.5 emitted
    t_h = both_cores["plume"]["x"] / 5.0 / 3600.0
    plume = both_cores["plume"][product][0] / both_cores["plume"]["PM2.5"][0]
    np.testing.assert_allclose(plume, q_ratio * yield_ * -np.expm1(-k_per_h * t_h), rtol=1e-3)
    particle = both_cores["lagrangian"][product] / both_cores["lagrangian"]["PM2.5"]
    error = particle.std(axis=0, ddof=1) / np.sqrt(COPIES)
    deviation = np.abs(particle.mean(axis=0) - plume)
    assert np.all(deviation <= 3 * error + 1e-3 * plume), deviation / error


def test_rain_scavenges_alike_in_both_cores(both_cores):
    """1 mm/h: every scavenged species falls to exp(-Lambda t) of the dry run in both cores, NMVOC not.

    Lambda is the same for SO2, NOx, PM2.5, sulfate and nitrate, so the sulfate and nitrate formed so far
    are attenuated as the inert PM2.5 is (the chain with a = k + Lambda, b = Lambda is exp(-Lambda t)
    times the dry chain). The
    particle core's replicates move the same particles in both runs (same seed), so its ratio rain / dry
    is the mean of exp(-Lambda age) over the particles in the column, below exp(-Lambda x/u) by about
    (Lambda sigma_age)^2 / 2 for the spread of their ages (allowed: 2 %).
    """
    lam = 8.4e-5 * RAIN_MM_H**0.79
    t = both_cores["plume"]["x"] / 5.0
    for core in ("plume", "lagrangian"):
        dry, rain = both_cores[core], both_cores[core + "_rain"]
        np.testing.assert_array_equal(rain["NMVOC"], dry["NMVOC"])
        for species in ("PM2.5", "SO2", "NOx", "sulfate", "nitrate"):
            ratio = rain[species].sum(axis=0) / dry[species].sum(axis=0)
            np.testing.assert_allclose(ratio, np.exp(-lam * t), rtol=1e-3 if core == "plume" else 0.02,
                                       err_msg=f"{core} {species}")
