"""The analytical Bayesian inversion (Gaussian errors) and its diagnostics.

For a linear observation operator F(x) = K x the posterior mean and covariance are (Rodgers 2000,
Inverse Methods for Atmospheric Sounding, ch. 4; as in the Integrated Methane Inversion, Varon et
al. 2022, and FLEXINVERT's analytical mode, Thompson and Stohl 2014)

    x_hat = x_a + (K^T So^-1 K + Sa^-1)^-1 K^T So^-1 (y - K x_a)
    S_hat = (K^T So^-1 K + Sa^-1)^-1
    A     = I - S_hat Sa^-1          (averaging kernel: d x_hat / d x_true)
    DOFS  = trace(A)                 (degrees of freedom for signal)

and the reduced chi-square of the solution

    chi2 / m = [ (y - F(x_hat))^T So^-1 (y - F(x_hat)) + (x_hat - x_a)^T Sa^-1 (x_hat - x_a) ] / m,

whose expectation is 1 when the assumed errors So and Sa are right (m observations; e.g. Tarantola 2005;
Michalak et al. 2005, J. Geophys. Res. 110:D24107): well below 1 the errors were overstated, well above
they were understated (or the model is wrong). When F is only weakly nonlinear (the NO2/NOx ratio), the
same solution is found by iterating: Gauss-Newton steps (Rodgers 2000, sec. 5.3), damped by
Levenberg-Marquardt when a step raises the cost (Rodgers 2000, sec. 5.7):

    x_{i+1} = x_i + [(1 + gamma) Sa^-1 + K_i^T So^-1 K_i]^-1 {K_i^T So^-1 [y - F(x_i)] - Sa^-1 (x_i - x_a)},

gamma = 0 (the Gauss-Newton step) as long as the steps lower the cost J(x) = (y - F(x))^T So^-1 (y - F(x))
+ (x - x_a)^T Sa^-1 (x - x_a); a step that raises it is refused and retried with gamma raised (0 -> 1,
then x 10), an accepted step lowers gamma again (/ 10, back to 0 below 1): the schedule of Press et al.
(2007, Numerical Recipes, 3rd ed., sec. 15.5.2). Converged when a step is small in units of the posterior
covariance (Rodgers 2000, sec. 5.6, the test d_i^2 << n):

    d_i^2 = (x_{i+1} - x_i)^T S_i^-1 (x_{i+1} - x_i) < 1e-8 n,   S_i^-1 = K_i^T So^-1 K_i + Sa^-1,

i.e. a step of about 1e-4 posterior standard deviations per element. A small step refused because it
raises the cost also ends the iteration: every larger step along the Levenberg-Marquardt path was refused
too (the step-bound test of Moré 1978's Levenberg-Marquardt, MINPACK). For a linear F the first step
solves the problem and the second confirms it.

**Why the damping**: ARM2 caps the NO2/NOx ratio at 0.9 and floors it at 0.5, so d(NO2)/d(NOx) jumps (from
0.90 to 0.56 at 114.4 ug m-3 of NOx, from 0.03 to 0.50 at 283.5 ug m-3): the cost is continuous but its
gradient is not, and where the minimum lies on such a kink (an hour of a station at the kink), each
Gauss-Newton step, taken with the slope of one side, lands on the other side, and plain Gauss-Newton
cycles between two points forever (measured on the OSSE of ``examples/verify_osse.py``: half the noise
draws, cycles of up to 0.06 posterior sigma across one to five station-hours at 114.3-114.5 or
283.4-283.9 ug m-3 of NOx). Refusing the steps that raise the cost breaks the cycle and closes in on the
kink. **What "converged" means on a kink**: no step along the Levenberg-Marquardt path lowers the cost, which
on a ridge of kinks can be beside, not at, the minimum of the nonsmooth cost (a method for smooth costs
cannot do better): started from 8 random points (drawn from the prior) instead of x_a, the iteration ends
within 0.05 posterior sigma of its end from x_a on all 20 OSSE draws (cost differences below 5e-4 out of
about 1200), which bounds the indeterminacy. An iteration that does not converge in
:data:`MAX_ITERATIONS` is reported as such (``Posterior.converged``; the estimate is then the lowest-cost
iterate, not a solution).

So is block diagonal (independent stations and species); each block is factorised once (Cholesky), and
the products K^T So^-1 K, K^T So^-1 r are accumulated block by block as the IMI accumulates its K files.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from airshed.errors import AirshedInputError

log = logging.getLogger(__name__)

MAX_ITERATIONS = 50
"""Linearisations (Jacobians) before giving up."""

CONVERGENCE_D2 = 1e-8
"""Convergence: the last step's d_i^2 (in units of the posterior covariance) below this times n."""

