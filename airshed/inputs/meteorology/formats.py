"""Meteorology formats: the :class:`MetReader` contract and the registry ``meteorology.format`` uses.

A reader opens the files of one source and hands out raw fields in canonical names and units on the
source grid (the table in :mod:`airshed.inputs.meteorology.cf`); :class:`~airshed.inputs.meteorology.
dataset.MetSource` interpolates them onto the model grid and derives the boundary layer, the same for
every format. A new format is one module holding a reader (a class satisfying :class:`MetReader`) plus
one line in :data:`MET_FORMATS`; ``meteorology.format`` then
accepts its name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from airshed.errors import AirshedInputError
from airshed.grids.grid import Grid
from airshed.inputs.builtin_met import generate_builtin_met
from airshed.inputs.meteorology.cf import open_cf
from airshed.inputs.meteorology.era5 import open_era5
from airshed.inputs.meteorology.regrid import HorizontalInterpolator
from airshed.inputs.meteorology.wrf import WrfReader


class MetReader(Protocol):
    """What :class:`~airshed.inputs.meteorology.dataset.MetSource` needs of a meteorology reader.

    Contract:

    - :attr:`paths`: the files read (for messages and provenance).
    - :attr:`times`: valid times, datetime64[ns] UTC, increasing with a uniform step.
    - :meth:`interpolator` gives the fixed-weight interpolation from the source grid onto the model
      grid's cell centres, and the window of source indices (by dimension name) it needs.
    - :meth:`load` reads ``start <= time <= end`` inside that window and returns canonical fields
      (source grid, time first; names and units of :data:`airshed.inputs.meteorology.cf.CF_VARIABLES`):
      at least ``u10``, ``v10`` (earth-relative m s-1), ``t2m`` (K), and ``shf`` (W m-2, upward) or
      ``cloud_cover`` (0-1); optional ``blh``, ``ustar``, ``precip`` (mm h-1), ``surface_pressure``
      (Pa), ``z0`` (m) and, with a level axis after time, ``u``, ``v``, ``w`` with ``level_height``
      (m above ground). A missing required variable or a bad value is a
      :class:`~airshed.errors.DataError` naming the file and variable.
    - :meth:`check_units` fails (``DataError``) on units it cannot convert, before any data is read.
    - :attr:`provides`: the canonical variables :meth:`load` returns (the others are derived, and the
      run says so).
    - For the plausibility checks of :mod:`airshed.inputs.meteorology.plausibility`, which name the file,
      variable, time and place of a bad value: :meth:`source_of` names the file variable behind a
      canonical key, :meth:`window_lonlat` gives the latitude and longitude of a source window, and
      :attr:`level_order_upward` the order of the level axis from the ground up (None: already so).
    """

    paths: Sequence[Path]
    times: np.ndarray
    provides: set[str]
    level_order_upward: np.ndarray | None

    def interpolator(self, grid: Grid) -> HorizontalInterpolator:
        """Interpolation from the source grid onto ``grid``'s cell centres."""
        ...

    def load(self, start: np.datetime64, end: np.datetime64, isel: dict[str, slice]) -> dict[str, np.ndarray]:
        """Canonical fields for start <= time <= end inside the source window ``isel``."""
        ...

    def check_units(self) -> None:
        """Fail on units of a variable :meth:`load` reads that cannot be converted to canonical units."""
        ...

    def source_of(self, key: str) -> str:
        """Name the file variable behind a canonical key (``variable 'blh' in a.nc``)."""
        ...

    def window_lonlat(self, isel: dict[str, slice]) -> tuple[np.ndarray, np.ndarray]:
        """Latitude and longitude (2-D, degrees) of the source window ``isel``."""
        ...


@dataclass(frozen=True)
class MetFormat:
    """A registered meteorology format.

    ``open(paths, variables)`` returns a :class:`MetReader` (``variables``: optional model name -> name
    in the files). ``generate(folder, start, options)``, for a built-in source that needs no files from
    the user, writes its files under ``folder`` (once; deterministic) and returns their paths; ``options``
    is the format's config table as a dict.
    """

    description: str
    open: Callable[[Sequence[Path], Mapping[str, str] | None], MetReader]
    generate: Callable[[Path, datetime, Mapping[str, Any]], list[Path]] | None = None


MET_FORMATS: dict[str, MetFormat] = {
    "era5": MetFormat("ERA5 NetCDF as downloaded from the Copernicus CDS", lambda paths, _: open_era5(paths)),
    "wrf": MetFormat("wrfout files of one WRF domain", lambda paths, _: WrfReader(paths)),
    "cf": MetFormat("CF NetCDF on a regular lon/lat grid (names mapped by meteorology.variables)", open_cf),
    "builtin": MetFormat("the built-in idealised winter episode (written as ERA5 files)",
                         lambda paths, _: open_era5(paths), generate_builtin_met),
}
"""Registered formats: ``meteorology.format`` name -> format."""


def met_format(name: str) -> MetFormat:
    """Return the format registered as ``name``."""
    key = str(name).lower()
    if key not in MET_FORMATS:
        raise AirshedInputError(
            f"meteorology format {name!r} is not known; expected one of {', '.join(MET_FORMATS)}"
        )
    return MET_FORMATS[key]
