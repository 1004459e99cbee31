"""SQLite: what operators read, and replay and discard (each checked and logged in one write)."""

from __future__ import annotations

import sqlite3
import time

from gateway.model import new_id
from gateway.store.rows import AttemptRow, DeliveryRow, MessageRow, QueueDepth
from gateway.store.shared import (
    LEAVING_STATES,
    discarded_event,
    not_discardable,
    payload_gone,
    replay_conflict,
    replayed_event,
)
from gateway.store.sql import SQLITE as Q
from gateway.store.sqlite.connection import SQLiteEngine
from gateway.store.sqlite.writer import Tx


class SQLiteOperations(SQLiteEngine):
    async def get_message(self, message_id: str) -> MessageRow | None:
        def q(c: sqlite3.Connection) -> MessageRow | None:
            row = c.execute(Q.get_message, (message_id,)).fetchone()
            return MessageRow.from_db(row) if row else None

        return await self._read(q)

    async def get_deliveries(self, message_id: str) -> list[DeliveryRow]:
        return await self._read(
            lambda c: [DeliveryRow.from_db(r) for r in c.execute(Q.get_deliveries, (message_id,)).fetchall()])

    async def get_delivery(self, delivery_id: str) -> DeliveryRow | None:
        def q(c: sqlite3.Connection) -> DeliveryRow | None:
            r = c.execute(Q.get_delivery, (delivery_id,)).fetchone()
            return DeliveryRow.from_db(r) if r else None

        return await self._read(q)

    async def get_attempts(self, delivery_id: str) -> list[AttemptRow]:
        return await self._read(
            lambda c: [AttemptRow.from_db(r) for r in c.execute(Q.get_attempts, (delivery_id,)).fetchall()])

    async def queue_depths(self) -> list[QueueDepth]:
        def q(c: sqlite3.Connection) -> list[QueueDepth]:
            rows = []
            for dest, state, count, oldest in c.execute(Q.queue_depths).fetchall():
                if state in LEAVING_STATES:
                    first = c.execute(Q.oldest_in_state(state), (dest,)).fetchone()
                    oldest = first[0] if first else None
                rows.append(QueueDepth.from_db((dest, state, count, oldest)))
            return rows

        return await self._read(q)

    async def list_deliveries(
        self, *, state: str | None = None, destination: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[DeliveryRow]:
        sql, args = Q.list_deliveries(state, destination, after, limit)
        return await self._read(lambda c: [DeliveryRow.from_db(r) for r in c.execute(sql, args).fetchall()])

    async def enqueue_replay(self, delivery_id: str, body_hash: str, actor: str, reason: str,
                             expect_state: str | None = None) -> str:
        new = new_id()

        def op(tx: Tx) -> str:
            c = tx.conn
            row = c.execute(Q.replay_source, (delivery_id,)).fetchone()
            if row is None:
                raise KeyError(delivery_id)
            if expect_state is not None and row[5] != expect_state:
                raise replay_conflict(delivery_id, row[5], expect_state)
            if c.execute(Q.replay_body_held, (row[0], body_hash, row[0], body_hash)).fetchone() is None:
                c.execute(Q.blob_ref, (body_hash,))  # a body the message does not hold yet: count it
            if c.execute(Q.blob_exists, (body_hash,)).fetchone() is None:
                raise payload_gone(row[0])  # retention ran between the replay's mapping and now
            now = time.time()
            c.execute(Q.insert_replay, (new, row[0], row[1], row[2], body_hash, row[3], row[4],
                                        f"replay by {actor}: {reason}", now, now, now, delivery_id))
            if row[5] == "dead":
                c.execute(Q.discard, (f"superseded by replay {new} (by {actor})", now, delivery_id))
                c.execute(Q.unhold_case, (row[1], row[2]))
            tx.audit([replayed_event(actor, (row[0], row[1], row[2]), body_hash, delivery_id, new, reason)])
            return new

        result = await self._write(op)
        self.notify_work()
        return result

    async def discard(self, delivery_id: str, actor: str, reason: str) -> None:
        def op(tx: Tx) -> None:
            c = tx.conn
            row = c.execute(Q.discard_source, (delivery_id,)).fetchone()
            if row is None:
                raise KeyError(delivery_id)
            if row[4] not in ("dead", "queued", "retrying"):
                raise not_discardable(delivery_id, row[4])
            c.execute(Q.discard, (f"discarded by {actor}: {reason}", time.time(), delivery_id))
            c.execute(Q.unhold_case, (row[1], row[2]))
            tx.audit([discarded_event(actor, row[:4], delivery_id, reason)])

        await self._write(op)
        self.notify_work()
