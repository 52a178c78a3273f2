"""Lagrangian particle kernels (FLEXPART-class): advection, Langevin turbulence, removal, chemistry, gridding.

State is structure-of-arrays: positions ``x, y`` (projected m), ``z`` (m above ground), normalised
turbulent velocities ``un, vn, wn`` (u'/sigma_u, ...), ``mass[nspecies, n]`` (kg), ``tag``, ``pid``
(unique particle id, the key of its random numbers), ``alive`` and ``cell`` (flat index of the output cell
when in the sampling layer, else -1). Kernels know nothing of files or configs; the thin orchestration
layer (time steps, release, output intervals, budget) is :class:`ParticleRun` / :func:`run_particles`.

One step of ``dt`` seconds (:func:`advance_particles`), per particle:

1. Boundary-layer scalars h, u*, w*, 1/L and precipitation: bilinear in space, linear in time (the
   fields are interpolated in time once per step for the whole grid, then read at one time level).
2. Horizontal turbulence: inside the mixed layer an order-1 Markov (Langevin) process for u'/sigma_u and
   v'/sigma_v with the exact exponential update r = exp(-dt/T_L) (Hanna 1982 sigmas and T_L; Stohl et al.
   2005, ACP 5:2461, Sect. 6.1); above it a random displacement with FLEXPART's free-troposphere
   diffusivity (``k_free_horizontal``, 50 m2/s).
3. Mean advection by Petterssen's (1940) predictor-corrector (second-order Runge-Kutta / Heun): winds
   trilinear in space (heights ``z_levels`` above ground; below the first level the first level's wind)
   and linear in time; the turbulent horizontal velocity is added to the displacement.
4. Vertical turbulence inside the mixed layer (z <= h): Langevin equation for w_n = w'/sigma_w in the
   normalised form with the well-mixed drift of Thomson (1987) for inhomogeneous Gaussian turbulence,
   dw_n = -w_n dt/T_Lw + (d sigma_w/dz + sigma_w / rho d rho/dz) dt + sqrt(2/T_Lw) dW (the FLEXPART form,
   Stohl & Thomson 1999, BLM 90:155; exactly Thomson's 1-D solution after dividing by sigma_w), updated
   with r = exp(-dts/T_Lw). Each particle sub-steps with dts = min(ctl T_Lw(z), time left in the step),
   re-evaluating the profiles at its current height (the last of at most ``max_substeps`` sub-steps
   takes the rest of the step), so a particle that descends into the surface layer resolves its small
   time scales. Perfect reflection (position and
   velocity sign) at the ground and at h. The density term uses a constant scale height (0 = off).
5. Mixing-height changes: a particle is in the mixed layer when z <= h(x, y, t) at the start of the step;
   a particle above h is in the residual layer / free troposphere and moves by a random vertical
   displacement with ``k_free_vertical`` (FLEXPART's 0.1 m2/s) and is only reflected at the ground. So
   when h grows the particles it overtakes are mixed from the next step on, and when h falls the
   particles left above it stay in the residual layer; w_n of a free particle is redrawn from N(0, 1) each
   step so a particle that enters the mixed layer carries a velocity from the stationary distribution.
6. Particles that leave the horizontal domain (cell edges) or rise above ``z_top`` are removed; their
   mass is counted per species as left-domain.
7. Removal and chemistry as simultaneous first-order losses over dt (see :mod:`airshed.physics.removal`):
   dry deposition for particles below ``dry_layer_m`` (k = v_d / dry_layer_m), wet scavenging
   Lambda = A P^B for particles below ``wet_top_m`` (P at the start position), radioactive-style decay,
   SO2 -> sulfate and NOx -> nitrate. Converted precursor mass goes to the product species times the
   molar-mass ratio (after the loss loop, so the product is removed from the next step on).
8. ``cell`` is set for particles below ``sampling_depth`` for the gridding kernel.

Random numbers: draw slots 0-1 of the step for horizontal turbulence, 2, 3, ... for the vertical
sub-steps (one normal each, in Box-Muller pairs), keyed by (seed, particle id, step)
(:mod:`airshed.model.random`). In :meth:`ParticleRun.advance` the step is numbered within its emission
period, ``step = period_index * 2**STEP_IN_PERIOD_BITS + k``, so a particle's random numbers do not
depend on how many steps earlier periods took: a run that starts at any period (a release-window work
unit, :mod:`airshed.pipeline.units`) draws exactly the numbers of a run from the first period.
Particle ids name (period, source, index within the source), so
counterfactual runs with scaled emissions move the same particles on the same paths
(:mod:`airshed.model.release`).

How the step is computed: threads take blocks of ``block_size`` particles; a block is stepped in chunks
of :data:`CHUNK` particles (:func:`advance_chunk`) by passes that each vectorise (AVX-512 on the
machines we measured): the chunk's state is copied to stack buffers (which LLVM knows alias nothing),
and each pass is a branch-free loop of fixed length over the chunk (a partial chunk is padded with dead
particles, so every particle takes the same instructions wherever it sits: results are bit-identical
for any partition). The Hanna profiles are evaluated only for the stability regimes present in the
chunk (particles are sorted by cell, so a chunk mostly holds one), each regime in its own branch-free pass
whose values the chunk's particles of that regime take (the later packed sub-steps evaluate all three
and select), with the branch-free exp/log/cbrt of :mod:`airshed.model.fastmath` (a few ulp from NumPy's)
whose polynomials use explicit fused multiply-adds (the same rounding in every compilation). A
particle's values do not depend on the other particles of its chunk. Budgets accumulate per block
(fixed, independent of the thread count) and are summed in block order, and the gridding sums particles
in index order, so results are bit-identical for any number of threads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from llvmlite import ir
from numba import carray, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from airshed.errors import AirshedInputError
from airshed.jit import inline, kernel
from airshed.model import fastmath
from airshed.model.random import (
    RELEASE_FIRST_DRAW,
    box_muller_vector_scalar,
    counter_scalar,
    normal_pair_scalar,
    particle_key_scalar,
    uniform_scalar,
)
from airshed.model.release import (
    ParticleCredit,
    ReleaseTable,
    allocation_weights,
    particle_ids,
    released_before,
)
from airshed.physics.mechanism import (
    NITRATE_PER_NOX,
    NOX_TO_NITRATE_PER_HOUR,
    SO2_TO_SULFATE_PER_HOUR,
    SULFATE_PER_SO2,
    default_mechanism,
)
from airshed.physics.removal import (
    DRY_DEPOSITION_LAYER_M,
    dry_deposition_rate,
    scavenging_formula,
)
from airshed.physics.turbulence import (
    FLEXPART_TL_MIN_HORIZONTAL_S,
    FLEXPART_TL_MIN_VERTICAL_S,
    NEUTRAL,
    STABLE,
    UNSTABLE,
    branch_free_profiles,
    hanna_regime,
    regime_profiles,
)

#: Budget terms, axis 1 of the per-block budget array (all per species, kg).
DRY_DEPOSITED, WET_DEPOSITED, CONVERTED, PRODUCED, DECAYED, LEFT_DOMAIN = 0, 1, 2, 3, 4, 5
N_BUDGET_TERMS = 6
BUDGET_TERM_NAMES = ("dry_deposited", "wet_deposited", "converted", "produced", "decayed", "left_domain")
#: Order of the packed surface fields (axis -1 of ``surface``).
SURFACE_FIELDS = ("mixing_height", "ustar", "wstar", "inv_L", "precip")
#: Every this many steps a large particle set is sorted by grid cell (memory locality of the met reads).
SORT_INTERVAL_STEPS = 24
#: Bits of the step counter within one emission period (:meth:`ParticleRun.advance`): at most 2**20
#: steps per period.
STEP_IN_PERIOD_BITS = 20
#: Smallest mixing height used by the turbulence, m (guards against h = 0 in the input).
MIN_MIXING_HEIGHT_M = 10.0

# The branch-free exp/log/cbrt of airshed.model.fastmath (a few ulp from NumPy's) inlined into the
# particle loops at the Numba level: as calls (LLVM left them out of line in these large loops) they kept
# the loops scalar. The Hanna profiles and the scavenging coefficient over them, so those loops vectorise.
# Their polynomials are evaluated with explicit fused multiply-adds (fastmath's *_fma forms): fewer
# instructions than separate multiplies and adds, and, unlike FMA contraction left to LLVM, the same
# rounding in every compilation of the kernel (bit-identical results across processes and partitions).
fast_exp = inline(fastmath.fast_exp_fma_py)
fast_expm1 = inline(fastmath.fast_expm1_fma_py)
fast_log = inline(fastmath.fast_log_fma_py)
fast_cbrt = inline(fastmath.cbrt_over(fast_exp, fast_log))
hanna_vertical_fast, hanna_horizontal_fast = branch_free_profiles(fast_exp, fast_log, fast_cbrt)
(vertical_neutral, vertical_unstable, vertical_stable), (
    horizontal_neutral, horizontal_unstable, horizontal_stable
) = regime_profiles(fast_exp, fast_log, fast_cbrt)
wet_coefficient_fast = inline(scavenging_formula(fast_exp, fast_log))


@inline
def horizontal_index(x: float, x0: float, dx: float, n: int) -> tuple[int, float]:
    """Lower cell-centre index and weight for linear interpolation along one axis (clamped at edges)."""
    f = (x - x0) / dx - 0.5
    i = min(max(int(np.floor(f)), 0), n - 2)
    w = min(max(f - i, 0.0), 1.0)
    return i, w


@inline
def level_indices(z: np.ndarray, n: int, z_levels: np.ndarray, out: np.ndarray) -> None:
    """Lower level index for linear interpolation in height of ``z[q]``, q < n (inner levels at or below z).

    The loop over levels is outside the loop over particles, which then vectorises (a per-particle search
    loop would keep the whole particle loop scalar).
    """
    for q in range(n):
        out[q] = 0
    for lev in range(1, z_levels.size - 1):
        z_lev = z_levels[lev]
        for q in range(n):
            out[q] += z_lev <= z[q]


@inline
def level_weight(z: float, k: int, z_levels: np.ndarray) -> float:
    """Weight of level k + 1 at height z (clamped to [0, 1]: constant outside the levels)."""
    w = (z - z_levels[k]) / (z_levels[k + 1] - z_levels[k])
    return min(max(w, 0.0), 1.0)


@inline
def chunk_sum(a: np.ndarray) -> float:
    """Sum of ``a[:CHUNK]`` in eight interleaved partial sums (a fixed order); overwrites ``a[:8]`` with them.

    Accumulating in place gives the SLP vectoriser eight adjacent stores to combine, so the partial sums
    take one vector add per eight elements (a running scalar sum would take one add per element).
    """
    for q0 in range(8, CHUNK, 8):
        for lane in range(8):
            a[lane] += a[q0 + lane]
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))


@inline
def time_index(t: float, t0: float, dt_met: float, nt: int) -> tuple[int, float]:
    """Lower met time index and weight for linear interpolation in time."""
    f = (t - t0) / dt_met
    it = min(max(int(np.floor(f)), 0), nt - 2)
    return it, min(max(f - it, 0.0), 1.0)


@inline
def interp_surface(
    surface: np.ndarray, nx: int, j: int, wy: float, i: int, wx: float
) -> tuple[float, float, float, float, float]:
    """Bilinear surface fields from the time-interpolated ones, float32 in rows ``[ny, 5, nx]`` (flat).

    Returns (h, u*, w*, 1/L, precipitation), the order of :data:`SURFACE_FIELDS`; a field's two
    x-neighbours are read as one pair (:func:`load_float32_pair`).
    """
    out0 = 0.0
    out1 = 0.0
    out2 = 0.0
    out3 = 0.0
    out4 = 0.0
    for c in range(2):
        fc = wy if c == 1 else 1.0 - wy
        f0 = fc * (1.0 - wx)
        f1 = fc * wx
        base = (j + c) * 5 * nx + i
        a0, a1 = load_float32_pair(surface, base)
        b0, b1 = load_float32_pair(surface, base + nx)
        c0, c1 = load_float32_pair(surface, base + 2 * nx)
        d0, d1 = load_float32_pair(surface, base + 3 * nx)
        e0, e1 = load_float32_pair(surface, base + 4 * nx)
        out0 += f0 * a0
        out1 += f0 * b0
        out2 += f0 * c0
        out3 += f0 * d0
        out4 += f0 * e0
        out0 += f1 * a1
        out1 += f1 * b1
        out2 += f1 * c1
        out3 += f1 * d1
        out4 += f1 * e1
    return out0, out1, out2, out3, out4


@intrinsic
def load_float32_pair(typingctx, array, index):
    """``(array[index], array[index + 1])`` of a 1-D float32 array, read as one 64-bit load.

    In a vectorised loop this is one 64-bit gather instead of two 32-bit ones (gathers cost per element).
    """
    if not (isinstance(array, types.Array) and array.dtype == types.float32 and array.ndim == 1):
        return None
    if not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        address = builder.gep(data, [args[1]])
        bits = builder.load(builder.bitcast(address, ir.IntType(64).as_pointer()), align=4)
        low = builder.bitcast(builder.trunc(bits, ir.IntType(32)), ir.FloatType())
        shifted = builder.lshr(bits, ir.Constant(ir.IntType(64), 32))
        high = builder.bitcast(builder.trunc(shifted, ir.IntType(32)), ir.FloatType())
        return context.make_tuple(builder, signature.return_type, [low, high])

    return types.UniTuple(types.float32, 2)(array, types.intp), codegen


@inline
def interp_wind(
    wind: np.ndarray, nx: int, ny: int, k: int, wz: float, j: int, wy: float, i: int, wx: float
) -> tuple[float, float, float]:
    """Trilinear (u, v, w) from the time-interpolated wind, float32 in rows ``[nz, ny, 3, nx]`` (flat).

    Each row holds u, v, w one after the other, so the two x-neighbours of a component are adjacent and
    read as one pair (:func:`load_float32_pair`).
    """
    uu = 0.0
    vv = 0.0
    ww = 0.0
    for b in range(2):
        fb = wz if b == 1 else 1.0 - wz
        for c in range(2):
            fc = fb * (wy if c == 1 else 1.0 - wy)
            f0 = fc * (1.0 - wx)
            f1 = fc * wx
            base = ((k + b) * ny + j + c) * 3 * nx + i
            u0, u1 = load_float32_pair(wind, base)
            v0, v1 = load_float32_pair(wind, base + nx)
            w0, w1 = load_float32_pair(wind, base + 2 * nx)
            uu += f0 * u0
            vv += f0 * v0
            ww += f0 * w0
            uu += f1 * u1
            vv += f1 * v1
            ww += f1 * w1
    return uu, vv, ww


@inline
def interpolate_fields_in_time(
    flat: np.ndarray, nfields: int, t: float, t0: float, dt_met: float, out: np.ndarray
) -> None:
    """Fill ``out[nfields * nx]`` (field after field) from ``flat[nt, nx * nfields]`` linear in time at t.

    ``flat`` keeps a point's fields together; ``out`` keeps a field's points together, in its precision.
    """
    it, wt = time_index(t, t0, dt_met, flat.shape[0])
    nx = out.size // nfields
    for f in range(nfields):
        for i in range(nx):
            out[f * nx + i] = (1.0 - wt) * flat[it, nfields * i + f] + wt * flat[it + 1, nfields * i + f]


@inline
def vertical_substep(
    wn: float, z: float, h: float, g: float, dts: float, sigw: float, dsigw: float, tlw: float,
    inv_density_scale_height: float,
) -> tuple[float, float]:
    """One Langevin sub-step of dts for w_n = w'/sigma_w and z in the mixed layer [0, h] (see step 4).

    r = exp(-dts/T_Lw); w_n' = r w_n + sqrt(1 - r^2) g + T_Lw (1 - r)(d sigma_w/dz - sigma_w/H_rho);
    z' = z + w_n' sigma_w dts, reflected (position and velocity sign) at the ground and at h.
    Returns (w_n', z').
    """
    rw = fast_exp(-dts / tlw)
    wnp = rw * wn + np.sqrt(1.0 - rw * rw) * g + tlw * (1.0 - rw) * (dsigw - sigw * inv_density_scale_height)
    zp = z + wnp * sigw * dts
    below = zp < 0.0
    zp = -zp if below else zp
    wnp = -wnp if below else wnp
    above = zp > h
    zp = 2.0 * h - zp if above else zp
    wnp = -wnp if above else wnp
    return wnp, min(max(zp, 0.0), h)


#: Particles per block of the listing of sampled particles in :func:`accumulate_concentration`.
ACCUMULATE_BLOCK = 16384
#: Particles per pass of the step (stack buffers of N_SCRATCH rows of this length; 32 KB in all).
CHUNK = 128
# Rows of the per-chunk scratch buffer (the later rows reuse the predictor's once it is done with them).
R_X, R_Y, R_Z, R_UN, R_VN, R_WN, R_LIVE, R_G0, R_G1, R_G2, R_G3 = range(11)
R_H, R_USTAR, R_WSTAR, R_INV_L, R_RAIN, R_REMAINING, R_GONE, R_STAYS, R_DRY, R_WET = range(11, 21)
R_U1, R_V1, R_W1, R_UT, R_VT, R_XQ, R_YQ, R_ZQ = range(21, 29)
R_K_WET, R_EXPM1_WET, R_LOSS_PER_RATE, R_DRY_LOSS_PER_RATE, R_WET_LOSS, R_LEFT = range(21, 27)
R_SULFATE_PRODUCED, R_NITRATE_PRODUCED = 27, 28
# rows of the packed vertical sub-steps (contiguous; rows of the predictor/corrector, free by then)
P_Z, P_WN, P_H, P_USTAR, P_WSTAR, P_INV_L, P_REMAINING, P_G, P_G_SECOND = range(21, 30)
# rows of the chunk's stability regime and of its profiles (horizontal in pass 1, vertical in pass 2)
R_REGIME, R_SIG_U, R_SIG_V, R_TL_U, R_TL_V = range(30, 35)
R_SIG_W, R_DSIG_W, R_TL_W = R_SIG_U, R_SIG_V, R_TL_U
N_SCRATCH = 35
SCRATCH_SIZE = N_SCRATCH * CHUNK
LEVELS_SIZE = 2 * CHUNK


def _regime_passes(horizontal_profile, vertical_profile, regime):
    """Return the passes over a chunk that keep one stability regime's Hanna profiles for its particles.

    The horizontal pass reads z, h, u*, w*, 1/L and writes sigma_u, sigma_v, T_Lu, T_Lv; the vertical one
    reads the corrector height (capped at h) and writes sigma_w, d sigma_w/dz, T_Lw. Particles of other
    regimes keep their values, so running the passes of the regimes present gives every particle its own.
    """

    @inline
    def horizontal_pass(scratch, tl_min):
        for q in range(CHUNK):
            sigu, sigv, tlu, tlv = horizontal_profile(
                scratch[R_Z, q], scratch[R_H, q], scratch[R_USTAR, q], scratch[R_WSTAR, q],
                scratch[R_INV_L, q], tl_min,
            )
            pick = scratch[R_REGIME, q] == regime
            scratch[R_SIG_U, q] = sigu if pick else scratch[R_SIG_U, q]
            scratch[R_SIG_V, q] = sigv if pick else scratch[R_SIG_V, q]
            scratch[R_TL_U, q] = tlu if pick else scratch[R_TL_U, q]
            scratch[R_TL_V, q] = tlv if pick else scratch[R_TL_V, q]

    @inline
    def vertical_pass(scratch, tl_min):
        for q in range(CHUNK):
            sigw, dsigw, tlw = vertical_profile(
                min(scratch[R_ZQ, q], scratch[R_H, q]), scratch[R_H, q], scratch[R_USTAR, q],
                scratch[R_WSTAR, q], scratch[R_INV_L, q], tl_min,
            )
            pick = scratch[R_REGIME, q] == regime
            scratch[R_SIG_W, q] = sigw if pick else scratch[R_SIG_W, q]
            scratch[R_DSIG_W, q] = dsigw if pick else scratch[R_DSIG_W, q]
            scratch[R_TL_W, q] = tlw if pick else scratch[R_TL_W, q]

    return horizontal_pass, vertical_pass


horizontal_pass_neutral, vertical_pass_neutral = _regime_passes(horizontal_neutral, vertical_neutral, NEUTRAL)
horizontal_pass_unstable, vertical_pass_unstable = _regime_passes(
    horizontal_unstable, vertical_unstable, UNSTABLE
)
horizontal_pass_stable, vertical_pass_stable = _regime_passes(horizontal_stable, vertical_stable, STABLE)


@intrinsic
def stack_buffer(typingctx, length, dtype):
    """Pointer to ``length`` (a compile-time constant) elements of ``dtype`` on the stack of the caller.

    Wrapped by ``numba.carray``: block-local buffers that LLVM knows alias no argument array.
    """
    if not isinstance(length, types.IntegerLiteral) or not isinstance(dtype, types.NumberClass):
        return None
    element = dtype.instance_type
    count = length.literal_value

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_value_type(element), size=count)

    return types.CPointer(element)(length, dtype), codegen




# Compiled without fastmath: with FMA contraction allowed, two compilations of the same kernel (another
# process, another array layout) rounded some particles differently (the partition test failed when its
# two calls came from different compilations); IEEE-exact arithmetic is the same in every compilation.
@kernel()
def advance_chunk(
    first, nc,
    x, y, z, un, vn, wn, mass, pid, alive, cell,
    wind_t, wind_t_next, surface_t, z_levels, x0, y0, dx, x_end, y_end, z_top, nx, ny,
    dt, useed, ustep, draw_h, draw_v,
    wet_a, wet_b, decay_rate, any_wet, k_chem_of, k_dry_of, k_fixed, expm1_fixed,
    so2_index, sulfate_index, nox_index, nitrate_index, so2_rate, nox_rate, sulfate_per_so2,
    nitrate_per_nox, dry_layer_m, wet_top_m, sampling_depth, ctl, max_substeps, tl_min_horizontal,
    tl_min_vertical, s_free_horizontal, s_free_vertical, horizontal_turbulence,
    inv_density_scale_height, budget,
):  # fmt: skip
    """One step of particles ``first`` to ``first + nc - 1`` (nc <= CHUNK) in passes over the stack buffers.

    Each pass is a branch-free loop that vectorises; dead particles go through the arithmetic but their
    state is written back unchanged. Removal is added to ``budget[N_BUDGET_TERMS, nspecies]``.
    The chunk's state and intermediates live in stack buffers: LLVM knows they alias no argument array,
    so the passes vectorise without run-time alias checks.
    """
    nspecies = mass.shape[0]
    scratch = carray(stack_buffer(SCRATCH_SIZE, np.float64), (N_SCRATCH, CHUNK))
    levels = carray(stack_buffer(LEVELS_SIZE, np.int64), (2, CHUNK))
    # views of the chunk, indexed from 0 (an index known to be >= 0 keeps the accesses contiguous)
    last = first + nc
    x = x[first:last]
    y = y[first:last]
    z = z[first:last]
    un = un[first:last]
    vn = vn[first:last]
    wn = wn[first:last]
    pid = pid[first:last]
    alive = alive[first:last]
    cell = cell[first:last]
    # the chunk's state, padded to CHUNK with dead particles: every pass below runs over the whole
    # buffer, a loop of fixed length that LLVM vectorises without a scalar remainder, so each particle
    # takes the same instructions wherever it sits in a chunk (bit-identical for any partition)
    for q in range(CHUNK):
        inside = q < nc
        scratch[R_X, q] = x[q] if inside else x0
        scratch[R_Y, q] = y[q] if inside else y0
        scratch[R_Z, q] = z[q] if inside else 0.0
        scratch[R_UN, q] = un[q] if inside else 0.0
        scratch[R_VN, q] = vn[q] if inside else 0.0
        scratch[R_WN, q] = wn[q] if inside else 0.0
        scratch[R_LIVE, q] = 1.0 if inside and alive[q] else 0.0
    # normals of draw slots 0-3 (Box-Muller pairs)
    for q in range(CHUNK):
        key = particle_key_scalar(useed, np.uint64(pid[q] if q < nc else 0))
        scratch[R_G0, q] = uniform_scalar(key, draw_h)
        scratch[R_G1, q] = uniform_scalar(key, draw_h + np.uint64(1))
        scratch[R_G2, q] = uniform_scalar(key, draw_v)
        scratch[R_G3, q] = uniform_scalar(key, draw_v + np.uint64(1))
    for q in range(CHUNK):
        scratch[R_G0, q], scratch[R_G1, q] = box_muller_vector_scalar(scratch[R_G0, q], scratch[R_G1, q])
        scratch[R_G2, q], scratch[R_G3, q] = box_muller_vector_scalar(scratch[R_G2, q], scratch[R_G3, q])
    # 1.-3. boundary-layer scalars, horizontal turbulence, predictor wind
    n_neutral = 0
    n_unstable = 0
    n_stable = 0
    for q in range(CHUNK):
        i, wx = horizontal_index(scratch[R_X, q], x0, dx, nx)
        j, wy = horizontal_index(scratch[R_Y, q], y0, dx, ny)
        h, us, ws, il, rain = interp_surface(surface_t, nx, j, wy, i, wx)
        h = max(h, MIN_MIXING_HEIGHT_M)
        regime = hanna_regime(h, il)
        n_neutral += regime == NEUTRAL
        n_unstable += regime == UNSTABLE
        n_stable += regime == STABLE
        scratch[R_REGIME, q] = regime
        scratch[R_H, q] = h
        scratch[R_USTAR, q] = us
        scratch[R_WSTAR, q] = ws
        scratch[R_INV_L, q] = il
        scratch[R_RAIN, q] = rain
    # the Hanna profiles of the regimes present in the chunk only (particles close in space share one)
    if n_neutral > 0:
        horizontal_pass_neutral(scratch, tl_min_horizontal)
    if n_unstable > 0:
        horizontal_pass_unstable(scratch, tl_min_horizontal)
    if n_stable > 0:
        horizontal_pass_stable(scratch, tl_min_horizontal)
    level_indices(scratch[R_Z], CHUNK, z_levels, levels[0])
    for q in range(CHUNK):
        live = scratch[R_LIVE, q] > 0.5
        xp = scratch[R_X, q]
        yp = scratch[R_Y, q]
        zp = scratch[R_Z, q]
        i, wx = horizontal_index(xp, x0, dx, nx)
        j, wy = horizontal_index(yp, y0, dx, ny)
        h = scratch[R_H, q]
        in_bl = zp <= h
        g_u = scratch[R_G0, q]
        g_v = scratch[R_G1, q]
        sigu = scratch[R_SIG_U, q]
        sigv = scratch[R_SIG_V, q]
        tlu = scratch[R_TL_U, q]
        tlv = scratch[R_TL_V, q]
        ru = fast_exp(-dt / tlu)
        rv = fast_exp(-dt / tlv)
        un_new = ru * scratch[R_UN, q] + np.sqrt(1.0 - ru * ru) * g_u if in_bl else g_u
        vn_new = rv * scratch[R_VN, q] + np.sqrt(1.0 - rv * rv) * g_v if in_bl else g_v
        ut = sigu * un_new if in_bl else s_free_horizontal * g_u
        vt = sigv * vn_new if in_bl else s_free_horizontal * g_v
        if not horizontal_turbulence:
            ut = 0.0
            vt = 0.0
        scratch[R_UN, q] = un_new if live else scratch[R_UN, q]
        scratch[R_VN, q] = vn_new if live else scratch[R_VN, q]
        k = levels[0, q]
        u1, v1, w1 = interp_wind(wind_t, nx, ny, k, level_weight(zp, k, z_levels), j, wy, i, wx)
        scratch[R_U1, q] = u1
        scratch[R_V1, q] = v1
        scratch[R_W1, q] = w1
        scratch[R_UT, q] = ut
        scratch[R_VT, q] = vt
        scratch[R_XQ, q] = xp + u1 * dt
        scratch[R_YQ, q] = yp + v1 * dt
        scratch[R_ZQ, q] = abs(zp + w1 * dt)
    # 3. corrector wind; 4./5. the first vertical sub-step in the mixed layer, the free step above it
    # (the corrected position replaces the predicted one in rows R_XQ, R_YQ, R_ZQ)
    level_indices(scratch[R_ZQ], CHUNK, z_levels, levels[1])
    for q in range(CHUNK):
        i, wx = horizontal_index(scratch[R_XQ, q], x0, dx, nx)
        j, wy = horizontal_index(scratch[R_YQ, q], y0, dx, ny)
        k = levels[1, q]
        wz = level_weight(scratch[R_ZQ, q], k, z_levels)
        u2, v2, w2 = interp_wind(wind_t_next, nx, ny, k, wz, j, wy, i, wx)
        scratch[R_XQ, q] = scratch[R_X, q] + (0.5 * (scratch[R_U1, q] + u2) + scratch[R_UT, q]) * dt
        scratch[R_YQ, q] = scratch[R_Y, q] + (0.5 * (scratch[R_V1, q] + v2) + scratch[R_VT, q]) * dt
        scratch[R_ZQ, q] = abs(scratch[R_Z, q] + 0.5 * (scratch[R_W1, q] + w2) * dt)
    if n_neutral > 0:
        vertical_pass_neutral(scratch, tl_min_vertical)
    if n_unstable > 0:
        vertical_pass_unstable(scratch, tl_min_vertical)
    if n_stable > 0:
        vertical_pass_stable(scratch, tl_min_vertical)
    for q in range(CHUNK):
        live = scratch[R_LIVE, q] > 0.5
        h = scratch[R_H, q]
        in_bl = scratch[R_Z, q] <= h
        xp = scratch[R_XQ, q]
        yp = scratch[R_YQ, q]
        zp = scratch[R_ZQ, q]
        g = scratch[R_G2, q]
        zb = min(zp, h)
        sigw = scratch[R_SIG_W, q]
        dsigw = scratch[R_DSIG_W, q]
        tlw = scratch[R_TL_W, q]
        dts = ctl * tlw
        last_sub = (dts >= dt * (1.0 - 1e-9)) | (max_substeps == 1)
        remaining = 0.0 if last_sub else dt - dts
        dts = dt if last_sub else dts
        wnp, zb = vertical_substep(
            scratch[R_WN, q], zb, h, g, dts, sigw, dsigw, tlw, inv_density_scale_height
        )
        z_new = zb if in_bl else abs(zp + s_free_vertical * g)
        wn_new = wnp if in_bl else scratch[R_G3, q]
        scratch[R_X, q] = xp if live else scratch[R_X, q]
        scratch[R_Y, q] = yp if live else scratch[R_Y, q]
        scratch[R_Z, q] = z_new if live else scratch[R_Z, q]
        scratch[R_WN, q] = wn_new if live else scratch[R_WN, q]
        scratch[R_REMAINING, q] = remaining if live & in_bl else 0.0
    # further vertical sub-steps (particles whose T_Lw is short against dt), in rounds: the particles
    # with time left are packed at the front of rows (gathered from the chunk, in chunk order), a round
    # advances each by its own sub-step in one vectorised pass, then the finished ones are dropped from
    # the pack. Normals: an even round draws a new pair (slots 2 + ksub and 3 + ksub), an odd one takes
    # the pair's second. (Rows R_G0, R_G1 and R_U1... are free once the corrector pass is done.)
    packed = levels[0]
    na = 0
    for q in range(CHUNK):
        packed[na] = q
        na += scratch[R_REMAINING, q] > 0.0
    for a in range(na):
        q = packed[a]
        scratch[P_Z, a] = scratch[R_Z, q]
        scratch[P_WN, a] = scratch[R_WN, q]
        scratch[P_H, a] = scratch[R_H, q]
        scratch[P_USTAR, a] = scratch[R_USTAR, q]
        scratch[P_WSTAR, a] = scratch[R_WSTAR, q]
        scratch[P_INV_L, a] = scratch[R_INV_L, q]
        scratch[P_REMAINING, a] = scratch[R_REMAINING, q]
        scratch[P_G_SECOND, a] = scratch[R_G3, q]
    ksub = 1
    while na > 0:
        row_g = P_G_SECOND
        if ksub % 2 == 0:
            row_g = P_G
            draw = counter_scalar(ustep, np.uint64(2 + ksub))
            for a in range(na):
                key = particle_key_scalar(useed, np.uint64(pid[packed[a]]))
                scratch[P_G, a] = uniform_scalar(key, draw)
                scratch[P_G_SECOND, a] = uniform_scalar(key, draw + np.uint64(1))
            for a in range(na):
                g, g_second = box_muller_vector_scalar(scratch[P_G, a], scratch[P_G_SECOND, a])
                scratch[P_G, a] = g
                scratch[P_G_SECOND, a] = g_second
        final_round = ksub == max_substeps - 1
        for a in range(na):
            remaining = scratch[P_REMAINING, a]
            h = scratch[P_H, a]
            sigw, dsigw, tlw = hanna_vertical_fast(
                scratch[P_Z, a], h, scratch[P_USTAR, a], scratch[P_WSTAR, a], scratch[P_INV_L, a],
                tl_min_vertical,
            )
            dts = ctl * tlw
            last_sub = (dts >= remaining * (1.0 - 1e-9)) | final_round
            dts = remaining if last_sub else dts
            wn_new, z_new = vertical_substep(
                scratch[P_WN, a], scratch[P_Z, a], h, scratch[row_g, a], dts, sigw, dsigw, tlw,
                inv_density_scale_height,
            )
            scratch[P_Z, a] = z_new
            scratch[P_WN, a] = wn_new
            scratch[P_REMAINING, a] = 0.0 if last_sub else remaining - dts
        for a in range(na):
            q = packed[a]
            scratch[R_Z, q] = scratch[P_Z, a]
            scratch[R_WN, q] = scratch[P_WN, a]
        kept = 0
        for a in range(na):
            goes_on = scratch[P_REMAINING, a] > 0.0
            packed[kept] = packed[a]
            for row in range(P_Z, P_G_SECOND + 1):
                scratch[row, kept] = scratch[row, a]
            kept += goes_on
        na = kept
        ksub += 1
    # 6. leaving the domain; which particles stay, and of those which are in the dry layer and in rain
    n_wet = 0
    for q in range(CHUNK):
        live = scratch[R_LIVE, q] > 0.5
        xp = scratch[R_X, q]
        yp = scratch[R_Y, q]
        zp = scratch[R_Z, q]
        gone = live & ((xp < x0) | (xp >= x_end) | (yp < y0) | (yp >= y_end) | (zp > z_top))
        stays = live & ~gone
        wet = stays & any_wet & (scratch[R_RAIN, q] > 0.0) & (zp <= wet_top_m)
        n_wet += wet
        scratch[R_GONE, q] = 1.0 if gone else 0.0
        scratch[R_STAYS, q] = 1.0 if stays else 0.0
        scratch[R_DRY, q] = 1.0 if zp < dry_layer_m else 0.0
        scratch[R_WET, q] = 1.0 if wet else 0.0
    # write the state back, array by array (one stored array per loop: no run-time alias checks)
    for q in range(nc):
        x[q] = scratch[R_X, q]
    for q in range(nc):
        y[q] = scratch[R_Y, q]
    for q in range(nc):
        z[q] = scratch[R_Z, q]
    for q in range(nc):
        un[q] = scratch[R_UN, q]
    for q in range(nc):
        vn[q] = scratch[R_VN, q]
    for q in range(nc):
        wn[q] = scratch[R_WN, q]
    for q in range(nc):
        alive[q] = alive[q] & (scratch[R_GONE, q] < 0.5)
    # 8. output cell of the particles that stay (-1 above the sampling depth or gone)
    for q in range(CHUNK):
        xp = scratch[R_X, q]
        yp = scratch[R_Y, q]
        flat = int(np.floor((yp - y0) / dx)) * nx + int(np.floor((xp - x0) / dx))
        sampled = flat if scratch[R_Z, q] < sampling_depth else -1
        if q < nc:
            cell[q] = sampled if scratch[R_STAYS, q] > 0.5 else (-1 if scratch[R_GONE, q] > 0.5 else cell[q])
    # 7. removal and chemistry, simultaneous first-order losses, species by species. With
    # e = expm1(-k dt), exp(-(k_fixed + k_wet) dt) - 1 = e_f (1 + e_w) + e_w (no cancellation, all
    # terms <= 0); e_w is computed once per distinct scavenging (A, B).
    rows_a = -1.0
    rows_b = -1.0
    for s in range(nspecies):
        a = wet_a[s] if n_wet > 0 else 0.0
        wb = wet_b[s] if a > 0.0 else 0.0
        if a != rows_a or wb != rows_b:
            if a > 0.0:
                for q in range(CHUNK):
                    k_wet = wet_coefficient_fast(scratch[R_RAIN, q], a, wb)
                    k_wet = k_wet if scratch[R_WET, q] > 0.5 else 0.0
                    scratch[R_K_WET, q] = k_wet
                    scratch[R_EXPM1_WET, q] = fast_expm1(-k_wet * dt)
            else:  # no scavenging: zeros, without evaluating the (vectorised, so unconditional) formula
                for q in range(CHUNK):
                    scratch[R_K_WET, q] = 0.0
                    scratch[R_EXPM1_WET, q] = 0.0
            rows_a = a
            rows_b = wb
        ef0 = expm1_fixed[0, s]
        ef1 = expm1_fixed[1, s]
        k0 = k_fixed[0, s]
        k1 = k_fixed[1, s]
        # loss / k as loss * (1/k): the reciprocal of the fixed rates once per species, so a particle's
        # share of the loss is the same whether or not its chunk holds particles in rain
        inv0 = 1.0 / k0 if k0 > 0.0 else 0.0
        inv1 = 1.0 / k1 if k1 > 0.0 else 0.0
        ms = mass[s, first:last]
        if rows_a > 0.0:  # scavenged, and particles of this chunk are in rain
            for q in range(CHUNK):
                m = ms[q] if q < nc else 0.0
                dry = scratch[R_DRY, q] > 0.5
                k_wet = scratch[R_K_WET, q]
                ew = scratch[R_EXPM1_WET, q]
                ef = ef1 if dry else ef0
                inv_k = inv1 if dry else inv0
                inv_k = 1.0 / ((k1 if dry else k0) + k_wet) if scratch[R_WET, q] > 0.5 else inv_k
                loss = m * -(ef * (1.0 + ew) + ew) if scratch[R_STAYS, q] > 0.5 else 0.0
                gone = scratch[R_GONE, q] > 0.5
                if q < nc:
                    ms[q] = 0.0 if gone else m - loss
                loss_per_rate = loss * inv_k
                scratch[R_LOSS_PER_RATE, q] = loss_per_rate
                scratch[R_DRY_LOSS_PER_RATE, q] = loss_per_rate if dry else 0.0
                scratch[R_WET_LOSS, q] = loss_per_rate * k_wet
                scratch[R_LEFT, q] = m if gone else 0.0
            budget[WET_DEPOSITED, s] += chunk_sum(scratch[R_WET_LOSS])
        else:  # the same without scavenging (e_w = 0)
            for q in range(CHUNK):
                m = ms[q] if q < nc else 0.0
                dry = scratch[R_DRY, q] > 0.5
                loss = m * -(ef1 if dry else ef0) if scratch[R_STAYS, q] > 0.5 else 0.0
                gone = scratch[R_GONE, q] > 0.5
                if q < nc:
                    ms[q] = 0.0 if gone else m - loss
                loss_per_rate = loss * (inv1 if dry else inv0)
                scratch[R_LOSS_PER_RATE, q] = loss_per_rate
                scratch[R_DRY_LOSS_PER_RATE, q] = loss_per_rate if dry else 0.0
                scratch[R_LEFT, q] = m if gone else 0.0
        if s == so2_index and sulfate_index >= 0:
            for q in range(CHUNK):
                scratch[R_SULFATE_PRODUCED, q] = scratch[R_LOSS_PER_RATE, q] * so2_rate * sulfate_per_so2
        if s == nox_index and nitrate_index >= 0:
            for q in range(CHUNK):
                scratch[R_NITRATE_PRODUCED, q] = scratch[R_LOSS_PER_RATE, q] * nox_rate * nitrate_per_nox
        per_rate = chunk_sum(scratch[R_LOSS_PER_RATE])
        budget[DRY_DEPOSITED, s] += k_dry_of[s] * chunk_sum(scratch[R_DRY_LOSS_PER_RATE])
        budget[DECAYED, s] += decay_rate[s] * per_rate
        budget[CONVERTED, s] += k_chem_of[s] * per_rate
        budget[LEFT_DOMAIN, s] += chunk_sum(scratch[R_LEFT])
    # converted precursor mass joins its product after the losses (removed from the next step on)
    if so2_index >= 0 and sulfate_index >= 0:
        ms = mass[sulfate_index, first:last]
        for q in range(CHUNK):
            if q < nc:
                ms[q] += scratch[R_SULFATE_PRODUCED, q]
        budget[PRODUCED, sulfate_index] += chunk_sum(scratch[R_SULFATE_PRODUCED])
    if nox_index >= 0 and nitrate_index >= 0:
        ms = mass[nitrate_index, first:last]
        for q in range(CHUNK):
            if q < nc:
                ms[q] += scratch[R_NITRATE_PRODUCED, q]
        budget[PRODUCED, nitrate_index] += chunk_sum(scratch[R_NITRATE_PRODUCED])


@kernel(parallel=True)
def met_at_step(wind, surface, t0_met, dt_met, t, dt):
    """Return the met a step reads, linear in time: wind at t and t + dt, surface fields at t (float32).

    ``wind[nt, nz, ny, nx, 3]`` and ``surface[nt, ny, nx, 5]`` at times t0_met + k dt_met (s), as in
    :func:`advance_particles`. Returns flat ``wind_t``, ``wind_t_next`` (rows [nz, ny, 3, nx]) and
    ``surface_t`` (rows [ny, 5, nx]); computed in parallel over the grid rows. Every particle set stepped
    over the same met and times (the source regions of a run) can share them.
    """
    nt, nz, ny, nx, _ = wind.shape
    wind_rows = wind.reshape((nt, nz * ny, nx * 3))
    surface_rows = surface.reshape((nt, ny, nx * 5))
    wind_now = np.empty((nz * ny, 3 * nx), np.float32)
    wind_next = np.empty((nz * ny, 3 * nx), np.float32)
    surface_now = np.empty((ny, 5 * nx), np.float32)
    for r in prange(nz * ny):
        interpolate_fields_in_time(wind_rows[:, r], 3, t, t0_met, dt_met, wind_now[r])
        interpolate_fields_in_time(wind_rows[:, r], 3, t + dt, t0_met, dt_met, wind_next[r])
        if r < ny:
            interpolate_fields_in_time(surface_rows[:, r], 5, t, t0_met, dt_met, surface_now[r])
    size = nz * ny * 3 * nx
    return wind_now.reshape(size), wind_next.reshape(size), surface_now.reshape(ny * 5 * nx)


@kernel(parallel=True)
def advance_particles_in_step_met(
    x, y, z, un, vn, wn, mass, tag, pid, alive, cell,
    wind_t, wind_t_next, surface_t, nz, ny, nx, z_levels,
    x0, y0, dx, z_top,
    t, dt, step, seed,
    deposition_velocity, wet_a, wet_b, decay_rate,
    so2_index, sulfate_index, nox_index, nitrate_index, so2_rate, nox_rate, sulfate_per_so2, nitrate_per_nox,
    dry_layer_m, wet_top_m, sampling_depth, ctl, max_substeps, tl_min_horizontal, tl_min_vertical,
    k_free_horizontal, k_free_vertical, horizontal_turbulence, inv_density_scale_height,
    block_size, budget_blocks,
):  # fmt: skip
    """:func:`advance_particles` given the step's met from :func:`met_at_step` (grid of nz x ny x nx)."""
    n = x.size
    nspecies = mass.shape[0]
    x_end = x0 + nx * dx
    y_end = y0 + ny * dx
    nblocks = (n + block_size - 1) // block_size
    useed = np.uint64(seed)
    ustep = np.uint64(step)
    # removal outside rain per (in dry layer, species): total rate k (s-1) and expm1(-k dt)
    k_chem_of = np.zeros(nspecies)
    if so2_index >= 0:
        k_chem_of[so2_index] = so2_rate
    if nox_index >= 0:
        k_chem_of[nox_index] = nox_rate
    k_dry_of = np.zeros(nspecies)
    k_fixed = np.zeros((2, nspecies))
    expm1_fixed = np.zeros((2, nspecies))
    for s in range(nspecies):
        k_dry_of[s] = dry_deposition_rate(deposition_velocity[s], dry_layer_m)
        for d in range(2):
            k_fixed[d, s] = (k_dry_of[s] if d == 1 else 0.0) + k_chem_of[s] + decay_rate[s]
            expm1_fixed[d, s] = np.expm1(-k_fixed[d, s] * dt)
    any_wet = False
    for s in range(nspecies):
        any_wet = any_wet or wet_a[s] > 0.0
    s_free_horizontal = np.sqrt(2.0 * k_free_horizontal / dt)
    s_free_vertical = np.sqrt(2.0 * k_free_vertical * dt)
    draw_h = counter_scalar(ustep, np.uint64(0))
    draw_v = counter_scalar(ustep, np.uint64(2))
    for b in prange(nblocks):
        for first in range(b * block_size, min(n, (b + 1) * block_size), CHUNK):
            nc = min(CHUNK, n - first, (b + 1) * block_size - first)
            advance_chunk(
                first, nc,
                x, y, z, un, vn, wn, mass, pid, alive, cell,
                wind_t, wind_t_next, surface_t, z_levels, x0, y0, dx, x_end, y_end, z_top, nx, ny,
                dt, useed, ustep, draw_h, draw_v,
                wet_a, wet_b, decay_rate, any_wet, k_chem_of, k_dry_of, k_fixed, expm1_fixed,
                so2_index, sulfate_index, nox_index, nitrate_index, so2_rate, nox_rate, sulfate_per_so2,
                nitrate_per_nox, dry_layer_m, wet_top_m, sampling_depth, ctl, max_substeps, tl_min_horizontal,
                tl_min_vertical, s_free_horizontal, s_free_vertical, horizontal_turbulence,
                inv_density_scale_height, budget_blocks[b],
            )  # fmt: skip


