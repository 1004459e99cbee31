"""PostgreSQL store: several gateway nodes share one database and the work in it.

- Writes that touch the exchange log go through one writer task per node that commits in
  groups (like the SQLite writer); each group first locks the one row of `audit_head`, so the
  log stays a single hash chain however many nodes append, and since every group takes that
  lock first, groups of different nodes never deadlock each other.
- Leasing runs beside it on pooled connections with `SELECT ... FOR UPDATE SKIP LOCKED`:
  nodes take different deliveries without waiting for each other, and a lease that expired
  (its node died) is retaken. Order per (destination, case) holds as on SQLite.
- Idle dispatchers sleep until a NOTIFY from any node's commit (LISTEN on one connection).
- Named locks (`try_lock`) are session advisory locks: a node that dies frees them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from gateway.audit.chain import AuditEntry, AuditEvent, seal
from gateway.model import DeliveryState, Receipt, new_id, sha256_hex
from gateway.store import migrations
from gateway.store.base import Finish, Lease, NewDelivery, NewMessage, Pruned, StaleLease, Store
from gateway.store.shared import (
    add_counts,
    as_duplicate,
    delivery_row,
    duplicate_event,
    finish_event,
    finish_reason,
    held_payloads,
    held_reason,
    iso_now,
    lease_attachments,
    lease_reason,
    new_message_payloads,
    new_receipt,
    not_discardable,
    payload_gone,
    pruned_event,
    replay_conflict,
)

T = TypeVar("T")
log = logging.getLogger("gateway.store.postgres")

CHANNEL = "gateway_work"
_BATCH = 256
_RETRIES = 5  # a deadlock or serialization failure (never expected, see above) retries the group

_MESSAGE_COLUMNS = (
    "id, sender, channel, sender_message_id, content_hash, canonical_hash, case_number, stage, action, "
    "status, "
    "reasons, received_at, file_name, operation, summary, receipt, node"
)
_LEASE = """
SELECT d.seq, d.id, d.message_id, d.destination, d.case_number, d.body_hash, d.content_type,
       d.attempts, d.created_at, d.file_name, b.data,
       CASE WHEN m.status = 'accepted' THEN (m.summary::jsonb -> 'attachments')::text END
FROM deliveries d LEFT JOIN blobs b ON b.sha256 = d.body_hash JOIN messages m ON m.id = d.message_id
WHERE d.destination = %(dest)s AND d.state IN ('queued','retrying','in_flight')
  AND ((d.state IN ('queued','retrying') AND d.next_attempt_at <= %(now)s)
       OR (d.state = 'in_flight' AND d.lease_expires_at <= %(now)s))
  AND d.seq = (  -- the case's oldest open delivery (a sub-plan per row: one index probe, never a join)
    SELECT min(e.seq) FROM deliveries e
    WHERE e.destination = d.destination AND e.case_number = d.case_number
      AND e.state IN ('queued','retrying','in_flight','dead'))
