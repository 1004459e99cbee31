"""PostgreSQL: statutory time-limit clocks, written inside the intake and delivery writes, and warnings
issued once across nodes: the claim row, the notice deliveries and the log entry go in one write
group, and every group of every node holds the log's head lock, so two nodes never both claim."""

from __future__ import annotations

import time
from typing import Any

from psycopg import AsyncConnection, AsyncCursor

from gateway.audit.chain import AuditEvent
from gateway.clockkeeper import ClockKeeper, ClockRow, RecordPlan, Update
from gateway.lawcalendar import local_date
from gateway.model import MessageStatus
from gateway.store.clocksql import POSTGRES as C
from gateway.store.clocksql import in_list, listing, set_clock, warning_message
from gateway.store.postgres.connection import PostgresEngine
from gateway.store.postgres.writer import Tx
from gateway.store.rows import NewDelivery, NewMessage
from gateway.store.shared import delivery_values, message_values, new_receipt, record_destinations
from gateway.store.sql import POSTGRES as Q


async def _apply(c: AsyncConnection[Any], updates: list[Update]) -> None:
    for u in updates:
        await c.execute(*set_clock(u, "%s"))


async def _all(c: AsyncConnection[Any], sql: str, args: Any) -> list[tuple[Any, ...]]:
    return await (await c.execute(sql, args)).fetchall()


Stops = tuple[RecordPlan, float, AsyncCursor[Any] | None] | None  # a record's plan, its time, its stops sent


class PostgresClocks(PostgresEngine):
    clock_keeper: ClockKeeper | None = None

    async def _queue_clock_stops(self, tx: Tx, m: NewMessage, deliveries: list[NewDelivery]) -> Stops:
        """Send the record's stops before the write reads anything, so they come back with the resend
        check's answer instead of costing a round trip of their own. A resend stops nothing: the
        statement itself skips it (the record's earlier copy is already stored)."""
        k = self.clock_keeper
        if k is None or m.status != MessageStatus.ACCEPTED or not m.case_number:
            return None
        now = k.clock.now()
        plan = k.plan(m.message_id, m.action, m.sender, list(record_destinations(deliveries)), m.documents, now)
        if not plan:
            return None
        cur = None
        if plan.stops:
            cur = await tx.conn.execute(
                C.stop + in_list(len(plan.stops), "%s") + C.stop_unless_resent + C.stop_returning,
                (now, m.message_id, m.action, m.case_number, m.sender, *plan.stops, m.sender, m.sender_message_id,
                 m.content_hash))
        return plan, now, cur

    async def _clocks_at_intake(self, tx: Tx, m: NewMessage, queued: Stops) -> None:
        """A record's stops, extensions and waiting clocks, in the write that commits it."""
        k = self.clock_keeper
        if k is None or queued is None:
            return
        plan, now, stopping = queued
        c, events = tx.conn, []
        if stopping is not None:
            rows = await stopping.fetchall()
            updates, evs = k.stopped(rows, m.action, m.message_id, now)
            await _apply(c, updates)
            events += evs
        if plan.extends:
            rows = await _all(c, C.running_of_case, (m.case_number, m.sender))
            updates, evs = k.extended(rows, m.action, m.documents, m.message_id, now)
            await _apply(c, updates)
            events += evs
        for nc in plan.starts:
            if k.bounded(nc.limit_id):
                earlier = (await _all(c, C.earlier, (m.case_number, nc.limit_id)))[0][0]
                if not k.periods_allowed(nc.limit_id, earlier):
                    events.append(k.refused_period(nc.limit_id, nc.agency, m.case_number, m.message_id, earlier))
                    continue
            await c.execute(C.insert, (nc.id, m.case_number, nc.limit_id, nc.terms, nc.agency, m.message_id,
                                       m.case_number, nc.limit_id, now, nc.basis_day, nc.last_day, nc.due_at,
                                       nc.warn_at, nc.warn_at))
            if nc.warnings:
                events.append(k.calendar_unknown(nc.id, nc.terms, nc.agency, m.case_number, m.message_id,
                                                 nc.last_day, nc.warnings))
        if events:
            await tx.audit(events)

    async def _clocks_at_delivery(self, tx: Tx, message_id: str, destination: str) -> None:
        """The clocks waiting for this delivery start now, in the write that records it delivered (no read:
        it goes out pipelined with the delivery's own statements)."""
        k = self.clock_keeper
        if k is None:
            return
        now = k.clock.now()
        today = local_date(now).isoformat()
        await tx.conn.execute(C.start, (now, today, today, today, today, now, message_id, destination))

    async def arm_clocks(self, updates: list[Update], events: list[AuditEvent]) -> None:
        async def op(tx: Tx) -> None:
            await _apply(tx.conn, updates)
            if events:
                await tx.audit(events)

        await self._write(op)

    async def clocks_due(self, now: float, limit: int) -> list[ClockRow]:
        return [ClockRow.from_db(r) for r in await self._rows(C.due, (now, limit))]

    async def issue_clock_warning(self, clock: ClockRow, kind: str, next_warn_at: float | None,
                                  notices: list[tuple[str, bytes, str]], event: AuditEvent) -> bool:
        """Claim (clock, kind) and, only if this is the first claim, queue the notices (destination, body,
        file name) and log the warning; False when the warning was issued already or the clock stopped."""

        async def op(tx: Tx) -> bool:
            c = tx.conn
            row = await tx.one(C.still_running + " FOR UPDATE", (clock.id,))
            if row is None or row[0] != "running":
                return False
            if not await _all(c, C.claim + " RETURNING clock_id", (clock.id, kind, time.time(), tx.node)):
                return False
            now = time.time()  # the delivery queue runs on the wall clock
            m, deliveries, blobs = warning_message(clock, kind, notices, event, now)
            for h, body in blobs.items():
                await c.execute(C.blob, (h, len(body), body))
            await c.execute(Q.insert_message, message_values(m, new_receipt(m, deliveries), tx.node))
            if deliveries:
                async with c.cursor() as cur:
                    await cur.executemany(Q.insert_delivery, delivery_values(m, deliveries, now))
            await c.execute(C.next_warning, (next_warn_at, clock.id))
            await tx.audit([event])
            tx.notify = bool(notices)
            return True

        return await self._write(op)

    async def list_clocks(self, *, state: str | None = None, agency: str | None = None, case: str | None = None,
                          now: float, after: str | None = None, limit: int = 100) -> list[ClockRow]:
        sql, args = listing(state, agency, case, now, after, limit, "%s")
        return [ClockRow.from_db(r) for r in await self._rows(sql, args)]

    async def clock_counts(self, now: float) -> list[tuple[str, str, int, int]]:
        """(agency, limit, overdue, approaching) of the running clocks."""
        return [(r[0], r[1], int(r[2]), int(r[3])) for r in await self._rows(C.counts, (now, now, now, now))]

    async def clock_figures(self, start: float, end: float, now: float) -> list[tuple[str, int, int, int]]:
        """(agency, answered on time, answered late, overdue now) of the clocks answered in start..end."""
        return [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in await self._rows(C.figures, (start, end, now))]
