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

import xarray as xr

from airshed.errors import AirshedInputError


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise AirshedInputError(f"output folder {folder} does not exist (output file {path})")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); results are ordinary files, readable as umask allows
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
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
