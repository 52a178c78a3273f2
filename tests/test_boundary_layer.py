"""Surface-layer similarity, stability classes and sun position against analytic and published values."""

import math

import numpy as np
import pytest

from airshed.physics import boundary_layer as bl


def test_neutral_profile_is_exact_log_law():
    # u(z) = u_ref ln(z/z0) / ln(z_ref/z0) when 1/L = 0
    for z in (20.0, 50.0, 100.0):
        assert bl.wind_speed_at_height(5.0, 10.0, z, 0.1, 0.0) == pytest.approx(
            5.0 * math.log(z / 0.1) / math.log(100.0), rel=1e-12
        )
    assert bl.friction_velocity(5.0, 10.0, 0.1, 0.0) == pytest.approx(0.4 * 5.0 / math.log(100.0), rel=1e-12)


def test_profile_clipped_below_seven_z0():
    assert bl.wind_speed_at_height(5.0, 10.0, 0.5, 0.5, 0.0) == bl.wind_speed_at_height(
        5.0, 10.0, 3.5, 0.5, 0.0
    )


def test_businger_dyer_unstable_values():
    # Paulson (1970) integral of Dyer (1974) at zeta = -1: x = 17^(1/4)
    x = 17.0**0.25
    expected = 2 * math.log((1 + x) / 2) + math.log((1 + x * x) / 2) - 2 * math.atan(x) + math.pi / 2
    assert bl.stability_psi_m(-1.0) == pytest.approx(expected, rel=1e-12)
    assert bl.stability_psi_m(-1.0) == pytest.approx(1.1162, abs=1e-4)
    assert bl.stability_psi_h(-1.0) == pytest.approx(2 * math.log((1 + math.sqrt(17.0)) / 2), rel=1e-12)
    assert bl.stability_psi_m(0.0) == pytest.approx(0.0, abs=1e-12)
    assert bl.stability_psi_h(0.0) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("zeta", [-2.0, -0.5, -0.05, 0.05, 0.5, 2.0, 10.0])
def test_psi_consistent_with_phi(zeta):
    # phi_m = 1 - zeta dpsi_m/dzeta: Dyer (1974) unstable, Beljaars & Holtslag (1991) eq. 29 stable
    d = 1e-6
    phi_m = 1 - zeta * (bl.stability_psi_m(zeta + d) - bl.stability_psi_m(zeta - d)) / (2 * d)
    if zeta < 0:
        expected = (1 - 16 * zeta) ** -0.25
    else:
        a, b, c, dd = 1.0, 2 / 3, 5.0, 0.35
        expected = 1 + zeta * (a + b * math.exp(-dd * zeta) * (1 + c - dd * zeta))
    assert phi_m == pytest.approx(expected, rel=1e-6)
    # near neutral both stable forms approach Dyer's phi = 1 + 5 zeta
    assert (
        1 - 0.001 * (bl.stability_psi_m(0.001 + d) - bl.stability_psi_m(0.001 - d)) / (2 * d)
    ) == pytest.approx(1.005, rel=1e-4)


def test_obukhov_length_sign_and_value():
    L = bl.obukhov_length(0.3, 100.0, 290.0, 1.2)
    assert L == pytest.approx(-1.2 * 1004 * 290 * 0.027 / (0.4 * 9.81 * 100.0), rel=1e-12)
    assert L < 0
    assert bl.obukhov_length(0.3, -20.0, 290.0, 1.2) > 0
    assert bl.obukhov_length(0.3, 0.0, 290.0, 1.2) == bl.NEUTRAL_OBUKHOV_LENGTH_M


@pytest.mark.parametrize("shf,u", [(150.0, 2.0), (50.0, 5.0), (-5.0, 3.0), (-15.0, 6.0)])
def test_ustar_iteration_is_self_consistent(shf, u):
    us = bl.friction_velocity_from_heat_flux(u, 10.0, 0.1, shf, 285.0, 1.2)
    L = bl.obukhov_length(us, shf, 285.0, 1.2)
    assert us == pytest.approx(bl.friction_velocity(u, 10.0, 0.1, 1.0 / L), rel=1e-6)
    neutral = bl.friction_velocity(u, 10.0, 0.1, 0.0)
    assert (us > neutral) if shf > 0 else (us < neutral)


def test_ustar_without_stable_solution_stays_finite():
    us = bl.friction_velocity_from_heat_flux(1.0, 10.0, 0.1, -60.0, 285.0, 1.2)
    assert 1e-3 <= us <= bl.friction_velocity(1.0, 10.0, 0.1, 0.0)


def test_convective_velocity_scale():
    # Deardorff (1970): (9.81 * 100 * 1000 / (1.2 * 1004 * 290))^(1/3)
    expected = (9.81 * 100.0 * 1000.0 / (1.2 * 1004.0 * 290.0)) ** (1 / 3)
    assert bl.convective_velocity_scale(100.0, 1000.0, 290.0, 1.2) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(1.41, abs=0.01)
    assert bl.convective_velocity_scale(-10.0, 1000.0, 290.0, 1.2) == 0.0


