"""Writing CF NetCDF files atomically.

A run's file is written to a temporary name in the destination folder and renamed over the target only
once it is complete and closed, so an interrupted run never leaves a file that looks finished, and an
existing file of the same name survives until the new one is whole (POSIX ``rename`` is atomic within a
file system).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import xarray as xr

from airshed.errors import AirshedInputError


def temporary_beside(path: Path) -> Path:
    """Create an empty temporary file in ``path``'s folder (the name starts with ``.<name>.``)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise AirshedInputError(f"output folder {folder} does not exist (output file {path})")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    return Path(tmp)


def publish(tmp: Path, path: Path) -> None:
    """Rename the finished ``tmp`` over ``path`` (atomic within a file system), readable as umask allows."""
    # mkstemp makes the file private (0600); results are ordinary files
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds."""
    tmp_path = temporary_beside(path)
    try:
        yield tmp_path
        publish(tmp_path, Path(path))
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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
    ds: xr.Dataset, path: Path, compression_level: int = 4, time_chunk: int = 24
) -> Path:
    """Write ``ds`` to ``path`` as NetCDF4 via a temporary file and an atomic rename."""
    path = Path(path)
    with atomic_path(path) as tmp:
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
        self.tmp = temporary_beside(self.path)
        self._names = set(map(str, skeleton.variables)) | set(along_time)
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
        except BaseException:
            self.discard()
            raise

    def write(self, name: str, first: int, values: np.ndarray) -> None:
        """Write ``values`` along time from index ``first`` (its other dimensions whole)."""
        self._nc[name][first:first + values.shape[0]] = values

    def finish(self, rest: xr.Dataset) -> Path:
        """Add ``rest`` (variables and global attributes known at the end), close and publish the file."""
        self._close()
        rest = rest.drop_vars([name for name in rest.variables if name in self._names])
        enc = encoding_for(rest, self.compression_level, self.time_chunk)
        try:
            rest.to_netcdf(self.tmp, mode="a", format="NETCDF4", engine="netcdf4", encoding=enc)
            publish(self.tmp, self.path)
        finally:
            self.discard()
        return self.path

    def discard(self) -> None:
        """Close and remove the temporary file (a no-op once published)."""
        self._close()
        if self.tmp.exists():
            self.tmp.unlink()

    def _close(self) -> None:
        nc = getattr(self, "_nc", None)
        if nc is not None and nc.isopen():
            nc.close()

    def __enter__(self) -> IncrementalNetCDF:
        return self

    def __exit__(self, *exc) -> bool:
        self.discard()
        return False
