"""Keep the heap from growing with concurrency: glibc malloc settings for image-heavy async runs.

Hundreds of attempts render and encode multi-megabyte images in worker threads. With glibc's defaults
each thread gets its own arena and the mmap threshold rises after the first large frees, so those images
end up in arenas that never shrink: peak RSS at 256 concurrent attempts doubled (3.2 GB instead of
1.7 GB in bench/synth.py). Fixed settings keep big blocks in mmap (returned to the OS on free) and
cap the arenas. Equivalent to MALLOC_MMAP_THRESHOLD_ / MALLOC_ARENA_MAX, which take precedence.
It only works when called before the heavy imports (numpy, pyarrow, polars start threads and shape
the heap): the CLI calls it first thing; library users call it at the top of their script.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 20  # blocks of 1 MiB and more (image rows, encoded images) come from mmap
ARENA_MAX = 2


def tune_malloc() -> bool:
    """Apply the settings where glibc is the allocator and the user has not chosen their own."""
    path = ctypes.util.find_library("c")
    if not path:
        return False
    try:
        libc = ctypes.CDLL(path)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    if "MALLOC_ARENA_MAX" not in os.environ:
        mallopt(M_ARENA_MAX, ARENA_MAX)
    return True
