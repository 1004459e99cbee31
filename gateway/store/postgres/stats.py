"""PostgreSQL: daily statistics, written inside the record's and the delivery's own write."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from psycopg import AsyncConnection, AsyncCursor

from gateway.audit.chain import AuditEntry, AuditEvent
from gateway.store.postgres.connection import PostgresEngine
from gateway.store.postgres.writer import Tx
from gateway.store.rows import NewMessage
from gateway.store.stats import ANSWERS, StatsSQL, Tally, chain_key
from gateway.store.stats import POSTGRES as S

_ENTRY = "SELECT * FROM audit_log WHERE seq = %s"


async def _write_tally(c: AsyncConnection[Any], t: Tally) -> None:
    async with c.cursor() as cur:
        for sql, rows in zip((S.daily, S.rules, S.hist, S.chain), StatsSQL.rows(t), strict=True):
            if rows:
                await cur.executemany(sql, rows)


Asked = tuple[AsyncCursor[Any] | None, AsyncCursor[Any] | None]  # the reads a record's count needs, sent


async def ask_record(c: AsyncConnection[Any], m: NewMessage) -> Asked:
    """Send the reads `count_record` needs (they read only stats_chains, which the record's own
    statements before its count leave alone), so they share a round trip with the resend check."""
    key = chain_key(m.sender, m.case_number, m.action)
    asks = ANSWERS.get(m.action) if m.case_number and m.status == "accepted" else None
    return (await c.execute(S.prev, key) if key else None,
            await c.execute(S.asked, (m.case_number, asks[0], asks[-1])) if asks else None)


async def count_record(c: AsyncConnection[Any], m: NewMessage, asked: Asked | None = None) -> None:
    """Add a newly stored record to its sender's day (inside the record's transaction)."""
    prev_cur, asked_cur = asked if asked is not None else await ask_record(c, m)
    prev = await prev_cur.fetchone() if prev_cur is not None else None
    row = await asked_cur.fetchone() if asked_cur is not None else None
    t = Tally()
    t.record(m.sender, m.case_number, m.action, str(m.status), m.summary, m.received_at,
             (prev[0], prev[1]) if prev else None, row[0] if row else None)
    await _write_tally(c, t)


async def count_delivery(c: AsyncConnection[Any], message_id: str, destination: str, delivered_at: float,
                         ask: AsyncCursor[Any] | None = None) -> None:
    """Add a confirmed delivery to the sender's and the receiver's day (defect notices are not counted);
    `ask`: the message's row, asked for already (`S.message_of`)."""
    row = await (await c.execute(S.message_of, (message_id,))).fetchone() if ask is None else await ask.fetchone()
    if row is None or row[2] != "accepted":
        return
    t = Tally()
    t.delivery(row[0], destination, row[1], delivered_at)
    await _write_tally(c, t)


class PostgresStats(PostgresEngine):
    async def rebuild_stats(self) -> int:
        """Recompute every aggregate from messages and deliveries in one write; returns records counted."""
        async def op(tx: Tx) -> int:
            c = tx.conn
            for sql in S.clear:
                await c.execute(sql)
            t = Tally()
            n = 0
            for sender, case, action, status, summary, at in await (await c.execute(S.all_messages)).fetchall():
                key = chain_key(sender, case, action)
                t.record(sender, case, action, status, json.loads(summary), at, t.chains.get(key) if key else None,
                         t.asked_at(case, action) if status == "accepted" else None)
                n += 1
            for sender, dest, at, delivered in await (await c.execute(S.all_deliveries)).fetchall():
                t.delivery(sender, dest, at, delivered)
            await _write_tally(c, t)
            return n

        return await self._write(op)

    async def stats_rows(self, first: str, last: str, agency: str | None = None
                         ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """(daily, rules, hand-over buckets) rows of the days first..last, of one agency or all."""
        if agency is not None:
            b = (first, last, agency)
            return await self._rows(S.days_of, b), await self._rows(S.rules_of, b), await self._rows(S.hist_of, b)
        a = (first, last)  # a month over every agency is a few hundred thousand bucket rows: read the three at once
        days, rules, hist = await asyncio.gather(self._rows(S.days, a), self._rows(S.rules_in, a),
                                                 self._rows(S.hist_in, a))
        return days, rules, hist

    async def stats_chains(self) -> list[tuple[Any, ...]]:
        return await self._rows("SELECT sender, case_number, action, status, at FROM stats_chains")

    async def frozen_ranking(self, day: str) -> AuditEntry | None:
        row = await self._row(S.ranking, (day,))
        if row is None:
            return None
        e = await self._row(_ENTRY, (row[0],))
        return AuditEntry(*e) if e else None

    async def freeze_ranking(self, day: str, event: AuditEvent) -> AuditEntry:
        """Write a finished day's ranking into the exchange log once; a second call gets the first entry."""
        async def op(tx: Tx) -> AuditEntry:
            row = await tx.one(S.ranking, (day,))
            if row is not None:
                return AuditEntry(*await tx.one(_ENTRY, (row[0],)))
            entry = (await tx.audit([event]))[0]
            await tx.conn.execute(S.add_ranking, (day, entry.seq))
            return entry

        return await self._write(op)
