"""Meteorology readers (ERA5, WRF, CF NetCDF) and their regridding onto the model grid."""

from airshed.inputs.meteorology.dataset import MetSource, open_meteorology

__all__ = ["MetSource", "open_meteorology"]
