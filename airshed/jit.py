"""The one place where airshed's Numba policy is decided.

Every kernel is compiled through :func:`kernel` (or :func:`inline` for small scalar helpers that kernels
call), so target, caching, error model and fastmath are set here and nowhere else.

- ``cache=True``: compiled machine code is stored next to the module, so CI and users pay compile time once.
- ``error_model="numpy"``: division by zero gives inf/nan instead of raising; Python-style checks block
  vectorisation (measured 4x slower on the plume kernel, see ../shared/STYLE.md).
- ``fastmath``: only the flags that do not change results for finite inputs (``nsz``, ``arcp``,
  ``contract``, ``afn`` are *not* all safe); we enable ``{"nsz", "arcp", "contract"}`` where a kernel opts in,
  never ``nnan``/``ninf`` because NaN checks are part of input validation.

Cache staleness hazard (``cache=True``). Numba keys a cached kernel on the source file that defines the
kernel (its path and modification time), not on the functions it calls from other modules. An
:func:`inline` helper is compiled into the caller's machine code, so editing a helper in another module
(e.g. a Hanna profile in ``airshed/physics/turbulence.py`` or ``fast_exp`` in
``airshed/model/fastmath.py``) leaves ``airshed/model/lagrangian.py``'s cached kernels in use with the
OLD formula, silently (Numba documents this limitation: "changes in other files are not detected").
After editing any helper, clear the caches: ``find airshed -name '*.nbi' -o -name '*.nbc' | xargs rm``
(or point ``NUMBA_CACHE_DIR`` at a fresh folder), or touch the kernel modules. Installed releases are
unaffected (the files do not change after install); developers and CI working on a checkout are.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numba

SAFE_FASTMATH = frozenset({"nsz", "arcp", "contract"})


def kernel(parallel: bool = False, fastmath: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """Compile a hot-loop kernel with airshed's policy (``njit``, cached, NumPy error model)."""
    return numba.njit(
        cache=True,
        parallel=parallel,
        error_model="numpy",
        fastmath=set(SAFE_FASTMATH) if fastmath else False,
    )


def inline(func: Callable[..., Any]) -> Any:
    """Compile a small scalar helper that kernels call (inlined by LLVM)."""
    return numba.njit(cache=True, error_model="numpy", inline="always")(func)


def thread_info() -> dict[str, Any]:
    """Return the Numba threading layer and thread count, for logs and provenance."""
    n = numba.get_num_threads()
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = os.environ.get("NUMBA_THREADING_LAYER", "default")
    return {"numba_threads": n, "numba_threading_layer": layer, "numba_version": numba.__version__}
