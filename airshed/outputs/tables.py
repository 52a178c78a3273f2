"""Console tables of a run file: the source-receptor matrix and the cross-border balance."""

from __future__ import annotations

import numpy as np
import xarray as xr
from rich.table import Table


def source_receptor_table(ds: xr.Dataset, species: str = "PM2.5", top: int = 4) -> Table:
    """Who contributes to each receptor region: total, own share and the largest other sources.

    The full matrix is in the run file (``source_receptor``) and the report; a terminal shows its rows
    as the few largest contributors so that it stays readable with 19 regions.
    """
    sr = ds["source_receptor"].sel(species=species)
    sources = [str(s) for s in ds["source_region"].values]
    table = Table(title=f"{species} by source region: period mean, population-weighted")
    table.add_column("receptor", style="bold")
    table.add_column("total ug m-3", justify="right")
    table.add_column("own %", justify="right")
    table.add_column(f"largest other sources (% of total), top {top}")
    for r in ds["receptor_region"].values:
        row = sr.sel(receptor_region=r).values
        total = row.sum()
        share = 100.0 * row / total if total > 0 else np.full(row.shape, np.nan)
        order = [k for k in np.argsort(-row, kind="stable") if sources[k] != str(r) and row[k] > 0][:top]
        own_pct = share[sources.index(str(r))] if str(r) in sources else 0.0
        table.add_row(str(r), f"{total:.2f}", f"{own_pct:.0f}",
                      ", ".join(f"{sources[k]} {share[k]:.0f}" for k in order))
    return table


def transboundary_table(ds: xr.Dataset, species: str = "PM2.5") -> Table:
    """Own contribution, transboundary share, import, export and net balance per receptor region."""
    sel = {"species": species}
    table = Table(title=f"{species}: who receives what from whom")
    # with an inventory ensemble in the file (airshed.uncertainty), the share's 90 % interval
    interval = ds["transboundary_share_quantile"].sel(**sel) if "transboundary_share_quantile" in ds else None
    ranged = (("5-95 %", "right"),) if interval is not None else ()
    for col, justify in (("region", "left"), ("total ug m-3", "right"), ("own ug m-3", "right"),
                         ("transboundary %", "right"), *ranged, ("import Mperson ug m-3", "right"),
                         ("export Mperson ug m-3", "right"), ("net export", "right")):
        table.add_column(col, justify=justify)
    total = ds["source_receptor"].sel(**sel).sum("source_region")
    for r in ds["receptor_region"].values:
        share = float(ds["transboundary_share"].sel(receptor_region=r, **sel))
        imported = float(ds["import_concentration"].sel(receptor_region=r, **sel))
        own = float(total.sel(receptor_region=r)) - imported
        cells = [str(r), f"{float(total.sel(receptor_region=r)):.2f}", f"{own:.2f}",
                 "-" if np.isnan(share) else f"{100 * share:.0f}"]
        if interval is not None:
            lo, hi = (float(interval.sel(receptor_region=r, quantile=q)) for q in (0.05, 0.95))
            cells.append("-" if np.isnan(lo) else f"{100 * lo:.0f}-{100 * hi:.0f}")
        table.add_row(
            *cells,
            f"{float(ds['import_exposure'].sel(receptor_region=r, **sel)) / 1e6:.1f}",
            f"{float(ds['export_exposure'].sel(receptor_region=r, **sel)) / 1e6:.1f}",
            f"{float(ds['net_export_exposure'].sel(receptor_region=r, **sel)) / 1e6:+.1f}",
        )
    if interval is not None:
        table.caption = f"5-95 %: range of the transboundary share {ensemble_phrase(ds)}"
    return table


def ensemble_phrase(ds: xr.Dataset) -> str:
    """Say what the run file's ensemble sampled, e.g. "over 27 meteorology x 1000 inventory members; ..."."""
    inventory = int(ds.attrs.get("uncertainty_members", 0) or 0)
    met = int(ds.attrs.get("uncertainty_meteorology_members", 1) or 1)
    sources = str(ds.attrs.get("uncertainty_sources_sampled", "inventory"))
    if met > 1:
        members = f"{met} meteorology x {inventory} inventory" if inventory else f"{met} meteorology"
        return f"over {members} members; sampled: {sources}"
    return f"from the inventory's uncertainty over {inventory} members"