def advance_particles(
    x, y, z, un, vn, wn, mass, tag, pid, alive, cell,
    wind, z_levels, t0_met, dt_met, surface,
    x0, y0, dx, z_top,
    t, dt, step, seed,
    deposition_velocity, wet_a, wet_b, decay_rate,
    so2_index, sulfate_index, nox_index, nitrate_index, so2_rate, nox_rate, sulfate_per_so2, nitrate_per_nox,
    dry_layer_m, wet_top_m, sampling_depth, ctl, max_substeps, tl_min_horizontal, tl_min_vertical,
    k_free_horizontal, k_free_vertical, horizontal_turbulence, inv_density_scale_height,
    block_size, budget_blocks,
):  # fmt: skip
    """Advance every live particle by one step of ``dt`` seconds from time ``t`` (see module docstring).

    Positions in the projected metres of the met grid (``x0``, ``y0``: lower-left corner; ``dx``: cell
    size; cell centres at x0 + (i + 1/2) dx), heights in m above ground. Met: u, v, w
    (m/s) on ``z_levels[nz]`` (m AGL, increasing), at times t0_met + k dt_met (s), packed as
    ``wind[nt, nz, ny, nx, 3]``; surface fields packed as ``surface[nt, ny, nx, 5]`` in the order of
    :data:`SURFACE_FIELDS` (mixing height m, u* and w* m/s, 1/L 1/m, precipitation mm/h). Packing puts
    what one particle reads at a grid corner in one cache line.
    Species parameters per species (arrays of length nspecies): ``deposition_velocity`` (m/s),
    ``wet_a`` (s-1), ``wet_b`` (-), ``decay_rate`` (s-1); chemistry indices are -1 when a species is absent,
    rates in s-1. ``budget_blocks[nblocks, N_BUDGET_TERMS, nspecies]`` receives this step's removal per
    block of ``block_size`` particles (kg). Random numbers are keyed by ``seed`` (uint64), ``pid`` and
    ``step`` (uint64). Mutates the state arrays in place.

    Work done once per step, not per particle: the met linear in time at t and t + dt (the particles
    then read one time level; the step's wind and surface fields are stored in float32, which halves
    their cache footprint and the gathers that read them at a relative rounding of 6e-8, far below the
    accuracy of any met field), and the removal rates and
    expm1(-k dt) outside rain per (in/out of the dry-deposition layer, species).
    """
    _, nz, ny, nx, _ = wind.shape
    advance_particles_in_step_met(
        x, y, z, un, vn, wn, mass, tag, pid, alive, cell,
        *met_at_step(wind, surface, t0_met, dt_met, t, dt), nz, ny, nx, z_levels,
        x0, y0, dx, z_top, t, dt, step, seed,
        deposition_velocity, wet_a, wet_b, decay_rate,
        so2_index, sulfate_index, nox_index, nitrate_index, so2_rate, nox_rate, sulfate_per_so2,
        nitrate_per_nox, dry_layer_m, wet_top_m, sampling_depth, ctl, max_substeps, tl_min_horizontal,
        tl_min_vertical, k_free_horizontal, k_free_vertical, horizontal_turbulence, inv_density_scale_height,
        block_size, budget_blocks,
    )  # fmt: skip


