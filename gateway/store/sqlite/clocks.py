"""SQLite: statutory time-limit clocks, written inside the intake and delivery writes, and warnings
issued once (the claim row, the notice deliveries and the log entry in one write)."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from gateway.audit.chain import AuditEvent
from gateway.clockkeeper import ClockKeeper, ClockRow, Update
from gateway.lawcalendar import local_date
from gateway.model import MessageStatus
from gateway.store.clocksql import SQLITE as C
from gateway.store.clocksql import in_list, listing, set_clock, warning_message
from gateway.store.rows import NewDelivery, NewMessage
from gateway.store.shared import delivery_values, message_values, new_receipt, record_destinations
from gateway.store.sql import SQLITE as Q
from gateway.store.sqlite.connection import SQLiteEngine
from gateway.store.sqlite.writer import Tx


def _apply(c: sqlite3.Connection, updates: list[Update]) -> None:
    for u in updates:
        c.execute(*set_clock(u, "?"))


class SQLiteClocks(SQLiteEngine):
    clock_keeper: ClockKeeper | None = None

    def _clocks_at_intake(self, tx: Tx, m: NewMessage, deliveries: list[NewDelivery]) -> None:
        """A record's stops, extensions and waiting clocks, in the write that commits it."""
        k = self.clock_keeper
        if k is None or m.status != MessageStatus.ACCEPTED or not m.case_number:
            return
        c, now, events = tx.conn, k.clock.now(), []
        plan = k.plan(m.message_id, m.action, m.sender, list(record_destinations(deliveries)), m.documents, now)
        if not plan:
            return
        if plan.stops:
            rows = c.execute(C.stop + in_list(len(plan.stops), "?") + C.stop_returning,
                             (now, m.message_id, m.action, m.case_number, m.sender, *plan.stops)).fetchall()
            updates, evs = k.stopped(rows, m.action, m.message_id, now)
            _apply(c, updates)
            events += evs
        if plan.extends:
            rows = c.execute(C.running_of_case, (m.case_number, m.sender)).fetchall()
            updates, evs = k.extended(rows, m.action, m.documents, m.message_id, now)
            _apply(c, updates)
            events += evs
        for nc in plan.starts:
            if k.bounded(nc.limit_id):
                earlier = c.execute(C.earlier, (m.case_number, nc.limit_id)).fetchone()[0]
                if not k.periods_allowed(nc.limit_id, earlier):
                    events.append(k.refused_period(nc.limit_id, nc.agency, m.case_number, m.message_id, earlier))
                    continue
            c.execute(C.insert, (nc.id, m.case_number, nc.limit_id, nc.terms, nc.agency, m.message_id,
                                 m.case_number, nc.limit_id, now, nc.basis_day, nc.last_day, nc.due_at, nc.warn_at,
                                 nc.warn_at))
            if nc.warnings:
                events.append(k.calendar_unknown(nc.id, nc.terms, nc.agency, m.case_number, m.message_id,
                                                 nc.last_day, nc.warnings))
        if events:
            tx.audit(events)

    def _clocks_at_delivery(self, tx: Tx, message_id: str, destination: str) -> None:
        """The clocks waiting for this delivery start now, in the write that records it delivered."""
        k = self.clock_keeper
        if k is None:
            return
        now = k.clock.now()
        today = local_date(now).isoformat()
        tx.conn.execute(C.start, (now, today, today, today, today, now, message_id, destination))

    async def arm_clocks(self, updates: list[Update], events: list[AuditEvent]) -> None:
        def op(tx: Tx) -> None:
            _apply(tx.conn, updates)
            if events:
                tx.audit(events)

        await self._write(op)

    async def clocks_due(self, now: float, limit: int) -> list[ClockRow]:
        return await self._read(lambda c: [ClockRow.from_db(r) for r in c.execute(C.due, (now, limit)).fetchall()])

    async def issue_clock_warning(self, clock: ClockRow, kind: str, next_warn_at: float | None,
                                  notices: list[tuple[str, bytes, str]], event: AuditEvent) -> bool:
        """Claim (clock, kind) and, only if this is the first claim, queue the notices (destination, body,
        file name) and log the warning; False when the warning was issued already or the clock stopped."""
        def op(tx: Tx) -> bool:
            c = tx.conn
            row = c.execute(C.still_running, (clock.id,)).fetchone()
            if row is None or row[0] != "running":
                return False
            if not c.execute(C.claim, (clock.id, kind, time.time(), tx.node)).rowcount:
                return False
            now = time.time()  # the delivery queue runs on the wall clock
            m, deliveries, blobs = warning_message(clock, kind, notices, event, now)
            for h, body in blobs.items():
                c.execute(C.blob, (h, len(body), body))
            c.execute(Q.insert_message, message_values(m, new_receipt(m, deliveries), tx.node))
            c.executemany(Q.insert_delivery, delivery_values(m, deliveries, now))
            c.execute(C.next_warning, (next_warn_at, clock.id))
            tx.audit([event])
            return True

        issued = await self._write(op)
        if issued and notices:
            self.notify_work()
        return issued

    async def list_clocks(self, *, state: str | None = None, agency: str | None = None, case: str | None = None,
                          now: float, after: str | None = None, limit: int = 100) -> list[ClockRow]:
        sql, args = listing(state, agency, case, now, after, limit, "?")
        return await self._read(lambda c: [ClockRow.from_db(r) for r in c.execute(sql, args).fetchall()])

    async def clock_counts(self, now: float) -> list[tuple[str, str, int, int]]:
        """(agency, limit, overdue, approaching) of the running clocks."""
        def q(c: sqlite3.Connection) -> list[Any]:
            return [tuple(r) for r in c.execute(C.counts, (now, now, now, now)).fetchall()]

        return await self._read(q)

    async def clock_figures(self, start: float, end: float, now: float) -> list[tuple[str, int, int, int]]:
        """(agency, answered on time, answered late, overdue now) of the clocks answered in start..end."""
        def q(c: sqlite3.Connection) -> list[Any]:
            return [tuple(r) for r in c.execute(C.figures, (start, end, now)).fetchall()]

        return await self._read(q)
