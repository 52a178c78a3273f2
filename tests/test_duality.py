"""Duality: forward and backward particle runs on the same met give the same source-receptor matrix.

A forward run samples each receptor volume directly (:class:`~airshed.model.backward.ReceptorSampledRun`);
a backward run releases particles in the same volumes and folds their footprints with the emissions. Both
are Monte-Carlo estimates of one quantity, each with its standard error from independent batches of its
particles (random groups), so every source-region x receptor entry must agree within 3 combined standard
errors, and the total (the emission-weighted sum of the sensitivities) within 5 %:

1. homogeneous turbulence: first on the kernels alone, a uniform, stationary flow over a convective layer
   whose turbulence (Hanna's unstable sigma_u, T_L) does not vary in space, with sources and receptors
   spanning the whole mixed layer so the vertical profile plays no part; then through the whole pipeline
   with the 13 JJJ city centres as receptors and the JJJ inventory as sources, on meteorology made
   homogeneous and steady (the episode's fields replaced by one convective layer of fixed depth, u*, w*
   and L over the whole grid, under a uniform south-westerly wind along the chain of cities);
2. the real profiles: the built-in JJJ episode (Hanna's inhomogeneous profiles with the Thomson drift,
   diurnal mixing height, sheared wind) through the whole pipeline, the 13 JJJ city centres as receptors,
   no removal;
3. the same with dry and wet deposition and the SO2 -> sulfate, NOx -> nitrate chemistry on (the adjoint),
   over the passage of the episode's rain band.

Cases 2 and 3 run in a reduced form in CI (27 km grid, one day); AIRSHED_FULL_VALIDATION=1 runs them on
the 9 km grid of the default case (README, "Receptor-oriented runs").
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np
import pytest

from airshed.model import backward as bw
from airshed.model.lagrangian import DEFAULT_STEP_FRACTION, LagrangianParameters, MetWindow
from airshed.model.release import ReleaseTable, area_release_table, point_release_table
from airshed.physics.adjoint import adjoint_slots

FULL = os.environ.get("AIRSHED_FULL_VALIDATION") == "1"
STATIONS = os.path.join(os.path.dirname(__file__), "..", "examples", "jjj_city_centres.csv")


def z_scores(forward: np.ndarray, backward: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means and z = (B - F) / combined SE of per-batch estimates [batch, ...] of the two directions."""
    nf, nb = forward.shape[0], backward.shape[0]
    f, b = forward.mean(axis=0), backward.mean(axis=0)
    se = np.sqrt(forward.var(axis=0, ddof=1) / nf + backward.var(axis=0, ddof=1) / nb)
    z = np.where(se > 0, (b - f) / np.where(se > 0, se, 1.0), np.where(b == f, 0.0, np.inf))
    return f, b, z


# --------------------------------------------------------------------------------------------------
# 1. homogeneous turbulence (kernels only)
# --------------------------------------------------------------------------------------------------
NX, NY, DX, H = 40, 30, 1000.0, 800.0
HOURS = 3
BATCHES = 16


def homogeneous_met(convergence: float = 0.0) -> MetWindow:
    """Uniform unstable layer under a wind of (2, 0.4) m/s, or converging in x: du/dx = -convergence."""
    nt, shape3, shape2 = HOURS + 1, (HOURS + 1, 3, NY, NX), (HOURS + 1, NY, NX)
    x = (np.arange(NX) + 0.5) * DX
    u = 2.0 - convergence * (x - 20_000.0) + np.zeros(shape3)
    return MetWindow(times=np.arange(nt) * 3600.0, z_levels=np.array([10.0, 500.0, 2000.0]),
                     u=u, v=np.full(shape3, 0.4), w=np.zeros(shape3),
                     mixing_height=np.full(shape2, H), ustar=np.full(shape2, 0.4), wstar=np.full(shape2, 1.5),
                     inv_L=np.full(shape2, -0.02), precip=np.zeros(shape2))