@kernel(parallel=True)
def accumulate_concentration(cell, tag, mass, weight, acc):
    """Add ``mass * weight`` of each sampled particle to ``acc[tag, species, cell]`` (kg s when weight = dt).

    The sampled particles (cell >= 0) are listed first (in parallel over blocks, in index order), then
    summed in parallel over species; within a species particles are summed in index order, so the result
    does not depend on the number of threads. Listing them once spares each species a pass (and a
    mispredicted branch per particle) over all the particles.
    """
    n = cell.size
    nblocks = (n + ACCUMULATE_BLOCK - 1) // ACCUMULATE_BLOCK
    counts = np.zeros(nblocks + 1, np.int64)
    for b in prange(nblocks):
        count = 0
        for p in range(b * ACCUMULATE_BLOCK, min(n, (b + 1) * ACCUMULATE_BLOCK)):
            count += cell[p] >= 0
        counts[b + 1] = count
    offsets = np.cumsum(counts)
    sampled = np.empty(offsets[nblocks], np.int64)
    target = np.empty(offsets[nblocks], np.int64)  # flat index of acc[tag, 0, cell]
    nspecies = mass.shape[0]
    ncell = acc.shape[2]
    for b in prange(nblocks):
        k = offsets[b]
        for p in range(b * ACCUMULATE_BLOCK, min(n, (b + 1) * ACCUMULATE_BLOCK)):
            if cell[p] >= 0:
                sampled[k] = p
                target[k] = tag[p] * nspecies * ncell + cell[p]
                k += 1
    flat = acc.reshape(acc.size)
    for s in prange(nspecies):
        row = mass[s]
        for k in range(sampled.size):
            flat[target[k] + s * ncell] += row[sampled[k]] * weight


