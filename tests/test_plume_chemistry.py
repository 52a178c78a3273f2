"""Secondary species in the plume core: the first-order chain along the plume's travel time.

Against the closed form and an ODE solution, mass conservation on a crosswind-integrated plume (the
mechanism's sulfur and nitrogen balance), and the documented interpolation error near the source.
"""

import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

from airshed.model import plume as pk
from airshed.model.plume_chemistry import chain_log_table, plume_sources_for_product
from airshed.physics import dispersion as disp
from airshed.physics.deposition import DEPLETION_TABLE_NODES
from airshed.physics.mechanism import SULFATE_PER_SO2, first_order_chain, first_order_chain_with_ratio

K = 1e-4  # conversion rate, s-1 (36 %/h: large, so that the product is well above rounding in 100 km)
Y = SULFATE_PER_SO2
U = 5.0


def geometry(receptor_height=1.5, lid=400.0, x_max=150e3, n=1):
    """A 10 m source (no rise) in neutral air, wind towards +x, one per ``n``, lid at ``lid``."""
    return pk.prepare_plume_geometry(
        np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64), 10.0, wind_speed=U, wind_direction_deg=270.0,
        wind_height=10.0, roughness_length=0.1, ustar=0.35, obukhov_length=1e6, mixing_height=lid,
        pg_class=4, air_temperature=280.0, option="briggs-rural", receptor_height=receptor_height,
        x_max=x_max, plume_rise=False, stack_tip_downwash=False, wind_floor_height=10.0)


