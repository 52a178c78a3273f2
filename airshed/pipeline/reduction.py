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
    """Reduce a work unit's hourly tagged tracer fields to the run file's arrays.

    Every hour gives the total concentration field, the population-weighted receptor-region series per
    tag and their total; over the hours the accumulator sums the fields per tag (for the period means).
    Sums over tags are taken region by region (a region's sectors, then the regions in order starting
    from zero), which is how the units of a run split by source region are merged: so a run over all
    regions and its split into regions give the same bits. The hourly fields go to ``hour_sink(hour,
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
    n_regions, n_sectors
        Tag axis is ``region * n_sectors + sector`` (regions of the unit).
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
    """

    def __init__(self, n_hours: int, n_regions: int, n_sectors: int, weights_population: np.ndarray,
                 mechanism: Mechanism, tracers: tuple[str, ...], hour_sink: HourSink | None = None,
                 stations: PointSampler | None = None):
        nq, ny, nx = weights_population.shape
        ns, ntag = len(mechanism.output_species), n_regions * n_sectors
        self.n_hours, self.n_regions, self.n_sectors = n_hours, n_regions, n_sectors
        self.to_output = mechanism.output_matrix(tracers)
        self.w_pop = weights_population.reshape(nq, ny * nx)
        self.contribution_sum = np.zeros((ntag, ns, ny, nx))
        self.receptor_contribution_sum = np.zeros((nq, ntag, ns))
        self.hour_sink = hour_sink
        self.stations = stations
        shapes = dict(zip(HOURLY_FIELDS, ((ns, ny, nx), (nq, ns), (nq, ntag, ns)), strict=True))
        if stations is not None:
            shapes["station_contribution"] = (len(stations), ntag, ns)
        self.hourly: dict[str, np.ndarray] | None = None if hour_sink is not None else {
            name: np.zeros((n_hours, *shape)) for name, shape in shapes.items()
        }
        self._seen = np.zeros(n_hours, dtype=bool)
        self.class_receptor_contribution_sum: np.ndarray | None = None
        self.class_contribution_sum: np.ndarray | None = None

    def add(self, hour: int, tagged: np.ndarray) -> None:
        """Add one hour's mean concentration, (n_tags, n_tracers, ny, nx) in ug m-3 (classes first if any)."""
        if tagged.ndim == 5:  # particle sampling classes: their sum is the concentration
            self._add_classes(tagged)
            tagged = tagged.sum(axis=0)
        ntag, ntr, ny, nx = tagged.shape
        K = self.n_sectors
        # (S, tracers) @ (tag, tracers, cells): one small product per tag, contiguous (tag, S, cells)
        out = np.matmul(self.to_output, tagged.reshape(ntag, ntr, ny * nx)).reshape(ntag, -1, ny, nx)
        ns = out.shape[1]
        self.contribution_sum += out
        concentration = np.zeros((ns, ny, nx))
        receptor_contribution = np.empty((self.w_pop.shape[0], ntag, ns))
        receptor_concentration = np.zeros((self.w_pop.shape[0], ns))
        for r in range(self.n_regions):
            part = out[r * K:(r + 1) * K]
            concentration += part.sum(axis=0)
            rc = (self.w_pop @ part.reshape(K * ns, ny * nx).T).reshape(-1, K, ns)
            receptor_contribution[:, r * K:(r + 1) * K] = rc
            receptor_concentration += rc.sum(axis=1)
        self.receptor_contribution_sum += receptor_contribution
        fields = dict(zip(HOURLY_FIELDS, (concentration, receptor_concentration, receptor_contribution),
                          strict=True))
        if self.stations is not None:
            fields["station_contribution"] = sample_stations(out, self.stations)
        if self.hour_sink is not None:
            self.hour_sink(hour, fields)
        else:
            for name, value in fields.items():
                self.hourly[name][hour] = value
        self._seen[hour] = True

    def _add_classes(self, classes: np.ndarray) -> None:
        """Add the sampling classes' parts of one hour (C, n_tags, n_tracers, ny, nx), one class at a time."""
        n_classes, ntag, ntr, ny, nx = classes.shape
        K, nq = self.n_sectors, self.w_pop.shape[0]
        ns = self.to_output.shape[0]
        if self.class_receptor_contribution_sum is None:
            self.class_receptor_contribution_sum = np.zeros((n_classes, nq, ntag, ns))
            self.class_contribution_sum = np.zeros((n_classes, ntag // K, ns, ny, nx))
        for c in range(n_classes):
            out = np.matmul(self.to_output, classes[c].reshape(ntag, ntr, ny * nx))  # (tag, S, cells)
            for r in range(ntag // K):  # region by region, as in add: the same bits in any partition
                part = out[r * K:(r + 1) * K]
                rc = (self.w_pop @ part.reshape(K * ns, ny * nx).T).reshape(nq, K, ns)
                self.class_receptor_contribution_sum[c, :, r * K:(r + 1) * K] += rc
                self.class_contribution_sum[c, r] += part.sum(axis=0).reshape(ns, ny, nx)

    def check_complete(self) -> None:
        """Fail when an hour of the unit was never added."""
        if not self._seen.all():
            missing = np.flatnonzero(~self._seen)
            raise RuntimeError(f"core returned no result for hours {missing[:5].tolist()} ...")


def sample_stations(tagged: np.ndarray, stations: PointSampler) -> np.ndarray:
    """Read one hour's tagged output fields (n_tags, S, ny, nx) at the stations: (n_station, n_tags, S).

    Each station's value is the weighted sum of the cells of its :class:`~airshed.grids.sampling.PointSampler`
    (bilinear between cell centres, or the cell value), so the tags still add up to the sampled total.
    """
    ntag, ns, ny, nx = tagged.shape
    return stations.sample(tagged.reshape(ntag, ns, ny * nx))


def station_totals(station_contribution: np.ndarray, n_sectors: int) -> np.ndarray:
    """Sum (..., n_station, n_tags, S) over the tags region by region, in region order: (..., n_station, S).

    The same order of additions as every other sum over tags, so a run split into region units gives the
    bits of a serial run.
    """
    total = np.zeros(station_contribution.shape[:-2] + station_contribution.shape[-1:])
    for r in range(station_contribution.shape[-2] // n_sectors):
        total += station_contribution[..., r * n_sectors:(r + 1) * n_sectors, :].sum(axis=-2)
    return total
