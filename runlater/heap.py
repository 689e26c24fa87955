"""Give freed heap memory back to the operating system (glibc's ``malloc_trim``).

Measured in the soak benchmark (``bench/soak.py``) with glibc's ``malloc_stats``: the bytes in
use on the C heap stayed flat (16.0 MB) while the heap the process held kept growing (20.4 →
23.0 MB in 4 minutes), and RSS with it. Python frees objects larger than 512 bytes to glibc,
whose free chunks in the middle of the heap are only returned by ``malloc_trim``; a busy node
leaves such holes between long-lived objects. Other C libraries (musl, macOS) have no
``malloc_trim``: there :func:`trim_heap` does nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def can_trim() -> bool:
    """Whether this C library can return free heap memory on request."""
    return _malloc_trim() is not None


def trim_heap() -> bool:
    """Return the C heap's free pages to the OS; True if any memory was released."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
