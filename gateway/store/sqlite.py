"""SQLite store: one WAL file under the data directory, zero setup.

All writes go through one writer thread that commits in groups: operations queued while a
commit is on disk are committed together, each inside its own savepoint so one failure never
undoes another. That keeps the durable push path fast without weakening durability. Reads use
their own connections (WAL lets them run beside the writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from gateway.audit.chain import GENESIS, AuditEntry, AuditEvent, seal
from gateway.model import DeliveryState, MessageStatus, Receipt, new_id, sha256_hex
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

_BATCH = 512


class _Tx:
    """What a write operation sees: the connection, the clock, and the log's head."""

    def __init__(self, writer: _Writer) -> None:
        self.w = writer
        self.conn = writer.conn

    def audit(self, events: list[AuditEvent]) -> list[AuditEntry]:
        out = []
        for ev in events:
            seq, prev, prev_time = self.w.head
            t = max(iso_now(), prev_time)
            entry = seal(ev, seq=seq + 1, time=t, node=self.w.node, prev_hash=prev)
            self.conn.execute(
                "INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (entry.seq, entry.time, entry.node, entry.actor, entry.action, entry.message_id,
                 entry.case_number, entry.payload_hash, entry.detail, entry.prev_hash, entry.entry_hash),
            )
            self.w.head = (entry.seq, entry.entry_hash, entry.time)
            out.append(entry)
        return out


