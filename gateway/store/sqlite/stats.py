"""SQLite: daily statistics, written inside the record's and the delivery's own write."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from gateway.audit.chain import AuditEntry, AuditEvent
from gateway.store.rows import NewMessage
from gateway.store.sqlite.connection import SQLiteEngine
from gateway.store.sqlite.writer import Tx
from gateway.store.stats import ANSWERS, StatsSQL, Tally, chain_key
from gateway.store.stats import SQLITE as S


def _write_tally(c: sqlite3.Connection, t: Tally) -> None:
    daily, rules, hist, chains = StatsSQL.rows(t)
    c.executemany(S.daily, daily)
    if rules:
        c.executemany(S.rules, rules)
    if hist:
        c.executemany(S.hist, hist)
    if chains:
        c.executemany(S.chain, chains)


def count_record(c: sqlite3.Connection, m: NewMessage) -> None:
    """Add a newly stored record to its sender's day (inside the record's transaction)."""
    key = chain_key(m.sender, m.case_number, m.action)
    prev = c.execute(S.prev, key).fetchone() if key else None
    asks = ANSWERS.get(m.action) if m.case_number and m.status == "accepted" else None
    asked = c.execute(S.asked, (m.case_number, asks[0], asks[-1])).fetchone()[0] if asks else None
    t = Tally()
    t.record(m.sender, m.case_number, m.action, str(m.status), m.summary, m.received_at,
             (prev[0], prev[1]) if prev else None, asked)
    _write_tally(c, t)


def count_delivery(c: sqlite3.Connection, row: tuple[Any, ...] | None, destination: str, delivered_at: float) -> None:
    """Add a confirmed delivery to the sender's and the receiver's day (defect notices are not counted);
    `row` is the message's (sender, received_at, status), read with the lease it ends."""
    if row is None or row[2] != "accepted":
        return
    t = Tally()
    t.delivery(row[0], destination, row[1], delivered_at)
    _write_tally(c, t)


class SQLiteStats(SQLiteEngine):
    async def rebuild_stats(self) -> int:
        """Recompute every aggregate from messages and deliveries in one write; returns records counted."""
        def op(tx: Tx) -> int:
            c = tx.conn
            for sql in S.clear:
                c.execute(sql)
            t = Tally()
            n = 0
            for sender, case, action, status, summary, at in c.execute(S.all_messages):
                key = chain_key(sender, case, action)
                t.record(sender, case, action, status, json.loads(summary), at, t.chains.get(key) if key else None,
                         t.asked_at(case, action) if status == "accepted" else None)
                n += 1
            for sender, dest, at, delivered in c.execute(S.all_deliveries):
                t.delivery(sender, dest, at, delivered)
            _write_tally(c, t)
            return n

        return await self._write(op)

    async def stats_rows(self, first: str, last: str, agency: str | None = None
                         ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """(daily, rules, hand-over buckets) rows of the days first..last, of one agency or all."""
        def q(c: sqlite3.Connection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
            if agency is not None:
                b = (first, last, agency)
                return (c.execute(S.days_of, b).fetchall(), c.execute(S.rules_of, b).fetchall(),
                        c.execute(S.hist_of, b).fetchall())
            a = (first, last)
            return (c.execute(S.days, a).fetchall(), c.execute(S.rules_in, a).fetchall(),
                    c.execute(S.hist_in, a).fetchall())

        return await self._read(q)

    async def stats_chains(self) -> list[tuple[Any, ...]]:
        return await self._read(lambda c: c.execute(
            "SELECT sender, case_number, action, status, at FROM stats_chains").fetchall())

    async def frozen_ranking(self, day: str) -> AuditEntry | None:
        def q(c: sqlite3.Connection) -> AuditEntry | None:
            row = c.execute(S.ranking, (day,)).fetchone()
            if row is None:
                return None
            e = c.execute("SELECT * FROM audit_log WHERE seq = ?", (row[0],)).fetchone()
            return AuditEntry(*e)

        return await self._read(q)

    async def freeze_ranking(self, day: str, event: AuditEvent) -> AuditEntry:
        """Write a finished day's ranking into the exchange log once; a second call gets the first entry."""
        def op(tx: Tx) -> AuditEntry:
            row = tx.conn.execute(S.ranking, (day,)).fetchone()
            if row is not None:
                return AuditEntry(*tx.conn.execute("SELECT * FROM audit_log WHERE seq = ?", (row[0],)).fetchone())
            entry = tx.audit([event])[0]
            tx.conn.execute(S.add_ranking, (day, entry.seq))
            return entry

        return await self._write(op)
