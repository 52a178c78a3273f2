"""Receptor-oriented (backward) particles: footprints of receptors and the adjoint of removal and chemistry.

A backward run releases particles uniformly in each receptor's volume over its averaging period and moves
them back in time; the time they spend in the source layer of each grid cell, weighted by what removal and
chemistry would leave of an emission there, is the receptor's footprint (its source-receptor sensitivity).
Folding the footprint with the emissions gives the receptor's concentration (Seibert & Frank 2004, Atmos.
Chem. Phys. 4:51; Flesch, Wilson & Yee 1995, J. Appl. Meteorol. 34:1320; Lin et al. 2003, J. Geophys. Res.
108:4493, STILT).

Transport backward in time
--------------------------
The particle step of :mod:`airshed.model.lagrangian` moves a backward particle unchanged, given the
*time-reversed* meteorology (:func:`time_reversed`): the fields at forward time t are read at backward time
tau = t_end - t, with the mean wind (u, v, w) negated. Why that is the backward model:

- Mean advection: a backward particle follows the trajectory dx/dt = U(x, t) backward, dx/dtau = -U, which is
  the forward kernel's Petterssen scheme on the negated wind (the predictor reads the wind at t, the
  corrector at t - dt, as the reversed met hands them out).
- Turbulence: the step's state (z, w) is a stationary diffusion whose invariant density is uniform in z
  (with the density correction: proportional to rho(z)) times the Gaussian velocity distribution
  N(0, sigma_w(z)^2). Its time reversal (Haussmann & Pardoux 1986) has the drift b~ = -b + (1/p) d(a p)/dw
  in w, which for Thomson's (1987) well-mixed drift b = -w/T_L + (1 + w^2/sigma_w^2) sigma_w dsigma_w/dz
  (+ sigma_w^2 dln(rho)/dz) gives, written for the reversed velocity v = -w, exactly the forward model
  again: dv = [-v/T_L + (1 + v^2/sigma_w^2) sigma_w dsigma_w/dz + sigma_w^2 dln(rho)/dz] dtau +
  sqrt(2 sigma_w^2/T_L) dW. So for Gaussian turbulence the backward Langevin model is the forward one with
  the same Thomson drift and density correction (Flesch et al. 1995, Sect. 3; Thomson 1987, Sect. 6), and
  the normalised form w_n = w/sigma_w the kernel integrates (drift d sigma_w/dz, Stohl & Thomson 1999)
  reverses the same way. The reflections at the ground and at h, the horizontal Langevin velocities and
  the free-troposphere random displacements are symmetric in time. For *skewed* turbulence the PDF of
  v = -w is the mirror image of that of w: a skewed (bi-Gaussian) scheme runs with its skewness
  negated backward (updrafts become downdrafts; ``time_reversed``, the similarity scheme's skewed
  convective layer); the Hanna scheme is Gaussian.
- Boundary-layer scalars: a forward step reads the mixing height, u*, w* and 1/L at its start time, so a
  backward step reads them at its end (:class:`SurfaceAtStepEnd`), the start of the forward step it
  reverses; read at its start, backward particles saw a moving mixing height one step late.
- Density: the transition densities of the two directions are related by rho(x') q(x', t' | x, t) =
  rho(x) p(x, t | x', t') (the reversal of a process whose invariant density is rho), so a concentration
  (mass per volume) at the receptor is rho(z_r) times the backward integral of source / rho. With the
  density correction on, each particle's weight is multiplied by rho(z_release) / rho(z) =
  exp((z - z_release) / H_rho) where it is gridded (:class:`BackwardRun`).
- Divergence of the mean wind (Liouville). The reversal above assumes a mean flow that keeps the invariant
  density, div(rho U) = 0. Met fields rarely do on the model grid (the built-in episode has w = 0 under a
  converging front; interpolated reanalysis winds are not mass-consistent), and the forward particles then
  crowd where the flow converges: a volume carried from t' to t changes by J = exp(int div U dt). A forward
  particle from x' reaches the receptor volume V with probability 1[X(t; x') in V], but the density of
  backward particles at x' is J(x') times that over V, so each backward particle carries the factor
  1/J = exp(-int (div U - w/H_rho) dt) along its path (:func:`divergence_field`, trapezoidal over each
  step). With mass-consistent winds the factor is 1 (FLEXPART's and STILT's assumption); with any other
  winds it keeps the backward run the adjoint of *this* forward model (tested in a converging flow).

Removal and chemistry: the adjoint
----------------------------------
Each particle carries the weights of :mod:`airshed.physics.adjoint` (one per slot: receptor tracer j,
upstream tracer i, plus the inert ``air``). Over a step each weight decays with its upstream tracer's
first-order loss (dry deposition below the dry layer, below-cloud scavenging in rain, decay, and the
conversions out of the tracer) and the precursor slots gain from the product slots. The update is the
transpose of the forward step (:func:`airshed.model.lagrangian.remove_and_convert`): forward, a product
gains y r m_p (1 - exp(-k_p dt))/k_p from its precursor p over a step, so backward the precursor's weight
gains y r lambda_product (1 - exp(-k_p dt))/k_p. Forward, a step moves a particle and then depletes it by
its height at the *end* of the step (dry layer, top of scavenging) and the precipitation at its *start*
position and time (:func:`airshed.model.lagrangian.read_surface`). A backward step reverses one forward
step, so its update takes the same arguments: the height at the start of the backward step and the
precipitation where the backward move ends, at the forward step's start time. Each backward step is then
the transpose of one forward step operator for operator, and folding a backward particle's weights with
the emissions reproduces the forward run's depletion factor by factor. (Reading the rain at the start of
the backward step, one step away from where the forward step reads it, biased the weights by dt times
the change of the scavenging coefficient along the path: 4.7 % low at a receptor in 5 mm/h of rain
downwind of a dry source in the controlled case of tests/test_duality.py. The forward discretisation itself
differs from the continuous answer by about half of that, its first-order splitting error, which both
directions now share.)

Footprint and folding
---------------------
At the end of every step a particle below ``source_depth`` (the depth through which area sources release,
50 m) adds weight * dt to the footprint of its receptor row
(:func:`~airshed.model.lagrangian.accumulate_concentration`): footprint F[row, slot, cell] in s
(particle-seconds per released particle, once divided by the particles released). The receptor's
concentration from area sources is then

    C (kg m-3) = sum over cells and hours of F (s) * E (kg s-1) / (dx^2 * source_depth),

FLEXPART's backward output in s (Seibert & Frank 2004, eq. 11; "residence time" with release and receptor
in mass units) and STILT's footprint times the layer depth (Lin et al. 2003, eq. 8). Elevated sources
(stacks) are folded with the weight accumulated in a box of one cell's width centred on the stack and
``source_depth`` deep around its effective release height (:func:`stack_layers`).

Every kernel here keeps the bit-identity of the particle core: the step is the forward kernel, the adjoint
update is per particle, and sums over particles run in index order.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
from numba import prange

from airshed.errors import AirshedInputError
from airshed.jit import kernel
from airshed.model.lagrangian import (
    LagrangianParameters,
    MetWindow,
    ParticleRun,
    accumulate_concentration,
    fast_exp,
    fast_expm1,
    horizontal_index,
    interp_surface,
    level_weight,
    time_index,
    wet_coefficient_fast,
)
from airshed.model.particle_records import Grid, Removal, StepMet
from airshed.model.random import particle_key_scalar
from airshed.model.release import AREA_RELEASE_DEPTH_M, ReleaseTable
from airshed.physics.adjoint import AdjointSlots

#: Seed offset of the key that assigns a forward particle to a Monte-Carlo batch (independent of its draws).
BATCH_KEY_OFFSET = 0x5EED_BA7C


class AdjointLinks(NamedTuple):
    """Adjoint links (:class:`~airshed.physics.adjoint.AdjointSlots`): slot ``target`` gains from ``source``.

    Over a step slot ``target[l]`` gains ``yield_[l] * rate[l] * lambda_source * phi_target`` with
    phi = (1 - exp(-k dt)) / k of the target's own loss rate k (dt when k = 0).
    """

    source: np.ndarray
    target: np.ndarray
    rate: np.ndarray
    yield_: np.ndarray


class CellBoxes(NamedTuple):
    """Boxes on the grid, listed by the grid cells they touch (receptor volumes, stack layers).

    Box b is [x_low, x_high) x [y_low, y_high) x [z_low, z_high) (projected m, m above ground).
    ``cell_first[c]`` .. ``cell_first[c + 1]`` index ``box_of``: the boxes touching flat cell c of the grid
    (x0, y0, dx, nx, ny), in box order.
    """

    x_low: np.ndarray
    x_high: np.ndarray
    y_low: np.ndarray
    y_high: np.ndarray
    z_low: np.ndarray
    z_high: np.ndarray
    cell_first: np.ndarray
    box_of: np.ndarray
    x0: float
    y0: float
    dx: float
    nx: int
    ny: int


def _cell_lists(cells_per_item: list[np.ndarray], ncell: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR lists (``first[ncell + 1]``, ``item``) of the items touching each cell, items in index order."""
    counts = np.zeros(ncell + 1, np.int64)
    for cells in cells_per_item:
        np.add.at(counts, np.asarray(cells, dtype=np.int64) + 1, 1)
    first = np.cumsum(counts)
    item = np.empty(first[-1], np.int64)
    fill = first[:-1].copy()
    for k, cells in enumerate(cells_per_item):
        for c in np.asarray(cells, dtype=np.int64):
            item[fill[c]] = k
            fill[c] += 1
    return first, item


