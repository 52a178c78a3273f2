"""NumPy twin of :func:`airshed.model.lagrangian.advance_particles` and the gridding kernel.

Same records as arguments, same random numbers (the counter-based generator evaluated on arrays), same
order of operations, vectorised over particles: the test oracle for the kernel (agreement to 1e-12) and the
baseline of the benchmark. Physics formulas come from :mod:`airshed.physics` (their array forms).
"""

from __future__ import annotations

import numpy as np

from airshed.model.lagrangian import (
    BAOAB,
    CONVERTED,
    DECAYED,
    DRY_DEPOSITED,
    HANNA,
    LEFT_DOMAIN,
    MAX_DRIFT_EXPONENT,
    MIN_MIXING_HEIGHT_M,
    N_BUDGET_TERMS,
    PRODUCED,
    SIMILARITY,
    SKEWED_MAX_STEP_OVER_TL,
    SKEWED_MAX_WN,
    WET_DEPOSITED,
    exp_minus_one_over_x_series,
)
from airshed.model.random import MESOSCALE_DRAW, _counter, _normal_pair, _particle_key
from airshed.physics.similarity import similarity_formulas, similarity_horizontal_formulas
from airshed.physics.skewed_cbl import SKEWED_FROM_H_OVER_L, skewed_formulas, transition
from airshed.physics.turbulence import NEUTRAL, STABLE, UNSTABLE, hanna_horizontal_array, hanna_vertical_array

_SIMILARITY = similarity_formulas()
_SIMILARITY_HORIZONTAL = similarity_horizontal_formulas()
_BI_GAUSSIAN, _SKEWED_DRIFT = skewed_formulas()


def _vertical_profiles(z, h, us, ws, il, turbulence):
    """sigma_w, d sigma_w/dz, T_Lw, b, db of the turbulence scheme at z <= h (the kernel's height rules)."""
    if turbulence.scheme == HANNA:  # as FLEXPART: T_Lw floored everywhere
        sig, dsig, tl = hanna_vertical_array(z, h, us, ws, il, turbulence.tl_min_vertical)
        return sig, dsig, tl, np.zeros_like(sig), np.zeros_like(sig)
    tl_min = np.where(z >= turbulence.tl_floor_height, turbulence.tl_min_vertical, 0.0)
    regime = np.where(h * np.abs(il) < 1.0, NEUTRAL, np.where(il < 0.0, UNSTABLE, STABLE))
    with np.errstate(all="ignore"):  # every regime's formula on every particle, the particle's selected
        out = [f(z, h, us, ws, il, turbulence.min_profile_height) for f in _SIMILARITY]
    sig, dsig, tl, b, db = (np.select([regime == r for r in range(3)], [o[k] for o in out]) for k in range(5))
    return sig, dsig, np.maximum(tl, tl_min), b, db


def _drift_with_linear_sigma(wn, z, tau, sig, dsig, h):
    """NumPy twin of :func:`airshed.model.lagrangian.drift_with_linear_sigma`."""
    x = np.minimum(np.maximum(dsig * wn * tau, -MAX_DRIFT_EXPONENT), MAX_DRIFT_EXPONENT)
    small = np.abs(x) < 0.5
    series = exp_minus_one_over_x_series.py_func(x)  # the kernel's Horner loop, on arrays
    e = np.where(small, series, (np.exp(x) - 1.0) / np.where(small, 1.0, x))
    return _reflect(wn, z + sig * wn * tau * e, h)


def _skewed_candidate(wnp, zp, h, ws, skew, g, dts, sig, dsig, tl, b, db, turbulence):
    """Return the skewed convective sub-step and where the kernel takes it (its ``substep_skewed``)."""
    with np.errstate(all="ignore"):
        pdf = list(_BI_GAUSSIAN(zp, h, ws, skew, sig, dsig, b, db))
        for k in (2, 3, 6, 7):  # mirrored in a backward run (the kernel's skewed_substep)
            pdf[k] = turbulence.skew_sign * pdf[k]
        drift = _SKEWED_DRIFT(wnp, pdf, sig, dsig, tl, turbulence.inv_density_scale_height)
        w_skew = wnp + drift * dts + np.sqrt(2.0 * dts / tl) * g
    w_skew, z_skew = _reflect(w_skew, zp + w_skew * sig * dts, h)
    pick = (skew > 0.0) & (dts <= SKEWED_MAX_STEP_OVER_TL * tl) & (np.abs(w_skew) <= SKEWED_MAX_WN)
    return w_skew, z_skew, pick


