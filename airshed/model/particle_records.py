"""Typed parameter records of the particle kernels: what a step reads, grouped by process.

Each record is a :class:`typing.NamedTuple` of scalars and NumPy arrays; Numba compiles it to a struct and
the kernels read its fields by name, so a kernel's signature is a handful of records instead of a long list
of positional floats (two swapped floats of one type would compile and run). A new process adds its own
record (or fields to one record) and the one function of the step that reads it.

Units are SI unless the field name says otherwise; per-species arrays follow the order of the run's
species (:attr:`airshed.model.lagrangian.LagrangianParameters.species`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Particles(NamedTuple):
    """The particle state, structure of arrays (every array has one value per particle slot).

    ``x``, ``y``: projected position, m; ``z``: height above ground, m; ``un``, ``vn``, ``wn``: turbulent
    velocities normalised by their standard deviations (u'/sigma_u, v'/sigma_v, w'/sigma_w); ``um``,
    ``vm``: unresolved mesoscale velocities over their standard deviation; ``mass``:
    [nspecies, n] kg; ``tag``: source tag; ``pid``: particle id (the key of its random numbers);
    ``alive``; ``cell``: flat index of the output cell while in the sampling layer, else -1. ``n``: the
    slots in use (the arrays may hold more: a run's arrays grow by doubling, and the kernels are
    compiled once for whole contiguous arrays).
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    un: np.ndarray
    vn: np.ndarray
    wn: np.ndarray
    um: np.ndarray
    vm: np.ndarray
    mass: np.ndarray
    tag: np.ndarray
    pid: np.ndarray
    alive: np.ndarray
    cell: np.ndarray
    n: int


class Met(NamedTuple):
    """Met fields at equally spaced times ``t0 + k dt`` (s), packed so a grid corner is one cache line.

    ``wind[nt, nz, ny, nx, 3]``: u, v, w (m/s) on the grid's levels; ``surface[nt, ny, nx, 5]``: mixing
    height (m), u*, w* (m/s), 1/L (1/m) and precipitation (mm/h), in that order.
    """

    wind: np.ndarray
    surface: np.ndarray
    t0: float
    dt: float


class StepMet(NamedTuple):
    """The met one step reads (from :func:`airshed.model.lagrangian.met_at_step`), float32, flat.

    ``wind_t`` and ``wind_t_next``: u, v, w (m/s) at the start and end of the step in rows [nz, ny, 3, nx];
    ``surface_t``: mixing height (m), u*, w* (m/s), 1/L (1/m), precipitation (mm/h) at the start of the
    step in rows [ny, 5, nx].
    """

    wind_t: np.ndarray
    wind_t_next: np.ndarray
    surface_t: np.ndarray


class Grid(NamedTuple):
    """The horizontal grid of met and output, the met levels, the model top and the sampling layer.

    ``x0``, ``y0``: lower-left corner (projected m); ``dx``: cell size, m (cell centres at x0 + (i + 1/2)
    dx); ``nx``, ``ny``, ``nz``: cells and met levels; ``z_levels``: met level heights, m above ground,
    increasing; ``z_top``: model top, m (particles above it leave); ``sampling_depth``: depth of the
    near-ground layer whose particles are gridded, m.
    """

    x0: float
    y0: float
    dx: float
    nx: int
    ny: int
    nz: int
    z_levels: np.ndarray
    z_top: float
    sampling_depth: float


class Step(NamedTuple):
    """One step: start time ``t`` (s), length ``dt`` (s), its index and the run's seed (keys of the draws)."""

    t: float
    dt: float
    index: np.uint64
    seed: np.uint64


class Turbulence(NamedTuple):
    """Boundary-layer and free-troposphere turbulence (see :mod:`airshed.model.lagrangian`, steps 2, 4, 5).

    ``scheme``: the turbulence scheme, :data:`~airshed.model.lagrangian.HANNA` or ``SIMILARITY`` (with
    ``integrator`` it picks the step kernel, :data:`~airshed.model.lagrangian.STEP_KERNELS`; the kernels
    read neither);
    ``step_fraction``: vertical sub-step as a fraction of T_Lw; ``max_substeps``: most vertical sub-steps
    per step; ``tl_min_horizontal``, ``tl_min_vertical``: floors on the Lagrangian time scales, s (Hanna:
    everywhere, as FLEXPART; similarity: from ``tl_floor_height`` (m) up, none below);
    ``min_profile_height``: the similarity profiles are held at their value at this height below it, m
    (the top of the roughness sublayer);
    ``k_free_horizontal``, ``k_free_vertical``: diffusivities above the mixed layer, m2/s; ``horizontal``:
    horizontal turbulent velocities on or off; ``inv_density_scale_height``: 1/H_rho of the density
    correction of the drift, 1/m (0 = off); ``mesoscale_sigma`` (m/s, 0 = off) and ``mesoscale_time``
    (s): the unresolved mesoscale velocities (:mod:`airshed.physics.mesoscale`); ``skew_sign``: 1, or -1
    in a backward run (time-reversed met), where the skewed convective PDF is mirrored; ``integrator``: the
    vertical integrator, :data:`~airshed.model.lagrangian.EULER` or ``BAOAB``.
    """

    scheme: int
    step_fraction: float
    max_substeps: int
    tl_min_horizontal: float
    tl_min_vertical: float
    tl_floor_height: float
    min_profile_height: float
    k_free_horizontal: float
    k_free_vertical: float
    horizontal: bool
    inv_density_scale_height: float
    mesoscale_sigma: float
    mesoscale_time: float
    skew_sign: float
    integrator: int


class Removal(NamedTuple):
    """First-order removal per species: dry deposition, below-cloud scavenging, decay.

    ``deposition_velocity`` (m/s) acts on particles below ``dry_layer_m`` (k = v_d / dry_layer_m);
    scavenging Lambda = ``wet_a`` P^``wet_b`` (s-1, P in mm/h) on particles below ``wet_top_m``;
    ``decay`` (s-1) everywhere. Arrays of length nspecies.
    """

    deposition_velocity: np.ndarray
    wet_a: np.ndarray
    wet_b: np.ndarray
    decay: np.ndarray
    dry_layer_m: float
    wet_top_m: float


class Chemistry(NamedTuple):
    """First-order conversions ``precursor -> product`` (from :meth:`Mechanism.conversion_arrays`).

    Conversion c removes species ``precursor[c]`` at ``rate[c]`` (s-1) and adds ``yield_[c]`` times the
    converted mass to species ``product[c]`` (-1 when the run does not carry the product: the converted
    mass is counted as converted only). Arrays of length nconversions.
    """

    precursor: np.ndarray
    product: np.ndarray
    rate: np.ndarray
    yield_: np.ndarray


class StepRates(NamedTuple):
    """Removal rates of one step, computed once per step from :class:`Removal` and :class:`Chemistry`.

    Per species: ``k_chem`` (total conversion rate, s-1), ``k_dry`` (v_d / dry layer, s-1); per (outside /
    inside the dry layer, species): ``k_fixed`` (every rate but scavenging, s-1) and ``expm1_fixed``
    (expm1(-k_fixed dt)); ``any_wet``: some species is scavenged.
    """

    k_chem: np.ndarray
    k_dry: np.ndarray
    k_fixed: np.ndarray
    expm1_fixed: np.ndarray
    any_wet: bool

