"""The process's heap, through glibc's ``mallopt`` and ``malloc_trim`` (nothing where they are
missing: musl, macOS). A long-lived worker that builds and drops arrays of hundreds of MB uses them
so that freed memory goes back to the OS instead of staying with the process."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any, Final

_M_MMAP_THRESHOLD: Final = -3
LARGE_ALLOCATION: Final = 1 << 20


@functools.cache
def _glibc() -> Any | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return (
            libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
        )
    except OSError:
        return None


def large_arrays_outside_the_heap() -> None:
    """Allocate every block of 1 MiB or more with its own mmap, given back to the OS when freed.

    glibc raises its mmap threshold (up to 32 MiB) after the first large block is freed; from then
    on a rescore's many mid-sized arrays and the fetched column buffers come from the heap, whose
    freed pages it keeps, and the long-lived worker's memory only grows (one rescore of a 1M-buyer
    shop leaves hundreds of MB behind for the next)."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, LARGE_ALLOCATION)


def give_back_freed_memory() -> None:
    """Return the heap's free pages to the OS."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
