"""Plume kernels against their NumPy twin, thread determinism, footprint skipping, area sources."""

import numba
import numpy as np
import pytest

from airshed.model import plume as pk
from airshed.model.plume_reference import reference_concentration_grid, reference_concentration_points

NTAG = 3
GRID = (0.0, 0.0, 250.0, 250.0, 60, 50)  # x0, y0, dx, dy, nx, ny


def _random_sources(option, seed=1, n=15, deposition=0.0, decay=0.0):
    rng = np.random.default_rng(seed)
    return pk.prepare_point_sources(
        rng.uniform(0, 15000, n),
        rng.uniform(0, 12500, n),
        rng.uniform(1, 100, n),
        rng.integers(0, NTAG, n),
        rng.uniform(0, 150, n),
        wind_speed=rng.uniform(0.5, 8, n),
        wind_direction_deg=rng.uniform(0, 360, n),
        wind_height=10.0,
        roughness_length=0.1,
        ustar=rng.uniform(0.1, 0.6, n),
        obukhov_length=rng.choice([-30.0, -300.0, 80.0, 1e6], n),
        mixing_height=rng.uniform(300, 1500, n),
        pg_class=rng.integers(1, 7, n),
        air_temperature=290.0,
        option=option,
        diameter=rng.uniform(0, 5, n),
        exit_velocity=rng.uniform(0, 20, n),
        stack_temperature=rng.uniform(290, 450, n),
        receptor_height=1.5,
        decay_rate=decay,
        deposition_velocity=deposition,
        x_max=25000.0,
    )


def _assert_close(c, r):
    """Elementwise 1e-10 relative wherever the value matters (> 1e-30 of the max), else 1e-13 of the max."""
    big = np.abs(r) > 1e-30 * np.abs(r).max()
    assert np.all(np.abs(c - r)[big] <= 1e-10 * np.abs(r)[big])
    assert np.max(np.abs(c - r)) <= 1e-13 * np.abs(r).max()


@pytest.mark.parametrize("option", ["briggs-rural", "briggs-urban", "boundary-layer"])
@pytest.mark.parametrize(("deposition", "decay"), [(0.0, 0.0), (0.005, 3e-5)])
def test_dense_grid_kernel_matches_numpy_reference(option, deposition, decay):
    prep = _random_sources(option, deposition=deposition, decay=decay)
    c = pk.plume_concentration_grid(prep, *GRID, NTAG, skip=False)
    r = reference_concentration_grid(prep, *GRID, NTAG)
    assert r.max() > 0
    _assert_close(c, r)


@pytest.mark.parametrize("direction", [0.0, 90.0, 180.0, 270.0, 45.0, 200.0])
def test_grid_kernel_matches_reference_for_winds_along_and_across_the_rows(direction):
    """x constant along a row (winds from 0 and 180 deg), rising or falling along it; regime and
    downwind splits of every row and band."""
    n = 12
    rng = np.random.default_rng(int(direction))
    prep = pk.prepare_point_sources(
        rng.uniform(0, 15000, n),
        rng.uniform(0, 12500, n),
        rng.uniform(1, 100, n),
        rng.integers(0, NTAG, n),
        rng.uniform(0, 150, n),
        wind_speed=rng.uniform(1, 8, n),
        wind_direction_deg=direction,
        wind_height=10.0,
        roughness_length=0.1,
        ustar=0.3,
        obukhov_length=1e6,
        mixing_height=rng.uniform(200, 1200, n),
        pg_class=rng.integers(1, 7, n),
        air_temperature=290.0,
        receptor_height=1.5,
        x_max=25000.0,
    )
    c = pk.plume_concentration_grid(prep, *GRID, NTAG, skip=False)
    r = reference_concentration_grid(prep, *GRID, NTAG)
    assert r.max() > 0
    _assert_close(c, r)
    skipped = pk.plume_concentration_grid(prep, *GRID, NTAG, skip=True)
    assert np.max(np.abs(c - skipped)) <= n * np.exp(-0.5 * 6.0**2) * c.max()