class _Writer(threading.Thread):
    def __init__(self, path: str, node: str, durability: str) -> None:
        super().__init__(name="store-writer", daemon=True)
        self.path = path
        self.node = node
        self.durability = durability
        self.q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.conn: sqlite3.Connection
        self.head: tuple[int, str, str] = (0, GENESIS, "")

    def _load_head(self) -> None:
        row = self.conn.execute("SELECT seq, entry_hash, time FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        self.head = (row[0], row[1], row[2]) if row else (0, GENESIS, "")

    def run(self) -> None:
        try:
            self.conn = _connect(self.path, self.durability)
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
            self._commit(batch)
        self.conn.close()

    def _commit(self, batch: list[Any]) -> None:
        results: list[tuple[Any, Any, Any, BaseException | None]] = []
        tx = _Tx(self)
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            for _fn, fut, loop in batch:
                results.append((fut, loop, None, e))
            self._resolve(results)
            return
        for fn, fut, loop in batch:
            saved = self.head
            self.conn.execute("SAVEPOINT op")
            try:
                r = fn(tx)
                self.conn.execute("RELEASE op")
                results.append((fut, loop, r, None))
            except BaseException as e:  # the operation's own failure goes back to its caller
                self.conn.execute("ROLLBACK TO op")
                self.conn.execute("RELEASE op")
                self.head = saved
                results.append((fut, loop, None, e))
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as e:
            self.conn.execute("ROLLBACK")
            self._load_head()
            results = [(fut, loop, None, e) for fut, loop, _, _ in results]
        self._resolve(results)

    @staticmethod
    def _resolve(results: list[tuple[Any, Any, Any, BaseException | None]]) -> None:
        for fut, loop, r, e in results:
            loop.call_soon_threadsafe(_set, fut, r, e)


def _set(fut: asyncio.Future[Any], r: Any, e: BaseException | None) -> None:
    if fut.done():
        return
    if e is not None:
        fut.set_exception(e)
    else:
        fut.set_result(r)


def _connect(path: str, durability: str, readonly: bool = False) -> sqlite3.Connection:
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


def _release(c: sqlite3.Connection, sha256: str, dossier_file: bool, now: float) -> tuple[int, int, int]:
    """One message fewer holds this payload: (payloads removed, their bytes, dossier files now unused).

    A dossier file is a stored payload when SOAP brought it before the file store took them all."""
    row = c.execute("SELECT refs, size FROM blobs WHERE sha256=?", (sha256,)).fetchone()
    if row is not None:
        if row[0] > 1:
            c.execute("UPDATE blobs SET refs = refs - 1 WHERE sha256=?", (sha256,))
            return 0, 0, 0
        c.execute("DELETE FROM blobs WHERE sha256=?", (sha256,))
        return 1, int(row[1]), 0
    if not dossier_file:
        return 0, 0, 0
    left = c.execute("UPDATE files SET refs = refs - 1, unused_since = CASE WHEN refs <= 1 THEN ? END "
                     "WHERE sha256=? RETURNING refs", (now, sha256)).fetchone()
    return 0, 0, int(left is not None and left[0] <= 0)


def _version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the file; 0 for a file without tables."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone() is None:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else 0


class SQLiteStore(Store):
    def __init__(self, path: str | Path, node: str = "node-1", durability: str = "full") -> None:
        super().__init__()
        self.path = str(path)
        self.node = node
        self.durability = durability
        self._writer: _Writer | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._locks: set[str] = set()

    # -- lifecycle -------------------------------------------------------------
    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        if await self.schema_version() == 0:
            await self.upgrade()  # a new file: zero setup
        migrations.check(await self.schema_version(), self.path, "sqlite")
        self._writer = _Writer(self.path, self.node, self.durability)
        self._writer.start()
        await asyncio.to_thread(self._writer.ready.wait)
        if self._writer.error:
            raise self._writer.error

    async def schema_version(self) -> int:
        def q() -> int:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(self.path, self.durability)
            try:
                return _version(conn)
            finally:
                conn.close()

        return await asyncio.to_thread(q)

    async def upgrade(self) -> list[int]:
        def run() -> list[int]:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(self.path, self.durability)
            try:
                done = []
                for m in migrations.pending("sqlite", _version(conn)):
                    conn.executescript(
                        f"BEGIN IMMEDIATE;\n{m.sql}\n"
                        f"INSERT OR REPLACE INTO meta VALUES ('schema_version', '{m.version}');\nCOMMIT;")
                    done.append(m.version)
                return done
            finally:
                conn.close()

        return await asyncio.to_thread(run)

    async def compact(self) -> tuple[int, int]:
        """Rewrite the file without its free pages and switch it to incremental auto-vacuum, so later
        retention runs give space back by themselves; (bytes before, after). Needs the gateway stopped."""
        def run() -> tuple[int, int]:
            conn = _connect(self.path, self.durability)
            try:
                before = Path(self.path).stat().st_size
                conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
                conn.execute("VACUUM")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                return before, Path(self.path).stat().st_size
            finally:
                conn.close()

        return await asyncio.to_thread(run)

    async def try_lock(self, name: str) -> bool:
        """One SQLite file serves one process, so a lock only has to exclude this process's tasks."""
        if name in self._locks:
            return False
        self._locks.add(name)
        return True

    async def unlock(self, name: str) -> None:
        self._locks.discard(name)

    async def close(self) -> None:
        if self._writer:
            self._writer.q.put(None)
            await asyncio.to_thread(self._writer.join, 30)
            self._writer = None
        for c in self._readers:
            with contextlib.suppress(sqlite3.Error):
                c.close()
        self._readers.clear()

    # -- plumbing -----------------------------------------------------------------
    def _write(self, fn: Callable[[_Tx], T]) -> asyncio.Future[T]:
        assert self._writer is not None, "store is not open"
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._writer.q.put((fn, fut, loop))
        return fut

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, self.durability, readonly=True)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            self._readers.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(lambda: fn(self._reader()))

    # -- blobs ---------------------------------------------------------------------
    async def put_blob(self, data: bytes) -> str:
        h = sha256_hex(data)

        def op(tx: _Tx) -> str:
            tx.conn.execute("INSERT OR IGNORE INTO blobs (sha256, size, data) VALUES (?,?,?)", (h, len(data), data))
            return h

        return await self._write(op)

    async def get_blob(self, sha256: str) -> bytes | None:
        def q(c: sqlite3.Connection) -> bytes | None:
            row = c.execute("SELECT data FROM blobs WHERE sha256=?", (sha256,)).fetchone()
            return bytes(row[0]) if row else None

        return await self._read(q)

    # -- intake ---------------------------------------------------------------------
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

        def op(tx: _Tx) -> Receipt:
            c = tx.conn
            dup = self._find_receipt(c, m.sender, m.sender_message_id, m.content_hash)
            if dup is not None:
                tx.audit([duplicate_event(m, dup)])
                return dup
            data = {**blobs, m.content_hash: raw}
            held, files = new_message_payloads(m, blobs, deliveries)
            for h in held:  # each payload counts the messages holding it (retention frees it at 0)
                if h in data:
                    c.execute("INSERT INTO blobs (sha256, size, data, refs) VALUES (?,?,?,1) "
                              "ON CONFLICT(sha256) DO UPDATE SET refs = refs + 1", (h, len(data[h]), data[h]))
                else:
                    c.execute("UPDATE blobs SET refs = refs + 1 WHERE sha256=?", (h,))
            for h in files:
                if not c.execute("UPDATE blobs SET refs = refs + 1 WHERE sha256=?", (h,)).rowcount:
                    c.execute("INSERT INTO files VALUES (?,1,NULL) "
                              "ON CONFLICT(sha256) DO UPDATE SET refs = refs + 1, unused_since = NULL", (h,))
            c.execute(
                "INSERT INTO messages (id, sender, channel, sender_message_id, content_hash, canonical_hash, "
                "case_number, stage, action, status, reasons, received_at, file_name, operation, summary, "
                "receipt, node) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (m.message_id, m.sender, m.channel, m.sender_message_id, m.content_hash, m.canonical_hash,
                 m.case_number, m.stage, m.action, str(m.status), json.dumps(list(m.reasons), ensure_ascii=False),
                 m.received_at, m.file_name, m.operation, json.dumps(m.summary, ensure_ascii=False),
                 json.dumps(receipt.as_dict(), ensure_ascii=False), tx.w.node),
            )
            now = time.time()
            for d in deliveries:
                c.execute(
                    "INSERT INTO deliveries (id, message_id, destination, case_number, body_hash, content_type, "
                    "file_name, state, reason, attempts, created_at, updated_at, next_attempt_at) "
                    "VALUES (?,?,?,?,?,?,?,'queued',?,0,?,?,?)",
                    (new_id(), m.message_id, d.destination, m.case_number, d.body_hash, d.content_type,
                     d.file_name, d.reason, now, now, now),
                )
            tx.audit(events)
            return receipt

        result = await self._write(op)
        if deliveries and not result.duplicate:
            self.notify_work()
        return result

    # -- delivery ------------------------------------------------------------------
    async def lease(self, destination: str, limit: int, lease_seconds: float) -> list[Lease]:
        def op(tx: _Tx) -> list[Lease]:
            now = time.time()
            rows = tx.conn.execute(
                """
                SELECT d.id, d.message_id, d.destination, d.case_number, d.body_hash, d.content_type,
                       d.attempts, d.created_at, d.file_name, b.data,
                       CASE WHEN m.status = 'accepted' THEN json_extract(m.summary, '$.attachments') END
                FROM deliveries d LEFT JOIN blobs b ON b.sha256 = d.body_hash
                JOIN messages m ON m.id = d.message_id
                WHERE d.destination = ? AND d.state IN ('queued','retrying','in_flight')
                  AND ((d.state IN ('queued','retrying') AND d.next_attempt_at <= ?)
                       OR (d.state = 'in_flight' AND d.lease_expires_at <= ?))
                  AND NOT EXISTS (
                    SELECT 1 FROM deliveries e
                    WHERE e.destination = d.destination AND e.case_number = d.case_number
                      AND e.seq < d.seq AND e.state IN ('queued','retrying','in_flight','dead'))
                ORDER BY d.seq LIMIT ?
                """,
                (destination, now, now, limit),
            ).fetchall()
            leases = []
            for r in rows:
                token = uuid.uuid4().hex
                tx.conn.execute(
                    "UPDATE deliveries SET state='in_flight', lease_owner=?, lease_token=?, lease_expires_at=?, "
                    "attempts=attempts+1, updated_at=?, reason=? WHERE id=?",
                    (tx.w.node, token, now + lease_seconds, now, lease_reason(r[6] + 1, tx.w.node),
                     r[0]),
                )
                body = bytes(r[9]) if r[9] is not None else None
                leases.append(Lease(r[0], r[1], r[2], r[3], r[4], r[5], r[6] + 1, r[7], token, r[8], body,
                                    lease_attachments(r[10])))
            return leases

        return await self._write(op)

    async def finish(self, lease: Lease, result: Finish) -> None:
        def op(tx: _Tx) -> None:
            c = tx.conn
            row = c.execute("SELECT lease_token, state FROM deliveries WHERE id=?", (lease.delivery_id,)).fetchone()
            if row is None or row[0] != lease.token or row[1] != "in_flight":
                raise StaleLease(lease.delivery_id)
            now = time.time()
            state = result.state
            c.execute(
                "INSERT INTO attempts (delivery_id, attempt, node, started_at, ended_at, outcome, detail) "
                "VALUES (?,?,?,?,?,?,?)",
                (lease.delivery_id, lease.attempt, tx.w.node, result.started_at or now, now, str(state),
                 result.detail),
            )
            reason = finish_reason(state, result, lease)
            c.execute(
                "UPDATE deliveries SET state=?, reason=?, updated_at=?, next_attempt_at=?, lease_owner=NULL, "
                "lease_token=NULL, lease_expires_at=NULL, delivered_at=?, receipt=? WHERE id=?",
                (str(state), reason, now, result.next_attempt_at or now,
                 now if state == DeliveryState.DELIVERED else None, result.receipt or None, lease.delivery_id),
            )
            if state == DeliveryState.DEAD:
                c.execute(
                    "UPDATE deliveries SET reason=? WHERE destination=? AND case_number=? AND seq > "
                    "(SELECT seq FROM deliveries WHERE id=?) AND state IN ('queued','retrying')",
                    (held_reason(lease), lease.destination, lease.case_number, lease.delivery_id),
                )
            tx.audit([finish_event(tx.w.node, lease, result)])

        await self._write(op)
        if result.state in (DeliveryState.DELIVERED, DeliveryState.DEAD):
            self.notify_work()  # the next record of the same case may now go

    async def release_leases(self) -> int:
        def op(tx: _Tx) -> int:
            cur = tx.conn.execute(
                "UPDATE deliveries SET state='retrying', lease_owner=NULL, lease_token=NULL, lease_expires_at=NULL, "
                "attempts=MAX(attempts-1,0), reason='released at shutdown of ' || ?, next_attempt_at=? "
                "WHERE state='in_flight' AND lease_owner=?",
                (tx.w.node, time.time(), tx.w.node),
            )
            return cur.rowcount

        return await self._write(op)

    async def next_due(self) -> float | None:
        def q(c: sqlite3.Connection) -> float | None:
            a = c.execute(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE state IN ('queued','retrying')"
            ).fetchone()[0]
            b = c.execute("SELECT MIN(lease_expires_at) FROM deliveries WHERE state='in_flight'").fetchone()[0]
            vals = [v for v in (a, b) if v is not None]
            return min(vals) if vals else None

        return await self._read(q)

    # -- operators -------------------------------------------------------------------
    async def get_message(self, message_id: str) -> dict[str, Any] | None:
        def q(c: sqlite3.Connection) -> dict[str, Any] | None:
            row = c.execute("SELECT * FROM messages WHERE id=?", (message_id,)).fetchone()
            if row is None:
                return None
            d = dict(row)
            for k in ("reasons", "summary", "receipt"):
                d[k] = json.loads(d[k])
            return d

        return await self._read(q)

    async def get_deliveries(self, message_id: str) -> list[dict[str, Any]]:
        return await self._read(
            lambda c: [_delivery(r) for r in c.execute(
                "SELECT * FROM deliveries WHERE message_id=? ORDER BY seq", (message_id,)).fetchall()]
        )

    async def get_delivery(self, delivery_id: str) -> dict[str, Any] | None:
        def q(c: sqlite3.Connection) -> dict[str, Any] | None:
            r = c.execute("SELECT * FROM deliveries WHERE id=?", (delivery_id,)).fetchone()
            return _delivery(r) if r else None

        return await self._read(q)

    async def get_attempts(self, delivery_id: str) -> list[dict[str, Any]]:
        return await self._read(
            lambda c: [dict(r) for r in c.execute(
                "SELECT * FROM attempts WHERE delivery_id=? ORDER BY id", (delivery_id,)).fetchall()]
        )

    async def queue_depths(self) -> list[dict[str, Any]]:
        def q(c: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = c.execute(
                "SELECT destination, state, COUNT(*) AS count, MIN(created_at) AS oldest "
                "FROM deliveries GROUP BY destination, state ORDER BY destination, state"
            ).fetchall()
            return [dict(r) for r in rows]

        return await self._read(q)

    async def list_deliveries(
        self, *, state: str | None = None, destination: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        def q(c: sqlite3.Connection) -> list[dict[str, Any]]:
            sql = "SELECT * FROM deliveries WHERE 1=1"
            args: list[Any] = []
            if state:
                sql += " AND state=?"
                args.append(state)
            if destination:
                sql += " AND destination=?"
                args.append(destination)
            if after:
                sql += " AND seq > (SELECT seq FROM deliveries WHERE id=?)"
                args.append(after)
            sql += " ORDER BY seq LIMIT ?"
            args.append(min(limit, 1000))
            return [_delivery(r) for r in c.execute(sql, args).fetchall()]

        return await self._read(q)

    async def enqueue_replay(self, delivery_id: str, body_hash: str, actor: str, reason: str,
                             expect_state: str | None = None) -> str:
        new = new_id()

        def op(tx: _Tx) -> str:
            c = tx.conn
            row = c.execute(
                "SELECT message_id, destination, case_number, content_type, file_name, state FROM deliveries "
                "WHERE id=?", (delivery_id,)
            ).fetchone()
            if row is None:
                raise KeyError(delivery_id)
            if expect_state is not None and row[5] != expect_state:
                raise replay_conflict(delivery_id, row[5], expect_state)
            held = c.execute(
                "SELECT 1 FROM messages WHERE id=? AND ? IN (content_hash, canonical_hash) UNION ALL "
                "SELECT 1 FROM deliveries WHERE message_id=? AND body_hash=?",
                (row[0], body_hash, row[0], body_hash)).fetchone()
            if held is None:  # a body the message does not hold yet: count it
                c.execute("UPDATE blobs SET refs = refs + 1 WHERE sha256=?", (body_hash,))
            if c.execute("SELECT 1 FROM blobs WHERE sha256=?", (body_hash,)).fetchone() is None:
                raise payload_gone(row[0])  # retention ran between the replay's mapping and now
            now = time.time()
            c.execute(
                "INSERT INTO deliveries (id, message_id, destination, case_number, body_hash, content_type, "
                "file_name, state, reason, attempts, created_at, updated_at, next_attempt_at, replay_of) "
                "VALUES (?,?,?,?,?,?,?,'queued',?,0,?,?,?,?)",
                (new, row[0], row[1], row[2], body_hash, row[3], row[4], f"replay by {actor}: {reason}", now, now,
                 now, delivery_id),
            )
            if row[5] == "dead":
                c.execute(
                    "UPDATE deliveries SET state='discarded', reason=?, updated_at=? WHERE id=?",
                    (f"superseded by replay {new} (by {actor})", now, delivery_id),
                )
                _unhold(c, row[1], row[2])
            tx.audit([AuditEvent("replayed", actor, row[0], row[2], body_hash,
                                 {"delivery": delivery_id, "new_delivery": new, "destination": row[1],
                                  "reason": reason})])
            return new

        result = await self._write(op)
        self.notify_work()
        return result

    # -- retention ------------------------------------------------------------------
    async def prune_payloads(
        self, finished_before: float, limit: int, after: tuple[float, str] | None, actor: str, policy: str
    ) -> Pruned:
        def op(tx: _Tx) -> Pruned:
            c = tx.conn
            rows = c.execute(
                "SELECT id, case_number, content_hash, canonical_hash, summary, received_at FROM messages "
                "WHERE payload_pruned_at IS NULL AND received_at < ? AND (received_at, id) > (?, ?) "
                "ORDER BY received_at, id LIMIT ?",
                (finished_before, *(after or (float("-inf"), "")), limit),
            ).fetchall()
            if not rows:
                return Pruned()
            marks = ",".join("?" * len(rows))
            unfinished = {r[0] for r in c.execute(
                f"SELECT DISTINCT message_id FROM deliveries WHERE message_id IN ({marks}) "
                "AND (state NOT IN ('delivered','discarded') OR updated_at >= ?)",
                (*(r[0] for r in rows), finished_before))}
            done = [r for r in rows if r[0] not in unfinished]
            last = (rows[-1][5], rows[-1][0]) if len(rows) == limit else None
            if not done:
                return Pruned(after=last)
            ids = [r[0] for r in done]
            marks = ",".join("?" * len(ids))
            bodies: dict[str, list[str]] = {}
            for mid, h in c.execute(f"SELECT message_id, body_hash FROM deliveries WHERE message_id IN ({marks})",
                                    ids):
                bodies.setdefault(mid, []).append(h)
            now = time.time()
            c.execute(f"UPDATE messages SET payload_pruned_at=? WHERE id IN ({marks})", (now, *ids))
            counts = (0, 0, 0)
            for mid, _case, content, canonical, summary, _at in done:
                held, files = held_payloads(content, canonical, bodies.get(mid, ()),
                                            json.loads(summary).get("attachments", ()))
                for h in (*held, *files):
                    counts = add_counts(counts, _release(c, h, h in files, now))
            tx.audit([pruned_event(actor, r[0], r[1], r[2], policy) for r in done])
            return Pruned(len(done), *counts, last)

        return await self._write(op)

    async def file_removals(self, limit: int) -> list[str]:
        def q(c: sqlite3.Connection) -> list[str]:
            return [r[0] for r in c.execute(
                "SELECT sha256 FROM files WHERE refs <= 0 ORDER BY unused_since LIMIT ?", (limit,))]

        return await self._read(q)

    async def files_removed(self, hashes: list[str]) -> None:
        def op(tx: _Tx) -> None:
            tx.conn.executemany("DELETE FROM files WHERE sha256=? AND refs <= 0", [(h,) for h in hashes])

        await self._write(op)

    async def known_files(self, hashes: list[str]) -> set[str]:
        def q(c: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            for i in range(0, len(hashes), 500):  # under SQLite's bound-parameter limit
                part = hashes[i:i + 500]
                found.update(r[0] for r in c.execute(
                    f"SELECT sha256 FROM files WHERE sha256 IN ({','.join('?' * len(part))})", part))
            return found

        return await self._read(q)

    async def reclaim_space(self) -> int:
        """Pages freed by pruning go back to the file system (databases created since migration 3
        use incremental auto-vacuum; older ones reuse the pages until `gateway db compact`)."""
        def op(tx: _Tx) -> int:
            """Up to 4,096 pages (16 MB) per write, so intake waits no longer than a normal group."""
            c = tx.conn
            if c.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
                return 0
            pages = min(4096, c.execute("PRAGMA freelist_count").fetchone()[0])
            for _ in range(pages):  # each step frees one page, and Python's sqlite3 runs one step per execute
                c.execute("PRAGMA incremental_vacuum(1)")
            return int(pages * c.execute("PRAGMA page_size").fetchone()[0])

        total = 0
        while step := await self._write(op):
            total += step
        return total

    async def discard(self, delivery_id: str, actor: str, reason: str) -> None:
        def op(tx: _Tx) -> None:
            c = tx.conn
            row = c.execute(
                "SELECT message_id, destination, case_number, body_hash, state FROM deliveries WHERE id=?",
                (delivery_id,),
            ).fetchone()
            if row is None:
                raise KeyError(delivery_id)
            if row[4] not in ("dead", "queued", "retrying"):
                raise not_discardable(delivery_id, row[4])
            c.execute(
                "UPDATE deliveries SET state='discarded', reason=?, updated_at=? WHERE id=?",
                (f"discarded by {actor}: {reason}", time.time(), delivery_id),
            )
            _unhold(c, row[1], row[2])
            tx.audit([AuditEvent("discarded", actor, row[0], row[2], row[3],
                                 {"delivery": delivery_id, "destination": row[1], "reason": reason})])

        await self._write(op)
        self.notify_work()

    # -- exchange log ---------------------------------------------------------------------
    async def append_audit(self, events: list[AuditEvent]) -> list[AuditEntry]:
        return await self._write(lambda tx: tx.audit(events))

    async def audit_entries(
        self, *, case_number: str | None = None, message_id: str | None = None, agency: str | None = None,
        since: str | None = None, until: str | None = None, after_seq: int = 0, limit: int = 1000,
    ) -> list[AuditEntry]:
        def q(c: sqlite3.Connection) -> list[AuditEntry]:
            sql = "SELECT * FROM audit_log WHERE seq > ?"
            args: list[Any] = [after_seq]
            if case_number:
                sql += " AND case_number=?"
                args.append(case_number)
            if message_id:
                sql += " AND message_id=?"
                args.append(message_id)
            if agency:
                sql += " AND (actor=? OR detail LIKE ? OR message_id IN (SELECT id FROM messages WHERE sender=?))"
                args += [agency, f'%"{agency}"%', agency]
            if since:
                sql += " AND time >= ?"
                args.append(since)
            if until:
                sql += " AND time < ?"
                args.append(until)
            sql += " ORDER BY seq LIMIT ?"
            args.append(limit)
            return [AuditEntry(*tuple(r)) for r in c.execute(sql, args).fetchall()]

        return await self._read(q)

    async def audit_head(self) -> tuple[int, str]:
        def q(c: sqlite3.Connection) -> tuple[int, str]:
            row = c.execute("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            return (row[0], row[1]) if row else (0, GENESIS)

        return await self._read(q)

    async def add_checkpoint(self, seq: int, entry_hash: str, signed_at: str, signature: str, key_id: str) -> None:
        await self._write(lambda tx: tx.conn.execute(
            "INSERT OR IGNORE INTO checkpoints VALUES (?,?,?,?,?)", (seq, entry_hash, signed_at, signature, key_id)))

    async def checkpoints(self) -> list[dict[str, Any]]:
        return await self._read(
            lambda c: [dict(r) for r in c.execute("SELECT * FROM checkpoints ORDER BY seq").fetchall()])

    # -- API keys ------------------------------------------------------------------------------
    async def put_api_key(self, key_hash: str, role: str, name: str, agency: str | None) -> None:
        await self._write(lambda tx: tx.conn.execute(
            "INSERT OR REPLACE INTO api_keys VALUES (?,?,?,?)", (key_hash, role, name, agency)))

    async def find_api_key(self, key_hash: str) -> dict[str, Any] | None:
        def q(c: sqlite3.Connection) -> dict[str, Any] | None:
            r = c.execute("SELECT * FROM api_keys WHERE key_hash=?", (key_hash,)).fetchone()
            return dict(r) if r else None

        return await self._read(q)

    # -- ingested files ----------------------------------------------------------------------------
    async def file_seen(self, channel: str, fingerprint: str) -> str | None:
        def q(c: sqlite3.Connection) -> str | None:
            r = c.execute("SELECT message_id FROM ingested_files WHERE channel=? AND fingerprint=?",
                          (channel, fingerprint)).fetchone()
            return str(r[0]) if r else None

        return await self._read(q)

    async def mark_file(self, channel: str, fingerprint: str, message_id: str) -> None:
        await self._write(lambda tx: tx.conn.execute(
            "INSERT OR IGNORE INTO ingested_files VALUES (?,?,?)", (channel, fingerprint, message_id)))


def _unhold(c: sqlite3.Connection, destination: str, case_number: str) -> None:
    c.execute(
        "UPDATE deliveries SET reason='queued for delivery' WHERE destination=? AND case_number=? "
        "AND state IN ('queued','retrying') AND reason LIKE 'held:%'",
        (destination, case_number),
    )


def _delivery(r: sqlite3.Row) -> dict[str, Any]:
    return delivery_row(dict(r))


__all__ = ["SQLiteStore", "MessageStatus", "iso_now"]