def receptor_boxes(x, y, half_width, z_low, z_high, x0: float, y0: float, dx: float, nx: int, ny: int
                   ) -> CellBoxes:
    """Boxes centred on (x, y) (half-width m) over [z_low, z_high) m, on the grid (x0, y0, dx, nx, ny).

    A box must lie inside the grid domain.
    """
    x, y, hw = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (x, y, half_width))
    hw = np.broadcast_to(hw, x.shape).astype(np.float64)
    z_low = np.broadcast_to(np.asarray(z_low, dtype=np.float64), x.shape).copy()
    z_high = np.broadcast_to(np.asarray(z_high, dtype=np.float64), x.shape).copy()
    x_low, x_high, y_low, y_high = x - hw, x + hw, y - hw, y + hw
    inside = (x_low >= x0) & (x_high <= x0 + nx * dx) & (y_low >= y0) & (y_high <= y0 + ny * dx)
    if not inside.all() or np.any(hw <= 0.0) or np.any(z_high <= z_low) or np.any(z_low < 0.0):
        raise AirshedInputError(
            "receptor boxes: need half-width > 0, 0 <= z_low < z_high and the whole box inside the grid "
            f"(box {int(np.flatnonzero(~inside | (hw <= 0) | (z_high <= z_low) | (z_low < 0))[0])})")
    cells = []
    for b in range(x.size):
        i0 = int(np.floor((x_low[b] - x0) / dx))
        i1 = min(int(np.floor((x_high[b] - x0) / dx)), nx - 1)
        j0 = int(np.floor((y_low[b] - y0) / dx))
        j1 = min(int(np.floor((y_high[b] - y0) / dx)), ny - 1)
        jj, ii = np.meshgrid(np.arange(j0, j1 + 1), np.arange(i0, i1 + 1), indexing="ij")
        cells.append((jj * nx + ii).ravel())
    first, box_of = _cell_lists(cells, nx * ny)
    return CellBoxes(x_low, x_high, y_low, y_high, z_low, z_high, first, box_of, float(x0), float(y0),
                     float(dx), int(nx), int(ny))


