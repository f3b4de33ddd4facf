"""Process settings the entry points share (`python app.py`, `python -m hashdemo`): glibc's malloc.

Each entry point sets them first, before any handler thread starts (a library import changes nothing);
a no-op where there is no glibc, and each setting yields to its MALLOC_* environment variable.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
SETTINGS = (
    # Two arenas instead of one per handler thread (up to 8 per core): with one each, freed memory
    # stayed spread over many arenas and the app's memory kept growing over a long soak
    # (docs/operating.md, "Memory before a fix", has the measurements).
    ("MALLOC_ARENA_MAX", M_ARENA_MAX, 2),
    # Keep up to 64 MB of freed memory and serve blocks under 32 MB from the heap: with glibc's
    # defaults a query's numpy temporaries (a few hundred KB each) went back to the kernel when freed
    # and page-faulted afresh on the next use, which made the attention step markedly slower
    # (docs/results.md, method 1's speed notes, has the medians).
    ("MALLOC_TRIM_THRESHOLD_", M_TRIM_THRESHOLD, 64 << 20),
    ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, 32 << 20),
)


def configure_malloc() -> None:
    libc = ctypes.util.find_library("c")
    if not libc:
        return
    with contextlib.suppress(OSError, AttributeError):
        mallopt = ctypes.CDLL(libc).mallopt
        for variable, option, value in SETTINGS:
            if variable not in os.environ:
                mallopt(option, value)
