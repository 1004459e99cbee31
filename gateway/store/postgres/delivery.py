"""PostgreSQL: the delivery queue. Leasing runs beside the writer on pooled connections with
`SELECT ... FOR UPDATE SKIP LOCKED`: nodes take different deliveries without waiting for each
other, and a lease that expired (its node died) is retaken. Order per (destination, case) holds
as on SQLite."""

from __future__ import annotations

import time

from gateway.model import DeliveryState, is_evidence, sha256_hex
from gateway.store.evidence_out import SENDER_OF, to_sender
from gateway.store.postgres.clocks import PostgresClocks
from gateway.store.postgres.stats import count_delivery
from gateway.store.postgres.writer import Tx
from gateway.store.roles import StaleLease
from gateway.store.rows import Finish, Lease
from gateway.store.shared import finish_events, finish_reason, held_reason, lease_attachments, lease_reason
from gateway.store.sql import POSTGRES as Q
from gateway.store.stats import POSTGRES as S

# picks and takes the leases in one statement (one round trip, not one per lease): the reason is
# lease_reason()'s text with the attempt filled in by the database
_ATTEMPT = "\x01"
_LEASE = """
WITH picked AS (
SELECT d.seq, d.id
FROM deliveries d
WHERE d.destination = %(dest)s AND d.state IN ('queued','retrying','in_flight')
  AND ((d.state IN ('queued','retrying') AND d.next_attempt_at <= %(now)s)
       OR (d.state = 'in_flight' AND d.lease_expires_at <= %(now)s))
  AND d.seq = (  -- the case's oldest open delivery (a sub-plan per row: one index probe, never a join)
    SELECT min(e.seq) FROM deliveries e
    WHERE e.destination = d.destination AND e.case_number = d.case_number
      AND e.state IN ('queued','retrying','in_flight','dead'))
ORDER BY d.seq LIMIT %(limit)s
FOR UPDATE OF d SKIP LOCKED)
UPDATE deliveries u SET state = 'in_flight', lease_owner = %(owner)s,
       lease_token = replace(gen_random_uuid()::text, '-', ''), lease_expires_at = %(until)s,
       attempts = u.attempts + 1, updated_at = %(now)s,
       reason = replace(%(reason)s, chr(1), (u.attempts + 1)::text)
FROM picked WHERE u.id = picked.id
RETURNING picked.seq, u.id, u.message_id, u.destination, u.case_number, u.body_hash, u.content_type,
       u.attempts, u.created_at, u.file_name,
       (SELECT b.data FROM blobs b WHERE b.sha256 = u.body_hash),
       (SELECT CASE WHEN m.status = 'accepted' THEN (m.summary::jsonb -> 'attachments')::text END
        FROM messages m WHERE m.id = u.message_id),
       u.replay_of, u.lease_token
"""