ORDER BY d.seq LIMIT %(limit)s
FOR UPDATE OF d SKIP LOCKED
"""
_LOCK_KEY = "hashtextextended(current_schema() || ':' || %s, 0)"


class _Tx:
    """What a write operation sees: the connection, this node's name and the log's head."""

    def __init__(self, conn: AsyncConnection[Any], node: str, head: tuple[int, str, str]) -> None:
        self.conn = conn
        self.node = node
        self.head = head
        self.notify = False

    async def audit(self, events: list[AuditEvent]) -> list[AuditEntry]:
        out = []
        for ev in events:
            seq, prev, prev_time = self.head
            entry = seal(ev, seq=seq + 1, time=max(iso_now(), prev_time), node=self.node, prev_hash=prev)
            self.head = (entry.seq, entry.entry_hash, entry.time)
            out.append(entry)
        if out:
            async with self.conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO audit_log VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                    [
                        (
                            e.seq,
                            e.time,
                            e.node,
                            e.actor,
                            e.action,
                            e.message_id,
                            e.case_number,
                            e.payload_hash,
                            e.detail,
                            e.prev_hash,
                            e.entry_hash,
                        )
                        for e in out
                    ],
                )
        return out

    async def one(self, sql: str, args: Any = None) -> Any:
        cur = await self.conn.execute(sql, args)
        return await cur.fetchone()


Op = Callable[[_Tx], Awaitable[T]]


class _OpFailed(Exception):
    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


class PostgresStore(Store):
    def __init__(
        self, dsn: str, node: str = "node-1", *, pool_size: int = 6, group_commit: bool = True
    ) -> None:
        super().__init__()
        self.dsn = dsn
        self.node = node
        self.pool_size = pool_size
        self.batch = _BATCH if group_commit else 1
        self._pool: AsyncConnectionPool | None = None
        self._queue: asyncio.Queue[tuple[Op[Any], asyncio.Future[Any]] | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._lock_conn: AsyncConnection[Any] | None = None
        self._lock_guard = asyncio.Lock()
        self._held: set[str] = set()
        self._claims = 0

    # -- lifecycle --------------------------------------------------------------------
    async def open(self) -> None:
        if await self.schema_version() == 0:
            await self.upgrade()  # an empty database: initialise it (concurrent nodes serialise)
        migrations.check(await self.schema_version(), _where(self.dsn), "postgres")
        self._pool = AsyncConnectionPool(
            self.dsn,
            min_size=2,
            max_size=self.pool_size,
            kwargs={"autocommit": True},
            open=False,
            name=f"store-{self.node}",
        )
        await self._pool.open(wait=True, timeout=30)
        self._queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop(), name="store-writer")
        self._listener = asyncio.create_task(self._listen(), name="store-listener")

    async def close(self) -> None:
        if self._writer:
            await self._queue.put(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer, 30)
            self._writer = None
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._lock_conn is not None:
            with contextlib.suppress(Exception):
                await self._lock_conn.close()
            self._lock_conn = None
            self._held.clear()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def schema_version(self) -> int:
        async with await AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            return await _version(conn)

    async def upgrade(self) -> list[int]:
        done: list[int] = []
        async with await AsyncConnection.connect(self.dsn) as conn, conn.transaction():
            await conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})", ("gateway-migrations",))
            for m in migrations.pending("postgres", await _version(conn)):
                await conn.execute(m.sql.encode())  # no parameters: several statements in one go
                await conn.execute(
                    "INSERT INTO meta VALUES ('schema_version', %s) ON CONFLICT (key) DO UPDATE SET value = "
                    "EXCLUDED.value",
                    (str(m.version),),
                )
                done.append(m.version)
        return done

    # -- the writer: group commit behind the chain-head lock ---------------------------------
    def _write(self, fn: Op[T]) -> asyncio.Future[T]:
        assert self._writer is not None, "store is not open"
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((fn, fut))
        return fut

    async def _write_loop(self) -> None:
        conn: AsyncConnection[Any] | None = None
        stop = False
        while not stop:
            item = await self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < self.batch and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            try:
                if conn is None or conn.closed:
                    conn = await AsyncConnection.connect(self.dsn, autocommit=True)
                await self._commit(conn, batch)
            except (
                Exception
            ) as e:  # the database is unreachable: every caller hears it, the next group reconnects
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                if conn is not None and not conn.closed:
                    await conn.close()
                conn = None
        if conn is not None:
            await conn.close()

    async def _commit(
        self, conn: AsyncConnection[Any], batch: list[tuple[Op[Any], asyncio.Future[Any]]]
    ) -> None:
        """Commit a group; an operation that fails is answered with its error and the rest run again."""
        pending = list(batch)
        conflicts = 0
        while pending:
            try:
                results, notify = await self._group(conn, pending)
            except _OpFailed as f:  # the group was rolled back: the others run again without it
                _, fut = pending.pop(f.index)
                if not fut.done():
                    fut.set_exception(f.error)
                continue
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                conflicts += 1
                if conflicts >= _RETRIES:
                    raise
                log.warning("write group rolled back by the database (attempt %d); retrying", conflicts)
                continue
            for (_, fut), r in zip(pending, results, strict=True):
                if not fut.done():
                    fut.set_result(r)
            if notify:
                self.notify_work()
            return

    async def _group(
        self, conn: AsyncConnection[Any], batch: list[tuple[Op[Any], asyncio.Future[Any]]]
    ) -> tuple[list[Any], bool]:
        """One transaction: lock the chain head, run each operation pipelined, move the head, NOTIFY.

        No savepoint per operation (they cost two round trips each): failures are rare and
        handled by `_commit` running the group again without the failed operation.
        """
        results: list[Any] = []
        notify = False
        async with conn.transaction():
            row = await (
                await conn.execute("SELECT seq, entry_hash, time FROM audit_head WHERE id = 1 FOR UPDATE")
            ).fetchone()
            assert row is not None, "audit_head row missing; run 'gateway db upgrade'"
            tx = _Tx(conn, self.node, (row[0], row[1], row[2]))
            first = tx.head
            for i, (fn, _) in enumerate(batch):
                tx.notify = False
                try:
                    async with conn.pipeline():  # statements whose answers are not read go out together
                        results.append(await fn(tx))
                except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                    raise
                except Exception as e:  # the operation's own failure goes back to its caller
                    raise _OpFailed(i, e) from e
                notify = notify or tx.notify
            async with conn.pipeline():
                if tx.head != first:
                    await conn.execute(
                        "UPDATE audit_head SET seq = %s, entry_hash = %s, time = %s WHERE id = 1", tx.head
                    )
                if notify:
                    await conn.execute(f"NOTIFY {CHANNEL}")
        return results, notify

    # -- wake-ups from any node ----------------------------------------------------------------
    async def _listen(self) -> None:
        while True:
            try:
                async with await AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._work.set()  # anything enqueued while not listening is looked at now
                    async for _ in conn.notifies():
                        self._work.set()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the dispatcher still polls by next_due meanwhile
                log.warning("listening for work on the database failed (%s); reconnecting", e)
                await asyncio.sleep(1.0)

    # -- reads ----------------------------------------------------------------------------------
    async def _rows(self, sql: str, args: Any = None) -> list[dict[str, Any]]:
        assert self._pool is not None, "store is not open"
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql, args)
            return await cur.fetchall()

    async def _row(self, sql: str, args: Any = None) -> dict[str, Any] | None:
        rows = await self._rows(sql, args)
        return rows[0] if rows else None

    # -- blobs ------------------------------------------------------------------------------------
    async def put_blob(self, data: bytes) -> str:
        h = sha256_hex(data)
        assert self._pool is not None, "store is not open"
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO blobs (sha256, size, data) VALUES (%s,%s,%s) ON CONFLICT DO NOTHING", (h, len(data), data)
            )
        return h

    async def get_blob(self, sha256: str) -> bytes | None:
        row = await self._row("SELECT data FROM blobs WHERE sha256 = %s", (sha256,))
        return bytes(row["data"]) if row else None

    # -- intake ------------------------------------------------------------------------------------
    @staticmethod
    async def _find_receipt(
        conn: AsyncConnection[Any], sender: str, mid: str | None, content_hash: str
    ) -> Receipt | None:
        row = await (
            await conn.execute(
                "SELECT receipt FROM messages WHERE sender = %s "
                "AND (sender_message_id = %s OR content_hash = %s) "
                "ORDER BY (sender_message_id = %s) IS TRUE DESC, received_at LIMIT 1",
                (sender, mid, content_hash, mid),
            )
        ).fetchone()
        return as_duplicate(Receipt.from_dict(json.loads(row[0]))) if row else None

    async def find_receipt(
        self, sender: str, sender_message_id: str | None, content_hash: str
    ) -> Receipt | None:
        assert self._pool is not None, "store is not open"
        async with self._pool.connection() as conn:
            return await self._find_receipt(conn, sender, sender_message_id, content_hash)

    async def record_message(
        self,
        message: NewMessage,
        raw: bytes,
        blobs: dict[str, bytes],
        deliveries: list[NewDelivery],
        events: list[AuditEvent],
    ) -> Receipt:
        m = message
        receipt = new_receipt(m, deliveries)

        async def op(tx: _Tx) -> Receipt:
            c = tx.conn
            # groups of all nodes are serialised by the head lock, so this sees every committed message
            dup = await self._find_receipt(c, m.sender, m.sender_message_id, m.content_hash)
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
            await tx.conn.execute(
                f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES ({', '.join(['%s'] * 17)})",
                (
                    m.message_id,
                    m.sender,
                    m.channel,
                    m.sender_message_id,
                    m.content_hash,
                    m.canonical_hash,
                    m.case_number,
                    m.stage,
                    m.action,
                    str(m.status),
                    json.dumps(list(m.reasons), ensure_ascii=False),
                    m.received_at,
                    m.file_name,
                    m.operation,
                    json.dumps(m.summary, ensure_ascii=False),
                    json.dumps(receipt.as_dict(), ensure_ascii=False),
                    tx.node,
                ),
            )  # no resend races past the lookup (head lock); the unique index would refuse one
            now = time.time()
            if deliveries:
                async with c.cursor() as cur:
                    await cur.executemany(
                        "INSERT INTO deliveries (id, message_id, destination, case_number, body_hash, "
                        "content_type, "
                        "file_name, state, reason, attempts, created_at, updated_at, next_attempt_at) "
                        "VALUES (%s,%s,%s,%s,%s,%s,%s,'queued',%s,0,%s,%s,%s)",
                        [
                            (
                                new_id(),
                                m.message_id,
                                d.destination,
                                m.case_number,
                                d.body_hash,
                                d.content_type,
                                d.file_name,
                                d.reason,
                                now,
                                now,
                                now,
                            )
                            for d in deliveries
                        ],
                    )
                tx.notify = True
            await tx.audit(events)
            return receipt

        return await self._write(op)

    # -- delivery ------------------------------------------------------------------------------------
    async def lease(self, destination: str, limit: int, lease_seconds: float) -> list[Lease]:
        assert self._pool is not None, "store is not open"
        now = time.time()
        async with self._pool.connection() as conn, conn.transaction():
            # a lease lost with a database crash only means one more attempt, recognised by the receiver
            # through the Idempotency-Key (the late result is refused as stale): no fsync needed here
            await conn.execute("SET LOCAL synchronous_commit = off")
            rows = await (
                await conn.execute(_LEASE, {"dest": destination, "now": now, "limit": limit})
            ).fetchall()
            if not rows:
                return []
            leases = [
                Lease(r[1], r[2], r[3], r[4], r[5], r[6], r[7] + 1, r[8], uuid.uuid4().hex, r[9],
                      None if r[10] is None else bytes(r[10]),  # the payload comes with the lease
                      lease_attachments(r[11]))
                for r in rows
            ]
            async with conn.cursor() as cur:
                await cur.executemany(
                    "UPDATE deliveries SET state = 'in_flight', lease_owner = %s, lease_token = %s, "
                    "lease_expires_at = %s, attempts = attempts + 1, updated_at = %s, reason = %s "
                    "WHERE id = %s",
                    [
                        (
                            self.node,
                            x.token,
                            now + lease_seconds,
                            now,
                            lease_reason(x.attempt, self.node),
                            x.delivery_id,
                        )
                        for x in leases
                    ],
                )
        return leases

    async def finish(self, lease: Lease, result: Finish) -> None:
        async def op(tx: _Tx) -> None:
            row = await tx.one(
                "SELECT lease_token, state, seq FROM deliveries WHERE id = %s FOR UPDATE",
                (lease.delivery_id,),
            )
            if row is None or row[0] != lease.token or row[1] != "in_flight":
                raise StaleLease(lease.delivery_id)
            now = time.time()
            state = result.state
            await tx.conn.execute(
                "INSERT INTO attempts (delivery_id, attempt, node, started_at, ended_at, outcome, detail) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s)",
                (
                    lease.delivery_id,
                    lease.attempt,
                    tx.node,
                    result.started_at or now,
                    now,
                    str(state),
                    result.detail,
                ),
            )
            await tx.conn.execute(
                "UPDATE deliveries SET state = %s, reason = %s, updated_at = %s, next_attempt_at = %s, "
                "lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, delivered_at = %s, "
                "receipt = %s "
                "WHERE id = %s",
                (
                    str(state),
                    finish_reason(state, result, lease),
                    now,
                    result.next_attempt_at or now,
                    now if state == DeliveryState.DELIVERED else None,
                    result.receipt or None,
                    lease.delivery_id,
                ),
            )
            if state == DeliveryState.DEAD:
                await tx.conn.execute(
                    "UPDATE deliveries SET reason = %s WHERE destination = %s AND case_number = %s "
                    "AND seq > %s "
                    "AND state IN ('queued','retrying')",
                    (held_reason(lease), lease.destination, lease.case_number, row[2]),
                )
            await tx.audit([finish_event(tx.node, lease, result)])
            tx.notify = state in (
                DeliveryState.DELIVERED,
                DeliveryState.DEAD,
            )  # the case's next record may go

        await self._write(op)

    async def release_leases(self) -> int:
        async def op(tx: _Tx) -> int:
            cur = await tx.conn.execute(
                "UPDATE deliveries SET state = 'retrying', lease_owner = NULL, lease_token = NULL, "
                "lease_expires_at = NULL, attempts = GREATEST(attempts - 1, 0), "
                "reason = 'released at shutdown of ' || %s, next_attempt_at = %s "
                "WHERE state = 'in_flight' AND lease_owner = %s RETURNING id",
                (tx.node, time.time(), tx.node),
            )
            released = len(await cur.fetchall())
            tx.notify = released > 0  # another node may take them at once
            return released

        return await self._write(op)

    async def next_due(self) -> float | None:
        row = await self._row(
            "SELECT LEAST("
            "(SELECT MIN(next_attempt_at) FROM deliveries WHERE state IN ('queued','retrying')), "
            "(SELECT MIN(lease_expires_at) FROM deliveries WHERE state = 'in_flight')) AS due"
        )
        return None if row is None or row["due"] is None else float(row["due"])

    # -- operators -------------------------------------------------------------------------------------
    async def get_message(self, message_id: str) -> dict[str, Any] | None:
        d = await self._row("SELECT * FROM messages WHERE id = %s", (message_id,))
        if d is None:
            return None
        for k in ("reasons", "summary", "receipt"):
            d[k] = json.loads(d[k])
        return d

    async def get_deliveries(self, message_id: str) -> list[dict[str, Any]]:
        return [
            delivery_row(r)
            for r in await self._rows(
                "SELECT * FROM deliveries WHERE message_id = %s ORDER BY seq", (message_id,)
            )
        ]

    async def get_delivery(self, delivery_id: str) -> dict[str, Any] | None:
        r = await self._row("SELECT * FROM deliveries WHERE id = %s", (delivery_id,))
        return delivery_row(r) if r else None

    async def get_attempts(self, delivery_id: str) -> list[dict[str, Any]]:
        return await self._rows("SELECT * FROM attempts WHERE delivery_id = %s ORDER BY id", (delivery_id,))

    async def queue_depths(self) -> list[dict[str, Any]]:
        return await self._rows(
            "SELECT destination, state, COUNT(*) AS count, MIN(created_at) AS oldest "
            "FROM deliveries GROUP BY destination, state ORDER BY destination, state"
        )

    async def list_deliveries(
        self,
        *,
        state: str | None = None,
        destination: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM deliveries WHERE true"
        args: list[Any] = []
        if state:
            sql += " AND state = %s"
            args.append(state)
        if destination:
            sql += " AND destination = %s"
            args.append(destination)
        if after:
            sql += " AND seq > (SELECT seq FROM deliveries WHERE id = %s)"
            args.append(after)
        sql += " ORDER BY seq LIMIT %s"
        args.append(min(limit, 1000))
        return [delivery_row(r) for r in await self._rows(sql, args)]

    async def enqueue_replay(self, delivery_id: str, body_hash: str, actor: str, reason: str,
                             expect_state: str | None = None) -> str:
        new = new_id()

        async def op(tx: _Tx) -> str:
            row = await tx.one(
                "SELECT message_id, destination, case_number, content_type, file_name, state FROM deliveries "
                "WHERE id = %s FOR UPDATE",
                (delivery_id,),
            )
            if row is None:
                raise KeyError(delivery_id)
            if expect_state is not None and row[5] != expect_state:
                raise replay_conflict(delivery_id, row[5], expect_state)
            held = await tx.one(
                "SELECT 1 FROM messages WHERE id = %s AND %s IN (content_hash, canonical_hash) UNION ALL "
                "SELECT 1 FROM deliveries WHERE message_id = %s AND body_hash = %s",
                (row[0], body_hash, row[0], body_hash))
            if held is None:  # a body the message does not hold yet: count it
                await tx.conn.execute("UPDATE blobs SET refs = refs + 1 WHERE sha256 = %s", (body_hash,))
            if await tx.one("SELECT 1 FROM blobs WHERE sha256 = %s", (body_hash,)) is None:
                raise payload_gone(row[0])  # retention ran between the replay's mapping and now
            now = time.time()
            await tx.conn.execute(
                "INSERT INTO deliveries (id, message_id, destination, case_number, body_hash, "
                "content_type, "
                "file_name, state, reason, attempts, created_at, updated_at, next_attempt_at, replay_of) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,'queued',%s,0,%s,%s,%s,%s)",
                (
                    new,
                    row[0],
                    row[1],
                    row[2],
                    body_hash,
                    row[3],
                    row[4],
                    f"replay by {actor}: {reason}",
                    now,
                    now,
                    now,
                    delivery_id,
                ),
            )
            if row[5] == "dead":
                await tx.conn.execute(
                    "UPDATE deliveries SET state = 'discarded', reason = %s, updated_at = %s WHERE id = %s",
                    (f"superseded by replay {new} (by {actor})", now, delivery_id),
                )
                await _unhold(tx.conn, row[1], row[2])
            await tx.audit(
                [
                    AuditEvent(
                        "replayed",
                        actor,
                        row[0],
                        row[2],
                        body_hash,
                        {
                            "delivery": delivery_id,
                            "new_delivery": new,
                            "destination": row[1],
                            "reason": reason,
                        },
                    )
                ]
            )
            tx.notify = True
            return new

        return await self._write(op)

    # -- one-time tokens across nodes ------------------------------------------------------
    async def claim_once(self, key: str, expires_at: float) -> bool:
        assert self._pool is not None, "store is not open"
        now = time.time()
        async with self._pool.connection() as conn:
            row = await (await conn.execute(
                "INSERT INTO claims VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at "
                "WHERE claims.expires_at < %s RETURNING key", (key, expires_at, now))).fetchone()
            self._claims += 1
            if self._claims % 1000 == 0:  # expired claims are only ever overwritten; clear them now and then
                await conn.execute("DELETE FROM claims WHERE expires_at < %s", (now,))
        return row is not None

    # -- retention ------------------------------------------------------------------
    async def prune_payloads(
        self, finished_before: float, limit: int, after: tuple[float, str] | None, actor: str, policy: str
    ) -> Pruned:
        """Runs in a write group, behind the chain-head lock that intake and replay also take, so no
        new reference to a payload can appear between the check and the delete."""

        async def op(tx: _Tx) -> Pruned:
            c = tx.conn
            rows = await (await c.execute(
                "SELECT id, case_number, content_hash, canonical_hash, summary, received_at FROM messages "
                "WHERE payload_pruned_at IS NULL AND received_at < %s AND (received_at, id) > (%s, %s) "
                "ORDER BY received_at, id LIMIT %s",
                (finished_before, *(after or (float("-inf"), "")), limit),
            )).fetchall()
            if not rows:
                return Pruned()
            unfinished = {r[0] for r in await (await c.execute(
                "SELECT DISTINCT message_id FROM deliveries WHERE message_id = ANY(%s) "
                "AND (state NOT IN ('delivered','discarded') OR updated_at >= %s)",
                ([r[0] for r in rows], finished_before),
            )).fetchall()}
            done = [r for r in rows if r[0] not in unfinished]
            last = (rows[-1][5], rows[-1][0]) if len(rows) == limit else None
            if not done:
                return Pruned(after=last)
            ids = [r[0] for r in done]
            bodies: dict[str, list[str]] = {}
            for mid, h in await (await c.execute(
                    "SELECT message_id, body_hash FROM deliveries WHERE message_id = ANY(%s)", (ids,))).fetchall():
                bodies.setdefault(mid, []).append(h)
            now = time.time()
            await c.execute("UPDATE messages SET payload_pruned_at = %s WHERE id = ANY(%s)", (now, ids))
            counts = (0, 0, 0)
            for mid, _case, content, canonical, summary, _at in done:
                held, files = held_payloads(content, canonical, bodies.get(mid, ()),
                                            json.loads(summary).get("attachments", ()))
                for h in (*held, *files):
                    counts = add_counts(counts, await _release(c, h, h in files, now))
            await tx.audit([pruned_event(actor, r[0], r[1], r[2], policy) for r in done])
            return Pruned(len(done), *counts, last)

        return await self._write(op)

    async def file_removals(self, limit: int) -> list[str]:
        rows = await self._rows("SELECT sha256 FROM files WHERE refs <= 0 ORDER BY unused_since LIMIT %s", (limit,))
        return [r["sha256"] for r in rows]

    async def files_removed(self, hashes: list[str]) -> None:
        async def op(tx: _Tx) -> None:
            await tx.conn.execute("DELETE FROM files WHERE sha256 = ANY(%s) AND refs <= 0", (hashes,))

        await self._write(op)

    async def known_files(self, hashes: list[str]) -> set[str]:
        rows = await self._rows("SELECT sha256 FROM files WHERE sha256 = ANY(%s)", (hashes,))
        return {r["sha256"] for r in rows}

    async def discard(self, delivery_id: str, actor: str, reason: str) -> None:
        async def op(tx: _Tx) -> None:
            row = await tx.one(
                "SELECT message_id, destination, case_number, body_hash, state FROM deliveries WHERE id = %s "
                "FOR UPDATE",
                (delivery_id,),
            )
            if row is None:
                raise KeyError(delivery_id)
            if row[4] not in ("dead", "queued", "retrying"):
                raise not_discardable(delivery_id, row[4])
            await tx.conn.execute(
                "UPDATE deliveries SET state = 'discarded', reason = %s, updated_at = %s WHERE id = %s",
                (f"discarded by {actor}: {reason}", time.time(), delivery_id),
            )
            await _unhold(tx.conn, row[1], row[2])
            await tx.audit(
                [
                    AuditEvent(
                        "discarded",
                        actor,
                        row[0],
                        row[2],
                        row[3],
                        {"delivery": delivery_id, "destination": row[1], "reason": reason},
                    )
                ]
            )
            tx.notify = True

        await self._write(op)

    # -- exchange log ---------------------------------------------------------------------------------
    async def append_audit(self, events: list[AuditEvent]) -> list[AuditEntry]:
        return await self._write(lambda tx: tx.audit(events))

    async def audit_entries(
        self,
        *,
        case_number: str | None = None,
        message_id: str | None = None,
        agency: str | None = None,
        since: str | None = None,
        until: str | None = None,
        after_seq: int = 0,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        sql = (
            "SELECT seq, time, node, actor, action, message_id, case_number, payload_hash, detail, "
            "prev_hash, "
            "entry_hash FROM audit_log WHERE seq > %s"
        )
        args: list[Any] = [after_seq]
        if case_number:
            sql += " AND case_number = %s"
            args.append(case_number)
        if message_id:
            sql += " AND message_id = %s"
            args.append(message_id)
        if agency:
            sql += (
                " AND (actor = %s OR detail LIKE %s"
                " OR message_id IN (SELECT id FROM messages WHERE sender = %s))"
            )
            args += [agency, f'%"{agency}"%', agency]
        if since:
            sql += " AND time >= %s"
            args.append(since)
        if until:
            sql += " AND time < %s"
            args.append(until)
        sql += " ORDER BY seq LIMIT %s"
        args.append(limit)
        return [AuditEntry(**r) for r in await self._rows(sql, args)]

    async def audit_head(self) -> tuple[int, str]:
        row = await self._row("SELECT seq, entry_hash FROM audit_head WHERE id = 1")
        assert row is not None
        return int(row["seq"]), str(row["entry_hash"])

    async def add_checkpoint(
        self, seq: int, entry_hash: str, signed_at: str, signature: str, key_id: str
    ) -> None:
        await self._write(
            lambda tx: tx.conn.execute(
                "INSERT INTO checkpoints VALUES (%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                (seq, entry_hash, signed_at, signature, key_id),
            )
        )

    async def checkpoints(self) -> list[dict[str, Any]]:
        return await self._rows("SELECT * FROM checkpoints ORDER BY seq")

    # -- API keys ---------------------------------------------------------------------------------------
    async def put_api_key(self, key_hash: str, role: str, name: str, agency: str | None) -> None:
        await self._write(
            lambda tx: tx.conn.execute(
                "INSERT INTO api_keys VALUES (%s,%s,%s,%s) "
                "ON CONFLICT (key_hash) DO UPDATE SET role = EXCLUDED.role, "
                "name = EXCLUDED.name, agency = EXCLUDED.agency",
                (key_hash, role, name, agency),
            )
        )

    async def find_api_key(self, key_hash: str) -> dict[str, Any] | None:
        return await self._row("SELECT * FROM api_keys WHERE key_hash = %s", (key_hash,))

    # -- ingested files -----------------------------------------------------------------------------------
    async def file_seen(self, channel: str, fingerprint: str) -> str | None:
        row = await self._row(
            "SELECT message_id FROM ingested_files WHERE channel = %s AND fingerprint = %s",
            (channel, fingerprint),
        )
        return str(row["message_id"]) if row else None

    async def mark_file(self, channel: str, fingerprint: str, message_id: str) -> None:
        await self._write(
            lambda tx: tx.conn.execute(
                "INSERT INTO ingested_files VALUES (%s,%s,%s) ON CONFLICT DO NOTHING",
                (channel, fingerprint, message_id),
            )
        )

    # -- cluster-wide named locks -------------------------------------------------------------------------
    async def try_lock(self, name: str) -> bool:
        async with self._lock_guard:
            if name in self._held:
                return False
            if self._lock_conn is None or self._lock_conn.closed:
                self._lock_conn = await AsyncConnection.connect(self.dsn, autocommit=True)
                self._held.clear()  # a lost session lost its locks with it
            row = await (
                await self._lock_conn.execute(f"SELECT pg_try_advisory_lock({_LOCK_KEY})", (name,))
            ).fetchone()
            if row and row[0]:
                self._held.add(name)
                return True
            return False

    async def unlock(self, name: str) -> None:
        async with self._lock_guard:
            if name not in self._held or self._lock_conn is None:
                return
            self._held.discard(name)
            with contextlib.suppress(psycopg.Error):
                await self._lock_conn.execute(f"SELECT pg_advisory_unlock({_LOCK_KEY})", (name,))


async def _version(conn: AsyncConnection[Any]) -> int:
    """The schema version recorded in the database; 0 when it has no tables yet."""
    row = await (await conn.execute("SELECT to_regclass('meta') IS NOT NULL")).fetchone()
    if not row or not row[0]:
        return 0
    row = await (await conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")).fetchone()
    return int(row[0]) if row else 0


async def _unhold(conn: AsyncConnection[Any], destination: str, case_number: str) -> None:
    await conn.execute(
        "UPDATE deliveries SET reason = 'queued for delivery' WHERE destination = %s AND case_number = %s "
        "AND state IN ('queued','retrying') AND reason LIKE 'held:%%'",
        (destination, case_number),
    )


def _where(dsn: str) -> str:
    """The database named without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(postgres)"
    return f"{info.get('dbname', '?')} on {info.get('host', 'localhost')}:{info.get('port', 5432)}"


__all__ = ["PostgresStore"]


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


async def _release(c: AsyncConnection[Any], sha256: str, dossier_file: bool, now: float) -> tuple[int, int, int]:
    """One message fewer holds this payload: (payloads removed, their bytes, dossier files now unused).

    A dossier file is a stored payload when SOAP brought it before the file store took them all."""
    row = await (await c.execute("SELECT refs, size FROM blobs WHERE sha256 = %s", (sha256,))).fetchone()
    if row is not None:
        if row[0] > 1:
            await c.execute("UPDATE blobs SET refs = refs - 1 WHERE sha256 = %s", (sha256,))
            return 0, 0, 0
        await c.execute("DELETE FROM blobs WHERE sha256 = %s", (sha256,))
        return 1, int(row[1]), 0
    if not dossier_file:
        return 0, 0, 0
    left = await (await c.execute(
        "UPDATE files SET refs = refs - 1, unused_since = CASE WHEN refs <= 1 THEN %s END "
        "WHERE sha256 = %s RETURNING refs", (now, sha256))).fetchone()
    return 0, 0, int(left is not None and left[0] <= 0)
