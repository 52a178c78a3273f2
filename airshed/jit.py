"""The one place where airshed's Numba policy is decided.

Every kernel is compiled through :func:`kernel` (or :func:`inline` for small scalar helpers that kernels
call), so target, caching, error model and fastmath are set here and nowhere else.

- ``cache=True`` (see ``AIRSHED_NUMBA_CACHE`` below): compiled machine code is stored next to the module, so
  CI and users pay compile time once.
- ``error_model="numpy"``: division by zero gives inf/nan instead of raising; Python-style checks block
  vectorisation (measured 4x slower on the plume kernel, see ../shared/STYLE.md).
- ``fastmath``: only the flags that do not change results for finite inputs (``nsz``, ``arcp``,
  ``contract``, ``afn`` are *not* all safe); we enable ``{"nsz", "arcp", "contract"}`` where a kernel opts in,
  never ``nnan``/``ninf`` because NaN checks are part of input validation.

Threads under load (:func:`apply_thread_wait_policy`, called when ``airshed`` is imported). Numba's
default threading layer here is OpenMP (libgomp). libgomp's threads spin (300,000 iterations by default)
while they wait for the next parallel loop; when another process holds a core, the spinning thread takes the
core the working one needs, and 2 threads ran the particle step at 0.56x the speed of 1 thread next to one
busy process (benchmarks/bench_threads_under_load.py). Sleeping waits (``OMP_WAIT_POLICY=PASSIVE``) keep the
CPU time per particle-step at the 1-thread value and 2 threads faster than 1 under load. The runtime reads
the variable once, when it loads (at the first parallel kernel call), so it is set at import; a value the
user set (``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``, ``KMP_BLOCKTIME``) is kept.

Cache staleness hazard (``cache=True``). Numba keys a cached kernel on the source file that defines the
kernel (its path and modification time), not on the functions it calls from other modules. An
:func:`inline` helper is compiled into the caller's machine code, so editing a helper in another module
(e.g. a Hanna profile in ``airshed/physics/turbulence.py`` or ``fast_exp`` in
``airshed/model/fastmath.py``) leaves ``airshed/model/lagrangian.py``'s cached kernels in use with the
OLD formula, silently (Numba documents this limitation: "changes in other files are not detected").
After editing any helper, clear the caches: ``find airshed -name '*.nbi' -o -name '*.nbc' | xargs rm``
(or point ``NUMBA_CACHE_DIR`` at a fresh folder), or touch the kernel modules. Installed releases are
unaffected (the files do not change after install); developers and CI working on a checkout are
(``.ci/run`` clears them before the tests).

Caches and parallel processes (numba issue 4807): processes that compile the same cached ``parallel=True``
kernel at the same time write one cache index together, and a process can then load a half-written entry
and crash. ``AIRSHED_NUMBA_CACHE`` decides, per process, before any kernel is compiled:

- ``shared`` (default): the cache next to the modules (or ``NUMBA_CACHE_DIR``), for one process at a time;
- ``per-process``: a cache folder that no other live process uses, ``<base>/process-<n>`` with ``<base>``
  ``NUMBA_CACHE_DIR`` or ``$AIRSHED_CACHE_DIR/numba``; ``n`` is the first slot whose lock file no live
  process holds (``fcntl`` advisory locks, released when the process ends), so the folders are reused from
  run to run and stay warm. A slot is first seeded with the kernels of the shared cache that it lacks
  (:func:`seed_cache_slot`), so workers started after a serial run load its kernels instead of compiling
  them again (about 70 s of CPU per worker for a particle scheme). The Dask workers that
  :mod:`airshed.scale` starts run so; start remote workers with it too;
- ``off``: no cache (each process compiles its kernels, about a minute for the particle kernels).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numba

from airshed.atomic_files import CACHE_FOLDER, atomic_path
from airshed.errors import AirshedInputError

SAFE_FASTMATH = frozenset({"nsz", "arcp", "contract"})
THREAD_WAIT_POLICY = "PASSIVE"
"""``OMP_WAIT_POLICY`` airshed sets unless the user chose one: waiting threads sleep instead of spinning."""
_USER_WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def openmp_runtime_loaded() -> bool:
    """Whether an OpenMP runtime (libgomp, libiomp, libomp) is already loaded into this process."""
    try:
        with open("/proc/self/maps") as maps:
            return any(name in line for line in maps for name in ("libgomp", "libiomp", "libomp."))
    except OSError:
        return False


def apply_thread_wait_policy() -> str:
    """Make OpenMP threads sleep rather than spin while they wait, unless the user chose a wait policy.

    Must run before the OpenMP runtime loads (Numba loads it at the first parallel kernel call); airshed
    calls it when the package is imported. Returns what was done, for the run file's provenance:
    ``"passive"``, ``"user: OMP_WAIT_POLICY=..."``, or ``"too late: ..."`` when a runtime was already loaded
    by another library (the setting then has no effect in this process).
    """
    chosen = [f"{k}={os.environ[k]}" for k in _USER_WAIT_SETTINGS if k in os.environ]
    if chosen:
        return "user: " + ", ".join(chosen)
    if openmp_runtime_loaded():
        return "too late: an OpenMP runtime was loaded before airshed (threads keep spinning)"
    os.environ["OMP_WAIT_POLICY"] = THREAD_WAIT_POLICY
    return THREAD_WAIT_POLICY.lower()


WAIT_POLICY = apply_thread_wait_policy()
"""What :func:`apply_thread_wait_policy` did when this module was first imported."""


CACHE_MODES = ("shared", "per-process", "off")
"""Values of ``AIRSHED_NUMBA_CACHE`` (module docstring)."""

_SLOT_LOCK: IO[str] | None = None  # held open for the life of the process


def _claim_cache_slot(base: Path) -> Path:
    """Lock and return the first ``base/process-<n>`` folder that no live process holds."""
    global _SLOT_LOCK
    try:
        import fcntl
    except ImportError:  # no advisory locks (Windows): a folder of this process alone
        folder = base / f"pid-{os.getpid()}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    for n in itertools.count():
        folder = base / f"process-{n}"
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / ".lock", "w")  # noqa: SIM115 (kept open: the lock lives with the process)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _SLOT_LOCK = lock
        return folder
    raise AssertionError("unreachable")


def seed_cache_slot(slot: Path, package: Path, shared_dir: str | None) -> int:
    """Copy into ``slot`` the cached kernels of ``package`` that the shared cache holds and ``slot`` lacks.

    The shared cache is where Numba puts a kernel for a process without a slot: ``shared_dir``
    (``NUMBA_CACHE_DIR``) laid out by Numba's user-provided locator, else the ``__pycache__`` folder beside
    each module (the in-tree locator) or, for a read-only installation, Numba's user-wide folder (the
    user-wide locator). ``slot`` is laid out as the user-provided locator with ``slot`` as its folder, which
    is how this process will read it. Only kernels whose index the slot does not have are copied, so a
    slot's own entries are never replaced; a kernel that cannot be copied (a full disk) is left for this
    process to compile, as without seeding. Safe against a process writing the shared cache meanwhile:
    Numba replaces each of its files atomically, the index is read before its data files and written last
    here, and an index entry whose data file is missing makes Numba compile that kernel
    (``IndexDataCacheFile.load``). A stale copy (a source edited since) is rejected by Numba's source stamp
    and compiled afresh, as in the shared cache itself. Returns the number of kernel indexes copied.
    """
    from numba.core.caching import UserProvidedCacheLocator
    from numba.misc.appdirs import AppDirs

    user_wide = Path(AppDirs(appname="numba", appauthor=False).user_cache_dir)
    copied = 0
    for source_dir in sorted({p.parent for p in package.rglob("*.py")}):
        subpath = UserProvidedCacheLocator.get_suitable_cache_subpath(str(source_dir / "module.py"))
        target = slot / subpath
        numba_default = [source_dir / "__pycache__", user_wide / subpath]
        shared = [Path(shared_dir) / subpath] if shared_dir else numba_default
        indexes = [index for folder in shared for index in sorted(folder.glob("*.nbi"))]  # by priority
        for index in indexes:
            if (target / index.name).exists():  # the slot's own, or copied from a folder before
                continue
            try:
                snapshot = index.read_bytes()
                data = [(p.name, p.read_bytes()) for p in index.parent.glob(f"{index.stem}.*.nbc")]
                target.mkdir(parents=True, exist_ok=True)
                for name, blob in [*data, (index.name, snapshot)]:  # index last: the entry is whole or absent
                    with atomic_path(target / name, destination=CACHE_FOLDER) as tmp:
                        tmp.write_bytes(blob)
            except (OSError, AirshedInputError):  # removed meanwhile, or the slot's disk is full: compile it
                continue
            copied += 1
    return copied


def _cache_policy() -> bool:
    """Apply ``AIRSHED_NUMBA_CACHE`` (module docstring); return whether kernels are cached."""
    mode = os.environ.get("AIRSHED_NUMBA_CACHE", "shared")
    if mode not in CACHE_MODES:
        raise AirshedInputError(f"AIRSHED_NUMBA_CACHE = {mode!r}: expected one of {', '.join(CACHE_MODES)}")
    if mode == "per-process":
        base = os.environ.get("NUMBA_CACHE_DIR") or Path(
            os.environ.get("AIRSHED_CACHE_DIR", Path.home() / ".cache" / "airshed")) / "numba"
        slot = _claim_cache_slot(Path(base))
        seed_cache_slot(slot, Path(__file__).parent, os.environ.get("NUMBA_CACHE_DIR"))
        numba.config.CACHE_DIR = str(slot)
    return mode != "off"


CACHE = _cache_policy()
"""Whether kernels are cached on disk in this process (and where: ``numba.config.CACHE_DIR``)."""


def kernel(parallel: bool = False, fastmath: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """Compile a hot-loop kernel with airshed's policy (``njit``, cached, NumPy error model)."""
    return numba.njit(
        cache=CACHE,
        parallel=parallel,
        error_model="numpy",
        fastmath=set(SAFE_FASTMATH) if fastmath else False,
    )


def inline(func: Callable[..., Any]) -> Any:
    """Compile a small scalar helper that kernels call (inlined by LLVM)."""
    return numba.njit(cache=CACHE, error_model="numpy", inline="always")(func)


def thread_info() -> dict[str, Any]:
    """Return the Numba threading layer and thread count, for logs and provenance."""
    n = numba.get_num_threads()
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = os.environ.get("NUMBA_THREADING_LAYER", "default")
    return {"numba_threads": n, "numba_threading_layer": layer, "numba_version": numba.__version__,
            "thread_wait_policy": WAIT_POLICY}
