"""SQLite: the case timeline, written inside intake's and delivery's writes, read by case number."""

from __future__ import annotations

import sqlite3

from gateway.store.cases import answer_values, assemble, entry_values, receiver_values
from gateway.store.rows import CaseEntryRow, NewMessage
from gateway.store.sql import SQLITE as Q
from gateway.store.sqlite.connection import SQLiteEngine


def add_case_entry(c: sqlite3.Connection, m: NewMessage) -> None:
    """Put a new record on its case's timeline (in the transaction storing it); it answers first."""
    if (answer := answer_values(m)) is not None:
        c.execute(Q.answer_case, answer)
    if (entry := entry_values(m)) is not None:
        c.execute(Q.insert_case_entry, entry)
        c.executemany(Q.insert_case_receiver, receiver_values(m))


class SQLiteCases(SQLiteEngine):
    async def case_timeline(self, case_number: str) -> list[CaseEntryRow]:
        def q(c: sqlite3.Connection) -> list[CaseEntryRow]:
            c.execute("BEGIN")  # one snapshot for both reads
            try:
                return assemble(c.execute(Q.case_entries, (case_number,)).fetchall(),
                                c.execute(Q.case_receivers, (case_number,)).fetchall())
            finally:
                c.execute("COMMIT")

        return await self._read(q)
