"""Write a cache file so that no reader, and no other writer, ever sees it half-written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write`` on a temporary file of its own beside ``path``, then rename it to ``path``.

    The temporary name is unique (:func:`tempfile.mkstemp`), so processes that build the same cache file at
    once (the workers of a cluster, two runs on a fresh ``AIRSHED_CACHE_DIR``) each write their own and the
    last rename wins with a whole file; a fixed temporary name let one writer's rename publish a file the
    other was still writing. The temporary file is removed if ``write`` fails.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
