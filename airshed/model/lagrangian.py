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
   v'/sigma_v with the exact exponential update r = exp(-dt/T_L) (Stohl et al. 2005, ACP 5:2461,
   Sect. 6.1; in the normalised velocity Thomson's drift for sigma(z) cancels, as for FLEXPART), with the
   turbulence scheme's sigmas and T_L (``Turbulence.scheme``: ``HANNA``, Hanna 1982; ``SIMILARITY``,
   surface-layer similarity joined to Hanna's mixed layer, :func:`~airshed.physics.similarity.
   similarity_horizontal_formulas`); above it a random displacement with FLEXPART's free-troposphere
   diffusivity (``k_free_horizontal``, 50 m2/s). Unresolved mesoscale velocities are added to both
   (:mod:`airshed.physics.mesoscale`; ``mesoscale_sigma`` 0 = off).
3. Mean advection by Petterssen's (1940) predictor-corrector (second-order Runge-Kutta / Heun): winds
   trilinear in space (heights ``z_levels`` above ground; below the first level the first level's wind)
   and linear in time; the turbulent horizontal velocity is added to the displacement.
4. Vertical turbulence inside the mixed layer (z <= h): Langevin equation for w_n = w'/sigma_w in the
   normalised form with the well-mixed drift of Thomson (1987) for inhomogeneous Gaussian turbulence,
   dw_n = -w_n dt/T_Lw + (d sigma_w/dz + sigma_w / rho d rho/dz) dt + sqrt(2/T_Lw) dW (the FLEXPART form,
   Stohl & Thomson 1999, BLM 90:155; exactly Thomson's 1-D solution after dividing by sigma_w), updated
   with r = exp(-dts/T_Lw); the profiles are Hanna's or, with ``SIMILARITY``, surface-layer similarity
   (Wilson, Thurtell & Kidd 1981) joined to Hanna's mixed layer, and where -h/L > 5 the skewed
   bi-Gaussian PDF of Luhar, Hibberd & Hurley (1996) with its own Thomson drift
   (:mod:`airshed.physics.skewed_cbl`). T_Lw is floored at ``tl_min_vertical`` (Hanna: everywhere, as
   FLEXPART; similarity: only from ``tl_floor_height``, 50 m, up). Each particle sub-steps with
   dts = min(ctl T_Lw(z), time left in the step), re-evaluating the profiles at its current height (the
   last of at most ``max_substeps`` sub-steps takes the rest of the step), so a particle that descends
   into the surface layer resolves its small time scales. Perfect reflection (position and velocity
   sign) at the ground and at h. The density term uses a constant scale height (0 = off). With
   ``Turbulence.integrator`` = ``BAOAB`` the same sub-steps are taken by a splitting that keeps the
   well-mixed state at long sub-steps (:func:`_splitting_vertical`).
5. Mixing-height changes: a particle is in the mixed layer when z <= h(x, y, t) at the start of the step;
   a particle above h is in the residual layer / free troposphere and moves by a random vertical
   displacement with ``k_free_vertical`` (this record's default 0.1 m2/s is FLEXPART's ``d_strat``, for
   its stratosphere; a config run passes 0, as FLEXPART's troposphere, unless ``[lagrangian]
   free_vertical_diffusion = true``) and is only reflected at the ground. So when h grows the particles
   it overtakes are mixed from the next step on, and when h falls the particles left above it stay in
   the residual layer; w_n of a free particle is redrawn from N(0, 1) each
   step so a particle that enters the mixed layer carries a velocity from the stationary distribution.
6. Particles that leave the horizontal domain (cell edges) or rise above ``z_top`` are removed; their
   mass is counted per species as left-domain.
7. Removal and chemistry as simultaneous first-order losses over dt (see :mod:`airshed.physics.removal`):
   dry deposition for particles below ``dry_layer_m`` (k = v_d / dry_layer_m), wet scavenging
   Lambda = A P^B for particles below ``wet_top_m`` (P at the start position), radioactive-style decay,
   and the mechanism's first-order conversions (default SO2 -> sulfate, NOx -> nitrate;
   :mod:`airshed.physics.mechanism`). Converted precursor mass goes to the product species times the
   conversion's mass yield (after the loss loop, so the product is removed from the next step on).
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

Parameters reach the kernels as typed records (:mod:`airshed.model.particle_records`: the particles, the
met, the grid, the step, turbulence, removal, chemistry) that Numba reads by name. Each process of the
step (surface scalars, horizontal turbulence, advection, vertical turbulence with reflection, fate,
gridding, removal and chemistry) is one inlined function over a chunk of particles with its own named
stack buffers (``Chunk*`` records), so a new turbulence scheme or first-order process changes one
function and one record.

Turbulence schemes compile into separate kernels: a scheme is a :class:`SchemePasses` (its profiles per
stability regime and what it adds: blend weights, a skewed PDF, the horizontal diffusion limit), and
:func:`_scheme_step` builds the step's processes around it; each scheme has its own chunk and step
kernel per vertical integrator (:data:`STEP_KERNELS`), chosen in Python by ``Turbulence.scheme`` and
``Turbulence.integrator``, so a run compiles only the one it uses. A new scheme is one ``SchemePasses``
plus its module-level kernels (Numba caches a kernel by its source; one built by a factory would be keyed
by its closure, which does not hash stably).

How the step is computed: threads take blocks of ``block_size`` particles; a block is stepped in chunks
of :data:`CHUNK` particles (:func:`advance_chunk_hanna`, ...) by passes that each vectorise (AVX-512 on the
machines we measured): the chunk's state is copied to stack buffers (which LLVM knows alias nothing),
and each pass is a branch-free loop of fixed length over the chunk (a partial chunk is padded with dead
particles, so every particle takes the same instructions wherever it sits: results are bit-identical
for any partition). The Hanna profiles are evaluated only for the stability regimes present in the
chunk (particles are sorted by cell, so a chunk mostly holds one), each regime in its own branch-free pass
whose values the chunk's particles of that regime take (in the first sub-step and in the packed rounds
of the later ones), with the branch-free exp/log/cbrt of :mod:`airshed.model.fastmath` (a few ulp from
NumPy's) whose polynomials use explicit fused multiply-adds (the same rounding in every compilation). A
particle's values do not depend on the other particles of its chunk. Budgets accumulate per block
(fixed, independent of the thread count) and are summed in block order, and the gridding sums particles
in index order, so results are bit-identical for any number of threads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import carray, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from airshed.errors import AirshedInputError
from airshed.jit import inline, kernel
from airshed.model import fastmath
from airshed.model.particle_records import (
    Chemistry,
    Grid,
    Met,
    Particles,
    Removal,
    Step,
    StepMet,
    StepRates,
    Turbulence,
)
from airshed.model.random import (
    MESOSCALE_DRAW,
    RELEASE_FIRST_DRAW,
    RELEASE_MESOSCALE_DRAW,
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
    particle_class,
    particle_ids,
    released_before,
)
from airshed.physics.mechanism import Conversion, default_mechanism
from airshed.physics.mesoscale import unresolved_time_scale, unresolved_velocity_sigma
from airshed.physics.removal import (
    DRY_DEPOSITION_LAYER_M,
    dry_deposition_rate,
    scavenging_formula,
)
from airshed.physics.similarity import (
    ROUGHNESS_SUBLAYER_OVER_Z0,
    similarity_any_regime_formula,
    similarity_formulas,
    similarity_horizontal_formulas,
)
from airshed.physics.skewed_cbl import SKEWED_FROM_H_OVER_L, skewed_formulas, transition
from airshed.physics.turbulence import (
    FLEXPART_TL_MIN_HORIZONTAL_S,
    FLEXPART_TL_MIN_VERTICAL_S,
    NEUTRAL,
    STABLE,
    UNSTABLE,
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
#: Vertical turbulence schemes (``Turbulence.scheme``): Hanna (1982) profiles as in FLEXPART, or surface-layer
#: similarity blended into them with a skewed convective boundary layer (:mod:`airshed.physics.similarity`).
HANNA, SIMILARITY = 0, 1
TURBULENCE_SCHEMES = ("hanna", "similarity")
#: The skewed convective sub-step (explicit Euler) is taken when dts <= this x T_Lw and |w_n| stays within
#: SKEWED_MAX_WN standard deviations (NaN fails the test); else the exact Gaussian update is kept.
SKEWED_MAX_STEP_OVER_TL = 0.5
SKEWED_MAX_WN = 10.0
#: Integrators of the mixed layer's vertical Langevin equation (``[lagrangian] vertical_integrator``):
#: FLEXPART's step (the exact Ornstein-Uhlenbeck update with the drift, then the move; step 4 of the module
#: docstring) and the BAOAB splitting (:func:`_splitting_vertical`).
EULER, BAOAB = 0, 1
VERTICAL_INTEGRATORS = ("euler", "baoab")
#: Cap on |sigma_w' w_n tau| in the splitting's drift (:func:`drift_with_linear_sigma`): e^10 = 2.2e4, a
#: move many times the layer, which ends at a reflection either way.
MAX_DRIFT_EXPONENT = 10.0
#: Height from which T_Lw is floored at ``tl_min_vertical_s`` (FLEXPART's 30 s), m: below it the vertical
#: sub-steps follow the surface layer's own short time scales.
TL_FLOOR_HEIGHT_M = 50.0
#: Vertical sub-step of the similarity scheme, as a fraction of T_Lw: its T_Lw is not floored near the
#: ground, and the well-mixed condition holds there only for short sub-steps (lowest 50 m of a neutral
#: 800 m layer after 1 h at 300 s steps: 1.60 x the uniform share at 0.5, 1.11 at 0.2, 1.03 at 0.1, 1.00 at
#: 0.05; :class:`LagrangianParameters`). FLEXPART takes 1/20.
SIMILARITY_STEP_FRACTION = 0.1
#: Default vertical sub-step per scheme, as a fraction of T_Lw. Hanna's is the particle core's 0.5 of
#: before the similarity scheme, where the splitting integrator (the config's default) stays well mixed.
DEFAULT_STEP_FRACTION = {"hanna": 0.5, "similarity": SIMILARITY_STEP_FRACTION}
#: Default cap on a step's vertical sub-steps per scheme (the last one takes the rest of the step).
#: Hanna's stays the particle core's 64 of before the similarity scheme: the cap decides the sub-steps
#: whenever step / (step_fraction T_Lw) exceeds it (a 300 s step at 0.05 x the 30 s floor takes 200), so
#: another cap changes Hanna runs at small step fractions (tests/test_duality.py's stack case). The
#: similarity scheme's T_Lw is not floored below 50 m, so it needs more.
DEFAULT_MAX_SUBSTEPS = {"hanna": 64, "similarity": 256}

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
(vertical_neutral, vertical_unstable, vertical_stable), (
    horizontal_neutral, horizontal_unstable, horizontal_stable
) = regime_profiles(fast_exp, fast_log, fast_cbrt)
wet_coefficient_fast = inline(scavenging_formula(fast_exp, fast_log))


@inline
def select_scalar(condition, a, b):
    """Return ``a`` where ``condition`` else ``b``, on scalars (the physics formulas' ``select``)."""
    return a if condition else b


(similarity_neutral, similarity_unstable, similarity_stable) = similarity_formulas(
    fast_exp, fast_log, fast_cbrt, select_scalar, inline
)
similarity_any_regime = similarity_any_regime_formula(fast_exp, fast_log, fast_cbrt, select_scalar, inline)
(similarity_horizontal_neutral, similarity_horizontal_unstable, similarity_horizontal_stable) = (
    similarity_horizontal_formulas(fast_exp, fast_log, fast_cbrt, select_scalar, inline)
)
skewed_bi_gaussian, skewed_drift = skewed_formulas(fast_exp, fast_cbrt, select_scalar, inline)
skewness_transition = inline(transition)


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


#: Particles per block of the listing of sampled particles in :func:`accumulate_concentration`.
ACCUMULATE_BLOCK = 16384
#: Particles per pass of the step (each named buffer of the chunk holds this many values).
CHUNK = 128
#: Most first-order conversions a step carries (rows of the chunk's buffer of converted mass).
MAX_CONVERSIONS = 8
_PRODUCED_SIZE = MAX_CONVERSIONS * CHUNK


class ChunkState(NamedTuple):
    """The chunk's particles, padded to CHUNK with dead ones: position, normalised velocities, live (0/1)."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    un: np.ndarray
    vn: np.ndarray
    wn: np.ndarray
    um: np.ndarray
    vm: np.ndarray
    live: np.ndarray


class ChunkDraws(NamedTuple):
    """Standard normals of the step: pairs for the horizontal, the vertical and the mesoscale velocities.

    ``key``: each particle's random-number key (uint64; :func:`~airshed.model.random.particle_key_scalar`),
    from which the vertical sub-steps draw their further normals.
    """

    horizontal_u: np.ndarray
    horizontal_v: np.ndarray
    vertical: np.ndarray
    vertical_second: np.ndarray
    mesoscale_u: np.ndarray
    mesoscale_v: np.ndarray
    key: np.ndarray


class ChunkSurface(NamedTuple):
    """Boundary-layer scalars at the particles and the weight of the skewed convective PDF.

    h (m), u*, w* (m/s), 1/L (1/m), rain (mm/h), Hanna regime, skewness weight (0: Gaussian).
    """

    h: np.ndarray
    ustar: np.ndarray
    wstar: np.ndarray
    inv_L: np.ndarray
    rain: np.ndarray
    regime: np.ndarray
    skew: np.ndarray


class ChunkHorizontal(NamedTuple):
    """Horizontal turbulence: sigma_u, sigma_v (m/s), T_Lu, T_Lv (s), turbulent velocities ut, vt (m/s)."""

    sig_u: np.ndarray
    sig_v: np.ndarray
    tl_u: np.ndarray
    tl_v: np.ndarray
    ut: np.ndarray
    vt: np.ndarray


class ChunkAdvection(NamedTuple):
    """Petterssen advection: predictor wind (m/s), new position (m), lower met levels of both stages."""

    u1: np.ndarray
    v1: np.ndarray
    w1: np.ndarray
    x_new: np.ndarray
    y_new: np.ndarray
    z_new: np.ndarray
    level_start: np.ndarray
    level_new: np.ndarray


class ChunkVertical(NamedTuple):
    """First vertical sub-step: sigma_w, its gradient, T_Lw, the similarity blend, the time left.

    sigma_w (m/s), d sigma_w/dz (1/s), T_Lw (s), blend weight b and db/dz (1/m), time left after it (s).
    """

    sig_w: np.ndarray
    dsig_w: np.ndarray
    tl_w: np.ndarray
    b: np.ndarray
    db: np.ndarray
    remaining: np.ndarray


class ChunkPacked(NamedTuple):
    """Particles with time left after the first vertical sub-step, packed at the front (chunk order).

    ``sig_w`` .. ``db``: the profiles of a round at the particles' heights (as :class:`ChunkVertical`);
    ``dts`` and ``split``: the splitting integrator's sub-step (s) and 1 where the particle takes it (0 where
    the skewed convective step took the sub-step instead); ``key``: the particles' random-number keys
    (uint64), set by the step's first round that draws (:func:`draw_round_normals`).
    """

    index: np.ndarray
    z: np.ndarray
    wn: np.ndarray
    h: np.ndarray
    ustar: np.ndarray
    wstar: np.ndarray
    inv_L: np.ndarray
    skew: np.ndarray
    remaining: np.ndarray
    g: np.ndarray
    g_second: np.ndarray
    sig_w: np.ndarray
    dsig_w: np.ndarray
    tl_w: np.ndarray
    b: np.ndarray
    db: np.ndarray
    dts: np.ndarray
    split: np.ndarray
    key: np.ndarray


class ChunkFate(NamedTuple):
    """Where each particle ends the step (0/1): left the domain, stays, in the dry layer, in rain."""

    gone: np.ndarray
    stays: np.ndarray
    dry: np.ndarray
    wet: np.ndarray


class ChunkRemoval(NamedTuple):
    """One species' losses: scavenging rate and expm1, loss per unit rate (all, dry part), wet loss, left."""

    k_wet: np.ndarray
    expm1_wet: np.ndarray
    loss_per_rate: np.ndarray
    dry_loss_per_rate: np.ndarray
    wet_loss: np.ndarray
    left: np.ndarray


@intrinsic
def stack_buffer(typingctx, length, dtype):
    """Pointer to ``length`` (a compile-time constant) elements of ``dtype`` on the stack of the caller.

    Wrapped by ``numba.carray``: chunk-local buffers that LLVM knows alias no argument array.
    """
    if not isinstance(length, types.IntegerLiteral) or not isinstance(dtype, types.NumberClass):
        return None
    element = dtype.instance_type
    count = length.literal_value

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_value_type(element), size=count)

    return types.CPointer(element)(length, dtype), codegen


@inline
def real_buffer():
    """Return a float64 buffer of CHUNK values on the stack."""
    return carray(stack_buffer(CHUNK, np.float64), CHUNK)


@inline
def index_buffer():
    """Return an int64 buffer of CHUNK values on the stack."""
    return carray(stack_buffer(CHUNK, np.int64), CHUNK)


@inline
def key_buffer():
    """Return a uint64 buffer of CHUNK values on the stack."""
    return carray(stack_buffer(CHUNK, np.uint64), CHUNK)


@inline
def reflect(wn: float, z: float, h: float) -> tuple[float, float]:
    """Perfect reflection (position and velocity sign) at the ground and at h; returns (w_n, z) in [0, h]."""
    below = z < 0.0
    z = -z if below else z
    wn = -wn if below else wn
    above = z > h
    z = 2.0 * h - z if above else z
    wn = -wn if above else wn
    return wn, min(max(z, 0.0), h)


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
    # reflection written out (as :func:`reflect`): one inlining level less on the hottest path
    zp = z + wnp * sigw * dts
    below = zp < 0.0
    zp = -zp if below else zp
    wnp = -wnp if below else wnp
    above = zp > h
    zp = 2.0 * h - zp if above else zp
    wnp = -wnp if above else wnp
    return wnp, min(max(zp, 0.0), h)


@inline
def skewed_substep(
    wn: float, z: float, h: float, wstar: float, skew: float, g: float, dts: float, sigw: float,
    dsigw: float, tlw: float, b: float, db: float, inv_density_scale_height: float, skew_sign: float,
) -> tuple[float, float]:
    """One sub-step of dts in a skewed convective boundary layer (:mod:`airshed.physics.skewed_cbl`).

    Euler step of dw_n = drift dt + sqrt(2/T_Lw) dW with Thomson's (1987) well-mixed drift for the
    bi-Gaussian PDF of Luhar, Hibberd & Hurley (1996) (``skew`` the transition weight of -h/L);
    z' = z + w_n' sigma_w dts, reflected at the ground and at h. Returns (w_n', z'). With ``skew_sign``
    -1 (a backward run) the PDF is mirrored, P(-w): the updrafts' and downdrafts' means change sign (the
    velocity of a particle moving back in time is -w; Flesch, Wilson & Yee 1995, Sect. 3), and Thomson's
    drift for the mirrored PDF follows from the same formula.
    """
    a, da, wa, dwa, sa, dsa, wb, dwb, sb, dsb = skewed_bi_gaussian(z, h, wstar, skew, sigw, dsigw, b, db)
    pdf = (a, da, skew_sign * wa, skew_sign * dwa, sa, dsa, skew_sign * wb, skew_sign * dwb, sb, dsb)
    drift = skewed_drift(wn, pdf, sigw, dsigw, tlw, inv_density_scale_height)
    wnp = wn + drift * dts + np.sqrt(2.0 * dts / tlw) * g
    return reflect(wnp, z + wnp * sigw * dts, h)


@inline
def drift_with_linear_sigma(wn: float, z: float, tau: float, sigw: float, dsigw: float,
                            h: float) -> tuple[float, float]:
    """Move z by dz/dt = sigma_w(z) w_n for tau s at fixed w_n, sigma_w linear around z (the splitting's A).

    Along the path sigma_w grows as sigma_w exp(sigma_w' w_n t), so z' = z + sigma_w w_n tau E(x) with
    E(x) = (e^x - 1) / x and x = sigma_w' w_n tau (capped at +-:data:`MAX_DRIFT_EXPONENT`): exact where
    sigma_w is linear in z. Reflected at the ground and at h. Returns (w_n, z').
    """
    x = max(min(dsigw * wn * tau, MAX_DRIFT_EXPONENT), -MAX_DRIFT_EXPONENT)
    small = abs(x) < 0.5
    x_safe = 1.0 if small else x
    e = exp_minus_one_over_x_series(x) if small else (fast_exp(x) - 1.0) / x_safe
    return reflect(wn, z + sigw * wn * tau * e, h)


#: Coefficients 1 / (k + 1)! of (e^x - 1) / x = sum x^k / (k + 1)!, k = 0 .. 16 (truncation below 1e-19
#: for |x| < 1/2).
EXPM1_OVER_X_COEFFICIENTS = tuple(1.0 / math.factorial(k + 1) for k in range(17))


@inline
def exp_minus_one_over_x_series(x: float) -> float:
    """Return (e^x - 1) / x for |x| < 1/2 by its Taylor series in Horner form (no cancellation)."""
    e = EXPM1_OVER_X_COEFFICIENTS[16]
    for k in range(15, -1, -1):
        e = e * x + EXPM1_OVER_X_COEFFICIENTS[k]
    return e


# --------------------------------------------------------------------------------------------------
# Turbulence schemes. Each scheme is compiled into its own step kernel (:data:`STEP_KERNELS`): the scheme
# is chosen in Python before the call, so a run compiles only the kernel of the scheme it uses, and each
# kernel holds one scheme's profiles (both inlined into one kernel, the step compiled in 5-7 GB of memory
# and ran 3x slower). A scheme is a :class:`SchemePasses` of inlined functions; :func:`_scheme_step`
# builds the processes of a step around it.
# --------------------------------------------------------------------------------------------------
class SchemePasses(NamedTuple):
    """The inlined functions of one turbulence scheme, chosen in Python when its kernel is built.

    ``horizontal`` / ``vertical``: per Hanna regime (neutral, unstable, stable) the profile functions;
    ``any_regime``: the vertical profile of any regime, branch-free, for the similarity scheme's packed
    sub-steps (None for Hanna's, which evaluate the regimes present: :func:`_packed_profiles`). With ``hanna``
    they are Hanna's (:mod:`airshed.physics.turbulence`: ``(z, h, u*, w*, 1/L, T_L floor)`` ->
    (sigma_u, sigma_v, T_Lu, T_Lv) / (sigma_w, d sigma_w/dz, T_Lw), the floors everywhere as FLEXPART);
    else the similarity scheme's (:mod:`airshed.physics.similarity`: ``(z, h, u*, w*, 1/L, min_height)``
    -> (sigma_u, sigma_v, T_Lu, T_Lv) / (sigma_w, d sigma_w/dz, T_Lw, b, db), the floors only from
    ``tl_floor_height`` up, blend weights b, db kept). ``skewed``: the skewed convective PDF where
    -h/L > 5; ``long_steps``: a horizontal step longer than 2 T_L takes the displacement of the
    diffusion limit.
    """

    horizontal: tuple
    vertical: tuple
    any_regime: Callable | None
    hanna: bool
    skewed: bool
    long_steps: bool


HANNA_PASSES = SchemePasses(
    horizontal=(horizontal_neutral, horizontal_unstable, horizontal_stable),
    vertical=(vertical_neutral, vertical_unstable, vertical_stable),
    any_regime=None, hanna=True, skewed=False, long_steps=False,
)
SIMILARITY_PASSES = SchemePasses(
    horizontal=(similarity_horizontal_neutral, similarity_horizontal_unstable, similarity_horizontal_stable),
    vertical=(similarity_neutral, similarity_unstable, similarity_stable),
    any_regime=similarity_any_regime, hanna=False,
    skewed=True, long_steps=True,
)


def _regime_passes(horizontal_profile, vertical_profile, regime, hanna):
    """Return the passes over a chunk that keep one stability regime's profiles for its particles.

    The horizontal pass reads the start height, h, u*, w*, 1/L and writes sigma_u, sigma_v, T_Lu, T_Lv; the
    vertical one reads the height after advection (capped at h) and writes sigma_w, d sigma_w/dz, T_Lw
    (and, for the similarity scheme, b and db). Particles of other regimes keep their values, so running
    the passes of the regimes present gives every particle its own. The floors on the time scales
    (:class:`SchemePasses`) are applied here: each level of inlined calls costs compile time.
    """

    @inline
    def horizontal_pass(z, surface, horizontal, turbulence):
        for q in range(CHUNK):
            if hanna:  # a closure constant: the branch is pruned before compilation
                sigu, sigv, tlu, tlv = horizontal_profile(
                    z[q], surface.h[q], surface.ustar[q], surface.wstar[q], surface.inv_L[q],
                    turbulence.tl_min_horizontal,
                )
            else:
                sigu, sigv, tlu, tlv = horizontal_profile(
                    z[q], surface.h[q], surface.ustar[q], surface.wstar[q], surface.inv_L[q],
                    turbulence.min_profile_height,
                )
                tl_min = turbulence.tl_min_horizontal if z[q] >= turbulence.tl_floor_height else 0.0
                tlu = max(tlu, tl_min)
                tlv = max(tlv, tl_min)
            pick = surface.regime[q] == regime
            horizontal.sig_u[q] = sigu if pick else horizontal.sig_u[q]
            horizontal.sig_v[q] = sigv if pick else horizontal.sig_v[q]
            horizontal.tl_u[q] = tlu if pick else horizontal.tl_u[q]
            horizontal.tl_v[q] = tlv if pick else horizontal.tl_v[q]

    @inline
    def vertical_pass(z, surface, vertical, turbulence):
        for q in range(CHUNK):
            zq = min(z[q], surface.h[q])
            pick = surface.regime[q] == regime
            if hanna:  # a closure constant: the branch is pruned before compilation
                sigw, dsigw, tlw = vertical_profile(
                    zq, surface.h[q], surface.ustar[q], surface.wstar[q], surface.inv_L[q],
                    turbulence.tl_min_vertical,
                )
            else:
                sigw, dsigw, tlw, b, db = vertical_profile(
                    zq, surface.h[q], surface.ustar[q], surface.wstar[q], surface.inv_L[q],
                    turbulence.min_profile_height,
                )
                tlw = max(tlw, turbulence.tl_min_vertical if zq >= turbulence.tl_floor_height else 0.0)
                vertical.b[q] = b if pick else vertical.b[q]
                vertical.db[q] = db if pick else vertical.db[q]
            vertical.sig_w[q] = sigw if pick else vertical.sig_w[q]
            vertical.dsig_w[q] = dsigw if pick else vertical.dsig_w[q]
            vertical.tl_w[q] = tlw if pick else vertical.tl_w[q]

    return horizontal_pass, vertical_pass


# --------------------------------------------------------------------------------------------------
# The processes of a step, each an inlined pass (or a few) over the chunk's named buffers.
# --------------------------------------------------------------------------------------------------
@inline
def load_chunk(particles, first, nc, grid, state):
    """Copy particles ``first .. first + nc - 1`` into ``state``, padding to CHUNK with dead particles.

    Every pass runs over the whole padded chunk: a loop of fixed length that LLVM vectorises without a
    scalar remainder, so each particle takes the same instructions wherever it sits in a chunk (results
    bit-identical for any partition).
    """
    x = particles.x[first:first + nc]
    y = particles.y[first:first + nc]
    z = particles.z[first:first + nc]
    un = particles.un[first:first + nc]
    vn = particles.vn[first:first + nc]
    wn = particles.wn[first:first + nc]
    um = particles.um[first:first + nc]
    vm = particles.vm[first:first + nc]
    alive = particles.alive[first:first + nc]
    for q in range(CHUNK):
        inside = q < nc
        state.x[q] = x[q] if inside else grid.x0
        state.y[q] = y[q] if inside else grid.y0
        state.z[q] = z[q] if inside else 0.0
        state.un[q] = un[q] if inside else 0.0
        state.vn[q] = vn[q] if inside else 0.0
        state.wn[q] = wn[q] if inside else 0.0
        state.um[q] = um[q] if inside else 0.0
        state.vm[q] = vm[q] if inside else 0.0
        state.live[q] = 1.0 if inside and alive[q] else 0.0


@inline
def draw_step_normals(pid, nc, step, turbulence, draws):
    """Draw the step's first normals: slots 0-1 (horizontal) and 2-3 (vertical), by Box-Muller.

    With unresolved mesoscale motions, also the pair of slots :data:`MESOSCALE_DRAW`. Keyed by (seed,
    particle id, step, slot) (:mod:`airshed.model.random`); padding particles use id 0. The particles'
    keys stay in ``draws.key`` for the vertical sub-steps' draws (:func:`draw_round_normals`).
    """
    for q in range(CHUNK):
        draws.key[q] = particle_key_scalar(step.seed, np.uint64(pid[q] if q < nc else 0))
    if turbulence.mesoscale_sigma > 0.0:
        draw_m = counter_scalar(step.index, np.uint64(MESOSCALE_DRAW))
        for q in range(CHUNK):
            key = draws.key[q]
            draws.mesoscale_u[q] = uniform_scalar(key, draw_m)
            draws.mesoscale_v[q] = uniform_scalar(key, draw_m + np.uint64(1))
        for q in range(CHUNK):
            draws.mesoscale_u[q], draws.mesoscale_v[q] = box_muller_vector_scalar(
                draws.mesoscale_u[q], draws.mesoscale_v[q]
            )
    draw_h = counter_scalar(step.index, np.uint64(0))
    draw_v = counter_scalar(step.index, np.uint64(2))
    for q in range(CHUNK):
        key = draws.key[q]
        draws.horizontal_u[q] = uniform_scalar(key, draw_h)
        draws.horizontal_v[q] = uniform_scalar(key, draw_h + np.uint64(1))
        draws.vertical[q] = uniform_scalar(key, draw_v)
        draws.vertical_second[q] = uniform_scalar(key, draw_v + np.uint64(1))
    for q in range(CHUNK):
        draws.horizontal_u[q], draws.horizontal_v[q] = box_muller_vector_scalar(
            draws.horizontal_u[q], draws.horizontal_v[q]
        )
        draws.vertical[q], draws.vertical_second[q] = box_muller_vector_scalar(
            draws.vertical[q], draws.vertical_second[q]
        )


@inline
def mesoscale_velocities(state, draws, horizontal, turbulence, dt):
    """2b. Unresolved mesoscale velocities (:mod:`airshed.physics.mesoscale`), added to the turbulent ones.

    An Ornstein-Uhlenbeck process for (u_m, v_m) / sigma_m with the exact update r = exp(-dt / T_m), at
    every height.
    """
    rm = fast_exp(-dt / turbulence.mesoscale_time)
    sm = np.sqrt(1.0 - rm * rm)
    sigma = turbulence.mesoscale_sigma
    for q in range(CHUNK):
        live = state.live[q] > 0.5
        um_new = rm * state.um[q] + sm * draws.mesoscale_u[q]
        vm_new = rm * state.vm[q] + sm * draws.mesoscale_v[q]
        horizontal.ut[q] += sigma * um_new
        horizontal.vt[q] += sigma * vm_new
        state.um[q] = um_new if live else state.um[q]
        state.vm[q] = vm_new if live else state.vm[q]


@inline
def advect(state, horizontal, met, grid, advection, dt):
    """3. Advect by Petterssen's (1940) predictor-corrector, into ``advection.x_new, y_new, z_new``.

    Trilinear wind at the start (t) and at the predicted position (t + dt); the mean of the two plus the
    turbulent horizontal velocity moves the particle (height reflected at the ground).
    """
    level_indices(state.z, CHUNK, grid.z_levels, advection.level_start)
    for q in range(CHUNK):
        xp = state.x[q]
        yp = state.y[q]
        zp = state.z[q]
        i, wx = horizontal_index(xp, grid.x0, grid.dx, grid.nx)
        j, wy = horizontal_index(yp, grid.y0, grid.dx, grid.ny)
        k = advection.level_start[q]
        u1, v1, w1 = interp_wind(
            met.wind_t, grid.nx, grid.ny, k, level_weight(zp, k, grid.z_levels), j, wy, i, wx
        )
        advection.u1[q] = u1
        advection.v1[q] = v1
        advection.w1[q] = w1
        advection.x_new[q] = xp + u1 * dt
        advection.y_new[q] = yp + v1 * dt
        advection.z_new[q] = abs(zp + w1 * dt)
    level_indices(advection.z_new, CHUNK, grid.z_levels, advection.level_new)
    for q in range(CHUNK):
        i, wx = horizontal_index(advection.x_new[q], grid.x0, grid.dx, grid.nx)
        j, wy = horizontal_index(advection.y_new[q], grid.y0, grid.dx, grid.ny)
        k = advection.level_new[q]
        wz = level_weight(advection.z_new[q], k, grid.z_levels)
        u2, v2, w2 = interp_wind(met.wind_t_next, grid.nx, grid.ny, k, wz, j, wy, i, wx)
        advection.x_new[q] = state.x[q] + (0.5 * (advection.u1[q] + u2) + horizontal.ut[q]) * dt
        advection.y_new[q] = state.y[q] + (0.5 * (advection.v1[q] + v2) + horizontal.vt[q]) * dt
        advection.z_new[q] = abs(state.z[q] + 0.5 * (advection.w1[q] + w2) * dt)


@inline
def substep_skewed(wn, z, h, ustar, wstar, inv_L, skew, g, dts, sigw, dsigw, tlw, b, db, turbulence):
    """Take a vertical sub-step, the skewed convective one where the weight ``skew`` is > 0.

    The skewed (Euler) step is taken only when it is short against T_Lw (dts <= T_Lw / 2, as every
    regular sub-step of ``step_fraction`` <= 1/2 is; a last sub-step forced by ``max_substeps`` may be
    longer) and its result is a finite w_n within 10 sigma_w; otherwise the exact Gaussian update, which
    relaxes to the stationary N(0, 1) for any step, is kept. Returns (w_n', z').
    """
    inv_hrho = turbulence.inv_density_scale_height
    wn_g, z_g = vertical_substep(wn, z, h, g, dts, sigw, dsigw, tlw, inv_hrho)
    wn_s, z_s = skewed_substep(wn, z, h, wstar, skew, g, dts, sigw, dsigw, tlw, b, db, inv_hrho,
                               turbulence.skew_sign)
    pick = (skew > 0.0) & (dts <= SKEWED_MAX_STEP_OVER_TL * tlw) & (abs(wn_s) <= SKEWED_MAX_WN)
    return wn_s if pick else wn_g, z_s if pick else z_g


def _first_substep_pass(skewed):
    """Return the pass of the first vertical sub-step of the chunk (and of the free step above h).

    With ``skewed`` the skewed convective sub-step (:func:`substep_skewed`), else the Gaussian one
    (:func:`vertical_substep`, called directly: each level of inlined calls costs compile time).
    """

    @inline
    def first_pass(state, surface, draws, advection, vertical, turbulence, dt):
        ctl = turbulence.step_fraction
        max_substeps = turbulence.max_substeps
        s_free = np.sqrt(2.0 * turbulence.k_free_vertical * dt)
        substeps = 0
        for q in range(CHUNK):
            live = state.live[q] > 0.5
            h = surface.h[q]
            in_bl = state.z[q] <= h
            substeps += live & in_bl
            xp = advection.x_new[q]
            yp = advection.y_new[q]
            zp = advection.z_new[q]
            g = draws.vertical[q]
            zb = min(zp, h)
            tlw = vertical.tl_w[q]
            dts = ctl * tlw
            last_sub = (dts >= dt * (1.0 - 1e-9)) | (max_substeps == 1)
            remaining = 0.0 if last_sub else dt - dts
            dts = dt if last_sub else dts
            if skewed:  # a closure constant: the branch is pruned before compilation
                wnp, zb = substep_skewed(state.wn[q], zb, h, surface.ustar[q], surface.wstar[q],
                                         surface.inv_L[q], surface.skew[q], g, dts, vertical.sig_w[q],
                                         vertical.dsig_w[q], tlw, vertical.b[q], vertical.db[q], turbulence)
            else:
                wnp, zb = vertical_substep(state.wn[q], zb, h, g, dts, vertical.sig_w[q], vertical.dsig_w[q],
                                           tlw, turbulence.inv_density_scale_height)
            z_new = zb if in_bl else abs(zp + s_free * g)
            wn_new = wnp if in_bl else draws.vertical_second[q]
            state.x[q] = xp if live else state.x[q]
            state.y[q] = yp if live else state.y[q]
            state.z[q] = z_new if live else state.z[q]
            state.wn[q] = wn_new if live else state.wn[q]
            vertical.remaining[q] = remaining if live & in_bl else 0.0
        return substeps

    return first_pass


def _packed_profiles(scheme: SchemePasses):
    """Return the pass that evaluates the packed particles' profiles.

    One pass for both the Gaussian and the skewed sub-steps (:func:`_packed_round`) and both integrators;
    the scheme's floors as in :func:`_regime_passes`. Hanna's profiles are evaluated, as in the first
    sub-step, only for the regimes present in the chunk, each in its own branch-free pass whose values the
    particles of that regime take (bit for bit the values of the all-regime form; b, db are left unset:
    they are not read). The similarity scheme's are evaluated for any regime in one branch-free pass (its
    three regimes' passes inlined here would add their code to a kernel already the costliest to compile).
    """
    hanna = scheme.hanna
    any_regime = scheme.any_regime

    def regime_pass(profile, regime):
        @inline
        def packed_regime_pass(packed, na, turbulence):
            for a in range(na):
                sigw, dsigw, tlw = profile(packed.z[a], packed.h[a], packed.ustar[a], packed.wstar[a],
                                           packed.inv_L[a], turbulence.tl_min_vertical)
                pick = hanna_regime(packed.h[a], packed.inv_L[a]) == regime
                packed.sig_w[a] = sigw if pick else packed.sig_w[a]
                packed.dsig_w[a] = dsigw if pick else packed.dsig_w[a]
                packed.tl_w[a] = tlw if pick else packed.tl_w[a]

        return packed_regime_pass

    pass_neutral, pass_unstable, pass_stable = (
        regime_pass(scheme.vertical[r], r) for r in (NEUTRAL, UNSTABLE, STABLE)
    )

    @inline
    def packed_profiles(packed, na, turbulence, regimes):
        if hanna:  # a closure constant: the branch is pruned before compilation
            n_neutral, n_unstable, n_stable, _ = regimes
            if n_neutral > 0:
                pass_neutral(packed, na, turbulence)
            if n_unstable > 0:
                pass_unstable(packed, na, turbulence)
            if n_stable > 0:
                pass_stable(packed, na, turbulence)
        else:
            for a in range(na):
                sigw, dsigw, tlw, b, db = any_regime(packed.z[a], packed.h[a], packed.ustar[a],
                                                     packed.wstar[a], packed.inv_L[a],
                                                     turbulence.min_profile_height)
                floor = packed.z[a] >= turbulence.tl_floor_height
                packed.sig_w[a] = sigw
                packed.dsig_w[a] = dsigw
                packed.tl_w[a] = max(tlw, turbulence.tl_min_vertical if floor else 0.0)
                packed.b[a] = b
                packed.db[a] = db

    return packed_profiles


def _packed_round(skewed):
    """One round of sub-steps of the packed particles, with the profiles of :func:`_packed_profiles`.

    With ``skewed`` the skewed convective sub-step, else the Gaussian one (as :func:`_first_substep_pass`).
    """

    @inline
    def packed_round(packed, g_row, na, turbulence, final_round):
        ctl = turbulence.step_fraction
        for a in range(na):
            remaining = packed.remaining[a]
            tlw = packed.tl_w[a]
            dts = ctl * tlw
            last_sub = (dts >= remaining * (1.0 - 1e-9)) | final_round
            dts = remaining if last_sub else dts
            if skewed:  # a closure constant: the branch is pruned before compilation
                wn_new, z_new = substep_skewed(packed.wn[a], packed.z[a], packed.h[a], packed.ustar[a],
                                               packed.wstar[a], packed.inv_L[a], packed.skew[a], g_row[a],
                                               dts, packed.sig_w[a], packed.dsig_w[a], tlw, packed.b[a],
                                               packed.db[a], turbulence)
            else:
                wn_new, z_new = vertical_substep(packed.wn[a], packed.z[a], packed.h[a], g_row[a], dts,
                                                 packed.sig_w[a], packed.dsig_w[a], tlw,
                                                 turbulence.inv_density_scale_height)
            packed.z[a] = z_new
            packed.wn[a] = wn_new
            packed.remaining[a] = 0.0 if last_sub else remaining - dts

    return packed_round


first_pass_gaussian = _first_substep_pass(False)
first_pass_skewed = _first_substep_pass(True)
packed_round_gaussian = _packed_round(False)
packed_round_skewed = _packed_round(True)


@inline
def draw_round_normals(packed, na, step, keys, ksub):
    """Return the normals of the packed particles' sub-step round ``ksub`` (0: the step's first sub-step).

    An even round after the first draws a new pair per particle (slots 2 + ksub and 3 + ksub) and takes its
    first; an odd round takes the pair's second (the first pair is the step's, :func:`draw_step_normals`).
    ``keys`` are the chunk's particle keys (``draws.key``), packed into ``packed.key`` by round 2 (a
    gather instead of two hashes per particle and even round; the same numbers).
    """
    if ksub % 2 == 0 and ksub > 0:
        draw = counter_scalar(step.index, np.uint64(2 + ksub))
        if ksub == 2:  # the first round that draws packs the chunk's keys (``keys``); later ones reuse them
            for a in range(na):
                packed.key[a] = keys[packed.index[a]]
        for a in range(na):
            key = packed.key[a]
            packed.g[a] = uniform_scalar(key, draw)
            packed.g_second[a] = uniform_scalar(key, draw + np.uint64(1))
        for a in range(na):
            g, g_second = box_muller_vector_scalar(packed.g[a], packed.g_second[a])
            packed.g[a] = g
            packed.g_second[a] = g_second
    return packed.g if ksub % 2 == 0 else packed.g_second


def _round_packing(skewed, keep_profiles):
    """Return (pack_round, finish_round): packing around rounds of sub-steps.

    With ``skewed`` the skewness weight is packed; with ``keep_profiles`` (the splitting, whose next
    sub-step starts from the profiles at the previous one's end) the profiles are kept through the packing.
    """

    @inline
    def pack_round(packed, na, state, surface):
        """Gather height, velocity and boundary-layer scalars of the particles ``packed.index[:na]``."""
        for a in range(na):
            q = packed.index[a]
            packed.z[a] = state.z[q]
            packed.wn[a] = state.wn[q]
            packed.h[a] = surface.h[q]
            packed.ustar[a] = surface.ustar[q]
            packed.wstar[a] = surface.wstar[q]
            packed.inv_L[a] = surface.inv_L[q]
            if skewed:  # a closure constant: the branch is pruned before compilation
                packed.skew[a] = surface.skew[q]

    @inline
    def finish_round(packed, na, state):
        """Write the round's heights and velocities to the chunk and pack the particles with time left.

        Returns their number. A round that finished no particle leaves the pack and the chunk as they are
        (the chunk's heights are read only after the last round, and the packed values are the same).
        """
        going_on = 0
        for a in range(na):
            going_on += packed.remaining[a] > 0.0
        if going_on == na:
            return na
        for a in range(na):
            q = packed.index[a]
            state.z[q] = packed.z[a]
            state.wn[q] = packed.wn[a]
        kept = 0
        for a in range(na):
            goes_on = packed.remaining[a] > 0.0
            packed.index[kept] = packed.index[a]
            packed.z[kept] = packed.z[a]
            packed.wn[kept] = packed.wn[a]
            packed.h[kept] = packed.h[a]
            packed.ustar[kept] = packed.ustar[a]
            packed.wstar[kept] = packed.wstar[a]
            packed.inv_L[kept] = packed.inv_L[a]
            if skewed:  # a closure constant: the branch is pruned before compilation
                packed.skew[kept] = packed.skew[a]
            packed.remaining[kept] = packed.remaining[a]
            packed.g[kept] = packed.g[a]
            packed.g_second[kept] = packed.g_second[a]
            packed.key[kept] = packed.key[a]
            if keep_profiles:  # a closure constant: the branch is pruned before compilation
                packed.sig_w[kept] = packed.sig_w[a]
                packed.dsig_w[kept] = packed.dsig_w[a]
                packed.tl_w[kept] = packed.tl_w[a]
                packed.b[kept] = packed.b[a]
                packed.db[kept] = packed.db[a]
            kept += goes_on
        return kept

    return pack_round, finish_round


def _splitting_vertical(packed_profiles, pack_round, finish_round, skewed):
    """Return the vertical turbulence of a chunk with the BAOAB splitting (``vertical_integrator = "baoab"``).

    In the coordinate s = int dz / sigma_w the normalised Langevin equation of step 4,
    dw_n = (-w_n / T_Lw + sigma_w' - sigma_w / H_rho) dt + sqrt(2 / T_Lw) dW, dz = sigma_w w_n dt, is the
    Langevin equation of a unit mass in the potential -ln(sigma_w rho) with friction 1 / T_Lw (derived here
    from Thomson's 1987 drift; ds/dt = w_n, and d ln(sigma_w rho)/ds = sigma_w' - sigma_w / H_rho). Its two
    parts each keep the well-mixed state rho(z) N(w_n; 0, 1) by themselves: the Hamiltonian part (kick B:
    w_n += tau (sigma_w' - sigma_w / H_rho); drift A: :func:`drift_with_linear_sigma`) and the
    friction-noise part at fixed z (O: the exact Ornstein-Uhlenbeck update with T_Lw there, no drift).
    A sub-step of dts is B A O A B with halves of dts for B and A (Leimkuhler & Matthews 2013, Appl. Math.
    Res. Express 2013:34, "BAOAB"), so the state stays well mixed to the accuracy of the drift across
    sigma_w's curvature rather than to O(dts / T_Lw): with 0.5 T_Lw (Hanna's default fraction, 30 s floor)
    40,000 particles uniform in neutral, convective and stable layers keep 0.999, 1.003 and 0.998 of the
    uniform share in the lowest 50 m after 2 h of 300 s steps, where step 4 puts 1.348, 1.411 and 1.072
    there (this kernel, README "Particle core").

    Every mixed-layer particle takes its sub-steps in the packed rounds (the first one too); the lengths
    and the cap on their number are step 4's (``step_fraction`` x T_Lw at the sub-step's start); the
    profiles are evaluated at the start (the previous sub-step's end), after the first drift and at the end.
    With ``skewed`` a particle with a skewed convective PDF takes the skewed Euler sub-step where step 4
    would (:func:`substep_skewed`), the splitting's sub-step otherwise. The normals are step 4's, slot by
    slot. Returns the number of sub-steps taken.
    """

    @inline
    def open_substep(packed, g_row, na, turbulence, final_round):
        """Take B and the first A of a sub-step at the profiles of its start (or the skewed sub-step)."""
        ctl = turbulence.step_fraction
        inv_hrho = turbulence.inv_density_scale_height
        for a in range(na):
            remaining = packed.remaining[a]
            tlw = packed.tl_w[a]
            sigw = packed.sig_w[a]
            dsigw = packed.dsig_w[a]
            dts = ctl * tlw
            last_sub = (dts >= remaining * (1.0 - 1e-9)) | final_round
            dts = remaining if last_sub else dts
            half = 0.5 * dts
            wn_b = packed.wn[a] + half * (dsigw - sigw * inv_hrho)
            wn_new, z_new = drift_with_linear_sigma(wn_b, packed.z[a], half, sigw, dsigw, packed.h[a])
            split = 1.0
            if skewed:  # a closure constant: the branch is pruned before compilation
                wn_s, z_s = skewed_substep(packed.wn[a], packed.z[a], packed.h[a], packed.wstar[a],
                                           packed.skew[a], g_row[a], dts, sigw, dsigw, tlw, packed.b[a],
                                           packed.db[a], inv_hrho, turbulence.skew_sign)
                pick = ((packed.skew[a] > 0.0) & (dts <= SKEWED_MAX_STEP_OVER_TL * tlw)
                        & (abs(wn_s) <= SKEWED_MAX_WN))
                wn_new = wn_s if pick else wn_new
                z_new = z_s if pick else z_new
                split = 0.0 if pick else 1.0
            packed.z[a] = z_new
            packed.wn[a] = wn_new
            packed.dts[a] = dts
            packed.split[a] = split
            packed.remaining[a] = 0.0 if last_sub else remaining - dts

    @inline
    def middle_of_substep(packed, g_row, na):
        """Take O and the second A at the profiles after the first drift."""
        for a in range(na):
            dts = packed.dts[a]
            r = fast_exp(-dts / packed.tl_w[a])
            wn = r * packed.wn[a] + np.sqrt(1.0 - r * r) * g_row[a]
            wn, z = drift_with_linear_sigma(wn, packed.z[a], 0.5 * dts, packed.sig_w[a], packed.dsig_w[a],
                                            packed.h[a])
            go = packed.split[a] > 0.5
            packed.z[a] = z if go else packed.z[a]
            packed.wn[a] = wn if go else packed.wn[a]

    @inline
    def close_substep(packed, na, turbulence):
        """Kick with the last B, at the profiles of the sub-step's end."""
        inv_hrho = turbulence.inv_density_scale_height
        for a in range(na):
            kick = 0.5 * packed.dts[a] * (packed.dsig_w[a] - packed.sig_w[a] * inv_hrho)
            packed.wn[a] = packed.wn[a] + kick if packed.split[a] > 0.5 else packed.wn[a]

    @inline
    def splitting_vertical(state, surface, draws, advection, vertical, packed, turbulence, regimes, step):
        """4./5. As the Euler ``vertical_turbulence`` of :func:`_scheme_step` (same signature), by BAOAB."""
        dt = step.dt
        s_free = np.sqrt(2.0 * turbulence.k_free_vertical * dt)
        na = 0
        for q in range(CHUNK):
            live = state.live[q] > 0.5
            h = surface.h[q]
            in_bl = state.z[q] <= h
            zp = advection.z_new[q]
            z_new = min(zp, h) if in_bl else abs(zp + s_free * draws.vertical[q])
            wn_new = state.wn[q] if in_bl else draws.vertical_second[q]
            state.x[q] = advection.x_new[q] if live else state.x[q]
            state.y[q] = advection.y_new[q] if live else state.y[q]
            state.z[q] = z_new if live else state.z[q]
            state.wn[q] = wn_new if live else state.wn[q]
            packed.index[na] = q
            na += live & in_bl
        pack_round(packed, na, state, surface)
        for a in range(na):
            q = packed.index[a]
            packed.remaining[a] = dt
            packed.g[a] = draws.vertical[q]
            packed.g_second[a] = draws.vertical_second[q]
        substeps = 0
        ksub = 0
        while na > 0:
            substeps += na
            g_row = draw_round_normals(packed, na, step, draws.key, ksub)
            final_round = ksub == turbulence.max_substeps - 1
            # the profiles at the start are the previous sub-step's end (kept through the packing below);
            # one call site of the (large, inlined) profile code for all three evaluations
            for stage in range(3):
                if stage > 0 or ksub == 0:
                    packed_profiles(packed, na, turbulence, regimes)
                if stage == 0:
                    open_substep(packed, g_row, na, turbulence, final_round)
                elif stage == 1:
                    middle_of_substep(packed, g_row, na)
                else:
                    close_substep(packed, na, turbulence)
            na = finish_round(packed, na, state)
            ksub += 1
        return substeps

    return splitting_vertical


@inline
def particle_fate(state, surface, fate, grid, removal, any_wet):
    """6. Mark the particles that left the domain (cell edges, above z_top) and the ones that stay.

    Of those that stay, marks the ones in the dry-deposition layer and in rain below ``wet_top_m``;
    returns the number in rain.
    """
    x_end = grid.x0 + grid.nx * grid.dx
    y_end = grid.y0 + grid.ny * grid.dx
    n_wet = 0
    for q in range(CHUNK):
        live = state.live[q] > 0.5
        xp = state.x[q]
        yp = state.y[q]
        zp = state.z[q]
        gone = live & ((xp < grid.x0) | (xp >= x_end) | (yp < grid.y0) | (yp >= y_end) | (zp > grid.z_top))
        stays = live & ~gone
        wet = stays & any_wet & (surface.rain[q] > 0.0) & (zp <= removal.wet_top_m)
        n_wet += wet
        fate.gone[q] = 1.0 if gone else 0.0
        fate.stays[q] = 1.0 if stays else 0.0
        fate.dry[q] = 1.0 if zp < removal.dry_layer_m else 0.0
        fate.wet[q] = 1.0 if wet else 0.0
    return n_wet


@inline
def store_chunk(particles, first, nc, state, fate):
    """Write the state back, array by array (one stored array per loop: no run-time alias checks)."""
    x = particles.x[first:first + nc]
    y = particles.y[first:first + nc]
    z = particles.z[first:first + nc]
    un = particles.un[first:first + nc]
    vn = particles.vn[first:first + nc]
    wn = particles.wn[first:first + nc]
    um = particles.um[first:first + nc]
    vm = particles.vm[first:first + nc]
    alive = particles.alive[first:first + nc]
    for q in range(nc):
        x[q] = state.x[q]
    for q in range(nc):
        y[q] = state.y[q]
    for q in range(nc):
        z[q] = state.z[q]
    for q in range(nc):
        un[q] = state.un[q]
    for q in range(nc):
        vn[q] = state.vn[q]
    for q in range(nc):
        wn[q] = state.wn[q]
    for q in range(nc):
        um[q] = state.um[q]
    for q in range(nc):
        vm[q] = state.vm[q]
    for q in range(nc):
        alive[q] = alive[q] & (fate.gone[q] < 0.5)


@inline
def sampled_cells(particles, first, nc, state, fate, grid):
    """8. Output cell of the particles that stay below the sampling depth (-1 above it or gone)."""
    cell = particles.cell[first:first + nc]
    for q in range(CHUNK):
        xp = state.x[q]
        yp = state.y[q]
        flat = int(np.floor((yp - grid.y0) / grid.dx)) * grid.nx + int(np.floor((xp - grid.x0) / grid.dx))
        sampled = flat if state.z[q] < grid.sampling_depth else -1
        if q < nc:
            cell[q] = sampled if fate.stays[q] > 0.5 else (-1 if fate.gone[q] > 0.5 else cell[q])


@inline
def remove_and_convert(particles, first, nc, surface, fate, losses, produced, removal, chemistry, rates,
                       n_wet, dt, budget):
    """7. Removal and chemistry, simultaneous first-order losses, species by species.

    With e = expm1(-k dt), exp(-(k_fixed + k_wet) dt) - 1 = e_f (1 + e_w) + e_w (no cancellation, all
    terms <= 0); e_w is computed once per distinct scavenging (A, B). A species' loss is shared among its
    processes in proportion to their rates; the converted part of a precursor goes to ``produced`` (one
    row per conversion) and joins its product after every species' losses (so it is removed from the
    next step on).
    """
    last = first + nc
    nspecies = particles.mass.shape[0]
    nconversions = chemistry.precursor.size
    rows_a = -1.0
    rows_b = -1.0
    for s in range(nspecies):
        a = removal.wet_a[s] if n_wet > 0 else 0.0
        wb = removal.wet_b[s] if a > 0.0 else 0.0
        if a != rows_a or wb != rows_b:
            if a > 0.0:
                for q in range(CHUNK):
                    k_wet = wet_coefficient_fast(surface.rain[q], a, wb)
                    k_wet = k_wet if fate.wet[q] > 0.5 else 0.0
                    losses.k_wet[q] = k_wet
                    losses.expm1_wet[q] = fast_expm1(-k_wet * dt)
            else:  # no scavenging: zeros, without evaluating the (vectorised, so unconditional) formula
                for q in range(CHUNK):
                    losses.k_wet[q] = 0.0
                    losses.expm1_wet[q] = 0.0
            rows_a = a
            rows_b = wb
        ef0 = rates.expm1_fixed[0, s]
        ef1 = rates.expm1_fixed[1, s]
        k0 = rates.k_fixed[0, s]
        k1 = rates.k_fixed[1, s]
        # loss / k as loss * (1/k): the reciprocal of the fixed rates once per species, so a particle's
        # share of the loss is the same whether or not its chunk holds particles in rain
        inv0 = 1.0 / k0 if k0 > 0.0 else 0.0
        inv1 = 1.0 / k1 if k1 > 0.0 else 0.0
        ms = particles.mass[s, first:last]
        if rows_a > 0.0:  # scavenged, and particles of this chunk are in rain
            for q in range(CHUNK):
                m = ms[q] if q < nc else 0.0
                dry = fate.dry[q] > 0.5
                k_wet = losses.k_wet[q]
                ew = losses.expm1_wet[q]
                ef = ef1 if dry else ef0
                inv_k = inv1 if dry else inv0
                inv_k = 1.0 / ((k1 if dry else k0) + k_wet) if fate.wet[q] > 0.5 else inv_k
                loss = m * -(ef * (1.0 + ew) + ew) if fate.stays[q] > 0.5 else 0.0
                gone = fate.gone[q] > 0.5
                if q < nc:
                    ms[q] = 0.0 if gone else m - loss
                loss_per_rate = loss * inv_k
                losses.loss_per_rate[q] = loss_per_rate
                losses.dry_loss_per_rate[q] = loss_per_rate if dry else 0.0
                losses.wet_loss[q] = loss_per_rate * k_wet
                losses.left[q] = m if gone else 0.0
            budget[WET_DEPOSITED, s] += chunk_sum(losses.wet_loss)
        else:  # the same without scavenging (e_w = 0)
            for q in range(CHUNK):
                m = ms[q] if q < nc else 0.0
                dry = fate.dry[q] > 0.5
                loss = m * -(ef1 if dry else ef0) if fate.stays[q] > 0.5 else 0.0
                gone = fate.gone[q] > 0.5
                if q < nc:
                    ms[q] = 0.0 if gone else m - loss
                loss_per_rate = loss * (inv1 if dry else inv0)
                losses.loss_per_rate[q] = loss_per_rate
                losses.dry_loss_per_rate[q] = loss_per_rate if dry else 0.0
                losses.left[q] = m if gone else 0.0
        for c in range(nconversions):
            if chemistry.precursor[c] == s and chemistry.product[c] >= 0:
                rate = chemistry.rate[c]
                yield_ = chemistry.yield_[c]
                row = produced[c]
                for q in range(CHUNK):
                    row[q] = losses.loss_per_rate[q] * rate * yield_
        per_rate = chunk_sum(losses.loss_per_rate)
        budget[DRY_DEPOSITED, s] += rates.k_dry[s] * chunk_sum(losses.dry_loss_per_rate)
        budget[DECAYED, s] += removal.decay[s] * per_rate
        budget[CONVERTED, s] += rates.k_chem[s] * per_rate
        budget[LEFT_DOMAIN, s] += chunk_sum(losses.left)
    for c in range(nconversions):
        product = chemistry.product[c]
        if product >= 0:
            ms = particles.mass[product, first:last]
            row = produced[c]
            for q in range(CHUNK):
                if q < nc:
                    ms[q] += row[q]
            budget[PRODUCED, product] += chunk_sum(row)


def _scheme_step(scheme: SchemePasses):
    """Return the processes of a step that depend on the turbulence scheme, with the scheme built in.

    Returns (read_surface, horizontal_turbulence, vertical_turbulence, splitting_vertical), inlined into
    the scheme's kernels: ``vertical_turbulence`` is step 4 with FLEXPART's Euler sub-steps,
    ``splitting_vertical`` the same process with the BAOAB splitting (:func:`_splitting_vertical`); each
    integrator has its own kernels, so a run compiles only the one it uses.

    Every choice the scheme makes (its profiles, the skewed convective PDF, the horizontal diffusion
    limit, the blend weights) is made here, in Python, so the kernel that inlines the step holds that
    scheme's code only.
    """
    (horizontal_pass_neutral, vertical_pass_neutral), (horizontal_pass_unstable, vertical_pass_unstable), (
        horizontal_pass_stable, vertical_pass_stable
    ) = (
        _regime_passes(scheme.horizontal[r], scheme.vertical[r], r, scheme.hanna)
        for r in (NEUTRAL, UNSTABLE, STABLE)
    )
    skewed = scheme.skewed
    long_steps = scheme.long_steps
    packed_profiles = _packed_profiles(scheme)
    pack_round, finish_round = _round_packing(skewed, keep_profiles=False)
    splitting_vertical = _splitting_vertical(packed_profiles, *_round_packing(skewed, keep_profiles=True),
                                             skewed)

    @inline
    def read_surface(state, met, grid, surface):
        """1. Boundary-layer scalars at the particles (bilinear), their Hanna regime and skewness weight.

        The weight of the skewed convective PDF (skewed schemes, -h/L > 5;
        :mod:`airshed.physics.skewed_cbl`) is zero elsewhere. Returns the number of particles in each
        regime (neutral, unstable, stable) and the number with a skewed PDF.
        """
        n_neutral = 0
        n_unstable = 0
        n_stable = 0
        n_skewed = 0
        for q in range(CHUNK):
            i, wx = horizontal_index(state.x[q], grid.x0, grid.dx, grid.nx)
            j, wy = horizontal_index(state.y[q], grid.y0, grid.dx, grid.ny)
            h, us, ws, il, rain = interp_surface(met.surface_t, grid.nx, j, wy, i, wx)
            h = max(h, MIN_MIXING_HEIGHT_M)
            regime = hanna_regime(h, il)
            n_neutral += regime == NEUTRAL
            n_unstable += regime == UNSTABLE
            n_stable += regime == STABLE
            surface.regime[q] = regime
            surface.h[q] = h
            surface.ustar[q] = us
            surface.wstar[q] = ws
            surface.inv_L[q] = il
            surface.rain[q] = rain
            if skewed:  # a closure constant: the branch is pruned before compilation
                minus_h_over_L = -h * il
                skew = skewness_transition(minus_h_over_L) if minus_h_over_L > SKEWED_FROM_H_OVER_L else 0.0
                surface.skew[q] = skew
                n_skewed += skew > 0.0
        return n_neutral, n_unstable, n_stable, n_skewed

    @inline
    def horizontal_turbulence(state, surface, draws, horizontal, turbulence, regimes, dt):
        """2. Horizontal turbulent velocities: Langevin in the mixed layer, random displacement above it.

        The profiles of the regimes present in the chunk only (particles close in space share one). With
        ``long_steps`` (the similarity scheme, whose T_Lu, T_Lv near the ground are seconds) a step longer
        than 2 T_L moves a particle by sigma sqrt(2 T_L / dt) x the new velocity x dt, the displacement of
        the diffusion limit (K = sigma^2 T_L; velocity x dt alone would give sigma^2 dt / 2).
        """
        n_neutral, n_unstable, n_stable, _ = regimes
        if n_neutral > 0:
            horizontal_pass_neutral(state.z, surface, horizontal, turbulence)
        if n_unstable > 0:
            horizontal_pass_unstable(state.z, surface, horizontal, turbulence)
        if n_stable > 0:
            horizontal_pass_stable(state.z, surface, horizontal, turbulence)
        s_free = np.sqrt(2.0 * turbulence.k_free_horizontal / dt)
        for q in range(CHUNK):
            live = state.live[q] > 0.5
            in_bl = state.z[q] <= surface.h[q]
            g_u = draws.horizontal_u[q]
            g_v = draws.horizontal_v[q]
            ru = fast_exp(-dt / horizontal.tl_u[q])
            rv = fast_exp(-dt / horizontal.tl_v[q])
            un_new = ru * state.un[q] + np.sqrt(1.0 - ru * ru) * g_u if in_bl else g_u
            vn_new = rv * state.vn[q] + np.sqrt(1.0 - rv * rv) * g_v if in_bl else g_v
            sig_u = horizontal.sig_u[q]
            sig_v = horizontal.sig_v[q]
            if long_steps:  # a closure constant: the branch is pruned before compilation
                sig_u = min(1.0, np.sqrt(2.0 * horizontal.tl_u[q] / dt)) * sig_u
                sig_v = min(1.0, np.sqrt(2.0 * horizontal.tl_v[q] / dt)) * sig_v
            ut = sig_u * un_new if in_bl else s_free * g_u
            vt = sig_v * vn_new if in_bl else s_free * g_v
            if not turbulence.horizontal:
                ut = 0.0
                vt = 0.0
            state.un[q] = un_new if live else state.un[q]
            state.vn[q] = vn_new if live else state.vn[q]
            horizontal.ut[q] = ut
            horizontal.vt[q] = vt
        if turbulence.mesoscale_sigma > 0.0:
            mesoscale_velocities(state, draws, horizontal, turbulence, dt)

    @inline
    def vertical_turbulence(state, surface, draws, advection, vertical, packed, turbulence, regimes, step):
        """4./5. Vertical turbulence and the move to the new position.

        Mixed-layer particles (z <= h at the start) take Langevin sub-steps of ``step_fraction`` T_Lw with
        reflection at the ground and at h; the first in one vectorised pass, the rest in packed rounds.
        The others take one random displacement with ``k_free_vertical``. Writes x, y, z, w_n of the
        state. Particles with a skewed convective PDF (``surface.skew`` > 0) take the skewed sub-step;
        the chunk runs its costlier passes only when it holds such particles. Returns the number of
        sub-steps taken.
        """
        n_neutral, n_unstable, n_stable, n_skewed = regimes
        if n_neutral > 0:
            vertical_pass_neutral(advection.z_new, surface, vertical, turbulence)
        if n_unstable > 0:
            vertical_pass_unstable(advection.z_new, surface, vertical, turbulence)
        if n_stable > 0:
            vertical_pass_stable(advection.z_new, surface, vertical, turbulence)
        if skewed:  # a closure constant: the branch is pruned before compilation
            if n_skewed > 0:
                substeps = first_pass_skewed(state, surface, draws, advection, vertical, turbulence, step.dt)
            else:
                substeps = first_pass_gaussian(state, surface, draws, advection, vertical, turbulence,
                                               step.dt)
        else:
            substeps = first_pass_gaussian(state, surface, draws, advection, vertical, turbulence, step.dt)
        # further vertical sub-steps (particles whose T_Lw is short against dt), in rounds: the particles
        # with time left are packed at the front of the buffers (gathered from the chunk, in chunk order),
        # a round advances each by its own sub-step in one vectorised pass, then the finished ones are
        # dropped from the pack. Normals: an even round draws a new pair (slots 2 + ksub and 3 + ksub), an
        # odd one takes the pair's second.
        na = 0
        for q in range(CHUNK):
            packed.index[na] = q
            na += vertical.remaining[q] > 0.0
        pack_round(packed, na, state, surface)
        for a in range(na):
            q = packed.index[a]
            packed.remaining[a] = vertical.remaining[q]
            packed.g_second[a] = draws.vertical_second[q]
        ksub = 1
        while na > 0:
            substeps += na
            g_row = draw_round_normals(packed, na, step, draws.key, ksub)
            final_round = ksub == turbulence.max_substeps - 1
            packed_profiles(packed, na, turbulence, regimes)
            if skewed:  # a closure constant: the branch is pruned before compilation
                if n_skewed > 0:
                    packed_round_skewed(packed, g_row, na, turbulence, final_round)
                else:
                    packed_round_gaussian(packed, g_row, na, turbulence, final_round)
            else:
                packed_round_gaussian(packed, g_row, na, turbulence, final_round)
            na = finish_round(packed, na, state)
            ksub += 1
        return substeps

    return read_surface, horizontal_turbulence, vertical_turbulence, splitting_vertical


@inline
def chunk_buffers():
    """Return the chunk's named stack buffers (:class:`ChunkState` ...; the converted mass last)."""
    state = ChunkState(real_buffer(), real_buffer(), real_buffer(), real_buffer(), real_buffer(),
                       real_buffer(), real_buffer(), real_buffer(), real_buffer())
    draws = ChunkDraws(real_buffer(), real_buffer(), real_buffer(), real_buffer(), real_buffer(),
                       real_buffer(), key_buffer())
    surface = ChunkSurface(real_buffer(), real_buffer(), real_buffer(), real_buffer(), real_buffer(),
                           real_buffer(), real_buffer())
    horizontal = ChunkHorizontal(real_buffer(), real_buffer(), real_buffer(), real_buffer(), real_buffer(),
                                 real_buffer())
    advection = ChunkAdvection(real_buffer(), real_buffer(), real_buffer(), real_buffer(), real_buffer(),
                               real_buffer(), index_buffer(), index_buffer())
    vertical = ChunkVertical(real_buffer(), real_buffer(), real_buffer(), real_buffer(), real_buffer(),
                             real_buffer())
    packed = ChunkPacked(index_buffer(), real_buffer(), real_buffer(), real_buffer(), real_buffer(),
                         real_buffer(), real_buffer(), real_buffer(), real_buffer(), real_buffer(),
                         real_buffer(), real_buffer(), real_buffer(), real_buffer(), real_buffer(),
                         real_buffer(), real_buffer(), real_buffer(), key_buffer())
    fate = ChunkFate(real_buffer(), real_buffer(), real_buffer(), real_buffer())
    losses = ChunkRemoval(real_buffer(), real_buffer(), real_buffer(), real_buffer(), real_buffer(),
                          real_buffer())
    produced = carray(stack_buffer(_PRODUCED_SIZE, np.float64), (MAX_CONVERSIONS, CHUNK))
    return state, draws, surface, horizontal, advection, vertical, packed, fate, losses, produced


hanna_read_surface, hanna_horizontal_turbulence, hanna_vertical_turbulence, hanna_splitting_vertical = (
    _scheme_step(HANNA_PASSES)
)
(similarity_read_surface, similarity_horizontal_turbulence, similarity_vertical_turbulence,
 similarity_splitting_vertical) = _scheme_step(SIMILARITY_PASSES)


# The chunk and step kernels, one pair per turbulence scheme and vertical integrator: module-level functions
# (Numba caches them by their source; a kernel made by a factory would be keyed by its closure, which does
# not hash stably), each calling its scheme's processes directly (every level of inlined calls costs compile
# time and memory: with the chunk step moved into one inlined function that the four chunk kernels call,
# compiling the similarity scheme's Euler kernel peaked at 8.32 GB in 3 min 9 s instead of 3.05 GB in
# 1 min 34 s, and the default case's 12-h cut at 3.80 GB instead of 1.31 GB; measured 5 Dec, not adopted).
# One step of particles ``first`` to ``first + nc - 1`` (nc <= CHUNK), process by process: each process is
# a branch-free pass (or a few) over the chunk's named stack buffers (LLVM knows they alias no argument
# array, so the passes vectorise without run-time alias checks); dead particles go through the arithmetic
# but their state is written back unchanged. Removal is added to ``budget[N_BUDGET_TERMS, nspecies]``.
# Returns the number of vertical sub-steps taken.
# Compiled without fastmath: with FMA contraction allowed, two compilations of the same kernel (another
# process, another array layout) rounded some particles differently (the partition test failed when its
# two calls came from different compilations); IEEE-exact arithmetic is the same in every compilation.
@kernel()
def advance_chunk_hanna(first, nc, particles, met, grid, step, turbulence, removal, chemistry, rates, budget):
    """One step of a chunk of particles with the Hanna scheme (see the comment above)."""
    state, draws, surface, horizontal, advection, vertical, packed, fate, losses, produced = chunk_buffers()
    pid = particles.pid[first:first + nc]
    load_chunk(particles, first, nc, grid, state)
    draw_step_normals(pid, nc, step, turbulence, draws)
    regimes = hanna_read_surface(state, met, grid, surface)
    hanna_horizontal_turbulence(state, surface, draws, horizontal, turbulence, regimes, step.dt)
    advect(state, horizontal, met, grid, advection, step.dt)
    substeps = hanna_vertical_turbulence(state, surface, draws, advection, vertical, packed, turbulence,
                                         regimes, step)
    n_wet = particle_fate(state, surface, fate, grid, removal, rates.any_wet)
    store_chunk(particles, first, nc, state, fate)
    sampled_cells(particles, first, nc, state, fate, grid)
    remove_and_convert(particles, first, nc, surface, fate, losses, produced, removal, chemistry, rates,
                       n_wet, step.dt, budget)
    return substeps


@kernel()
def advance_chunk_similarity(first, nc, particles, met, grid, step, turbulence, removal, chemistry, rates,
                             budget):
    """One step of a chunk of particles with the similarity scheme (see the comment above)."""
    state, draws, surface, horizontal, advection, vertical, packed, fate, losses, produced = chunk_buffers()
    pid = particles.pid[first:first + nc]
    load_chunk(particles, first, nc, grid, state)
    draw_step_normals(pid, nc, step, turbulence, draws)
    regimes = similarity_read_surface(state, met, grid, surface)
    similarity_horizontal_turbulence(state, surface, draws, horizontal, turbulence, regimes, step.dt)
    advect(state, horizontal, met, grid, advection, step.dt)
    substeps = similarity_vertical_turbulence(state, surface, draws, advection, vertical, packed, turbulence,
                                              regimes, step)
    n_wet = particle_fate(state, surface, fate, grid, removal, rates.any_wet)
    store_chunk(particles, first, nc, state, fate)
    sampled_cells(particles, first, nc, state, fate, grid)
    remove_and_convert(particles, first, nc, surface, fate, losses, produced, removal, chemistry, rates,
                       n_wet, step.dt, budget)
    return substeps


@kernel()
def advance_chunk_hanna_baoab(first, nc, particles, met, grid, step, turbulence, removal, chemistry, rates,
                              budget):
    """One step of a chunk of particles with the Hanna scheme and the BAOAB splitting (see above)."""
    state, draws, surface, horizontal, advection, vertical, packed, fate, losses, produced = chunk_buffers()
    pid = particles.pid[first:first + nc]
    load_chunk(particles, first, nc, grid, state)
    draw_step_normals(pid, nc, step, turbulence, draws)
    regimes = hanna_read_surface(state, met, grid, surface)
    hanna_horizontal_turbulence(state, surface, draws, horizontal, turbulence, regimes, step.dt)
    advect(state, horizontal, met, grid, advection, step.dt)
    substeps = hanna_splitting_vertical(state, surface, draws, advection, vertical, packed, turbulence,
                                        regimes, step)
    n_wet = particle_fate(state, surface, fate, grid, removal, rates.any_wet)
    store_chunk(particles, first, nc, state, fate)
    sampled_cells(particles, first, nc, state, fate, grid)
    remove_and_convert(particles, first, nc, surface, fate, losses, produced, removal, chemistry, rates,
                       n_wet, step.dt, budget)
    return substeps


@kernel()
def advance_chunk_similarity_baoab(first, nc, particles, met, grid, step, turbulence, removal, chemistry,
                                   rates, budget):
    """One step of a chunk of particles with the similarity scheme and the BAOAB splitting (see above)."""
    state, draws, surface, horizontal, advection, vertical, packed, fate, losses, produced = chunk_buffers()
    pid = particles.pid[first:first + nc]
    load_chunk(particles, first, nc, grid, state)
    draw_step_normals(pid, nc, step, turbulence, draws)
    regimes = similarity_read_surface(state, met, grid, surface)
    similarity_horizontal_turbulence(state, surface, draws, horizontal, turbulence, regimes, step.dt)
    advect(state, horizontal, met, grid, advection, step.dt)
    substeps = similarity_splitting_vertical(state, surface, draws, advection, vertical, packed, turbulence,
                                             regimes, step)
    n_wet = particle_fate(state, surface, fate, grid, removal, rates.any_wet)
    store_chunk(particles, first, nc, state, fate)
    sampled_cells(particles, first, nc, state, fate, grid)
    remove_and_convert(particles, first, nc, surface, fate, losses, produced, removal, chemistry, rates,
                       n_wet, step.dt, budget)
    return substeps


@kernel(parallel=True)
def met_at_step(wind, surface, t0_met, dt_met, t, dt):
    """Return the met a step reads, linear in time: wind at t and t + dt, surface fields at t (float32).

    ``wind[nt, nz, ny, nx, 3]`` and ``surface[nt, ny, nx, 5]`` at times t0_met + k dt_met (s), as in
    :class:`~airshed.model.particle_records.Met`. Returns a :class:`StepMet`: flat ``wind_t``,
    ``wind_t_next`` (rows [nz, ny, 3, nx]) and ``surface_t`` (rows [ny, 5, nx]); computed in parallel over
    the grid rows. Every particle set stepped over the same met and times (the source regions of a run)
    can share them.
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
    return StepMet(wind_now.reshape(size), wind_next.reshape(size), surface_now.reshape(ny * 5 * nx))


@inline
def step_rates(removal, chemistry, nspecies, dt):
    """Return the removal rates of a step (:class:`StepRates`): per species and in/out of the dry layer."""
    k_chem = np.zeros(nspecies)
    for c in range(chemistry.precursor.size):
        k_chem[chemistry.precursor[c]] += chemistry.rate[c]
    k_dry = np.zeros(nspecies)
    k_fixed = np.zeros((2, nspecies))
    expm1_fixed = np.zeros((2, nspecies))
    any_wet = False
    for s in range(nspecies):
        k_dry[s] = dry_deposition_rate(removal.deposition_velocity[s], removal.dry_layer_m)
        for d in range(2):
            k_fixed[d, s] = (k_dry[s] if d == 1 else 0.0) + k_chem[s] + removal.decay[s]
            expm1_fixed[d, s] = np.expm1(-k_fixed[d, s] * dt)
        any_wet = any_wet or removal.wet_a[s] > 0.0
    return StepRates(k_chem, k_dry, k_fixed, expm1_fixed, any_wet)


@kernel(parallel=True)
def advance_particles_hanna(particles, met, grid, step, turbulence, removal, chemistry, block_size,
                            budget_blocks):
    """:func:`advance_particles_in_step_met` with the Hanna scheme."""
    n = particles.n
    rates = step_rates(removal, chemistry, particles.mass.shape[0], step.dt)
    nblocks = (n + block_size - 1) // block_size
    substeps = np.zeros(nblocks, np.int64)
    for b in prange(nblocks):
        for first in range(b * block_size, min(n, (b + 1) * block_size), CHUNK):
            nc = min(CHUNK, n - first, (b + 1) * block_size - first)
            substeps[b] += advance_chunk_hanna(first, nc, particles, met, grid, step, turbulence, removal,
                                               chemistry, rates, budget_blocks[b])
    return substeps.sum()


@kernel(parallel=True)
def advance_particles_similarity(particles, met, grid, step, turbulence, removal, chemistry, block_size,
                                 budget_blocks):
    """:func:`advance_particles_in_step_met` with the similarity scheme."""
    n = particles.n
    rates = step_rates(removal, chemistry, particles.mass.shape[0], step.dt)
    nblocks = (n + block_size - 1) // block_size
    substeps = np.zeros(nblocks, np.int64)
    for b in prange(nblocks):
        for first in range(b * block_size, min(n, (b + 1) * block_size), CHUNK):
            nc = min(CHUNK, n - first, (b + 1) * block_size - first)
            substeps[b] += advance_chunk_similarity(first, nc, particles, met, grid, step, turbulence,
                                                    removal, chemistry, rates, budget_blocks[b])
    return substeps.sum()


@kernel(parallel=True)
def advance_particles_hanna_baoab(particles, met, grid, step, turbulence, removal, chemistry, block_size,
                                  budget_blocks):
    """:func:`advance_particles_in_step_met` with the Hanna scheme and the BAOAB splitting."""
    n = particles.n
    rates = step_rates(removal, chemistry, particles.mass.shape[0], step.dt)
    nblocks = (n + block_size - 1) // block_size
    substeps = np.zeros(nblocks, np.int64)
    for b in prange(nblocks):
        for first in range(b * block_size, min(n, (b + 1) * block_size), CHUNK):
            nc = min(CHUNK, n - first, (b + 1) * block_size - first)
            substeps[b] += advance_chunk_hanna_baoab(first, nc, particles, met, grid, step, turbulence,
                                                     removal, chemistry, rates, budget_blocks[b])
    return substeps.sum()


@kernel(parallel=True)
def advance_particles_similarity_baoab(particles, met, grid, step, turbulence, removal, chemistry, block_size,
                                       budget_blocks):
    """:func:`advance_particles_in_step_met` with the similarity scheme and the BAOAB splitting."""
    n = particles.n
    rates = step_rates(removal, chemistry, particles.mass.shape[0], step.dt)
    nblocks = (n + block_size - 1) // block_size
    substeps = np.zeros(nblocks, np.int64)
    for b in prange(nblocks):
        for first in range(b * block_size, min(n, (b + 1) * block_size), CHUNK):
            nc = min(CHUNK, n - first, (b + 1) * block_size - first)
            substeps[b] += advance_chunk_similarity_baoab(first, nc, particles, met, grid, step, turbulence,
                                                          removal, chemistry, rates, budget_blocks[b])
    return substeps.sum()


#: The step kernel of each vertical integrator and turbulence scheme, by ``Turbulence.integrator``
#: (:data:`EULER`, :data:`BAOAB`) and ``Turbulence.scheme`` (:data:`HANNA`, :data:`SIMILARITY`). Only the
#: kernel a run calls is compiled (or loaded from the cache): a run with FLEXPART's Euler step carries no
#: splitting code and pays none of its compile time or memory.
STEP_KERNELS = (
    (advance_particles_hanna, advance_particles_similarity),
    (advance_particles_hanna_baoab, advance_particles_similarity_baoab),
)


def advance_particles_in_step_met(particles, met, grid, step, turbulence, removal, chemistry, block_size,
                                  budget_blocks):
    """:func:`advance_particles` given the step's met (:class:`StepMet` from :func:`met_at_step`).

    Calls the step kernel of ``turbulence.integrator`` and ``turbulence.scheme`` (:data:`STEP_KERNELS`).
    Returns the number of vertical sub-steps taken by the mixed-layer particles.
    """
    step_kernel = STEP_KERNELS[turbulence.integrator][turbulence.scheme]
    return step_kernel(particles, met, grid, step, turbulence, removal, chemistry, block_size, budget_blocks)


def advance_particles(particles, met, grid, step, turbulence, removal, chemistry, block_size, budget_blocks):
    """Advance every live particle by one step (``step.dt`` s from ``step.t``; see module docstring).

    Parameters are the typed records of :mod:`airshed.model.particle_records`: ``particles`` (the state,
    mutated in place), ``met`` (:class:`Met`: wind and surface fields on the grid's levels at equally
    spaced times; packing puts what one particle reads at a grid corner in one cache line), ``grid``,
    ``step`` (time, length, index and seed: random numbers are keyed by seed, particle id and step),
    ``turbulence``, ``removal`` and ``chemistry`` (:class:`Chemistry`: chemistry indices and rates of the
    first-order conversions). ``budget_blocks[nblocks, N_BUDGET_TERMS, nspecies]`` receives this step's
    removal per block of ``block_size`` particles (kg). Returns the number of vertical sub-steps taken by
    the mixed-layer particles (the work of the step beyond one pass per particle).

    Work done once per step, not per particle: the met linear in time at t and t + dt (the particles
    then read one time level; the step's wind and surface fields are stored in float32, which halves
    their cache footprint and the gathers that read them at a relative rounding of 6e-8, far below the
    accuracy of any met field), and the removal rates and expm1(-k dt) outside rain per (in/out of the
    dry-deposition layer, species).
    """
    step_met = met_at_step(met.wind, met.surface, met.t0, met.dt, step.t, step.dt)
    return advance_particles_in_step_met(particles, step_met, grid, step, turbulence, removal, chemistry,
                                         block_size, budget_blocks)


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


@kernel()
def mark_sampled(cell, tag, touched):
    """Set ``touched[tag, cell]`` for every sampled particle (cell >= 0).

    The (tag, cell) pairs :func:`accumulate_concentration` adds to: everywhere else the field it fills
    stays zero.
    """
    for p in range(cell.size):
        if cell[p] >= 0:
            touched[tag[p], cell[p]] = True


@kernel(parallel=True)
def release_particles(
    first, source_index, particles,
    src_x, src_y, src_half_width, src_z_bottom, src_z_top, src_tag, src_particle_mass,
    ids, step, seed,
):  # fmt: skip
    """Initialise particles ``first + k`` (k < source_index.size) of ``particles`` from ``source_index[k]``.

    A particle starts at its source: uniformly in the square of half-width ``src_half_width`` (m) around
    (src_x, src_y) and uniformly in height between ``src_z_bottom`` and ``src_z_top`` (m AGL); a point
    source has zero half-width and equal heights. Its masses are ``src_particle_mass[source, :]`` (kg),
    its id ``ids[k]``; its position draws and initial normalised velocities (turbulent and mesoscale,
    N(0, 1), the stationary distribution of the Gaussian ones) use the release draw slots of ``step``.
    """
    useed = np.uint64(seed)
    ustep = np.uint64(step)
    # the arrays bound to names before the parallel loop: numba 0.68 drops stores made through a record's
    # fields inside a prange body
    x, y, z, un, vn, wn, um, vm = (particles.x, particles.y, particles.z, particles.un, particles.vn,
                                   particles.wn, particles.um, particles.vm)
    mass, tag, pid = particles.mass, particles.tag, particles.pid
    alive, cell = particles.alive, particles.cell
    for k in prange(source_index.size):
        p = first + k
        s = source_index[k]
        ident = ids[k]
        key = particle_key_scalar(useed, np.uint64(ident))
        ux = uniform_scalar(key, counter_scalar(ustep, np.uint64(RELEASE_FIRST_DRAW)))
        uy = uniform_scalar(key, counter_scalar(ustep, np.uint64(RELEASE_FIRST_DRAW + 1)))
        uz = uniform_scalar(key, counter_scalar(ustep, np.uint64(RELEASE_FIRST_DRAW + 2)))
        g_u, g_v = normal_pair_scalar(key, counter_scalar(ustep, np.uint64(RELEASE_FIRST_DRAW + 3)))
        g_w, g_um = normal_pair_scalar(key, counter_scalar(ustep, np.uint64(RELEASE_FIRST_DRAW + 5)))
        g_vm, _ = normal_pair_scalar(key, counter_scalar(ustep, np.uint64(RELEASE_MESOSCALE_DRAW)))
        x[p] = src_x[s] + (2.0 * ux - 1.0) * src_half_width[s]
        y[p] = src_y[s] + (2.0 * uy - 1.0) * src_half_width[s]
        z[p] = src_z_bottom[s] + uz * (src_z_top[s] - src_z_bottom[s])
        un[p] = g_u
        vn[p] = g_v
        wn[p] = g_w
        um[p] = g_um
        vm[p] = g_vm
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
class SparseField:
    """A field (rows, n_species, ny, nx) that is zero outside the (row, cell) pairs listed.

    What a particle period fills: only the cells its particles were gridded in, per tag. ``pairs`` (n,)
    are ``row * ny * nx + cell``, ascending (row-major), ``values`` (n, n_species) the field there, and
    ``index`` (n, n_species) their places in the dense field flattened (:func:`dense_index`, kept from
    the gridding that took them out, so no reader computes it again). A sum over rows taken pair by pair
    in this order has the bits of the same sum over the dense field row by row: every entry left out is
    +0.0, and x + 0.0 == x.
    """

    pairs: np.ndarray
    values: np.ndarray
    shape: tuple[int, int, int, int]
    index: np.ndarray

    def add_to(self, out: np.ndarray) -> None:
        """Add the field into ``out``, a C-contiguous array laid out as the dense field (same size).

        The pairs are distinct, so each entry of ``out`` gets at most one value: the bits of adding the
        dense field.
        """
        out.reshape(-1)[self.index] += self.values

    def dense(self) -> np.ndarray:
        """Return the field as a new dense array of :attr:`shape`."""
        out = np.zeros(self.shape)
        out.reshape(-1)[self.index] = self.values
        return out


def gridding_buffers(rows: int, n_species: int, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero buffers a particle period is gridded into (:meth:`ParticleRun.advance`).

    The concentration (rows, n_species, n_cells), kg s -> ug m-3 folded in, and the mask of the (row, cell)
    pairs touched (rows, n_cells); an advance leaves both zero, so runs advanced one at a time share them.
    """
    return np.zeros((rows, n_species, n_cells)), np.zeros((rows, n_cells), np.bool_)


def dense_index(pairs: np.ndarray, shape: tuple[int, int, int, int]) -> np.ndarray:
    """(n, n_species) flat indices into a dense (rows, n_species, ny, nx) field of (row, cell) ``pairs``."""
    ns, ncell = shape[1], shape[2] * shape[3]
    row, cell = np.divmod(pairs, ncell)
    return (row * ns)[:, None] * ncell + np.arange(ns) * ncell + cell[:, None]


@dataclass(frozen=True)
class LagrangianParameters:
    """Scalars and per-species arrays of the particle model (units in the names; see module docstring).

    Per-species arrays have one value per species in the order of ``species``. ``conversions`` are the
    mechanism's first-order conversions (default: :func:`airshed.physics.mechanism.default_mechanism`'s);
    a conversion whose precursor the run does not carry is dropped, one whose product it does not carry
    still removes the precursor. Time-scale floors default to FLEXPART's (10 s, 30 s). ``time_reversed``:
    the particles of a backward run (:mod:`airshed.model.backward`; the skewed convective PDF mirrored).
    ``max_substeps``: the most vertical sub-steps of a step (None: the scheme's
    :data:`DEFAULT_MAX_SUBSTEPS`, Hanna's 64 as before the similarity scheme, so that Hanna runs without
    mesoscale motions stay bit for bit those of that core at every step fraction).
    ``turbulence_step_fraction`` is the vertical sub-step as a fraction of T_Lw (None: the scheme's
    :data:`DEFAULT_STEP_FRACTION`, Hanna's 0.5, the similarity scheme's 0.1): the well-mixed test
    (tests/test_lagrangian_validation.py) passes chi-square (p > 0.001) at 0.05 (unstable, stable) and
    0.02 (neutral). With the Euler step (this record's default integrator) at the default 0.5 it does not
    hold: with the default case's steps (300 s) in a neutral 800 m layer (u* 0.43 m/s), 4,000 particles
    uniform at the start put 1.49 (Hanna, 30 s floor everywhere), 1.61 (Hanna) and 1.60 (similarity)
    times the uniform share into the lowest 50 m after 1 h (NumPy twin; 1.38 without the density term);
    at 0.2 1.11, at 0.1 0.96 (Hanna) and 1.03 (similarity), at 0.05 1.00 (binomial sigma 0.06). This was
    the particle core's near-surface excess of 1.34 over the well-mixed value in
    tests/test_cores_share_chemistry.py while the Euler step was the config's default (FLEXPART runs use
    T_Lw / (ctl * ifine) = 1/20); ``vertical_integrator = BAOAB`` keeps the layer well mixed at 0.5.
    """

    species: tuple[str, ...]
    deposition_velocity_m_s: np.ndarray
    wet_a_per_s: np.ndarray
    wet_b: np.ndarray
    decay_per_s: np.ndarray
    conversions: tuple[Conversion, ...] = default_mechanism().conversions
    particles_per_hour: int = 100_000
    max_time_step_s: float = 300.0
    cfl: float = 0.5
    turbulence_scheme: str = "hanna"
    turbulence_step_fraction: float | None = None
    max_substeps: int | None = None
    tl_min_horizontal_s: float = FLEXPART_TL_MIN_HORIZONTAL_S
    tl_min_vertical_s: float = FLEXPART_TL_MIN_VERTICAL_S
    tl_floor_height_m: float = TL_FLOOR_HEIGHT_M
    min_profile_height_m: float = 1.0
    sampling_depth_m: float = 50.0
    dry_layer_m: float = DRY_DEPOSITION_LAYER_M
    wet_top_m: float = np.inf
    k_free_horizontal_m2_s: float = 50.0
    k_free_vertical_m2_s: float = 0.1
    horizontal_turbulence: bool = True
    density_scale_height_m: float = 0.0
    mesoscale_sigma_m_s: float = 0.0
    mesoscale_time_scale_s: float = 3600.0
    time_reversed: bool = False
    vertical_integrator: str = "euler"
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
        if self.turbulence_scheme not in TURBULENCE_SCHEMES:
            raise AirshedInputError(
                f"lagrangian parameters: turbulence_scheme {self.turbulence_scheme!r} is not one of "
                f"{TURBULENCE_SCHEMES}"
            )
        if self.vertical_integrator not in VERTICAL_INTEGRATORS:
            raise AirshedInputError(
                f"lagrangian parameters: vertical_integrator {self.vertical_integrator!r} is not one of "
                f"{VERTICAL_INTEGRATORS}"
            )
        if self.turbulence_step_fraction is None:
            default = DEFAULT_STEP_FRACTION[self.turbulence_scheme]
            object.__setattr__(self, "turbulence_step_fraction", default)
        if not (0.0 < self.cfl <= 1.0 and 0.0 < self.turbulence_step_fraction <= 1.0):
            raise AirshedInputError(
                "lagrangian parameters: cfl and turbulence_step_fraction must be in (0, 1]"
            )
        if self.max_substeps is None:
            object.__setattr__(self, "max_substeps", DEFAULT_MAX_SUBSTEPS[self.turbulence_scheme])
        if not (1 <= self.max_substeps < MESOSCALE_DRAW - 2):
            raise AirshedInputError(
                f"lagrangian parameters: max_substeps must be in [1, {MESOSCALE_DRAW - 3}]"
            )
        if not (self.mesoscale_sigma_m_s >= 0.0 and self.mesoscale_time_scale_s > 0.0):
            raise AirshedInputError(
                "lagrangian parameters: mesoscale_sigma_m_s must be >= 0 and mesoscale_time_scale_s > 0"
            )
        if self.max_time_step_s <= 0.0 or self.sampling_depth_m <= 0.0 or self.dry_layer_m <= 0.0:
            raise AirshedInputError(
                "lagrangian parameters: time step, sampling depth and dry layer must be > 0"
            )
        if not (self.min_profile_height_m > 0.0 and self.tl_floor_height_m >= 0.0):
            raise AirshedInputError(
                "lagrangian parameters: min_profile_height_m must be > 0 and tl_floor_height_m >= 0"
            )
        object.__setattr__(self, "conversions", tuple(self.conversions))
        if len(self.conversions) > MAX_CONVERSIONS:
            raise AirshedInputError(
                f"lagrangian parameters: at most {MAX_CONVERSIONS} first-order conversions, "
                f"got {len(self.conversions)}"
            )

    def index(self, name: str) -> int:
        """Index of a species, -1 when absent."""
        return self.species.index(name) if name in self.species else -1

    def turbulence(self) -> Turbulence:
        """Return the kernel's :class:`~airshed.model.particle_records.Turbulence` record."""
        inv_h = 1.0 / self.density_scale_height_m if self.density_scale_height_m > 0.0 else 0.0
        return Turbulence(
            TURBULENCE_SCHEMES.index(self.turbulence_scheme), float(self.turbulence_step_fraction),
            int(self.max_substeps), float(self.tl_min_horizontal_s), float(self.tl_min_vertical_s),
            float(self.tl_floor_height_m), float(self.min_profile_height_m),
            float(self.k_free_horizontal_m2_s),
            float(self.k_free_vertical_m2_s), bool(self.horizontal_turbulence), float(inv_h),
            float(self.mesoscale_sigma_m_s), float(self.mesoscale_time_scale_s),
            -1.0 if self.time_reversed else 1.0, VERTICAL_INTEGRATORS.index(self.vertical_integrator),
        )

    def removal(self) -> Removal:
        """Return the kernel's :class:`~airshed.model.particle_records.Removal` record."""
        return Removal(self.deposition_velocity_m_s, self.wet_a_per_s, self.wet_b, self.decay_per_s,
                       float(self.dry_layer_m), float(self.wet_top_m))

    def chemistry(self) -> Chemistry:
        """Return the kernel's :class:`~airshed.model.particle_records.Chemistry` record (run's species)."""
        kept = [c for c in self.conversions if c.precursor in self.species]
        return Chemistry(
            np.array([self.index(c.precursor) for c in kept], dtype=np.int64),
            np.array([self.index(c.product) for c in kept], dtype=np.int64),
            np.array([c.rate_per_s for c in kept], dtype=np.float64),
            np.array([c.yield_ for c in kept], dtype=np.float64),
        )


def vertical_substep_keys(scheme: str, step_fraction: float, max_time_step_s: float) -> dict:
    """Return the sub-step keys of :class:`LagrangianParameters` for a vertical sub-step chosen by the user.

    ``step_fraction`` of T_Lw (FLEXPART's 1 / (CTL x IFINE)); the cap on a step's sub-steps is the
    scheme's :data:`DEFAULT_MAX_SUBSTEPS` or, if more, as many as a step of ``max_time_step_s`` (s) takes
    where T_Lw is at its floor (``FLEXPART_TL_MIN_VERTICAL_S``), plus one, so that the cap never shortens a
    Hanna step (the similarity scheme's T_Lw is not floored below 50 m, where its cap decides, as by
    default). With steps of up to 300 s, the scheme's own fraction gives its default cap.
    """
    floor_steps = int(np.ceil(max_time_step_s / (step_fraction * FLEXPART_TL_MIN_VERTICAL_S))) + 1
    return {"turbulence_step_fraction": float(step_fraction),
            "max_substeps": max(DEFAULT_MAX_SUBSTEPS[scheme], floor_steps)}


def turbulence_keys(scheme: str, roughness_length_m: float, met_grid_length_m: float | None) -> dict:
    """Return the turbulence keys of :class:`LagrangianParameters` for a run.

    ``scheme`` (``"hanna"`` or ``"similarity"``; each with its :data:`DEFAULT_STEP_FRACTION`); the lowest
    height of the similarity profiles at the top of the roughness sublayer,
    :data:`~airshed.physics.similarity.ROUGHNESS_SUBLAYER_OVER_Z0` roughness lengths; the unresolved
    mesoscale velocity and its time scale for the met's grid length (m; :mod:`airshed.physics.mesoscale`),
    or none when ``met_grid_length_m`` is None.
    """
    keys = {
        "turbulence_scheme": scheme,
        "min_profile_height_m": ROUGHNESS_SUBLAYER_OVER_Z0 * roughness_length_m,
    }
    if met_grid_length_m is not None:
        keys["mesoscale_sigma_m_s"] = unresolved_velocity_sigma(met_grid_length_m)
        keys["mesoscale_time_scale_s"] = unresolved_time_scale(met_grid_length_m)
    return keys


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

    def record(self) -> Met:
        """Return the packed fields as the kernel's :class:`~airshed.model.particle_records.Met` record."""
        return Met(self.wind, self.surface, float(self.times[0]), float(self.times[1] - self.times[0]))

    def step_met(self, t: float, dt: float) -> StepMet:
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
    n_classes : sampling classes (default 1: none). With ``n > 1`` each particle belongs to the class
        :func:`~airshed.model.release.particle_class` gives it, the tag axis of every result of
        :meth:`advance` is (tag, class) flattened tag-major (``ntag * n`` rows), and the classes are
        independent replicas from which the Monte Carlo error follows (batch means,
        :func:`airshed.uncertainty.statistics.batch_means`). The classes ride on the particles' tags, so
        the particles and kernels are unchanged; ``n = 1`` gives the results of a run without classes bit
        for bit.
    gridding : the buffers each period is gridded into, :func:`gridding_buffers` ``(ntag * n_classes,
        nspecies, ny * nx)``; every :meth:`advance` leaves them zero, so runs advanced one at a time may
        share them (default: the run's own, made at its first :meth:`advance`).

    Each :meth:`advance` call is one emission period; the period index is part of the particle ids
    (:func:`airshed.model.release.particle_ids`) and of the random-number step, so runs that advance
    period by period over the same periods give a particle of a given source the same id and random path
    (common random numbers), and a run that starts at ``first_period`` moves its particles as a run from
    period 0 would.
    """

    def __init__(
        self, x0: float, y0: float, dx: float, nx: int, ny: int, z_top: float, ntag: int,
        params: LagrangianParameters, seed: int, first_period: int = 0, n_classes: int = 1,
        gridding: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:  # fmt: skip
        if nx < 2 or ny < 2 or dx <= 0.0 or z_top <= 0.0 or ntag < 1 or n_classes < 1:
            raise AirshedInputError("particle run: need nx, ny >= 2, dx > 0, z_top > 0, ntag >= 1 and "
                                    "n_classes >= 1")
        self.n_classes = int(n_classes)
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
        # work counters: particle-steps and particle-seconds stepped (slots, live or not), vertical sub-steps
        self.particle_steps = 0
        self.particle_seconds = 0.0
        self.substeps = 0
        self._turbulence, self._removal = params.turbulence(), params.removal()
        self._chemistry = params.chemistry()
        # made at the first advance: runs that never grid (backward runs, with a row per receptor, period
        # and batch) would otherwise hold rows x species x cells they never use
        self._gridding = gridding

    def _allocate(self, capacity: int) -> None:
        ns = len(self.params.species)
        old = getattr(self, "x", None)
        arrays = {
            "x": np.zeros(capacity), "y": np.zeros(capacity), "z": np.zeros(capacity),
            "un": np.zeros(capacity), "vn": np.zeros(capacity), "wn": np.zeros(capacity),
            "um": np.zeros(capacity), "vm": np.zeros(capacity),
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
        self._move_survivors(keep)
        self.n = keep.size

    def _move_survivors(self, keep: np.ndarray) -> None:
        """Move the particles ``keep`` (indices, in their new order) to the front of every state array."""
        for name in ("x", "y", "z", "un", "vn", "wn", "um", "vm", "tag", "pid", "alive", "cell"):
            a = getattr(self, name)
            a[: keep.size] = a[keep]
        self.mass[:, : keep.size] = self.mass[:, keep]

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
            self.n, source_index, Particles(*self._arrays(), self.x.size),
            sources.x, sources.y, sources.half_width, sources.z_bottom, sources.z_top, sources.tag,
            particle_mass, ids, self.step, self.seed,
        )  # fmt: skip
        if self.n_classes > 1:  # sampling classes ride on the tags: (tag, class) flattened, tag-major
            new = slice(self.n, self.n + count)
            in_run = self._released_before_period[source_index] + index_in_source
            self.tag[new] = self.tag[new] * self.n_classes + particle_class(ids, in_run, self.n_classes)
        self.emitted += (due[:, None] * particle_mass).sum(axis=0)
        self.n += count

    def _arrays(self) -> tuple[np.ndarray, ...]:
        """Return the whole state arrays (capacity, not only the live part) in :class:`Particles` order."""
        return tuple(getattr(self, name) for name in Particles._fields[:-1])

    def state_arrays(self) -> tuple[np.ndarray, ...]:
        """Return views of the live state in the order of :class:`Particles`.

        (x, y, z, un, vn, wn, um, vm, mass, tag, pid, alive, cell)
        """
        n = self.n
        return tuple(a[..., :n] for a in self._arrays())

    def particles(self) -> Particles:
        """Return the state as the kernels' :class:`~airshed.model.particle_records.Particles` record.

        The whole arrays (contiguous, so every call has the same types) with ``n`` the slots in use.
        """
        return Particles(*self._arrays(), self.n)

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
        allocation: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> SparseField:
        """Release and move particles over [t_start, t_end) s; return conc[ntag, nspecies, ny, nx] in ug/m3.

        The concentration is a :class:`SparseField` (the (tag, cell) pairs the particles were gridded
        in; ``.dense()`` for the array). With sampling classes the first axis holds ``ntag * n_classes``
        rows, (tag, class) tag-major.

        The concentration is the mean over the period of the particle mass below ``sampling_depth_m``
        per cell volume dx * dx * sampling_depth (residence-time weighted at every step, kg s ->
        ug m-3). The emission rates of ``sources`` hold over the whole period. Each source gains
        ``particle_share`` particles of credit (default :meth:`particle_shares` of ``sources``; a run over
        a subset of a study's sources passes the full table's shares, taken at the subset) and releases
        the whole particles of its credit with the mass it emitted since its last release
        (:class:`~airshed.model.release.ParticleCredit`). ``allocation`` (particles per source, mass
        per particle and particles released before this period per source, from a
        :class:`~airshed.model.release.ParticleCredit` kept by the caller) replaces that: several runs
        (release windows) then share one credit.
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
                n_per_period, particle_mass, self._released_before_period = allocation
            else:
                if particle_share is None:
                    particle_share = self.particle_shares(sources, period)
                n_per_period, particle_mass = self.credit.allocate(
                    sources.source_id, particle_share, sources.rate * period
                )
                self._released_before_period = self.credit.released[sources.source_id] - n_per_period
        else:
            n_per_period = np.zeros(0, np.int64)
        nsteps, dt = self.time_step(met, period)
        if nsteps >= 1 << STEP_IN_PERIOD_BITS:
            raise AirshedInputError(
                f"particle run: {nsteps} steps in one period (at most 2**{STEP_IN_PERIOD_BITS})"
            )
        first_step = self.period_index << STEP_IN_PERIOD_BITS
        to_ug_m3 = 1e9 / (self.dx * self.dx * p.sampling_depth_m * period)
        if self._gridding is None:
            self._gridding = gridding_buffers(self.ntag * self.n_classes, len(p.species), self.ny * self.nx)
        conc, touched = self._gridding
        for k in range(nsteps):
            t = t_start + k * dt
            self.step = first_step + k
            if n_per_period.size:
                self.release(sources, n_per_period, t_start, period, t, dt, particle_mass)
            self.step_once(met, t, dt)
            if self.n:
                n = self.n
                # kg s -> ug m-3 folded into each step's weight: no pass over the (mostly untouched) field
                mark_sampled(self.cell[:n], self.tag[:n], touched)
                accumulate_concentration(self.cell[:n], self.tag[:n], self.mass[:, :n], dt * to_ug_m3, conc)
        self.period_index += 1
        return self._take_field(conc, touched)

    def _take_field(self, conc: np.ndarray, touched: np.ndarray) -> SparseField:
        """Take the period's concentration where the particles were gridded, leaving the buffers zero."""
        rows, ns, _ = conc.shape
        pairs = np.flatnonzero(touched)
        touched.reshape(-1)[pairs] = False
        shape = (rows, ns, self.ny, self.nx)
        index = dense_index(pairs, shape)
        flat = conc.reshape(-1)
        values = flat[index]
        flat[index] = 0.0
        return SparseField(pairs, values, shape, index)

    def step_once(self, met: MetWindow, t: float, dt: float) -> None:
        """Advance all particles by one step of ``dt`` s from ``t`` (no release, no gridding)."""
        p = self.params
        ns = len(p.species)
        if self.n:
            nblocks = (self.n + p.block_size - 1) // p.block_size
            blocks = np.zeros((nblocks, N_BUDGET_TERMS, ns))
            grid = Grid(self.x0, self.y0, self.dx, self.nx, self.ny, met.z_levels.size, met.z_levels,
                        self.z_top, float(p.sampling_depth_m))
            step = Step(float(t), float(dt), np.uint64(self.step), np.uint64(self.seed))
            self.substeps += advance_particles_in_step_met(
                self.particles(), met.step_met(t, dt), grid, step, self._turbulence,
                self._removal, self._chemistry, p.block_size, blocks,
            )
            self.particle_steps += self.n
            self.particle_seconds += self.n * dt
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
        run.advance(met_for_period(k), sources_for_period(k), float(t0), float(t0) + period_s).dense()
        for k, t0 in enumerate(period_starts)
    ]
    return np.stack(conc), run.budget()
