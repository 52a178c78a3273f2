"""A meteorology reader whose reads are kept for the next run of an ensemble that reads the same window.

The members of a meteorology offset ensemble (:mod:`airshed.inputs.meteorology.offsets`) read the same
files: a member displaced vertically reads exactly the source window of the unperturbed run (its 3-D
winds are interpolated to other heights from the same values), and the members displaced horizontally by
the same grid points read the same displaced window. :class:`SharedWindowsReader` wraps an opened reader
so that a window read by one run is handed to the next run asking for the same window and source slices
instead of being read and converted again; the values are the reader's own, so every run gets its fields
bit for bit as if it had read them itself. The interpolation weights onto the model grid (which depend on
the grid only) are computed once as well.

Windows are kept for one source window position at a time (``slices``): runs that read the same position
should follow one another (:func:`airshed.met_ensemble.run_with_members` orders its members so), and a
run at another position drops the kept windows, so memory holds at most one run's windows (a run reads a
day at a time: a five-day run keeps five).
"""

from __future__ import annotations

import numpy as np

from airshed.grids.grid import Grid
from airshed.inputs.meteorology.regrid import HorizontalInterpolator

__all__ = ["SharedWindowsReader"]


def _slices_key(isel: dict[str, slice]) -> tuple:
    return tuple((k, s.start, s.stop, s.step) for k, s in isel.items())


class SharedWindowsReader:
    """A :class:`~airshed.inputs.meteorology.formats.MetReader` that keeps its windows for the next run.

    Everything but :meth:`load` and :meth:`interpolator` is the wrapped reader's. The arrays handed out
    are read-only: a caller that wrote into one would change what the next run gets, so it fails instead.
    """

    def __init__(self, reader):
        self._reader = reader
        self._windows: dict[tuple, dict[str, np.ndarray]] = {}
        self._position: tuple | None = None
        self._interpolators: dict[int, tuple[Grid, HorizontalInterpolator]] = {}
        self.reads = 0
        """Windows read from the files (the others were handed out again)."""

    def interpolator(self, grid: Grid) -> HorizontalInterpolator:
        """Return the wrapped reader's interpolation onto ``grid``, computed once per grid object."""
        kept = self._interpolators.get(id(grid))
        if kept is None or kept[0] is not grid:
            kept = (grid, self._reader.interpolator(grid))
            self._interpolators[id(grid)] = kept
        return kept[1]

    def load(self, start: np.datetime64, end: np.datetime64, isel: dict[str, slice]) -> dict[str, np.ndarray]:
        """Return the wrapped reader's fields for ``start <= time <= end`` on the source window ``isel``."""
        position = _slices_key(isel)
        if position != self._position:
            self._windows.clear()
            self._position = position
        key = (np.datetime64(start, "ns"), np.datetime64(end, "ns"))
        fields = self._windows.get(key)
        if fields is None:
            fields = self._reader.load(start, end, isel)
            for values in fields.values():
                if isinstance(values, np.ndarray):
                    values.setflags(write=False)
            self._windows[key] = fields
            self.reads += 1
        return dict(fields)  # a new dict: callers pop entries (MetSource.window pops precip_reset)

    def __getattr__(self, name: str):
        return getattr(self._reader, name)