GAMMA_START = 1.0
"""Levenberg-Marquardt: gamma after the first refused step (then x 10 per refusal)."""

GAMMA_MAX = 1e12
"""Levenberg-Marquardt: largest gamma tried before the iteration gives up."""


@dataclass(frozen=True)
class Posterior:
    """The solution and its diagnostics.

    Attributes
    ----------
    x, covariance
        Posterior mean (n,) and covariance (n, n).
    prior, prior_covariance
        x_a and Sa.
    averaging_kernel
        (n, n) A = I - S_hat Sa^-1.
    dofs
        trace(A).
    chi2
        The cost at the solution over m (expected 1); ``chi2_obs`` and ``chi2_prior`` its two parts (also
        over m).
    m
        Number of observations.
    iterations, converged
        Linearisations (Jacobians) of the iteration; whether it converged (the last step's ``step_d2``
        below :data:`CONVERGENCE_D2` x n). When not, ``x`` is the lowest-cost iterate, not a solution.
    step_d2
        d_i^2 of the last step tried, in units of the posterior covariance (Rodgers 2000, sec. 5.6).
    cost_evaluations
        Forward-model evaluations (linearisations plus refused Levenberg-Marquardt trials).
    residual
        (m,) y - F(x_hat).
    """

    x: np.ndarray
    covariance: np.ndarray
    prior: np.ndarray
    prior_covariance: np.ndarray
    averaging_kernel: np.ndarray
    dofs: float
    chi2: float
    chi2_obs: float
    chi2_prior: float
    m: int
    iterations: int
    converged: bool
    residual: np.ndarray
    step_d2: float = 0.0
    cost_evaluations: int = 0

    @property
    def sigma(self) -> np.ndarray:
        """Posterior standard deviations (n,)."""
        return np.sqrt(np.maximum(np.diag(self.covariance), 0.0))


class BlockCovariance:
    """A block-diagonal observation error covariance: (positions, matrix) blocks over m observations."""

    def __init__(self, blocks: list[tuple[np.ndarray, np.ndarray]], m: int):
        self.m = m
        seen = np.zeros(m, dtype=int)
        self._blocks = []
        for positions, matrix in blocks:
            seen[positions] += 1
            try:
                factor = scipy.linalg.cho_factor(matrix, lower=True)
            except np.linalg.LinAlgError:
                raise AirshedInputError("an observation error covariance block is not positive definite "
                                        "(an observation with zero error?)") from None
            self._blocks.append((positions, factor, matrix))
        if not (seen == 1).all():
            raise ValueError("covariance blocks must cover every observation exactly once")

    def solve(self, v: np.ndarray) -> np.ndarray:
        """So^-1 v for v of shape (m,) or (m, k)."""
        out = np.zeros_like(v, dtype=float)
        for positions, factor, _ in self._blocks:
            out[positions] = scipy.linalg.cho_solve(factor, v[positions])
        return out

    def diagonal(self) -> np.ndarray:
        """Return the variances (m,)."""
        out = np.zeros(self.m)
        for positions, _, matrix in self._blocks:
            out[positions] = np.diag(matrix)
        return out

    def dense(self) -> np.ndarray:
        """Return the full (m, m) matrix (small problems, tests)."""
        out = np.zeros((self.m, self.m))
        for positions, _, matrix in self._blocks:
            out[np.ix_(positions, positions)] = matrix
        return out


def _prior_inverse(sa: np.ndarray) -> np.ndarray:
    try:
        factor = scipy.linalg.cho_factor(sa, lower=True)
    except np.linalg.LinAlgError:
        raise AirshedInputError("the prior error covariance is singular (e.g. no room for change with "
                                "several windows: set the change prior above 0)") from None
    return scipy.linalg.cho_solve(factor, np.eye(sa.shape[0]))