@pytest.mark.parametrize("option", ["briggs-rural", "boundary-layer"])
def test_points_kernel_matches_numpy_reference(option):
    prep = _random_sources(option, seed=4)
    rng = np.random.default_rng(5)
    rx, ry = rng.uniform(-2000, 17000, 700), rng.uniform(-2000, 14000, 700)
    _assert_close(
        pk.plume_concentration_points(prep, rx, ry, NTAG), reference_concentration_points(prep, rx, ry, NTAG)
    )


def test_footprint_skipping_error_is_below_the_documented_bound():
    cutoff = 6.0
    prep = _random_sources("briggs-rural", seed=7)
    dense = pk.plume_concentration_grid(prep, *GRID, NTAG, skip=False)
    skipped = pk.plume_concentration_grid(prep, *GRID, NTAG, skip=True)
    # each source's skipped pairs are below exp(-c^2/2) of its own centre-line value; bound by the grid max
    n_src = prep.params.shape[0]
    assert np.max(np.abs(dense - skipped)) <= n_src * np.exp(-0.5 * cutoff**2) * dense.max()
    assert np.all(skipped <= dense * (1 + 1e-12) + 1e-300)


def test_tags_sum_to_total_and_separate_sources():
    prep = _random_sources("briggs-rural", seed=9)
    conc = pk.plume_concentration_grid(prep, *GRID, NTAG)
    for t in range(NTAG):
        keep = prep.tag == t
        sub = pk.PreparedSources(
            prep.params[keep],
            prep.tag[keep],
            prep.fourier[keep],
            prep.depletion[keep],
            prep.receptor_height,
            prep.x_min,
            0,
            0,
        )
        np.testing.assert_array_equal(pk.plume_concentration_grid(sub, *GRID, NTAG)[t], conc[t])


def test_result_is_identical_for_one_and_two_threads():
    prep = _random_sources("boundary-layer", seed=11, deposition=0.002)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = pk.plume_concentration_grid(prep, *GRID, NTAG)
        one_pts = pk.plume_concentration_points(prep, np.arange(1000.0) * 13, np.arange(1000.0) * 9, NTAG)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = pk.plume_concentration_grid(prep, *GRID, NTAG)
        two_pts = pk.plume_concentration_points(prep, np.arange(1000.0) * 13, np.arange(1000.0) * 9, NTAG)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one_pts, two_pts)


@pytest.mark.parametrize(
    ("n_sub", "tol_far", "tol_near", "tol_edge"), [(4, 0.02, 0.05, 0.4), (8, 0.005, 0.012, 0.12)]
)
def test_area_source_subdivision_converges_to_fine_reference(n_sub, tol_far, tol_near, tol_edge):
    """A 1 km cell at 10 m, Briggs D, against n_sub = 32 (errors quoted in area_sources_as_points)."""
    side = 1000.0
    rx = np.repeat([1500.0, 2500.0, 5000.0, 10000.0], 3)
    ry = np.tile([0.0, 300.0, -600.0], 4)

    def conc(nsub):
        x, y, q, _, sy0 = pk.area_sources_as_points(
            np.array([0.0]), np.array([0.0]), side, np.array([50.0]), nsub
        )
        prep = pk.prepare_point_sources(
            x,
            y,
            q,
            0,
            10.0,
            wind_speed=4.0,
            wind_direction_deg=270.0,
            wind_height=10.0,
            roughness_length=0.3,
            ustar=0.3,
            obukhov_length=1e6,
            mixing_height=800.0,
            pg_class=4,
            air_temperature=290.0,
            sigma_y0=sy0,
            receptor_height=1.5,
        )
        return pk.plume_concentration_points(prep, rx, ry, 1)[0]

    err = np.abs(conc(n_sub) / conc(32) - 1.0)
    far = rx >= 5000.0
    shadow = ~far & (np.abs(ry) <= 0.5 * side)
    assert err[far].max() < tol_far
    assert err[shadow].max() < tol_near
    assert err.max() < tol_edge


