"""PostgreSQL: daily statistics, counted by the record's and the delivery's own write and written once
per write group, before its COMMIT (the tally sums the group's operations)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from psycopg import AsyncConnection, AsyncCursor

from gateway.audit.chain import AuditEntry, AuditEvent
from gateway.store.postgres.connection import PostgresEngine
from gateway.store.postgres.writer import Tx, write_tally
from gateway.store.rows import NewMessage
from gateway.store.stats import ANSWERS, Tally, chain_key
from gateway.store.stats import POSTGRES as S

_ENTRY = "SELECT * FROM audit_log WHERE seq = %s"


Asked = tuple[AsyncCursor[Any] | None, AsyncCursor[Any] | None]  # the reads a record's count needs, sent
# a case's chains an answer may answer, one by one: those the group changed already are taken from its tally
_ASKED = "SELECT sender, action, status, at FROM stats_chains WHERE case_number = %s AND action IN (%s, %s)"


async def ask_record(c: AsyncConnection[Any], m: NewMessage) -> Asked:
    """Send the reads `count_record` needs (they read only stats_chains, which the record's own
    statements before its count leave alone), so they share a round trip with the resend check."""
    key = chain_key(m.sender, m.case_number, m.action)
    asks = ANSWERS.get(m.action) if m.case_number and m.status == "accepted" else None
    return (await c.execute(S.prev, key) if key else None,
            await c.execute(_ASKED, (m.case_number, asks[0], asks[-1])) if asks else None)


def _asked_at(rows: list[tuple[Any, ...]], t: Tally, case_number: str, action: str) -> float | None:
    """S.asked over stats_chains as the group's tally leaves it (its chains replace the stored ones)."""
    asks = ANSWERS.get(action) or ()
    chains = {(sender, case_number, act): (status, at) for sender, act, status, at in rows}
    chains.update((k, t.chains[k]) for k in t.by_case.get(case_number, ()) if k[2] in asks)
    times = [at for status, at in chains.values() if status == "accepted"]
    return max(times) if times else None


async def count_record(tx: Tx, m: NewMessage, asked: Asked) -> None:
    """Add a newly stored record to its sender's day, in the group's tally (written before its COMMIT)."""
    prev_cur, asked_cur = asked
    prev_row = await prev_cur.fetchone() if prev_cur is not None else None
    rows = await asked_cur.fetchall() if asked_cur is not None else None
    t = tx.tally
    key = chain_key(m.sender, m.case_number, m.action)
    prev = t.chains.get(key) if key in t.chains else (prev_row[0], prev_row[1]) if prev_row else None
    t.record(m.sender, m.case_number, m.action, str(m.status), m.summary, m.received_at, prev,
             _asked_at(rows, t, m.case_number, m.action) if rows is not None else None)


async def count_delivery(tx: Tx, message_id: str, destination: str, delivered_at: float,
                         ask: AsyncCursor[Any]) -> None:
    """Add a confirmed delivery to the sender's and the receiver's day (defect notices are not counted);
    `ask`: the message's row, asked for already (`S.message_of`)."""
    row = await ask.fetchone()
    if row is None or row[2] != "accepted":
        return
    tx.tally.delivery(row[0], destination, row[1], delivered_at)


class PostgresStats(PostgresEngine):
    async def rebuild_stats(self) -> int:
        """Recompute every aggregate from messages and deliveries in one write; returns records counted."""
        async def op(tx: Tx) -> int:
            c = tx.conn
            tx.tally = Tally()  # what the group's earlier operations counted, the rebuild counts again
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
            await write_tally(c, t)
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
