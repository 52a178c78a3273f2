"""AERMOD's partial penetration of the capping inversion by buoyant plumes (boundary-layer option)."""

import numpy as np
import pytest

from airshed.model import plume as pk
from airshed.model.plume_reference import reference_concentration_grid
from airshed.physics import plume_rise as rise

TA = 300.0
N2 = rise.GRAVITY * rise.LID_DTHETA_DZ / TA


def _fb_for_ratio(ratio, u, dh_h):
    """Buoyancy flux giving dh_eq / dh_h = ratio: P_s = (ratio^3 - (2/3)^3) / 2.6^3."""
    ps = (ratio**3 - (2.0 / 3.0) ** 3) / 2.6**3
    return ps * u * N2 * dh_h**3


@pytest.mark.parametrize(("ratio", "expected"), [(0.5, 0.0), (2.0 / 3.0, 0.0), (0.8, 0.25), (1.0, 0.5),
                                                 (1.25, 0.7), (2.0, 1.0), (3.0, 1.0)])
def test_penetrated_fraction_is_aermods_piecewise_law(ratio, expected):
    u, hs, zi = 4.0, 80.0, 900.0
    fb = max(_fb_for_ratio(ratio, u, zi - hs), 0.0)
    p = rise.lid_penetration_fraction(np.array([fb]), u, hs, zi, TA)
    assert p[0] == pytest.approx(expected, abs=1e-12)


def test_no_buoyancy_stays_below_and_stacks_above_the_lid_penetrate():
    p = rise.lid_penetration_fraction(np.array([0.0, 50.0, 0.0]), 3.0, np.array([50.0, 1200.0, 1000.0]),
                                      1000.0, TA)
    np.testing.assert_array_equal(p, [0.0, 1.0, 1.0])
    fb = np.linspace(0.0, 2000.0, 50)
    assert np.all(np.diff(rise.lid_penetration_fraction(fb, 3.0, 100.0, 600.0, TA)) >= 0.0)


def _source(obukhov_length, lid, exit_velocity, penetration):
    return pk.prepare_point_sources(
        np.array([0.0]), np.array([0.0]), 100.0, 0, 150.0,
        wind_speed=3.0, wind_direction_deg=270.0, wind_height=10.0, roughness_length=0.3, ustar=0.4,
        obukhov_length=obukhov_length, mixing_height=lid, pg_class=2 if obukhov_length < 0 else 5,
        air_temperature=TA, option="boundary-layer", diameter=6.0, exit_velocity=exit_velocity,
        stack_temperature=420.0, receptor_height=1.5, x_max=60000.0, lid_penetration=penetration,
    )


GRID = (-5000.0, -20000.0, 1000.0, 1000.0, 50, 41)


def test_partially_penetrating_plume_keeps_the_trapped_fraction_of_the_same_plume():
    on = _source(-50.0, 600.0, 20.0, True)
    off = _source(-50.0, 600.0, 20.0, False)
    f = on.params[0, pk.PREF] / off.params[0, pk.PREF]
    assert 0.7 < f < 0.9  # F_b = 504 m4 s-3, dh_h = 450 m: dh_eq / dh_h = 0.76, 18 % penetrates
    assert on.params[0, pk.H] == off.params[0, pk.H] < 600.0
    c_on = pk.plume_concentration_grid(on, *GRID, 1, skip=False)
    c_off = pk.plume_concentration_grid(off, *GRID, 1, skip=False)
    big = c_off > 1e-30 * c_off.max()
    np.testing.assert_allclose(c_on[big], f * c_off[big], rtol=1e-13)


def test_plume_rising_above_the_lid_keeps_its_trapped_part_at_the_lid():
    on = _source(-50.0, 450.0, 20.0, True)  # H = 518 m without the lid
    off = _source(-50.0, 450.0, 20.0, False)
    assert off.params[0, pk.PREF] == 0.0 and off.n_penetrated == 1
    assert on.params[0, pk.H] == 450.0 and on.params[0, pk.PREF] > 0.0 and on.n_penetrated == 0
    c = pk.plume_concentration_grid(on, *GRID, 1, skip=False)
    r = reference_concentration_grid(on, *GRID, 1)
    assert r.max() > 0.0
    big = r > 1e-30 * r.max()
    np.testing.assert_allclose(c[big], r[big], rtol=1e-10)


def test_stable_hours_and_non_buoyant_releases_are_unchanged():
    for args in ((80.0, 400.0, 20.0), (-50.0, 2500.0, 0.0)):
        on, off = _source(*args, True), _source(*args, False)
        np.testing.assert_array_equal(on.params, off.params)