def stack_layers(x, y, release_height, depth: float, x0: float, y0: float, dx: float, nx: int, ny: int
                 ) -> CellBoxes:
    """Boxes of one cell's width centred on each stack, ``depth`` m deep around its release height.

    A forward stack releases at a point, so its adjoint is the footprint density at that point: the box is
    centred on the stack (an error of second order in the box width, where the stack's own grid cell would
    make one of first order, the stack's offset from the cell centre times the footprint's gradient). The
    layer is lowered to start at the ground; a box is moved inside the domain where it would stick out.
    """
    h = np.asarray(release_height, dtype=np.float64)
    z_low = np.maximum(h - 0.5 * depth, 0.0)
    x_low = np.clip(np.asarray(x, dtype=np.float64) - 0.5 * dx, x0, x0 + (nx - 1) * dx)
    y_low = np.clip(np.asarray(y, dtype=np.float64) - 0.5 * dx, y0, y0 + (ny - 1) * dx)
    cells = []
    for xl, yl in zip(x_low, y_low, strict=True):
        i0, j0 = int(np.floor((xl - x0) / dx)), int(np.floor((yl - y0) / dx))
        ii = np.arange(i0, min(i0 + 2, nx))
        jj = np.arange(j0, min(j0 + 2, ny))
        cells.append((jj[:, None] * nx + ii[None, :]).ravel())
    first, box_of = _cell_lists(cells, nx * ny)
    return CellBoxes(x_low, x_low + dx, y_low, y_low + dx, z_low, z_low + depth, first, box_of, float(x0),
                     float(y0), float(dx), int(nx), int(ny))


