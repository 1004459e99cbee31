"""SQLite: the delivery queue. Leases are taken in the writer, so no two workers take one."""

from __future__ import annotations

import sqlite3
import time
import uuid

from gateway.model import DeliveryState, is_evidence, sha256_hex
from gateway.store.evidence_out import SENDER_OF, to_sender
from gateway.store.packing import unpack
from gateway.store.roles import StaleLease
from gateway.store.rows import Finish, Lease
from gateway.store.shared import finish_events, finish_reason, held_reason, lease_attachments, lease_reason
from gateway.store.sql import SQLITE as Q
from gateway.store.sqlite.clocks import SQLiteClocks
from gateway.store.sqlite.stats import count_delivery
from gateway.store.sqlite.writer import Tx

# due deliveries of one destination, at most one per case: the case's oldest open one
_LEASE = """
SELECT d.id, d.message_id, d.destination, d.case_number, d.body_hash, d.content_type,
       d.attempts, d.created_at, d.file_name, b.data,
       CASE WHEN m.status = 'accepted' THEN json_extract(m.summary, '$.attachments') END, d.replay_of, b.codec
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
"""

# the lease's check and, in the same read, its message's (sender, received_at, status) for the statistics
_FINISH_CHECK = ("SELECT d.lease_token, d.state, d.seq, m.sender, m.received_at, m.status FROM deliveries d "
                 "LEFT JOIN messages m ON m.id = d.message_id WHERE d.id = ?")


class SQLiteDelivery(SQLiteClocks):
    async def lease(self, destination: str, limit: int, lease_seconds: float) -> list[Lease]:
        def op(tx: Tx) -> list[Lease]:
            now = time.time()
            rows = tx.conn.execute(_LEASE, (destination, now, now, limit)).fetchall()
            leases, taken = [], []
            for r in rows:
                token = uuid.uuid4().hex
                taken.append((self.lease_owner, token, now + lease_seconds, now,
                              lease_reason(r[6] + 1, self.lease_owner), r[0]))
                body = unpack(r[9], r[12]) if r[9] is not None else None
                leases.append(Lease(r[0], r[1], r[2], r[3], r[4], r[5], r[6] + 1, r[7], token, r[8], body,
                                    lease_attachments(r[10]), r[11]))
            tx.conn.executemany(Q.take_lease, taken)
            return leases

        return await self._write(op)

    async def finish(self, lease: Lease, result: Finish) -> None:
        def op(tx: Tx) -> None:
            c = tx.conn
            row = c.execute(_FINISH_CHECK, (lease.delivery_id,)).fetchone()
            if row is None or row[0] != lease.token or row[1] != "in_flight":
                raise StaleLease(lease.delivery_id)
            now = time.time()
            state = result.state
            c.execute(Q.insert_attempt, (lease.delivery_id, lease.attempt, tx.node, result.started_at or now, now,
                                         str(state), result.detail))
            c.execute(Q.end_attempt, (str(state), finish_reason(state, result, lease), now,
                                      result.next_attempt_at or now, now if state == DeliveryState.DELIVERED else None,
                                      result.receipt or None, lease.delivery_id))
            record = not is_evidence(lease.content_type)  # evidence pushed to a sender is no record's delivery
            if state == DeliveryState.DELIVERED and record:
                c.execute(Q.case_delivered, (now, lease.message_id, lease.destination))
                count_delivery(c, row[3:], lease.destination, now)
            if state == DeliveryState.DEAD:
                c.execute(Q.hold_case, (held_reason(lease), lease.destination, lease.case_number, row[2]))
            if result.evidence:
                c.execute("INSERT OR IGNORE INTO blobs (sha256, size, data) VALUES (?,?,?)",
                          (sha256_hex(result.evidence), len(result.evidence), result.evidence))
                if result.evidence_to:
                    pushed = to_sender(lease, result, c.execute(SENDER_OF, (lease.message_id,)).fetchone()[0], now)
                    if pushed:
                        c.execute(Q.insert_delivery, pushed)
            tx.audit(finish_events(tx.node, lease, result))
            if state == DeliveryState.DELIVERED and record:
                self._clocks_at_delivery(tx, lease.message_id, lease.destination)

        await self._write(op)
        if result.state in (DeliveryState.DELIVERED, DeliveryState.DEAD):
            self.notify_work()  # the next record of the same case may now go

    async def release_leases(self) -> int:
        def op(tx: Tx) -> int:
            cur = tx.conn.execute(
                "UPDATE deliveries SET state='retrying', lease_owner=NULL, lease_token=NULL, lease_expires_at=NULL, "
                "attempts=MAX(attempts-1,0), reason='released at shutdown of ' || ?, next_attempt_at=? "
                "WHERE state='in_flight' AND lease_owner=?",
                (self.lease_owner, time.time(), self.lease_owner),
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
