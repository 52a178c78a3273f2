"""The adjoint of airshed's first-order chemistry: the weights a backward (receptor-oriented) particle has.

Forward, the tracers of an air parcel obey dm/dt = K m (:mod:`airshed.physics.mechanism`): tracer i is lost
at its own rate k_i (dry deposition, scavenging, decay and every conversion out of it) and gains
y_c r_c m_p from each conversion c: p -> i (rate r_c, mass yield y_c). A receptor that measures tracer j
is sensitive to tracer i present upstream at an earlier time. That sensitivity, lambda_{j,i}, obeys the
adjoint equations backward in time (Marchuk 1995, *Adjoint Equations and Analysis of Complex Systems*;
for first-order processes in a Lagrangian model, Seibert & Frank 2004, Atmos. Chem. Phys. 4:51, Sect. 2):
with tau the time run backward,

    d lambda_{j,i} / d tau = -k_i lambda_{j,i} + sum over conversions c: i -> k of y_c r_c lambda_{j,k},

starting from lambda_{j,j} = 1 and lambda_{j,i} = 0 (i != j) at the receptor. So a sulfate receptor's
particle carries a sulfate weight that decays with sulfate's removal and an SO2 weight that grows from it
through the SO2 -> sulfate conversion and decays with SO2's removal (conversion included): it is
sensitive to SO2 emitted upstream. The adjoint of the closed-form chain is the chain itself:
lambda_{sulfate,SO2}(t) from a unit sulfate weight equals the sulfate formed by time t from unit SO2
(:func:`airshed.physics.mechanism.first_order_chain`), which the tests check.

A particle carries one weight per *slot* (j, i): receptor tracer j, upstream tracer i, for every i that can
become j (j itself and its precursors, through any chain of conversions), plus one slot ``air`` without
removal (the residence time of the receptor's air, the classic footprint). Slot (j, i) is removed as tracer
i is and gains from slot (j, k) for every conversion i -> k (an adjoint *link*). Generic over the
mechanism: nothing here knows SO2 or sulfate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from airshed.physics.mechanism import Conversion

#: Name of the inert slot: the residence time of the receptor's air, without removal.
AIR = "air"


def slot_name(receptor_tracer: str, upstream_tracer: str) -> str:
    """Name of the slot of receptor tracer j sensitive to upstream tracer i: ``"j<-i"``."""
    return f"{receptor_tracer}<-{upstream_tracer}"


def _precursors(tracer: str, conversions: Sequence[Conversion]) -> list[str]:
    """Every tracer that becomes ``tracer`` through one or more conversions (depth first, no repeats)."""
    found: list[str] = []
    stack = [c.precursor for c in conversions if c.product == tracer]
    while stack:
        p = stack.pop(0)
        if p != tracer and p not in found:
            found.append(p)
            stack.extend(c.precursor for c in conversions if c.product == p)
    return found


@dataclass(frozen=True)
class AdjointSlots:
    """The weights of a backward particle and how they evolve (see the module docstring).

    Attributes
    ----------
    names
        Slot names: ``"air"`` first, then ``"j<-j"`` and ``"j<-i"`` for each receptor tracer j (tracer
        order).
    receptor_tracer, upstream_tracer
        Tracer index of each slot's j and i (-1 for ``air``).
    link_source, link_target, link_rate, link_yield
        Adjoint links: slot ``link_target`` = (j, i) gains ``yield * rate`` times the exposure of slot
        ``link_source`` = (j, k), one link per conversion i -> k (rate s-1, yield product mass per
        precursor mass).
    tracers
        The tracer names the indices refer to.
    """

    names: tuple[str, ...]
    receptor_tracer: np.ndarray
    upstream_tracer: np.ndarray
    link_source: np.ndarray
    link_target: np.ndarray
    link_rate: np.ndarray
    link_yield: np.ndarray
    tracers: tuple[str, ...]

    @property
    def size(self) -> int:
        """Number of slots."""
        return len(self.names)

    def index(self, receptor_tracer: str, upstream_tracer: str) -> int:
        """Index of slot (j, i); -1 when the mechanism has no such path."""
        name = slot_name(receptor_tracer, upstream_tracer)
        return self.names.index(name) if name in self.names else -1

    def initial_weights(self) -> np.ndarray:
        """Weights of a particle at its receptor: 1 for ``air`` and every (j, j), 0 for (j, i != j)."""
        return np.where(self.upstream_tracer == self.receptor_tracer, 1.0, 0.0)

    def per_slot(self, per_tracer: np.ndarray, air: float = 0.0) -> np.ndarray:
        """Return a per-tracer array taken at each slot's upstream tracer (``air`` for the inert slot)."""
        per_tracer = np.asarray(per_tracer, dtype=np.float64)
        return np.where(self.upstream_tracer >= 0, per_tracer[np.maximum(self.upstream_tracer, 0)], air)

    def conversion_loss_per_slot(self, conversions: Sequence[Conversion]) -> np.ndarray:
        """Total conversion rate out of each slot's upstream tracer, s-1 (part of the slot's loss)."""
        k = np.zeros(len(self.tracers))
        for c in conversions:
            if c.precursor in self.tracers:
                k[self.tracers.index(c.precursor)] += c.rate_per_s
        return self.per_slot(k)

    def output_matrix(self, output_composition: Mapping[str, Sequence[str]], output_species: Sequence[str],
                      emitted: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """How emission-folded slots make output species.

        Returns ``(matrix, emitted_index)``: ``matrix[o, s]`` is 1 when slot s's receptor tracer is part of
        output species o and its upstream tracer is emitted; ``emitted_index[s]`` is the position of the
        slot's upstream tracer in ``emitted`` (-1 for ``air`` and for upstream tracers nobody emits).
        """
        emitted_index = np.array([emitted.index(self.tracers[i]) if i >= 0 and self.tracers[i] in emitted
                                  else -1 for i in self.upstream_tracer], dtype=np.int64)
        matrix = np.zeros((len(output_species), self.size))
        for o, name in enumerate(output_species):
            parts = output_composition[name]
            for s in range(self.size):
                j = self.receptor_tracer[s]
                if j >= 0 and self.tracers[j] in parts and emitted_index[s] >= 0:
                    matrix[o, s] = 1.0
        return matrix, emitted_index


def adjoint_slots(tracers: Sequence[str], conversions: Sequence[Conversion]) -> AdjointSlots:
    """Slots and adjoint links of a mechanism's tracers and first-order conversions (module docstring).

    Conversions whose precursor or product is not among ``tracers`` are ignored (the forward run drops
    them too, or counts the converted mass as lost: in both directions the precursor's loss rate keeps
    them, through :meth:`AdjointSlots.conversion_loss_per_slot`).
    """
    tracers = tuple(tracers)
    kept = [c for c in conversions if c.precursor in tracers and c.product in tracers]
    names, receptor, upstream = [AIR], [-1], [-1]
    for j in tracers:
        for i in (j, *sorted(_precursors(j, kept), key=tracers.index)):
            names.append(slot_name(j, i))
            receptor.append(tracers.index(j))
            upstream.append(tracers.index(i))
    source, target, rate, yld = [], [], [], []
    for j in tracers:
        for c in kept:
            s_from, s_to = slot_name(j, c.product), slot_name(j, c.precursor)
            if s_from in names and s_to in names:
                source.append(names.index(s_from))
                target.append(names.index(s_to))
                rate.append(c.rate_per_s)
                yld.append(c.yield_)
    return AdjointSlots(
        names=tuple(names),
        receptor_tracer=np.array(receptor, dtype=np.int64),
        upstream_tracer=np.array(upstream, dtype=np.int64),
        link_source=np.array(source, dtype=np.int64),
        link_target=np.array(target, dtype=np.int64),
        link_rate=np.array(rate, dtype=np.float64),
        link_yield=np.array(yld, dtype=np.float64),
        tracers=tracers,
    )
