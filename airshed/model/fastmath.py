"""Branch-free, vectorisable exp and log for the hot loops.

``math.exp`` / ``math.log`` inside a Numba loop compile to calls into libm that LLVM does not vectorise
(measured ~10x slower per plume pair, ../shared/STYLE.md). The two functions here are plain arithmetic
plus one integer/float bit cast, so LLVM turns a loop that calls them into AVX-512 code.

- :func:`fast_exp`: Cody & Waite (1980, *Software Manual for the Elementary Functions*, ch. 6) range
  reduction x = k ln2 + r with ln2 split in a high part exact in 11 significant bits and a low part,
  |r| <= ln2/2, then exp(r) by its Taylor polynomial of degree 13 (truncation < 4e-18 relative) in Horner
  form, and the scale 2**k built by writing k + 1023 into the exponent field. Arguments are clamped to
  [-708, 709]; below -708 the result is 0 (the true value is < 3.3e-308, a denormal), which is the only
  departure from correctly rounded behaviour beyond a few ulp. Measured: max relative error vs numpy
  2.3e-16 on [-708, 709] (tests/test_plume_fastmath.py).
- Both are ordinary (not Numba-IR-inlined) compiled functions: LLVM inlines them into each calling loop
  and vectorises it, while Numba types and compiles them only once (IR inlining of every call site was
  most of the plume kernels' former 100 s compile time). FMA contraction is on (airshed.jit's safe flags).
- :func:`fast_exp_above`: exp(x), exactly 0 at and below a floor, in fewer operations (the plume kernels'
  exponential): k = round(x / ln 2) by adding 1.5 * 2**52 + 1023 (the rounding of that addition leaves
  k + 1023 in the low mantissa bits, which a shift moves into the exponent field: no float-to-integer
  conversion), the same Cody-Waite reduction, and exp(r) by the degree-11 minimax polynomial for relative
  error on |r| <= ln2/2 (Remez exchange in 50-digit arithmetic; truncation 3.1e-18, as the degree-13
  Taylor polynomial). 21 vector operations instead of 28 for ``fast_exp`` plus a floor select. Measured:
  max relative error vs numpy 2.3e-16 on [-708, 709] (tests/test_plume_fastmath.py).
- :func:`fast_ln`: :func:`fast_log` with the series replaced by the degree-7 minimax polynomial in s^2 for
  relative error on |s| <= 0.1716 (Remez exchange in 50-digit arithmetic; 1.1e-18): 8 coefficients
  instead of 12, and fewer constants held in vector registers (the plume kernels' power laws need an exp
  and a log per pair). Measured: max relative error vs numpy 4.4e-16 (tests/test_plume_fastmath.py).
- :func:`fast_log`: x = 2**e m with m in [sqrt(1/2), sqrt(2)) from the bit pattern, then
  ln m = 2 atanh(s), s = (m - 1)/(m + 1), |s| <= 0.1716, by its odd series to s**23 (truncation < 1e-18),
  plus e ln2 (split as above). Valid for positive normal x; 0, negatives, inf and NaN are not handled
  (callers pass 1 + b x with b x >= 0).
- :func:`fast_expm1`: exp(x) - 1 with the reduction of :func:`fast_exp` and the Taylor polynomial of
  exp(r) - 1 (no leading 1, so no cancellation for small x), then 2**k (exp(r) - 1) + (2**k - 1).
- :func:`fast_cbrt`: x**(1/3) for positive normal x as exp(ln(x) / 3) refined by one Newton step.
"""

from __future__ import annotations

import math

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from airshed.jit import inline, kernel

