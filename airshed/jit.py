"""The one place where airshed's Numba policy is decided.

Every kernel is compiled through :func:`kernel` (or :func:`inline` for small scalar helpers that kernels
call), so target, caching, error model and fastmath are set here and nowhere else.

- ``cache=True``: compiled machine code is stored next to the module, so CI and users pay compile time once.
- ``error_model="numpy"``: division by zero gives inf/nan instead of raising; Python-style checks block
  vectorisation (measured 4x slower on the plume kernel, see ../shared/STYLE.md).
- ``fastmath``: only the flags that do not change results for finite inputs (``nsz``, ``arcp``,
  ``contract``, ``afn`` are *not* all safe); we enable ``{"nsz", "arcp", "contract"}`` where a kernel opts in,
  never ``nnan``/``ninf`` because NaN checks are part of input validation.
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
