"""SQLite's engine: the file, its schema, the writer thread and the read connections.

One WAL file under the data directory, zero setup. All writes go through the writer thread
(`writer.py`); reads use a connection per thread of their own (WAL lets them run beside the
writer). The role modules beside this one add the statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gateway.store import migrations
from gateway.store.base import StoreBase
from gateway.store.sqlite.writer import Op, Writer

T = TypeVar("T")


def connect(path: str, durability: str, readonly: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    # takes effect only in a new file (before its first table), where pages freed by retention can
    # then go back to the file system; an older file keeps its mode until `gateway db compact`
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    return conn


def version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the file; 0 for a file without tables."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone() is None:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else 0


class SQLiteEngine(StoreBase):
    def __init__(self, path: str | Path, node: str = "node-1", durability: str = "full") -> None:
        super().__init__()
        self.path = str(path)
        self.node = node
        self.durability = durability
        self._writer: Writer | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        # reads run in worker threads that outlive a cancelled caller: close waits for them, since a
        # connection closed while another thread runs a statement on it crashes the process
        self._reads = threading.Condition()
        self._active_reads = 0
        self._closing = False

    # -- lifecycle -------------------------------------------------------------
    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self._reads:
            self._closing = False
        if await self.schema_version() == 0:
            await self.upgrade()  # a new file: zero setup
        migrations.check(await self.schema_version(), self.path, "sqlite")
        lock = None
        if self.worker:  # one of a node's worker processes: their write groups queue on a lock file
            Path(f"{self.path}.locks").mkdir(mode=0o700, exist_ok=True)
            lock = f"{self.path}.locks/writer"
        self._writer = Writer(self.node, functools.partial(connect, self.path, self.durability), lock)
        self._writer.sealer = self.sealer
        self._writer.start()
        await asyncio.to_thread(self._writer.ready.wait)
        if self._writer.error:
            raise self._writer.error

    async def close(self) -> None:
        if self._writer:
            self._writer.q.put(None)
            await asyncio.to_thread(self._writer.join, 30)
            self._writer = None

        def no_reads_left() -> None:
            with self._reads:
                self._closing = True
                self._reads.wait_for(lambda: self._active_reads == 0, timeout=30)

        await asyncio.to_thread(no_reads_left)
        for c in self._readers:
            with contextlib.suppress(sqlite3.Error):
                c.close()
        self._readers.clear()

    async def schema_version(self) -> int:
        return await asyncio.to_thread(self._offline, version)

    async def upgrade(self) -> list[int]:
        def run(conn: sqlite3.Connection) -> list[int]:
            done = []
            for m in migrations.pending("sqlite", version(conn)):
                conn.executescript(
                    f"BEGIN IMMEDIATE;\n{m.sql}\n"
                    f"INSERT OR REPLACE INTO meta VALUES ('schema_version', '{m.version}');\nCOMMIT;")
                done.append(m.version)
            return done

        return await asyncio.to_thread(self._offline, run)

    async def compact(self) -> tuple[int, int]:
        """Rewrite the file without its free pages and switch it to incremental auto-vacuum, so later
        retention runs give space back by themselves; (bytes before, after). Needs the gateway stopped."""
        def run(conn: sqlite3.Connection) -> tuple[int, int]:
            before = Path(self.path).stat().st_size
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return before, Path(self.path).stat().st_size

        return await asyncio.to_thread(self._offline, run, False)

    def _offline(self, fn: Callable[[sqlite3.Connection], T], create: bool = True) -> T:
        """Run `fn` on a connection of its own, outside the writer (schema work, before open)."""
        if create:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = connect(self.path, self.durability)
        try:
            return fn(conn)
        finally:
            conn.close()

    # -- plumbing for the role modules ----------------------------------------------
    def _write(self, fn: Op[T]) -> asyncio.Future[T]:
        assert self._writer is not None, "store is not open"
        return self._writer.submit(fn)

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, self.durability, readonly=True)
            self._local.conn = conn
            self._readers.append(conn)
        return conn

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._reads:
            if self._closing:
                raise sqlite3.ProgrammingError("the store is closed")
            self._active_reads += 1
        try:
            return fn(self._reader())
        finally:
            with self._reads:
                self._active_reads -= 1
                self._reads.notify_all()

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._run_read, fn)
