"""Analytic and conservation checks of the plume physics through the Numba kernels."""

import numpy as np
import pytest

from airshed.model import plume as pk
from airshed.physics import dispersion as disp
from airshed.physics import plume_rise as rise

Q = 100.0
U = 5.0


def _prepare(height=0.0, zr=0.0, lid=np.inf, pg=4, option="briggs-rural", **kw):
    """One source at the origin, wind blowing towards +x (from 270 deg), wind measured at 10 m."""
    return pk.prepare_point_sources(
        np.zeros(1),
        0.0,
        Q,
        0,
        height,
        wind_speed=U,
        wind_direction_deg=270.0,
        wind_height=10.0,
        roughness_length=0.1,
        ustar=0.4,
        obukhov_length=1e6,
        mixing_height=lid,
        pg_class=pg,
        air_temperature=293.0,
        option=option,
        receptor_height=zr,
        x_max=1e6,
        sigma_y_cutoff=10.0,
        **kw,
    )


def _wind(prep):
    """Plume wind speed the preparation used (similarity profile at stack height), m/s."""
    return Q / (2 * np.pi * prep.params[0, pk.PREF])


def _sigmas(x, pg=4):
    par = disp.briggs_sigma_parameters(np.array([pg]), urban=False)
    return disp.sigma_y_from_parameters(np.atleast_1d(x), par, 0), disp.sigma_z_from_parameters(
        np.atleast_1d(x), par, 0
    )


def _crosswind_line(prep, x, sy, n=4001):
    y = np.linspace(-10 * sy, 10 * sy, n)
    c = pk.plume_concentration_points(prep, np.full(n, x), y, 1)[0]
    return y, c


def test_briggs_coefficients_match_published_values_at_1km():
    sy, sz = _sigmas(1000.0, pg=4)
    assert sy[0] == pytest.approx(0.08 * 1000 / np.sqrt(1.1))
    assert sz[0] == pytest.approx(0.06 * 1000 / np.sqrt(2.5))
    par = disp.briggs_sigma_parameters(np.array([6]), urban=True)
    assert disp.sigma_z_from_parameters(np.array([1000.0]), par, 0)[0] == pytest.approx(
        0.08 * 1000 / np.sqrt(2.5)
    )


@pytest.mark.parametrize("x", [50.0, 500.0, 5000.0])
def test_crosswind_integral_of_ground_release_equals_closed_form(x):
    prep = _prepare()
    sy, sz = _sigmas(x)
    y, c = _crosswind_line(prep, x, sy[0])
    cy = np.trapezoid(c, y)
    assert cy == pytest.approx(2.0 * Q / (np.sqrt(2 * np.pi) * U * sz[0]), rel=1e-9)


def test_ground_reflection_doubles_ground_level_release():
    prep = _prepare()
    sy, sz = _sigmas(300.0)
    c = pk.plume_concentration_points(prep, np.array([300.0]), np.array([0.0]), 1)[0, 0]
    single = Q / (2 * np.pi * U * sy[0] * sz[0])
    assert c == pytest.approx(2.0 * single, rel=1e-13)


@pytest.mark.parametrize("x", [300.0, 3000.0, 30000.0, 300000.0])
def test_mass_flux_through_downwind_plane_equals_emission(x):
    """u * integral over y and 0 <= z <= h of C equals Q in every vertical regime (near, middle, far)."""
    h, height = 400.0, 60.0
    z = np.linspace(0.0, h - 1e-9, 401)
    sy = _sigmas(x)[0][0]
    flux_z = []
    for zr in z:
        prep = _prepare(height=height, zr=zr, lid=h)
        y, c = _crosswind_line(prep, x, sy, n=2001)
        flux_z.append(np.trapezoid(c, y))
    flux = _wind(prep) * np.trapezoid(np.array(flux_z), z)
    assert flux == pytest.approx(Q, rel=1e-3)


def test_decay_reduces_concentration_by_travel_time():
    k = 2e-4
    plain, decayed = _prepare(), _prepare(decay_rate=k)
    rx, ry = np.array([200.0, 2000.0, 20000.0]), np.array([0.0, 30.0, -300.0])
    ratio = (
        pk.plume_concentration_points(decayed, rx, ry, 1)[0]
        / pk.plume_concentration_points(plain, rx, ry, 1)[0]
    )
    np.testing.assert_allclose(ratio, np.exp(-k * rx / U), rtol=1e-13)


