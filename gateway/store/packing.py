"""Payloads kept compressed in the SQLite file (PostgreSQL compresses them itself, in TOAST).

A 4.3 KB record is kept three times (raw, canonical, outbound body), and a payload a little over
a page spills onto a second page of its own: compressed, the three fit in a fraction of one.
Hashes, sizes and everything the log says are of the uncompressed bytes; a payload that does not
shrink (a PDF, a photo) is kept as it came. zlib at level 1: stdlib, about a tenth of a
millisecond per record, nearly the ratio of level 6.
"""

from __future__ import annotations

import zlib

RAW, ZLIB = 0, 1
_WORTH = 0.9  # kept compressed only when that saves at least a tenth


def pack(data: bytes) -> tuple[bytes, int]:
    """(bytes to store, codec) for a payload."""
    if len(data) < 256:
        return data, RAW
    packed = zlib.compress(data, 1)
    return (packed, ZLIB) if len(packed) < len(data) * _WORTH else (data, RAW)


def unpack(stored: bytes, codec: int) -> bytes:
    """The payload's own bytes again."""
    return zlib.decompress(stored) if codec == ZLIB else bytes(stored)