@kernel(parallel=True)
def release_particles(
    first, source_index, x, y, z, un, vn, wn, mass, tag, pid, alive, cell,
    src_x, src_y, src_half_width, src_z_bottom, src_z_top, src_tag, src_particle_mass,
    ids, step, seed,
):  # fmt: skip
    """Initialise particles ``first + k`` (k < source_index.size) from sources ``source_index[k]``.

    A particle starts at its source: uniformly in the square of half-width ``src_half_width`` (m) around
    (src_x, src_y) and uniformly in height between ``src_z_bottom`` and ``src_z_top`` (m AGL); a point
    source has zero half-width and equal heights. Its masses are ``src_particle_mass[source, :]`` (kg),
    its id ``ids[k]``; its position draws and initial normalised velocities (N(0, 1), the stationary
    distribution) use the release draw slots of ``step``.
    """
    useed = np.uint64(seed)
    ustep = np.uint64(step)
    for k in prange(source_index.size):
        p = first + k
        s = source_index[k]
        ident = ids[k]
        key = particle_key_scalar(useed, np.uint64(ident))
        ux = uniform_scalar(key, counter_scalar(ustep, np.uint64(RELEASE_FIRST_DRAW)))
        uy = uniform_scalar(key, counter_scalar(ustep, np.uint64(RELEASE_FIRST_DRAW + 1)))
        uz = uniform_scalar(key, counter_scalar(ustep, np.uint64(RELEASE_FIRST_DRAW + 2)))
        g_u, g_v = normal_pair_scalar(key, counter_scalar(ustep, np.uint64(RELEASE_FIRST_DRAW + 3)))
        g_w, _ = normal_pair_scalar(key, counter_scalar(ustep, np.uint64(RELEASE_FIRST_DRAW + 5)))
        x[p] = src_x[s] + (2.0 * ux - 1.0) * src_half_width[s]
        y[p] = src_y[s] + (2.0 * uy - 1.0) * src_half_width[s]
        z[p] = src_z_bottom[s] + uz * (src_z_top[s] - src_z_bottom[s])
        un[p] = g_u
        vn[p] = g_v
        wn[p] = g_w
        for q in range(mass.shape[0]):
            mass[q, p] = src_particle_mass[s, q]
        tag[p] = src_tag[s]
        pid[p] = ident
        alive[p] = True
        cell[p] = -1