def homogeneous_sources() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four source regions: strips of 2 x 8 cells upwind of the receptors; cell centres and region index."""
    cells, region = [], []
    for k in range(4):
        for i in range(3 + 2 * k, 5 + 2 * k):
            for j in range(9, 17):
                cells.append(j * NX + i)
                region.append(k)
    cells = np.array(cells)
    return cells, np.array(region), np.full(cells.size, 0.05)  # kg/s per cell


RECEPTORS = (np.array([16500.0, 18500.0, 21500.0]), np.array([13500.0, 15500.0, 14500.0]))


def homogeneous_forward(seed: int, met: MetWindow, depth: float = H, **params) -> np.ndarray:
    """Per-batch forward estimates [B, receptor, region] of the last hour's mean concentration, kg m-3.

    Sources release through, and receptors sample, the lowest ``depth`` m; ``params`` of the particle run.
    """
    cells, region, rate = homogeneous_sources()
    params = LagrangianParameters.for_species(("PM2.5",), particles_per_hour=40000,
                                              deposition_velocity_m_s=[0.0], wet_a_per_s=[0.0], **params)
    boxes = bw.receptor_boxes(*RECEPTORS, 500.0, 0.0, depth, 0.0, 0.0, DX, NX, NY)
    run = bw.ReceptorSampledRun(0.0, 0.0, DX, NX, NY, 2000.0, 4, params, seed, boxes, BATCHES)
    x = (cells % NX + 0.5) * DX
    y = (cells // NX + 0.5) * DX
    sources = area_release_table(x, y, DX, region, rate[:, None], depth=depth)
    for hour in range(HOURS):
        if hour == HOURS - 1:
            run.box_sum[:] = 0.0
        run.advance(met, sources, hour * 3600.0, (hour + 1) * 3600.0)
    volume = DX * DX * depth
    return np.moveaxis(run.box_sum[..., 0], 1, 0) * (BATCHES / (volume * 3600.0))


def homogeneous_backward(seed: int, met: MetWindow, depth: float = H, **params) -> np.ndarray:
    """Per-batch backward estimates [B, receptor, region], kg m-3, from footprints in the lowest ``depth``."""
    cells, region, rate = homogeneous_sources()
    forward = LagrangianParameters.for_species(("PM2.5",), deposition_velocity_m_s=[0.0], wet_a_per_s=[0.0],
                                               **params)
    slots = adjoint_slots(("PM2.5",), ())
    nq = RECEPTORS[0].size
    rows = nq * BATCHES
    run = bw.BackwardRun(0.0, 0.0, DX, NX, NY, 2000.0, rows, forward, slots, seed, source_depth=depth)
    table = ReleaseTable(np.repeat(RECEPTORS[0], BATCHES), np.repeat(RECEPTORS[1], BATCHES),
                         np.full(rows, 500.0), np.zeros(rows), np.full(rows, depth), np.arange(rows),
                         np.zeros((rows, slots.size)))
    per_source = 400
    rev = bw.time_reversed(met, HOURS * 3600.0)
    weights = np.tile(slots.initial_weights(), (rows, 1))
    out = np.zeros((rows, 4, slots.size))
    _, emitted = slots.output_matrix({"PM2.5": ("PM2.5",)}, ("PM2.5",), ("PM2.5",))
    for hour in range(HOURS):
        run.advance(rev, table if hour == 0 else None, hour * 3600.0, (hour + 1) * 3600.0,
                    np.full(rows, per_source), weights)
        bw.fold_area_sources(run.footprint, np.ones(rows, bool), cells, region, rate[:, None], emitted,
                             1.0 / (DX * DX * depth), out)
    est = out[..., slots.index("PM2.5", "PM2.5")] / per_source
    return np.moveaxis(est.reshape(nq, BATCHES, 4), 1, 0)


def test_duality_in_homogeneous_turbulence():
    met = homogeneous_met()
    f_b = homogeneous_forward(seed=1, met=met)
    b_b = homogeneous_backward(seed=2, met=met)
    f, b, z = z_scores(f_b, b_b)
    assert (f > 0).all() or (f > 0).sum() >= 9  # the receptors see most regions
    assert np.abs(z).max() <= 3.0, (f, b, z)
    assert b.sum() / f.sum() == pytest.approx(1.0, abs=0.05)
    # the per-entry agreement is not luck of the draw: a wrong normalisation (e.g. the source layer depth
    # of the fold off by 10 %) shows as a shift far beyond the standard errors
    assert np.abs((1.1 * b_b.mean(0) - f) / np.sqrt(f_b.var(0, ddof=1) / BATCHES
                                                     + b_b.var(0, ddof=1) / BATCHES)).max() > 3.0



def test_duality_in_a_converging_flow_needs_the_liouville_factor(monkeypatch):
    """Where the mean wind converges (w = 0), forward particles crowd; the backward weights carry 1/J.

    du/dx = -6e-5 s-1 compresses the air by ~25 % on its way from the sources to the receptors. With the
    factor exp(-int div U dt) the two directions agree; without it the backward run is low by that much.
    """
    met = homogeneous_met(convergence=6e-5)
    f_b = homogeneous_forward(seed=1, met=met)
    b_b = homogeneous_backward(seed=2, met=met)
    f, b, z = z_scores(f_b, b_b)
    assert np.abs(z).max() <= 3.0, (f, b, z)
    assert b.sum() / f.sum() == pytest.approx(1.0, abs=0.05)
    monkeypatch.setattr(bw, "divergence_field", lambda met, dx, inv_h=0.0: np.zeros(met.u.shape))
    _, b_plain, z_plain = z_scores(f_b, homogeneous_backward(seed=2, met=met))
    assert b_plain.sum() / f.sum() < 0.85 and np.abs(z_plain).max() > 3.0


# --------------------------------------------------------------------------------------------------
# the top of the mixed layer, controlled: the mixing height falls under a residual layer
# --------------------------------------------------------------------------------------------------
#: Hanna's profiles at the well-mixed vertical sub-step (0.05 T_Lw): the sub-step does not mask the exchange
#: across the mixing height
ML_TOP_STEP = {"turbulence_scheme": "hanna", "turbulence_step_fraction": 0.05}


def falling_mixing_height_met() -> MetWindow:
    """:func:`homogeneous_met` with the mixing height falling from 800 m to 200 m over the second hour."""
    met = homogeneous_met()
    h = np.array([H, H, 200.0, 200.0])[:, None, None]
    return dataclasses.replace(met, mixing_height=np.broadcast_to(h, met.mixing_height.shape).copy())


def test_duality_across_a_falling_mixing_height_needs_an_exchange_alike_both_ways():
    """Where h falls, the air it leaves above must cross back into the mixed layer as its air crosses out.

    Sources and receptors in the lowest 50 m; h falls from 800 m to 200 m in the second hour and leaves
    the air above 200 m in a residual layer. With random vertical displacements above h (here an
    exaggerated 5 m2/s, so that three hours show it) that air leaks down into the mixed layer, whose
    particles are reflected at h: a one-way exchange that only the forward run sees (backward in time h
    rises and no backward particle is ever above it). Measured: B/F 0.70, z -2.8 to -5.8. Without them
    (``[lagrangian] free_vertical_diffusion = false``, FLEXPART's free troposphere) air crosses h only as h
    moves, alike in both directions: B/F 1.024, max |z| 2.3 (the former default's 0.1 m2/s: 0.978, max |z|
    1.6, the leak too slow for three hours). Before the backward step read the mixing height at its end
    (:class:`~airshed.model.backward.SurfaceAtStepEnd`) B/F was 1.078 (max |z| 4.7) without them; with the
    Euler step at the default sub-step of 0.5 T_Lw it is 1.24.
    """
    met = falling_mixing_height_met()
    f_b = homogeneous_forward(1, met, 50.0, k_free_vertical_m2_s=0.0, **ML_TOP_STEP)
    b_b = homogeneous_backward(2, met, 50.0, k_free_vertical_m2_s=0.0, **ML_TOP_STEP)
    f, b, z = z_scores(f_b, b_b)
    assert np.abs(z).max() <= 3.0 and b.sum() / f.sum() == pytest.approx(1.0, abs=0.05), (f, b, z)
    f_b = homogeneous_forward(1, met, 50.0, k_free_vertical_m2_s=5.0, **ML_TOP_STEP)
    b_b = homogeneous_backward(2, met, 50.0, k_free_vertical_m2_s=5.0, **ML_TOP_STEP)
    f_leak, b_leak, z_leak = z_scores(f_b, b_b)
    assert f_leak.sum() > 1.3 * f.sum()  # the leak adds air from the residual layer at the ground
    assert b_leak.sum() / f_leak.sum() < 0.85 and np.abs(z_leak).max() > 3.0 and np.all(z_leak < 0.0)


@pytest.mark.xfail(reason="the similarity scheme's skewed convective PDF (-h/L = 16) at its sub-step of "
                          "0.1 T_Lw: backward 10 % above forward near the ground (B/F 1.098, max|z| 2.26 "
                          "on these seeds; at 0.05 T_Lw 1.067, at 0.02 T_Lw 0.988, max|z| 2.0; at 0.5 T_Lw "
                          "1.67; README, Duality)",
                   strict=True)
def test_duality_near_the_ground_with_the_skewed_convective_pdf():
    """Sources and receptors in the lowest 50 m of a uniform convective layer, the similarity scheme's step.

    Gaussian profiles agree here at their steps (similarity with -h/L = 4 at 0.1 T_Lw: B/F 0.998; Hanna at
    0.1 T_Lw on these seeds: 1.013, max|z| 1.6; at 0.5 T_Lw: 1.01, both directions 28 % above the
    well-mixed step's value, alike). Until 5 Dec this test left out the scheme and so ran Hanna's Gaussian
    profiles, which pass: its "passes or fails by draw" was that.
    """
    met, step = homogeneous_met(), {"turbulence_scheme": "similarity"}  # with its default 0.1 T_Lw sub-step
    f, b, z = z_scores(homogeneous_forward(1, met, 50.0, **step), homogeneous_backward(2, met, 50.0, **step))
    assert np.abs(z).max() <= 3.0 and b.sum() / f.sum() == pytest.approx(1.0, abs=0.05), (f, b, z)


def test_free_vertical_diffusion_reaches_both_directions():
    """``[lagrangian] free_vertical_diffusion``: off by default (no vertical diffusivity above h), both
    directions; ``true`` gives both the kernel record's 0.1 m2/s."""
    from airshed.cores.lagrangian import LagrangianCore
    from airshed.model.backward import transport_parameters
    from airshed.pipeline.study import prepare_study

    cfg = jjj_case(False)
    assert not cfg.lagrangian.free_vertical_diffusion
    for free, k in ((False, 0.0), (True, LagrangianParameters.k_free_vertical_m2_s)):
        cfg.lagrangian.free_vertical_diffusion = free
        study = prepare_study(cfg)
        params = LagrangianCore(cfg, study.inputs, study.mechanism).params
        slots = adjoint_slots(study.mechanism.tracers, params.conversions)
        assert params.k_free_vertical_m2_s == k
        assert transport_parameters(params, slots, 50.0).turbulence().k_free_vertical == k
    assert LagrangianParameters.k_free_vertical_m2_s == 0.1


# --------------------------------------------------------------------------------------------------
# removal and chemistry, controlled: one source cell, one receptor, a rain edge between them
# --------------------------------------------------------------------------------------------------
EDGE_SOURCE, EDGE_RECEPTOR, EDGE_Y, EDGE_X, EDGE_RAIN = 4500.0, 14500.0, 15500.0, 10000.0, 5.0  # m, mm/h
EDGE_U, EDGE_K, EDGE_YIELD = 3.0, 0.5 / 3600.0, 1.5  # m/s, SO2 -> sulfate s-1 (amplified), mass yield
EDGE_A, EDGE_B = 8.4e-5, 0.79  # scavenging A P^B of both tracers, s-1


def rain_edge_met() -> MetWindow:
    """A uniform convective layer under a wind of 3 m/s along x; 5 mm/h of rain in the cells east of 10 km."""
    shape3, shape2 = (HOURS + 1, 3, NY, NX), (HOURS + 1, NY, NX)
    rain = np.where((np.arange(NX) + 0.5) * DX > EDGE_X, EDGE_RAIN, 0.0)
    return MetWindow(times=np.arange(HOURS + 1) * 3600.0, z_levels=np.array([10.0, 500.0, 2000.0]),
                     u=np.full(shape3, EDGE_U), v=np.zeros(shape3), w=np.zeros(shape3),
                     mixing_height=np.full(shape2, H), ustar=np.full(shape2, 0.4), wstar=np.full(shape2, 1.5),
                     inv_L=np.full(shape2, -0.02), precip=np.broadcast_to(rain, shape2).copy())


def rain_edge_parameters(**extra) -> LagrangianParameters:
    """SO2 and sulfate: conversion and scavenging only, no horizontal turbulence (advection is exact)."""
    from airshed.physics.mechanism import Conversion

    return LagrangianParameters.for_species(
        ("SO2", "sulfate"), deposition_velocity_m_s=[0.0, 0.0], wet_a_per_s=[EDGE_A, EDGE_A],
        wet_b=[EDGE_B, EDGE_B], decay_per_s=[0.0, 0.0], horizontal_turbulence=False,
        conversions=(Conversion("SO2", "sulfate", EDGE_K, EDGE_YIELD),), **extra)


def rain_edge_expectation(dt: float, substeps: int = 1) -> np.ndarray:
    """(SO2, sulfate) at the receptor, kg m-3 per kg/s of SO2, for advection at exactly EDGE_U.

    The expectation over the release position in the source cell (fine quadrature) of the forward
    step's own arithmetic (``substeps`` = 1): each step depletes by the rain at its start position
    (bilinear between cell centres), SO2 converts with (1 - exp(-k dt)) / k, and the particle is sampled at
    the end of the step; with many substeps, the continuous solution.
    """
    h = dt / substeps
    x0 = EDGE_SOURCE - 0.5 * DX + (np.arange(4000) + 0.5) * DX / 4000
    centres = (np.arange(NX) + 0.5) * DX
    rain = np.where(centres > EDGE_X, EDGE_RAIN, 0.0)
    so2, sulfate, acc = np.ones(x0.size), np.zeros(x0.size), np.zeros(2)
    for n in range(int(2.0 * 3600.0 / h)):
        lam = EDGE_A * np.interp(x0 + EDGE_U * n * h, centres, rain) ** EDGE_B
        k = EDGE_K + lam
        converted = so2 * -np.expm1(-k * h) / k * EDGE_K * EDGE_YIELD
        so2, sulfate = so2 * np.exp(-k * h), sulfate * np.exp(-lam * h) + converted
        x = x0 + EDGE_U * (n + 1) * h
        inside = np.abs(x - EDGE_RECEPTOR) < 0.5 * DX
        acc += [np.mean(so2 * inside) * h, np.mean(sulfate * inside) * h]
    return acc / (DX * DX * H)


def test_duality_with_conversion_across_a_rain_edge():
    """The removal and conversion of a backward step are the transpose of the forward step's.

    The forward step depletes a particle by the rain at its start position; read at the backward step's
    start (the forward step's end), the backward weights came out 4.7 % low here, where the receptor is in
    5 mm/h of rain and the source dry. Both directions now agree with each other and with the exact
    expectation of the forward discretisation; that differs from the continuous solution by its
    first-order splitting error (about 2.5 % with these exaggerated rates and a 164 s step).
    """
    met = rain_edge_met()
    boxes = bw.receptor_boxes(np.array([EDGE_RECEPTOR]), np.array([EDGE_Y]), 500.0, 0.0, H, 0.0, 0.0, DX,
                              NX, NY)
    params = rain_edge_parameters(particles_per_hour=40000)
    run = bw.ReceptorSampledRun(0.0, 0.0, DX, NX, NY, 2000.0, 1, params, 1, boxes, BATCHES)
    source = area_release_table(np.array([EDGE_SOURCE]), np.array([EDGE_Y]), DX, np.array([0]),
                                np.array([[1.0, 0.0]]), depth=H)
    for hour in range(HOURS):
        if hour == HOURS - 1:
            run.box_sum[:] = 0.0
        run.advance(met, source, hour * 3600.0, (hour + 1) * 3600.0)
    f_b = run.box_sum[0, :, 0, :] * (BATCHES / (DX * DX * H * 3600.0))  # [batch, (SO2, sulfate)]

    slots = adjoint_slots(("SO2", "sulfate"), rain_edge_parameters().conversions)
    back = bw.BackwardRun(0.0, 0.0, DX, NX, NY, 2000.0, BATCHES, rain_edge_parameters(), slots, 2,
                          source_depth=H)
    table = ReleaseTable(np.full(BATCHES, EDGE_RECEPTOR), np.full(BATCHES, EDGE_Y), np.full(BATCHES, 500.0),
                         np.zeros(BATCHES), np.full(BATCHES, H), np.arange(BATCHES),
                         np.zeros((BATCHES, slots.size)))
    rev, per_row = bw.time_reversed(met, HOURS * 3600.0), 2000
    cell = int(EDGE_Y // DX) * NX + int(EDGE_SOURCE // DX)
    footprint = np.zeros((BATCHES, slots.size))
    for hour in range(HOURS):
        back.advance(rev, table if hour == 0 else None, hour * 3600.0, (hour + 1) * 3600.0,
                     np.full(BATCHES, per_row), np.tile(slots.initial_weights(), (BATCHES, 1)))
        footprint += back.footprint[:, :, cell]
    b_b = footprint[:, [slots.index("SO2", "SO2"), slots.index("sulfate", "SO2")]] / (per_row * DX * DX * H)

    f, b, z = z_scores(f_b, b_b)
    assert np.abs(z).max() <= 3.0, (f, b, z)
    nsteps, dt = run.time_step(met, 3600.0)
    exact = rain_edge_expectation(dt)
    f_se, b_se = (a.std(axis=0, ddof=1) / np.sqrt(BATCHES) for a in (f_b, b_b))
    assert np.all(np.abs(f - exact) <= 3.0 * f_se), (f, exact, f_se)
    np.testing.assert_allclose(b, exact, rtol=2e-3)  # backward particles differ only in their heights
    # the forward scheme's own first-order error, shared by both directions
    continuous = rain_edge_expectation(dt, substeps=16)
    assert np.all(np.abs(exact / continuous - 1.0) < 0.04) and exact[0] > 1.01 * continuous[0]


def elevated_source_duality(step_fraction: float, **extra) -> tuple[np.ndarray, np.ndarray]:
    """Per-batch (forward, backward) surface concentrations from a 200 m stack in an 800 m convective layer.

    Uniform, steady met (:func:`rain_edge_met` without rain); the receptor is the 0-50 m box 10 km
    downwind; the backward run folds the stack with its layer (:func:`~airshed.model.backward.stack_layers`).
    """
    met = rain_edge_met()
    met = dataclasses.replace(met, precip=np.zeros_like(met.precip))
    kw = {"deposition_velocity_m_s": [0.0], "wet_a_per_s": [0.0], "turbulence_step_fraction": step_fraction,
          **extra}
    boxes = bw.receptor_boxes(np.array([EDGE_RECEPTOR]), np.array([EDGE_Y]), 500.0, 0.0, 50.0, 0.0, 0.0, DX,
                              NX, NY)
    params = LagrangianParameters.for_species(("PM2.5",), particles_per_hour=40000, **kw)
    run = bw.ReceptorSampledRun(0.0, 0.0, DX, NX, NY, 3000.0, 1, params, 1, boxes, BATCHES)
    stack = point_release_table(np.array([EDGE_SOURCE]), np.array([EDGE_Y]), np.array([200.0]), np.array([0]),
                                np.array([[1.0]]))
    for hour in range(HOURS):
        if hour == HOURS - 1:
            run.box_sum[:] = 0.0
        run.advance(met, stack, hour * 3600.0, (hour + 1) * 3600.0)
    f_b = run.box_sum[0, :, 0, 0] * (BATCHES / (DX * DX * 50.0 * 3600.0))
    slots = adjoint_slots(("PM2.5",), ())
    back = bw.BackwardRun(0.0, 0.0, DX, NX, NY, 3000.0, BATCHES,
                          LagrangianParameters.for_species(("PM2.5",), **kw), slots, 2, source_depth=50.0,
                          n_stacks=1)
    table = ReleaseTable(np.full(BATCHES, EDGE_RECEPTOR), np.full(BATCHES, EDGE_Y), np.full(BATCHES, 500.0),
                         np.zeros(BATCHES), np.full(BATCHES, 50.0), np.arange(BATCHES),
                         np.zeros((BATCHES, slots.size)))
    layers = bw.stack_layers(np.array([EDGE_SOURCE]), np.array([EDGE_Y]), np.array([200.0]), 50.0, 0.0, 0.0,
                             DX, NX, NY)
    rev, per_row, b_b = bw.time_reversed(met, HOURS * 3600.0), 4000, np.zeros(BATCHES)
    for hour in range(HOURS):
        back.advance(rev, table if hour == 0 else None, hour * 3600.0, (hour + 1) * 3600.0,
                     np.full(BATCHES, per_row), np.tile(slots.initial_weights(), (BATCHES, 1)), layers)
        b_b += back.stack_footprint[:, slots.index("PM2.5", "PM2.5"), 0] / (per_row * DX * DX * 50.0)
    return f_b[:, None], b_b[:, None]


def test_duality_of_a_stack_in_a_well_mixed_layer():
    """A stack's footprint (the layer around its release height) is the adjoint of its point release.

    With vertical sub-steps of 0.05 T_Lw the particle step keeps a well-mixed layer well mixed (README,
    tests/test_lagrangian_validation.py) and the two directions agree (measured B/F 1.022, z +0.6).
    """
    f, b, z = z_scores(*elevated_source_duality(0.05))
    assert abs(z[0]) <= 3.0 and b[0] / f[0] == pytest.approx(1.0, abs=0.05), (f, b, z)


def test_duality_of_a_stack_at_the_default_sub_step_with_the_splitting_integrator():
    """The splitting integrator keeps the layer well mixed at 0.5 T_Lw (measured B/F 0.958, z -1.2)."""
    f, b, z = z_scores(*elevated_source_duality(DEFAULT_STEP_FRACTION["hanna"], vertical_integrator="baoab"))
    assert abs(z[0]) <= 3.0 and b[0] / f[0] == pytest.approx(1.0, abs=0.05), (f, b, z)


@pytest.mark.xfail(reason="forward Euler step not well mixed at the default sub-step 0.5 T_Lw: too many "
                          "particles near the ground, so the forward surface concentration from a 200 m "
                          "stack is 39 % above the well-mixed step's and B/F is 0.71 (z -10.5)", strict=True)
def test_duality_of_a_stack_at_the_default_vertical_sub_step():
    f, b, z = z_scores(*elevated_source_duality(DEFAULT_STEP_FRACTION["hanna"]))
    assert abs(z[0]) <= 3.0, (f, b, z)


# --------------------------------------------------------------------------------------------------
# 2. and 3. the real profiles, then removal and chemistry: the built-in JJJ episode, 13 city centres
# --------------------------------------------------------------------------------------------------
NO_REMOVAL = {t: 0.0 for t in ("SO2", "NOx", "PM2.5", "NH3", "NMVOC", "sulfate", "nitrate")}
#: (grid km, hours, forward particles per hour, backward particles per station and period, batches)
SIZES = {False: (27.0, 24, 60000, 4000, 16), True: (9.0, 120, 100000, 20000, 16)}


def jjj_case(chemistry: bool):
    """Config of the duality case: the default episode with the front (and its rain) early in the run."""
    from airshed.config import parse_config

    cell, hours, fwd, bwd, batches = SIZES[FULL]
    end = np.datetime64("2017-12-01T00:00") + np.timedelta64(hours, "h")
    data = {
        "run": {"name": "duality", "start": "2017-12-01T00:00:00", "end": str(end), "seed": 17,
                "core": "lagrangian",
                "species": ["SO2", "NOx", "PM2.5", "NH3", "NMVOC"] if chemistry else ["PM2.5"]},
        "grid": {"cell_km": cell},
        "regions": {"set": "jjj-cities", "population": "builtin"},
        # the front (and the rain band around it) passes the cities during the compared day
        "meteorology": {"format": "builtin", "builtin": {"stagnation_days": 3.5 if FULL else 0.6}},
        "emissions": {"inventory": "builtin", "builtin": {"year": 2017}},
        "lagrangian": {"particles_per_hour": fwd},
        "receptors": {"stations": STATIONS},
        "footprint": {"averaging_h": 24, "particles_per_period": bwd, "batches": batches},
    }
    if not chemistry:
        data["chemistry"] = {"so2_to_sulfate_per_hour": 0.0, "nox_to_nitrate_per_hour": 0.0,
                             "dry_deposition_velocity_m_s": NO_REMOVAL, "wet_scavenging_a_per_s": NO_REMOVAL}
    return parse_config(data, config_dir=os.path.dirname(STATIONS))


class HomogeneousMet:
    """The episode's meteorology with every field the particles read made uniform and steady (module doc).

    A convective layer of 800 m (u* 0.4 m/s, w* 1.5 m/s, L = -50 m) everywhere, no rain, no vertical wind,
    and a wind of 4 m/s from the south-west, the same in every cell, level and hour: it carries the air
    along the chain of cities from Handan to Beijing and Tangshan. The other fields (those of plume rise)
    stay the episode's: both directions read them alike.
    """

    def __init__(self, source):
        self.source, self.times, self.label = source, source.times, f"{source.label} (made homogeneous)"

    def window(self, start, end):
        ds = self.source.window(start, end).copy()
        for name, value in (("u", 4.0 / np.sqrt(2.0)), ("v", 4.0 / np.sqrt(2.0)), ("w", 0.0), ("blh", 800.0),
                            ("ustar", 0.4), ("wstar", 1.5), ("obukhov_length", -50.0), ("precip", 0.0)):
            ds[name] = ds[name] * 0.0 + value
        return ds


@functools.cache
def jjj_duality(chemistry: bool, species: tuple[str, ...], homogeneous: bool = False, lagrangian: tuple = ()):
    """Duality tables of one JJJ case (computed once per test session: two tests read each).

    ``lagrangian``: (key, value) pairs set in the config's ``[lagrangian]`` table (both directions).
    """
    from airshed.footprint import (
        backward_per_batch,
        duality,
        forward_receptor_series,
        run_backward,
        study_receptors,
    )
    from airshed.pipeline.study import MetByDay, prepare_study

    cfg = jjj_case(chemistry)
    for key, value in lagrangian:
        setattr(cfg.lagrangian, key, value)
    study = prepare_study(cfg)
    if homogeneous:
        study.inputs = dataclasses.replace(study.inputs, met=HomogeneousMet(study.inputs.met))
        study.met = MetByDay(study.inputs.met)
    receptors = study_receptors(study)
    forward = forward_receptor_series(study, receptors, cfg.footprint.batches)
    backward = backward_per_batch(run_backward(study, receptors), study.mechanism)
    names = tuple(study.inputs.regions.names)
    return [duality(forward, backward, s, study.mechanism.output_species, receptors.ids, names,
                    study.emissions.nsector) for s in species]


CASES = {  # (chemistry, species, homogeneous, entries at least)
    "homogeneous": (False, ("PM2.5",), True, 80),  # a steady wind: the cities upwind (137 of 247 entries)
    "real_profiles": (False, ("PM2.5",), False, 100),
    "removal_and_chemistry": (True, ("PM2.5", "sulfate", "nitrate"), False, 100),
}
#: Measured in the reduced form with the defaults since c6249a4 (the splitting integrator, no vertical
#: diffusion above the mixing height, unresolved mesoscale motions; README, "Duality"): where the per-entry
#: criterion is not met with CI's seed 17. Stages 1 and 2 meet it with seed 17 (137 of 137 and 150 of 150
#: entries within 3 SE); with seeds 18 / 19 stage 2 has 1 / 1 entry beyond (max|z| 4.43 / 3.14), what
#: batch-means noise alone gives about every other seed on 150 entries (the noise-only test below).
NOT_MET = {
    "removal_and_chemistry": (
        "seed 17: max|z| 2.59 (PM2.5), 2.49 (sulfate), 4.43 (nitrate: 3 of 152 entries beyond 3 SE, all "
        "from the region 'outside' with no forward hit, 2-4e-4 ug m-3, where the forward error is the "
        "Poisson floor); "
        "seeds 17-19: 0-3 entries per species beyond 3 SE, mean z^2 0.90-1.27, within the 99.9 % binomial "
        "allowance of batch-means noise in all nine species x seed tables (the test below)"),
}


@pytest.mark.validation
@pytest.mark.parametrize("case", list(CASES))
def test_duality_totals_agree_within_5_percent(case):
    """The emission-weighted total of the 13 x 19 matrix agrees within 5 %, with most entries resolved."""
    chemistry, species, homogeneous, min_entries = CASES[case]
    for table in jjj_duality(chemistry, species, homogeneous):
        nonzero = (table.forward != 0) | (table.backward != 0)
        assert nonzero.sum() >= min_entries, table.summary()
        assert table.total_ratio == pytest.approx(1.0, abs=0.05), table.summary()


@pytest.mark.validation
@pytest.mark.parametrize("case", [
    pytest.param(c, marks=pytest.mark.xfail(reason=NOT_MET[c], strict=False)) if c in NOT_MET else c
    for c in CASES])
def test_duality_every_entry_within_3_standard_errors(case):
    chemistry, species, homogeneous, _ = CASES[case]
    for table in jjj_duality(chemistry, species, homogeneous):
        assert table.max_abs_z <= 3.0, table.summary()


@pytest.mark.validation
def test_duality_in_homogeneous_turbulence_differs_by_sampling_noise_only():
    """Homogeneous stage: the z values are as many beyond 2 and 3 as batch-means noise allows.

    With the standard errors from B = 16 batch means, z of an exact adjoint follows roughly Student's t with
    B - 1 to 2 (B - 1) degrees of freedom (Schmeiser 1982, Oper. Res. 30:556; the combined error of two
    directions), so even an exact adjoint puts an entry beyond 3 SE in 1 of 110-190 entries and fails the
    every-entry criterion on 95-150 entries in 40-74 % of seeds. This test guards against a broad bias: a
    biased backward run (wrong Liouville factor, wrong reading of the met) shows as an excess of large z: the
    counts beyond 2 and 3 must stay within the 99.9 % binomial quantile of that noise, and mean z^2 below 2.
    The every-entry test above is the issue's criterion. With the former defaults (the Euler step at 0.5 T_Lw,
    free diffusion above h) its single extreme entries were not noise but the power sector's elevated plumes
    (seeds 17-20: max|z| 3.79-5.63); with the defaults since c6249a4 seed 17 puts all 137 entries within
    3 SE (max|z| 2.77, mean z^2 0.93, B/F 1.004; seeds 18 / 19: 135 / 144 entries, max|z| 2.45 / 2.83).
    """
    chemistry, species, homogeneous, _ = CASES["homogeneous"]
    for table in jjj_duality(chemistry, species, homogeneous):
        assert_sampling_noise_only(table)


def assert_sampling_noise_only(table):
    """Counts of z beyond 2 and 3 within the 99.9 % binomial quantile of batch-means noise; mean z^2 < 2."""
    from scipy import stats

    df = SIZES[FULL][4] - 1
    summary = table.summary()
    n = summary["entries"]
    for limit, key in ((3.0, "within_3_se"), (2.0, "within_2_se")):
        allowed = stats.binom.ppf(0.999, n, 2.0 * stats.t.sf(limit, df))
        assert n - summary[key] <= allowed, (limit, allowed, summary)
    assert summary["mean_z2"] < 2.0, summary


@pytest.mark.validation
@pytest.mark.parametrize("case", ["real_profiles", "removal_and_chemistry"])
def test_duality_in_the_real_profiles_differs_by_sampling_noise_only(case):
    """Stages 2 and 3 with the defaults: batch-means noise only (as the homogeneous stage above).

    Measured in this reduced form with the defaults since c6249a4 (6 Dec; seeds 17 / 18 / 19): stage 2 0 / 1 /
    1 of 150 / 155 / 149 entries beyond 3 SE (max |z| 2.88 / 4.43 / 3.14), mean z^2 1.04 / 0.99 / 1.00, B/F
    1.006 / 1.010 / 0.993; stage 3 0-3 entries per species beyond 3 SE, mean z^2 0.90-1.27, B/F
    0.986-1.005. Without the mesoscale motions (0f3a227's defaults) stage 2 had 1 / 1 / 0 of 108 / 109 / 112
    beyond 3 SE and stage 3 1-4 per species. With the former defaults (the
    Euler step, free diffusion) stage 2 had mean z^2 1.33 and 13 of 551 entries beyond 3 SE over five seeds,
    and stage 3's stacks B/F 0.65-0.70 (README, Duality).
    """
    chemistry, species, homogeneous, _ = CASES[case]
    for table in jjj_duality(chemistry, species, homogeneous):
        assert_sampling_noise_only(table)
