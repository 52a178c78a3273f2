"""Source apportionment: from tagged contribution fields to source-receptor tables.

Both cores return concentrations already split by tag (source region x sector), so attribution here is
bookkeeping over linear quantities, not a model: receptor-region means are weighted sums of the gridded
contributions, and the cross-border externality is read off the source-receptor matrix.

Definitions (all period means; ``SR[r, s]`` is the mean concentration in receptor region ``r`` caused by
emissions of source region ``s``, ug m-3):

- transboundary share of ``r``: ``1 - SR[r, r] / sum_s SR[r, s]`` (the fraction of what ``r`` breathes that
  it did not emit; "outside" sources count as imported);
- import of ``r``: ``pop_r * sum_{s != r} SR[r, s]`` (person ug m-3) -- what it receives from others;
- export of ``s``: ``sum_{r != s} pop_r * SR[r, s]`` (person ug m-3) -- what it sends to others, weighted by
  the receivers' population;
- net balance: ``export - import`` (positive: a net exporter of pollution).

Exposure-weighted units make import and export comparable across regions of different sizes; the
concentration-only import ``sum_{s != r} SR[r, s]`` is returned as well.
"""

from __future__ import annotations

import numpy as np


def receptor_weights(
    region_fraction: np.ndarray, cell_area: np.ndarray, population: np.ndarray | None = None
) -> np.ndarray:
    """Normalised weights of each grid cell in each receptor region.

    Parameters
    ----------
    region_fraction
        (nregion, ny, nx) area fraction of each cell inside each region.
    cell_area
        (ny, nx) cell area, m2.
    population
        (ny, nx) persons per cell, or None for area weighting. A region with no population falls back
        to area weighting, so its mean is still defined.

    Returns
    -------
    np.ndarray
        (nregion, ny, nx) weights summing to 1 over (y, x) for every region that has any area; a region
        with no area in the domain has all-zero weights.
    """
    area_w = region_fraction * cell_area[None]
    if population is None:
        w = area_w
    else:
        # population is per cell; a cell split between regions gives each its area share of the people
        w = region_fraction * population[None]
        empty = w.sum(axis=(1, 2)) <= 0
        w[empty] = area_w[empty]
    total = w.sum(axis=(1, 2), keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def source_receptor_matrix(contribution: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean concentration in each receptor region from each source.

    Parameters
    ----------
    contribution
        (nsource, nspecies, ny, nx) period-mean concentration caused by each source (region or tag).
    weights
        (nreceptor, ny, nx) normalised receptor weights from :func:`receptor_weights`.

    Returns
    -------
    np.ndarray
        (nreceptor, nsource, nspecies) weighted means, same units as ``contribution``.
    """
    ns, nsp, ny, nx = contribution.shape
    flat = contribution.reshape(ns * nsp, ny * nx)
    sr = weights.reshape(weights.shape[0], ny * nx) @ flat.T
    return sr.reshape(weights.shape[0], ns, nsp)


def transboundary_metrics(
    sr: np.ndarray, own_source: np.ndarray, population: np.ndarray
) -> dict[str, np.ndarray]:
    """Transboundary share, import, export and net balance from a source-receptor matrix.

    Parameters
    ----------
    sr
        (nreceptor, nsource) period-mean concentration for one species, ug m-3.
    own_source
        (nreceptor,) index of the receptor's own source region in ``sr``'s source axis, -1 if it has none
        (then all it receives is imported).
    population
        (nreceptor,) persons in each receptor region.

    Returns
    -------
    dict
        ``total`` (nreceptor,), ``own`` (nreceptor,), ``transboundary_share`` (nreceptor,, nan where the
        total is 0), ``import_concentration`` (nreceptor,, ug m-3), ``import_exposure`` (nreceptor,,
        person ug m-3), ``export_exposure`` (nreceptor,, person ug m-3, for the receptor region acting as
        source; 0 when it has no source index) and ``net_export_exposure``.
    """
    nrec = sr.shape[0]
    total = sr.sum(axis=1)
    own = np.array([sr[r, own_source[r]] if own_source[r] >= 0 else 0.0 for r in range(nrec)])
    share = np.divide(total - own, total, out=np.full(nrec, np.nan), where=total > 0)
    imp_conc = total - own
    imp_exp = population * imp_conc
    exposure = population[:, None] * sr  # person ug m-3 from each source in each receptor
    export = np.zeros(nrec)
    for r in range(nrec):
        s = own_source[r]
        if s >= 0:
            others = np.arange(nrec) != r
            export[r] = exposure[others, s].sum()
    return {
        "total": total,
        "own": own,
        "transboundary_share": share,
        "import_concentration": imp_conc,
        "import_exposure": imp_exp,
        "export_exposure": export,
        "net_export_exposure": export - imp_exp,
    }
