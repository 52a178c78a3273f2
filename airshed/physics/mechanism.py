"""The chemistry mechanism: one table of species, first-order conversions, removal and output composition.

Both cores take their chemistry from here (InMAP's ``Mechanism`` interface is the model: Tessum, Hill &
Marshall 2017, PLoS ONE 12:e0176131): which species are emitted, which tracers are carried, which
first-order conversions turn a precursor into a product (rate and mass yield), how every tracer is
removed (dry deposition velocity, below-cloud scavenging A P^B, decay), and how the run file's output
species are composed from tracers (PM2.5 = primary PM2.5 + sulfate + nitrate).

The chemistry is linear by design: every process is first order in the tracer's own mass, so every
tagged contribution scales exactly with its tag's emissions and tagging equals zero-out (README,
"Tagging, zero-out and scenarios").

Default rates are the MESOPUFF II night-time values used as defaults in CALPUFF (Scire, Strimaitis &
Yamartino 2000, *A User's Guide for the CALPUFF Dispersion Model*, Earth Tech): 1 %/h for SO2 -> SO4 and
2 %/h for NOx -> NO3. Converted precursor mass is removed in the precursor's units (SO2, NOx as NO2) and
added to the product in the product's units with the molar-mass ratio (one S or N atom each), so each
mass budget closes in its own units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np

from airshed.physics.removal import WET_SCAVENGING_A_PER_S, WET_SCAVENGING_B

#: Species emitted by sources, in the order used throughout airshed.
EMITTED_SPECIES: tuple[str, ...] = ("SO2", "NOx", "PM2.5", "NH3", "NMVOC")
#: Every transported tracer: the emitted species, then the secondary products.
TRACERS: tuple[str, ...] = (*EMITTED_SPECIES, "sulfate", "nitrate")
#: Species of the run file, each a sum of tracers (:attr:`Mechanism.output_composition`).
OUTPUT_SPECIES: tuple[str, ...] = (
    "PM2.5", "PM2.5_primary", "sulfate", "nitrate", "SO2", "NOx", "NH3", "NMVOC"
)

#: Molar masses, g/mol (SO4, SO2, NO3, NO2).
MOLAR_MASS_G_MOL: Mapping[str, float] = MappingProxyType(
    {"sulfate": 96.0, "SO2": 64.0, "nitrate": 62.0, "NOx": 46.0}
)
#: Mass of product per mass of precursor converted (one S or one N atom each).
SULFATE_PER_SO2 = MOLAR_MASS_G_MOL["sulfate"] / MOLAR_MASS_G_MOL["SO2"]
NITRATE_PER_NOX = MOLAR_MASS_G_MOL["nitrate"] / MOLAR_MASS_G_MOL["NOx"]
#: MESOPUFF II night-time conversion rates (CALPUFF defaults, Scire et al. 2000), 1/h.
SO2_TO_SULFATE_PER_HOUR = 0.01
NOX_TO_NITRATE_PER_HOUR = 0.02
#: Default dry-deposition velocities per tracer, m/s: typical values for gases and fine aerosol over land
#: (Seinfeld and Pandis 2016, ch. 19).
DRY_DEPOSITION_VELOCITY_M_S: Mapping[str, float] = MappingProxyType({
    "SO2": 0.005, "NOx": 0.001, "PM2.5": 0.001, "NH3": 0.005, "NMVOC": 0.0,
    "sulfate": 0.001, "nitrate": 0.001,
})  # fmt: skip
#: Tracers that rain does not scavenge. NMVOC: anthropogenic NMVOC mass is mostly alkanes, alkenes and
#: aromatics (Li M. et al. 2014, Atmos. Chem. Phys. 14:5617, speciation of the Asian inventory), with
#: Henry's law constants of 1e-3 to 1e-1 mol L-1 atm-1 (Sander 2015, Atmos. Chem. Phys. 15:4399); falling
#: drops come to equilibrium with so little of such a gas that below-cloud scavenging is negligible
#: (Seinfeld & Pandis 2016, ch. 20), and NAME's A P^B was derived for aerosol and soluble gases (Maryon et
#: al. 1996). (NO and NO2 are hardly more soluble, and CALPUFF's default scavenging coefficient for NOx is
#: 0; NOx keeps NAME's coefficient here as before, a choice to review.)
NOT_SCAVENGED: frozenset[str] = frozenset({"NMVOC"})
#: What each output species is, for the run file's ``species_long_names``.
OUTPUT_LONG_NAMES: Mapping[str, str] = MappingProxyType({
    "PM2.5": "PM2.5 (primary + secondary sulfate + secondary nitrate)",
    "PM2.5_primary": "primary PM2.5",
    "sulfate": "secondary sulfate aerosol (as SO4)",
    "nitrate": "secondary nitrate aerosol (as NO3)",
    "SO2": "sulfur dioxide",
    "NOx": "nitrogen oxides (as NO2)",
    "NH3": "ammonia",
    "NMVOC": "non-methane volatile organic compounds",
})  # fmt: skip


@dataclass(frozen=True)
class Conversion:
    """A first-order conversion ``precursor -> product`` at ``rate_per_s`` with mass yield ``yield_``.

    d(precursor)/dt = -k precursor; d(product)/dt = +k * yield_ * precursor (k = ``rate_per_s``, s-1;
    ``yield_`` is product mass per precursor mass converted).
    """

    precursor: str
    product: str
    rate_per_s: float
    yield_: float
    reference: str = ""


_PER_TRACER_TABLES = (
    "dry_deposition_velocity_m_s", "wet_scavenging_a_per_s", "wet_scavenging_b", "decay_per_s"
)


def _mapping(values: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType(dict(values))


@dataclass(frozen=True)
class Mechanism:
    """Species, first-order conversions, removal per tracer and output composition (see module docstring).

    Per-tracer tables (``dry_deposition_velocity_m_s``, ``wet_scavenging_a_per_s``, ``wet_scavenging_b``,
    ``decay_per_s``) are keyed by tracer name and hold every tracer of :attr:`tracers`.
    """

    emitted: tuple[str, ...] = EMITTED_SPECIES
    tracers: tuple[str, ...] = TRACERS
    conversions: tuple[Conversion, ...] = ()
    dry_deposition_velocity_m_s: Mapping[str, float] = field(default_factory=dict)
    wet_scavenging_a_per_s: Mapping[str, float] = field(default_factory=dict)
    wet_scavenging_b: Mapping[str, float] = field(default_factory=dict)
    decay_per_s: Mapping[str, float] = field(default_factory=dict)
    output_species: tuple[str, ...] = OUTPUT_SPECIES
    output_composition: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    output_long_names: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in _PER_TRACER_TABLES:
            table = getattr(self, name)
            missing = [t for t in self.tracers if t not in table]
            if missing:
                raise ValueError(f"mechanism: {name} has no value for {', '.join(missing)}")
            if any(not np.isfinite(table[t]) or table[t] < 0 for t in self.tracers):
                raise ValueError(f"mechanism: {name} needs finite values >= 0")
            object.__setattr__(self, name, _mapping({t: float(table[t]) for t in self.tracers}))
        for c in self.conversions:
            if c.precursor not in self.tracers or c.product not in self.tracers or c.precursor == c.product:
                raise ValueError(f"mechanism: conversion {c.precursor} -> {c.product} needs two tracers")
            if not (np.isfinite(c.rate_per_s) and c.rate_per_s >= 0 and np.isfinite(c.yield_)
                    and c.yield_ > 0):
                raise ValueError(f"mechanism: {c.precursor} -> {c.product} needs rate >= 0 and yield > 0")
        if set(self.output_composition) != set(self.output_species):
            raise ValueError("mechanism: output_composition must list every output species")
        for name, parts in self.output_composition.items():
            if not parts or any(p not in self.tracers for p in parts):
                raise ValueError(f"mechanism: output species {name} is composed of unknown tracers {parts}")
        object.__setattr__(self, "output_composition", MappingProxyType(dict(self.output_composition)))
        names = {s: self.output_long_names.get(s, s) for s in self.output_species}
        object.__setattr__(self, "output_long_names", MappingProxyType(names))

    # -- derived tables -------------------------------------------------------------------------------
    def per_tracer(self, table: str) -> np.ndarray:
        """One of the per-tracer tables as an array in tracer order (e.g. ``"decay_per_s"``)."""
        values = getattr(self, table)
        return np.array([values[t] for t in self.tracers], dtype=np.float64)

    def conversion_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Conversions as plain arrays for kernels: (precursor index, product index, rate s-1, yield)."""
        src = np.array([self.tracers.index(c.precursor) for c in self.conversions], dtype=np.int64)
        dst = np.array([self.tracers.index(c.product) for c in self.conversions], dtype=np.int64)
        rate = np.array([c.rate_per_s for c in self.conversions], dtype=np.float64)
        yld = np.array([c.yield_ for c in self.conversions], dtype=np.float64)
        return src, dst, rate, yld

    def conversion_rate_of(self, tracer: str) -> float:
        """Total first-order conversion rate out of ``tracer``, s-1."""
        return float(sum(c.rate_per_s for c in self.conversions if c.precursor == tracer))

    def conversion_rate(self, precursor: str, product: str) -> float:
        """Rate of the conversion ``precursor -> product``, s-1 (0 when the mechanism has none)."""
        rates = [c.rate_per_s for c in self.conversions if (c.precursor, c.product) == (precursor, product)]
        return rates[0] if rates else 0.0

    def emitted_origin(self, tracer: str) -> str:
        """Return the emitted species whose emissions make ``tracer`` (itself, or its precursor's)."""
        if tracer in self.emitted:
            return tracer
        sources = [c.precursor for c in self.conversions if c.product == tracer]
        origins = {self.emitted_origin(s) for s in sources}
        if len(origins) != 1:
            raise ValueError(f"mechanism: tracer {tracer} has no single emitted origin ({sorted(origins)})")
        return origins.pop()

    def precursor_of(self, output: str) -> str | None:
        """Return the emitted species that makes an output species; None for a sum of several (PM2.5)."""
        origins = {self.emitted_origin(t) for t in self.output_composition[output]}
        return origins.pop() if len(origins) == 1 else None

    def components(self, output: str) -> tuple[tuple[str, str], ...]:
        """Parts of an output species: (output species of one tracer, its emitted origin) per tracer summed.

        E.g. PM2.5 -> (("PM2.5_primary", "PM2.5"), ("sulfate", "SO2"), ("nitrate", "NOx")).
        """
        single = {parts[0]: name for name, parts in self.output_composition.items() if len(parts) == 1}
        missing = [t for t in self.output_composition[output] if t not in single]
        if missing:
            raise ValueError(f"mechanism: no output species holds only {', '.join(missing)}")
        return tuple((single[t], self.emitted_origin(t)) for t in self.output_composition[output])

    def output_matrix(self, tracers: tuple[str, ...] | None = None) -> np.ndarray:
        """(n_output_species, n_tracers) 0/1 matrix: output species = matrix @ tracers.

        ``tracers`` (default: the mechanism's) names the tracer axis; tracers missing from it give zeros.
        """
        tracers = self.tracers if tracers is None else tracers
        m = np.zeros((len(self.output_species), len(tracers)))
        for s, name in enumerate(self.output_species):
            for part in self.output_composition[name]:
                if part in tracers:
                    m[s, tracers.index(part)] = 1.0
        return m

    def with_overrides(self, *, conversion_rates_per_s: Mapping[tuple[str, str], float] | None = None,
                       **tables: Mapping[str, float]) -> Mechanism:
        """Return a copy with some conversion rates ``{(precursor, product): k}`` and tables replaced."""
        conversions = self.conversions
        if conversion_rates_per_s:
            known = {(c.precursor, c.product) for c in conversions}
            unknown = set(conversion_rates_per_s) - known
            if unknown:
                raise ValueError(f"mechanism: no conversion {sorted(unknown)}")
            conversions = tuple(
                replace(c, rate_per_s=float(conversion_rates_per_s.get((c.precursor, c.product),
                                                                      c.rate_per_s)))
                for c in conversions
            )
        merged = {name: {**getattr(self, name), **value} for name, value in tables.items()}
        return replace(self, conversions=conversions, **merged)


