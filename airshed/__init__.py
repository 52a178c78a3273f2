"""airshed: where haze comes from.

Gaussian-plume and Lagrangian-particle dispersion with source apportionment by region and sector,
built for the Beijing-Tianjin-Hebei (Jing-Jin-Ji) region and usable anywhere.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("airshed")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
