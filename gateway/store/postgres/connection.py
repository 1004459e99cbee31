"""PostgreSQL's engine: the pool, the schema, the writer task and LISTEN for other nodes' work.

Several gateway nodes share one database and the work in it. Writes that touch the exchange
log go through the writer (`writer.py`); leasing and reads run beside it on pooled connections.
Idle dispatchers sleep until a NOTIFY from any node's commit (LISTEN on one connection). A node's
own commits wake its dispatcher directly, so its own NOTIFYs are ignored; other nodes' wake it at
most once per REMOTE_WAKE seconds: with N nodes each commit would otherwise make N - 1 dispatchers
ask for leases, most finding nothing their own node had not taken already. The role modules
beside this one add the statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from gateway.store import migrations
from gateway.store.base import StoreBase
from gateway.store.postgres.writer import CHANNEL, Op, WriteLoop

T = TypeVar("T")
log = logging.getLogger("gateway.store.postgres")

_BATCH = 256
LOCK_KEY = "hashtextextended(current_schema() || ':' || %s, 0)"  # an advisory lock's key, per schema


async def version(conn: AsyncConnection[Any]) -> int:
    """The schema version recorded in the database; 0 when it has no tables yet."""
    row = await (await conn.execute("SELECT to_regclass('meta') IS NOT NULL")).fetchone()
    if not row or not row[0]:
        return 0
    row = await (await conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")).fetchone()
    return int(row[0]) if row else 0


def where(dsn: str) -> str:
    """The database named without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(postgres)"
    return f"{info.get('dbname', '?')} on {info.get('host', 'localhost')}:{info.get('port', 5432)}"


POOL_WAIT = 5.0
VACUUM_EVERY = 10_000  # finished deliveries between vacuums of the queue table (see _delivery_finished)
REMOTE_WAKE = 0.05  # seconds: other nodes' NOTIFYs within this span wake this node's dispatcher once


class _Coalesced:
    """Calls `fn` at once, unless it was called less than `span` seconds ago: then once, when that span ends."""

    def __init__(self, fn: Callable[[], None], span: float) -> None:
        self.fn = fn
        self.span = span
        self.last = -span
        self.pending = False

    def __call__(self) -> None:
        loop = asyncio.get_running_loop()
        if self.pending:
            return
        if loop.time() - self.last >= self.span:
            self._fire()
        else:
            self.pending = True
            loop.call_at(self.last + self.span, self._fire)

    def _fire(self) -> None:
        self.pending = False
        self.last = asyncio.get_running_loop().time()
        self.fn()


class PostgresEngine(StoreBase):
    def __init__(self, dsn: str, node: str = "node-1", *, pool_size: int = 6, group_commit: bool = True) -> None:
        super().__init__()
        self.dsn = dsn
        self.node = node
        self.pool_size = pool_size
        self.batch = _BATCH if group_commit else 1
        self._pool: AsyncConnectionPool | None = None
        self._writer: WriteLoop | None = None
        self._listener: asyncio.Task[None] | None = None
        self._finished = 0  # deliveries this node finished, for the queue's statistics below
        self._vacuuming: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------
    async def open(self) -> None:
        if await self.schema_version() == 0:
            await self.upgrade()  # an empty database: initialise it (concurrent nodes serialise)
        migrations.check(await self.schema_version(), where(self.dsn), "postgres")
        self._pool = AsyncConnectionPool(
            self.dsn, min_size=2, max_size=self.pool_size, kwargs={"autocommit": True}, open=False,
            name=f"store-{self.node}",
            # a read waits at most this long for a connection: while the database restarts, callers are
            # answered "try again" (503) in seconds instead of hanging for the pool's default 30 s
            timeout=POOL_WAIT,
        )
        await self._pool.open(wait=True, timeout=30)
        self._writer = WriteLoop(self.dsn, self.node, self.batch, self.notify_work)
        self._writer.sealer = self.sealer
        self._listener = asyncio.create_task(self._listen(), name="store-listener")

    async def close(self) -> None:
        if self._vacuuming:
            self._vacuuming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._vacuuming
            self._vacuuming = None
        if self._writer:
            await self._writer.stop()
            self._writer = None
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def schema_version(self) -> int:
        async with await AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            return await version(conn)

    async def upgrade(self) -> list[int]:
        done: list[int] = []
        async with await AsyncConnection.connect(self.dsn) as conn, conn.transaction():
            await conn.execute(f"SELECT pg_advisory_xact_lock({LOCK_KEY})", ("gateway-migrations",))
            for m in migrations.pending("postgres", await version(conn)):
                await conn.execute(m.sql.encode())  # no parameters: several statements in one go
                await conn.execute(
                    "INSERT INTO meta VALUES ('schema_version', %s) ON CONFLICT (key) DO UPDATE SET value = "
                    "EXCLUDED.value",
                    (str(m.version),),
                )
                done.append(m.version)
        return done

    # -- wake-ups from any node ----------------------------------------------------------------
    async def _listen(self) -> None:
        while True:
            try:
                async with await AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._work.set()  # anything enqueued while not listening is looked at now
                    wake = _Coalesced(self._work.set, REMOTE_WAKE)
                    async for n in conn.notifies():
                        if self._writer is not None and n.pid == self._writer.backend_pid:
                            continue  # this node's own commit: its dispatcher was woken at the commit
                        wake()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the dispatcher still polls by next_due meanwhile
                log.warning("listening for work on the database failed (%s); reconnecting", e)
                await asyncio.sleep(1.0)

    # -- plumbing for the role modules ----------------------------------------------------------
    def _delivery_finished(self) -> None:
        """Every VACUUM_EVERY finished deliveries, vacuum and analyse the queue table in the background.

        Each delivery's lease and finish leave dead row versions behind, and the lease's plan follows the table's
        statistics. Draining a 100,000-record backlog without either (measured): a plan chosen while every row
        waited walked the delivered rows first (56 ms a lease at 62,000 delivered, 4 ms after ANALYZE), and later
        the indexes' 185,000 dead entries cost 145 ms a lease; the drain fell from about 470 to 40 records/s.
        Autovacuum does this when it is on; it is off on some servers, so a node does not count on it. VACUUM
        blocks no reader or writer, and skips the pages that have not changed since the last one.
        """
        self._finished += 1
        if self._finished % VACUUM_EVERY == 0 and (self._vacuuming is None or self._vacuuming.done()):
            self._vacuuming = asyncio.create_task(self._vacuum_queue(), name="store-vacuum")

    async def _vacuum_queue(self) -> None:
        try:
            async with self._pooled() as conn:  # autocommit: VACUUM cannot run inside a transaction
                await conn.execute("VACUUM (ANALYZE) deliveries")
        except Exception as e:  # only the queue's speed depends on it: the next round tries again
            log.warning("could not vacuum the delivery queue: %s", e)

    def _write(self, fn: Op[T]) -> asyncio.Future[T]:
        assert self._writer is not None, "store is not open"
        return self._writer.submit(fn)

    def _pooled(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection[Any]]:
        assert self._pool is not None, "store is not open"
        return self._pool.connection()

    async def _rows(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        async with self._pooled() as conn, conn.cursor() as cur:
            await cur.execute(sql, args)
            return await cur.fetchall()

    async def _row(self, sql: str, args: Any = None) -> tuple[Any, ...] | None:
        rows = await self._rows(sql, args)
        return rows[0] if rows else None
