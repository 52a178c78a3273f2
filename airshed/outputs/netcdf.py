"""Writing CF NetCDF files (and every other output) atomically, and cleaning up after any failure.

A run's file is written to a temporary name in the destination folder (``.NAME.XXXXXXXX.tmp``) and renamed
over the target only once it is complete and closed, so an interrupted run never leaves a file that looks
finished, and an existing file of the same name survives until the new one is whole (POSIX ``rename`` is
atomic within a file system).

After any failure the temporary file is removed: an exception, Ctrl-C (SIGINT), and SIGTERM or SIGHUP
(what ``timeout``, Slurm and a closing terminal send), which become :class:`Terminated` while an output is
open (:func:`termination_as_exception`). A signal whose exception got lost on the way (raised inside a C
callback) is raised again at the next write, and never lets a file be published. Signals are held back
while the clean-up runs, and an error while closing a broken file (a full disk) is not allowed to stop
the removal. A full disk is reported as bad
input (:class:`DiskFullError`: the folder, the space free and the space the file needs), not as a bug.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import xarray as xr

from airshed.errors import AirshedInputError, Terminated

log = logging.getLogger(__name__)

TERMINATING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
"""Signals that stop a run like Ctrl-C does (Ctrl-C itself raises KeyboardInterrupt)."""


class DiskFullError(AirshedInputError):
    """No space left for an output file (the message names the folder, the space free and needed)."""


_received: list[int] = []
"""Signals received while an output was open. The handler also raises, but an exception raised in a signal
handler can be lost (it runs inside whatever the main thread was doing: a ctypes callback of Numba's
compiler prints "Exception ignored" and goes on); :func:`raise_if_interrupted` raises it again at the
next write and before anything is published."""


def _raise_terminated(signum: int, frame) -> None:
    _received.append(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def raise_if_interrupted() -> None:
    """Raise the exception of a signal received meanwhile whose first raise was lost."""
    if _received:
        signum = _received[0]
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)


@contextlib.contextmanager
def termination_as_exception() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise :class:`Terminated` (so ``finally`` blocks clean up).

    SIGINT keeps raising KeyboardInterrupt. The signals are also remembered, for :func:`raise_if_interrupted`.
    Only in the main thread, and only for signals whose handler is the default one (a handler someone else
    installed, or SIG_IGN as under ``nohup``, is left alone); the previous handlers come back afterwards.
    """
    installed = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, *TERMINATING_SIGNALS):
            default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            if signal.getsignal(sig) is default:
                signal.signal(sig, _raise_terminated)
                installed.append((sig, default))
    if installed:  # the outermost output of this process: start afresh
        _received.clear()
        previous_hook = sys.unraisablehook
        sys.unraisablehook = _quiet_about_lost_signals(previous_hook)
    try:
        yield
    finally:
        for sig, default in installed:
            signal.signal(sig, default)
        if installed:
            _received.clear()
            sys.unraisablehook = previous_hook


def _quiet_about_lost_signals(previous):
    """Return an unraisable hook that drops the signal exceptions a C callback swallowed (remembered)."""

    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, Terminated | KeyboardInterrupt) and _received:
            log.debug("a signal's exception was lost in %r; raised again at the next write",
                      unraisable.object)
            return
        previous(unraisable)

    return hook


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back while the block runs (they arrive when it ends)."""
    held = {signal.SIGINT, *TERMINATING_SIGNALS}
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def remove_quietly(path: Path) -> None:
    """Remove ``path`` if it exists; a failure is logged, never raised (this runs inside clean-ups)."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove the temporary file %s: %s", path, exc)


def disk_full(exc: BaseException, folder: Path, bytes_in_flight: int = 0) -> bool:
    """Whether ``exc`` (raised while writing into ``folder``) means the file system is full.

    ENOSPC/EDQUOT when the error carries an errno; HDF5 errors do not, so then: the folder's free space is
    below twice the bytes being written plus 1 MiB (a write that failed for lack of room).
    """
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return False
    return free < 2 * bytes_in_flight + (1 << 20)


def disk_full_error(path: Path, needed_bytes: int | None) -> DiskFullError:
    """Return the one-line error for a full disk while writing ``path``."""
    folder = Path(path).parent
    try:
        free = f"{shutil.disk_usage(folder).free / 1e6:,.0f} MB free"
    except OSError:
        free = "free space unknown"
    need = f"; it needs about {needed_bytes / 1e6:,.0f} MB" if needed_bytes else ""
    return DiskFullError(f"no space left on the device of {folder} ({free}) while writing {Path(path).name}"
                         f"{need}; free some space or write elsewhere (run.output / --output). Nothing was "
                         "written and the temporary file was removed")


def temporary_beside(path: Path, what: str = "output file") -> Path:
    """Create an empty temporary file in ``path``'s folder, named ``.<name>.XXXXXXXX.tmp``.

    Raises AirshedInputError (one line) when the folder does not exist or is not writable, or when
    ``path`` is a folder. ``what`` names ``path`` in those messages (e.g. a folder about to be created).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise AirshedInputError(f"output folder {folder} does not exist ({what} {path})")
    if path.is_dir():
        raise AirshedInputError(f"output {path} is a folder; give a file name (run.output / --output)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except PermissionError:
        raise AirshedInputError(f"output folder {folder} is not writable ({what} {path})") from None
    except OSError as exc:
        # mkstemp is a plain system call with a real errno: only ENOSPC/EDQUOT mean a full disk here (the
        # free-space guess of disk_full would call a virtual file system such as /proc, with 0 free, full)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full_error(path, None) from None
        raise AirshedInputError(f"cannot create a file in the output folder {folder} ({what} {path}): "
                                f"{exc.strerror}") from None
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
def atomic_path(path: Path, needed_bytes: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    The temporary file is removed after any failure, SIGTERM/SIGHUP included; a full disk becomes a
    :class:`DiskFullError` (``needed_bytes``, when known, goes into its message).
    """
    with termination_as_exception():
        tmp_path = temporary_beside(path)
        try:
            yield tmp_path
            raise_if_interrupted()
            publish(tmp_path, Path(path))
        except Exception as exc:
            if not isinstance(exc, AirshedInputError) and disk_full(exc, tmp_path.parent):
                raise disk_full_error(Path(path), needed_bytes) from None
            raise
        finally:
            with signals_held():
                remove_quietly(tmp_path)


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
    with atomic_path(path, needed_bytes=int(ds.nbytes)) as tmp:
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

    def finish(self, rest: xr.Dataset) -> Path:
        """Add ``rest`` (variables and global attributes known at the end), close and publish the file."""
        rest = rest.drop_vars([name for name in rest.variables if name in self._names])
        enc = encoding_for(rest, self.compression_level, self.time_chunk)
        try:
            raise_if_interrupted()
            self._close(quietly=False)
            rest.to_netcdf(self.tmp, mode="a", format="NETCDF4", engine="netcdf4", encoding=enc)
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