class PostgresDelivery(PostgresClocks):
    async def lease(self, destination: str, limit: int, lease_seconds: float) -> list[Lease]:
        now = time.time()
        args = {"dest": destination, "now": now, "limit": limit, "owner": self.lease_owner,
                "until": now + lease_seconds, "reason": lease_reason(_ATTEMPT, self.lease_owner)}
        async with self._pooled() as conn:
            try:
                # BEGIN, SET, the lease, COMMIT: one round trip (psycopg's transaction() would sync at each end)
                async with conn.pipeline():
                    await conn.execute("BEGIN")
                    # a lease lost with a database crash only means one more attempt, recognised by the receiver
                    # through the Idempotency-Key (the late result is refused as stale): no fsync needed here
                    await conn.execute("SET LOCAL synchronous_commit = off")
                    # Walk the destination's open deliveries in queue order and stop at `limit`: the cost of a
                    # lease is then that of the page, whatever the backlog. Left to its statistics, the planner
                    # sometimes collected every due delivery and sorted them instead (measured with 10,000 due:
                    # 45 ms a lease against 0.8 ms, and a draining backlog fell from 470 to 70 records/s).
                    await conn.execute("SET LOCAL enable_bitmapscan = off")
                    await conn.execute("SET LOCAL enable_sort = off")
                    cur = await conn.execute(_LEASE, args)
                    await conn.execute("COMMIT")
            except BaseException:
                await conn.close()  # the pool replaces it; its session's open transaction is rolled back
                raise
            rows = await cur.fetchall()
        rows.sort(key=lambda r: r[0])  # RETURNING keeps no order: oldest first, as picked
        return [
            Lease(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[13], r[9],
                  None if r[10] is None else bytes(r[10]),  # the payload comes with the lease
                  lease_attachments(r[11]), r[12])
            for r in rows
        ]

    async def finish(self, lease: Lease, result: Finish) -> None:
        async def op(tx: Tx) -> None:
            state = result.state
            record = not is_evidence(lease.content_type)  # evidence pushed to a sender is no record's delivery
            check = await tx.conn.execute(Q.lease_check + " FOR UPDATE", (lease.delivery_id,))
            counted = (await tx.conn.execute(S.message_of, (lease.message_id,))  # its count's read, same round trip
                       if state == DeliveryState.DELIVERED and record else None)
            row = await check.fetchone()
            if row is None or row[0] != lease.token or row[1] != "in_flight":
                raise StaleLease(lease.delivery_id)
            now = time.time()
            await tx.conn.execute(Q.insert_attempt, (lease.delivery_id, lease.attempt, tx.node,
                                                     result.started_at or now, now, str(state), result.detail))
            await tx.conn.execute(Q.end_attempt, (
                str(state), finish_reason(state, result, lease), now, result.next_attempt_at or now,
                now if state == DeliveryState.DELIVERED else None, result.receipt or None, lease.delivery_id))
            if state == DeliveryState.DELIVERED and record:
                await tx.conn.execute(Q.case_delivered, (now, lease.message_id, lease.destination))
                assert counted is not None
                await count_delivery(tx, lease.message_id, lease.destination, now, counted)
            if state == DeliveryState.DEAD:
                await tx.conn.execute(Q.hold_case, (held_reason(lease), lease.destination, lease.case_number, row[2]))
            if result.evidence:
                await tx.conn.execute("INSERT INTO blobs (sha256, size, data) VALUES (%s,%s,%s) ON CONFLICT DO NOTHING",
                                      (sha256_hex(result.evidence), len(result.evidence), result.evidence))
                if result.evidence_to:
                    sender = await tx.one(SENDER_OF.replace("?", "%s"), (lease.message_id,))
                    pushed = to_sender(lease, result, sender[0] if sender else None, now)
                    if pushed:
                        await tx.conn.execute(Q.insert_delivery, pushed)
            await tx.audit(finish_events(tx.node, lease, result))
            if state == DeliveryState.DELIVERED and record:
                await self._clocks_at_delivery(tx, lease.message_id, lease.destination)
            tx.notify = state in (DeliveryState.DELIVERED, DeliveryState.DEAD)  # the case's next record may go

        await self._write(op)
        self._delivery_finished()

    async def release_leases(self) -> int:
        async def op(tx: Tx) -> int:
            cur = await tx.conn.execute(
                "UPDATE deliveries SET state = 'retrying', lease_owner = NULL, lease_token = NULL, "
                "lease_expires_at = NULL, attempts = GREATEST(attempts - 1, 0), "
                "reason = 'released at shutdown of ' || %s, next_attempt_at = %s "
                "WHERE state = 'in_flight' AND lease_owner = %s RETURNING id",
                (self.lease_owner, time.time(), self.lease_owner),
            )
            released = len(await cur.fetchall())
            tx.notify = released > 0  # another node may take them at once
            return released

        return await self._write(op)

    async def next_due(self) -> float | None:
        row = await self._row(
            "SELECT LEAST("
            "(SELECT MIN(next_attempt_at) FROM deliveries WHERE state IN ('queued','retrying')), "
            "(SELECT MIN(lease_expires_at) FROM deliveries WHERE state = 'in_flight'))"
        )
        return None if row is None or row[0] is None else float(row[0])