def solve(forward: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], y: np.ndarray, x_a: np.ndarray,
          sa: np.ndarray, so: BlockCovariance, max_iterations: int = MAX_ITERATIONS) -> Posterior:
    """Posterior of x given y = F(x) + error (module docstring).

    Parameters
    ----------
    forward
        ``x -> (F(x), K(x))``, model values (m,) and Jacobian (m, n).
    y
        Observations (m,).
    x_a, sa
        Prior mean (n,) and covariance (n, n).
    so
        Observation error covariance.
    max_iterations
        Linearisations before giving up (``converged`` False).
    """
    sa_inv = _prior_inverse(sa)
    n = x_a.size

    def misfits(x: np.ndarray, f: np.ndarray) -> tuple[float, float]:
        """Return the observation and prior parts of the cost J(x) (module docstring)."""
        r, dx = y - f, x - x_a
        return float(r @ so.solve(r)), float(dx @ sa_inv @ dx)

    def cost(x: np.ndarray, f: np.ndarray) -> float:
        return sum(misfits(x, f))

    x = x_a.copy()
    f, k = forward(x)
    j = cost(x, f)
    evaluations = 1
    gamma = 0.0
    converged = False
    iterations = 0
    d2 = math.inf
    while iterations < max_iterations and not converged:
        iterations += 1
        so_inv_k = so.solve(k)
        hessian = k.T @ so_inv_k + sa_inv
        gradient = so_inv_k.T @ (y - f) - sa_inv @ (x - x_a)
        while True:
            try:
                step = scipy.linalg.cho_solve(scipy.linalg.cho_factor(hessian + gamma * sa_inv, lower=True),
                                              gradient)
            except np.linalg.LinAlgError:
                raise AirshedInputError("the inversion is ill-posed (K^T So^-1 K + Sa^-1 not positive "
                                        "definite)") from None
            d2 = float(step @ hessian @ step)
            trial = x + step
            f_trial, k_trial = forward(trial)
            j_trial = cost(trial, f_trial)
            evaluations += 1
            accepted = j_trial <= j
            converged = d2 < CONVERGENCE_D2 * n
            log.debug("iteration %d: gamma %.1e, step d2 %.3e (n %d), cost %.10g -> %.10g, %s", iterations,
                      gamma, d2, n, j, j_trial, "accepted" if accepted else "refused")
            if accepted or converged:
                break
            gamma = GAMMA_START if gamma == 0.0 else 10.0 * gamma
            if gamma > GAMMA_MAX:
                break
        if accepted:
            x, f, k, j = trial, f_trial, k_trial, j_trial
            gamma = 0.0 if gamma <= GAMMA_START else gamma / 10.0
        elif not converged:
            break  # no step lowers the cost, down to gamma = GAMMA_MAX: give up
    so_inv_k = so.solve(k)
    hessian = k.T @ so_inv_k + sa_inv
    s_hat = scipy.linalg.cho_solve(scipy.linalg.cho_factor(hessian, lower=True), np.eye(n))
    r = y - f
    m = y.size
    obs_part, prior_part = misfits(x, f)
    chi2_obs, chi2_prior = obs_part / m, prior_part / m
    a = np.eye(n) - s_hat @ sa_inv
    return Posterior(x=x, covariance=s_hat, prior=x_a, prior_covariance=sa, averaging_kernel=a,
                     dofs=float(np.trace(a)), chi2=chi2_obs + chi2_prior, chi2_obs=chi2_obs,
                     chi2_prior=chi2_prior, m=m, iterations=iterations, converged=converged, residual=r,
                     step_d2=d2, cost_evaluations=evaluations)


def linear_posterior(k: np.ndarray, y: np.ndarray, x_a: np.ndarray, sa: np.ndarray,
                     so: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve a linear problem with dense So in closed form, the m-space form: (x_hat, S_hat).

    ``x_hat = x_a + Sa K^T (K Sa K^T + So)^-1 (y - K x_a)``, ``S_hat = Sa - Sa K^T (K Sa K^T + So)^-1 K Sa``:
    algebraically equal to the n-space form of :func:`solve` (the matrix inversion lemma), computed the
    other way round; the tests compare the two.
    """
    gain = sa @ k.T @ np.linalg.inv(k @ sa @ k.T + so)
    return x_a + gain @ (y - k @ x_a), sa - gain @ k @ sa