def test_stable_mixing_height_zilitinkevich():
    f = 2 * 7.2921e-5 * math.sin(math.radians(40.0))
    h = bl.diagnosed_mixing_height(0.2, 50.0, 40.0)
    assert h == pytest.approx(0.4 * math.sqrt(0.2 * 50.0 / f), rel=1e-9)
    assert bl.diagnosed_mixing_height(0.3, 1e5, 40.0) == pytest.approx(0.3 * 0.3 / f, rel=1e-9)
    assert bl.diagnosed_mixing_height(0.001, 1.0, 40.0) == bl.MIN_MIXING_HEIGHT_M


@pytest.mark.parametrize(
    "speed,cloud,elev,expected",
    [
        (1.0, 0.0, 70.0, 1),  # strong sun, light wind -> A
        (2.5, 0.2, 45.0, 2),  # moderate sun, 5 kt -> B
        (6.0, 0.2, 45.0, 4),  # strong wind -> D
        (3.0, 1.0, -20.0, 4),  # overcast night -> D
        (1.0, 0.0, -20.0, 6),  # clear night, light wind -> F (G folded into F)
        (2.5, 0.8, -20.0, 5),  # cloudy night, 5 kt -> E
        (3.0, 0.0, 10.0, 4),  # weak sun, 6 kt -> D
    ],
)
def test_turner_classes(speed, cloud, elev, expected):
    assert bl.pasquill_class_turner(speed, cloud, elev) == expected


def test_golder_classes_from_obukhov():
    z0 = 0.1
    assert bl.pasquill_class_from_obukhov(1 / -5.0, z0) == 1
    assert bl.pasquill_class_from_obukhov(1 / -15.0, z0) == 2
    assert bl.pasquill_class_from_obukhov(1 / -40.0, z0) == 3
    assert bl.pasquill_class_from_obukhov(0.0, z0) == 4
    assert bl.pasquill_class_from_obukhov(1 / 50.0, z0) == 5
    assert bl.pasquill_class_from_obukhov(1 / 10.0, z0) == 6
    # each class's representative 1/L maps back to the class, for several roughnesses
    for z0 in (0.01, 0.1, 0.5, 1.0):
        for k in range(1, 7):
            assert bl.pasquill_class_from_obukhov(bl.obukhov_inverse_for_pasquill_class(k, z0), z0) == k


def test_array_versions_match_scalars():
    u = np.array([1.0, 3.0, 8.0])
    shf = np.array([100.0, -10.0, 20.0])
    us, L = bl.surface_layer_from_heat_flux(u, 0.2, shf, 280.0, 1.25)
    for i in range(3):
        assert us[i] == bl.friction_velocity_from_heat_flux(u[i], 10.0, 0.2, shf[i], 280.0, 1.25)
    pg = bl.pasquill_class_from_obukhov_array(L, 0.2)
    assert pg.dtype == np.int8 and list(pg) == [bl.pasquill_class_from_obukhov(1 / x, 0.2) for x in L]
    assert bl.air_density_array(101325.0, 288.15) == pytest.approx(1.225, abs=1e-3)


def test_solar_elevation_noaa():
    # Beijing (39.9N, 116.4E), June solstice near solar noon: 90 - 39.9 + 23.44 = 73.5 deg
    elev = bl.solar_elevation_deg(np.datetime64("2024-06-21T04:13"), 116.4, 39.9)
    assert float(elev) == pytest.approx(73.54, abs=0.1)
    # equator at the March equinox, solar noon at Greenwich (equation of time ~ -7.5 min): ~90 deg
    assert float(bl.solar_elevation_deg(np.datetime64("2024-03-20T12:07"), 0.0, 0.0)) == pytest.approx(
        89.9, abs=0.3
    )
    # winter-solstice midnight in Beijing: sun well below horizon (90 + 39.9 - 23.44 ... -> about -73 deg)
    assert float(bl.solar_elevation_deg(np.datetime64("2024-12-21T16:13"), 116.4, 39.9)) == pytest.approx(
        -73.4, abs=0.3
    )


def test_hypsometric_thickness():
    # 1000 -> 500 hPa at 255 K: 287.05 * 255 / 9.80665 * ln 2 = 5174 m
    assert bl.hypsometric_thickness(1.0e5, 5.0e4, 255.0) == pytest.approx(5173.8, abs=1.0)


def test_scalar_helpers_callable_from_a_kernel():
    from airshed.jit import kernel

    @kernel()
    def profile(u, z):
        out = np.empty(z.size)
        for i in range(z.size):
            out[i] = bl.wind_speed_at_height(u, 10.0, z[i], 0.1, 0.0) + 0.0 * bl.stability_psi_h(-0.1)
        return out

    z = np.array([20.0, 100.0])
    np.testing.assert_allclose(profile(5.0, z), 5.0 * np.log(z / 0.1) / np.log(100.0), rtol=1e-12)