def test_bad_inputs_are_reported_by_name():
    with pytest.raises(ValueError, match="pg_class"):
        pk.prepare_point_sources(
            np.zeros(1),
            0.0,
            1.0,
            0,
            10.0,
            wind_speed=3.0,
            wind_direction_deg=0.0,
            wind_height=10.0,
            roughness_length=0.1,
            ustar=0.3,
            obukhov_length=1e6,
            mixing_height=500.0,
            pg_class=7,
            air_temperature=290.0,
        )
    with pytest.raises(ValueError, match="wind_speed"):
        pk.prepare_point_sources(
            np.zeros(2),
            0.0,
            1.0,
            0,
            10.0,
            wind_speed=np.array([3.0, np.nan]),
            wind_direction_deg=0.0,
            wind_height=10.0,
            roughness_length=0.1,
            ustar=0.3,
            obukhov_length=1e6,
            mixing_height=500.0,
            pg_class=4,
            air_temperature=290.0,
        )


def test_species_from_one_geometry_equal_separate_preparation():
    """One geometry per hour scaled per species equals preparing each species from scratch.

    Area sub-sources sharing a cell's geometry share one depletion integral (and match a lone source).
    """
    rng = np.random.default_rng(3)
    n = 12
    x, y, _, _, sy0 = pk.area_sources_as_points(rng.uniform(0, 9000, 3), rng.uniform(0, 9000, 3), 1000.0,
                                                np.ones(3), 2)
    met = dict(
        wind_speed=np.repeat(rng.uniform(1, 6, 3), 4),
        wind_direction_deg=np.repeat(rng.uniform(0, 360, 3), 4),
        wind_height=10.0,
        roughness_length=0.2,
        ustar=0.3,
        obukhov_length=np.repeat([-50.0, 200.0, 1e6], 4),
        mixing_height=np.repeat([300.0, 800.0, 1500.0], 4),
        pg_class=np.repeat([2, 5, 4], 4),
        air_temperature=285.0,
        option="boundary-layer",
        sigma_y0=sy0,
        receptor_height=1.5,
        x_max=20000.0,
    )
    tag = np.arange(n) % NTAG
    geometry = pk.prepare_plume_geometry(x, y, tag, 5.0, **met)
    for q, k, vd in ((rng.uniform(1, 5, n), 1e-5, 0.01), (np.where(np.arange(n) % 3, 2.0, 0.0), 0.0, 0.002)):
        shared = pk.plume_sources_for_species(geometry, q, k, vd)
        alone = pk.prepare_point_sources(x, y, q, tag, 5.0, decay_rate=k, deposition_velocity=vd, **met)
        np.testing.assert_array_equal(shared.params, alone.params)
        np.testing.assert_allclose(shared.depletion, alone.depletion, rtol=1e-12, atol=0)
        met_one = {key: (v[:1] if isinstance(v, np.ndarray) else v) for key, v in met.items()}
        one = pk.prepare_point_sources(
            x[:1], y[:1], q[:1], tag[:1], 5.0, decay_rate=k, deposition_velocity=vd, **met_one
        )
        if q[0] > 0:
            np.testing.assert_allclose(shared.depletion[0], one.depletion[0], rtol=1e-12, atol=0)


def test_effective_stack_height_switches():
    from airshed.physics import plume_rise as rise

    args = (50.0, 4.0, 3.0, 420.0, 290.0, 6.0, 4)
    full, dh = rise.effective_stack_height(*args)
    assert dh > 0 and full == pytest.approx(rise.stack_tip_downwash_height(50.0, 4.0, 3.0, 6.0) + dh)
    no_rise, zero = rise.effective_stack_height(*args, plume_rise=False)
    assert zero == 0 and no_rise == pytest.approx(rise.stack_tip_downwash_height(50.0, 4.0, 3.0, 6.0))
    plain, _ = rise.effective_stack_height(*args, plume_rise=False, stack_tip_downwash=False)
    assert plain == 50.0
