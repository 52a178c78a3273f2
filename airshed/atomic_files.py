"""Writing files atomically, and cleaning up after any failure: run files, figures, reports and caches.

A file is written to a temporary name of its own in the destination folder (``.NAME.XXXXXXXX.tmp``) and
renamed over the target only once it is complete and closed, so an interrupted run never leaves a file
that looks finished, an existing file of the same name survives until the new one is whole (POSIX
``rename`` is atomic within a file system), and processes writing the same file at once (the workers of a
cluster building one cache) each write their own and the last rename wins with a whole file.

After any failure the temporary file is removed: an exception, Ctrl-C (SIGINT), and SIGTERM or SIGHUP
(what ``timeout``, Slurm and a closing terminal send), which become :class:`Terminated` while a file is
open (:func:`termination_as_exception`). A signal whose exception got lost on the way (raised inside a C
callback) is raised again at the next write, and never lets a file be published. Signals are held back
while the clean-up runs, and an error while closing a broken file (a full disk) is not allowed to stop
the removal. A full disk is reported as bad input (:class:`DiskFullError`: the folder, the space free and
the space the file needs), not as a bug.

The module is a layer of its own just above the errors (below :mod:`airshed.jit`), so that the outputs,
the inputs' caches and the Numba cache seeding share this one mechanism.
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
from typing import NamedTuple

from airshed.errors import AirshedInputError, Terminated

log = logging.getLogger(__name__)

TERMINATING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
"""Signals that stop a run like Ctrl-C does (Ctrl-C itself raises KeyboardInterrupt)."""


class DiskFullError(AirshedInputError):
    """No space left for a file (the message names the folder, the space free and needed)."""


class Destination(NamedTuple):
    """What a file written here is, for the one-line errors: its kind and the setting that moves it."""

    kind: str
    """"output" or "cache": names the file and its folder in messages."""
    setting: str
    """Where the user chooses the folder instead, e.g. "run.output / --output"."""


OUTPUT_FOLDER = Destination("output", "run.output / --output")
CACHE_FOLDER = Destination("cache", "the environment variable AIRSHED_CACHE_DIR")


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

    True for ENOSPC/EDQUOT. Any other error (HDF5's carry no errno) counts as a full disk when the folder's
    free space is below twice the bytes being written plus 1 MiB (a write that failed for lack of room).
    """
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return False
    return free < 2 * bytes_in_flight + (1 << 20)


def disk_full_error(path: Path, needed_bytes: int | None,
                    destination: Destination = OUTPUT_FOLDER) -> DiskFullError:
    """Return the one-line error for a full disk while writing ``path``."""
    folder = Path(path).parent
    try:
        free = f"{shutil.disk_usage(folder).free / 1e6:,.0f} MB free"
    except OSError:
        free = "free space unknown"
    need = f"; it needs about {needed_bytes / 1e6:,.0f} MB" if needed_bytes else ""
    return DiskFullError(f"no space left on the device of {folder} ({free}) while writing {Path(path).name}"
                         f"{need}; free some space or write elsewhere ({destination.setting}). Nothing was "
                         "written and the temporary file was removed")


def temporary_beside(path: Path, what: str | None = None, destination: Destination = OUTPUT_FOLDER) -> Path:
    """Create an empty temporary file in ``path``'s folder, named ``.<name>.XXXXXXXX.tmp``.

    Raises AirshedInputError (one line) when the folder does not exist or is not writable, or when
    ``path`` is a folder. ``what`` names ``path`` in those messages (default: "<kind> file"; e.g. a folder
    about to be created).
    """
    path = Path(path)
    what = what or f"{destination.kind} file"
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        setting = "" if destination is OUTPUT_FOLDER else f"; choose another with {destination.setting}"
        raise AirshedInputError(f"{destination.kind} folder {folder} does not exist ({what} {path}){setting}")
    if path.is_dir():
        raise AirshedInputError(f"{destination.kind} {path} is a folder; give a file name "
                                f"({destination.setting})")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except PermissionError:
        raise AirshedInputError(f"{destination.kind} folder {folder} is not writable ({what} {path}); "
                                f"choose another with {destination.setting}") from None
    except OSError as exc:
        # mkstemp is a plain system call with a real errno: only ENOSPC/EDQUOT mean a full disk here (the
        # free-space guess of disk_full would call a virtual file system such as /proc, with 0 free, full)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full_error(path, None, destination) from None
        raise AirshedInputError(f"cannot create a file in the {destination.kind} folder {folder} "
                                f"({what} {path}): {exc.strerror}") from None
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
def atomic_path(path: Path, needed_bytes: int | None = None,
                destination: Destination = OUTPUT_FOLDER) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    The temporary file is removed after any failure, SIGTERM/SIGHUP included; a full disk becomes a
    :class:`DiskFullError` (``needed_bytes``, when known, goes into its message). A folder that is missing
    or not writable, or a ``path`` that is a folder, is a one-line :class:`AirshedInputError` before
    anything is written. ``destination`` says in those messages what the file is and which setting moves
    it (:data:`OUTPUT_FOLDER`, :data:`CACHE_FOLDER`). Usage::

        with atomic_path(target) as tmp:
            dataset.to_netcdf(tmp)
    """
    with termination_as_exception():
        tmp_path = temporary_beside(path, destination=destination)
        try:
            yield tmp_path
            raise_if_interrupted()
            publish(tmp_path, Path(path))
        except Exception as exc:
            if not isinstance(exc, AirshedInputError) and disk_full(exc, tmp_path.parent):
                raise disk_full_error(Path(path), needed_bytes, destination) from None
            raise
        finally:
            with signals_held():
                remove_quietly(tmp_path)


def make_folder(folder: Path, destination: Destination = CACHE_FOLDER) -> Path:
    """Create ``folder`` (and its parents) if missing; return it.

    A path that exists but is not a folder and a folder that cannot be created (no permission, a full disk:
    the system's reason is quoted) are one-line :class:`AirshedInputError` naming ``destination``'s
    setting, not internal errors.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise AirshedInputError(f"{destination.kind} folder {folder} is not a folder (a file of that name, "
                                f"or in its path, is in the way); choose another with "
                                f"{destination.setting}") from None
    except OSError as exc:
        raise AirshedInputError(f"cannot create the {destination.kind} folder {folder}: {exc.strerror}; "
                                f"choose another with {destination.setting}") from None
    return folder
