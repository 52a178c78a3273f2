"""``ds.airshed``: the common questions of a run file as pandas tables (an xarray accessor).

Registered when ``airshed`` is imported::

    import airshed
    ds = airshed.open_run("examples/jjj_winter.nc")
    ds.airshed.source_receptor("PM2.5")       # DataFrame: receptor region x source region, ug m-3
    ds.airshed.transboundary_shares()         # Series: share of each region's PM2.5 from elsewhere
"""

from __future__ import annotations

import pandas as pd
import xarray as xr

from airshed.errors import AirshedInputError

WEIGHTINGS = {"population": "source_receptor", "area": "source_receptor_area"}
"""Receptor-region weighting -> run-file variable of the source-receptor matrix."""


@xr.register_dataset_accessor("airshed")
class RunAccessor:
    """Tables of a run file (README "The run file"): concentrations in ug m-3, period means."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def _variable(self, name: str) -> xr.DataArray:
        if name not in self._ds:
            raise AirshedInputError(f"run file has no variable {name!r}; is it a run file of `airshed run`?")
        return self._ds[name]

    def _species(self, da: xr.DataArray, species: str) -> xr.DataArray:
        names = [str(s) for s in self._ds["species"].values]
        if species not in names:
            raise AirshedInputError(f"unknown species {species!r}; the run file holds {', '.join(names)}")
        return da.sel(species=species)

    def source_receptor(self, species: str = "PM2.5", weighting: str = "population") -> pd.DataFrame:
        """Period-mean concentration in each receptor region (rows) caused by each source region (columns).

        ``weighting``: ``"population"`` (population-weighted receptor means) or ``"area"``. Rows sum to the
        receptor region's mean concentration.
        """
        if weighting not in WEIGHTINGS:
            raise AirshedInputError(f"unknown weighting {weighting!r}; expected 'population' or 'area'")
        da = self._species(self._variable(WEIGHTINGS[weighting]), species)
        return da.transpose("receptor_region", "source_region").to_pandas()

    def transboundary_shares(self, species: str = "PM2.5") -> pd.Series:
        """Share of each receptor region's period-mean concentration from other regions (1 - own/total)."""
        return self._species(self._variable("transboundary_share"), species).to_pandas()

    def receptor_series(self, species: str = "PM2.5") -> pd.DataFrame:
        """Hourly population-weighted concentration of each receptor region (columns) over time (rows)."""
        da = self._species(self._variable("receptor_concentration"), species)
        return da.transpose("time", "receptor_region").to_pandas()

    def contributions(self, receptor_region: str, species: str = "PM2.5") -> pd.DataFrame:
        """Period-mean concentration in one receptor region by source region (rows) and sector (columns)."""
        da = self._species(self._variable("receptor_contribution"), species)
        regions = [str(r) for r in self._ds["receptor_region"].values]
        if receptor_region not in regions:
            raise AirshedInputError(f"unknown receptor region {receptor_region!r}; the run file holds "
                                    f"{', '.join(regions)}")
        mean = da.sel(receptor_region=receptor_region).mean("time")
        return mean.transpose("source_region", "sector").to_pandas()

    def pm25_by_precursor(self) -> pd.DataFrame:
        """Period-mean PM2.5 in each receptor region (rows) caused by each emitted species (columns)."""
        da = self._variable("pm25_source_receptor").sum("source_region")
        return da.transpose("receptor_region", "emitted_species").to_pandas()

    def mass_budget(self) -> pd.DataFrame:
        """Mass budget (kg), budget terms (rows) by tracer (columns); empty for a core that keeps none."""
        if "mass_budget" not in self._ds:
            return pd.DataFrame()
        return self._ds["mass_budget"].transpose("budget_term", "tracer").to_pandas()