def time_reversed(met: MetWindow, t_end: float) -> MetWindow:
    """Return the window seen backward in time: forward time t read at tau = t_end - t, the wind negated.

    Stepping particles forward in tau through this window is the backward model (module docstring).
    """
    def rev(a):
        return np.ascontiguousarray(a[::-1])

    return MetWindow(
        times=t_end - met.times[::-1], z_levels=met.z_levels, u=-rev(met.u), v=-rev(met.v), w=-rev(met.w),
        mixing_height=rev(met.mixing_height), ustar=rev(met.ustar), wstar=rev(met.wstar),
        inv_L=rev(met.inv_L), precip=rev(met.precip), share_step_met=True,
    )


def divergence_field(met: MetWindow, dx: float, inv_density_scale_height: float = 0.0) -> np.ndarray:
    """Divergence of the window's mean wind, less its anelastic part: du/dx + dv/dy + dw/dz - w/H_rho, s-1.

    [nt, nz, ny, nx] at the cell centres and levels of the window (centred differences, one-sided at the
    edges; ``dx`` the cell size, m; ``inv_density_scale_height`` 1/H_rho, 0 without the density
    correction). Zero for a mass-consistent wind, div(rho U) = 0.
    """
    div = np.gradient(met.u, dx, axis=3) + np.gradient(met.v, dx, axis=2)
    if met.z_levels.size > 1:
        div += np.gradient(met.w, met.z_levels, axis=1)
    if inv_density_scale_height > 0.0:
        div -= met.w * inv_density_scale_height
    return np.ascontiguousarray(div)


# --------------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------------
@kernel(parallel=True)
def field_at_particles(field, t0, dt_field, t, x, y, z, alive, grid, out):
    """Read a field [nt, nz, ny, nx] (times t0 + k dt_field) at the particles at time t (0 for the dead).

    Trilinear in space and linear in time with the particle step's clamping (below the lowest level the
    lowest level's value, outside the grid the edge cell's).
    """
    nt, nz = field.shape[0], field.shape[1]
    it, wt = time_index(t, t0, dt_field, nt)
    for p in prange(x.size):
        i, wx = horizontal_index(x[p], grid.x0, grid.dx, grid.nx)
        j, wy = horizontal_index(y[p], grid.y0, grid.dx, grid.ny)
        k = 0
        for lev in range(1, nz - 1):
            k += grid.z_levels[lev] <= z[p]
        wz = level_weight(z[p], k, grid.z_levels) if nz > 1 else 0.0
        value = 0.0
        for a in range(2):
            fa = wt if a == 1 else 1.0 - wt
            for b in range(min(2, nz)):
                fb = fa * (wz if b == 1 else 1.0 - wz)
                for c in range(2):
                    fc = fb * (wy if c == 1 else 1.0 - wy)
                    value += fc * ((1.0 - wx) * field[it + a, k + b, j + c, i]
                                   + wx * field[it + a, k + b, j + c, i + 1])
        out[p] = value if alive[p] else 0.0


@kernel(parallel=True)
def scale_weights(weights, alive, log_factor):
    """Multiply the weights of each live particle by exp(``log_factor``)."""
    for p in prange(alive.size):
        if alive[p]:
            f = fast_exp(log_factor[p])
            for s in range(weights.shape[0]):
                weights[s, p] *= f


@kernel(parallel=True)
def rain_at_particles(x, y, alive, surface_t, grid, out):
    """Precipitation (mm/h) at the particles from a step's surface fields (rows [ny, 5, nx], float32).

    Bilinear, as the particle step reads it (:func:`~airshed.model.lagrangian.interp_surface`); 0 for dead
    particles.
    """
    for p in prange(x.size):
        i, wx = horizontal_index(x[p], grid.x0, grid.dx, grid.nx)
        j, wy = horizontal_index(y[p], grid.y0, grid.dx, grid.ny)
        _, _, _, _, rain = interp_surface(surface_t, grid.nx, j, wy, i, wx)
        out[p] = rain if alive[p] else 0.0