def test_chain_with_a_constant_ratio_is_the_closed_form():
    t = np.linspace(0.0, 1.0, 65) ** 2 * 86400.0
    for a, b in ((3e-5, 1e-5), (1e-5, 3e-5), (2e-5, 2e-5)):
        _, closed = first_order_chain(t, K, Y, a, b)
        stepped = first_order_chain_with_ratio(t, K, Y, a, b, np.zeros_like(t))
        np.testing.assert_allclose(stepped, closed, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("shape", ["sqrt", "log"])
def test_chain_with_a_varying_ratio_matches_the_ode(shape):
    """Depletion ratios as steep as near a ground source, against solve_ivp on the table's nodes.

    The error stays below a tenth of the bound 1/(4 k^2) of the table's own interpolation at node k
    (measured 0.9 % at node 1, 0.1 % at node 4, 1e-4 from node 16 on for the logarithmic ratio).
    """
    t = np.linspace(0.0, 1.0, 65) ** 2 * 36000.0
    a, b = K + 2e-5, 1e-5

    def log_rho(tt):  # c sqrt(t), or ln rho = -0.01 ln(x / 1 m) with x = 5 m/s t (G ~ ln x near the ground)
        return -0.004 * np.sqrt(tt) if shape == "sqrt" else -0.01 * np.log(np.maximum(5.0 * tt, 1.0))

    stepped = first_order_chain_with_ratio(t, K, Y, a, b, log_rho(t))
    ode = solve_ivp(lambda tt, s: Y * K * np.exp(-a * tt + log_rho(tt)) - b * s, (0, t[-1]), [0.0],
                    t_eval=t, rtol=1e-12, atol=1e-18, method="DOP853", first_step=1e-3).y[0]
    k = np.arange(1, 65)
    assert np.all(np.abs(stepped[1:] / ode[1:] - 1.0) <= 0.1 / (4 * k * k) + 1e-4)


def crosswind_flux(prepared, x, sigma_y, lid, heights):
    """u * integral over y and z of C at downwind x (trapezoids; receptors across +-6 sigma_y)."""
    y = np.linspace(-6 * sigma_y, 6 * sigma_y, 801)
    column = []
    for z in heights:
        p = prepared(z)
        c = pk.plume_concentration_points(p, np.full(y.size, x), y, 1)[0]
        column.append(np.trapezoid(c, y))
    return U * np.trapezoid(column, heights)


def sulfur_fluxes(x, a, b, lid=400.0, q=1000.0):
    """Crosswind-integrated (y and z) SO2 and sulfate fluxes through the plane at x, g/s."""
    heights = np.linspace(0.0, lid * (1.0 - 1e-9), 41)  # receptors strictly below the lid

    def so2(z):
        return pk.plume_sources_for_species(geometry(z, lid), q, a)

    def sulfate(z):
        g = geometry(z, lid)
        return plume_sources_for_product(g, q, chain_log_table(g, K, Y, np.array([a]), np.array([b])))

    sigma_y = float(disp.sigma_y_from_parameters(np.array([x]), geometry().sigma, 0)[0])
    return crosswind_flux(so2, x, sigma_y, lid, heights), crosswind_flux(sulfate, x, sigma_y, lid, heights)


@pytest.mark.parametrize("x_km", [2.0, 10.0, 40.0])
def test_conversion_conserves_sulfur_on_the_crosswind_integrated_plume(x_km):
    """Conversion the only loss: SO2 flux + sulfate flux / yield = the emission (the sulfur balance)."""
    x, q = x_km * 1000.0, 1000.0
    so2, sulfate = sulfur_fluxes(x, K, 0.0, q=q)
    assert so2 == pytest.approx(q * np.exp(-K * x / U), rel=1e-3)
    assert sulfate > 0.03 * Y * q
    assert so2 + sulfate / Y == pytest.approx(q, rel=1e-3)


@pytest.mark.parametrize("x_km", [10.0, 40.0])
def test_product_flux_with_losses_follows_the_chain(x_km):
    """Rain on both (a = k + 2e-5, b = 5e-5 s-1): the sulfate flux is the emission times the chain."""
    x, q, a, b = x_km * 1000.0, 1000.0, K + 2e-5, 5e-5
    so2, sulfate = sulfur_fluxes(x, a, b, q=q)
    _, chain = first_order_chain(x / U, K, Y, a, b)
    assert so2 == pytest.approx(q * np.exp(-a * x / U), rel=1e-3)
    assert sulfate == pytest.approx(q * float(chain), rel=2e-3)


def exact_product(g, t, a, b, vd_p, vd_s):
    """y k D_S(t) int_0^t exp(-a tau) exp(-b (t - tau)) D_P(tau) / D_S(tau) d tau by adaptive quadrature.

    D = exp(-(v_d/u) G) with G interpolated in sqrt(x) from the geometry's table, as the kernels do.
    """
    nodes = np.linspace(0.0, 1.0, DEPLETION_TABLE_NODES)
    ground = g.ground_integral()[0]
    x_max = g.params[0, pk.DEPXMAX]
    u = g.u[0]

    def G(tau):
        return np.interp(np.sqrt(min(u * tau / x_max, 1.0)), nodes, ground)

    def integrand(tau):
        return np.exp(-a * tau - b * (t - tau) - (vd_p - vd_s) / u * G(tau))

    breaks = [tt for tt in (nodes * nodes * x_max / u) if 0 < tt < t]
    value, _ = quad(integrand, 0.0, t, points=breaks[:50], limit=400, epsabs=0, epsrel=1e-11)
    return Y * K * np.exp(-vd_s / u * G(t)) * value


def test_product_with_different_deposition_velocities_matches_the_exact_chain():
    """SO2 depositing 5x faster than sulfate: the table's nodes against the exact integral (1e-3)."""
    g = geometry(lid=1000.0)
    a, b, vd_p, vd_s = K, 1e-6, 0.005, 0.001
    table = chain_log_table(g, K, Y, np.array([a]), np.array([b]), vd_p, vd_s)[0]
    x = g.params[0, pk.DEPXMAX] * np.linspace(0.0, 1.0, DEPLETION_TABLE_NODES) ** 2
    for k in (2, 8, 16, 32, 64):
        t = x[k] / U
        assert np.exp(table[k]) == pytest.approx(exact_product(g, t, a, b, vd_p, vd_s), rel=1e-3), k
    # the depletion matters here: without it the product would be larger by more than 10 %
    _, no_deposition = first_order_chain(x[64] / U, K, Y, a, b)
    assert no_deposition > 1.1 * np.exp(table[64])


def test_kernel_product_error_near_the_source_is_below_the_documented_bound():
    """C_product / (C_precursor plume without loss * chain) on the plume axis: the bound 1/(4 k^2)."""
    g = geometry(x_max=300e3)
    a, b = K, 0.0
    x = np.array([150.0, 290.0, 1200.0, 4700.0, 19000.0, 100e3])
    bound = np.array([0.25, 0.06, 0.016, 0.004, 0.001, 0.001])
    shape = pk.plume_concentration_points(pk.plume_sources_for_species(g, 1.0), x, np.zeros(x.size), 1)[0]
    product = plume_sources_for_product(g, 1.0, chain_log_table(g, K, Y, np.array([a]), np.array([b])))
    kernel = pk.plume_concentration_points(product, x, np.zeros(x.size), 1)[0]
    _, chain = first_order_chain(x / U, K, Y, a, b)
    error = 1.0 - kernel / (shape * chain)
    assert np.all(error >= -1e-9) and np.all(error <= bound), error
