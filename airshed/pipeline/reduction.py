"""Reduce a work unit's hourly tagged tracer fields to the run file's compact layout.

Cores hand back, for every period, the concentration of each tracer split by tag (tag = source region x
sector). The run file keeps the full field per tag only as a period mean and the hourly split per tag as
receptor-region means; :class:`TaggedAccumulator` does that reduction inside the unit, so no hourly
tagged field ever travels. Hourly results are a mapping keyed by run-file variable name
(:data:`HOURLY_FIELDS`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from airshed.grids.sampling import PointSampler
from airshed.model.lagrangian import SparseField
from airshed.physics.mechanism import Mechanism

HOURLY_FIELDS: tuple[str, ...] = ("concentration", "receptor_concentration", "receptor_contribution")
"""The hourly results of a unit, by run-file variable name: concentration (S, ny, nx), receptor
concentration (Q, S) and receptor contribution (Q, n_tags, S), ug m-3 (S output species, Q receptor
regions); with monitoring stations also ``station_contribution`` (n_station, n_tags, S)."""

HourlyFields = Mapping[str, np.ndarray]
"""One or more hours of :data:`HOURLY_FIELDS`, keyed by name."""
HourSink = Callable[[int, HourlyFields], None]
"""Receives each finished hour: ``sink(hour, fields)``."""


class TaggedAccumulator:
    """Reduce hourly tagged tracer fields (of a work unit, or of one release window) to the run file's arrays.

    Every hour gives the total concentration field, the population-weighted receptor-region series per
    tag and their total; over the hours the accumulator sums the fields per tag (for the period means).
    Every reduction is linear, so it is taken in tracer space and the output species are composed from
    the small results (the mechanism's output matrix applied last): three passes over an hour's tagged
    field instead of a tagged field per output species. The hourly fields go to ``hour_sink(hour,
    fields)`` as soon as an hour is done, or are kept (:attr:`hourly`, each with a leading hour axis)
    for a unit that sends them back.

    A core with particle sampling classes hands each hour's fields with the classes first,
    (n_classes, n_tags, n_tracers, ny, nx); their sum is the hour's concentration, reduced as above, and
    the classes' parts are summed over the hours at the receptor regions per tag
    (:attr:`class_receptor_contribution_sum`, (C, Q, n_tags, S)) and as fields per source region
    (:attr:`class_contribution_sum`, (C, n_regions, S, ny, nx)): what the Monte Carlo standard errors of
    the period means need (:mod:`airshed.uncertainty.sampling`). None without classes.

    Parameters
    ----------
    n_hours
        Hours (periods) of the unit.
    n_tags
        Length of the tag axis, ``region * n_sectors + sector``.
    n_sectors
        Sectors per source region (the sampling classes' fields are kept per region).
    weights_population
        (n_receptor, ny, nx) normalised population weights of the receptor regions
        (see :func:`~airshed.model.apportionment.receptor_weights`).
    mechanism
        Composes the output species from the tracers.
    tracers
        Names of the tracer axis of the fields passed to :meth:`add`.
    hour_sink
        Called with each finished hour instead of keeping it.
    stations
        Monitoring stations (``[receptors] stations``): each hour's tagged fields are also sampled there
        (:func:`sample_stations`) and handed on as ``station_contribution``.
    spread
        A zero (n_tags, n_tracers, ny * nx) buffer that a sparse hour is spread into for the
        receptor-region sums and left zero after: accumulators used one at a time may share one (default:
        the accumulator's own, made when needed).
    """

    def __init__(self, n_hours: int, n_tags: int, n_sectors: int, weights_population: np.ndarray,
                 mechanism: Mechanism, tracers: tuple[str, ...], hour_sink: HourSink | None = None,
                 stations: PointSampler | None = None, spread: np.ndarray | None = None):
        nq, ny, nx = weights_population.shape
        ns, ntr = len(mechanism.output_species), len(tracers)
        self.n_hours, self.n_tags, self.n_sectors, self.shape = n_hours, n_tags, n_sectors, (ny, nx)
        self.to_output = mechanism.output_matrix(tracers)
        self.w_pop = weights_population.reshape(nq, ny * nx)
        self._tracer_sum = np.zeros((n_tags, ntr, ny * nx))
        self._receptor_tracer_sum = np.zeros((nq, n_tags, ntr))
        self.hour_sink = hour_sink
        self.stations = stations
        shapes = dict(zip(HOURLY_FIELDS, ((ns, ny, nx), (nq, ns), (nq, n_tags, ns)), strict=True))
        if stations is not None:
            shapes["station_contribution"] = (len(stations), n_tags, ns)
        self.hourly: dict[str, np.ndarray] | None = None if hour_sink is not None else {
            name: np.zeros((n_hours, *shape)) for name, shape in shapes.items()
        }
        self._seen = np.zeros(n_hours, dtype=bool)
        self._dense = spread  # a sparse hour spread out for the receptor-region sums
        self._class_receptor_tracer_sum: np.ndarray | None = None  # (C, Q, n_tags, n_tracers)
        self._class_region_tracer_sum: np.ndarray | None = None  # (C, n_regions, n_tracers, cells)

    @property
    def contribution_sum(self) -> np.ndarray:
        """(n_tags, S, ny, nx) the hourly output fields per tag summed over the hours, ug m-3."""
        return np.matmul(self.to_output, self._tracer_sum).reshape(self.n_tags, -1, *self.shape)

    @property
    def receptor_contribution_sum(self) -> np.ndarray:
        """(Q, n_tags, S) the hourly receptor-region series per tag summed over the hours, ug m-3."""
        return self._receptor_tracer_sum @ self.to_output.T

    @property
    def class_receptor_contribution_sum(self) -> np.ndarray | None:
        """(C, Q, n_tags, S) each sampling class's receptor-region series summed over the hours, or None."""
        if self._class_receptor_tracer_sum is None:
            return None
        return self._class_receptor_tracer_sum @ self.to_output.T

    @property
    def class_contribution_sum(self) -> np.ndarray | None:
        """(C, n_regions, S, ny, nx) each sampling class's fields per source region summed over the hours."""
        if self._class_region_tracer_sum is None:
            return None
        C, R = self._class_region_tracer_sum.shape[:2]
        return np.matmul(self.to_output, self._class_region_tracer_sum).reshape(C, R, -1, *self.shape)

    def add(self, hour: int, tagged: np.ndarray | SparseField) -> None:
        """Add one hour's mean concentration, (n_tags, n_tracers, ny, nx) in ug m-3 (classes first if any).

        ``tagged`` is dense or a :class:`~airshed.model.lagrangian.SparseField` (a particle window's
        hour, zero outside the (tag, cell) pairs it lists).
        """
        if isinstance(tagged, SparseField):
            self._add_sparse(hour, tagged)
            return
        if tagged.ndim == 5:  # particle sampling classes: their sum is the concentration
            self._add_classes(tagged)
            tagged = tagged.sum(axis=0)
        ntag, ntr, ny, nx = tagged.shape
        flat = tagged.reshape(ntag, ntr, ny * nx)
        self._tracer_sum += flat
        self._reduce(hour, flat, flat.sum(axis=0))

    def _add_sparse(self, hour: int, field: SparseField) -> None:
        """Add an hour given where it is not zero: the sums of :meth:`add` in its order, bit for bit.

        Every sum skips only +0.0 entries (x + 0.0 == x), and the sum over tags adds the (tag, cell)
        pairs in tag order as the dense sum does; the receptor-region sums (a matrix product over all
        cells) are taken over the field spread out as it is.
        """
        ntag, ntr, ncell = self._tracer_sum.shape
        field.add_to(self._tracer_sum)
        index, values = field.index, field.values
        cells = field.pairs % ncell
        total = np.stack([np.bincount(cells, values[:, s], ncell) for s in range(ntr)])  # tags in order
        if self._dense is None:
            self._dense = np.zeros_like(self._tracer_sum)
        dense = self._dense.reshape(-1)
        dense[index] = values
        self._reduce(hour, self._dense, total)
        dense[index] = 0.0

    def _reduce(self, hour: int, flat: np.ndarray, total: np.ndarray) -> None:
        """Reduce one hour, ``flat`` (n_tags, n_tracers, cells) with its sum over tags ``total``."""
        ntag, ntr, ncell = flat.shape
        ny, nx = self.shape
        receptor_tracers = (self.w_pop @ flat.reshape(ntag * ntr, ncell).T).reshape(-1, ntag, ntr)
        self._receptor_tracer_sum += receptor_tracers
        receptor_contribution = receptor_tracers @ self.to_output.T
        concentration = (self.to_output @ total).reshape(-1, ny, nx)
        fields = dict(zip(HOURLY_FIELDS, (concentration, receptor_contribution.sum(axis=1),
                                          receptor_contribution), strict=True))
        if self.stations is not None:
            fields["station_contribution"] = sample_stations(flat, self.stations) @ self.to_output.T
        if self.hour_sink is not None:
            self.hour_sink(hour, fields)
        else:
            for name, value in fields.items():
                self.hourly[name][hour] = value
        self._seen[hour] = True

    def _add_classes(self, classes: np.ndarray) -> None:
        """Add the sampling classes' parts of one hour (C, n_tags, n_tracers, ny, nx), in tracer space."""
        n_classes, ntag, ntr, ny, nx = classes.shape
        K, nq = self.n_sectors, self.w_pop.shape[0]
        if self._class_receptor_tracer_sum is None:
            self._class_receptor_tracer_sum = np.zeros((n_classes, nq, ntag, ntr))
            self._class_region_tracer_sum = np.zeros((n_classes, ntag // K, ntr, ny * nx))
        flat = classes.reshape(n_classes, ntag, ntr, ny * nx)
        for c in range(n_classes):
            self._class_receptor_tracer_sum[c] += (
                self.w_pop @ flat[c].reshape(ntag * ntr, ny * nx).T).reshape(nq, ntag, ntr)
        self._class_region_tracer_sum += flat.reshape(n_classes, ntag // K, K, ntr, ny * nx).sum(axis=2)

    def check_complete(self) -> None:
        """Fail when an hour of the unit was never added."""
        if not self._seen.all():
            missing = np.flatnonzero(~self._seen)
            raise RuntimeError(f"core returned no result for hours {missing[:5].tolist()} ...")


def sample_stations(tagged: np.ndarray, stations: PointSampler) -> np.ndarray:
    """Read one hour's tagged fields (n_tags, n_species, n_cells) at the stations: (n_station, n_tags, ...).

    Each station's value is the weighted sum of the cells of its :class:`~airshed.grids.sampling.PointSampler`
    (bilinear between cell centres, or the cell value), so the tags still add up to the sampled total.
    """
    return stations.sample(tagged)


def station_totals(station_contribution: np.ndarray, n_sectors: int) -> np.ndarray:
    """Sum (..., n_station, n_tags, S) over the tags region by region, in region order: (..., n_station, S).

    The same order of additions as every other sum over tags, so a run split into region units gives the
    bits of a serial run.
    """
    total = np.zeros(station_contribution.shape[:-2] + station_contribution.shape[-1:])
    for r in range(station_contribution.shape[-2] // n_sectors):
        total += station_contribution[..., r * n_sectors:(r + 1) * n_sectors, :].sum(axis=-2)
    return total
