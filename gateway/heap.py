"""Memory given back to the operating system after large records (glibc; elsewhere a no-op).

glibc serves a large block from its heaps once a block of that size has been freed (its mmap
threshold rises with every large block freed, up to 32 MB), and keeps freed heap memory for
reuse: after a few large records a node kept their peak for good (1.6 GB after eight). Pinning
the threshold puts every block of 256 KB or more (record bodies, texts, serialised trees) in its
own mapping, which goes back to the system when freed; after a large record `malloc_trim` also
returns what the heaps hold free. It walks every heap, so it runs only after records of a
megabyte or more, and at most once a second.
"""

from __future__ import annotations

import asyncio
import ctypes
import time

MMAP_THRESHOLD = 256 * 1024
LARGE = 1024 * 1024  # records at least this large are followed by a trim
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
_EVERY = 1.0

_last = 0.0
_pending = False


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it (musl has no malloc_trim)
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _glibc()


def pin_mmap_threshold() -> bool:
    """Keep large blocks in their own mappings for the life of the process (call once, at start)."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def release_soon(size: int) -> None:
    """After a record of `size` bytes, if it was large: give free heap memory back within a second,
    once for however many large records end in that second. Call it on the event loop."""
    global _pending
    if _LIBC is None or size < LARGE or _pending:
        return
    _pending = True
    loop = asyncio.get_running_loop()
    loop.call_later(max(0.0, _last + _EVERY - time.monotonic()), _start, loop)


def _start(loop: asyncio.AbstractEventLoop) -> None:
    global _pending, _last
    _pending = False  # a record ending from now on asks for the next trim
    _last = time.monotonic()
    loop.run_in_executor(None, trim)


def trim() -> bool:
    """Return the heaps' free memory to the system now (it walks every heap: milliseconds)."""
    return _LIBC is not None and bool(_LIBC.malloc_trim(0))
