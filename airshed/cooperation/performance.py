"""Fair performance: split each receptor region's PM2.5 change between two runs by whose emissions moved it.

For a linear model the change in receptor ``i`` between run A and run B is exactly

    dC_i = dSR[i, i] + sum_{j != i, j modelled} dSR[i, j] + dSR[i, outside] + dU_i,

where ``dSR[i, j] = sum_p (SR_B - SR_A)[i, j, p]`` and ``U`` is the part of ``pm25_total`` no source region
explains (background). The first term is the region's *own* performance, the second what its modelled
neighbours did to it. Meteorology differences between the runs show up inside every term (a source-receptor
entry is emissions times transport), so the split is "whose emissions, as transported in each run".
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from airshed.cooperation.policy import OUTSIDE_REGION
from airshed.cooperation.runfile import run_tables
from airshed.errors import DataError


def performance_split(run_a: xr.Dataset, run_b: xr.Dataset) -> xr.Dataset:
    """Split each receptor's PM2.5 change from run A to run B into own, others', outside and background.

    Parameters
    ----------
    run_a, run_b
        Run datasets with ``pm25_source_receptor`` and ``pm25_total`` on the same regions and precursors.

    Returns
    -------
    xarray.Dataset
        On ``receptor_region``: ``pm25_change``, ``own_emissions_change``, ``other_regions_change``,
        ``outside_change``, ``unattributed_change`` (ug m-3; they add up to ``pm25_change``), and
        ``source_contribution_change(receptor_region, source_region, precursor)``.
    """
    a, b = run_tables(run_a, "run A"), run_tables(run_b, "run B")
    for name in ("receptors", "sources", "precursors"):
        if getattr(a, name) != getattr(b, name):
            raise DataError(f"run A and run B differ in {name}: {getattr(a, name)} vs {getattr(b, name)}")
    d_sr = b.source_receptor - a.source_receptor
    d_by_source = d_sr.sum(axis=2)
    d_total = b.pm25_total - a.pm25_total
    sources = np.array(a.sources)
    own_mask = sources[None, :] == np.array(a.receptors)[:, None]
    outside_mask = np.broadcast_to(sources == OUTSIDE_REGION, own_mask.shape)
    own = np.where(own_mask, d_by_source, 0.0).sum(axis=1)
    outside = np.where(outside_mask, d_by_source, 0.0).sum(axis=1)
    others = np.where(~own_mask & ~outside_mask, d_by_source, 0.0).sum(axis=1)
    unattributed = d_total - d_by_source.sum(axis=1)
    coords = {"receptor_region": a.receptors}
    attrs = {"units": "ug m-3"}

    def var(values: np.ndarray, long_name: str) -> xr.DataArray:
        return xr.DataArray(
            values, dims="receptor_region", coords=coords, attrs={**attrs, "long_name": long_name}
        )

    return xr.Dataset(
        {
            "pm25_change": var(d_total, "change in period-mean PM2.5, run B minus run A"),
            "own_emissions_change": var(own, "part of the change from the receptor region's own emissions"),
            "other_regions_change": var(others, "part of the change from other modelled regions' emissions"),
            "outside_change": var(outside, f"part of the change from the {OUTSIDE_REGION!r} source region"),
            "unattributed_change": var(unattributed, "change in PM2.5 not attributed to any source region"),
            "source_contribution_change": xr.DataArray(
                d_sr,
                dims=("receptor_region", "source_region", "precursor"),
                coords={**coords, "source_region": a.sources, "precursor": a.precursors},
                attrs={**attrs, "long_name": "change in source-receptor contribution, run B minus run A"},
            ),
        },
        attrs={"title": "airshed fair-performance split of PM2.5 changes (linear model, exact)"},
    )
