"""PostgreSQL: what operators read, and replay and discard (each checked and logged in one write;
the delivery's row is locked, as another node may act on it at the same time)."""

from __future__ import annotations

import time

from gateway.model import new_id
from gateway.store.postgres.connection import PostgresEngine
from gateway.store.postgres.writer import Tx
from gateway.store.rows import AttemptRow, DeliveryRow, MessageRow, QueueDepth
from gateway.store.shared import (
    LEAVING_STATES,
    discarded_event,
    not_discardable,
    payload_gone,
    replay_conflict,
    replayed_event,
)
from gateway.store.sql import POSTGRES as Q


class PostgresOperations(PostgresEngine):
    async def get_message(self, message_id: str) -> MessageRow | None:
        row = await self._row(Q.get_message, (message_id,))
        return MessageRow.from_db(row) if row else None

    async def get_deliveries(self, message_id: str) -> list[DeliveryRow]:
        return [DeliveryRow.from_db(r) for r in await self._rows(Q.get_deliveries, (message_id,))]

    async def get_delivery(self, delivery_id: str) -> DeliveryRow | None:
        r = await self._row(Q.get_delivery, (delivery_id,))
        return DeliveryRow.from_db(r) if r else None

    async def get_attempts(self, delivery_id: str) -> list[AttemptRow]:
        return [AttemptRow.from_db(r) for r in await self._rows(Q.get_attempts, (delivery_id,))]

    async def queue_depths(self) -> list[QueueDepth]:
        rows = []
        async with self._pooled() as conn, conn.cursor() as cur:
            await cur.execute(Q.queue_depths)
            for dest, state, count, oldest in await cur.fetchall():
                if state in LEAVING_STATES:
                    await cur.execute(Q.oldest_in_state(state), (dest,))
                    first = await cur.fetchone()
                    oldest = first[0] if first else None
                rows.append(QueueDepth.from_db((dest, state, count, oldest)))
        return rows

    async def list_deliveries(
        self, *, state: str | None = None, destination: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[DeliveryRow]:
        sql, args = Q.list_deliveries(state, destination, after, limit)
        return [DeliveryRow.from_db(r) for r in await self._rows(sql, args)]

    async def enqueue_replay(self, delivery_id: str, body_hash: str, actor: str, reason: str,
                             expect_state: str | None = None) -> str:
        new = new_id()

        async def op(tx: Tx) -> str:
            row = await tx.one(Q.replay_source + " FOR UPDATE", (delivery_id,))
            if row is None:
                raise KeyError(delivery_id)
            if expect_state is not None and row[5] != expect_state:
                raise replay_conflict(delivery_id, row[5], expect_state)
            if await tx.one(Q.replay_body_held, (row[0], body_hash, row[0], body_hash)) is None:
                await tx.conn.execute(Q.blob_ref, (body_hash,))  # a body the message does not hold yet: count it
            if await tx.one(Q.blob_exists, (body_hash,)) is None:
                raise payload_gone(row[0])  # retention ran between the replay's mapping and now
            now = time.time()
            await tx.conn.execute(Q.insert_replay, (new, row[0], row[1], row[2], body_hash, row[3], row[4],
                                                    f"replay by {actor}: {reason}", now, now, now, delivery_id))
            if row[5] == "dead":
                await tx.conn.execute(Q.discard, (f"superseded by replay {new} (by {actor})", now, delivery_id))
                await tx.conn.execute(Q.unhold_case, (row[1], row[2]))
            await tx.audit([replayed_event(actor, (row[0], row[1], row[2]), body_hash, delivery_id, new, reason)])
            tx.notify = True
            return new

        return await self._write(op)

    async def discard(self, delivery_id: str, actor: str, reason: str) -> None:
        async def op(tx: Tx) -> None:
            row = await tx.one(Q.discard_source + " FOR UPDATE", (delivery_id,))
            if row is None:
                raise KeyError(delivery_id)
            if row[4] not in ("dead", "queued", "retrying"):
                raise not_discardable(delivery_id, row[4])
            await tx.conn.execute(Q.discard, (f"discarded by {actor}: {reason}", time.time(), delivery_id))
            await tx.conn.execute(Q.unhold_case, (row[1], row[2]))
            await tx.audit([discarded_event(actor, row[:4], delivery_id, reason)])
            tx.notify = True

        await self._write(op)
