"""Payloads are kept compressed in SQLite, and nothing outside the store can tell.

The hash the log and the receipts name is the payload's own; a lease and get_blob give the bytes
that came in; a payload that does not shrink is kept as it came; retention frees a compressed
payload like any other; and the file is smaller for it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from gateway.model import DeliveryState, sha256_hex
from gateway.store.base import Finish
from gateway.store.packing import RAW, ZLIB, pack, unpack
from gateway.store.sqlite import SQLiteStore

from .test_retention import prune_all, put, settle

NOTE = "犯罪嫌疑人于2026年3月1日晚在太原市小店区醉酒驾驶机动车。"
XML = ("<案件><说明>" + NOTE * 60 + "</说明></案件>").encode("gb18030")


def stored(db: Path, h: str) -> tuple[int, int] | None:
    with sqlite3.connect(db) as c:
        row = c.execute("SELECT length(data), codec FROM blobs WHERE sha256 = ?", (h,)).fetchone()
    return (int(row[0]), int(row[1])) if row else None


def test_pack_keeps_what_does_not_shrink() -> None:
    noise = os.urandom(5000)
    assert pack(noise) == (noise, RAW) and pack(b"<r/>") == (b"<r/>", RAW)
    packed, codec = pack(XML)
    assert codec == ZLIB and len(packed) < len(XML) / 3 and unpack(packed, codec) == XML


async def test_payloads_round_trip_by_their_own_hash_and_retention_frees_them(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    store = SQLiteStore(db, node="n", durability="normal")
    await store.open()
    try:
        mid, h = await put(store, body=XML)
        assert h == sha256_hex(XML)
        size = stored(db, h)
        assert size is not None and size[1] == ZLIB and size[0] < len(XML) / 3
        assert await store.get_blob(h) == XML
        (lease,) = await store.lease("PROC", 1, 30)
        assert lease.body == XML and lease.body_hash == h
        await store.finish(lease, Finish(DeliveryState.DELIVERED, "ok"))
        noise = os.urandom(6000)
        _, n = await put(store, body=noise)
        assert stored(db, n) == (6000, RAW) and await store.get_blob(n) == noise
        await settle(store, "PROC", DeliveryState.DELIVERED)
        await prune_all(store)
        assert stored(db, h) is None and stored(db, n) is None and await store.get_blob(h) is None
        entries = await store.audit_entries(message_id=mid)
        assert entries[0].payload_hash == h  # the log names the payload, not its compressed form
    finally:
        await store.close()
