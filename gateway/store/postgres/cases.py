"""PostgreSQL: the case timeline, written inside intake's and delivery's writes, read by case number."""

from __future__ import annotations

from gateway.store.cases import answer_values, assemble, entry_values, receiver_values
from gateway.store.postgres.connection import PostgresEngine
from gateway.store.postgres.writer import Tx
from gateway.store.rows import CaseEntryRow, NewMessage
from gateway.store.sql import POSTGRES as Q

# the answer, the entry and its receivers in one statement (one round of psycopg's work, not three);
# every part sees the tables as they were before it, so a record never answers itself
_ADD = (f"WITH answered AS ({Q.answer_case}), entry AS ({Q.insert_case_entry}) "
        "INSERT INTO case_receivers (message_id, receiver) SELECT %s, unnest(%s::text[])")


async def add_case_entry(tx: Tx, m: NewMessage) -> None:
    """Put a new record on its case's timeline (in the transaction storing it); it answers first."""
    entry = entry_values(m)
    if entry is None:
        return
    answer = answer_values(m) or (None, None, None, None)  # a blocked record answers nothing (NULL matches none)
    await tx.conn.execute(_ADD, (*answer, *entry, m.message_id, [r for _mid, r in receiver_values(m)]))


class PostgresCases(PostgresEngine):
    async def case_timeline(self, case_number: str) -> list[CaseEntryRow]:
        async with self._pooled() as conn, conn.transaction(), conn.cursor() as cur:  # one snapshot
            await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            await cur.execute(Q.case_entries, (case_number,))
            entries = await cur.fetchall()
            await cur.execute(Q.case_receivers, (case_number,))
            return assemble(entries, await cur.fetchall())