@pytest.mark.parametrize(("sz_over_h", "tol"), [(1.6, 1e-5), (3.0, 1e-12)])
def test_well_mixed_limit_far_downwind(sz_over_h, tol):
    h = 300.0
    par = disp.briggs_sigma_parameters(np.array([2]), urban=False)  # B: sigma_z = 0.12 x
    x = sz_over_h * h / 0.12
    prep = _prepare(height=50.0, zr=1.5, lid=h, pg=2)
    sy = disp.sigma_y_from_parameters(np.array([x]), par, 0)
    y = np.array([0.0, 0.5 * sy[0], 2.0 * sy[0]])
    c = pk.plume_concentration_points(prep, np.full(3, x), y, 1)[0]
    np.testing.assert_allclose(c, disp.well_mixed_concentration(Q, _wind(prep), sy, h, y), rtol=tol)


@pytest.mark.parametrize("x", [100.0, 2000.0, 20000.0, 200000.0])
def test_kernel_vertical_regimes_equal_converged_image_sum(x):
    h, height, zr = 500.0, 120.0, 1.5
    prep = _prepare(height=height, zr=zr, lid=h)
    sy, sz = _sigmas(x)
    c = pk.plume_concentration_points(prep, np.array([x]), np.array([0.0]), 1)[0, 0]
    v = disp.vertical_image_sum(zr, height, h, sz, n_images=60)[0]
    assert c == pytest.approx(Q / (2 * np.pi * _wind(prep) * sy[0] * sz[0]) * v, rel=1e-13)


def test_plume_above_the_lid_gives_zero_and_is_counted():
    prep = _prepare(height=500.0, zr=1.5, lid=300.0)
    c = pk.plume_concentration_points(prep, np.array([1000.0, 1e5]), np.zeros(2), 1)
    assert np.all(c == 0.0)
    assert prep.n_penetrated == 1


def test_calms_are_raised_and_counted():
    prep = pk.prepare_point_sources(
        np.zeros(2),
        0.0,
        Q,
        0,
        10.0,
        wind_speed=np.array([0.3, 4.0]),
        wind_direction_deg=0.0,
        wind_height=10.0,
        roughness_length=0.1,
        ustar=0.2,
        obukhov_length=1e6,
        mixing_height=800.0,
        pg_class=4,
        air_temperature=290.0,
    )
    assert prep.n_calm == 1
    assert prep.params[0, pk.PREF] == pytest.approx(Q / (2 * np.pi * pk.DEFAULT_MIN_WIND_SPEED))


def test_upwind_receptors_get_nothing():
    c = pk.plume_concentration_points(_prepare(), np.array([-100.0, 0.0, 0.5]), np.zeros(3), 1)
    assert np.all(c == 0.0)


def test_deposition_depletes_the_well_mixed_plume_exponentially():
    """Far downwind the ground profile is 1/h, so ln(Q(x2)/Q(x1)) = -v_d (x2 - x1) / (u h)."""
    vd, h = 0.01, 300.0
    plain, dep_ = (
        _prepare(height=20.0, zr=0.0, lid=h, pg=2),
        _prepare(height=20.0, zr=0.0, lid=h, pg=2, deposition_velocity=vd),
    )
    x = np.array([2e4, 6e4])
    ratio = (
        pk.plume_concentration_points(dep_, x, np.zeros(2), 1)[0]
        / pk.plume_concentration_points(plain, x, np.zeros(2), 1)[0]
    )
    assert np.log(ratio[1] / ratio[0]) == pytest.approx(-vd * (x[1] - x[0]) / (_wind(plain) * h), rel=2e-3)


def test_briggs_rise_formulas():
    fb = rise.buoyancy_flux(5.0, 20.0, 420.0, 290.0)
    assert fb == pytest.approx(9.81 * 20 * 25 * 130 / (4 * 420))
    dh, xf = rise.briggs_final_rise(fb, 0.0, 5.0, 20.0, 5.0, False, 0.0)
    assert dh == pytest.approx(38.71 * fb**0.6 / 5.0)
    assert rise.briggs_transitional_rise(xf, float(fb), 5.0, float(dh)) == pytest.approx(dh, rel=1e-3)
    s = rise.stability_parameter(290.0, 0.035)
    dh_st, _ = rise.briggs_final_rise(fb, 0.0, 5.0, 20.0, 5.0, True, s)
    assert dh_st == pytest.approx(2.6 * (fb / (5.0 * s)) ** (1 / 3))
    assert rise.stack_tip_downwash_height(50.0, 2.0, 3.0, 4.0) == pytest.approx(50.0 + 4.0 * (0.75 - 1.5))