# --------------------------------------------------------------------------------------------------
# Orchestration: a thin layer of plain-array bookkeeping above the kernels.
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LagrangianParameters:
    """Scalars and per-species arrays of the particle model (units in the names; see module docstring).

    Per-species arrays have one value per species in the order of ``species``. Chemistry indices are -1
    when the species is absent. Time-scale floors default to FLEXPART's (10 s, 30 s).
    ``turbulence_step_fraction`` is the vertical sub-step as a fraction of T_Lw: the well-mixed test
    (tests/test_lagrangian_validation.py) passes chi-square (p > 0.001) at 0.05 (unstable, stable) and
    0.02 (neutral); at the default 0.5 the lowest tenth of the mixed layer holds up to ~10 % too many
    particles (FLEXPART runs use T_Lw / (ctl * ifine) = 1/20).
    """

    species: tuple[str, ...]
    deposition_velocity_m_s: np.ndarray
    wet_a_per_s: np.ndarray
    wet_b: np.ndarray
    decay_per_s: np.ndarray
    so2_to_sulfate_per_s: float = SO2_TO_SULFATE_PER_HOUR / 3600.0
    nox_to_nitrate_per_s: float = NOX_TO_NITRATE_PER_HOUR / 3600.0
    particles_per_hour: int = 100_000
    max_time_step_s: float = 300.0
    cfl: float = 0.5
    turbulence_step_fraction: float = 0.5
    max_substeps: int = 64
    tl_min_horizontal_s: float = FLEXPART_TL_MIN_HORIZONTAL_S
    tl_min_vertical_s: float = FLEXPART_TL_MIN_VERTICAL_S
    sampling_depth_m: float = 50.0
    dry_layer_m: float = DRY_DEPOSITION_LAYER_M
    wet_top_m: float = np.inf
    k_free_horizontal_m2_s: float = 50.0
    k_free_vertical_m2_s: float = 0.1
    horizontal_turbulence: bool = True
    density_scale_height_m: float = 0.0
    block_size: int = 1024

    @classmethod
    def for_species(cls, species: tuple[str, ...] | list[str], **overrides) -> LagrangianParameters:
        """Parameters with the default mechanism's removal for named species (SO2, NOx, PM2.5, sulfate, ...).

        Removal tables default to :func:`~airshed.physics.mechanism.default_mechanism`'s (0 for a species
        it does not carry); ``deposition_velocity_m_s`` may be given as a dict by species name.
        """
        species = tuple(species)
        mechanism = default_mechanism()

        def default(table: str) -> list[float]:
            return [float(getattr(mechanism, table).get(s, 0.0)) for s in species]

        vd = overrides.pop("deposition_velocity_m_s", default("dry_deposition_velocity_m_s"))
        if isinstance(vd, Mapping):
            vd = [float(vd.get(s, 0.0)) for s in species]
        return cls(
            species=species,
            deposition_velocity_m_s=np.asarray(vd, dtype=float),
            wet_a_per_s=np.asarray(overrides.pop("wet_a_per_s", default("wet_scavenging_a_per_s")),
                                   dtype=float),
            wet_b=np.asarray(overrides.pop("wet_b", default("wet_scavenging_b")), dtype=float),
            decay_per_s=np.asarray(overrides.pop("decay_per_s", default("decay_per_s")), dtype=float),
            **overrides,
        )

    def __post_init__(self) -> None:
        ns = len(self.species)
        for name in ("deposition_velocity_m_s", "wet_a_per_s", "wet_b", "decay_per_s"):
            a = np.ascontiguousarray(getattr(self, name), dtype=np.float64)
            if a.shape != (ns,) or np.any(a < 0.0) or not np.all(np.isfinite(a)):
                raise AirshedInputError(f"lagrangian parameters: {name} needs {ns} finite values >= 0")
            object.__setattr__(self, name, a)
        if not (0.0 < self.cfl <= 1.0 and 0.0 < self.turbulence_step_fraction <= 1.0):
            raise AirshedInputError(
                "lagrangian parameters: cfl and turbulence_step_fraction must be in (0, 1]"
            )
        if not (1 <= self.max_substeps < RELEASE_FIRST_DRAW - 2):
            raise AirshedInputError(
                f"lagrangian parameters: max_substeps must be in [1, {RELEASE_FIRST_DRAW - 3}]"
            )
        if self.max_time_step_s <= 0.0 or self.sampling_depth_m <= 0.0 or self.dry_layer_m <= 0.0:
            raise AirshedInputError(
                "lagrangian parameters: time step, sampling depth and dry layer must be > 0"
            )

    def index(self, name: str) -> int:
        """Index of a species, -1 when absent."""
        return self.species.index(name) if name in self.species else -1