def default_mechanism() -> Mechanism:
    """Airshed's linear mechanism: SO2 -> sulfate, NOx -> nitrate, with the documented default removal.

    Dry deposition: typical velocities over land (Seinfeld & Pandis 2016, ch. 19). Below-cloud scavenging
    A P^B of the UK Met Office NAME model (Maryon et al. 1996) for every tracer but those of
    :data:`NOT_SCAVENGED` (NMVOC). No decay.
    """
    return Mechanism(
        conversions=(
            Conversion("SO2", "sulfate", SO2_TO_SULFATE_PER_HOUR / 3600.0, SULFATE_PER_SO2,
                       "MESOPUFF II night-time rate, CALPUFF default (Scire et al. 2000)"),
            Conversion("NOx", "nitrate", NOX_TO_NITRATE_PER_HOUR / 3600.0, NITRATE_PER_NOX,
                       "MESOPUFF II night-time rate, CALPUFF default (Scire et al. 2000)"),
        ),
        dry_deposition_velocity_m_s=DRY_DEPOSITION_VELOCITY_M_S,
        wet_scavenging_a_per_s={t: 0.0 if t in NOT_SCAVENGED else WET_SCAVENGING_A_PER_S for t in TRACERS},
        wet_scavenging_b=dict.fromkeys(TRACERS, WET_SCAVENGING_B),
        decay_per_s=dict.fromkeys(TRACERS, 0.0),
        output_long_names=OUTPUT_LONG_NAMES,
        output_composition={
            "PM2.5": ("PM2.5", "sulfate", "nitrate"),
            "PM2.5_primary": ("PM2.5",),
            "sulfate": ("sulfate",),
            "nitrate": ("nitrate",),
            "SO2": ("SO2",),
            "NOx": ("NOx",),
            "NH3": ("NH3",),
            "NMVOC": ("NMVOC",),
        },
    )


