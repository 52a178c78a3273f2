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
same solution is iterated by Gauss-Newton (Rodgers 2000, sec. 5.3, the n-form):

    x_{i+1} = x_a + S_i K_i^T So^-1 [y - F(x_i) + K_i (x_i - x_a)],   S_i = (K_i^T So^-1 K_i + Sa^-1)^-1,

until the step is below 1e-4 posterior standard deviations (for a linear F the second solve confirms
the first).

So is block diagonal (independent stations and species); each block is factorised once (Cholesky), and
the products K^T So^-1 K, K^T So^-1 r are accumulated block by block as the IMI accumulates its K files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from airshed.errors import AirshedInputError

MAX_ITERATIONS = 20
"""Gauss-Newton iterations before giving up."""

STEP_TOLERANCE = 1e-4
"""Convergence: every element's last step below this many posterior standard deviations."""


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
        Gauss-Newton iterations taken; whether the last step met :data:`STEP_TOLERANCE`.
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
          sa: np.ndarray, so: BlockCovariance) -> Posterior:
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
    """
    sa_inv = _prior_inverse(sa)
    x = x_a.copy()
    converged = False
    iterations = 0
    while iterations < MAX_ITERATIONS:
        iterations += 1
        f, k = forward(x)
        so_inv_k = so.solve(k)
        hessian = k.T @ so_inv_k + sa_inv
        try:
            factor = scipy.linalg.cho_factor(hessian, lower=True)
        except np.linalg.LinAlgError:
            raise AirshedInputError("the inversion is ill-posed (K^T So^-1 K + Sa^-1 not positive "
                                    "definite)") from None
        rhs = so_inv_k.T @ (y - f + k @ (x - x_a))
        x_new = x_a + scipy.linalg.cho_solve(factor, rhs)
        s_hat = scipy.linalg.cho_solve(factor, np.eye(x.size))
        step = np.abs(x_new - x) / np.sqrt(np.maximum(np.diag(s_hat), 1e-300))
        x = x_new
        if step.max() < STEP_TOLERANCE:
            converged = True
            break
    f, k = forward(x)
    so_inv_k = so.solve(k)
    hessian = k.T @ so_inv_k + sa_inv
    s_hat = scipy.linalg.cho_solve(scipy.linalg.cho_factor(hessian, lower=True), np.eye(x.size))
    r = y - f
    m = y.size
    chi2_obs = float(r @ so.solve(r)) / m
    dx = x - x_a
    chi2_prior = float(dx @ sa_inv @ dx) / m
    a = np.eye(x.size) - s_hat @ sa_inv
    return Posterior(x=x, covariance=s_hat, prior=x_a, prior_covariance=sa, averaging_kernel=a,
                     dofs=float(np.trace(a)), chi2=chi2_obs + chi2_prior, chi2_obs=chi2_obs,
                     chi2_prior=chi2_prior, m=m, iterations=iterations, converged=converged, residual=r)


def linear_posterior(k: np.ndarray, y: np.ndarray, x_a: np.ndarray, sa: np.ndarray,
                     so: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve a linear problem with dense So in closed form, the m-space form: (x_hat, S_hat).

    ``x_hat = x_a + Sa K^T (K Sa K^T + So)^-1 (y - K x_a)``, ``S_hat = Sa - Sa K^T (K Sa K^T + So)^-1 K Sa``:
    algebraically equal to the n-space form of :func:`solve` (the matrix inversion lemma), computed the
    other way round; the tests compare the two.
    """
    gain = sa @ k.T @ np.linalg.inv(k @ sa @ k.T + so)
    return x_a + gain @ (y - k @ x_a), sa - gain @ k @ sa
