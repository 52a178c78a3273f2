"""Counter-based random numbers for the particle model: one value per (seed, particle id, step, draw).

A particle's random numbers are a pure function of its key and a counter, never of a shared generator
state, so results are bit-identical for any thread count and any partition of the particles into chunks
(the idea of Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3", SC'11). The hash is the
SplitMix64 finaliser (Steele, Lea & Flood 2014, OOPSLA; the variant constants "Mix13" of D. Stafford),
a bijection on 64-bit integers with full avalanche:

- key(seed, id) = mix(mix(seed + G) + id * G): distinct ids give distinct keys (mix is a bijection);
- bits(key, counter) = mix(mix(key ^ mix(counter + G))), counter = step * 2**16 + draw.

Uniforms take the top 53 bits and lie strictly inside (0, 1); normals come in pairs by Box & Muller
(1958), which is branch-free (no rejection), so a loop over particles vectorises.

Every function here is written once and works both as a Numba scalar helper (``*_scalar`` names,
compiled through :func:`airshed.jit.inline`) and on NumPy ``uint64`` arrays (the reference twin and
tests), so kernel and twin draw exactly the same numbers.
"""

from __future__ import annotations

import numpy as np

from airshed.jit import inline
from airshed.model.fastmath import fast_log

GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S16 = np.uint64(16)
_INV_2_53 = 1.0 / 9007199254740992.0

#: Draws per step per particle: counter = step * DRAWS_PER_STEP + draw.
DRAWS_PER_STEP = 65536
#: First of the draw slots (up to 2**16 - 1) reserved for a particle's release position and turbulent
#: velocities (and the first of its two mesoscale velocities, the spare normal of the pair of w).
RELEASE_FIRST_DRAW = 65529
#: The pair of draw slots of the release's second mesoscale velocity: below the slots above, which stay
#: those of the particle core before the mesoscale motions (its outputs bit for bit with them off).
RELEASE_MESOSCALE_DRAW = RELEASE_FIRST_DRAW - 2
#: The pair of draw slots of a step's unresolved mesoscale velocities (below the release slots).
MESOSCALE_DRAW = RELEASE_MESOSCALE_DRAW - 2


