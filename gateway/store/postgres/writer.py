"""The PostgreSQL writer: one task per node that commits the writes touching the log in groups.

Each group first locks the one row of `audit_head`, so the exchange log stays a single hash
chain however many nodes append, and since every group takes that lock first, groups of
different nodes never deadlock each other. A whole group goes out in one pipeline: BEGIN and the
head's lock share a round trip, the head's move, NOTIFY and COMMIT share the last one, and between
them only the reads the operations wait for cost one (BEGIN and COMMIT are the pipeline's own
statements: psycopg's transaction() would sync after BEGIN and twice at its end). There is no
savepoint per operation (they cost two round trips each): an operation that fails rolls the group
back and the others run again without it. An error of the database surfaces at the next read,
maybe another operation's: the group then runs again with a sync after each operation, which names
the one that failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection

from gateway.audit.chain import AuditEntry, AuditEvent
from gateway.audit.verify_bundle import CHECKPOINT
from gateway.store.shared import Head, SealerLike, audit_values, chain, checkpoint_rows
from gateway.store.sql import POSTGRES as Q
from gateway.store.stats import POSTGRES as S
from gateway.store.stats import StatsSQL, Tally

T = TypeVar("T")
log = logging.getLogger("gateway.store.postgres")

CHANNEL = "gateway_work"
_RETRIES = 5  # a deadlock or serialization failure (never expected, see above) retries the group


class Tx:
    """What a write operation sees: the connection, this node's name and the log's head."""

    def __init__(self, conn: AsyncConnection[Any], node: str, head: Head, sealer: SealerLike | None = None) -> None:
        self.conn = conn
        self.node = node
        self.head = head
        self.sealer = sealer
        self.sealed_to: int | None = None  # the newest checkpoint entry, read once per group when signing
        self.notify = False  # set by an operation after which other nodes' dispatchers should look
        self.tally = Tally()  # the statistics the group's operations add, written once before COMMIT

    async def audit(self, events: list[AuditEvent], *, seal: bool = False) -> list[AuditEntry]:
        """Append events; with `seal`, a checkpoint entry over them (and whatever was unsigned) follows."""
        if self.sealer is not None and self.sealed_to is None:  # the log's newest checkpoint, under the head lock
            self.sealed_to = int((await self.one("SELECT coalesce(max(seq) + 1, 0) FROM checkpoints"))[0])
        out, self.head = chain(events, self.head, self.node, self.sealer, self.sealed_to or 0, seal)
        if out:
            async with self.conn.cursor() as cur:
                await cur.executemany(Q.insert_entries, [audit_values(e) for e in out])
                signed = checkpoint_rows(out)
                if signed:
                    await cur.executemany("INSERT INTO checkpoints VALUES (%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                                          signed)
                    self.sealed_to = max(e.seq for e in out if e.action == CHECKPOINT)
        return out

    async def one(self, sql: str, args: Any = None) -> Any:
        cur = await self.conn.execute(sql, args)
        return await cur.fetchone()


async def write_tally(c: AsyncConnection[Any], t: Tally) -> None:
    async with c.cursor() as cur:
        for sql, rows in zip((S.daily, S.rules, S.hist, S.chain), StatsSQL.rows(t), strict=True):
            if rows:
                await cur.executemany(sql, rows)


Op = Callable[[Tx], Awaitable[T]]
_Item = tuple[Op[Any], asyncio.Future[Any]]


class _OpFailed(Exception):
    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


class WriteLoop:
    """The writer task of one node; `notify` wakes this node's dispatcher after a NOTIFY it sent."""

    def __init__(self, dsn: str, node: str, batch: int, notify: Callable[[], None]) -> None:
        self.dsn = dsn
        self.node = node
        self.batch = batch
        self.notify = notify
        self.sealer: SealerLike | None = None
        self.backend_pid = 0  # the writer's database session, whose own NOTIFYs its node ignores
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._conn: AsyncConnection[Any] | None = None
        self._task = asyncio.create_task(self._run(), name="store-writer")

    def submit(self, fn: Op[T]) -> asyncio.Future[T]:
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((fn, fut))
        return fut

    async def stop(self) -> None:
        """Commit what is queued, then end."""
        await self._queue.put(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, 30)

    async def _connected(self) -> AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await AsyncConnection.connect(self.dsn, autocommit=True)
            self.backend_pid = self._conn.info.backend_pid
        return self._conn

    async def _drop(self) -> None:
        """Close the session: the server rolls back whatever it left open or failed."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _run(self) -> None:
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
                await self._commit(batch)
            except Exception as e:  # the database is unreachable: every caller hears it, the next group reconnects
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                await self._drop()
        await self._drop()

    async def _commit(self, batch: list[_Item]) -> None:
        """Commit a group; an operation that fails is answered with its error and the rest run again."""
        pending = list(batch)
        conflicts = 0
        careful = False  # a sync after each operation: an error of the database is then its own
        while pending:
            conn = await self._connected()
            try:
                results, notify = await self._group(conn, pending, careful)
            except BaseException as e:
                lost = conn.closed or conn.broken
                # the group's transaction is open or failed: a new session rolls it back, and no prepared
                # statement the failed pipeline never made is taken as made
                await self._drop()
                if isinstance(e, _OpFailed):  # the others run again without it
                    _, fut = pending.pop(e.index)
                    if not fut.done():
                        fut.set_exception(e.error)
                    careful = False
                    continue
                if isinstance(e, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure):
                    conflicts += 1
                    if conflicts >= _RETRIES:
                        raise
                    log.warning("write group rolled back by the database (attempt %d); retrying", conflicts)
                    continue
                if isinstance(e, psycopg.Error) and not careful and not lost:
                    careful = True  # whose error it was is not known: find it
                    continue
                raise  # not an operation's own: the group fails
            for (_, fut), r in zip(pending, results, strict=True):
                if not fut.done():
                    fut.set_result(r)
            if notify:
                self.notify()
            return

    async def _group(self, conn: AsyncConnection[Any], batch: list[_Item], careful: bool) -> tuple[list[Any], bool]:
        """One transaction: lock the chain head, run each operation, move the head, NOTIFY; one pipeline."""
        results: list[Any] = []
        notify = False
        async with conn.pipeline() as pipe:
            await conn.execute("BEGIN")
            head = await conn.execute("SELECT seq, entry_hash, time FROM audit_head WHERE id = 1 FOR UPDATE")
            sealed = (await conn.execute("SELECT coalesce(max(seq) + 1, 0) FROM checkpoints")
                      if self.sealer is not None else None)  # read under the head lock, in the same round trip
            row = await head.fetchone()
            assert row is not None, "audit_head row missing; run 'gateway db upgrade'"
            tx = Tx(conn, self.node, (row[0], row[1], row[2]), self.sealer)
            if sealed is not None:
                tx.sealed_to = int((await sealed.fetchone() or (0,))[0])
            first = tx.head
            for i, (fn, _) in enumerate(batch):
                tx.notify = False
                try:
                    results.append(await fn(tx))
                    if careful:
                        await pipe.sync()
                except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                    raise
                except psycopg.Error as e:
                    if not careful:
                        raise  # maybe an earlier operation's: _commit runs the group again, carefully
                    raise _OpFailed(i, e) from e
                except Exception as e:  # the operation's own failure goes back to its caller
                    raise _OpFailed(i, e) from e
                notify = notify or tx.notify
            await write_tally(conn, tx.tally)
            if tx.head != first:
                await conn.execute("UPDATE audit_head SET seq = %s, entry_hash = %s, time = %s WHERE id = 1", tx.head)
            if notify:
                await conn.execute(f"NOTIFY {CHANNEL}")
            await conn.execute("COMMIT")  # only here: any failure before leaves the transaction to _commit's drop
        return results, notify