_LOG2E = 1.4426950408889634
_LN2_HI = 0.693145751953125  # ln 2 rounded to 11 significant bits: k * _LN2_HI is exact for |k| < 2**42
_LN2_LO = 1.4286068203094173e-06  # ln 2 - _LN2_HI
_EXP_LO = -708.0
_EXP_HI = 709.0
_SQRT_HALF = 0.7071067811865476
# degree-7 minimax polynomial of 2 atanh(s)/s in s^2 on s^2 <= (3 - 2 sqrt 2)^2 (relative error 1.1e-18)
_LN_C1 = 0.6666666666666765
_LN_C2 = 0.3999999999929888
_LN_C3 = 0.2857142876134704
_LN_C4 = 0.22222196988215934
_LN_C5 = 0.1818363509563823
_LN_C6 = 0.15312443726473735
_LN_C7 = 0.14810530089115906
_ROUND_SHIFT = 6755399441055744.0 + 1023.0  # 1.5 * 2**52 + exponent bias
# degree-11 minimax polynomial of exp on [-ln2/2, ln2/2] (relative error 3.05e-18); c0 = c1 = 1.0
_EXP_C2 = 0.5000000000000018
_EXP_C3 = 0.1666666666666617
_EXP_C4 = 0.04166666666649277
_EXP_C5 = 0.00833333333355927
_EXP_C6 = 0.0013888888951223987
_EXP_C7 = 0.00019841269432679237
_EXP_C8 = 2.4801486521427463e-05
_EXP_C9 = 2.7557622530872255e-06
_EXP_C10 = 2.7632293279459877e-07
_EXP_C11 = 2.4994304884817207e-08


@intrinsic
def _int64_bits_as_float64(typingctx, bits):
    """Reinterpret the 64 bits of an int64 as a float64 (an LLVM ``bitcast``; free and vectorisable)."""
    if not isinstance(bits, types.Integer):
        return None
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def _float64_bits_as_int64(typingctx, value):
    """Reinterpret the 64 bits of a float64 as an int64 (an LLVM ``bitcast``)."""
    if not isinstance(value, types.Float):
        return None
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@inline
def _exp_reduced(x: float) -> tuple[float, float, float]:
    """Cody-Waite reduction x = k ln 2 + r and q = expm1(r) / r (Taylor, degree 12, Horner form).

    exp(x) = 2^k (1 + r q) and expm1(x) = 2^k r q + (2^k - 1); shared by :func:`fast_exp` and
    :func:`fast_expm1` (x clamped to the finite range first).
    """
    xc = min(max(x, _EXP_LO), _EXP_HI)
    k = math.floor(xc * _LOG2E + 0.5)
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    return k, r, p


@kernel(fastmath=True)
def fast_exp(x: float) -> float:
    """exp(x) to ~2 ulp, branch-free (Cody-Waite reduction + degree-13 Taylor polynomial); 0 below -708."""
    k, r, p = _exp_reduced(x)
    p = p * r + 1.0
    scale = _int64_bits_as_float64((int(k) + 1023) << 52)
    result = p * scale
    return result if x >= _EXP_LO else 0.0


@kernel(fastmath=True)
def fast_exp_above(x: float, floor: float) -> float:
    """exp(x) for floor < x <= 709 to ~2 ulp, exactly 0 for x <= floor (floor >= -708); branch-free.

    k = round(x log2 e) by the 1.5 * 2**52 + 1023 shift, Cody-Waite reduction, degree-11 minimax
    polynomial (module docstring).
    """
    xc = min(max(x, floor), _EXP_HI)
    kd = xc * _LOG2E + _ROUND_SHIFT
    k = kd - _ROUND_SHIFT
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    p = _EXP_C11
    p = p * r + _EXP_C10
    p = p * r + _EXP_C9
    p = p * r + _EXP_C8
    p = p * r + _EXP_C7
    p = p * r + _EXP_C6
    p = p * r + _EXP_C5
    p = p * r + _EXP_C4
    p = p * r + _EXP_C3
    p = p * r + _EXP_C2
    p = p * r + 1.0
    p = p * r + 1.0
    scale = _int64_bits_as_float64(_float64_bits_as_int64(kd) << 52)
    return p * scale if x > floor else 0.0