def _mix64(z):
    """SplitMix64 finaliser (Steele et al. 2014): a 64-bit bijection with full avalanche."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


mix64 = _mix64
"""The SplitMix64 finaliser on NumPy ``uint64`` arrays (a bijection: hashes of distinct values differ)."""


def _counter(step, draw):
    """Counter of a draw in a step: step * 2**16 + draw (draw < 2**16)."""
    return (step << _S16) + draw


# Taylor coefficients of sin and cos on [-pi/4, pi/4] (truncation error < 5e-17).
_S3, _S5, _S7, _S9, _S11c, _S13, _S15 = (
    -1.0 / 6.0, 1.0 / 120.0, -1.0 / 5040.0, 1.0 / 362880.0, -1.0 / 39916800.0, 1.0 / 6227020800.0,
    -1.0 / 1307674368000.0,
)  # fmt: skip
_C2, _C4, _C6, _C8, _C10, _C12, _C14, _C16 = (
    -0.5, 1.0 / 24.0, -1.0 / 720.0, 1.0 / 40320.0, -1.0 / 3628800.0, 1.0 / 479001600.0,
    -1.0 / 87178291200.0, 1.0 / 20922789888000.0,
)  # fmt: skip
_HALF_PI = 1.5707963267948966


def _cos_sin_turn(v):
    """cos(2 pi v), sin(2 pi v) for v in [0, 1], branch-free (quadrant reduction + Taylor polynomials).

    libm's sin/cos cost ~50 ns each here (scalar calls that block vectorisation); this costs a few ns and
    is accurate to ~1e-16, written once for Numba scalars and NumPy arrays.
    """
    t = 4.0 * v
    q = np.floor(t + 0.5)
    th = (t - q) * _HALF_PI
    th2 = th * th
    s = th * (
        1.0
        + th2 * (_S3 + th2 * (_S5 + th2 * (_S7 + th2 * (_S9 + th2 * (_S11c + th2 * (_S13 + th2 * _S15))))))
    )
    c = 1.0 + th2 * (
        _C2
        + th2 * (_C4 + th2 * (_C6 + th2 * (_C8 + th2 * (_C10 + th2 * (_C12 + th2 * (_C14 + th2 * _C16))))))
    )
    cq = (q == 0.0) * 1.0 + (q == 4.0) * 1.0 - (q == 2.0) * 1.0
    sq = (q == 1.0) * 1.0 - (q == 3.0) * 1.0
    return c * cq - s * sq, s * cq + c * sq


def _build(mix, compile_, log=np.log):
    """Compose key, uniform, Box-Muller and normal-pair functions over ``mix``, written once for all uses.

    ``compile_`` is :func:`airshed.jit.inline` for the Numba helpers and the identity for NumPy arrays;
    ``log`` is the logarithm of Box-Muller's radius.
    """

    def particle_key(seed, pid):
        """64-bit key of one particle: the SplitMix64 stream of the seed evaluated at the particle id."""
        return mix(mix(seed + GOLDEN_GAMMA) + pid * GOLDEN_GAMMA)

    def uniform(key, counter):
        """Uniform deviate in (0, 1) from a key and a counter (53 random bits, midpoint-offset)."""
        bits = mix(mix(key ^ mix(counter + GOLDEN_GAMMA)))
        return ((bits >> _S11) + 0.5) * _INV_2_53

    uniform = compile_(uniform)
    cos_sin = compile_(_cos_sin_turn)

    def box_muller(u1, u2):
        """Two independent standard normals from two uniforms in (0, 1) (Box & Muller 1958)."""
        r = np.sqrt(-2.0 * log(u1))
        c, s = cos_sin(u2)
        return r * c, r * s

    box_muller = compile_(box_muller)

    def normal_pair(key, counter):
        """Two independent standard normals by Box & Muller (1958) from draws counter, counter + 1."""
        return box_muller(uniform(key, counter), uniform(key, counter + np.uint64(1)))

    return compile_(particle_key), uniform, box_muller, compile_(normal_pair)


mix64_scalar = inline(_mix64)
counter_scalar = inline(_counter)
particle_key_scalar, uniform_scalar, _, normal_pair_scalar = _build(mix64_scalar, inline)
_particle_key, _uniform, _, _normal_pair = _build(_mix64, lambda f: f)
#: Box-Muller with the branch-free :func:`airshed.model.fastmath.fast_log` (within 2 ulp of libm's): a
#: loop of it vectorises, so kernels draw a block's first normals in one pass. Its normals differ from
#: :data:`normal_pair_scalar`'s by rounding only (relative ~1e-16).
box_muller_vector_scalar = _build(mix64_scalar, inline, fast_log)[2]


def _as_u64(a) -> np.ndarray:
    return np.asarray(a).astype(np.uint64)


# Unsigned wrap-around is the arithmetic of the hash; NumPy would warn about it on scalars.


def particle_keys(seed: int, pid: np.ndarray) -> np.ndarray:
    """Keys (uint64) of particles ``pid`` under ``seed`` (NumPy twin of :data:`particle_key_scalar`)."""
    with np.errstate(over="ignore"):
        return _particle_key(np.uint64(seed), _as_u64(pid))


def uniforms(seed: int, pid: np.ndarray, step: int, draw: int) -> np.ndarray:
    """Uniform deviates in (0, 1) for particles ``pid`` at ``step``, draw slot ``draw``."""
    keys = particle_keys(seed, pid)
    with np.errstate(over="ignore"):
        return _uniform(keys, _counter(np.uint64(step), np.uint64(draw)))


def normal_pairs(seed: int, pid: np.ndarray, step: int, draw: int) -> tuple[np.ndarray, np.ndarray]:
    """Return standard normal pairs for particles ``pid`` at ``step`` from slots ``draw``, ``draw + 1``."""
    keys = particle_keys(seed, pid)
    with np.errstate(over="ignore"):
        return _normal_pair(keys, _counter(np.uint64(step), np.uint64(draw)))
