"""NumPy twins of the backward kernels (:mod:`airshed.model.backward`): test oracles and benchmark baselines.

Same arguments, same formulas, vectorised over particles (NumPy's exp/expm1 where the kernels use the
branch-free ones of :mod:`airshed.model.fastmath`: agreement to ~1e-15 relative). The transport of a
backward particle is the forward step, whose twin is
:func:`airshed.model.lagrangian_reference.advance_particles_reference`.
"""

from __future__ import annotations

import numpy as np

from airshed.model.random import _particle_key


def rain_at_particles_reference(x, y, alive, surface_t, grid):
    """Twin of :func:`~airshed.model.backward.rain_at_particles`: bilinear precipitation, 0 for the dead."""
    rows = surface_t.reshape(grid.ny, 5, grid.nx)[:, 4, :]

    def axis(v, v0, n):
        f = (v - v0) / grid.dx - 0.5
        i = np.clip(np.floor(f).astype(np.int64), 0, n - 2)
        return i, np.clip(f - i, 0.0, 1.0)

    i, wx = axis(x, grid.x0, grid.nx)
    j, wy = axis(y, grid.y0, grid.ny)
    out = np.zeros(x.size)
    for c in range(2):
        fc = wy if c == 1 else 1.0 - wy
        out += fc * (1.0 - wx) * rows[j + c, i]
        out += fc * wx * rows[j + c, i + 1]
    return np.where(alive, out, 0.0)


def adjoint_weights_reference(weights, z, alive, rain, removal, links, dt):
    """Twin of :func:`~airshed.model.backward.adjoint_weights` (mutates ``weights`` the same way)."""
    live = np.flatnonzero(alive)
    zl, rl = z[live], rain[live]
    dry = zl < removal.dry_layer_m
    wet = (rl > 0.0) & (zl <= removal.wet_top_m)
    old = weights[:, live].copy()
    phi = np.empty_like(old)
    for s in range(weights.shape[0]):
        k = removal.decay[s] + np.where(dry, removal.deposition_velocity[s] / removal.dry_layer_m, 0.0)
        if removal.wet_a[s] > 0.0:
            with np.errstate(divide="ignore"):
                lam = removal.wet_a[s] * np.exp(removal.wet_b[s] * np.log(np.maximum(rl, 1e-300)))
            k = k + np.where(wet, lam, 0.0)
        positive = k > 0.0
        kk = np.where(positive, k, 1.0)
        e = np.expm1(-kk * dt)
        phi[s] = np.where(positive, -e / kk, dt)
        weights[s, live] = np.where(positive, old[s] + old[s] * e, old[s])
    for src, dst, rate, yld in zip(links.source, links.target, links.rate, links.yield_, strict=True):
        weights[dst, live] += yld * rate * old[src] * phi[dst]


def accumulate_at_stacks_reference(x, y, z, alive, tag, weights, factor, dt, layers, acc):
    """Twin of :func:`~airshed.model.backward.accumulate_at_stacks`."""
    i = np.floor((x - layers.x0) / layers.dx).astype(np.int64)
    j = np.floor((y - layers.y0) / layers.dx).astype(np.int64)
    inside = alive & (i >= 0) & (i < layers.nx) & (j >= 0) & (j < layers.ny)
    for st in range(layers.x_low.size):
        hit = (inside & (layers.x_low[st] <= x) & (x < layers.x_high[st]) & (layers.y_low[st] <= y)
               & (y < layers.y_high[st]) & (layers.z_low[st] <= z) & (z < layers.z_high[st]))
        for p in np.flatnonzero(hit):
            acc[tag[p], :, st] += weights[:, p] * (factor[p] * dt)


def accumulate_in_boxes_reference(x, y, z, alive, tag, pid, mass, dt, boxes, batch_seed, acc):
    """Twin of :func:`~airshed.model.backward.accumulate_in_boxes`."""
    nbatch = acc.shape[1]
    with np.errstate(over="ignore"):
        keys = _particle_key(np.uint64(batch_seed), pid.astype(np.uint64))
    batch = (keys % np.uint64(nbatch)).astype(np.int64)
    for b in range(boxes.x_low.size):
        inside = (alive & (boxes.x_low[b] <= x) & (x < boxes.x_high[b]) & (boxes.y_low[b] <= y)
                  & (y < boxes.y_high[b]) & (boxes.z_low[b] <= z) & (z < boxes.z_high[b]))
        for p in np.flatnonzero(inside):
            acc[b, batch[p], tag[p]] += mass[:, p] * dt


def fold_area_sources_reference(footprint, active, cell, tag, rate, slot_emitted, scale, out):
    """Twin of :func:`~airshed.model.backward.fold_area_sources`."""
    for s in np.flatnonzero(slot_emitted >= 0):
        values = footprint[:, s, cell] * rate[:, slot_emitted[s]][None, :] * scale  # (rows, sources)
        for r in np.flatnonzero(active):
            np.add.at(out[r, :, s], tag, values[r])


__all__ = [
    "accumulate_at_stacks_reference",
    "accumulate_in_boxes_reference",
    "adjoint_weights_reference",
    "fold_area_sources_reference",
    "rain_at_particles_reference",
]
