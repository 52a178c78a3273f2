"""Convective hours of the boundary-layer option: bi-Gaussian PDF, surface-layer similarity, AERMOD profiles
and the two-component vertical distribution through the kernels (closed forms, conservation, limits)."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from airshed.errors import AirshedInputError
from airshed.model import plume as pk
from airshed.model.plume_reference import reference_concentration_grid, reference_concentration_points
from airshed.physics import convective as cbl
from airshed.physics import dispersion as disp

Q = 100.0
K = cbl.VON_KARMAN


@pytest.mark.parametrize("skewness", [0.0, 0.1, 0.6, 1.5])
def test_bigaussian_pdf_has_unit_mass_zero_mean_unit_variance_and_the_skewness(skewness):
    pdf = cbl.bigaussian_pdf(np.array(skewness))
    w = np.linspace(-15.0, 15.0, 300_001)
    p = cbl.bigaussian_density(w, pdf)
    assert np.trapezoid(p, w) == pytest.approx(1.0, abs=1e-12)
    assert np.trapezoid(w * p, w) == pytest.approx(0.0, abs=1e-12)
    assert np.trapezoid(w**2 * p, w) == pytest.approx(1.0, abs=1e-11)
    assert np.trapezoid(w**3 * p, w) == pytest.approx(skewness, abs=1e-10)
    assert 0.0 < pdf.lam1 < 1.0 and pdf.lam1 + pdf.lam2 == pytest.approx(1.0)
    # sigma_wj = R |wbar_j| with R = 2 (Weil et al. 1997); updrafts rarer but stronger when S > 0
    assert pdf.s1 == pytest.approx(2.0 * pdf.w1) and pdf.s2 == pytest.approx(-2.0 * pdf.w2)
    if skewness > 0:
        assert pdf.lam1 < 0.5 and pdf.w1 > -pdf.w2


def test_unskewed_pdf_is_two_equal_halves():
    pdf = cbl.bigaussian_pdf(np.array(0.0))
    assert pdf.lam1 == pytest.approx(0.5) and pdf.w1 == pytest.approx(1 / np.sqrt(5.0))
    assert pdf.w2 == pytest.approx(-1 / np.sqrt(5.0)) and pdf.s1 == pytest.approx(2 / np.sqrt(5.0))


@pytest.mark.parametrize("obukhov_l", [-5.0, -50.0, -1e5])
def test_surface_layer_mean_height_solves_the_lagrangian_similarity_law(obukhov_l):
    ustar = 0.3
    t = np.array([1.0, 10.0, 100.0, 1000.0])
    sol = solve_ivp(
        lambda _, z: K * ustar * np.sqrt(1.0 - 16.0 * z / obukhov_l),  # dz/dt = k u* / phi_h, Dyer (1974)
        (0.0, t[-1]),
        [0.0],
        t_eval=t,
        rtol=1e-12,
        atol=1e-12,
    )
    np.testing.assert_allclose(cbl.surface_layer_mean_height(t, ustar, obukhov_l), sol.y[0], rtol=1e-8)


def test_surface_layer_sigma_z_is_the_ground_reflected_gaussian_of_the_mean_height():
    u, ustar, L, x = 4.0, 0.35, -20.0, np.array([10.0, 100.0, 1000.0])
    a, b = cbl.surface_layer_sigma_z_coefficients(u, ustar, L)
    zbar = cbl.surface_layer_mean_height(x / u, ustar, L)
    # mean height of a Gaussian reflected at the ground = sqrt(2 / pi) sigma_z
    np.testing.assert_allclose(np.sqrt(2 / np.pi) * a * x * (1 + b * x), zbar, rtol=1e-14)


def test_aermod_sigma_w_profile_values():
    ustar, wstar, h = 0.4, 2.0, 1000.0
    z = np.array([0.0, 50.0, 500.0, 1000.0, 1500.0])
    expected = np.sqrt(
        np.array(
            [
                0.0 + 1.69 * ustar**2,
                1.6 * 0.05 ** (2 / 3) * wstar**2 + 1.69 * ustar**2 * 0.95,
                0.35 * wstar**2 + 1.69 * ustar**2 * 0.5,
                0.35 * wstar**2,
                0.35 * wstar**2 * np.exp(-3.0),
            ]
        )
    )
    np.testing.assert_allclose(cbl.aermod_sigma_w_profile(z, ustar, wstar, h), expected, rtol=1e-14)


def test_layer_mean_sigma_w_matches_a_fine_trapezoid():
    ustar, wstar, h = 0.3, 1.8, 900.0
    for lo, hi in [(0.0, 5.0), (1.5, 120.0), (1.5, 700.0)]:
        z = np.linspace(lo, hi, 2_000_001)
        fine = np.trapezoid(cbl.aermod_sigma_w_profile(z, ustar, wstar, h), z) / (hi - lo)
        assert cbl.layer_mean_sigma_w(lo, hi, ustar, wstar, h) == pytest.approx(fine, rel=1e-5)
    assert cbl.layer_mean_sigma_w(50.0, 50.0, ustar, wstar, h) == pytest.approx(
        cbl.aermod_sigma_w_profile(50.0, ustar, wstar, h)
    )


def test_effective_layer_follows_aermods_rules():
    lo, hi = cbl.effective_layer(np.array([0.46, 30.0, 300.0, 900.0]), 1.5, np.full(4, 800.0))
    np.testing.assert_array_equal(lo, [0.46, 1.5, 1.5, 1.5])
    np.testing.assert_array_equal(hi, [5.0, 30.0, 300.0, 800.0])


def test_components_limits_ground_release_and_above_the_surface_layer():
    u, ustar, wstar, L, h = 5.0, 0.4, 2.0, -40.0, 1000.0
    ground = cbl.convective_vertical(u, ustar, wstar, L, h, 0.0, 1.5)
    a_s, b_s = cbl.surface_layer_sigma_z_coefficients(u, ustar, L)
    # a ground-level release: both components are the surface-layer Gaussian at a fixed height
    assert ground.slope1 == 0.0 and ground.slope2 == 0.0
    assert ground.a1 == pytest.approx(a_s) and ground.a2 == pytest.approx(a_s)
    assert ground.b == pytest.approx(a_s * b_s)
    # at and above 0.1 h: AERMOD's direct source with alpha_b = 1 and no surface term
    he = 250.0
    up = cbl.convective_vertical(u, ustar, wstar, L, h, he, 1.5)
    sw = cbl.layer_mean_sigma_w(1.5, he, ustar, wstar, h)
    pdf = cbl.bigaussian_pdf(cbl.vertical_velocity_skewness(he, wstar, sw, h))
    assert up.b == 0.0
    assert up.a1 == pytest.approx(pdf.s1 * sw / u) and up.a2 == pytest.approx(pdf.s2 * sw / u)
    assert up.slope1 == pytest.approx(pdf.w1 * sw / u) and up.slope2 == pytest.approx(pdf.w2 * sw / u)
    assert up.lam1 == pytest.approx(pdf.lam1)
    # the mixed-layer third moment 0.125 w*^3 from 0.1 h on
    assert cbl.vertical_velocity_skewness(he, wstar, sw, h) == pytest.approx(0.125 * wstar**3 / sw**3)


@pytest.mark.parametrize("psi", [-1700.0, -150.0, 0.0, 80.0, 420.0, 499.0, 650.0, 2345.0])
def test_reflected_density_is_periodic_and_conserves_mass(psi):
    h = 500.0
    z = np.linspace(0.0, h, 20_001)
    for s in [40.0, 0.3 * h, 2.0 * h]:
        d = disp.reflected_gaussian_density(z, psi, s, h, n_images=40)
        assert np.trapezoid(d, z) == pytest.approx(1.0, rel=1e-9)
    # images and Fourier series agree where both converge
    for s in [0.25 * h, 0.4 * h]:
        zr = np.array([0.0, 1.5, 200.0, 499.0])
        images = disp.vertical_image_sum(zr, abs(psi - 2 * h * np.round(psi / (2 * h))), h, s, n_images=40)
        np.testing.assert_allclose(
            disp.reflected_gaussian_density(zr, psi, s, h), images / (np.sqrt(2 * np.pi) * s), rtol=1e-12
        )


def test_branch_free_cosine_of_the_kernel():
    v = np.linspace(-300.0, 300.0, 400_001)
    v = v[::97]
    got = np.array([pk._cos_pi(t) for t in v])
    reduced = v - 2.0 * np.round(0.5 * v)  # exact; np.cos(np.pi * v) itself errs by ~1e-13 at |v| ~ 300
    assert np.max(np.abs(got - np.cos(np.pi * reduced))) < 5e-16
    assert pk._cos_pi(0.0) == 1.0 and pk._cos_pi(1.0) == -1.0 and abs(pk._cos_pi(0.5)) < 1e-16


def _convective(height, lid=600.0, receptor_height=1.5, n=None, **kw):
    """Convective hour, sources at the origin (or the given x/y), wind towards +x."""
    height = np.atleast_1d(np.asarray(height, dtype=float))
    n = height.size
    args = dict(
        wind_speed=5.0,
        wind_direction_deg=270.0,
        wind_height=10.0,
        roughness_length=0.1,
        ustar=0.35,
        obukhov_length=-30.0,
        mixing_height=lid,
        pg_class=2,
        air_temperature=300.0,
        option="boundary-layer",
        receptor_height=receptor_height,
        x_max=60000.0,
        sigma_y_cutoff=10.0,
    )
    args.update(kw)
    return pk.prepare_point_sources(np.zeros(n), np.zeros(n), Q, np.arange(n) % 3, height, **args)


def _assert_close(c, r, rel=1e-10):
    big = np.abs(r) > 1e-30 * np.abs(r).max()
    assert np.all(np.abs(c - r)[big] <= rel * np.abs(r)[big])
    assert np.max(np.abs(c - r)) <= 1e-13 * np.abs(r).max()


def test_two_component_sources_cover_every_regime_and_match_the_twin():
    heights = np.array([0.0, 10.0, 35.0, 60.0, 120.0, 250.0, 400.0])
    prep = _convective(heights)
    p = prep.params
    assert p[0, pk.POLY_Z] == 1.0 and np.all(p[1:, pk.TWO_COMP] == 1.0)
    x = np.geomspace(2.0, 59000.0, 3000)
    for k in range(1, heights.size):
        regimes = np.searchsorted([p[k, pk.XNEAR], p[k, pk.XFAR], p[k, pk.XFAR6]], x, side="right")
        assert set(np.unique(regimes)) == {0, 1, 2, 3}
    y = 0.05 * x * np.sin(np.arange(x.size))
    _assert_close(pk.plume_concentration_points(prep, x, y, 3), reference_concentration_points(prep, x, y, 3))
    grid = (-500.0, -6000.0, 400.0, 400.0, 150, 30)
    _assert_close(
        pk.plume_concentration_grid(prep, *grid, 3, skip=False), reference_concentration_grid(prep, *grid, 3)
    )


def test_two_component_kernel_equals_converged_direct_image_sums():
    """Independent of the kernel's regimes: each component's image sum to n = +-60, no folding, no Fourier."""
    h, he, zr = 600.0, 60.0, 1.5
    prep = _convective(he, lid=h, receptor_height=zr)
    s = prep.params[0]
    x = np.array([30.0, 300.0, 1500.0, 4000.0, 9000.0, 20000.0, 50000.0])
    sy = disp.sigma_y_from_parameters(x, disp.SigmaParameters(*(np.array([s[c]]) for c in (
        pk.AY, pk.BY, pk.PY, pk.AZ, pk.BZ, pk.PZ, pk.AZ2, pk.BZ2, pk.PZ2, pk.CZ))), 0, np.sqrt(s[pk.SY02]))
    density = 0.0
    for lam, slope, a in ((pk.LAM1, pk.SLOPE1, pk.SZA1), (pk.LAM2, pk.SLOPE2, pk.SZA2)):
        sj = np.sqrt((x * (s[a] + s[pk.SZB] * x)) ** 2 + s[pk.SZ02])
        psi = he + s[slope] * x
        density = density + s[lam] * disp.vertical_image_sum(zr, psi, h, sj, n_images=60) / (
            np.sqrt(2 * np.pi) * sj
        )
    u = Q / (2 * np.pi * s[pk.PREF])
    expected = Q / u * density / (np.sqrt(2 * np.pi) * sy)
    got = pk.plume_concentration_points(prep, x, np.zeros(x.size), 3)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-11)
    # the centre lines leave [0, h]
    assert np.any(he + s[pk.SLOPE1] * x > h) and np.any(he + s[pk.SLOPE2] * x < 0)


@pytest.mark.parametrize("x", [40.0, 800.0, 6000.0, 40000.0])
def test_two_component_plume_conserves_mass(x):
    """u * integral over y and z of C = Q (no decay, no deposition): both components reflected at 0 and h.

    One plume (prepared for z_r = 1.5 m, its effective layer) evaluated at every height of the column.
    """
    h = 500.0
    prep = _convective(80.0, lid=h)
    s = prep.params[0]
    u = Q / (2 * np.pi * s[pk.PREF])
    sy = np.sqrt(s[pk.AY] ** 2 * x**2 * (1 + s[pk.BY] * x) ** (2 * s[pk.PY]) + s[pk.SY02])
    y = np.linspace(-9 * sy, 9 * sy, 801)
    z = np.linspace(0.0, h, 401)
    cy = []
    for zr in z:
        at = prep._replace(receptor_height=zr, fourier=disp.vertical_fourier_coefficients(zr, np.zeros(1), h))
        cy.append(np.trapezoid(pk.plume_concentration_points(at, np.full(y.size, x), y, 3)[0], y))
    assert u * np.trapezoid(np.array(cy), z) == pytest.approx(Q, rel=2e-5)


def test_ground_release_is_one_reflected_surface_layer_gaussian():
    zr, x = 1.5, np.array([20.0, 100.0, 400.0])
    prep = _convective(0.0, lid=1000.0, receptor_height=zr)
    s = prep.params[0]
    u = Q / (2 * np.pi * s[pk.PREF])
    a_s, b_s = cbl.surface_layer_sigma_z_coefficients(u, 0.35, -30.0)
    sz = a_s * x * (1 + b_s * x)
    sy = s[pk.AY] * x * (1 + s[pk.BY] * x) ** s[pk.PY]
    expected = Q / (np.pi * u * sy * sz) * np.exp(-0.5 * zr**2 / sz**2)  # source and its ground image
    got = pk.plume_concentration_points(prep, x, np.zeros(3), 3)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_regime_boundaries_are_continuous():
    prep = _convective(np.array([90.0]), lid=700.0)
    s = prep.params[0]
    for xb in (s[pk.XNEAR], s[pk.XFAR], s[pk.XFAR6]):
        xs = np.array([xb * (1 - 1e-12), xb * (1 + 1e-12)])
        c = pk.plume_concentration_points(prep, xs, np.zeros(2), 3)[0]
        assert c[0] == pytest.approx(c[1], rel=1e-10)


def test_no_lid_two_component_plume_is_finite_and_matches_the_twin():
    prep = _convective(np.array([50.0, 200.0]), lid=np.inf)
    x = np.geomspace(5.0, 50000.0, 200)
    got = pk.plume_concentration_points(prep, x, np.zeros(x.size), 3)
    assert np.all(np.isfinite(got)) and got.max() > 0
    _assert_close(got, reference_concentration_points(prep, x, np.zeros(x.size), 3))


def test_measured_sigma_v_sets_the_lateral_spread():
    base = _convective(20.0)
    measured = _convective(20.0, sigma_v=1.7)
    u = Q / (2 * np.pi * base.params[0, pk.PREF])
    assert measured.params[0, pk.AY] == pytest.approx(1.7 / u)
    assert np.array_equal(measured.params[0, pk.SZA1 : pk.SZB + 1], base.params[0, pk.SZA1 : pk.SZB + 1])
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(AirshedInputError, match="sigma_v"):
            _convective(20.0, sigma_v=bad)


def test_deposition_table_of_two_component_sources_integrates_their_ground_profile():
    h = 600.0
    prep = _convective(np.array([60.0]), lid=h, deposition_velocity=0.01, x_max=20000.0)
    nodes = np.linspace(0.0, 1.0, prep.depletion.shape[1]) ** 2 * 20000.0
    s = prep.params[0]
    u = Q / (2 * np.pi * s[pk.PREF])
    xx = np.linspace(1.0, 20000.0, 400_001)
    v0 = 0.0
    for lam, slope, a in ((pk.LAM1, pk.SLOPE1, pk.SZA1), (pk.LAM2, pk.SLOPE2, pk.SZA2)):
        sj = np.sqrt((xx * (s[a] + s[pk.SZB] * xx)) ** 2 + s[pk.SZ02])
        v0 = v0 + s[lam] * disp.reflected_gaussian_density(0.0, 60.0 + s[slope] * xx, sj, h)
    cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (v0[1:] + v0[:-1]) * np.diff(xx))])
    expected = -0.01 / u * np.interp(nodes, xx, cumulative)
    np.testing.assert_allclose(prep.depletion[0], expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())