@kernel(fastmath=True)
def fast_log(x: float) -> float:
    """ln(x) for positive normal x to ~2 ulp, branch-free (exponent split + atanh series)."""
    bits = _float64_bits_as_int64(x)
    e = ((bits >> 52) & 0x7FF) - 1023
    m = _int64_bits_as_float64((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = m > 2.0 * _SQRT_HALF
    m = m * 0.5 if big else m
    ef = float(e + 1) if big else float(e)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = 2.0 / 23.0
    p = p * s2 + 2.0 / 21.0
    p = p * s2 + 2.0 / 19.0
    p = p * s2 + 2.0 / 17.0
    p = p * s2 + 2.0 / 15.0
    p = p * s2 + 2.0 / 13.0
    p = p * s2 + 2.0 / 11.0
    p = p * s2 + 2.0 / 9.0
    p = p * s2 + 2.0 / 7.0
    p = p * s2 + 2.0 / 5.0
    p = p * s2 + 2.0 / 3.0
    p = p * s2 + 2.0
    return (ef * _LN2_HI + s * p) + ef * _LN2_LO


@kernel(fastmath=True)
def fast_expm1(x: float) -> float:
    """exp(x) - 1 to a few ulp, branch-free; accurate for small |x| (no cancellation); -1 below -708."""
    k, r, p = _exp_reduced(x)
    p = p * r
    scale = _int64_bits_as_float64((int(k) + 1023) << 52)
    return scale * p + (scale - 1.0)


def cbrt_over(exp, log):
    """Cube root of a positive normal x as exp(ln(x) / 3) refined by one Newton step, over ``exp``, ``log``.

    Written once; :func:`fast_cbrt` is it over :func:`fast_exp` and :func:`fast_log` (a kernel that inlines
    those at the Numba level builds its own over the inlined forms).
    """

    def cbrt(x: float) -> float:
        """Cube root of a positive normal x to ~1 ulp, branch-free: exp(ln(x) / 3) and one Newton step."""
        y = exp(log(x) * (1.0 / 3.0))
        return y - (y - x / (y * y)) * (1.0 / 3.0)

    return cbrt


fast_cbrt = kernel(fastmath=True)(cbrt_over(fast_exp, fast_log))


@kernel(fastmath=True)
def fast_ln(x: float) -> float:
    """ln(x) for positive normal x to ~2 ulp, branch-free (:func:`fast_log` with a shorter minimax tail)."""
    bits = _float64_bits_as_int64(x)
    e = ((bits >> 52) & 0x7FF) - 1023
    m = _int64_bits_as_float64((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = m > 2.0 * _SQRT_HALF
    m = m * 0.5 if big else m
    ef = float(e + 1) if big else float(e)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = _LN_C7
    p = p * s2 + _LN_C6
    p = p * s2 + _LN_C5
    p = p * s2 + _LN_C4
    p = p * s2 + _LN_C3
    p = p * s2 + _LN_C2
    p = p * s2 + _LN_C1
    p = p * s2 + 2.0
    return (ef * _LN2_HI + s * p) + ef * _LN2_LO


# --------------------------------------------------------------------------------------------------
# Explicitly fused variants (for the particle kernel). FMA contraction left to LLVM (fastmath
# ``contract``) is decided per compilation, so two compilations of one kernel can round differently;
# an explicit ``llvm.fma.f64`` is a single rounding wherever it is compiled (IEEE 754 fusedMultiplyAdd),
# so results are the same in every compilation. They differ from the unfused functions above in the
# last bits only; the plume kernels keep those.
# --------------------------------------------------------------------------------------------------


@intrinsic
def fma(typingctx, a, b, c):
    """Return a * b + c rounded once (``llvm.fma.f64``; one vector instruction on FMA CPUs).

    Integer arguments are converted to float64 first (as ``a * b + c`` would).
    """
    if not all(isinstance(v, (types.Float, types.Integer)) for v in (a, b, c)):
        return None
    sig = types.float64(a, b, c)

    def codegen(context, builder, signature, args):
        double = ir.DoubleType()
        args = [context.cast(builder, v, t, types.float64) for v, t in zip(args, signature.args, strict=True)]
        fnty = ir.FunctionType(double, [double, double, double])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.fma.f64")
        return builder.call(fn, args)

    return sig, codegen


@inline
def _exp_reduced_fma(x: float) -> tuple[float, float, float]:
    """:func:`_exp_reduced` with the reduction and the Horner steps fused (:func:`fma`)."""
    xc = min(max(x, _EXP_LO), _EXP_HI)
    k = math.floor(xc * _LOG2E + 0.5)
    r = fma(-k, _LN2_LO, fma(-k, _LN2_HI, xc))
    p = 1.0 / 6227020800.0
    p = fma(p, r, 1.0 / 479001600.0)
    p = fma(p, r, 1.0 / 39916800.0)
    p = fma(p, r, 1.0 / 3628800.0)
    p = fma(p, r, 1.0 / 362880.0)
    p = fma(p, r, 1.0 / 40320.0)
    p = fma(p, r, 1.0 / 5040.0)
    p = fma(p, r, 1.0 / 720.0)
    p = fma(p, r, 1.0 / 120.0)
    p = fma(p, r, 1.0 / 24.0)
    p = fma(p, r, 1.0 / 6.0)
    p = fma(p, r, 0.5)
    p = fma(p, r, 1.0)
    return k, r, p


def fast_exp_fma_py(x: float) -> float:
    """:func:`fast_exp` with its Horner steps and Cody-Waite reduction fused (:func:`fma`)."""
    k, r, p = _exp_reduced_fma(x)
    p = fma(p, r, 1.0)
    scale = _int64_bits_as_float64((int(k) + 1023) << 52)
    result = p * scale
    return result if x >= _EXP_LO else 0.0


def fast_expm1_fma_py(x: float) -> float:
    """:func:`fast_expm1` with its Horner steps, reduction and reconstruction fused (:func:`fma`)."""
    k, r, p = _exp_reduced_fma(x)
    p = p * r
    scale = _int64_bits_as_float64((int(k) + 1023) << 52)
    return fma(scale, p, scale - 1.0)


def fast_log_fma_py(x: float) -> float:
    """:func:`fast_log` with its Horner steps and the final e ln 2 + s p fused (:func:`fma`)."""
    bits = _float64_bits_as_int64(x)
    e = ((bits >> 52) & 0x7FF) - 1023
    m = _int64_bits_as_float64((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = m > 2.0 * _SQRT_HALF
    m = m * 0.5 if big else m
    ef = float(e + 1) if big else float(e)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = 2.0 / 23.0
    p = fma(p, s2, 2.0 / 21.0)
    p = fma(p, s2, 2.0 / 19.0)
    p = fma(p, s2, 2.0 / 17.0)
    p = fma(p, s2, 2.0 / 15.0)
    p = fma(p, s2, 2.0 / 13.0)
    p = fma(p, s2, 2.0 / 11.0)
    p = fma(p, s2, 2.0 / 9.0)
    p = fma(p, s2, 2.0 / 7.0)
    p = fma(p, s2, 2.0 / 5.0)
    p = fma(p, s2, 2.0 / 3.0)
    p = fma(p, s2, 2.0)
    return fma(ef, _LN2_LO, fma(s, p, ef * _LN2_HI))


fast_exp_fma = kernel()(fast_exp_fma_py)
fast_expm1_fma = kernel()(fast_expm1_fma_py)
fast_log_fma = kernel()(fast_log_fma_py)
fast_cbrt_fma = kernel()(cbrt_over(fast_exp_fma, fast_log_fma))
