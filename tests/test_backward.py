"""Backward (receptor-oriented) particles: the adjoint chemistry, the kernels against their NumPy twins,
the time-reversed transport, the footprint normalisation and bit-identity.

The duality of the two directions on real cases (13 JJJ city centres) is tests/test_duality.py.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from airshed.model import backward as bw
from airshed.model import backward_reference as ref
from airshed.model.lagrangian import LagrangianParameters, MetWindow, ParticleRun
from airshed.model.particle_records import Grid
from airshed.model.release import ReleaseTable, area_release_table
from airshed.physics.adjoint import AIR, adjoint_slots
from airshed.physics.mechanism import (
    EMITTED_SPECIES,
    OUTPUT_SPECIES,
    TRACERS,
    default_mechanism,
    first_order_chain,
)

MECH = default_mechanism()


def test_slots_of_the_default_mechanism():
    slots = adjoint_slots(TRACERS, MECH.conversions)
    assert slots.names == (AIR, "SO2<-SO2", "NOx<-NOx", "PM2.5<-PM2.5", "NH3<-NH3", "NMVOC<-NMVOC",
                           "sulfate<-sulfate", "sulfate<-SO2", "nitrate<-nitrate", "nitrate<-NOx")
    # one link per conversion and receptor: sulfate's weight feeds SO2's, nitrate's NOx's
    links = {(slots.names[a], slots.names[b])
             for a, b in zip(slots.link_source, slots.link_target, strict=True)}
    assert links == {("sulfate<-sulfate", "sulfate<-SO2"), ("nitrate<-nitrate", "nitrate<-NOx")}
    np.testing.assert_array_equal(slots.initial_weights(), [1, 1, 1, 1, 1, 1, 1, 0, 1, 0])
    matrix, emitted = slots.output_matrix(MECH.output_composition, OUTPUT_SPECIES, EMITTED_SPECIES)
    pm = OUTPUT_SPECIES.index("PM2.5")
    assert {slots.names[s] for s in np.flatnonzero(matrix[pm])} == {"PM2.5<-PM2.5", "sulfate<-SO2",
                                                                     "nitrate<-NOx"}
    assert emitted[slots.index("sulfate", "sulfate")] == -1 and emitted[0] == -1
    assert emitted[slots.index("sulfate", "SO2")] == EMITTED_SPECIES.index("SO2")


def test_a_two_step_chain_links_every_ancestor():
    from airshed.physics.mechanism import Conversion

    chain = (Conversion("A", "B", 1e-4, 2.0), Conversion("B", "C", 2e-4, 0.5))
    slots = adjoint_slots(("A", "B", "C"), chain)
    assert slots.names == (AIR, "A<-A", "B<-B", "B<-A", "C<-C", "C<-A", "C<-B")
    pairs = {(slots.names[a], slots.names[b])
             for a, b in zip(slots.link_source, slots.link_target, strict=True)}
    assert pairs == {("B<-B", "B<-A"), ("C<-B", "C<-A"), ("C<-C", "C<-B")}


def _removal_records(k_so2: float, k_sulfate: float, dry: bool):
    """Per-slot removal of the default slots: SO2 and sulfate lost by dry deposition only (+ conversion)."""
    slots = adjoint_slots(TRACERS, MECH.conversions)
    vd = np.zeros(len(TRACERS))
    vd[TRACERS.index("SO2")], vd[TRACERS.index("sulfate")] = k_so2 * 30.0, k_sulfate * 30.0
    params = LagrangianParameters.for_species(TRACERS, deposition_velocity_m_s=vd, wet_a_per_s=np.zeros(7),
                                              conversions=MECH.conversions)
    removal, links = bw.adjoint_records(params, slots)
    return slots, removal, links


@pytest.mark.parametrize("dry", [True, False])
def test_adjoint_weights_are_the_transpose_of_the_forward_chain(dry):
    """lambda_{sulfate<-SO2} after n steps from a unit sulfate weight = sulfate formed from unit SO2.

    The forward step (lagrangian.remove_and_convert) is P' = P e_a, S' = S e_b + y k P (1 - e_a)/a; its
    transpose is what the adjoint kernel does, so the two agree to rounding; both approach the closed form
    (Bateman) as dt -> 0.
    """
    k_so2_dep, k_sul_dep = 2e-5, 1e-5
    slots, removal, links = _removal_records(k_so2_dep, k_sul_dep, dry)
    conversion = MECH.conversions[0]
    k, y = conversion.rate_per_s, conversion.yield_
    a = k + (k_so2_dep if dry else 0.0)
    b = k_sul_dep if dry else 0.0
    dt, n = 300.0, 288  # one day
    weights = slots.initial_weights()[:, None].copy()
    z = np.array([10.0 if dry else 500.0])
    for _ in range(n):
        bw.adjoint_weights(weights, z, np.array([True]), np.zeros(1), removal, links, dt, 1024)
    P, S = 1.0, 0.0
    for _ in range(n):
        phi_a = -np.expm1(-a * dt) / a
        P, S = P * np.exp(-a * dt), S * np.exp(-b * dt) + y * k * P * phi_a
    lam = weights[slots.index("sulfate", "SO2"), 0]
    assert lam == pytest.approx(S, rel=1e-12)
    assert weights[slots.index("sulfate", "sulfate"), 0] == pytest.approx(np.exp(-b * n * dt), rel=1e-12)
    assert weights[slots.index("SO2", "SO2"), 0] == pytest.approx(np.exp(-a * n * dt), rel=1e-12)
    _, s_closed = first_order_chain(np.array(n * dt), k, y, a, b)
    assert lam == pytest.approx(float(s_closed), rel=2e-3)  # first order in dt: a dt = 0.8 % here
    assert weights[0, 0] == 1.0  # air: no removal


def _random_particles(rng, n, grid):
    x = grid.x0 + rng.uniform(0.2, grid.nx - 0.2, n) * grid.dx
    y = grid.y0 + rng.uniform(0.2, grid.ny - 0.2, n) * grid.dx
    z = rng.uniform(0.0, 300.0, n)
    alive = rng.uniform(size=n) > 0.1
    return x, y, z, alive


GRID = Grid(0.0, 0.0, 1000.0, 12, 10, 3, np.array([10.0, 100.0, 1000.0]), 3000.0, 50.0)


def test_kernels_match_their_numpy_twins():
    rng = np.random.default_rng(4)
    n = 3000
    x, y, z, alive = _random_particles(rng, n, GRID)
    surface = rng.uniform(0.0, 2.0, (GRID.ny * 5 * GRID.nx)).astype(np.float32)
    rain = np.zeros(n)
    bw.rain_at_particles(x, y, alive, surface, GRID, rain)
    np.testing.assert_allclose(rain, ref.rain_at_particles_reference(x, y, alive, surface, GRID), rtol=1e-6,
                               atol=1e-12)
    slots = adjoint_slots(TRACERS, MECH.conversions)
    params = LagrangianParameters.for_species(TRACERS, decay_per_s=np.full(7, 1e-6),
                                              conversions=MECH.conversions)
    removal, links = bw.adjoint_records(params, slots)
    weights = rng.uniform(0.0, 1.0, (slots.size, n))
    expected = weights.copy()
    bw.adjoint_weights(weights, z, alive, rain, removal, links, 300.0, 256)
    ref.adjoint_weights_reference(expected, z, alive, rain, removal, links, 300.0)
    np.testing.assert_allclose(weights, expected, rtol=1e-13, atol=0.0)
    # footprint sampling at stacks and in receptor boxes, and the fold
    tag = rng.integers(0, 3, n).astype(np.int32)
    pid = np.arange(n, dtype=np.int64) * 7919
    layers = bw.stack_layers(np.array([3500.0, 3600.0, 8200.0]), np.array([2500.0, 2500.0, 6100.0]),
                             np.array([120.0, 20.0, 260.0]), 50.0, GRID.x0, GRID.y0, GRID.dx, GRID.nx,
                             GRID.ny)
    factor = rng.uniform(0.9, 1.1, n)
    acc, acc_ref = np.zeros((3, slots.size, 3)), np.zeros((3, slots.size, 3))
    args = (x, y, z, alive, tag, weights, factor, 300.0, layers)
    bw.accumulate_at_stacks(*args, acc)
    ref.accumulate_at_stacks_reference(*args, acc_ref)
    np.testing.assert_allclose(acc, acc_ref, rtol=1e-12)
    assert acc.sum() > 0.0
    boxes = bw.receptor_boxes([2000.0, 7300.0], [4000.0, 5200.0], [900.0, 1500.0], [0.0, 100.0],
                              [50.0, 200.0],
                              GRID.x0, GRID.y0, GRID.dx, GRID.nx, GRID.ny)
    box, box_ref = np.zeros((2, 4, 3, slots.size)), np.zeros((2, 4, 3, slots.size))
    bw.accumulate_in_boxes(x, y, z, alive, tag, pid, weights, 60.0, boxes, 17, box)
    ref.accumulate_in_boxes_reference(x, y, z, alive, tag, pid, weights, 60.0, boxes, 17, box_ref)
    np.testing.assert_allclose(box, box_ref, rtol=1e-12)
    assert (box.sum(axis=(0, 2, 3)) > 0).sum() >= 3  # the batches share the particles
    footprint = rng.uniform(0.0, 5.0, (4, slots.size, 120)) * (rng.uniform(size=(4, 1, 120)) > 0.5)
    cell = rng.integers(0, 120, 50)
    area_tag = np.sort(rng.integers(0, 6, 50))
    rate = rng.uniform(0.0, 1.0, (50, 5))
    _, emitted = slots.output_matrix(MECH.output_composition, OUTPUT_SPECIES, EMITTED_SPECIES)
    active = np.array([True, False, True, True])
    out, out_ref = np.zeros((4, 6, slots.size)), np.zeros((4, 6, slots.size))
    bw.fold_area_sources(footprint, active, cell, area_tag, rate, emitted, 1e-7, out)
    ref.fold_area_sources_reference(footprint, active, cell, area_tag, rate, emitted, 1e-7, out_ref)
    np.testing.assert_allclose(out, out_ref, rtol=1e-12)
    assert not out[1].any() and not out[:, :, 0].any()  # inactive row; 'air' is not folded


def uniform_met(nx=40, ny=30, dx=1000.0, u=2.0, v=0.5, h=800.0, ustar=0.4, wstar=1.5, inv_L=-0.02,
                precip=0.0, hours=2):
    """Uniform, stationary met on a grid (the fields every test here builds in code)."""
    nt, nz = hours + 1, 3
    shape3, shape2 = (nt, nz, ny, nx), (nt, ny, nx)
    return MetWindow(times=np.arange(nt) * 3600.0, z_levels=np.array([10.0, 500.0, 2000.0]),
                     u=np.full(shape3, u), v=np.full(shape3, v), w=np.zeros(shape3),
                     mixing_height=np.full(shape2, h), ustar=np.full(shape2, ustar),
                     wstar=np.full(shape2, wstar),
                     inv_L=np.full(shape2, inv_L), precip=np.full(shape2, precip))


def test_time_reversed_met_negates_the_wind_and_runs_the_clock_backward():
    met = uniform_met(hours=2)
    u = np.arange(3)[:, None, None, None] + np.zeros(met.u.shape)
    met = MetWindow(times=met.times, z_levels=met.z_levels, u=u, v=met.v, w=met.w,
                    mixing_height=met.mixing_height * (1 + np.arange(3))[:, None, None], ustar=met.ustar,
                    wstar=met.wstar, inv_L=met.inv_L, precip=met.precip)
    rev = bw.time_reversed(met, t_end=7200.0)
    np.testing.assert_array_equal(rev.times, [0.0, 3600.0, 7200.0])
    np.testing.assert_array_equal(rev.u[:, 0, 0, 0], [-2.0, -1.0, -0.0])
    np.testing.assert_array_equal(rev.mixing_height[:, 0, 0], [2400.0, 1600.0, 800.0])


def test_a_backward_trajectory_retraces_the_forward_one():
    """Without turbulence a particle moved forward then backward through the same met returns (RK2)."""
    nx, ny, dx = 60, 50, 1000.0
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    base = uniform_met(nx, ny, dx, hours=1)
    t = np.arange(2)[:, None, None, None]
    u = 3.0 + 0.8 * np.sin(yy / 9.0)[None, None] + 0.5 * t + np.zeros(base.u.shape)
    v = 1.0 + 0.6 * np.cos(xx / 11.0)[None, None] + np.zeros(base.v.shape)
    met = MetWindow(times=base.times, z_levels=base.z_levels, u=u, v=v, w=base.w,
                    mixing_height=np.full(base.mixing_height.shape, 10.0), ustar=base.ustar, wstar=base.wstar,
                    inv_L=base.inv_L, precip=base.precip)
    params = LagrangianParameters.for_species(("PM2.5",), horizontal_turbulence=False,
                                              k_free_vertical_m2_s=0.0,
                                              max_time_step_s=60.0, wet_a_per_s=[0.0],
                                              deposition_velocity_m_s=[0.0])
    run = ParticleRun(0.0, 0.0, dx, nx, ny, 3000.0, 1, params, seed=1)
    start = ReleaseTable(np.array([15500.0]), np.array([12500.0]), np.zeros(1), np.array([800.0]),
                         np.array([800.0]), np.zeros(1), np.ones((1, 1)))
    run.release(start, np.array([1]), 0.0, 60.0, 0.0, 60.0, np.ones((1, 1)))
    assert run.n == 1
    for k in range(60):
        run.step_once(met, k * 60.0, 60.0)
    x1, y1 = run.x[0], run.y[0]
    assert np.hypot(x1 - 15500.0, y1 - 12500.0) > 10_000.0 and run.alive[0]
    rev = bw.time_reversed(met, t_end=3600.0)
    for k in range(60):
        run.step_once(rev, k * 60.0, 60.0)
    assert np.hypot(run.x[0] - 15500.0, run.y[0] - 12500.0) < 1.0  # m, after > 10 km and back


def _homogeneous_case(batches=1, seed=3):
    """Backward particles from two receptor boxes in uniform unstable met (one hour, all rows active)."""
    met = uniform_met(hours=2)
    slots = adjoint_slots(TRACERS, MECH.conversions)
    forward = LagrangianParameters.for_species(TRACERS, conversions=MECH.conversions)
    rows = 2 * batches
    run = bw.BackwardRun(0.0, 0.0, 1000.0, 40, 30, 2000.0, rows, forward, slots, seed)
    table = ReleaseTable(np.repeat([30500.0, 25000.0], batches), np.repeat([15500.0, 20000.0], batches),
                         np.full(rows, 500.0), np.zeros(rows), np.full(rows, 50.0), np.arange(rows),
                         np.zeros((rows, slots.size)))
    weights = np.tile(slots.initial_weights(), (rows, 1))
    return met, slots, run, table, weights


def _run_homogeneous(threads=None, stations=(0, 1), seed=3):
    met, slots, run, table, weights = _homogeneous_case(seed=seed)
    table = table.take(np.array(stations, dtype=np.int64))
    before = numba.get_num_threads()
    if threads:
        numba.set_num_threads(threads)
    try:
        rev = bw.time_reversed(met, 7200.0)
        fps = []
        for hour in range(2):
            run.advance(rev, table if hour == 0 else None, hour * 3600.0, (hour + 1) * 3600.0,
                        np.full(len(stations), 400), weights[: len(stations)])
            fps.append(run.footprint.copy())
    finally:
        numba.set_num_threads(before)
    return np.stack(fps), run


def test_footprint_of_uniform_flow_has_the_air_residence_time():
    """Released over the lowest 50 m, the air of the receptor spends its time in the source layer upwind.

    With all removal in the per-slot weights, the 'air' slot sums particle-seconds below 50 m: per
    particle at most the 7200 s of the run, and most of the first hour (released over 0-50 m of a
    convective layer, the particles leave the layer at the rate of the mixing).
    """
    fps, run = _run_homogeneous()
    air = fps[:, :, 0].sum(axis=(0, 2)) / 400.0  # s per particle, per station
    assert np.all(air > 0.0) and np.all(air < 7200.0)
    assert run.alive_per_row().sum() <= 800
    # upwind: the footprint's centre of mass lies against the wind (u, v > 0) from the receptor
    cells = fps[:, 0, 0].sum(axis=0).reshape(30, 40)
    jj, ii = np.indices(cells.shape)
    xc = ((ii + 0.5) * 1000.0 * cells).sum() / cells.sum()
    yc = ((jj + 0.5) * 1000.0 * cells).sum() / cells.sum()
    assert xc < 30500.0 - 1000.0 and yc < 15500.0


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
def test_backward_run_is_bit_identical_for_threads_and_station_subsets():
    both_1, _ = _run_homogeneous(threads=1)
    both_2, _ = _run_homogeneous(threads=2)
    np.testing.assert_array_equal(both_1, both_2)
    alone, _ = _run_homogeneous(stations=(1,))
    np.testing.assert_array_equal(alone[:, 1], both_1[:, 1])  # a station's particles move as in the full run
    assert not alone[:, 0].any()
    other, _ = _run_homogeneous(seed=4)
    assert not np.array_equal(other, both_1)


def test_receptor_boxes_reject_boxes_outside_the_grid():
    from airshed.errors import AirshedInputError

    with pytest.raises(AirshedInputError, match="inside the grid"):
        bw.receptor_boxes([500.0], [500.0], [900.0], [0.0], [50.0], 0.0, 0.0, 1000.0, 10, 10)


def test_area_source_footprint_fold_reproduces_a_uniform_layer_concentration():
    """A receptor whose particles stay in a cell's source layer: C = F E / (dx^2 H), the forward result.

    Forward: a cell source E (kg/s) mixed through 0-50 m of a cell with no wind and no vertical escape
    keeps adding E dt per step; backward: particles released in the same box accumulate weight * dt in
    that cell. Folding gives the same mass per volume (the normalisation of the footprint, in numbers).
    """
    dt, steps = 60.0, 60
    footprint = np.zeros((1, 2, 4))
    footprint[0, 1, 2] = dt * steps  # one particle-hour per released particle, in cell 2
    out = np.zeros((1, 1, 2))
    rate = np.array([[2.0]])  # kg/s
    bw.fold_area_sources(footprint, np.array([True]), np.array([2]), np.array([0]), rate, np.array([-1, 0]),
                         1.0 / (1000.0**2 * 50.0), out)
    assert out[0, 0, 1] == pytest.approx(2.0 * 3600.0 / (1000.0**2 * 50.0))
    table = area_release_table(np.array([500.0]), np.array([500.0]), 1000.0, np.zeros(1), np.ones((1, 1)))
    assert table.z_top[0] == 50.0  # the source layer is where area sources release
