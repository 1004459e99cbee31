"""PostgreSQL: the case timeline, written inside intake's and delivery's writes, read by case number."""

from __future__ import annotations

from gateway.store.cases import answer_values, assemble, entry_values, receiver_values
from gateway.store.postgres.connection import PostgresEngine
from gateway.store.postgres.writer import Tx
from gateway.store.rows import CaseEntryRow, NewMessage
from gateway.store.sql import POSTGRES as Q


async def add_case_entry(tx: Tx, m: NewMessage) -> None:
    """Put a new record on its case's timeline (in the transaction storing it); it answers first."""
    if (answer := answer_values(m)) is not None:
        await tx.conn.execute(Q.answer_case, answer)
    if (entry := entry_values(m)) is not None:
        await tx.conn.execute(Q.insert_case_entry, entry)
        if receivers := receiver_values(m):
            async with tx.conn.cursor() as cur:
                await cur.executemany(Q.insert_case_receiver, receivers)


class PostgresCases(PostgresEngine):
    async def case_timeline(self, case_number: str) -> list[CaseEntryRow]:
        async with self._pooled() as conn, conn.transaction(), conn.cursor() as cur:  # one snapshot
            await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            await cur.execute(Q.case_entries, (case_number,))
            entries = await cur.fetchall()
            await cur.execute(Q.case_receivers, (case_number,))
            return assemble(entries, await cur.fetchall())
