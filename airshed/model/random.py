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

GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S16 = np.uint64(16)
_TWO_PI = 6.283185307179586
_INV_2_53 = 1.0 / 9007199254740992.0

#: Draws per step per particle: counter = step * DRAWS_PER_STEP + draw.
DRAWS_PER_STEP = 65536
#: First of the draw slots (up to 2**16 - 1) reserved for a particle's release position and velocities.
RELEASE_FIRST_DRAW = 65529


def _mix64(z):
    """SplitMix64 finaliser (Steele et al. 2014): a 64-bit bijection with full avalanche."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _counter(step, draw):
    """Counter of a draw in a step: step * 2**16 + draw (draw < 2**16)."""
    return (step << _S16) + draw


def _build(mix, compile_):
    """Compose key, uniform and normal-pair functions over ``mix``, written once for kernel and twin.

    ``compile_`` is :func:`airshed.jit.inline` for the Numba helpers and the identity for NumPy arrays.
    """

    def particle_key(seed, pid):
        """64-bit key of one particle: the SplitMix64 stream of the seed evaluated at the particle id."""
        return mix(mix(seed + GOLDEN_GAMMA) + pid * GOLDEN_GAMMA)

    def uniform(key, counter):
        """Uniform deviate in (0, 1) from a key and a counter (53 random bits, midpoint-offset)."""
        bits = mix(mix(key ^ mix(counter + GOLDEN_GAMMA)))
        return ((bits >> _S11) + 0.5) * _INV_2_53

    uniform = compile_(uniform)

    def normal_pair(key, counter):
        """Two independent standard normals by Box & Muller (1958) from draws counter, counter + 1."""
        u1 = uniform(key, counter)
        u2 = uniform(key, counter + np.uint64(1))
        r = np.sqrt(-2.0 * np.log(u1))
        angle = _TWO_PI * u2
        return r * np.cos(angle), r * np.sin(angle)

    return compile_(particle_key), uniform, compile_(normal_pair)


mix64_scalar = inline(_mix64)
counter_scalar = inline(_counter)
particle_key_scalar, uniform_scalar, normal_pair_scalar = _build(mix64_scalar, inline)
_particle_key, _uniform, _normal_pair = _build(_mix64, lambda f: f)


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
