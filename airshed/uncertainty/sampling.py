"""Monte Carlo standard errors of a particle run from its independent particle classes (batch means).

With ``[uncertainty] particle_classes = n`` (FLEXPART's ``nclassunc``) every particle belongs to one of
``n`` classes (:func:`airshed.model.release.particle_class`: each source's particles of each period go
round the classes), and the pipeline keeps each class's part of the period sums
(:class:`~airshed.pipeline.reduction.TaggedAccumulator`). Each class alone is the run with 1/n of its
particles, so the spread of the ``n`` class estimates gives the Monte Carlo error of the run's value
(:func:`~airshed.uncertainty.statistics.batch_means` for sums of particles, the jackknife for ratios),
at no extra particles.

The run file gains (with the run's coordinates):

=========================================  ============================================================
``source_receptor_standard_error``          (receptor_region, source_region, species), ug m-3
``pm25_source_receptor_standard_error``     (receptor_region, source_region, emitted_species), ug m-3
``transboundary_share_standard_error``      (receptor_region, species), 1 (jackknife)
``source_share_standard_error``             (receptor_region, source_region, species), 1 (jackknife):
                                            of each source region's share of the receptor's total
``contribution_standard_error``             (source_region, species, y, x), ug m-3: the period-mean field
                                            of each source region (its sectors together)
=========================================  ============================================================

and the global attributes ``sampling_classes``, ``sampling_worst_share_cv`` (the largest coefficient of
variation of a PM2.5 source share above :data:`SHARE_FLOOR`), ``sampling_worst_share`` (where) and
``sampling_particles_per_hour_for_cv`` (particles per hour that bring it to :data:`TARGET_CV`; the error
falls as 1/sqrt(particles), :func:`~airshed.uncertainty.statistics.particles_for_cv`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from airshed.grids.cf import GRID_VARIABLE_ATTRS
from airshed.model.apportionment import transboundary_metrics
from airshed.physics.mechanism import Mechanism
from airshed.uncertainty.statistics import batch_means, jackknife, particles_for_cv

__all__ = ["SHARE_FLOOR", "TARGET_CV", "SamplingErrors", "sampling_errors"]

SHARE_FLOOR = 0.01
"""Source shares of a receptor's PM2.5 below this are left out of the particle-number statement."""
TARGET_CV = 0.05
"""Coefficient of variation the particle-number statement aims at."""


@dataclass(frozen=True)
class SamplingErrors:
    """Standard errors of a run's period means (run-file variables) and the particle-number statement."""

    variables: dict[str, xr.DataArray]
    attrs: dict[str, float | int | str]


def _shares(sr: np.ndarray) -> np.ndarray:
    """Share of each source region in each receptor's total, (..., Q, R, S) -> same shape (NaN where 0)."""
    total = sr.sum(axis=-2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total != 0, sr / total, np.nan)


def sampling_errors(class_receptor_sum: np.ndarray, class_field_sum: np.ndarray, n_hours: int,
                    n_sectors: int, own_source: np.ndarray, population_region: np.ndarray,
                    mechanism: Mechanism, regions: list[str], receptors: list[str],
                    particles_per_hour: float) -> SamplingErrors:
    """Compute the standard errors of a particle run's period means from its classes' sums over the hours.

    Parameters
    ----------
    class_receptor_sum
        (C, Q, R * K, S) each class's population-weighted receptor contributions per tag, summed over the
        ``n_hours`` hours, ug m-3.
    class_field_sum
        (C, R, S, ny, nx) each class's contribution field per source region, summed over the hours.
    n_hours, n_sectors
        Hours summed; K.
    own_source
        (Q,) each receptor region's index on the source-region axis.
    population_region
        (Q,) persons (the cross-border metrics' weights).
    mechanism
        Output and emitted species, and which precursor each part of PM2.5 comes from.
    regions, receptors
        Names of the source and receptor regions (for the statement of the worst share).
    particles_per_hour
        The run's ``lagrangian.particles_per_hour``.
    """
    C, Q, ntag, S = class_receptor_sum.shape
    R = ntag // n_sectors
    sr = (class_receptor_sum / n_hours).reshape(C, Q, R, n_sectors, S).sum(axis=3)  # (C, Q, R, S)
    sr_se = batch_means(sr).standard_error
    pm = np.zeros((C, Q, R, len(mechanism.emitted)))
    for part, origin in mechanism.components("PM2.5"):
        pm[..., mechanism.emitted.index(origin)] += sr[..., mechanism.output_species.index(part)]
    pm_se = batch_means(pm).standard_error

    def share_of(total: np.ndarray) -> np.ndarray:  # (Q, R, S) -> (Q, S)
        out = np.empty((Q, S))
        for s in range(S):
            out[:, s] = transboundary_metrics(total[:, :, s], own_source, population_region)[
                "transboundary_share"]
        return out

    share = jackknife(sr, share_of)
    source_share = jackknife(sr, _shares)
    field_se = batch_means(class_field_sum / n_hours).standard_error
    # the particle-number statement: every PM2.5 source share above the floor to TARGET_CV
    p = mechanism.output_species.index("PM2.5")
    value, se = source_share.value[..., p], source_share.standard_error[..., p]
    big = np.isfinite(value) & (value > SHARE_FLOOR)
    cv = np.where(big, se / np.where(big, value, 1.0), np.nan)
    attrs: dict[str, float | int | str] = {"sampling_classes": C}
    if np.any(big):
        q, r = np.unravel_index(np.nanargmax(cv), cv.shape)
        attrs.update(
            sampling_worst_share_cv=float(cv[q, r]),
            sampling_worst_share=f"{regions[r]} in {receptors[q]}: {100 * value[q, r]:.1f} % of PM2.5",
            sampling_particles_per_hour_for_cv=float(particles_for_cv(particles_per_hour, cv, TARGET_CV)),
            sampling_target_cv=TARGET_CV,
            sampling_share_floor=SHARE_FLOOR,
        )
    note = f"Monte Carlo standard error from {C} independent particle classes (batch means)"
    jack = f"Monte Carlo standard error from {C} independent particle classes (jackknife)"
    variables = {
        "source_receptor_standard_error": xr.DataArray(
            sr_se, dims=("receptor_region", "source_region", "species"),
            attrs={"units": "ug m-3", "long_name": "Monte Carlo standard error of source_receptor",
                   "comment": note}),
        "pm25_source_receptor_standard_error": xr.DataArray(
            pm_se, dims=("receptor_region", "source_region", "emitted_species"),
            attrs={"units": "ug m-3", "long_name": "Monte Carlo standard error of pm25_source_receptor",
                   "comment": note}),
        "transboundary_share_standard_error": xr.DataArray(
            share.standard_error, dims=("receptor_region", "species"),
            attrs={"units": "1", "long_name": "Monte Carlo standard error of transboundary_share",
                   "comment": jack}),
        "source_share_standard_error": xr.DataArray(
            source_share.standard_error, dims=("receptor_region", "source_region", "species"),
            attrs={"units": "1", "long_name": "Monte Carlo standard error of each source region's share of "
                   "the receptor region's concentration (source_receptor / its sum over source regions)",
                   "comment": jack}),
        "contribution_standard_error": xr.DataArray(
            field_se, dims=("source_region", "species", "y", "x"),
            attrs={"units": "ug m-3", "long_name": "Monte Carlo standard error of the period-mean "
                   "concentration caused by each source region (contribution summed over sectors)",
                   **GRID_VARIABLE_ATTRS, "coordinates": "lat lon", "comment": note}),
    }
    return SamplingErrors(variables, attrs)