def _splitting_substeps(zp, wnp, remaining, h, us, ws, il, skew, normals, turbulence):
    """NumPy twin of the kernel's BAOAB sub-steps (:func:`airshed.model.lagrangian._splitting_vertical`)."""
    ctl, max_substeps = turbulence.step_fraction, turbulence.max_substeps
    inv_h = turbulence.inv_density_scale_height
    sig, dsig, tl, b, db = _vertical_profiles(zp, h, us, ws, il, turbulence)
    ksub = 0
    g_second = np.zeros(zp.size)
    while np.any(remaining > 0.0):
        active = remaining > 0.0
        if ksub % 2 == 0:
            g, g_second = normals(2 + ksub)
        else:
            g = g_second
        dts = ctl * tl
        last = (dts >= remaining * (1.0 - 1e-9)) | (ksub == max_substeps - 1)
        dts = np.where(last, remaining, dts)
        remaining = np.where(active, np.where(last, 0.0, remaining - dts), 0.0)
        half = 0.5 * dts
        w_a, z_a = _drift_with_linear_sigma(wnp + half * (dsig - sig * inv_h), zp, half, sig, dsig, h)
        pick = np.zeros(zp.size, dtype=bool)
        if np.any(skew > 0.0):
            w_s, z_s, pick = _skewed_candidate(wnp, zp, h, ws, skew, g, dts, sig, dsig, tl, b, db, turbulence)
            w_a, z_a = np.where(pick, w_s, w_a), np.where(pick, z_s, z_a)
        sig, dsig, tl, b, db = _vertical_profiles(z_a, h, us, ws, il, turbulence)
        r = np.exp(-dts / tl)
        w_o, z_o = _drift_with_linear_sigma(r * w_a + np.sqrt(1.0 - r * r) * g, z_a, half, sig, dsig, h)
        z_b, w_b = np.where(pick, z_a, z_o), np.where(pick, w_a, w_o)
        sig, dsig, tl, b, db = _vertical_profiles(z_b, h, us, ws, il, turbulence)
        w_c = np.where(pick, w_b, w_b + half * (dsig - sig * inv_h))
        zp = np.where(active, z_b, zp)
        wnp = np.where(active, w_c, wnp)
        ksub += 1
    return zp, wnp


def _horizontal_profiles(z, h, us, ws, il, turbulence):
    """sigma_u, sigma_v, T_Lu, T_Lv of the turbulence scheme (the kernel's height and floor rules)."""
    if turbulence.scheme == HANNA:
        return hanna_horizontal_array(z, h, us, ws, il, turbulence.tl_min_horizontal)
    tl_min = np.where(z >= turbulence.tl_floor_height, turbulence.tl_min_horizontal, 0.0)
    regime = np.where(h * np.abs(il) < 1.0, NEUTRAL, np.where(il < 0.0, UNSTABLE, STABLE))
    with np.errstate(all="ignore"):
        out = [f(z, h, us, ws, il, turbulence.min_profile_height) for f in _SIMILARITY_HORIZONTAL]
    sigu, sigv, tlu, tlv = (np.select([regime == r for r in range(3)], [o[k] for o in out]) for k in range(4))
    return sigu, sigv, np.maximum(tlu, tl_min), np.maximum(tlv, tl_min)


def _reflect(wn, z, h):
    below = z < 0.0
    z = np.where(below, -z, z)
    wn = np.where(below, -wn, wn)
    above = z > h
    z = np.where(above, 2.0 * h - z, z)
    wn = np.where(above, -wn, wn)
    return wn, np.minimum(np.maximum(z, 0.0), h)


