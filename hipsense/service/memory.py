"""Handing freed heap back to the kernel, for a small Pi's sake.

Importing numpy and scipy (scipy.signal pulls in scipy.stats, optimize, sparse, …) allocates
and then frees tens of megabytes of temporaries; glibc keeps the freed pages mapped, so they
count as resident until ``malloc_trim`` returns them. Calling it after start-up and now and
then costs a millisecond and saves about 8 MB of RSS here. No-op off glibc (musl, macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["release_free_memory"]


@functools.cache
def _malloc_trim():  # -> a ctypes function, or None off glibc
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory() -> bool:
    """Return freed heap pages to the kernel; True if glibc did so."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
