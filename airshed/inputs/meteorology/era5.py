"""ERA5 as downloaded from the Copernicus Climate Data Store (NetCDF), read without conversion.

Handles both CDS layouts: the older one (``time``, ``level``, ``expver``) and the newer one (since
2024: ``valid_time``, ``pressure_level``, ``number``/``expver`` coordinates); latitude descending;
longitude 0..360 or -180..180; single-level and pressure-level variables in one or several files
(split by variable or by time).

ECMWF conventions (ERA5 documentation, Hersbach et al. 2020, QJRMS 146:1999, and the ERA5 data
documentation on the CDS): accumulated fields in hourly data are accumulated over the hour ending at
the valid time, whatever time step was requested, so ``sshf`` (J m-2) is divided by 3600 s and ``tp``
(m) is an hourly amount; vertical fluxes are positive *downward*, so the upward sensible heat flux is
``-sshf / 3600`` (or ``-ishf`` for the instantaneous flux, W m-2). Geopotential ``z`` (m2 s-2) on
pressure levels gives geopotential height z/g0; the ground is the single-level ``z`` (orography) when
present, else the height where the pressure-level geopotential reaches the surface pressure ``sp``
(interpolated in ln p), else the highest-pressure level.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from airshed.inputs.meteorology.cf import LatLonConventions, LatLonReader

ERA5_NAMES: dict[str, tuple[str, ...]] = {
    "u10": ("u10", "10u", "U10", "uas"),
    "v10": ("v10", "10v", "V10", "vas"),
    "t2m": ("t2m", "2t", "T2", "tas"),
    "blh": ("blh",),
    "shf": ("sshf", "ishf"),
    "ustar": ("zust",),
    "cloud_cover": ("tcc",),
    "precip": ("tp",),
    "surface_pressure": ("sp",),
    "surface_geopotential": ("z",),
    "z0": ("fsr",),
    "u": ("u",),
    "v": ("v",),
    "omega": ("w",),
    "t": ("t",),
    "geopotential": ("z",),
}
ERA5_ACCUMULATION_SECONDS = 3600.0
"""Accumulation period of ERA5 hourly accumulated fields (sshf, tp), s."""


def open_era5(paths: Sequence[Path]) -> LatLonReader:
    """Open ERA5 single-level and/or pressure-level NetCDF files from the CDS (lazily)."""
    return LatLonReader(
        paths,
        LatLonConventions(
            names=ERA5_NAMES, shf_downward_positive=True, accumulation_seconds=ERA5_ACCUMULATION_SECONDS
        ),
    )