def _axis_index(x, x0, dx, n):
    f = (x - x0) / dx - 0.5
    i = np.clip(np.floor(f).astype(np.int64), 0, n - 2)
    return i, np.clip(f - i, 0.0, 1.0)


def _level_index(z, z_levels):
    k = np.clip(np.searchsorted(z_levels, z, side="right") - 1, 0, z_levels.size - 2)
    w = (z - z_levels[k]) / (z_levels[k + 1] - z_levels[k])
    return k, np.clip(w, 0.0, 1.0)


def _time_index(t, t0, dt_met, nt):
    f = (t - t0) / dt_met
    it = min(max(int(np.floor(f)), 0), nt - 2)
    return it, min(max(f - it, 0.0), 1.0)


def _at_time(field, t, t0_met, dt_met):
    """One time level of ``field[nt, ...]`` linear in time at t (as the kernel computes it per step)."""
    it, wt = _time_index(t, t0_met, dt_met, field.shape[0])
    return (1.0 - wt) * field[it] + wt * field[it + 1]


def _surface(surface, j, wy, i, wx):
    out = [0.0] * surface.shape[-1]
    for c in range(2):
        fc = wy if c == 1 else 1.0 - wy
        for d in range(2):
            f = fc * (wx if d == 1 else 1.0 - wx)
            corner = surface[j + c, i + d]
            out = [o + f * corner[:, q] for q, o in enumerate(out)]
    return out


def _wind(wind, z_levels, x0, y0, dx, x, y, z):
    _, ny, nx, _ = wind.shape
    i, wx = _axis_index(x, x0, dx, nx)
    j, wy = _axis_index(y, y0, dx, ny)
    k, wz = _level_index(z, z_levels)
    out = [0.0, 0.0, 0.0]
    for b in range(2):
        fb = wz if b == 1 else 1.0 - wz
        for c in range(2):
            fc = fb * (wy if c == 1 else 1.0 - wy)
            for d in range(2):
                f = fc * (wx if d == 1 else 1.0 - wx)
                corner = wind[k + b, j + c, i + d]
                out = [o + f * corner[:, q] for q, o in enumerate(out)]
    return out