@kernel(parallel=True)
def adjoint_weights(weights, z, alive, rain, removal, links, dt, block_size):
    """Advance the adjoint weights ``weights[nslot, n]`` of live particles over one backward step of dt s.

    Per slot s (``removal`` holds per-slot values, conversions out of the upstream tracer in ``decay``):
    k = decay + v_d / dry_layer (z < dry_layer) + A P^B (P = ``rain`` > 0 and z <= wet_top);
    lambda' = lambda exp(-k dt); then each link adds yield * rate * lambda_source * (1 - exp(-k_target dt))
    / k_target to its target (the transpose of the forward step; module docstring). ``z`` is the height at
    the start of the backward step.
    """
    n = z.size
    ns = weights.shape[0]
    nl = links.source.size
    k_dry = removal.deposition_velocity / removal.dry_layer_m
    nblocks = (n + block_size - 1) // block_size
    for b in prange(nblocks):
        old = np.empty(ns)
        phi = np.empty(ns)
        for p in range(b * block_size, min(n, (b + 1) * block_size)):
            if not alive[p]:
                continue
            dry = z[p] < removal.dry_layer_m
            wet = (rain[p] > 0.0) & (z[p] <= removal.wet_top_m)
            for s in range(ns):
                k = removal.decay[s] + (k_dry[s] if dry else 0.0)
                if wet and removal.wet_a[s] > 0.0:
                    k += wet_coefficient_fast(rain[p], removal.wet_a[s], removal.wet_b[s])
                lam = weights[s, p]
                old[s] = lam
                if k > 0.0:
                    e = fast_expm1(-k * dt)
                    phi[s] = -e / k
                    weights[s, p] = lam + lam * e
                else:
                    phi[s] = dt
            for m in range(nl):
                t = links.target[m]
                weights[t, p] += links.yield_[m] * links.rate[m] * old[links.source[m]] * phi[t]


@kernel()
def accumulate_at_stacks(x, y, z, alive, tag, weights, factor, dt, layers, acc):
    """Add ``weights * factor * dt`` of particles in a stack's box (``layers``) to ``acc[tag, slot, stack]``.

    Particles are summed in index order (the result does not depend on the thread count).
    """
    ns = weights.shape[0]
    for p in range(x.size):
        if not alive[p]:
            continue
        i = int(np.floor((x[p] - layers.x0) / layers.dx))
        j = int(np.floor((y[p] - layers.y0) / layers.dx))
        if i < 0 or i >= layers.nx or j < 0 or j >= layers.ny:
            continue
        c = j * layers.nx + i
        for k in range(layers.cell_first[c], layers.cell_first[c + 1]):
            st = layers.box_of[k]
            if (layers.x_low[st] <= x[p] < layers.x_high[st] and layers.y_low[st] <= y[p] < layers.y_high[st]
                    and layers.z_low[st] <= z[p] < layers.z_high[st]):
                w = factor[p] * dt
                for s in range(ns):
                    acc[tag[p], s, st] += weights[s, p] * w


@kernel()
def accumulate_in_boxes(x, y, z, alive, tag, pid, mass, dt, boxes, batch_seed, acc):
    """Add ``mass * dt`` of particles inside receptor boxes to ``acc[box, batch, tag, species]`` (kg s).

    The batch of a particle is a hash of (batch_seed, id) modulo ``acc.shape[1]`` (random groups of the
    particles for Monte-Carlo standard errors). Particles are summed in index order.
    """
    nbatch = np.uint64(acc.shape[1])
    ns = mass.shape[0]
    key_seed = np.uint64(batch_seed)
    for p in range(x.size):
        if not alive[p]:
            continue
        i = int(np.floor((x[p] - boxes.x0) / boxes.dx))
        j = int(np.floor((y[p] - boxes.y0) / boxes.dx))
        if i < 0 or i >= boxes.nx or j < 0 or j >= boxes.ny:
            continue
        c = j * boxes.nx + i
        for k in range(boxes.cell_first[c], boxes.cell_first[c + 1]):
            bx = boxes.box_of[k]
            if (boxes.x_low[bx] <= x[p] < boxes.x_high[bx] and boxes.y_low[bx] <= y[p] < boxes.y_high[bx]
                    and boxes.z_low[bx] <= z[p] < boxes.z_high[bx]):
                batch = int(particle_key_scalar(key_seed, np.uint64(pid[p])) % nbatch)
                for s in range(ns):
                    acc[bx, batch, tag[p], s] += mass[s, p] * dt


