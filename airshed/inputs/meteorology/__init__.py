"""Meteorology readers (ERA5, WRF, CF NetCDF, the built-in episode), regridded onto the model grid."""

from airshed.inputs.meteorology.dataset import MetSource, open_meteorology
from airshed.inputs.meteorology.formats import MET_FORMATS, MetFormat, MetReader

__all__ = ["MET_FORMATS", "MetFormat", "MetReader", "MetSource", "open_meteorology"]
