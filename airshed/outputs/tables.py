"""Console tables of a run file: the source-receptor matrix and the cross-border balance."""

from __future__ import annotations

import numpy as np
import xarray as xr
from rich.table import Table


def source_receptor_table(ds: xr.Dataset, species: str = "PM2.5") -> Table:
    """Period-mean concentration in each receptor region (rows) from each source region (columns), ug m-3."""
    sr = ds["source_receptor"].sel(species=species)
    sources = [str(s) for s in ds["source_region"].values]
    table = Table(title=f"{species} source-receptor matrix, period mean, population-weighted (ug m-3)")
    table.add_column("receptor \\ source", style="bold")
    for s in sources:
        table.add_column(s[:10], justify="right")
    table.add_column("total", justify="right", style="bold")
    for r in ds["receptor_region"].values:
        row = sr.sel(receptor_region=r).values
        table.add_row(str(r), *(f"{v:.2f}" for v in row), f"{row.sum():.2f}")
    return table


def transboundary_table(ds: xr.Dataset, species: str = "PM2.5") -> Table:
    """Own contribution, transboundary share, import, export and net balance per receptor region."""
    sel = {"species": species}
    table = Table(title=f"{species}: who receives what from whom")
    for col, justify in (("region", "left"), ("total ug m-3", "right"), ("own ug m-3", "right"),
                         ("transboundary %", "right"), ("import Mperson ug m-3", "right"),
                         ("export Mperson ug m-3", "right"), ("net export", "right")):
        table.add_column(col, justify=justify)
    total = ds["source_receptor"].sel(**sel).sum("source_region")
    for r in ds["receptor_region"].values:
        share = float(ds["transboundary_share"].sel(receptor_region=r, **sel))
        imported = float(ds["import_concentration"].sel(receptor_region=r, **sel))
        own = float(total.sel(receptor_region=r)) - imported
        table.add_row(
            str(r),
            f"{float(total.sel(receptor_region=r)):.2f}",
            f"{own:.2f}",
            "-" if np.isnan(share) else f"{100 * share:.0f}",
            f"{float(ds['import_exposure'].sel(receptor_region=r, **sel)) / 1e6:.1f}",
            f"{float(ds['export_exposure'].sel(receptor_region=r, **sel)) / 1e6:.1f}",
            f"{float(ds['net_export_exposure'].sel(receptor_region=r, **sel)) / 1e6:+.1f}",
        )
    return table