@kernel(parallel=True)
def fold_area_sources(footprint, active, cell, tag, rate, slot_emitted, scale, out):
    """Fold one hour's footprint with area sources: ``out[row, tag, slot] += F[row, slot, cell] E scale``.

    ``footprint[nrow, nslot, ncell]`` (s), ``cell``/``tag`` of each area source, ``rate[nsource, E]``
    (kg/s), ``slot_emitted[slot]`` (index into E, -1: not emitted), ``scale`` = 1 / (cell area * layer
    depth); rows with ``active`` False are skipped. Sources are summed in order within each row.
    """
    nrow, ns, _ = footprint.shape
    for r in prange(nrow):
        if not active[r]:
            continue
        for a in range(cell.size):
            c = cell[a]
            t = tag[a]
            for s in range(ns):
                e = slot_emitted[s]
                if e >= 0:
                    f = footprint[r, s, c]
                    if f != 0.0:
                        out[r, t, s] += f * rate[a, e] * scale


# --------------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------------
def transport_parameters(forward: LagrangianParameters, slots: AdjointSlots, source_depth: float
                         ) -> LagrangianParameters:
    """Parameters of the particle step for backward particles: the forward run's transport, no removal.

    The species are the adjoint slots (the particle "masses" are their weights); removal and chemistry act
    through :func:`adjoint_weights` instead, and the sampling layer is the source layer. Every transport
    setting (turbulence scheme, floors, mesoscale motions) is the forward run's; ``time_reversed``
    mirrors a skewed convective PDF.
    """
    zeros = np.zeros(slots.size)
    return dataclasses.replace(
        forward, species=slots.names, deposition_velocity_m_s=zeros, wet_a_per_s=zeros, wet_b=zeros,
        decay_per_s=zeros, conversions=(), sampling_depth_m=float(source_depth), time_reversed=True,
    )


def adjoint_records(forward: LagrangianParameters, slots: AdjointSlots) -> tuple[Removal, AdjointLinks]:
    """Per-slot removal (conversions out of the upstream tracer counted as decay) and the adjoint links."""
    tracer_values = {}
    for name, values in (("vd", forward.deposition_velocity_m_s), ("a", forward.wet_a_per_s),
                         ("b", forward.wet_b), ("decay", forward.decay_per_s)):
        by_tracer = np.array([values[forward.species.index(t)] if t in forward.species else 0.0
                              for t in slots.tracers])
        tracer_values[name] = slots.per_slot(by_tracer)
    decay = tracer_values["decay"] + slots.conversion_loss_per_slot(forward.conversions)
    removal = Removal(tracer_values["vd"], tracer_values["a"], tracer_values["b"],
                      np.ascontiguousarray(decay), float(forward.dry_layer_m), float(forward.wet_top_m))
    links = AdjointLinks(slots.link_source, slots.link_target, slots.link_rate, slots.link_yield)
    return removal, links


class SurfaceAtStepEnd:
    """A time-reversed met window whose steps read the boundary-layer scalars at the end of the step.

    A forward step from t to t + dt reads the mixing height, u*, w* and 1/L at its start, t: they decide
    which particles are in the mixed layer, where it reflects them and their profiles. The backward step
    from tau to tau + dt reverses the forward step from t_end - tau - dt to t_end - tau, so it reads them at
    its end, tau + dt (the winds of both ends as before). Read at tau, a backward run lags the forward
    one's mixing height by a step: where h falls by 600 m in an hour under a residual layer, B/F 1.078 with
    250 s steps (1.039 with 60 s steps; tests/test_duality.py). The position is the step's start (the
    forward step's end, a displacement away from where it reads them; not corrected).
    """

    def __init__(self, met: MetWindow) -> None:
        self.met = met
        self.z_levels = met.z_levels

    def step_met(self, t: float, dt: float) -> StepMet:
        """Return the winds of the step from t to t + dt with the boundary-layer scalars at t + dt."""
        here = self.met.step_met(t, dt)
        end = min(t + dt, float(self.met.times[-1]))
        return StepMet(here.wind_t, here.wind_t_next, self.met.step_met(end, dt).surface_t)