@dataclass(frozen=True)
class MetWindow:
    """Meteorology covering one advance call: fields at ``times`` (s, equally spaced, >= 2 of them).

    ``u, v, w``: [nt, nz, ny, nx] m/s on ``z_levels`` (m above ground, increasing) at cell centres of the
    particle grid; ``mixing_height`` (m), ``ustar``, ``wstar`` (m/s), ``inv_L`` (1/m), ``precip`` (mm/h):
    [nt, ny, nx]. With ``share_step_met`` the met of each step (:meth:`step_met`) is computed once and
    kept for every particle set stepped over this window (the source regions of a run, moved one after
    the other over the same steps).
    """

    times: np.ndarray
    z_levels: np.ndarray
    u: np.ndarray
    v: np.ndarray
    w: np.ndarray
    mixing_height: np.ndarray
    ustar: np.ndarray
    wstar: np.ndarray
    inv_L: np.ndarray
    precip: np.ndarray
    share_step_met: bool = False
    wind: np.ndarray = field(init=False, repr=False)
    surface: np.ndarray = field(init=False, repr=False)
    _step_met: dict = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        times = np.asarray(self.times, dtype=np.float64)
        if times.ndim != 1 or times.size < 2 or np.any(np.diff(times) <= 0.0):
            raise AirshedInputError("met window: need >= 2 increasing times (s)")
        if not np.allclose(np.diff(times), times[1] - times[0], rtol=1e-9, atol=0.0):
            raise AirshedInputError("met window: times must be equally spaced")
        object.__setattr__(self, "times", times)
        z = np.ascontiguousarray(self.z_levels, dtype=np.float64)
        if z.ndim != 1 or z.size < 2 or np.any(np.diff(z) <= 0.0):
            raise AirshedInputError("met window: z_levels need >= 2 increasing heights (m AGL)")
        object.__setattr__(self, "z_levels", z)
        shape3 = np.shape(self.u)
        if len(shape3) != 4 or shape3[0] != times.size or shape3[1] != z.size or min(shape3[2:]) < 2:
            raise AirshedInputError(f"met window: u must be [nt, nz, ny>=2, nx>=2], got {shape3}")
        for name in ("u", "v", "w"):
            a = np.ascontiguousarray(getattr(self, name))
            if a.shape != shape3 or not np.all(np.isfinite(a)):
                raise AirshedInputError(f"met window: {name} must be finite with shape {shape3}")
            object.__setattr__(self, name, a)
        for name in ("mixing_height", "ustar", "wstar", "inv_L", "precip"):
            a = np.ascontiguousarray(getattr(self, name), dtype=np.float64)
            if a.shape != (shape3[0],) + shape3[2:] or not np.all(np.isfinite(a)):
                raise AirshedInputError(
                    f"met window: {name} must be finite with shape {(shape3[0],) + shape3[2:]}"
                )
            object.__setattr__(self, name, a)
        # packed copies for the kernel: one cache line per grid corner
        object.__setattr__(self, "wind", np.stack([self.u, self.v, self.w], axis=-1).astype(np.float64))
        object.__setattr__(self, "surface", np.stack([getattr(self, f) for f in SURFACE_FIELDS], axis=-1))

    @property
    def shape(self) -> tuple[int, int]:
        """Horizontal shape (ny, nx)."""
        return self.u.shape[2], self.u.shape[3]

    def step_met(self, t: float, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the met read by a step from ``t`` to ``t + dt`` s (:func:`met_at_step`)."""
        key = (float(t), float(dt))
        found = self._step_met.get(key)
        if found is None:
            found = met_at_step(self.wind, self.surface, self.times[0], self.times[1] - self.times[0], t, dt)
            if self.share_step_met:
                self._step_met[key] = found
        return found


class ParticleRun:
    """Particles, budget and step counter carried between calls, so met can be fed period by period.

    Call :meth:`advance` once per emission/output period (e.g. each hour) with the met covering it and the
    sources emitting in it; it returns the mean near-ground concentration over the period.

    Parameters
    ----------
    x0, y0, dx, nx, ny : grid of the met and of the output (lower-left corner and cell size in projected m)
    z_top : model top, m above ground; particles above it leave the domain
    ntag : number of source tags
    params : :class:`LagrangianParameters`
    seed : random seed (results are a function of the seed only)
    first_period : index of the emission period of the first :meth:`advance` call

    Each :meth:`advance` call is one emission period; the period index is part of the particle ids
    (:func:`airshed.model.release.particle_ids`) and of the random-number step, so runs that advance
    period by period over the same periods give a particle of a given source the same id and random path
    (common random numbers), and a run that starts at ``first_period`` moves its particles as a run from
    period 0 would.
    """

    def __init__(
        self, x0: float, y0: float, dx: float, nx: int, ny: int, z_top: float, ntag: int,
        params: LagrangianParameters, seed: int, first_period: int = 0,
    ) -> None:  # fmt: skip
        if nx < 2 or ny < 2 or dx <= 0.0 or z_top <= 0.0 or ntag < 1:
            raise AirshedInputError("particle run: need nx, ny >= 2, dx > 0, z_top > 0 and ntag >= 1")
        self.x0, self.y0, self.dx, self.nx, self.ny = float(x0), float(y0), float(dx), int(nx), int(ny)
        self.z_top = float(z_top)
        self.ntag = int(ntag)
        self.params = params
        self.seed = int(seed) % (1 << 64)
        self.step = 0  # the random-number step of the next step_once
        self.steps_taken = 0  # steps since this run began (the sorting schedule)
        self.period_index = int(first_period)
        ns = len(params.species)
        self.n = 0
        self._allocate(1024)
        self.emitted = np.zeros(ns)
        self.removed = np.zeros((N_BUDGET_TERMS, ns))
        self.credit = ParticleCredit(ns)

    def _allocate(self, capacity: int) -> None:
        ns = len(self.params.species)
        old = getattr(self, "x", None)
        arrays = {
            "x": np.zeros(capacity), "y": np.zeros(capacity), "z": np.zeros(capacity),
            "un": np.zeros(capacity), "vn": np.zeros(capacity), "wn": np.zeros(capacity),
            "mass": np.zeros((ns, capacity)), "tag": np.zeros(capacity, np.int32),
            "pid": np.zeros(capacity, np.int64), "alive": np.zeros(capacity, np.bool_),
            "cell": np.full(capacity, -1, np.int64),
        }  # fmt: skip
        if old is not None:
            for name, a in arrays.items():
                a[..., : self.n] = getattr(self, name)[..., : self.n]
        for name, a in arrays.items():
            setattr(self, name, a)

    def _compact(self, sort: bool = False) -> None:
        """Drop dead particles; with ``sort``, also order the live ones by grid cell (stable).

        Sorting keeps particles that read the same met close in memory (the met grid is larger than the
        cache; measured ~1.5-2x faster steps); the order is a function of the state only, so results stay
        bit-identical for any thread count.
        """
        keep = np.flatnonzero(self.alive[: self.n])
        if sort and keep.size:
            ix = np.clip(((self.x[keep] - self.x0) / self.dx).astype(np.int64), 0, self.nx - 1)
            iy = np.clip(((self.y[keep] - self.y0) / self.dx).astype(np.int64), 0, self.ny - 1)
            keep = keep[np.argsort(iy * self.nx + ix, kind="stable")]
        elif keep.size == self.n:
            return
        for name in ("x", "y", "z", "un", "vn", "wn", "tag", "pid", "alive", "cell"):
            a = getattr(self, name)
            a[: keep.size] = a[keep]
        self.mass[:, : keep.size] = self.mass[:, keep]
        self.n = keep.size

    def release(
        self,
        sources: ReleaseTable,
        n_per_period: np.ndarray,
        period_start: float,
        period: float,
        t: float,
        dt: float,
        particle_mass: np.ndarray | None = None,
    ) -> None:
        """Release the particles of ``sources`` due in [t, t + dt) (see :mod:`airshed.model.release`).

        ``n_per_period`` particles per source are released over [period_start, period_start + period),
        each with ``particle_mass`` ([nsource, nspecies] kg; default the source's emission over the period,
        ``sources.rate`` * period, in equal parts); their ids are those of (this period, source id, index
        within the source), their random numbers use this step.
        """
        first = released_before(n_per_period, period_start, period, t)
        due = released_before(n_per_period, period_start, period, t + dt) - first
        count = int(due.sum())
        if count == 0:
            return
        if self.n + count > self.x.size:
            self._compact()
        if self.n + count > self.x.size:
            self._allocate(max(2 * self.x.size, self.n + count))
        source_index = np.repeat(np.arange(sources.size), due)
        starts = np.cumsum(due) - due
        index_in_source = first[source_index] + np.arange(count) - starts[source_index]
        ids = particle_ids(self.period_index, sources.source_id[source_index], index_in_source)
        if particle_mass is None:
            particle_mass = sources.rate * (period / np.maximum(n_per_period, 1))[:, None]
        release_particles(
            self.n, source_index, self.x, self.y, self.z, self.un, self.vn, self.wn, self.mass, self.tag,
            self.pid, self.alive, self.cell,
            sources.x, sources.y, sources.half_width, sources.z_bottom, sources.z_top, sources.tag,
            particle_mass, ids, self.step, self.seed,
        )  # fmt: skip
        self.emitted += (due[:, None] * particle_mass).sum(axis=0)
        self.n += count

    def state_arrays(self) -> tuple[np.ndarray, ...]:
        """Return views of the live state: x, y, z, un, vn, wn, mass, tag, pid, alive, cell."""
        n = self.n
        return (
            self.x[:n], self.y[:n], self.z[:n], self.un[:n], self.vn[:n], self.wn[:n], self.mass[:, :n],
            self.tag[:n], self.pid[:n], self.alive[:n], self.cell[:n],
        )  # fmt: skip

    def time_step(self, met: MetWindow, period: float) -> tuple[int, float]:
        """Return the number of steps and the step (s) for a period: dt <= max_time_step_s, cfl dx/|u|."""
        speed = max(float(np.max(np.abs(met.u))), float(np.max(np.abs(met.v))), 1e-6)
        dt_max = min(self.params.max_time_step_s, self.params.cfl * self.dx / speed)
        nsteps = max(1, int(np.ceil(period / dt_max - 1e-9)))
        return nsteps, period / nsteps

    def particle_shares(self, sources: ReleaseTable, period: float) -> np.ndarray:
        """Particles per source for one period of ``period`` s: the budget times the allocation weights.

        Computed from the table's ``allocation_rate`` (:func:`~airshed.model.release.allocation_weights`);
        pass the full table of a study, so that every source gets the same share in any run.
        """
        budget = round(self.params.particles_per_hour * period / 3600.0)
        return allocation_weights(sources.allocation_rate) * float(budget)

    def advance(
        self,
        met: MetWindow,
        sources: ReleaseTable | None,
        t_start: float,
        t_end: float,
        particle_share: np.ndarray | None = None,
        allocation: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Release and move particles over [t_start, t_end) s; return conc[ntag, nspecies, ny, nx] in ug/m3.

        The concentration is the mean over the period of the particle mass below ``sampling_depth_m``
        per cell volume dx * dx * sampling_depth (residence-time weighted at every step, kg s ->
        ug m-3). The emission rates of ``sources`` hold over the whole period. Each source gains
        ``particle_share`` particles of credit (default :meth:`particle_shares` of ``sources``; a run over
        a subset of a study's sources passes the full table's shares, taken at the subset) and releases
        the whole particles of its credit with the mass it emitted since its last release
        (:class:`~airshed.model.release.ParticleCredit`). ``allocation`` (particles per source and mass
        per particle, from a :class:`~airshed.model.release.ParticleCredit` kept by the caller) replaces
        that: several runs (release windows) then share one credit.
        """
        p = self.params
        if met.shape != (self.ny, self.nx):
            raise AirshedInputError(
                f"met window: horizontal shape {met.shape} != particle grid {(self.ny, self.nx)}"
            )
        if t_start < met.times[0] - 1e-6 or t_end > met.times[-1] + 1e-6 or t_end <= t_start:
            raise AirshedInputError(
                f"met window covers [{met.times[0]}, {met.times[-1]}] s, advance asked [{t_start}, {t_end}]"
            )
        period = t_end - t_start
        if sources is not None and sources.size:
            if sources.rate.shape[1] != len(p.species):
                raise AirshedInputError(
                    f"release table has {sources.rate.shape[1]} species, expected {len(p.species)}"
                )
            if allocation is not None:
                n_per_period, particle_mass = allocation
            else:
                if particle_share is None:
                    particle_share = self.particle_shares(sources, period)
                n_per_period, particle_mass = self.credit.allocate(
                    sources.source_id, particle_share, sources.rate * period
                )
        else:
            n_per_period = np.zeros(0, np.int64)
        nsteps, dt = self.time_step(met, period)
        if nsteps >= 1 << STEP_IN_PERIOD_BITS:
            raise AirshedInputError(
                f"particle run: {nsteps} steps in one period (at most 2**{STEP_IN_PERIOD_BITS})"
            )
        first_step = self.period_index << STEP_IN_PERIOD_BITS
        ns = len(p.species)
        acc = np.zeros((self.ntag, ns, self.ny * self.nx))
        to_ug_m3 = 1e9 / (self.dx * self.dx * p.sampling_depth_m * period)
        for k in range(nsteps):
            t = t_start + k * dt
            self.step = first_step + k
            if n_per_period.size:
                self.release(sources, n_per_period, t_start, period, t, dt, particle_mass)
            self.step_once(met, t, dt)
            if self.n:
                state = self.state_arrays()
                # kg s -> ug m-3 folded into each step's weight: no pass over the (mostly untouched) field
                accumulate_concentration(state[10], state[7], state[6], dt * to_ug_m3, acc)
        self.period_index += 1
        return acc.reshape(self.ntag, ns, self.ny, self.nx)

    def step_once(self, met: MetWindow, t: float, dt: float) -> None:
        """Advance all particles by one step of ``dt`` s from ``t`` (no release, no gridding)."""
        p = self.params
        ns = len(p.species)
        if self.n:
            nblocks = (self.n + p.block_size - 1) // p.block_size
            blocks = np.zeros((nblocks, N_BUDGET_TERMS, ns))
            advance_particles_in_step_met(
                *self.state_arrays(),
                *met.step_met(t, dt), met.u.shape[1], self.ny, self.nx, met.z_levels,
                self.x0, self.y0, self.dx, self.z_top,
                t, dt, self.step, self.seed,
                p.deposition_velocity_m_s, p.wet_a_per_s, p.wet_b, p.decay_per_s,
                p.index("SO2"), p.index("sulfate"), p.index("NOx"), p.index("nitrate"),
                p.so2_to_sulfate_per_s, p.nox_to_nitrate_per_s, SULFATE_PER_SO2, NITRATE_PER_NOX,
                p.dry_layer_m, p.wet_top_m, p.sampling_depth_m, p.turbulence_step_fraction, p.max_substeps,
                p.tl_min_horizontal_s, p.tl_min_vertical_s, p.k_free_horizontal_m2_s, p.k_free_vertical_m2_s,
                p.horizontal_turbulence,
                1.0 / p.density_scale_height_m if p.density_scale_height_m > 0.0 else 0.0,
                p.block_size, blocks,
            )  # fmt: skip
            self.removed += blocks.sum(axis=0)
            # Sorting at fixed steps, whatever the particle count, keeps the relative order of any subset
            # of the particles (a source region's) the same as in a run over all of them (the sort is
            # stable, compaction keeps order), so per-tag sums come out bit-identical in both.
            if self.steps_taken % SORT_INTERVAL_STEPS == 0:
                self._compact(sort=True)
            elif self.n > 4096 and np.count_nonzero(self.alive[: self.n]) < self.n // 2:
                self._compact()
        self.step += 1
        self.steps_taken += 1

    def n_alive(self) -> int:
        """Particles still in the domain."""
        return int(np.count_nonzero(self.alive[: self.n]))

    def airborne(self) -> np.ndarray:
        """Airborne mass per species, kg."""
        return self.mass[:, : self.n].sum(axis=1)

    def budget(self) -> dict[str, np.ndarray]:
        """Mass budget per species (kg): emitted, produced, airborne and each removal term, plus the residual.

        emitted + produced = airborne + dry_deposited + wet_deposited + converted + decayed + left_domain;
        ``residual`` is the left side minus the right side. Mass emitted but not yet released (pending
        at its source, :class:`~airshed.model.release.ParticleCredit`) counts as emitted and airborne.
        """
        # mass emitted but not yet released is held at its source: emitted and airborne
        pending = self.credit.pending_mass()
        out = {"emitted": self.emitted + pending, "airborne": self.airborne() + pending}
        for k, name in enumerate(BUDGET_TERM_NAMES):
            out[name] = self.removed[k].copy()
        sinks = sum(out[name] for name in BUDGET_TERM_NAMES if name != "produced")
        out["residual"] = out["emitted"] + out["produced"] - out["airborne"] - sinks
        return out


def run_particles(
    met_for_period: Callable[[int], MetWindow],
    sources_for_period: Callable[[int], ReleaseTable | None],
    period_starts: np.ndarray,
    period_s: float,
    grid: tuple[float, float, float, int, int],
    z_top: float,
    ntag: int,
    params: LagrangianParameters,
    seed: int,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run the particle model over consecutive periods, feeding met and sources period by period.

    Parameters
    ----------
    met_for_period : k -> :class:`MetWindow` covering [period_starts[k], period_starts[k] + period_s]
    sources_for_period : k -> :class:`ReleaseTable` emitting during period k (or None)
    period_starts : start times of the periods, s (consecutive, spaced by period_s)
    period_s : period length, s (the output interval, e.g. 3600)
    grid : (x0, y0, dx, nx, ny) of met and output, projected m
    z_top : model top, m AGL
    ntag : number of source tags
    params : :class:`LagrangianParameters`
    seed : random seed

    Returns
    -------
    conc : [nperiod, ntag, nspecies, ny, nx] mean concentration in the sampling layer per period, ug/m3
    budget : per-species mass budget at the end (kg), see :meth:`ParticleRun.budget`
    """
    x0, y0, dx, nx, ny = grid
    run = ParticleRun(x0, y0, dx, nx, ny, z_top, ntag, params, seed)
    conc = [
        run.advance(met_for_period(k), sources_for_period(k), float(t0), float(t0) + period_s)
        for k, t0 in enumerate(period_starts)
    ]
    return np.stack(conc), run.budget()
