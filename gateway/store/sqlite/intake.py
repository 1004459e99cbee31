"""SQLite: payloads and intake (a message, its deliveries and log entries in one write)."""

from __future__ import annotations

import json
import sqlite3
import time

from gateway.audit.chain import AuditEvent
from gateway.model import Receipt, sha256_hex
from gateway.store.packing import pack, unpack
from gateway.store.rows import NewDelivery, NewMessage
from gateway.store.shared import (
    as_duplicate,
    delivery_values,
    duplicate_event,
    message_values,
    new_message_payloads,
    new_receipt,
)
from gateway.store.sql import SQLITE as Q
from gateway.store.sqlite.cases import add_case_entry
from gateway.store.sqlite.clocks import SQLiteClocks
from gateway.store.sqlite.stats import count_record
from gateway.store.sqlite.writer import Tx

_ADD_BLOB = ("INSERT INTO blobs (sha256, size, data, codec, refs) VALUES (?,?,?,?,1) "
             "ON CONFLICT(sha256) DO UPDATE SET refs = refs + 1")


class SQLiteIntake(SQLiteClocks):
    async def put_blob(self, data: bytes) -> str:
        h = sha256_hex(data)

        def op(tx: Tx) -> str:
            tx.conn.execute("INSERT OR IGNORE INTO blobs (sha256, size, data, codec) VALUES (?,?,?,?)",
                            (h, len(data), *pack(data)))
            return h

        return await self._write(op)

    async def get_blob(self, sha256: str) -> bytes | None:
        def q(c: sqlite3.Connection) -> bytes | None:
            row = c.execute("SELECT data, codec FROM blobs WHERE sha256 = ?", (sha256,)).fetchone()
            return unpack(row[0], row[1]) if row else None

        return await self._read(q)

    @staticmethod
    def _find_receipt(c: sqlite3.Connection, sender: str, mid: str | None, content_hash: str) -> Receipt | None:
        row = None
        if mid:
            row = c.execute(
                "SELECT receipt FROM messages WHERE sender=? AND sender_message_id=?", (sender, mid)
            ).fetchone()
        if row is None:
            row = c.execute(
                "SELECT receipt FROM messages WHERE sender=? AND content_hash=? ORDER BY received_at LIMIT 1",
                (sender, content_hash),
            ).fetchone()
        if row is None:
            return None
        return as_duplicate(Receipt.from_dict(json.loads(row[0])))

    async def find_receipt(self, sender: str, sender_message_id: str | None, content_hash: str) -> Receipt | None:
        return await self._read(lambda c: self._find_receipt(c, sender, sender_message_id, content_hash))

    async def record_message(
        self, message: NewMessage, raw: bytes, blobs: dict[str, bytes], deliveries: list[NewDelivery],
        events: list[AuditEvent],
    ) -> Receipt:
        m = message
        receipt = new_receipt(m, deliveries)

        def op(tx: Tx) -> Receipt:
            c = tx.conn
            dup = self._find_receipt(c, m.sender, m.sender_message_id, m.content_hash)
            if dup is not None:
                tx.audit([duplicate_event(m, dup)])
                return dup
            data = {**blobs, m.content_hash: raw}
            held, files = new_message_payloads(m, blobs, deliveries)
            # each payload counts the messages holding it (retention frees it at 0)
            c.executemany(_ADD_BLOB, [(h, len(data[h]), *pack(data[h])) for h in held if h in data])
            c.executemany(Q.blob_ref, [(h,) for h in held if h not in data])
            for h in files:
                if not c.execute(Q.blob_ref, (h,)).rowcount:
                    c.execute("INSERT INTO files VALUES (?,1,NULL) "
                              "ON CONFLICT(sha256) DO UPDATE SET refs = refs + 1, unused_since = NULL", (h,))
            c.execute(Q.insert_message, message_values(m, receipt, tx.node))
            c.executemany(Q.insert_delivery, delivery_values(m, deliveries, time.time()))
            add_case_entry(c, m)
            count_record(c, m)
            tx.audit(events)
            self._clocks_at_intake(tx, m, deliveries)
            return receipt

        result = await self._write(op)
        if deliveries and not result.duplicate:
            self.notify_work()
        return result
