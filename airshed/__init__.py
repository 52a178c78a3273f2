"""airshed: where haze comes from.

Gaussian-plume and Lagrangian-particle dispersion with source apportionment by region and sector,
built for the Beijing-Tianjin-Hebei (Jing-Jin-Ji) region and usable anywhere.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("airshed")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

# The Numba/OpenMP thread policy must be set before any kernel starts its threads (see airshed.jit).
from airshed import jit as _jit  # noqa: E402,F401

__all__ = ["__version__"]