def advance_particles_reference(particles, met, grid, step, turbulence, removal, chemistry, block_size,
                                budget_blocks):
    """One step for all live particles, vectorised (see the kernel); mutates its arguments the same way."""
    x, y, z, un, vn, wn, um, vm, mass, tag, pid, alive, cell, n = particles
    x, y, z, un, vn, wn, um, vm, tag, pid, alive, cell = (
        a[:n] for a in (x, y, z, un, vn, wn, um, vm, tag, pid, alive, cell)
    )
    mass = mass[:, :n]
    wind, surface, t0_met, dt_met = met
    x0, y0, dx, nx, ny = grid.x0, grid.y0, grid.dx, grid.nx, grid.ny
    z_levels, z_top = grid.z_levels, grid.z_top
    t, dt = step.t, step.dt
    nspecies = mass.shape[0]
    idx = np.flatnonzero(alive)
    if idx.size == 0:
        return
    with np.errstate(over="ignore"):
        key = _particle_key(np.uint64(step.seed), pid[idx].astype(np.uint64))
    ustep = np.uint64(step.index)
    xp, yp, zp = x[idx], y[idx], z[idx]
    i, wx = _axis_index(xp, x0, dx, nx)
    j, wy = _axis_index(yp, y0, dx, ny)
    # the kernel keeps the step's surface fields in float32, and so does its twin
    surface_t = _at_time(surface, t, t0_met, dt_met).astype(np.float32)
    h, us, ws, il, rain = _surface(surface_t, j, wy, i, wx)
    h = np.maximum(h, MIN_MIXING_HEIGHT_M)
    in_bl = zp <= h

    def normals(draw):
        with np.errstate(over="ignore"):
            return _normal_pair(key, _counter(ustep, np.uint64(draw)))

    g_u, g_v = normals(0)
    sigu, sigv, tlu, tlv = _horizontal_profiles(zp, h, us, ws, il, turbulence)
    ru = np.exp(-dt / tlu)
    rv = np.exp(-dt / tlv)
    s_free = np.sqrt(2.0 * turbulence.k_free_horizontal / dt)
    un_new = np.where(in_bl, ru * un[idx] + np.sqrt(1.0 - ru * ru) * g_u, g_u)
    vn_new = np.where(in_bl, rv * vn[idx] + np.sqrt(1.0 - rv * rv) * g_v, g_v)
    if turbulence.scheme == SIMILARITY:  # the diffusion limit of steps longer than 2 T_L (kernel, step 2)
        sigu = sigu * np.minimum(1.0, np.sqrt(2.0 * tlu / dt))
        sigv = sigv * np.minimum(1.0, np.sqrt(2.0 * tlv / dt))
    ut = np.where(in_bl, sigu * un_new, s_free * g_u)
    vt = np.where(in_bl, sigv * vn_new, s_free * g_v)
    if not turbulence.horizontal:
        ut = np.zeros_like(ut)
        vt = np.zeros_like(vt)
    un[idx] = un_new
    vn[idx] = vn_new
    if turbulence.mesoscale_sigma > 0.0:
        g_um, g_vm = normals(MESOSCALE_DRAW)
        rm = np.exp(-dt / turbulence.mesoscale_time)
        sm = np.sqrt(1.0 - rm * rm)
        um_new = rm * um[idx] + sm * g_um
        vm_new = rm * vm[idx] + sm * g_vm
        ut = ut + turbulence.mesoscale_sigma * um_new
        vt = vt + turbulence.mesoscale_sigma * vm_new
        um[idx] = um_new
        vm[idx] = vm_new

    # the kernel keeps the step's wind in float32 (half the cache footprint), and so does its twin
    u1, v1, w1 = _wind(
        _at_time(wind, t, t0_met, dt_met).astype(np.float32), z_levels, x0, y0, dx, xp, yp, zp
    )
    z_pred = np.abs(zp + w1 * dt)
    wind_next = _at_time(wind, t + dt, t0_met, dt_met).astype(np.float32)
    u2, v2, w2 = _wind(wind_next, z_levels, x0, y0, dx, xp + u1 * dt, yp + v1 * dt, z_pred)
    xp = xp + (0.5 * (u1 + u2) + ut) * dt
    yp = yp + (0.5 * (v1 + v2) + vt) * dt
    zp = np.abs(zp + 0.5 * (w1 + w2) * dt)

    # vertical turbulence: mixed-layer particles sub-step, the others take one random displacement
    zp = np.where(in_bl, np.minimum(zp, h), zp)
    wnp = wn[idx].copy()
    g_second = np.zeros(idx.size)
    remaining = np.where(in_bl, dt, 0.0)
    ctl, max_substeps = turbulence.step_fraction, turbulence.max_substeps
    inv_density_scale_height = turbulence.inv_density_scale_height
    ksub = 0
    minus_h_over_l = -h * il
    skew = np.where(minus_h_over_l > SKEWED_FROM_H_OVER_L, transition(minus_h_over_l), 0.0)
    skew = skew if turbulence.scheme != HANNA else np.zeros_like(skew)
    if turbulence.integrator == BAOAB:
        zp, wnp = _splitting_substeps(zp, wnp, remaining, h, us, ws, il, skew, normals, turbulence)
        remaining = np.zeros_like(remaining)
    while np.any(remaining > 0.0):
        active = remaining > 0.0
        sigw, dsigw, tlw, b, db = _vertical_profiles(zp, h, us, ws, il, turbulence)
        dts = ctl * tlw
        last = (dts >= remaining * (1.0 - 1e-9)) | (ksub == max_substeps - 1)
        dts = np.where(last, remaining, dts)
        remaining = np.where(active, np.where(last, 0.0, remaining - dts), 0.0)
        if ksub % 2 == 0:
            g, g_second = normals(2 + ksub)
        else:
            g = g_second
        ksub += 1
        rw = np.exp(-dts / tlw)
        w_new = (
            rw * wnp
            + np.sqrt(1.0 - rw * rw) * g
            + tlw * (1.0 - rw) * (dsigw - sigw * inv_density_scale_height)
        )
        w_new, z_new = _reflect(w_new, zp + w_new * sigw * dts, h)
        if np.any(skew > 0.0):
            w_skew, z_skew, pick = _skewed_candidate(wnp, zp, h, ws, skew, g, dts, sigw, dsigw, tlw, b, db,
                                                     turbulence)
            w_new = np.where(pick, w_skew, w_new)
            z_new = np.where(pick, z_skew, z_new)
        zp = np.where(active, z_new, zp)
        wnp = np.where(active, w_new, wnp)
    g, g_second = normals(2)
    free = ~in_bl
    zp = np.where(free, np.abs(zp + np.sqrt(2.0 * turbulence.k_free_vertical * dt) * g), zp)
    wnp = np.where(free, g_second, wnp)
    x[idx], y[idx], z[idx], wn[idx] = xp, yp, zp, wnp

    block = idx // block_size
    nblocks = budget_blocks.shape[0]

    def add(term, s, values, where):
        budget_blocks[:, term, s] += np.bincount(block[where], weights=values[where], minlength=nblocks)

    gone = (xp < x0) | (xp >= x0 + nx * dx) | (yp < y0) | (yp >= y0 + ny * dx) | (zp > z_top)
    for s in range(nspecies):
        add(LEFT_DOMAIN, s, mass[s, idx], gone)
        mass[s, idx[gone]] = 0.0
    alive[idx[gone]] = False
    cell[idx[gone]] = -1

    stay = ~gone
    in_dry = zp < removal.dry_layer_m
    in_rain = zp <= removal.wet_top_m
    k_chem_of = np.zeros(nspecies)
    for src, rate in zip(chemistry.precursor, chemistry.rate, strict=True):
        k_chem_of[src] += rate
    produced = np.zeros((nspecies, idx.size))
    for s in range(nspecies):
        m = mass[s, idx]
        k_dry = np.where(in_dry, removal.deposition_velocity[s] / removal.dry_layer_m, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = np.where(rain > 0.0, removal.wet_a[s] * np.exp(removal.wet_b[s] * np.log(rain)), 0.0)
        k_wet = np.where(in_rain, lam, 0.0)
        k_chem = k_chem_of[s]
        decay = removal.decay[s]
        k_total = k_dry + k_wet + k_chem + decay
        act = stay & (m != 0.0) & (k_total > 0.0)
        kt = np.where(act, k_total, 1.0)
        loss = np.where(act, -m * np.expm1(-kt * dt), 0.0)
        mass[s, idx[act]] = (m - loss)[act]
        add(DRY_DEPOSITED, s, loss * (k_dry / kt), act)
        add(WET_DEPOSITED, s, loss * (k_wet / kt), act)
        add(DECAYED, s, loss * (decay / kt), act)
        add(CONVERTED, s, loss * (k_chem / kt), act)
        for src, dst, rate, yield_ in zip(*chemistry, strict=True):
            if src == s and dst >= 0:
                produced[dst] += np.where(act, loss * (rate / kt) * yield_, 0.0)
    for s in range(nspecies):
        got = stay & (produced[s] != 0.0)
        mass[s, idx[got]] += produced[s][got]
        add(PRODUCED, s, produced[s], got)
    sampled = stay & (zp < grid.sampling_depth)
    flat = np.floor((yp - y0) / dx).astype(np.int64) * nx + np.floor((xp - x0) / dx).astype(np.int64)
    cell[idx[stay]] = np.where(sampled, flat, -1)[stay]


def accumulate_concentration_reference(cell, tag, mass, weight, acc):
    """NumPy twin of :func:`airshed.model.lagrangian.accumulate_concentration`."""
    sel = cell >= 0
    for s in range(mass.shape[0]):
        np.add.at(acc[:, s, :], (tag[sel], cell[sel]), mass[s, sel] * weight)


__all__ = ["N_BUDGET_TERMS", "accumulate_concentration_reference", "advance_particles_reference"]
