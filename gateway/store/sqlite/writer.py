"""The SQLite writer: one thread owns the write connection and commits in groups.

Operations queued while a commit is on disk are committed together, each inside its own
savepoint so one failure never undoes another. That keeps the durable push path fast without
weakening durability. Each group reads the exchange log's head after BEGIN IMMEDIATE, under the
file's write lock: a node's several worker processes share one file, and each extends the one
chain from where the last writer, whichever process, left it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from gateway.audit.chain import GENESIS, AuditEntry, AuditEvent
from gateway.audit.verify_bundle import CHECKPOINT
from gateway.store.shared import Head, SealerLike, audit_values, chain, checkpoint_rows
from gateway.store.sql import SQLITE as Q

T = TypeVar("T")
Op = Callable[["Tx"], T]

_BATCH = 512


class Tx:
    """What a write operation sees: the connection, this node's name, and the log's head."""

    def __init__(self, writer: Writer) -> None:
        self.w = writer
        self.conn = writer.conn
        self.node = writer.node

    def audit(self, events: list[AuditEvent], *, seal: bool = False) -> list[AuditEntry]:
        """Append events; with `seal`, a checkpoint entry over them (and whatever was unsigned) follows."""
        entries, head = chain(events, self.w.head, self.node, self.w.sealer, self.w.sealed_to, seal)
        self.conn.executemany(Q.insert_entries, [audit_values(e) for e in entries])
        signed = checkpoint_rows(entries)
        if signed:
            self.conn.executemany("INSERT OR IGNORE INTO checkpoints VALUES (?,?,?,?,?)", signed)
            self.w.sealed_to = max(e.seq for e in entries if e.action == CHECKPOINT)
        self.w.head = head
        return entries


class Writer(threading.Thread):
    def __init__(self, node: str, connect: Callable[[], sqlite3.Connection], lock: str | None = None) -> None:
        super().__init__(name="store-writer", daemon=True)
        self.node = node
        self.connect = connect
        # With several worker processes on the file: each group first takes this flock, so a writer
        # waiting for another process's commit wakes the moment it ends. SQLite's own busy handler
        # would sleep in steps of up to 100 ms, which showed as p99 latency of hundreds of ms.
        self.lock = lock
        self._lock_fd = -1
        self.q: queue.SimpleQueue[tuple[Op[Any], asyncio.Future[Any], asyncio.AbstractEventLoop] | None] = (
            queue.SimpleQueue())
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.conn: sqlite3.Connection
        self.head: Head = (0, GENESIS, "")
        self.sealer: SealerLike | None = None
        self.sealed_to = 0  # the newest checkpoint entry

    def submit(self, fn: Op[T]) -> asyncio.Future[T]:
        """Queue an operation for the next group; the future gets its result once committed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self.q.put((fn, fut, loop))
        return fut

    def _load_head(self) -> None:
        row = self.conn.execute("SELECT seq, entry_hash, time FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        self.head = (row[0], row[1], row[2]) if row else (0, GENESIS, "")
        self.sealed_to = self.conn.execute("SELECT coalesce(max(seq) + 1, 0) FROM checkpoints").fetchone()[0]

    def run(self) -> None:
        try:
            self.conn = self.connect()
            self._load_head()
        except BaseException as e:  # reported to open()
            self.error = e
            self.ready.set()
            return
        self.ready.set()
        stop = False
        while not stop:
            item = self.q.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < _BATCH:
                try:
                    nxt = self.q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            try:
                self._commit(batch)
            except BaseException as e:  # the thread must outlive any failure: a dead writer would leave
                self._resolve([(fut, loop, None, e) for _fn, fut, loop in batch])  # every caller waiting
                with contextlib.suppress(sqlite3.Error):
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    self._load_head()
        self.conn.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)

    def _commit(self, batch: list[tuple[Op[Any], asyncio.Future[Any], asyncio.AbstractEventLoop]]) -> None:
        if self.lock is None:
            self._group(batch)
            return
        if self._lock_fd < 0:
            self._lock_fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            self._group(batch)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _group(self, batch: list[tuple[Op[Any], asyncio.Future[Any], asyncio.AbstractEventLoop]]) -> None:
        results: list[tuple[Any, Any, Any, BaseException | None]] = []
        tx = Tx(self)
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self._load_head()  # another process of the node may have appended since our last group
        except sqlite3.Error as e:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            for _fn, fut, loop in batch:
                results.append((fut, loop, None, e))
            self._resolve(results)
            return
        lost: BaseException | None = None  # why the whole group is undone
        for fn, fut, loop in batch:
            saved = self.head, self.sealed_to
            self.conn.execute("SAVEPOINT op")
            try:
                r = fn(tx)
                self.conn.execute("RELEASE op")
                results.append((fut, loop, r, None))
            except BaseException as e:  # the operation's own failure goes back to its caller
                if not self.conn.in_transaction:  # a full disk or an I/O error: SQLite undid the group itself
                    lost = e
                    break
                self.conn.execute("ROLLBACK TO op")
                self.conn.execute("RELEASE op")
                self.head, self.sealed_to = saved
                results.append((fut, loop, None, e))
        if lost is None:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as e:
                lost = e
        if lost is not None:  # no operation of the group was kept: each caller hears why
            if self.conn.in_transaction:  # (after a full disk SQLite has rolled back already)
                self.conn.execute("ROLLBACK")
            self._load_head()
            results = [(fut, loop, None, lost) for _fn, fut, loop in batch]
        self._resolve(results)

    @staticmethod
    def _resolve(results: list[tuple[Any, Any, Any, BaseException | None]]) -> None:
        """Hand each caller its result: one wake-up of each event loop per group, not one per operation."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any, BaseException | None]]] = {}
        for fut, loop, r, e in results:
            by_loop.setdefault(loop, []).append((fut, r, e))
        for loop, done in by_loop.items():
            loop.call_soon_threadsafe(_set_all, done)


def _set_all(done: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for fut, r, e in done:
        if fut.done():
            continue
        if e is not None:
            fut.set_exception(e)
        else:
            fut.set_result(r)