class BackwardRun(ParticleRun):
    """Backward particles of receptor rows, moved hour by hour back in time, with their footprints.

    Parameters
    ----------
    x0, y0, dx, nx, ny, z_top
        Grid and model top, as :class:`~airshed.model.lagrangian.ParticleRun`.
    n_rows
        Receptor rows (receptor x averaging period x batch): the tags of the particles.
    forward
        The forward run's parameters (transport, removal, conversions): the backward run uses the same.
    slots
        The adjoint slots (:func:`airshed.physics.adjoint.adjoint_slots` of the forward species and
        conversions).
    seed
        Random seed.
    source_depth
        Depth of the source layer whose residence time is the footprint, m (the area-source release depth).

    Time runs backward: ``tau`` = (end of the run) - t, and :meth:`advance` takes the time-reversed met
    window (:func:`time_reversed`). After each call, :attr:`footprint` holds the call's footprint
    ``[n_rows, nslot, ny * nx]`` and :attr:`stack_footprint` ``[n_rows, nslot, nstack]`` (particle-seconds:
    divide by the particles released per row).
    """

    def __init__(self, x0: float, y0: float, dx: float, nx: int, ny: int, z_top: float, n_rows: int,
                 forward: LagrangianParameters, slots: AdjointSlots, seed: int,
                 source_depth: float = AREA_RELEASE_DEPTH_M, n_stacks: int = 0) -> None:
        super().__init__(x0, y0, dx, nx, ny, z_top, n_rows,
                         transport_parameters(forward, slots, source_depth), seed)
        self.slots = slots
        self.adjoint_removal, self.links = adjoint_records(forward, slots)
        self.any_wet = bool(np.any(self.adjoint_removal.wet_a > 0.0))
        self.inv_density_scale_height = (1.0 / forward.density_scale_height_m
                                         if forward.density_scale_height_m > 0.0 else 0.0)
        self.footprint = np.zeros((n_rows, slots.size, ny * nx))
        self.stack_footprint = np.zeros((n_rows, slots.size, n_stacks))
        self._z_release = np.zeros(self.x.size)
        self._z_start = np.zeros(self.x.size)

    def _allocate(self, capacity: int) -> None:
        super()._allocate(capacity)
        for name in ("_z_release", "_z_start"):  # heights carried with the particles
            old = getattr(self, name, None)
            values = np.zeros(capacity)
            if old is not None:
                values[: self.n] = old[: self.n]
            setattr(self, name, values)

    def _move_survivors(self, keep: np.ndarray) -> None:
        # the release and step-start heights follow their particles
        self._z_release[: keep.size] = self._z_release[keep]
        self._z_start[: keep.size] = self._z_start[keep]
        super()._move_survivors(keep)

    def _grid(self, met: MetWindow) -> Grid:
        return Grid(self.x0, self.y0, self.dx, self.nx, self.ny, met.z_levels.size, met.z_levels, self.z_top,
                    float(self.params.sampling_depth_m))

    def advance(self, met: MetWindow, receptors: ReleaseTable | None, t_start: float, t_end: float,
                n_per_period: np.ndarray | None = None, weights: np.ndarray | None = None,
                stacks: CellBoxes | None = None) -> None:
        """Release and move backward particles over [t_start, t_end) of backward time, gridding footprints.

        ``met`` is the time-reversed window covering the interval; ``receptors`` (boxes with their row as
        tag) release ``n_per_period[k]`` particles each, spread evenly over the interval, with the initial
        ``weights[k, nslot]``. ``stacks`` (layers of the hour) add the weights in each stack's layer to
        :attr:`stack_footprint`.
        """
        if met.shape != (self.ny, self.nx):
            raise AirshedInputError(f"met window: horizontal shape {met.shape} != particle grid "
                                    f"{(self.ny, self.nx)}")
        period = t_end - t_start
        nsteps, dt = self.time_step(met, period)
        self.footprint[:] = 0.0
        self.stack_footprint[:] = 0.0
        div = divergence_field(met, self.dx, self.inv_density_scale_height)
        compressible = bool(np.any(div != 0.0))
        t0_met, dt_met = float(met.times[0]), float(met.times[1] - met.times[0])
        # boundary-layer scalars read where the reversed forward step reads them
        met_at_step_end = SurfaceAtStepEnd(met)
        for k in range(nsteps):
            t = t_start + k * dt
            if receptors is not None and receptors.size:
                before = self.n
                self.release(receptors, n_per_period, t_start, period, t, dt, weights)
                self._z_release[before:self.n] = self.z[before:self.n]
            if not self.n:
                self.step += 1
                self.steps_taken += 1
                continue
            n = self.n
            if compressible:  # the Liouville factor, first half of the step (module docstring)
                self._scale_by_divergence(div, t0_met, dt_met, t, 0.5 * dt, met)
            # the removal of the forward step this step reverses, read where the forward step reads it (module
            # docstring): the height at the start of this step, the rain where the move ends
            self._z_start[:n] = self.z[:n]
            self.step_once(met_at_step_end, t, dt)
            n = self.n
            if not n:
                continue
            rain = np.zeros(n)
            if self.any_wet:
                # precipitation at the start of the forward step: the end of this one (the next step's met,
                # the same key, so computed once)
                t_next = min(t_start + (k + 1) * dt, float(met.times[-1]))
                rain_at_particles(self.x[:n], self.y[:n], self.alive[:n], met.step_met(t_next, dt).surface_t,
                                  self._grid(met), rain)
            adjoint_weights(self.mass[:, :n], self._z_start[:n], self.alive[:n], rain, self.adjoint_removal,
                            self.links, dt, self.params.block_size)
            if compressible:  # second half, at the end of the step
                self._scale_by_divergence(div, t0_met, dt_met, t_start + (k + 1) * dt, 0.5 * dt, met)
            weights_now = self.mass[:, :n]
            factor = np.ones(n)
            if self.inv_density_scale_height > 0.0:
                factor = np.exp((self.z[:n] - self._z_release[:n]) * self.inv_density_scale_height)
                weights_now = weights_now * factor
            accumulate_concentration(self.cell[:n], self.tag[:n], weights_now, dt, self.footprint)
            if stacks is not None and self.stack_footprint.shape[2]:
                accumulate_at_stacks(self.x[:n], self.y[:n], self.z[:n], self.alive[:n], self.tag[:n],
                                     self.mass[:, :n], factor, dt, stacks, self.stack_footprint)
        self.period_index += 1

    def _scale_by_divergence(self, div: np.ndarray, t0: float, dt_field: float, t: float, half_dt: float,
                             met: MetWindow) -> None:
        """Multiply the weights by exp(D half_dt), D the reversed wind's divergence at the particles at t."""
        n = self.n
        d = np.empty(n)
        field_at_particles(div, t0, dt_field, t, self.x[:n], self.y[:n], self.z[:n], self.alive[:n],
                           self._grid(met), d)
        scale_weights(self.mass[:, :n], self.alive[:n], d * half_dt)

    def alive_per_row(self) -> np.ndarray:
        """Live particles per receptor row (still inside the domain)."""
        n = self.n
        return np.bincount(self.tag[:n][self.alive[:n]], minlength=self.ntag)


