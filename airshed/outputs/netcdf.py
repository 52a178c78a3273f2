"""CF NetCDF run files: their encoding, and writing them whole or hour by hour, published only when complete.

:class:`IncrementalNetCDF` writes a run file hour by hour. The atomic publication and the clean-up after
any failure are :mod:`airshed.atomic_files`'.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr

from airshed.atomic_files import (
    OUTPUT_FOLDER,
    Destination,
    atomic_path,
    disk_full,
    disk_full_error,
    publish,
    raise_if_interrupted,
    remove_quietly,
    signals_held,
    temporary_beside,
    termination_as_exception,
)
from airshed.errors import AirshedInputError

log = logging.getLogger(__name__)


def encoding_for(ds: xr.Dataset, compression_level: int = 4, time_chunk: int = 24) -> dict[str, dict]:
    """Per-variable NetCDF4 encoding: zlib compression and chunks of ``time_chunk`` steps along time.

    Chunking by time keeps a month of hourly output readable lazily one day at a time.
    """
    enc: dict[str, dict] = {}
    for name, var in ds.variables.items():
        # keep the time encoding the dataset asked for (units, calendar, dtype)
        kept = {k: var.encoding[k] for k in ("units", "calendar", "dtype") if k in var.encoding}
        if kept:
            enc[str(name)] = kept
        if name in ds.coords or name.endswith("_bnds"):
            # CF forbids fill values on coordinates and bounds; xarray would add NaN by default
            enc[str(name)] = {**enc.get(str(name), {}), "_FillValue": None}
        if var.dtype.kind not in "fiu" or var.ndim == 0:
            continue
        e: dict = {"zlib": True, "complevel": compression_level} if compression_level > 0 else {}
        if "time" in var.dims and var.ndim > 1:
            e["chunksizes"] = tuple(
                min(time_chunk, var.sizes[d]) if d == "time" else var.sizes[d] for d in var.dims
            )
        enc[str(name)] = {**enc.get(str(name), {}), **e}
    return enc


def write_netcdf_atomic(
    ds: xr.Dataset, path: Path, compression_level: int = 4, time_chunk: int = 24,
    destination: Destination = OUTPUT_FOLDER,
) -> Path:
    """Write ``ds`` to ``path`` as NetCDF4 via a temporary file and an atomic rename (:func:`atomic_path`)."""
    path = Path(path)
    with atomic_path(path, needed_bytes=int(ds.nbytes), destination=destination) as tmp:
        ds.to_netcdf(tmp, format="NETCDF4", engine="netcdf4",
                     encoding=encoding_for(ds, compression_level, time_chunk))
    return path


class IncrementalNetCDF:
    """A NetCDF4 file written piece by piece while a run goes, made visible only when complete.

    ``skeleton`` (coordinates and fields known up front) is written to a temporary file beside ``path``
    at once; the variables along time named in ``along_time`` (name -> (dims, attrs); float64, time
    first) are created empty and filled with :meth:`write` as hours are computed, so a long run never holds
    its hourly fields in memory; :meth:`finish` adds the variables known only at the end and renames the
    file over ``path``. Used as a context manager, an exception (or a run that never calls
    :meth:`finish`) removes the temporary file and leaves any existing ``path`` as it was.

    Each variable's HDF5 chunk cache holds a whole chunk, so the hours of one time chunk are compressed
    once, when the chunk is complete, not once per hour.
    """

    def __init__(self, path: Path, skeleton: xr.Dataset, along_time: dict[str, tuple[tuple[str, ...], dict]],
                 compression_level: int = 4, time_chunk: int = 24):
        import netCDF4

        self.path = Path(path)
        self.compression_level, self.time_chunk = compression_level, time_chunk
        self._signals = termination_as_exception()
        self._signals.__enter__()
        try:
            self.tmp = temporary_beside(self.path)
        except BaseException:
            self._signals.__exit__(None, None, None)
            raise
        self._names = set(map(str, skeleton.variables)) | set(along_time)
        sizes = dict(skeleton.sizes)
        self.expected_bytes = int(skeleton.nbytes) + sum(
            8 * int(np.prod([sizes[d] for d in dims])) for dims, _ in along_time.values())
        """Uncompressed size of the skeleton and the hourly variables (what the file needs at most)."""
        try:
            skeleton.to_netcdf(self.tmp, format="NETCDF4", engine="netcdf4",
                               encoding=encoding_for(skeleton, compression_level, time_chunk))
            self._nc = netCDF4.Dataset(self.tmp, "a")
            for name, (dims, attrs) in along_time.items():
                shape = tuple(self._nc.dimensions[d].size for d in dims)
                chunks = (min(time_chunk, shape[0]), *shape[1:])
                compress = {"zlib": True, "complevel": compression_level} if compression_level > 0 else {}
                var = self._nc.createVariable(name, "f8", dims, fill_value=np.nan, chunksizes=chunks,
                                              **compress)
                var.setncatts(attrs)
                var.set_var_chunk_cache(size=2 * int(np.prod(chunks)) * 8 + (1 << 20), nelems=521,
                                        preemption=1.0)
        except BaseException as exc:
            self.discard()
            self._raise_if_disk_full(exc, int(skeleton.nbytes))
            raise

    def _raise_if_disk_full(self, exc: BaseException, bytes_in_flight: int) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, AirshedInputError) \
                and disk_full(exc, self.tmp.parent, bytes_in_flight):
            raise disk_full_error(self.path, self.expected_bytes) from None

    def write(self, name: str, first: int, values: np.ndarray) -> None:
        """Write ``values`` along time from index ``first`` (its other dimensions whole)."""
        raise_if_interrupted()
        try:
            self._nc[name][first:first + values.shape[0]] = values
        except Exception as exc:
            self.discard()
            self._raise_if_disk_full(exc, int(values.nbytes))
            raise

    def finish(self, rest: xr.Dataset, complete: Callable[[Path], None] | None = None) -> Path:
        """Add ``rest`` (variables and global attributes known at the end), close and publish the file.

        ``complete(tmp)``, when given, is called with the closed temporary file before it is published, to
        add what needs the whole file (a run's inventory ensemble): the file appears only with it, and an
        error or a signal meanwhile removes it as any other.
        """
        rest = rest.drop_vars([name for name in rest.variables if name in self._names])
        enc = encoding_for(rest, self.compression_level, self.time_chunk)
        try:
            raise_if_interrupted()
            self._close(quietly=False)
            rest.to_netcdf(self.tmp, mode="a", format="NETCDF4", engine="netcdf4", encoding=enc)
            if complete is not None:
                raise_if_interrupted()
                complete(self.tmp)
            raise_if_interrupted()
            publish(self.tmp, self.path)
        except Exception as exc:
            self.discard()
            self._raise_if_disk_full(exc, int(rest.nbytes))
            raise
        finally:
            self.discard()
        return self.path

    def discard(self) -> None:
        """Close and remove the temporary file (a no-op once published); never raises.

        Signals are held back meanwhile, and an error while closing a broken file (a full disk) is logged,
        so the file is always removed. The SIGTERM/SIGHUP handlers installed for the write are restored.
        """
        with signals_held():
            self._close(quietly=True)
            remove_quietly(self.tmp)
            if self._signals is not None:
                self._signals.__exit__(None, None, None)
                self._signals = None

    def _close(self, quietly: bool) -> None:
        nc = getattr(self, "_nc", None)
        if nc is None or not nc.isopen():
            return
        try:
            nc.close()
        except Exception as exc:
            if not quietly:
                raise
            log.debug("closing the unfinished %s failed (%s); removing it anyway", self.tmp, exc)

    def __enter__(self) -> IncrementalNetCDF:
        return self

    def __exit__(self, *exc) -> bool:
        self.discard()
        return False
