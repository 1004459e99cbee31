"""PostgreSQL: payloads and intake (a message, its deliveries and log entries in one write)."""

from __future__ import annotations

import json
import time
from typing import Any

from psycopg import AsyncConnection

from gateway.audit.chain import AuditEvent
from gateway.model import Receipt, sha256_hex
from gateway.store.postgres.cases import add_case_entry
from gateway.store.postgres.clocks import PostgresClocks
from gateway.store.postgres.stats import ask_record, count_record
from gateway.store.postgres.writer import Tx
from gateway.store.rows import NewDelivery, NewMessage
from gateway.store.shared import (
    as_duplicate,
    delivery_values,
    duplicate_event,
    message_values,
    new_message_payloads,
    new_receipt,
)
from gateway.store.sql import POSTGRES as Q

_FIND_RECEIPT = ("SELECT receipt FROM messages WHERE sender = %s AND (sender_message_id = %s OR content_hash = %s) "
                 "ORDER BY (sender_message_id = %s) IS TRUE DESC, received_at LIMIT 1")


def _receipt(row: Any) -> Receipt | None:
    return as_duplicate(Receipt.from_dict(json.loads(row[0]))) if row else None


async def _find_receipt(conn: AsyncConnection[Any], sender: str, mid: str | None, content_hash: str) -> Receipt | None:
    return _receipt(await (await conn.execute(_FIND_RECEIPT, (sender, mid, content_hash, mid))).fetchone())


async def _hold_files(c: AsyncConnection[Any], hashes: list[str]) -> None:
    """Count a new message on its dossier files: a stored payload (SOAP) or a file on disk."""
    cur = await c.execute("UPDATE blobs SET refs = refs + 1 WHERE sha256 = ANY(%s) RETURNING sha256", (hashes,))
    stored = {r[0] for r in await cur.fetchall()}
    if on_disk := [h for h in hashes if h not in stored]:
        async with c.cursor() as cur2:
            await cur2.executemany(
                "INSERT INTO files VALUES (%s, 1, NULL) "
                "ON CONFLICT (sha256) DO UPDATE SET refs = files.refs + 1, unused_since = NULL",
                [(h,) for h in on_disk],
            )


class PostgresIntake(PostgresClocks):
    async def put_blob(self, data: bytes) -> str:
        h = sha256_hex(data)
        async with self._pooled() as conn:
            await conn.execute(
                "INSERT INTO blobs (sha256, size, data) VALUES (%s,%s,%s) ON CONFLICT DO NOTHING", (h, len(data), data)
            )
        return h

    async def get_blob(self, sha256: str) -> bytes | None:
        row = await self._row(Q.get_blob, (sha256,))
        return bytes(row[0]) if row else None

    async def find_receipt(self, sender: str, sender_message_id: str | None, content_hash: str) -> Receipt | None:
        async with self._pooled() as conn:
            return await _find_receipt(conn, sender, sender_message_id, content_hash)

    async def record_message(
        self, message: NewMessage, raw: bytes, blobs: dict[str, bytes], deliveries: list[NewDelivery],
        events: list[AuditEvent],
    ) -> Receipt:
        m = message
        receipt = new_receipt(m, deliveries)

        async def op(tx: Tx) -> Receipt:
            c = tx.conn
            # groups of all nodes are serialised by the head lock, so this sees every committed message;
            # the clocks' stops and the statistics' reads go out with it (one round trip for all)
            found = await c.execute(_FIND_RECEIPT, (m.sender, m.sender_message_id, m.content_hash, m.sender_message_id))
            clocks = await self._queue_clock_stops(tx, m, deliveries)
            asked = await ask_record(c, m)
            dup = _receipt(await found.fetchone())
            if dup is not None:
                await tx.audit([duplicate_event(m, dup)])
                return dup
            data = {**blobs, m.content_hash: raw}
            held, files = new_message_payloads(m, blobs, deliveries)
            async with c.cursor() as cur:  # each payload counts the messages holding it (retention frees it at 0)
                await cur.executemany(
                    "INSERT INTO blobs (sha256, size, data, refs) VALUES (%s,%s,%s,1) "
                    "ON CONFLICT (sha256) DO UPDATE SET refs = blobs.refs + 1",
                    [(h, len(data[h]), data[h]) for h in held if h in data],
                )
            if elsewhere := [h for h in held if h not in data]:
                await c.execute("UPDATE blobs SET refs = refs + 1 WHERE sha256 = ANY(%s)", (elsewhere,))
            if files:
                await _hold_files(c, files)
            # no resend races past the lookup (head lock); the unique index would refuse one
            await c.execute(Q.insert_message, message_values(m, receipt, tx.node))
            if deliveries:
                async with c.cursor() as cur:
                    await cur.executemany(Q.insert_delivery, delivery_values(m, deliveries, time.time()))
                tx.notify = True
            await add_case_entry(tx, m)
            await count_record(tx, m, asked)
            await tx.audit(events)
            await self._clocks_at_intake(tx, m, clocks)
            return receipt

        return await self._write(op)