class ReceptorSampledRun(ParticleRun):
    """A forward :class:`~airshed.model.lagrangian.ParticleRun` that also samples receptor boxes every step.

    After each step the mass of the particles inside each box is added, times the step, to
    :attr:`box_sum` ``[nbox, nbatch, ntag, nspecies]`` (kg s; the caller divides by the box volume and the
    averaging time), in Monte-Carlo batches by particle id. This is the receptor definition of the backward
    run (:class:`BackwardRun` releases uniformly in the same boxes), so the two directions estimate the
    same quantity.
    """

    def __init__(self, x0: float, y0: float, dx: float, nx: int, ny: int, z_top: float, ntag: int,
                 params: LagrangianParameters, seed: int, boxes: CellBoxes, batches: int = 1,
                 first_period: int = 0) -> None:
        super().__init__(x0, y0, dx, nx, ny, z_top, ntag, params, seed, first_period=first_period)
        self.boxes = boxes
        self.box_sum = np.zeros((boxes.x_low.size, int(batches), ntag, len(params.species)))
        self.batch_seed = (self.seed + BATCH_KEY_OFFSET) % (1 << 64)

    def step_once(self, met: MetWindow, t: float, dt: float) -> None:
        """Advance all particles by one step (see the parent), then sample the boxes."""
        super().step_once(met, t, dt)
        if self.n:
            n = self.n
            accumulate_in_boxes(self.x[:n], self.y[:n], self.z[:n], self.alive[:n], self.tag[:n],
                                self.pid[:n], self.mass[:, :n], dt, self.boxes, self.batch_seed, self.box_sum)
