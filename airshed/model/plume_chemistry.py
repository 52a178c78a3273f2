"""Secondary species along a Gaussian plume: the first-order chain precursor -> product in closed form.

A first-order conversion of a precursor P into a product S (rate k, mass yield y; :mod:`airshed.physics.
mechanism`) turns the plume of P into a plume of S with the same geometry: the product forms inside the
precursor's plume and is carried and mixed with it. Along the travel time t = x/u, with the precursor
lost at a (s-1: conversion, decay, wet scavenging) and depleted by dry deposition by D_P(t), and the
product lost at b and depleted by D_S(t), the product formed per unit mass of precursor emitted is

    S(t) = y k D_S(t) integral_0^t exp(-a tau) rho(tau) exp(-b (t - tau)) d tau,   rho = D_P / D_S     (1)

(the Bateman (1910) chain with the source depletions as time-dependent losses). Both depletions follow
the plume's ground-level profile, D = exp(-(v_d/u) G(x)) (:mod:`airshed.physics.deposition`), so
ln rho = -(v_dP - v_dS) G / u. With equal deposition velocities rho = 1 and (1) is the closed form
S = y k D (exp(-a t) - exp(-b t)) / (b - a) (:func:`airshed.physics.mechanism.first_order_chain`); with
different ones the integral is taken on the nodes of the depletion table
(:func:`airshed.physics.mechanism.first_order_chain_with_ratio`).

The product's concentration at a receptor is the precursor's plume shape for the precursor's emission
times S(x/u): :func:`plume_sources_for_product` gives the kernels sources with emission Q_P, no decay
column and the table ln S(x_k), which they interpolate in sqrt(x) exactly as a depletion table.

Approximations, with their size:

- ln S is interpolated linearly in sqrt(x) between the table's nodes x_k = x_max (k/64)^2. Near the
  source S grows like y k x/u, so ln S ~ ln x, and the interpolation falls short by at most 1/(4 k^2)
  of S between nodes k and k + 1: with x_max = 300 km, < 6 % below 290 m, < 1.6 % below 1.2 km, < 0.4 %
  beyond 4.7 km and < 0.1 % beyond 19 km (tests/test_plume_chemistry.py measures it against the exact
  product). Below the first node (73 m) the product is taken as 0 (it is below 1e-4 of the precursor
  there). Further out the interpolation error of the exponentials is below a x_max / (4 u 64^2) (1e-4 for
  a = 1e-4 s-1, u = 1 m/s).
- With different deposition velocities, the integrand of (1) is taken as exponential in t between nodes
  (exact for rho = 1). Against an ODE solution with a depletion ratio as steep as near a ground source
  (ln rho ~ ln x) this adds at most a tenth of the interpolation bound above: 0.9 % at the first node,
  0.1 % at node 4, 1e-4 from node 16 on (tests/test_plume_chemistry.py).
- The source-depletion model keeps the plume's vertical shape for both species, and the meteorology of
  the hour (wind, rain at the source) holds along the whole plume, as everywhere in the plume core.
"""

from __future__ import annotations

import numpy as np

from airshed.errors import AirshedInputError
from airshed.model.plume import AMP_FAR, DECAY, DEPXMAX, PREF, PlumeGeometry, PreparedSources
from airshed.physics import deposition as dep
from airshed.physics.mechanism import first_order_chain, first_order_chain_with_ratio

LOG_FLOOR = -745.0
"""ln S where S = 0 (the source itself): the kernels' exponential is exactly 0 below -708."""


def chain_log_table(geometry: PlumeGeometry, rate: float, yield_: float, precursor_loss: np.ndarray,
                    product_loss: np.ndarray, precursor_deposition: float = 0.0,
                    product_deposition: float = 0.0) -> np.ndarray:
    """Tabulate ln S(x_k) of (1) at every source's depletion-table nodes, (nsrc, nodes) (module docstring).

    Parameters
    ----------
    geometry
        The hour's plume geometry (wind, table range, ground-level profile).
    rate, yield_
        Conversion rate k (s-1) and mass yield y (product mass per precursor mass).
    precursor_loss, product_loss
        First-order losses a and b per source (s-1): decay, wet scavenging, and for the precursor every
        conversion out of it.
    precursor_deposition, product_deposition
        Dry deposition velocities v_dP, v_dS, m/s.
    """
    n = geometry.params.shape[0]
    u = geometry.u[:, None]
    s = np.linspace(0.0, 1.0, dep.DEPLETION_TABLE_NODES)
    t = geometry.params[:, DEPXMAX, None] * s * s / u  # travel time to each node, s
    a = np.broadcast_to(np.asarray(precursor_loss, dtype=np.float64), (n,))[:, None]
    b = np.broadcast_to(np.asarray(product_loss, dtype=np.float64), (n,))[:, None]
    if precursor_deposition == product_deposition:
        _, chain = first_order_chain(t, rate, yield_, a, b)
        log_ratio = None
    else:
        ground = geometry.ground_integral()
        log_ratio = -(precursor_deposition - product_deposition) / u * ground
        chain = first_order_chain_with_ratio(t, rate, yield_, a, b, log_ratio)
    with np.errstate(divide="ignore"):
        table = np.log(chain)
    if product_deposition > 0.0:
        table -= product_deposition / u * geometry.ground_integral()
    return np.maximum(table, LOG_FLOOR)


def plume_sources_for_product(geometry: PlumeGeometry, precursor_emission: np.ndarray,
                              log_table: np.ndarray) -> PreparedSources:
    """Prepare the sources of a product formed in the plumes of ``precursor_emission`` (g/s per source).

    ``log_table`` is :func:`chain_log_table`: it carries every loss of the product, so the decay column is
    0. Sources with no precursor emission are kept but skipped by the kernels (PREF = 0).
    """
    n = geometry.params.shape[0]
    q = np.broadcast_to(np.asarray(precursor_emission, dtype=np.float64), (n,))
    if np.any(~(q >= 0.0)):
        raise AirshedInputError("plume source input 'emission' must be >= 0 and not NaN")
    if log_table.shape != (n, dep.DEPLETION_TABLE_NODES) or not np.all(np.isfinite(log_table)):
        raise AirshedInputError("product table: expected finite values, one row of nodes per source")
    p = geometry.params.copy()
    p[:, PREF] *= q
    p[:, AMP_FAR] *= q
    p[:, DECAY] = 0.0
    return PreparedSources(
        p,
        geometry.tag,
        geometry.fourier,
        np.ascontiguousarray(log_table),
        geometry.receptor_height,
        geometry.x_min,
        int(np.count_nonzero(geometry.calm)),
        int(np.count_nonzero(geometry.penetrated & (q > 0))),
    )