def first_order_chain(t: np.ndarray, rate: float, yield_: float, precursor_loss: float | np.ndarray,
                      product_loss: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precursor and product mass after time ``t`` (s) from unit precursor mass: the closed form.

    With a precursor lost at ``precursor_loss`` (s-1, conversion included) and converted at ``rate``
    (s-1) into a product lost at ``product_loss`` (s-1) with mass ``yield_`` (Bateman 1910):

    P(t) = exp(-a t),   S(t) = y k (exp(-a t) - exp(-b t)) / (b - a)   (a = precursor_loss, b = product_loss),

    and S(t) = y k t exp(-a t) when a = b (the limit, taken when |b - a| t is below 1e-8). The losses may
    be arrays broadcasting against ``t``.
    """
    t = np.asarray(t, dtype=np.float64)
    a, b = np.asarray(precursor_loss, dtype=np.float64), np.asarray(product_loss, dtype=np.float64)
    p = np.exp(-a * t)
    # S = y k exp(-m t) (1 - exp(-d t)) / d with m = min(a, b), d = |b - a|: no cancellation, no overflow
    m, d = np.minimum(a, b), np.abs(b - a)
    slow = np.exp(-m * t)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_far = -yield_ * rate * slow * np.expm1(-d * t) / d
    s_near = yield_ * rate * t * slow * (1.0 - 0.5 * d * t)
    s = np.where(d * t < 1e-8, s_near, s_far)
    return p, s


def _relative_expm1(z: np.ndarray) -> np.ndarray:
    """(exp(z) - 1) / z, 1 at z = 0, without cancellation."""
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(z) < 1e-12, 1.0 + 0.5 * z, np.expm1(z) / z)


def first_order_chain_with_ratio(t: np.ndarray, rate: float, yield_: float, precursor_loss: np.ndarray,
                                 product_loss: np.ndarray, log_ratio: np.ndarray) -> np.ndarray:
    """Product of the first-order chain when the precursor has an extra loss relative to the product.

    S(t) = y k integral_0^t exp(-a tau) rho(tau) exp(-b (t - tau)) d tau: the product from unit precursor
    mass when the precursor's mass is further multiplied by rho(tau) relative to the product's (rho = 1:
    :func:`first_order_chain`). Used for a plume whose precursor and product deposit at different
    velocities (rho = D_P / D_S, :mod:`airshed.model.plume_chemistry`).

    Parameters
    ----------
    t
        Increasing times along the last axis, s, starting at 0.
    rate, yield_
        Conversion rate k (s-1) and mass yield y.
    precursor_loss, product_loss
        a and b, s-1 (arrays broadcasting against ``t[..., 0]``, or scalars).
    log_ratio
        ln rho at the times ``t`` (same shape), taken linear in t between them: exact for constant rho,
        and the step recursion S(t_j+1) = exp(-b dt) S(t_j) + (the interval's integral) never
        exponentiates a growing argument.
    """
    t = np.asarray(t, dtype=np.float64)
    lr = np.broadcast_to(np.asarray(log_ratio, dtype=np.float64), t.shape)
    a = np.broadcast_to(np.asarray(precursor_loss, dtype=np.float64), t.shape[:-1] + (1,))[..., 0]
    b = np.broadcast_to(np.asarray(product_loss, dtype=np.float64), t.shape[:-1] + (1,))[..., 0]
    out = np.zeros(t.shape)
    for j in range(t.shape[-1] - 1):
        dt = t[..., j + 1] - t[..., j]
        start = -a * t[..., j] + lr[..., j] - b * dt  # the integrand at t_j, carried to t_j+1
        end = -a * t[..., j + 1] + lr[..., j + 1]
        interval = dt * np.exp(start) * _relative_expm1(end - start)
        out[..., j + 1] = np.exp(-b * dt) * out[..., j] + yield_ * rate * interval
    return out
